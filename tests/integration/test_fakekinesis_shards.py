"""The shard model of the tests' own Kinesis endpoint (tests/tools/fakekinesis), checked with boto3
as a client and Python's own MD5 as the reference: hash ranges as CreateStream makes them, routing
by partition key or ExplicitHashKey, ListShards pages, SplitShard / MergeShards / UpdateShardCount,
per-shard write limits in both models (token buckets, calendar seconds), the stream's maximum record
size, StreamARN, --count-only's routing without a JSON parser and the --stats-file counters. The
writer's shard tests and `make bench` lean on this endpoint, so it must be right on its own."""
import hashlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import FakeKinesis, main, wait_for  # noqa: E402

MAX = 2 ** 128 - 1
ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/s1"


def client(fk):
    import boto3
    from botocore.config import Config
    return boto3.client("kinesis", endpoint_url=fk.endpoint, region_name="us-east-1",
                        aws_access_key_id="AKIDTEST", aws_secret_access_key="testsecret",
                        config=Config(retries={"max_attempts": 0}))


def shards(kc, **filt):
    """Every shard, following NextToken as the service asks (without StreamName)."""
    out, resp = [], kc.list_shards(StreamName="s1", **filt)
    pages = 1
    while True:
        out += resp["Shards"]
        if "NextToken" not in resp:
            return out, pages
        resp = kc.list_shards(NextToken=resp["NextToken"])
        pages += 1


def ranges(shard_list):
    return {s["ShardId"]: (int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"]))
            for s in shard_list if "EndingSequenceNumber" not in s["SequenceNumberRange"]}


def md5(key):
    return int.from_bytes(hashlib.md5(key.encode()).digest(), "big")


def owner(rs, h):
    hits = [sid for sid, (lo, hi) in rs.items() if lo <= h <= hi]
    assert len(hits) == 1, "hash %d in %s" % (h, hits)
    return hits[0]


def put(kc, entries):
    return kc.put_records(Records=entries, StreamName="s1")["Records"]


def call(fk, op, body):
    """A raw JSON call, for what this botocore's model lacks (StreamARN): (status, answer)."""
    import json
    import urllib.error
    import urllib.request
    req = urllib.request.Request(fk.endpoint + "/", data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202." + op})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def put_arn(fk, data, key):
    import base64
    status, answer = call(fk, "PutRecords", {"StreamARN": ARN, "Records": [
        {"Data": base64.b64encode(data).decode(), "PartitionKey": key}]})
    assert status == 200, answer
    return answer["Records"][0]


def test_ranges_routing_and_pages(tmp):
    fk = FakeKinesis(tmp, "--stream", "s1", "--shards", "3", "--list-page", "2")
    kc = client(fk)
    got, pages = shards(kc)
    assert pages == 2
    rs = ranges(got)
    # Even ranges covering the whole space, as CreateStream lays them out.
    bounds = sorted(rs.values())
    assert bounds[0][0] == 0 and bounds[-1][1] == MAX
    assert all(a[1] + 1 == b[0] for a, b in zip(bounds, bounds[1:]))
    assert bounds[0][1] == (2 ** 128) // 3 - 1
    keys = ["k%d" % i for i in range(300)]
    answers = put(kc, [{"Data": b"x", "PartitionKey": k} for k in keys])
    for k, a in zip(keys, answers):
        assert a["ShardId"] == owner(rs, md5(k)), k
    # An explicit hash key wins over the partition key.
    a = put(kc, [{"Data": b"x", "PartitionKey": "k0", "ExplicitHashKey": str(MAX)}])[0]
    assert a["ShardId"] == owner(rs, MAX)
    # The accepted log names shard and hash key.
    with open(fk.accepted_log) as f:
        lines = [ln.rstrip("\n").split("\t") for ln in f]
    assert [ln[3] for ln in lines[:300]] == [a["ShardId"] for a in answers]
    assert int(lines[-1][4]) == MAX
    # NextToken with a stream name is refused, as the service does.
    import botocore.exceptions
    try:
        kc.list_shards(StreamName="s1", NextToken="fk-1")
        raise AssertionError("NextToken with StreamName accepted")
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "InvalidArgumentException"


def test_split_merge_update(tmp):
    fk = FakeKinesis(tmp, "--stream", "s1", "--shards", "2")
    kc = client(fk)
    rs = ranges(shards(kc)[0])
    lo, hi = rs["shardId-000000000000"]
    mid = (lo + hi) // 2
    kc.split_shard(StreamName="s1", ShardToSplit="shardId-000000000000", NewStartingHashKey=str(mid))
    all_shards, _ = shards(kc)
    by_id = {s["ShardId"]: s for s in all_shards}
    assert "EndingSequenceNumber" in by_id["shardId-000000000000"]["SequenceNumberRange"]
    assert by_id["shardId-000000000002"]["ParentShardId"] == "shardId-000000000000"
    rs = ranges(all_shards)
    assert rs["shardId-000000000002"] == (lo, mid - 1) and rs["shardId-000000000003"] == (mid, hi)
    # Only open shards with the latest filter.
    latest, _ = shards(kc, ShardFilter={"Type": "AT_LATEST"})
    assert sorted(s["ShardId"] for s in latest) == ["shardId-000000000001", "shardId-000000000002",
                                                    "shardId-000000000003"]
    keys = ["key-%d" % i for i in range(200)]
    for k, a in zip(keys, put(kc, [{"Data": b"x", "PartitionKey": k} for k in keys])):
        assert a["ShardId"] == owner(rs, md5(k))
    kc.merge_shards(StreamName="s1", ShardToMerge="shardId-000000000003",
                    AdjacentShardToMerge="shardId-000000000001")
    rs = ranges(shards(kc)[0])
    assert rs["shardId-000000000004"] == (mid, MAX)
    kc.update_shard_count(StreamName="s1", TargetShardCount=4, ScalingType="UNIFORM_SCALING")
    rs = ranges(shards(kc)[0])
    assert sorted(rs.values())[1][0] == 2 ** 126 and len(rs) == 4
    s = kc.describe_stream_summary(StreamName="s1")["StreamDescriptionSummary"]
    assert s["OpenShardCount"] == 4


def test_limits_per_shard(tmp):
    # 50 records/s per shard: a burst of 200 to one key gets one second's worth through.
    fk = FakeKinesis(tmp, "--stream", "s1", "--shards", "2", "--shard-limits", "--shard-records-per-sec", "50")
    kc = client(fk)
    answers = put(kc, [{"Data": b"x", "PartitionKey": "same"} for _ in range(200)])
    ok = [a for a in answers if "SequenceNumber" in a]
    failed = [a for a in answers if a.get("ErrorCode")]
    assert 50 <= len(ok) <= 52, len(ok)
    assert all(a["ErrorCode"] == "ProvisionedThroughputExceededException" for a in failed)
    assert all(a["ShardId"] == ok[0]["ShardId"] for a in ok)
    # The other shard has its own budget.
    rs = ranges(shards(kc)[0])
    other = next(sid for sid in rs if sid != ok[0]["ShardId"])
    key = next(k for k in ("o%d" % i for i in range(1000)) if owner(rs, md5(k)) == other)
    assert all("SequenceNumber" in a for a in put(kc, [{"Data": b"x", "PartitionKey": key}] * 40))


def test_bytes_limit_and_large_records(tmp):
    fk = FakeKinesis(tmp, "--stream", "s1", "--shard-limits", "--max-record-kib", "4096")
    kc = client(fk)
    status, s = call(fk, "DescribeStreamSummary", {"StreamARN": ARN})
    s = s["StreamDescriptionSummary"]
    assert s["MaxRecordSizeInKiB"] == 4096 and s["StreamARN"] == ARN
    assert call(fk, "DescribeStreamSummary", {"StreamARN": ARN.replace("/s1", "/other")})[0] == 400
    # A 3 MiB record goes through a full bucket, then the shard is in debt.
    assert "SequenceNumber" in put_arn(fk, b"z" * (3 * 1024 * 1024), "p")
    assert put_arn(fk, b"y" * 1000, "p")["ErrorCode"] == "ProvisionedThroughputExceededException"
    import botocore.exceptions
    try:
        put(kc, [{"Data": b"z" * (4 * 1024 * 1024 + 1), "PartitionKey": "p"}])
        raise AssertionError("a record over MaxRecordSizeInKiB accepted")
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "ValidationException"


def test_partition_key_counts_characters(tmp):
    fk = FakeKinesis(tmp, "--stream", "s1")
    kc = client(fk)
    key = "\u00e9" * 256   # 512 bytes, 256 characters: valid
    assert "SequenceNumber" in put(kc, [{"Data": b"x", "PartitionKey": key}])[0]


def burst(kc, n, key="same"):
    """n entries to one key in one request: how many were accepted."""
    return sum(1 for a in put(kc, [{"Data": b"x", "PartitionKey": key}] * n) if "SequenceNumber" in a)


def bursts_across_a_second(kc):
    """A burst late in one second of the endpoint's clock (CLOCK_MONOTONIC, as Python's monotonic
    clock on Linux), and one just after the next second began: what each got through."""
    wait_for(lambda: 0.80 <= time.monotonic() % 1 < 0.9, 5, "the clock late in a second", interval=0.005)
    sec = int(time.monotonic())
    first = burst(kc, 200)
    wait_for(lambda: int(time.monotonic()) > sec, 5, "the next second", interval=0.002)
    second = burst(kc, 200)
    assert int(time.monotonic()) - sec <= 1 and time.monotonic() % 1 < 0.5, "too slow to measure: rerun"
    return first, second


def test_limit_models(tmp):
    # 50 records/s per shard. Counted per calendar second, a new second takes a full 50 at once;
    # a token bucket holding one second has refilled only what the time since gave it.
    fk = FakeKinesis(tmp, "--stream", "s1", "--shard-limits", "--shard-records-per-sec", "50",
                     "--limit-model", "window")
    first, second = bursts_across_a_second(client(fk))
    assert first == 50 and second == 50, (first, second)
    fk.stop()
    fk = FakeKinesis(tmp, "--stream", "s1", "--shard-limits", "--shard-records-per-sec", "50")
    first, second = bursts_across_a_second(client(fk))
    assert first == 50 and second <= 35, (first, second)
    fk.stop()
    import subprocess
    from harness import FAKEKINESIS
    p = subprocess.run([FAKEKINESIS, "--limit-model", "seconds"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "--limit-model window or bucket, not seconds" in p.stderr, p


KEYS = ["k%d" % i for i in range(200)] + ['quote"d', "back\\slash", "tab\tnl\n", "\u00e9t\u00e9", "emoji \U0001F600",
                                          "slash/", "{\"id\":42}"]


def test_count_only_routes_and_counts(tmp):
    # --count-only reads the request text without a JSON parser: each entry's shard, as the full
    # path (and Python's MD5) route it, keys with escapes and \\u sequences (botocore writes
    # non-ASCII that way) included; the limits and the --stats-file counters per shard.
    full = FakeKinesis(tmp, "--stream", "s1", "--shards", "8")
    want = [a["ShardId"] for a in put(client(full), [{"Data": b"x", "PartitionKey": k} for k in KEYS])]
    rs = ranges(shards(client(full))[0])
    full.stop()
    assert want == [owner(rs, md5(k)) for k in KEYS]
    stats = tmp.file("stats.json")
    fk = FakeKinesis(tmp, "--stream", "s1", "--shards", "8", "--count-only", "--shard-limits",
                     "--shard-records-per-sec", "50", "--limit-model", "window", "--stats-file", stats)
    kc = client(fk)
    got = put(kc, [{"Data": b"x" * 10, "PartitionKey": k} for k in KEYS])
    assert [a.get("ShardId") for a in got] == want
    explicit = put(kc, [{"Data": b"x", "PartitionKey": "k0", "ExplicitHashKey": str(MAX)}])[0]
    assert explicit["ShardId"] == owner(rs, MAX)
    # One shard's limit: 50 in a second, the rest throttled as the service answers them.
    n = 500 - 1
    hot = put(kc, [{"Data": b"y", "PartitionKey": "hot"}] * n)
    ok = [a for a in hot if "SequenceNumber" in a]
    shard = owner(rs, md5("hot"))
    before = sum(1 for k, sid in zip(KEYS, want) if sid == shard) + (shard == explicit["ShardId"])
    assert 50 - before - 1 <= len(ok) <= 50 - before + 50, (len(ok), before)
    assert all(a["ErrorCode"] == "ProvisionedThroughputExceededException" and shard in a["ErrorMessage"]
               for a in hot if "SequenceNumber" not in a)
    fk.stop()
    with open(stats) as f:
        st = json.load(f)
    per = {s["id"]: s for s in st["shards"]}
    assert st["limit_model"] == "window" and st["accepted"] == len(KEYS) + 1 + len(ok)
    assert per[shard]["throttled"] == n - len(ok) and st["failed_entries"] == n - len(ok)
    assert sum(s["throttled"] for s in st["shards"]) == n - len(ok)
    for sid in rs:
        assert per[sid]["accepted"] == sum(1 for w in want if w == sid) + (sid == explicit["ShardId"]) + \
            (len(ok) if sid == shard else 0), sid
    assert per[shard]["bytes"] == sum(10 + len(k.encode()) for k, w in zip(KEYS, want) if w == shard) + \
        (1 + 2 if shard == explicit["ShardId"] else 0) + len(ok) * (1 + 3)
    assert 0 < per[shard]["first_ms"] <= per[shard]["last_ms"]
    # A body it cannot read is refused, not counted.
    status, answer = call(FakeKinesis(tmp, "--count-only", "--shards", "2"), "PutRecords",
                          {"StreamName": "s1", "Records": [{"Data": "eA==", "PartitionKey": ""}]})
    assert status == 400 and answer["__type"] == "ValidationException", answer


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
