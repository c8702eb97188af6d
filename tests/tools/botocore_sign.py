#!/usr/bin/python3
"""Signs a request with botocore's SigV4Auth (the independent reference) at a fixed time and
prints the canonical request, the string to sign and the Authorization header, separated by
lines of "----". Input: a JSON spec on stdin:
{"method","url","headers":{...},"body_b64","region","service","akid","secret","token","time":epoch}"""
import base64
import datetime
import json
import sys
from unittest import mock

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

spec = json.load(sys.stdin)
body = base64.b64decode(spec.get("body_b64", ""))
req = AWSRequest(method=spec["method"], url=spec["url"], data=body, headers=spec.get("headers", {}))
auth = SigV4Auth(Credentials(spec["akid"], spec["secret"], spec.get("token")), spec["service"], spec["region"])
fixed = datetime.datetime.utcfromtimestamp(spec["time"])
with mock.patch("botocore.auth.datetime") as dt:
    dt.datetime.utcnow.return_value = fixed
    auth.add_auth(req)
    authorization = req.headers["Authorization"]
    # What was signed is the request as it was before the Authorization header was added.
    del req.headers["Authorization"]
    creq = auth.canonical_request(req)
    sts = auth.string_to_sign(req, creq)
sys.stdout.write(creq + "\n----\n" + sts + "\n----\n" + authorization + "\n")
