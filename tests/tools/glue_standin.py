#!/usr/bin/python3
"""An AWS Glue Schema Registry stand-in for tests: answers AWSGlue.GetSchemaVersion (JSON 1.1,
POST /) for the schema versions of a JSON file, after checking every request's SigV4 signature
with botocore (the independent reference): service glue, the region given, a known access key,
the signature recomputed over the headers the request says it signed.

  glue_standin.py --versions FILE --keys AKID:SECRET[,AKID:SECRET...] [--region R] [--port-file F]
                  [--deny] [--throttle-first N] [--fail-first N]

FILE is {"<version id>": {"DataFormat": "AVRO" | "JSON", "SchemaDefinition": "<text>"}, ...}.
An unknown id is 400 EntityNotFoundException; --deny answers every call 400 AccessDeniedException;
--throttle-first N answers the first N calls 400 ThrottlingException and --fail-first N the next N
500 InternalServiceException. A request that is not signed right is 403 InvalidSignatureException.
GET /_requests answers [{"target", "id", "signature"}] for the calls so far ("signature" is "ok"
or what was wrong with it).
"""
import argparse
import calendar
import datetime
import json
import os
import sys
from http.server import BaseHTTPRequestHandler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sigv4_verify  # noqa: E402
import standin_http  # noqa: E402

args = None
versions = {}
keys = {}
log = []
state = {"calls": 0}


def check_signature(method, host, path, headers, body):
    """'ok', or what is wrong with the request's signature."""
    auth = headers.get("Authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return "no SigV4 Authorization header"
    parts = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
    scope = parts.get("Credential", "").split("/")
    if len(scope) != 5 or scope[3] != "glue" or scope[4] != "aws4_request":
        return "credential scope %r is not glue's" % parts.get("Credential")
    if scope[2] != args.region:
        return "signed for region %s, not %s" % (scope[2], args.region)
    if scope[0] not in keys:
        return "unknown access key %s" % scope[0]
    amz_date = headers.get("X-Amz-Date", "")
    try:
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
    except ValueError:
        return "bad X-Amz-Date %r" % amz_date
    if abs((datetime.datetime.utcnow() - when).total_seconds()) > 300:
        return "X-Amz-Date %s is more than 5 minutes off" % amz_date
    signed = parts.get("SignedHeaders", "").split(";")
    for need in ("host", "x-amz-date", "x-amz-target", "content-type"):
        if need not in signed:
            return "%s is not signed" % need
    lower = {k.lower(): v for k, v in headers.items()}
    token = lower.get("x-amz-security-token")
    want = sigv4_verify.botocore_authorization(
        method, "http://%s%s" % (host, path),
        {h: lower[h] for h in signed if h not in ("host", "x-amz-date", "x-amz-security-token")}, body,
        scope[0], keys[scope[0]], token, "glue", args.region, calendar.timegm(when.timetuple()))
    if want != auth:
        return "signature differs from botocore's: got %s, want %s" % (auth, want)
    return "ok"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", "glue-standin-%d" % len(log))
        self.end_headers()
        self.wfile.write(data)

    def error(self, code, kind, message):
        self.reply(code, {"__type": kind, "Message": message})

    def do_GET(self):
        if self.path == "/_requests":
            return self.reply(200, log)
        self.error(404, "UnknownOperationException", "GET %s" % self.path)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        target = self.headers.get("X-Amz-Target", "")
        sig = check_signature("POST", self.headers.get("Host", ""), self.path, dict(self.headers.items()), body)
        try:
            vid = json.loads(body).get("SchemaVersionId")
        except ValueError:
            vid = None
        log.append({"target": target, "id": vid, "signature": sig})
        if sig != "ok":
            return self.error(403, "InvalidSignatureException", sig)
        if target != "AWSGlue.GetSchemaVersion" or self.path != "/" or \
                self.headers.get("Content-Type") != "application/x-amz-json-1.1":
            return self.error(400, "UnknownOperationException", "%s %s %s" % (target, self.path,
                                                                              self.headers.get("Content-Type")))
        if args.deny:
            return self.error(400, "AccessDeniedException", "User: arn:aws:iam::123456789012:user/kinesink is not "
                              "authorized to perform: glue:GetSchemaVersion")
        state["calls"] += 1
        if state["calls"] <= args.throttle_first:
            return self.error(400, "ThrottlingException", "Rate exceeded")
        if state["calls"] <= args.throttle_first + args.fail_first:
            return self.error(500, "InternalServiceException", "injected failure")
        if not isinstance(vid, str) or vid not in versions:
            return self.error(400, "EntityNotFoundException", "Schema version is not found.")
        v = versions[vid]
        self.reply(200, {"SchemaVersionId": vid, "SchemaDefinition": v["SchemaDefinition"],
                         "DataFormat": v["DataFormat"], "Status": "AVAILABLE", "VersionNumber": v.get("VersionNumber", 1),
                         "SchemaArn": "arn:aws:glue:%s:123456789012:schema/registry/%s" % (args.region, vid),
                         "CreatedTime": "2024-01-01T00:00:00.000Z"})


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--versions", required=True)
    p.add_argument("--keys", required=True)
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--port-file")
    p.add_argument("--deny", action="store_true")
    p.add_argument("--throttle-first", type=int, default=0)
    p.add_argument("--fail-first", type=int, default=0)
    args = p.parse_args()
    with open(args.versions) as f:
        versions.update(json.load(f))
    for kv in args.keys.split(","):
        k, _, s = kv.partition(":")
        keys[k] = s
    standin_http.serve(Handler, args.port_file)


if __name__ == "__main__":
    sys.exit(main())
