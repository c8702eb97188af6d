"""The shard model of the tests' own Kinesis endpoint (tests/tools/fakekinesis), checked with boto3
as a client and Python's own MD5 as the reference: hash ranges as CreateStream makes them, routing
by partition key or ExplicitHashKey, ListShards pages, SplitShard / MergeShards / UpdateShardCount,
per-shard write limits, the stream's maximum record size, and StreamARN. The writer's shard tests
lean on this endpoint, so it must be right on its own."""
import hashlib
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import FakeKinesis, main  # noqa: E402

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


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
