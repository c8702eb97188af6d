#!/usr/bin/python3
"""Signs a request with botocore (the independent reference) at a fixed time and prints the
canonical request, the string to sign and the Authorization header, separated by lines of "----".
Input: a JSON spec on stdin:
{"method","url","headers":{...},"body_b64","region","service","akid","secret","token","time":epoch}
With "expires" (seconds) in the spec the request is presigned with SigV4QueryAuth instead, and
the third part is the presigned URL."""
import base64
import datetime
import json
import sys
from unittest import mock

import botocore.auth
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def fixed_clock(epoch):
    """Patches botocore's clock: get_current_datetime in current releases, datetime.utcnow in
    older ones."""
    fixed = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).replace(tzinfo=None)
    if hasattr(botocore.auth, "get_current_datetime"):
        return mock.patch("botocore.auth.get_current_datetime", return_value=fixed)
    return mock.patch("botocore.auth.datetime", **{"datetime.utcnow.return_value": fixed})


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
