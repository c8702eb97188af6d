#!/usr/bin/env python3
"""Read a stream written by kinesink with input.format = raw and raw.envelope = kafka, and turn
each record back into the Kafka record it came from: topic, partition, offset, timestamp (and its
type), key, headers and value, the bytes exactly as Kafka held them.

    python3 mirror_consumer.py --stream events-mirror [--region us-east-1] [--endpoint-url URL]

prints one line per record. Use to_record() in your own consumer (it needs only the standard
library; reading the stream needs boto3).

The envelope (see docs/configuration.md, raw.envelope): a JSON object with "topic", "partition",
"offset", "timestamp" (ms, null when Kafka had none), "timestamp_type" ("create", "log-append" or
null), "headers" (an array, in order, of {"key": name, "value" | "value_base64": ...}), and the
record's key and value each either as "key" / "value" (JSON, or null for a null key / value) or
"key_base64" / "value_base64" (the bytes in base64). kinesink writes bytes as JSON only when they
are JSON exactly as it writes JSON (compact, object keys sorted, numbers in their shortest form),
so canonical_json() below gives the same bytes back.
"""
import argparse
import base64
import json
import math
import sys
from decimal import Decimal


def _real(v):
    """A double as kinesink writes it (ryu's layout of the shortest round-trip digits)."""
    if not math.isfinite(v):
        return "null"
    sign = "-" if math.copysign(1.0, v) < 0 else ""
    if v == 0:
        return sign + "0.0"
    t = Decimal(repr(abs(v))).normalize().as_tuple()
    digits = "".join(map(str, t.digits))
    n = len(digits)
    kk = t.exponent + n  # position of the decimal point: 10^(kk-1) <= |v| < 10^kk
    if n <= kk <= 16:
        return sign + digits + "0" * (kk - n) + ".0"
    if 0 < kk <= 16:
        return sign + digits[:kk] + "." + digits[kk:]
    if -5 < kk <= 0:
        return sign + "0." + "0" * -kk + digits
    return sign + digits[0] + ("." + digits[1:] if n > 1 else "") + "e%d" % (kk - 1)


def canonical_json(v):
    """JSON text of v as kinesink writes it: compact, object keys sorted, UTF-8 unescaped."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _real(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ",".join(canonical_json(x) for x in v) + "]"
    if isinstance(v, dict):
        # Sorted by the keys' UTF-8 bytes, which is code point order.
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + canonical_json(v[k])
                              for k in sorted(v)) + "}"
    raise TypeError("not a JSON value: %r" % (v,))


def _bytes(obj, name):
    """The bytes of field `name` of an envelope object (None for a null key or value)."""
    if name + "_base64" in obj:
        return base64.b64decode(obj[name + "_base64"], validate=True)
    v = obj[name]
    return None if v is None else canonical_json(v).encode("utf-8")


def to_record(data):
    """One Kinesis record's data (bytes) -> the Kafka record, as a dict: topic, partition, offset,
    timestamp, timestamp_type, key (bytes or None), value (bytes or None), headers (a list of
    (name, bytes or None) in order)."""
    env = json.loads(data)
    headers = []
    for h in env["headers"]:
        name = h["key"] if "key" in h else base64.b64decode(h["key_base64"]).decode("utf-8", "surrogateescape")
        headers.append((name, _bytes(h, "value")))
    return {
        "topic": env["topic"],
        "partition": env["partition"],
        "offset": env["offset"],
        "timestamp": env["timestamp"],
        "timestamp_type": env["timestamp_type"],
        "key": _bytes(env, "key"),
        "value": _bytes(env, "value"),
        "headers": headers,
    }


def read_stream(client, stream):
    """Every record of every shard of `stream` from the oldest, as (partition key, data), until
    each shard is caught up. client: a boto3 Kinesis client."""
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        it = client.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                       ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            r = client.get_records(ShardIterator=it, Limit=10000)
            for rec in r["Records"]:
                yield rec["PartitionKey"], rec["Data"]
            if not r["Records"] and r.get("MillisBehindLatest", 0) == 0:
                break
            it = r.get("NextShardIterator")


def main():
    import boto3
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stream", required=True)
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--endpoint-url")
    a = ap.parse_args()
    client = boto3.client("kinesis", region_name=a.region, endpoint_url=a.endpoint_url)
    for _, data in read_stream(client, a.stream):
        r = to_record(data)
        show = lambda b: None if b is None else b.decode("utf-8", "backslashreplace")  # noqa: E731
        print("%s [%d] @%d ts=%s(%s) key=%r value=%r headers=%r" % (
            r["topic"], r["partition"], r["offset"], r["timestamp"], r["timestamp_type"], show(r["key"]),
            show(r["value"]), [(n, show(v)) for n, v in r["headers"]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
