"""The stream as the service describes it, end to end against the tests' own Kinesis endpoint
(tests/tools/fakekinesis) and the mock Kafka cluster over TCP: the stream's own maximum record
size (DescribeStreamSummary's MaxRecordSizeInKiB) for large records, a stream named by its ARN, and
its open shards listed page by page (ListShards), a ListShards refused (IAM, throttled), the
per-shard write limits kept by the shard-aware writer, and a stream whose
RecordDistributionStrategy is AUTO (partition keys ignored)."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import (FakeKinesis, Kinesink, MockCluster, base_config, check_stream, debezium_event,  # noqa: E402
                     free_port, http_get, keyed_updates, main, run_kinesink, wait_for)

MIB = 1024 * 1024


def rows(n, start=0, part=0):
    return [(json.dumps({"id": i}, separators=(",", ":")), debezium_event("c", None, {"id": i, "v": 1}), part)
            for i in range(start, start + n)]


def big(ident, blob_bytes, part=0):
    """A record whose upsert output is a little over blob_bytes."""
    return (json.dumps({"id": ident}, separators=(",", ":")),
            debezium_event("c", None, {"id": ident, "blob": "x" * blob_bytes}), part)


def run_big(tmp, fk_args, records, parts=1):
    cluster = MockCluster(tmp, topics={"t": parts})
    fk = FakeKinesis(tmp, *fk_args)
    cluster.produce("t", records)
    rc, log = run_kinesink(tmp, base_config(cluster, fk.endpoint, type="upsert", topic="t",
                                            **{"errors.policy": "skip"}), timeout=120)
    assert rc == 0, log[-3000:]
    assert cluster.committed("kinesink", "t", parts) == {p: sum(1 for r in records if r[2] == p) for p in range(parts)}
    return fk, log


def test_large_records_up_to_the_streams_limit(tmp):
    # A 3 MiB record fits a 4 MiB stream and is delivered whole; one of 4.5 MiB is over it: a bad
    # record, skipped, the message naming the limit. (The mock cluster keeps 5 MiB a partition:
    # one big record in each.)
    records = (rows(2) + [big(100, 3 * MIB)] + rows(1, start=2) +
               rows(1, start=3, part=1) + [big(101, 4608 * 1024, part=1)] + rows(1, start=4, part=1))
    fk, log = run_big(tmp, ["--stream", "s1", "--max-record-kib", "4096"], records, parts=2)
    assert "records up to 4096 KiB" in log, log[-3000:]
    accepted = dict(fk.accepted())
    assert sorted(accepted) == sorted(['{"id":%d}' % i for i in range(5)] + ['{"id":100}']), sorted(accepted)
    assert json.loads(accepted['{"id":100}']) == {"id": 100, "blob": "x" * (3 * MIB)}
    assert "t [1] @1: record too large:" in log and "exceed Kinesis' 4 MiB (4194304 bytes) per record, " \
        "the stream's maximum record size" in log, log[-3000:]


def test_default_stream_keeps_1_mib(tmp):
    records = rows(2) + [big(100, 3 * MIB)] + rows(2, start=2)
    fk, log = run_big(tmp, ["--stream", "s1"], records)
    assert "records up to 1024 KiB" in log, log[-3000:]
    assert "t [0] @2: record too large:" in log and "exceed Kinesis' 1 MiB" in log, log[-3000:]
    assert sorted(k for k, _ in fk.accepted()) == sorted('{"id":%d}' % i for i in range(4))


def test_stream_arn_names_stream_and_region(tmp):
    # No aws.region: the region comes from the ARN (the endpoint checks the signature, region
    # included), and every request names the stream by StreamARN (the endpoint checks its name).
    cluster = MockCluster(tmp, topics={"t": 1})
    fk = FakeKinesis(tmp, "--stream", "s1", "--verify-sigv4", "AKIDTEST:testsecret")
    records = rows(20)
    cluster.produce("t", records)
    conf = base_config(cluster, fk.endpoint, stream="arn:aws:kinesis:us-east-1:123456789012:stream/s1",
                       type="upsert", topic="t")
    del conf["aws.region"]
    rc, log = run_kinesink(tmp, conf)
    assert rc == 0, log[-3000:]
    assert "stream 'arn:aws:kinesis:us-east-1:123456789012:stream/s1' in us-east-1 is ready" in log, log[-3000:]
    assert sorted(k for k, _ in fk.accepted()) == sorted(k for k, _, _ in records)
    assert cluster.committed("kinesink", "t", 1) == {0: 20}


def test_stream_arn_of_another_stream_is_refused(tmp):
    cluster = MockCluster(tmp, topics={"t": 1})
    fk = FakeKinesis(tmp, "--stream", "s1")
    cluster.produce("t", rows(2))
    conf = base_config(cluster, fk.endpoint, stream="arn:aws:kinesis:us-east-1:123456789012:stream/other",
                       type="upsert", topic="t")
    rc, log = run_kinesink(tmp, conf)
    assert rc != 0 and "DescribeStreamSummary of stream 'arn:aws:kinesis:us-east-1:123456789012:stream/other'" in log, \
        log[-3000:]
    assert fk.accepted() == []


def test_open_shards_listed_page_by_page(tmp):
    # 5 shards, 2 a page: three ListShards calls, the last two with NextToken alone (the endpoint
    # refuses a NextToken together with the stream, as the service does).
    cluster = MockCluster(tmp, topics={"t": 1})
    fk = FakeKinesis(tmp, "--stream", "s1", "--shards", "5", "--list-page", "2")
    cluster.produce("t", rows(3))
    port = free_port()
    k = Kinesink(tmp, base_config(cluster, fk.endpoint, type="upsert", topic="t",
                                  **{"metrics.listen": "127.0.0.1:%d" % port}))
    wait_for(lambda: "stream 's1' has 5 open shards" in k.log(), 30, "the open shards in the log")
    _, text = http_get("http://127.0.0.1:%d/metrics" % port)
    assert "\nkinesink_stream_open_shards 5\n" in text, text
    wait_for(lambda: len(fk.accepted()) == 3, 30, "the records")
    assert k.stop(timeout=30) == 0, k.log()[-3000:]
    assert "without the shard map" not in k.log()


def test_list_shards_denied_writes_on_without_the_map(tmp):
    # An IAM policy with PutRecords but not ListShards: a warning with the service's reason, and
    # every record written all the same (without the shard map, so without per-shard pacing).
    cluster = MockCluster(tmp, topics={"t": 1})
    fk = FakeKinesis(tmp, "--stream", "s1", "--shards", "2", "--list-shards-error", "AccessDeniedException")
    cluster.produce("t", rows(20))
    rc, log = run_kinesink(tmp, base_config(cluster, fk.endpoint, type="upsert", topic="t"))
    assert rc == 0, log[-3000:]
    assert "AccessDeniedException" in log and "not authorized to perform: kinesis:ListShards" in log, log[-3000:]
    assert "writing on without the shard map" in log, log[-3000:]
    assert sorted(k for k, _ in fk.accepted()) == sorted(k for k, _, _ in rows(20))
    assert cluster.committed("kinesink", "t", 1) == {0: 20}


def test_list_shards_throttled_then_listed_again(tmp):
    # The first ListShards (at start) is throttled: the worker writes on without the map, lists
    # again after shards.refresh.ms and then knows the stream's 3 shards.
    cluster = MockCluster(tmp, topics={"t": 1})
    fk = FakeKinesis(tmp, "--stream", "s1", "--shards", "3", "--list-shards-error", "LimitExceededException:1")
    cluster.produce("t", rows(20))
    port = free_port()
    k = Kinesink(tmp, base_config(cluster, fk.endpoint, type="upsert", topic="t", **{
        "shards.refresh.ms": "300", "metrics.listen": "127.0.0.1:%d" % port}))
    wait_for(lambda: "writing on without the shard map" in k.log() or not k.alive(), 30, "the refused listing")
    assert "LimitExceededException" in k.log(), k.log()[-3000:]
    wait_for(lambda: "\nkinesink_stream_open_shards 3\n" in http_get("http://127.0.0.1:%d/metrics" % port)[1]
             or not k.alive(), 30, "the shards listed again")
    wait_for(lambda: len(fk.accepted()) == 20 or not k.alive(), 30, "the records")
    assert k.stop(timeout=30) == 0, k.log()[-3000:]


def fakekinesis_counters(fk):
    """Stop the endpoint and read the counters it prints on exit: {"accepted": n, "failed_entries": n, ...}."""
    fk.stop()
    line = [l for l in fk.log().splitlines() if l.startswith("requests ")][-1].split()
    return {line[i]: int(line[i + 1]) for i in range(0, len(line) - 1, 2)}


def padded_updates(n, keys, parts, pad):
    """keyed_updates whose rows carry pad bytes more: records of about pad bytes."""
    out = []
    for key, value, part in keyed_updates(n, keys, parts):
        ev = json.loads(value)
        ev["after"]["pad"] = "x" * pad
        out.append((key, json.dumps(ev), part))
    return out


def test_shard_limits_kept_end_to_end(tmp):
    # The real binary against an endpoint that enforces each shard's write limits as the service
    # does (--shard-limits: 1,000 records and 1 MiB a second, buckets holding one second). 2,000
    # records of 4 KiB are 8 MB for 2 shards: 4 s at the limits. With the shard map the writer
    # paces each shard under its limits, so few entries are refused, and every record goes once,
    # per key in order.
    cluster = MockCluster(tmp, topics={"t": 2})
    fk = FakeKinesis(tmp, "--stream", "s1", "--shards", "2", "--shard-limits")
    msgs = padded_updates(2000, 200, 2, 4000)
    cluster.produce("t", msgs)
    rc, log = run_kinesink(tmp, base_config(cluster, fk.endpoint, type="upsert", topic="t"), timeout=120)
    assert rc == 0, log[-3000:]
    assert "stream 's1' has 2 open shards" in log, log[-3000:]
    check_stream(fk.accepted(), msgs, exactly_once=True)
    assert cluster.committed("kinesink", "t", 2) == {0: 1000, 1: 1000}
    c = fakekinesis_counters(fk)
    assert c["accepted"] == 2000, c
    # Without the pacing (rate.limit.percent = 0) about 60 % of the entries are refused; with it,
    # 1 to 5 % were (measured), entries of the first second and of buckets drifting apart.
    assert c["failed_entries"] <= 200, c
KPL_MAGIC = b"\xf3\x89\x9a\xc2"


def test_auto_stream_refuses_per_key_order(tmp):
    # type=upsert promises each key's changes in order; a stream that ignores partition keys
    # cannot keep it: refused at start, the message naming the strategy and the way out.
    cluster = MockCluster(tmp, topics={"t": 1})
    fk = FakeKinesis(tmp, "--stream", "s1", "--shards", "4", "--auto")
    cluster.produce("t", rows(5))
    rc, log = run_kinesink(tmp, base_config(cluster, fk.endpoint, type="upsert", topic="t"))
    assert rc == 1, log[-3000:]
    assert "has RecordDistributionStrategy AUTO" in log and "type=upsert cannot keep each key's changes in order" \
        in log and "ordering = none" in log, log[-3000:]
    assert fk.accepted() == []
    assert cluster.committed("kinesink", "t", 1).get(0, -1) < 0


def test_auto_stream_written_without_aggregation(tmp):
    # With ordering=none, or an append-only type, the records go as they come: each a Kinesis
    # record of its own (an aggregate's records would be dropped by a KCL consumer wherever the
    # service put it outside their hash key's shard), all delivered and committed.
    for i, (typ, extra) in enumerate([("upsert", {"ordering": "none"}), ("append-only", {"aggregation": "kpl", "force_append_only": "true"})]):
        cluster = MockCluster(tmp, topics={"t%d" % i: 1})
        fk = FakeKinesis(tmp, "--stream", "s1", "--shards", "4", "--auto")
        records = rows(200)
        cluster.produce("t%d" % i, records)
        rc, log = run_kinesink(tmp, base_config(cluster, fk.endpoint, type=typ, topic="t%d" % i, **extra))
        assert rc == 0, log[-3000:]
        assert "RecordDistributionStrategy AUTO: Kinesis ignores partition keys; writing without" in log, log[-3000:]
        accepted = fk.accepted()
        assert len(accepted) == 200 and not any(d.startswith(KPL_MAGIC) for _, d in accepted), accepted[:3]
        assert cluster.committed("kinesink", "t%d" % i, 1) == {0: 200}
        fk.stop()
        cluster.stop()


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_") and callable(f)])
