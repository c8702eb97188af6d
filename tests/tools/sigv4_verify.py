#!/usr/bin/python3
"""Checks a request's AWS SigV4 Authorization header with botocore (the independent reference),
as the service does: the credential scope must name the region and service the endpoint serves
(not whatever the request claims), the access key must be known, and botocore signing the same
request (the headers the request says it signed, its X-Amz-Date, its session token) with that
key's secret must give exactly the same header.

As a module: check(method, url, headers, body, secrets, region, service) is None when the
signature holds, else the reason, in the service's words where it has them;
botocore_authorization(...) is the Authorization header botocore signs a request with at a given
time, and fixed_clock(epoch) sets botocore's clock (tests/tools/glue_standin.py and
tests/tools/botocore_sign.py use them).

As a process, for endpoints written in C (tests/tools/fakekinesis.c):

  sigv4_verify.py --serve --region R --service S --key AKID:SECRET [--key ...]

reads one JSON object a line, {"method", "url", "headers": {...}, "body_b64"}, and answers each
with a line "OK" or "FAIL <reason>".
"""
import argparse
import base64
import calendar
import datetime
import json
import re
import sys
import time
from unittest import mock

import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                  r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")
# botocore adds these itself when it signs: from its clock and from the credentials.
ADDED_BY_SIGNER = ("x-amz-date", "x-amz-security-token")


def fixed_clock(epoch):
    """Patches botocore's clock: get_current_datetime in current releases, datetime.utcnow in
    older ones."""
    fixed = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).replace(tzinfo=None)
    if hasattr(botocore.auth, "get_current_datetime"):
        return mock.patch("botocore.auth.get_current_datetime", return_value=fixed)
    return mock.patch("botocore.auth.datetime", **{"datetime.utcnow.return_value": fixed})


def botocore_authorization(method, url, headers, body, akid, secret, token, service, region, epoch):
    """The Authorization header botocore signs the request with (headers as given, without
    X-Amz-Date and X-Amz-Security-Token, which it adds itself) at time epoch."""
    req = AWSRequest(method=method, url=url, data=body, headers=headers)
    with fixed_clock(epoch):
        SigV4Auth(Credentials(akid, secret, token), service, region).add_auth(req)
    return req.headers["Authorization"]


def check(method, url, headers, body, secrets, region, service):
    """None when the request's signature is botocore's for a key of secrets ({akid: secret}) in
    region for service; else why not."""
    h = {k.lower(): v for k, v in headers.items()}
    m = AUTH.match(h.get("authorization", ""))
    if not m:
        return "Authorization header malformed or missing"
    akid, day, scope_region, scope_service, signed, _ = m.groups()
    if scope_region != region:
        return "Credential should be scoped to a valid region, not '%s' (this endpoint is %s)" % (scope_region, region)
    if scope_service != service:
        return "Credential should be scoped to correct service: '%s', not '%s'" % (service, scope_service)
    if akid not in secrets:
        return "The security token included in the request is invalid (unknown access key %s)" % akid
    date = h.get("x-amz-date", "")
    try:
        epoch = calendar.timegm(time.strptime(date, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        return "X-Amz-Date missing or malformed: %r" % date
    if not date.startswith(day):
        return "Credential date %s is not the day of X-Amz-Date %s" % (day, date)
    names = signed.split(";")
    if "host" not in names:
        return "host is not among the signed headers"
    missing = [n for n in names if n not in h]
    if missing:
        return "signed headers missing from the request: %s" % ",".join(missing)
    want = botocore_authorization(method, url, {n: h[n] for n in names if n not in ADDED_BY_SIGNER}, body, akid,
                                  secrets[akid], h.get("x-amz-security-token"), service, region, epoch)
    if want != h["authorization"]:
        return "The request signature we calculated does not match the signature you provided."
    return None


def serve(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--serve", action="store_true", required=True)
    p.add_argument("--region", required=True)
    p.add_argument("--service", required=True)
    p.add_argument("--key", action="append", default=[])
    a = p.parse_args(argv)
    secrets = dict(k.split(":", 1) for k in a.key)
    for line in sys.stdin:
        try:
            r = json.loads(line)
            why = check(r["method"], r["url"], r["headers"], base64.b64decode(r.get("body_b64", "")), secrets,
                        a.region, a.service)
        except Exception as e:  # a request we cannot even read is refused, with the reason
            why = "cannot check the request: %r" % e
        sys.stdout.write("OK\n" if why is None else "FAIL " + why.replace("\n", " ") + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve(sys.argv[1:])
