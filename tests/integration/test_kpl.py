"""KPL aggregation (aggregation=kpl) end to end: the records queued behind a key's record travel
with it in one aggregated Kinesis record. Read back from kinesis-mock and taken apart here by an
independent reader of the KPL format (magic F3 89 9A C2, protobuf AggregatedRecord, MD5), then
under faults against the tests' own endpoint: every record once, in key order, all committed."""
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import FakeKinesis, KinesisMock, MockCluster, base_config, main, per_partition, run_kinesink  # noqa: E402
from harness import keyed_updates as harness_keyed_updates  # noqa: E402

PARTS = 4
MAGIC = b"\xf3\x89\x9a\xc2"


def varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if not c & 0x80:
            return v, i
        shift += 7


def fields(b):
    """(field number, wire type, value) of a protobuf message: varints as ints, the rest as bytes."""
    i = 0
    while i < len(b):
        tag, i = varint(b, i)
        num, wt = tag >> 3, tag & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise AssertionError("wire type %d" % wt)
        yield num, wt, v


def deaggregate(pkey, data):
    """[(partition_key, data)] of one Kinesis record: an aggregate's records, or the record itself."""
    if not data.startswith(MAGIC):
        return [(pkey, data)]
    body, digest = data[4:-16], data[-16:]
    assert hashlib.md5(body).digest() == digest, "aggregate of key %s: MD5 does not match" % pkey
    keys, out = [], []
    for num, _, v in fields(body):
        if num == 1:
            keys.append(v.decode())
        elif num == 3:
            rec = dict((n, v2) for n, _, v2 in fields(v))
            out.append((rec[1], rec.get(3, b"")))
    assert keys == [pkey], "aggregate under key %s holds keys %s" % (pkey, keys)
    return [(keys[idx], d) for idx, d in out]


def keyed_updates(n, keys):
    return harness_keyed_updates(n, keys, PARTS)


def check_once_in_order(user_records, produced):
    got, want = {}, {}
    for key, data in user_records:
        got.setdefault(key, []).append(json.loads(data)["v"])
    for k, v, _ in produced:
        want.setdefault(k, []).append(json.loads(v)["after"]["v"])
    assert got.keys() == want.keys(), (sorted(got)[:5], sorted(want)[:5])
    for k in want:
        assert got[k] == want[k], "key %s: got %s, want %s" % (k, got[k][:20], want[k][:20])


def test_aggregated_records_read_back_from_kinesis_mock(tmp):
    cluster = MockCluster(tmp, topics={"t": PARTS})
    km = KinesisMock(tmp, {"s1": 2})
    msgs = keyed_updates(1200, 12)
    cluster.produce("t", msgs)
    conf = base_config(cluster, km.endpoint, type="upsert", topic="t", aggregation="kpl",
                       **{"batch.linger.ms": "50"})
    rc, log = run_kinesink(tmp, conf, timeout=180)
    assert rc == 0, log[-3000:]
    stored = [(k, d) for recs in km.read_all("s1").values() for k, d, _ in recs]
    user = [r for k, d in stored for r in deaggregate(k, d)]
    aggregates = sum(1 for _, d in stored if d.startswith(MAGIC))
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
    user = [r for k, d in accepted for r in deaggregate(k, d)]
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
    user = [r for k, d in accepted for r in deaggregate(k, d)]
    assert [json.loads(d)["v"] for _, d in user] == list(range(1, 13))
    assert len(accepted) >= 4
    assert cluster.committed("kinesink", "t", 1) == {0: 12}


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
