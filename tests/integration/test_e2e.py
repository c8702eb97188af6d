"""End to end against real peers: the mock Kafka cluster over TCP and kinesis-mock, read back with boto3.
Each output type from Debezium JSON topics over several partitions; committed offsets checked."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import (KinesisMock, MockCluster, base_config, debezium_event, main, run_kinesink)  # noqa: E402

PARTS = 3


def cdc_messages(n_keys=6, schema=False):
    """Inserts, updates and deletes of n_keys rows; returns (messages, last state per key)."""
    msgs = []
    for i in range(n_keys):
        row = {"id": i, "name": "name-%d" % i, "balance": 10.5 * i}
        msgs.append(({"id": i}, debezium_event("c", None, row, schema=schema)))
    for i in range(n_keys):
        before = {"id": i, "name": "name-%d" % i, "balance": 10.5 * i}
        after = dict(before, name="renamed-%d" % i)
        msgs.append(({"id": i}, debezium_event("u", before, after, schema=schema)))
    for i in range(0, n_keys, 2):
        before = {"id": i, "name": "renamed-%d" % i, "balance": 10.5 * i}
        msgs.append(({"id": i}, debezium_event("d", before, None, schema=schema)))
        msgs.append(({"id": i}, None))  # the tombstone Debezium sends after a delete
    return [(json.dumps(k), v, k["id"] % PARTS) for k, v in msgs]


def produce_and_run(tmp, stream, typ, extra=None, schema=False):
    cluster = MockCluster(tmp, topics={"inventory.customers": PARTS})
    km = KinesisMock(tmp, {stream: 2})
    msgs = cdc_messages(schema=schema)
    cluster.produce("inventory.customers", msgs)
    conf = base_config(cluster, km.endpoint, stream=stream, type=typ, topic="inventory.customers")
    conf.update(extra or {})
    rc, log = run_kinesink(tmp, conf)
    assert rc == 0, "kinesink exited %d:\n%s" % (rc, log[-3000:])
    recs = [r for shard in km.read_all(stream).values() for r in shard]
    committed = cluster.committed("kinesink", "inventory.customers", PARTS)
    per_part = {}
    for _, _, p in msgs:
        per_part[p] = per_part.get(p, 0) + 1
    assert committed == per_part, "committed %r, produced %r" % (committed, per_part)
    return recs


def by_key(recs):
    out = {}
    for key, data, _ in recs:
        out.setdefault(key, []).append(data)
    return out


def test_upsert(tmp):
    recs = produce_and_run(tmp, "s1", "upsert")
    keys = by_key(recs)
    assert len(recs) == 6 + 6 + 3, len(recs)
    assert keys['{"id":0}'] == [b'{"balance":0.0,"id":0,"name":"name-0"}',
                                b'{"balance":0.0,"id":0,"name":"renamed-0"}', b""], keys['{"id":0}']
    assert keys['{"id":1}'] == [b'{"balance":10.5,"id":1,"name":"name-1"}',
                                b'{"balance":10.5,"id":1,"name":"renamed-1"}']


def test_upsert_primary_key_from_config(tmp):
    recs = produce_and_run(tmp, "s1", "upsert", {"primary_key": " name , id "}, schema=True)
    assert sorted(set(k for k, _, _ in recs))[0] == '{"id":0,"name":"name-0"}'


def test_append_only_forced(tmp):
    recs = produce_and_run(tmp, "s1", "append-only", {"force_append_only": "true", "primary_key": "id"})
    assert len(recs) == 12, len(recs)  # deletes dropped, updates written as inserts
    assert all(d.startswith(b"{") for _, d, _ in recs)


def test_debezium(tmp):
    recs = produce_and_run(tmp, "s1", "debezium", schema=True)
    keys = by_key(recs)
    assert len(recs) == 6 + 6 + 3 * 2, len(recs)
    k0 = keys['{"id":0}']
    first = json.loads(k0[0])
    assert first["payload"]["op"] == "c" and first["payload"]["before"] is None
    assert first["schema"]["name"] == "inventory.customers.Envelope"
    assert json.loads(k0[1])["payload"]["op"] == "u"
    assert json.loads(k0[2])["payload"]["op"] == "d" and k0[3] == b""
    assert k0[0].startswith(b'{"payload":{"after":{"balance":0.0,"id":0,"name":"name-0"},"before":null,"op":"c",')


def test_topic_regex_with_static_membership(tmp):
    # `topic = ^regex` subscribes to every matching topic; kafka.group.instance.id makes the
    # worker a static member. Both topics arrive whole and both are committed to their ends.
    cluster = MockCluster(tmp, topics={"inventory.customers": PARTS, "inventory.orders": PARTS, "other": 1})
    km = KinesisMock(tmp, {"s1": 1})
    msgs = cdc_messages()
    cluster.produce("inventory.customers", msgs)
    cluster.produce("inventory.orders", msgs[:6])
    cluster.produce("other", [("k", "v", 0)])
    conf = base_config(cluster, km.endpoint, type="upsert", topic="^inventory\\..*",
                       kafka__group__instance__id="kinesink-0")
    rc, log = run_kinesink(tmp, conf)
    assert rc == 0, log[-3000:]
    assert len([r for shard in km.read_all("s1").values() for r in shard]) == 15 + 6
    per_part = {}
    for _, _, p in msgs:
        per_part[p] = per_part.get(p, 0) + 1
    assert cluster.committed("kinesink", "inventory.customers", PARTS) == per_part
    assert cluster.committed("kinesink", "inventory.orders", PARTS) == \
        {p: sum(1 for m in msgs[:6] if m[2] == p) for p in range(PARTS)}
    assert cluster.committed("kinesink", "other", 1) == {0: -1001}


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
