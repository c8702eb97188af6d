#!/usr/bin/python3
"""Signs a request with botocore (the independent reference) at a fixed time and prints the
canonical request, the string to sign and the Authorization header, separated by lines of "----".
Input: a JSON spec on stdin:
{"method","url","headers":{...},"body_b64","region","service","akid","secret","token","time":epoch}
With "expires" (seconds) in the spec the request is presigned with SigV4QueryAuth instead, and
the third part is the presigned URL."""
import base64
import json
import os
import sys

from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sigv4_verify import fixed_clock  # noqa: E402


def main():
    spec = json.load(sys.stdin)
    body = base64.b64decode(spec.get("body_b64", ""))
    req = AWSRequest(method=spec["method"], url=spec["url"], data=body, headers=spec.get("headers", {}))
    creds = Credentials(spec["akid"], spec["secret"], spec.get("token"))
    presign = "expires" in spec
    if presign:
        auth = SigV4QueryAuth(creds, spec["service"], spec["region"], expires=spec["expires"])
    else:
        auth = SigV4Auth(creds, spec["service"], spec["region"])
    with fixed_clock(spec["time"]):
        auth.add_auth(req)
        if presign:
            third = req.url
            # What was signed is the URL as it was before the signature was appended.
            req.url = req.url[:req.url.rindex("&X-Amz-Signature=")]
        else:
            third = req.headers["Authorization"]
            # What was signed is the request as it was before the Authorization header was added.
            del req.headers["Authorization"]
        creq = auth.canonical_request(req)
        sts = auth.string_to_sign(req, creq)
    sys.stdout.write(creq + "\n----\n" + sts + "\n----\n" + third + "\n")


main()
