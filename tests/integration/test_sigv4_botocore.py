"""kinesink's SigV4 signer against botocore's, byte for byte: canonical request, string to sign
and Authorization, for Kinesis and STS requests with varied bodies, hosts with ports, session
tokens and regions."""
import base64
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import BUILDDIR, SRCDIR, main  # noqa: E402

OURS = os.path.join(BUILDDIR, "tests", "tools", "sigv4_sign")
BOTO = os.path.join(SRCDIR, "tests", "tools", "botocore_sign.py")
KINESIS_HEADERS = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202.PutRecords"}


def sign(cmd, spec):
    return subprocess.run(cmd, input=json.dumps(spec), capture_output=True, text=True, check=True, timeout=30).stdout


def compare(spec):
    ours = sign([OURS], spec).split("\n----\n")
    boto = sign(["/usr/bin/python3", BOTO], spec).split("\n----\n")
    for part, a, b in zip(("canonical request", "string to sign", "Authorization"), ours, boto):
        assert a.strip("\n") == b.strip("\n"), "%s differs for %s:\n--- kinesink\n%s\n--- botocore\n%s" % (
            part, json.dumps(spec)[:200], a, b)


def spec(url, body=b"", headers=None, token=None, region="us-east-1", service="kinesis", method="POST",
         time=1795000000):
    return {"method": method, "url": url, "headers": headers if headers is not None else KINESIS_HEADERS,
            "body_b64": base64.b64encode(body).decode(), "region": region, "service": service,
            "akid": "AKIDEXAMPLE", "secret": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "token": token,
            "time": time}


def put_records_body(n, size):
    recs = [{"Data": base64.b64encode(bytes((i * 7 + j) % 256 for j in range(size))).decode(),
             "PartitionKey": '{"id":%d}' % i} for i in range(n)]
    return json.dumps({"StreamName": "orders", "Records": recs}, separators=(",", ":")).encode()


def test_kinesis_put_records_bodies(tmp):
    for body in (b"", b"{}", put_records_body(3, 10), put_records_body(500, 40), put_records_body(1, 1024 * 1024)):
        compare(spec("https://kinesis.us-east-1.amazonaws.com/", body))


def test_hosts_with_ports_and_regions(tmp):
    compare(spec("http://127.0.0.1:4567/", put_records_body(2, 5)))
    compare(spec("http://localhost:80/", b"{}"))
    compare(spec("https://kinesis.eu-west-1.amazonaws.com:443/", b"{}", region="eu-west-1"))
    compare(spec("https://kinesis.cn-north-1.amazonaws.com.cn/", b"{}", region="cn-north-1"))


def test_session_tokens(tmp):
    compare(spec("https://kinesis.us-east-1.amazonaws.com/", b"{}", token="FQoGZXIvYXdzEXAMPLE//token+with/chars=="))
    compare(spec("http://127.0.0.1:4567/", put_records_body(2, 5), token="short"))


def test_header_values_trimmed_and_folded(tmp):
    compare(spec("https://kinesis.us-east-1.amazonaws.com/", b"{}",
                 headers=dict(KINESIS_HEADERS, **{"X-Custom": "  a   b  c  "})))


def test_sts_query_requests(tmp):
    form = "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fkinesink&RoleSessionName=kinesink-1&ExternalId=ext%2Fid"
    compare(spec("https://sts.us-east-1.amazonaws.com/", form.encode(), service="sts",
                 headers={"Content-Type": "application/x-www-form-urlencoded"}))
    compare(spec("https://example.amazonaws.com/?Param2=value2&Param1=value1&Param1=Value0&e=%2F%20x",
                 method="GET", headers={}, service="service"))


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
