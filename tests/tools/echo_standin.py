#!/usr/bin/python3
"""A stand-in for tests of what kinesink prints: peers that echo the request they received, headers
and body, in their error messages (as AWS does on a signature mismatch: the canonical request,
X-Amz-Security-Token included, and the string to sign), on one loopback port:

- Kinesis (X-Amz-Target Kinesis_20131202.*): refused as InvalidSignatureException with AWS's
  message, canonical request and string to sign (--echo kinesis); else DescribeStreamSummary says
  ACTIVE with one shard, ListShards lists it and PutRecords accepts every record. The shard's id
  starts with the first 40 characters of the X-Amz-Security-Token of the ListShards request
  (--echo shard-id): a peer's text that reaches the metrics' labels. --echo entries: the first
  PutRecords answer fails every entry as InternalFailure, its ErrorMessage quoting the token.
- STS (a form body with Action=AssumeRole or AssumeRoleWithWebIdentity): hands out --issue
  AKID:SECRET:TOKEN, or (--echo sts) AccessDenied whose message quotes every header and the body.
- a Schema Registry (GET /schemas/ids/N, /subjects): --echo registry answers 500 quoting the
  headers (Authorization: Basic ...); else schema N from --schemas DIR/N.json.
- the IAM Identity Center portal (GET /federation/credentials): --echo sso answers 401 quoting
  x-amz-sso_bearer_token; else the --issue credentials.
- SSO OIDC (POST /token): --echo oidc answers 400 invalid_grant quoting the body (clientSecret,
  refreshToken).

  echo_standin.py --port-file F [--issue AKID:SECRET:TOKEN] [--echo ROLE]... [--schemas DIR]

GET /_echoed answers the texts sent in error messages so far (JSON list): the test knows that
what it looks for was offered. GET /_count answers the number of records PutRecords accepted.
"""
import argparse
import base64
import hashlib
import json
import os
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

args = None
state = {"echoed": [], "accepted": 0, "rid": 0}
SIG_MESSAGE = ("The request signature we calculated does not match the signature you provided. Check your AWS "
               "Secret Access Key and signing method. Consult the service documentation for details.")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, body, ctype="application/x-amz-json-1.1", extra=()):
        data = body.encode() if isinstance(body, str) else body
        state["rid"] += 1
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", "echo-request-%d" % state["rid"])
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def echoed(self, text):
        state["echoed"].append(text)
        return text

    def headers_text(self):
        return "".join("%s: %s\n" % (k, v) for k, v in self.headers.items())

    def canonical(self, body):
        """The canonical request and string to sign as AWS quotes them (values as received)."""
        names = sorted(k.lower() for k in self.headers.keys() if k.lower() not in ("authorization", "content-length",
                                                                                 "accept", "expect"))
        hdrs = "".join("%s:%s\n" % (n, self.headers.get(n, "").strip()) for n in names)
        creq = "POST\n/\n\n%s\n%s\n%s" % (hdrs, ";".join(names), hashlib.sha256(body).hexdigest())
        date = self.headers.get("X-Amz-Date", "")
        sts = "AWS4-HMAC-SHA256\n%s\n%s/us-east-1/kinesis/aws4_request\n%s" % (
            date, date[:8], hashlib.sha256(creq.encode()).hexdigest())
        return "%s\n\nThe Canonical String for this request should have been\n'%s'\n\nThe String-to-Sign should " \
               "have been\n'%s'\n" % (SIG_MESSAGE, creq, sts)

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/_echoed":
            return self.reply(200, json.dumps(state["echoed"]), "application/json")
        if path == "/_count":
            return self.reply(200, str(state["accepted"]), "text/plain")
        if path == "/federation/credentials":
            if "sso" in args.echo:
                msg = self.echoed("Session token not found or invalid: x-amz-sso_bearer_token: %s"
                                  % self.headers.get("x-amz-sso_bearer_token"))
                return self.reply(401, json.dumps({"message": msg}), "application/json",
                                  [("x-amzn-ErrorType", "UnauthorizedException")])
            a, s, t = args.issue.split(":", 2)
            return self.reply(200, json.dumps({"roleCredentials": {"accessKeyId": a, "secretAccessKey": s,
                                                                    "sessionToken": t, "expiration": 4102444800000}}),
                              "application/json")
        if path.startswith("/schemas/ids/") or path == "/subjects":
            if "registry" in args.echo:
                msg = self.echoed("cannot serve %s for the request\n%s" % (self.path, self.headers_text()))
                return self.reply(500, json.dumps({"error_code": 50001, "message": msg}),
                                  "application/vnd.schemaregistry.v1+json")
            if path == "/subjects":
                return self.reply(200, "[]", "application/vnd.schemaregistry.v1+json")
            f = os.path.join(args.schemas or "", path.rsplit("/", 1)[1] + ".json")
            if not os.path.exists(f):
                return self.reply(404, json.dumps({"error_code": 40403, "message": "Schema not found"}),
                                  "application/vnd.schemaregistry.v1+json")
            with open(f) as fh:
                return self.reply(200, fh.read(), "application/vnd.schemaregistry.v1+json")
        self.reply(404, "{}")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        target = self.headers.get("X-Amz-Target", "")
        if target.startswith("Kinesis_20131202."):
            return self.kinesis(target.split(".", 1)[1], body)
        if self.path == "/token":
            if "oidc" in args.echo:
                desc = self.echoed("Invalid refresh token provided in %s" % body.decode("utf-8", "replace"))
                return self.reply(400, json.dumps({"error": "invalid_grant", "error_description": desc}),
                                  "application/json", [("x-amzn-ErrorType", "InvalidGrantException")])
            return self.reply(400, json.dumps({"error": "invalid_grant", "error_description": "no"}), "application/json")
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        action = form.get("Action", [""])[0]
        if action in ("AssumeRole", "AssumeRoleWithWebIdentity"):
            if "sts" in args.echo:
                msg = self.echoed("User is not authorized to perform sts:%s with X-Amz-Security-Token: %s; body %s; "
                                  "headers %s" % (action, self.headers.get("X-Amz-Security-Token"),
                                                  body.decode("utf-8", "replace"), self.headers_text()))
                xml = ("<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>%s</Message>"
                       "</Error><RequestId>echo-sts</RequestId></ErrorResponse>"
                       % msg.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
                return self.reply(403, xml, "text/xml")
            a, s, t = args.issue.split(":", 2)
            return self.reply(200, "<%sResponse><%sResult><Credentials><AccessKeyId>%s</AccessKeyId>"
                                   "<SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken>"
                                   "<Expiration>2100-01-01T00:00:00Z</Expiration></Credentials></%sResult></%sResponse>"
                              % (action, action, a, s, t, action, action), "text/xml")
        self.reply(400, "<ErrorResponse><Error><Code>InvalidAction</Code></Error></ErrorResponse>", "text/xml")

    def shard_id(self):
        if "shard-id" in args.echo:
            return self.echoed("shardId-" + (self.headers.get("X-Amz-Security-Token") or "none")[:40])
        return "shardId-000000000000"

    def kinesis(self, op, body):
        if "kinesis" in args.echo:
            msg = self.echoed(self.canonical(body))
            return self.reply(400, json.dumps({"__type": "InvalidSignatureException", "message": msg}))
        req = json.loads(body or b"{}")
        if op == "DescribeStreamSummary":
            return self.reply(200, json.dumps({"StreamDescriptionSummary": {
                "StreamName": req.get("StreamName", "s1"), "StreamARN": "arn:aws:kinesis:us-east-1:1:stream/s1",
                "StreamStatus": "ACTIVE", "StreamModeDetails": {"StreamMode": "PROVISIONED"},
                "OpenShardCount": 1, "ConsumerCount": 0, "RetentionPeriodHours": 24, "EncryptionType": "NONE",
                "MaxRecordSizeInKiB": 1024}}))
        if op == "ListShards":
            state["shard"] = self.shard_id()
            return self.reply(200, json.dumps({"Shards": [{
                "ShardId": state["shard"], "HashKeyRange": {"StartingHashKey": "0",
                                                            "EndingHashKey": str(2 ** 128 - 1)},
                "SequenceNumberRange": {"StartingSequenceNumber": "1"}}]}))
        if op == "PutRecords":
            recs = req.get("Records", [])
            if "entries" in args.echo and not state.get("entries_echoed"):
                state["entries_echoed"] = True
                msg = self.echoed("Internal service failure for the request with X-Amz-Security-Token %s"
                                  % self.headers.get("X-Amz-Security-Token"))
                return self.reply(200, json.dumps({"FailedRecordCount": len(recs), "Records": [
                    {"ErrorCode": "InternalFailure", "ErrorMessage": msg} for _ in recs]}))
            state["accepted"] += len(recs)
            out = [{"SequenceNumber": str(49000000000000000000 + state["accepted"] * 1000 + i),
                    "ShardId": state.get("shard", "shardId-000000000000")} for i in range(len(recs))]
            return self.reply(200, json.dumps({"FailedRecordCount": 0, "Records": out}))
        self.reply(400, json.dumps({"__type": "InvalidAction", "message": op}))


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--issue", default="ASIAECHO0001:echo-secret-value:echo-session-token")
    p.add_argument("--echo", action="append", default=[],
                   choices=["kinesis", "shard-id", "entries", "sts", "registry", "sso", "oidc"])
    p.add_argument("--schemas")
    args = p.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, args.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
