#!/usr/bin/python3
"""Stand-ins for the AWS credential endpoints, for tests: STS (AssumeRole,
AssumeRoleWithWebIdentity), EC2 IMDSv2, the container credentials endpoint, the IAM Identity
Center portal (GetRoleCredentials) and SSO OIDC (CreateToken with a refresh token), all on one
loopback port. Credentials it hands out expire --ttl seconds after the request.

  aws_standin.py --port-file F [--ttl SECONDS] [--container-token TOKEN]
                 [--region R] [--sts-key AKID:SECRET ...]
                 [--sso-token TOKEN --sso-account ID --sso-role NAME]
                 [--oidc-client ID:SECRET --oidc-refresh-token TOKEN [--oidc-expires-in SECONDS]]

The portal answers GET /federation/credentials?role_name=R&account_id=A only for the bearer
token (x-amz-sso_bearer_token) and the account and role given: 401 UnauthorizedException for
another token, 403 ForbiddenException for another account or role.

SSO OIDC answers POST /token (JSON {"clientId", "clientSecret", "grantType": "refresh_token",
"refreshToken"}) for the client and refresh token given with the portal's --sso-token as the new
access token, valid --oidc-expires-in seconds, and a new refresh token ("<TOKEN>-2", then -3...,
which is then the one accepted); 400 invalid_grant (x-amzn-ErrorType InvalidGrantException) for
another refresh token, 401 invalid_client for another client.

STS checks the signature of AssumeRole as the service does, with botocore
(tests/tools/sigv4_verify.py): scoped to --region (us-east-1 unless given) and the sts service,
by a key it knows (an --sts-key, or credentials it handed out itself), else 403
SignatureDoesNotMatch / IncompleteSignature / InvalidClientTokenId.
AssumeRoleWithWebIdentity is not signed.

GET /_requests answers the requests received so far as JSON: [{"method","path","headers","body"}].
"""
import argparse
import datetime
import json
import os
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sigv4_verify  # noqa: E402
import standin_http  # noqa: E402

args = None
log = []
counter = {"n": 0}
oidc = {"n": 1, "refresh": None}
issued = {}  # access key id -> secret of the credentials handed out


def creds():
    counter["n"] += 1
    issued["ASIASTANDIN%04d" % counter["n"]] = "standin-secret-%d" % counter["n"]
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

    def oidc_create_token(self, body):
        try:
            req = json.loads(body)
        except ValueError:
            req = {}
        if self.headers.get("Content-Type") != "application/json" or req.get("grantType") != "refresh_token":
            return self.sso_error(400, "InvalidRequestException", "expected a JSON refresh_token grant")
        if not args.oidc_client or "%s:%s" % (req.get("clientId"), req.get("clientSecret")) != args.oidc_client:
            return self.oidc_error(401, "InvalidClientException", "invalid_client", "Invalid client provided")
        if req.get("refreshToken") != oidc["refresh"]:
            return self.oidc_error(400, "InvalidGrantException", "invalid_grant", "Invalid refresh token provided")
        oidc["n"] += 1
        oidc["refresh"] = "%s-%d" % (args.oidc_refresh_token, oidc["n"])
        self.reply(200, json.dumps({"accessToken": args.sso_token, "tokenType": "Bearer",
                                    "expiresIn": args.oidc_expires_in, "refreshToken": oidc["refresh"]}),
                   "application/json")

    def oidc_error(self, code, kind, error, description):
        data = json.dumps({"error": error, "error_description": description}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-ErrorType", kind)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        self.record(body)
        if self.path == "/token":
            return self.oidc_create_token(body)
        form = urllib.parse.parse_qs(body)
        action = form.get("Action", [""])[0]
        if action == "AssumeRole" and not self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 "):
            return self.reply(403, "<ErrorResponse><Error><Code>MissingAuthenticationToken</Code>"
                                   "<Message>unsigned</Message></Error></ErrorResponse>", "text/xml")
        if action == "AssumeRole":
            keys = dict(k.split(":", 1) for k in args.sts_key)
            keys.update(issued)
            why = sigv4_verify.check("POST", "http://%s%s" % (self.headers.get("Host", ""), self.path),
                                     dict(self.headers.items()), body.encode(), keys, args.region, "sts")
            if why:
                code = "InvalidClientTokenId" if "unknown access key" in why else \
                    "SignatureDoesNotMatch" if "signature we calculated" in why else "IncompleteSignature"
                return self.reply(403, "<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>%s"
                                       "</Message></Error></ErrorResponse>" % (code, why), "text/xml")
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
    p.add_argument("--oidc-client")
    p.add_argument("--oidc-refresh-token")
    p.add_argument("--oidc-expires-in", type=int, default=3600)
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--sts-key", action="append", default=[])
    args = p.parse_args()
    oidc["refresh"] = args.oidc_refresh_token
    standin_http.serve(Handler, args.port_file)


if __name__ == "__main__":
    sys.exit(main())
