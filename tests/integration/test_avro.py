"""Debezium Avro end to end: Confluent-framed messages in the mock Kafka cluster, schemas from a
Schema Registry stand-in (basic auth, failures), records read back from kinesis-mock."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import (SRCDIR, Kinesink, KinesisMock, MockCluster, Registry, base_config, main,  # noqa: E402
                     run_kinesink, wait_for)

AVRO = os.path.join(SRCDIR, "tests", "data", "avro")
CASES = ["snapshot-read", "insert", "update", "delete", "small-decimal"]


def messages():
    out = []
    for c in CASES:
        with open(os.path.join(AVRO, c, "key.bin"), "rb") as f:
            key = f.read()
        with open(os.path.join(AVRO, c, "value.bin"), "rb") as f:
            value = f.read()
        out.append((key, value, 0))
    return out


def setup(tmp, *registry_args):
    cluster = MockCluster(tmp, topics={"shop.public.orders": 1})
    km = KinesisMock(tmp, {"s1": 1})
    reg = Registry(tmp, os.path.join(AVRO, "schemas"), *registry_args)
    cluster.produce("shop.public.orders", messages())
    return cluster, km, reg


def test_upsert_from_avro_with_auth_and_registry_failures(tmp):
    cluster, km, reg = setup(tmp, "--user", "reader:pa55", "--fail-first", "2")
    conf = base_config(cluster, km.endpoint, type="upsert", topic="shop.public.orders", **{
        "input.format": "debezium-avro", "schema.registry.url": reg.url,
        "schema.registry.username": "reader", "schema.registry.password": "pa55"})
    rc, log = run_kinesink(tmp, conf)
    assert rc == 0, log[-3000:]
    assert "pa55" not in log
    recs = [r for shard in km.read_all("s1").values() for r in shard]
    assert [(k, d) for k, d, _ in recs][:2] == [
        ('{"id":1}', b'{"amount":"12.34","attrs":{"x":1},"blob":null,"created":1700000000123456,"customer":"c-1",'
                     b'"day":19675,"id":1,"note":"first","paid":false,"status":"NEW","tags":["a","b"],"weight":null}'),
        ('{"id":2}', b'{"amount":"-0.05","attrs":{"x":1},"blob":"AAH/","created":1700000000123456,"customer":"c-2",'
                     b'"day":19675,"id":2,"note":null,"paid":false,"status":"NEW","tags":["a","b"],"weight":2.5}')], recs[:2]
    assert [d for k, d, _ in recs if k == '{"id":2}'][-1] == b""  # the delete's tombstone
    # Each schema fetched once (plus the two injected failures), then cached.
    assert sorted(set(reg.requests())) == ["/schemas/ids/7", "/schemas/ids/8"], reg.requests()
    assert len(reg.requests()) == 4, reg.requests()


def test_debezium_output_carries_connect_schema(tmp):
    cluster, km, reg = setup(tmp)
    conf = base_config(cluster, km.endpoint, type="debezium", topic="shop.public.orders", **{
        "input.format": "debezium-avro", "schema.registry.url": reg.url})
    rc, log = run_kinesink(tmp, conf)
    assert rc == 0, log[-3000:]
    recs = [json.loads(d) for shard in km.read_all("s1").values() for _, d, _ in shard if d]
    ops = {}
    for r in recs:
        row = r["payload"]["after"] or r["payload"]["before"]
        ops.setdefault(row["id"], []).append(r["payload"]["op"])
    assert ops == {1: ["c"], 2: ["c", "u", "d"], 3: ["c"]}, ops
    schema = recs[0]["schema"]
    assert schema["type"] == "struct" and schema["name"] == "shop.public.orders.Envelope", schema
    after = [f for f in schema["fields"] if f["field"] == "after"][0]
    amount = [f for f in after["fields"] if f["field"] == "amount"][0]
    assert amount["name"] == "org.apache.kafka.connect.data.Decimal" and amount["parameters"]["scale"] == "2", amount


def test_unknown_schema_id_is_a_bad_record(tmp):
    cluster = MockCluster(tmp, topics={"t": 1})
    km = KinesisMock(tmp, {"s1": 1})
    reg = Registry(tmp, os.path.join(AVRO, "schemas"))
    good = messages()[0]
    unknown = (good[0], good[1][:1] + b"\x00\x00\x00\x63" + good[1][5:], 0)  # schema id 99
    cluster.produce("t", [unknown, good])
    conf = base_config(cluster, km.endpoint, type="upsert", topic="t", **{
        "input.format": "debezium-avro", "schema.registry.url": reg.url, "errors.policy": "skip"})
    rc, log = run_kinesink(tmp, conf)
    assert rc == 0, log[-3000:]
    assert "t [0] @0: unknown schema id 99 (Schema Registry answered 404, error code 40403)" in log, log[-2000:]
    assert km.count("s1") == 1
    assert cluster.committed("kinesink", "t", 1) == {0: 2}


def registry_outage(tmp, outage):
    """Records with schemas the registry served are delivered and committed; then the registry
    goes away (outage(reg)) and records name a schema id not fetched yet, followed by one whose
    schemas are cached. With errors.policy=skip the worker still stops (exit 1) after retrying
    for schema.registry.timeout.ms, and nothing from the first record of the new id on is
    committed: a registry outage is not a bad record."""
    cluster = MockCluster(tmp, topics={"t": 1})
    km = KinesisMock(tmp, {"s1": 1})
    reg = Registry(tmp, os.path.join(AVRO, "schemas"))
    first = messages()
    cluster.produce("t", first)
    conf = base_config(cluster, km.endpoint, type="upsert", topic="t", **{
        "input.format": "debezium-avro", "schema.registry.url": reg.url, "errors.policy": "skip",
        "schema.registry.timeout.ms": "1500"})
    k = Kinesink(tmp, conf, args=())
    wait_for(lambda: cluster.committed("kinesink", "t", 1) == {0: len(first)} or not k.alive(), 30,
             "the records of the served schemas committed")
    assert k.alive(), k.log()[-3000:]
    outage(reg)
    good = first[0]
    new_id = (good[0], good[1][:1] + b"\x00\x00\x00\x09" + good[1][5:], 0)  # schema id 9, never fetched
    cluster.produce("t", [new_id, good])
    # Stopped, or (the defect) the new records skipped as bad and committed.
    wait_for(lambda: not k.alive() or cluster.committed("kinesink", "t", 1) != {0: len(first)}, 40,
             "the worker to stop")
    assert cluster.committed("kinesink", "t", 1) == {0: len(first)}, k.log()[-3000:]
    rc = k.wait(10)
    log = k.log()
    assert rc == 1, log[-3000:]
    assert "unreachable" in log and "failed to fetch schema id 9" in log, log[-3000:]
    assert "unknown schema id 9" not in log, log[-3000:]
    assert cluster.committed("kinesink", "t", 1) == {0: len(first)}
    return log


def test_registry_stopped_is_fatal_not_a_bad_record(tmp):
    log = registry_outage(tmp, lambda reg: reg.stop())
    assert "Connection refused" in log or "Couldn't connect" in log, log[-3000:]


def test_proxy_404_is_fatal_not_a_bad_record(tmp):
    log = registry_outage(tmp, lambda reg: reg.proxy_404())
    assert "answered HTTP 404 for schema id 9 without the Schema Registry's error code 40403" in log, log[-3000:]


def test_registry_rejecting_credentials_is_fatal(tmp):
    cluster, km, reg = setup(tmp, "--status", "401")
    conf = base_config(cluster, km.endpoint, type="upsert", topic="shop.public.orders", **{
        "input.format": "debezium-avro", "schema.registry.url": reg.url})
    rc, log = run_kinesink(tmp, conf)
    assert rc == 1, log[-3000:]
    assert "answered HTTP 401 for schema id 8: check schema.registry.username and password" in log, log[-2000:]
    assert cluster.committed("kinesink", "shop.public.orders", 1)[0] < 0


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
