"""kinesink's SigV4 signer against botocore's, byte for byte: canonical request, string to sign
and Authorization, for Kinesis and STS requests with varied bodies, hosts with ports, session
tokens and regions; and the query signer (presigned URLs) against botocore's SigV4QueryAuth:
canonical request, string to sign and the whole URL."""
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
    assert len(ours) == 3 and len(boto) == 3, (ours, boto)
    third = "presigned URL" if "expires" in spec else "Authorization"
    for part, a, b in zip(("canonical request", "string to sign", third), ours, boto):
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


def presign(url, token=None, region="us-east-1", service="kafka-cluster", expires=900, headers=None,
            time=1795000000, akid="AKIDEXAMPLE", secret="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"):
    s = spec(url, headers=headers or {}, token=token, region=region, service=service, method="GET", time=time)
    s.update(expires=expires, akid=akid, secret=secret)
    return s


def test_presigned_msk_connect(tmp):
    """The request MSK IAM tokens are made of, in several regions, with and without a session token."""
    for region in ("us-east-1", "eu-west-1", "ap-southeast-2", "cn-north-1"):
        url = "https://kafka.%s.amazonaws.com/?Action=kafka-cluster%%3AConnect" % region
        compare(presign(url, region=region))
        compare(presign(url, region=region, token="IQoJb3JpZ2luX2VjEXAMPLE//token+with/chars=="))


def test_presigned_unusual_characters(tmp):
    """Session tokens, keys and query values with characters that must be percent-encoded once."""
    compare(presign("https://kafka.us-east-1.amazonaws.com/?Action=kafka-cluster%3AConnect",
                    token="a b+c/d=e&f?g%h~i_j.k-l\u00e9"))
    compare(presign("https://kafka.us-east-1.amazonaws.com/?Action=kafka-cluster%3AConnect",
                    akid="ASIA/+=EXAMPLE", secret="s/+= ecret"))
    compare(presign("https://example.amazonaws.com/a%20b/c?z=1&a=%2F%20x&m=%7E~&e=", service="service"))
    compare(presign("https://example.amazonaws.com/?Action=List&Version=2020-01-01&Name=caf%C3%A9",
                    service="service", headers={"X-Amz-Meta": "  a   b "}))


def test_presigned_expiries_and_times(tmp):
    url = "https://kafka.us-west-2.amazonaws.com/?Action=kafka-cluster%3AConnect"
    for expires, t in ((1, 0), (900, 1700000000), (3600, 1795000000), (604800, 2000000000)):
        compare(presign(url, region="us-west-2", expires=expires, time=t))


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
