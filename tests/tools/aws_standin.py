#!/usr/bin/python3
"""Stand-ins for the AWS credential endpoints, for tests: STS (AssumeRole,
AssumeRoleWithWebIdentity), EC2 IMDSv2, the container credentials endpoint and the IAM Identity
Center portal (GetRoleCredentials), all on one loopback port. Credentials it hands out expire
--ttl seconds after the request.

  aws_standin.py --port-file F [--ttl SECONDS] [--container-token TOKEN]
                 [--sso-token TOKEN --sso-account ID --sso-role NAME]

The portal answers GET /federation/credentials?role_name=R&account_id=A only for the bearer
token (x-amz-sso_bearer_token) and the account and role given: 401 UnauthorizedException for
another token, 403 ForbiddenException for another account or role.

GET /_requests answers the requests received so far as JSON: [{"method","path","headers","body"}].
"""
import argparse
import datetime
import json
import os
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

args = None
log = []
counter = {"n": 0}


def creds():
    counter["n"] += 1
    exp = datetime.datetime.utcnow() + datetime.timedelta(seconds=args.ttl)
    return ("ASIASTANDIN%04d" % counter["n"], "standin-secret-%d" % counter["n"], "standin-token-%d" % counter["n"],
            exp.strftime("%Y-%m-%dT%H:%M:%SZ"))


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def reply(self, code, body, ctype="text/plain"):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", "standin-%d" % len(log))
        self.end_headers()
        self.wfile.write(data)

    def record(self, body=""):
        log.append({"method": self.command, "path": self.path, "headers": dict(self.headers.items()), "body": body})

    def do_PUT(self):
        self.record()
        if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return self.reply(200, "imds-session-token")
        self.reply(400, "bad request")

    def do_GET(self):
        if self.path == "/_requests":
            return self.reply(200, json.dumps(log), "application/json")
        self.record()
        if self.path.startswith("/latest/meta-data/iam/security-credentials/"):
            if self.headers.get("X-aws-ec2-metadata-token") != "imds-session-token":
                return self.reply(401, "")
            role = self.path[len("/latest/meta-data/iam/security-credentials/"):]
            if not role:
                return self.reply(200, "kinesink-node-role")
            a, s, t, e = creds()
            return self.reply(200, json.dumps({"Code": "Success", "AccessKeyId": a, "SecretAccessKey": s,
                                               "Token": t, "Expiration": e}), "application/json")
        if self.path.startswith("/federation/credentials?"):
            return self.sso_role_credentials()
        if self.path.startswith("/container"):
            if args.container_token and self.headers.get("Authorization") != args.container_token:
                return self.reply(403, "")
            a, s, t, e = creds()
            return self.reply(200, json.dumps({"AccessKeyId": a, "SecretAccessKey": s, "Token": t, "Expiration": e}),
                              "application/json")
        self.reply(404, "")

    def sso_error(self, code, kind, message):
        data = json.dumps({"message": message}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-ErrorType", kind)
        self.send_header("x-amzn-RequestId", "standin-%d" % len(log))
        self.end_headers()
        self.wfile.write(data)

    def sso_role_credentials(self):
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if not args.sso_token or self.headers.get("x-amz-sso_bearer_token") != args.sso_token:
            return self.sso_error(401, "UnauthorizedException", "Session token not found or invalid")
        if q.get("role_name") != [args.sso_role] or q.get("account_id") != [args.sso_account]:
            return self.sso_error(403, "ForbiddenException", "No access")
        a, s, t, e = creds()
        exp_ms = int((datetime.datetime.strptime(e, "%Y-%m-%dT%H:%M:%SZ")
                      .replace(tzinfo=datetime.timezone.utc).timestamp()) * 1000)
        self.reply(200, json.dumps({"roleCredentials": {"accessKeyId": a, "secretAccessKey": s, "sessionToken": t,
                                                        "expiration": exp_ms}}), "application/json")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        self.record(body)
        form = urllib.parse.parse_qs(body)
        action = form.get("Action", [""])[0]
        if action == "AssumeRole" and not self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 "):
            return self.reply(403, "<ErrorResponse><Error><Code>MissingAuthenticationToken</Code>"
                                   "<Message>unsigned</Message></Error></ErrorResponse>", "text/xml")
        if action not in ("AssumeRole", "AssumeRoleWithWebIdentity"):
            return self.reply(400, "<ErrorResponse><Error><Code>InvalidAction</Code><Message>%s</Message>"
                                   "</Error></ErrorResponse>" % action, "text/xml")
        a, s, t, e = creds()
        self.reply(200, "<%sResponse><%sResult><Credentials><AccessKeyId>%s</AccessKeyId>"
                        "<SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken>"
                        "<Expiration>%s</Expiration></Credentials></%sResult></%sResponse>"
                   % (action, action, a, s, t, e, action, action), "text/xml")


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--ttl", type=int, default=3600)
    p.add_argument("--container-token")
    p.add_argument("--sso-token")
    p.add_argument("--sso-account")
    p.add_argument("--sso-role")
    args = p.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(args.port_file + ".tmp", "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(args.port_file + ".tmp", args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
