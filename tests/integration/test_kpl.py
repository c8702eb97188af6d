"""KPL aggregation (aggregation=kpl) end to end: the records queued behind a key's record travel
with it in one aggregated Kinesis record. Read back from kinesis-mock and taken apart by the awslabs
deaggregator (npm aws-kinesis-agg, with the KCL's rule that drops a user record hashing outside its
shard), then under faults against the tests' own endpoint: every record once, in key order, none
dropped, all committed."""
import base64
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import (FakeKinesis, KinesisMock, MockCluster, base_config, check_once_in_order, deaggregate, main,  # noqa: E402
                     per_partition, run_kinesink)
from harness import keyed_updates as harness_keyed_updates  # noqa: E402

PARTS = 4
MAGIC = b"\xf3\x89\x9a\xc2"
ALL = {"shard": "shardId-000000000000", "start": "0", "end": str(2 ** 128 - 1)}


def user_records(records):
    """(partition_key, data) of every user record, in order; none may be one a KCL consumer drops."""
    user = deaggregate(records)
    dropped = [(r["shard"], r["partitionKey"]) for r in user if r["dropped"]]
    assert not dropped, "user records a KCL consumer drops: %s" % dropped[:5]
    return [(r["partitionKey"], r["data"]) for r in user]


def accepted_records(fk):
    """What the single-shard fake endpoint accepted, as deaggregate() takes it."""
    return [dict(ALL, seq=str(i), partitionKey=k, data=base64.b64encode(d).decode())
            for i, (k, d) in enumerate(fk.accepted())]


def keyed_updates(n, keys):
    return harness_keyed_updates(n, keys, PARTS)


def test_aggregated_records_read_back_from_kinesis_mock(tmp):
    cluster = MockCluster(tmp, topics={"t": PARTS})
    km = KinesisMock(tmp, {"s1": 2})
    msgs = keyed_updates(1200, 12)
    cluster.produce("t", msgs)
    conf = base_config(cluster, km.endpoint, type="upsert", topic="t", aggregation="kpl",
                       **{"batch.linger.ms": "50"})
    rc, log = run_kinesink(tmp, conf, timeout=180)
    assert rc == 0, log[-3000:]
    stored = km.read_records("s1")
    user = user_records(stored)
    aggregates = sum(1 for r in stored if base64.b64decode(r["data"]).startswith(MAGIC))
    assert aggregates > 0 and len(stored) < len(user), "nothing was aggregated: %d records" % len(stored)
    check_once_in_order(user, msgs)
    assert cluster.committed("kinesink", "t", PARTS) == per_partition(msgs, PARTS)


def test_aggregates_under_faults_once_and_in_order(tmp):
    cluster = MockCluster(tmp, topics={"t": PARTS})
    fk = FakeKinesis(tmp, "--fail-rate", "0.2", "--http500-rate", "0.1", "--drop-rate", "0.05", "--seed", "11")
    msgs = keyed_updates(3000, 20)
    cluster.produce("t", msgs)
    conf = base_config(cluster, fk.endpoint, type="upsert", topic="t", aggregation="kpl", **{
        "retry.backoff.ms": "5", "retry.backoff.max.ms": "50", "batch.max.records": "20"})
    rc, log = run_kinesink(tmp, conf, timeout=180)
    assert rc == 0, log[-3000:]
    accepted = fk.accepted()
    user = user_records(accepted_records(fk))
    assert len(accepted) < len(user), "nothing was aggregated"
    check_once_in_order(user, msgs)
    assert cluster.committed("kinesink", "t", PARTS) == per_partition(msgs, PARTS)


def test_records_past_the_aggregate_limit_go_in_several(tmp):
    # Rows of ~300 KB: at most three fit one 1 MiB record, so a key's run is split over several
    # aggregates, each whole, still in order.
    cluster = MockCluster(tmp, topics={"t": 1})
    fk = FakeKinesis(tmp)
    msgs = []
    for i in range(12):
        row = {"id": 1, "v": i + 1, "pad": "x" * 300000}
        msgs.append(('{"id":1}', json.dumps({"op": "u", "before": None, "after": row}), 0))
    cluster.produce("t", msgs)
    conf = base_config(cluster, fk.endpoint, type="upsert", topic="t", aggregation="kpl",
                       **{"batch.linger.ms": "200", "kafka.message.max.bytes": "2000000",
                          "kafka.fetch.max.bytes": "8000000", "kafka.max.partition.fetch.bytes": "4000000"})
    rc, log = run_kinesink(tmp, conf, timeout=120)
    assert rc == 0, log[-3000:]
    accepted = fk.accepted()
    for k, d in accepted:
        assert len(k) + len(d) <= 1 << 20, "a Kinesis record of %d bytes" % (len(k) + len(d))
    user = user_records(accepted_records(fk))
    assert [json.loads(d)["v"] for _, d in user] == list(range(1, 13))
    assert len(accepted) >= 4
    assert cluster.committed("kinesink", "t", 1) == {0: 12}


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
