"""Routing end to end: one kinesink process reads three topics into three kinesis-mock streams,
each topic through its own route (Debezium JSON -> upsert with primary_key, plain JSON ->
append-only, raw bytes -> a mirror stream named from the topic by a template). Every stream is
read back and checked record by record, byte for byte and per key in Kafka order, and every
topic's offsets are committed. Both configuration syntaxes. Then a route whose stream refuses
every record: the other routes' topics are delivered and committed, its own is never committed."""
import base64
import json
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import (KINESINK, FakeKinesis, KinesisMock, Kinesink, MockCluster, base_config,  # noqa: E402
                     config_text, debezium_event, free_port, http_get, main, metrics, per_partition, run_kinesink,
                     wait_for)

PARTS = 3
CDC, CLICKS, RAW = "inventory.customers", "clicks", "events.raw"


def compact(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def cdc_messages(n_keys=8):
    """Inserts, an update of each row, deletes of every other one with their tombstones."""
    msgs = []
    for i in range(n_keys):
        msgs.append((i, debezium_event("c", None, {"id": i, "name": "n%d" % i, "qty": 3 * i})))
    for i in range(n_keys):
        msgs.append((i, debezium_event("u", {"id": i, "name": "n%d" % i, "qty": 3 * i},
                                       {"id": i, "name": "r%d" % i, "qty": 3 * i + 1})))
    for i in range(0, n_keys, 2):
        msgs.append((i, debezium_event("d", {"id": i, "name": "r%d" % i, "qty": 3 * i + 1}, None)))
        msgs.append((i, None))
    return [(json.dumps({"id": i}), v, i % PARTS) for i, v in msgs]


def cdc_expected(n_keys=8):
    """{partition key: [data, ...]} an upsert stream must hold, in order."""
    out = {}
    for i in range(n_keys):
        k = '{"id":%d}' % i
        out[k] = [compact({"id": i, "name": "n%d" % i, "qty": 3 * i}),
                  compact({"id": i, "name": "r%d" % i, "qty": 3 * i + 1})]
        if i % 2 == 0:
            out[k].append(b"")
    return out


def click_messages(n=30, users=5):
    return [(json.dumps({"user": i % users}), json.dumps({"user": i % users, "seq": i, "page": "/p/%d" % i}),
             (i % users) % PARTS) for i in range(n)]


def raw_messages(n=24):
    # Bytes that are not text, and a key per partition, so order per key is Kafka's order.
    return [("dev-%d" % (i % PARTS), bytes([i, 0, 255, 10]) + ("payload %d" % i).encode() + b"\x00\xfe", i % PARTS)
            for i in range(n)]


def by_key(recs):
    out = {}
    for key, data, _ in recs:
        out.setdefault(key, []).append(data)
    return out


def stream_records(km, stream):
    return [r for shard in km.read_all(stream).values() for r in shard]


def setup_peers(tmp):
    cluster = MockCluster(tmp, topics={CDC: PARTS, CLICKS: PARTS, RAW: PARTS})
    km = KinesisMock(tmp, {"customers-out": 2, "clicks-out": 1, "mirror-events.raw": 2})
    cdc, clicks, raw = cdc_messages(), click_messages(), raw_messages()
    cluster.produce(CDC, cdc)
    cluster.produce(CLICKS, clicks)
    cluster.produce(RAW, raw)
    return cluster, km, {CDC: cdc, CLICKS: clicks, RAW: raw}


def expected(produced):
    """{stream: {partition key: [data, ...]}}, each key's records in Kafka order."""
    # Debezium JSON -> upsert: rows by primary key, a tombstone after each delete.
    out = {"customers-out": cdc_expected()}
    # Plain JSON -> append-only: each value as written (keys sorted, compact), keyed by the
    # route's own primary_key.
    want = {}
    for k, v, _ in produced[CLICKS]:
        want.setdefault(compact(json.loads(k)).decode(), []).append(compact(json.loads(v)))
    out["clicks-out"] = want
    # Raw -> the template's stream: the value bytes untouched, keyed by the Kafka key.
    want = {}
    for k, v, _ in produced[RAW]:
        want.setdefault(k, []).append(v)
    out["mirror-events.raw"] = want
    return out


def check_all(cluster, km, produced):
    for stream, want in expected(produced).items():
        got = by_key(stream_records(km, stream))
        assert got == want, "%s: %r" % (stream, got)
    for topic, msgs in produced.items():
        committed = cluster.committed("kinesink", topic, PARTS)
        assert committed == per_partition(msgs, PARTS), "%s: committed %r, produced %r" % (
            topic, committed, per_partition(msgs, PARTS))


def route_props():
    return {
        "routes": "customers, clicks, mirror",
        "route.customers.topic": CDC,
        "route.customers.stream": "customers-out",
        "route.customers.type": "upsert",
        "route.customers.primary_key": "id",
        "route.clicks.topic": CLICKS,
        "route.clicks.stream": "clicks-out",
        "route.clicks.type": "append-only",
        "route.clicks.input.format": "json",
        "route.clicks.primary_key": "user",
        "route.mirror.topic": "^events\\..*",
        "route.mirror.stream": "mirror-${topic}",
        "route.mirror.type": "append-only",
        "route.mirror.input.format": "raw",
    }


def test_three_topics_three_streams_properties(tmp):
    cluster, km, produced = setup_peers(tmp)
    conf = base_config(cluster, km.endpoint)
    del conf["stream"]
    conf.update(route_props())
    rc, log = run_kinesink(tmp, conf)
    assert rc == 0, "kinesink exited %d:\n%s" % (rc, log[-3000:])
    assert "route 'mirror': topic 'events.raw' goes to stream 'mirror-events.raw'" in log, log[-3000:]
    check_all(cluster, km, produced)


def test_three_topics_three_streams_create_sink(tmp):
    cluster, km, produced = setup_peers(tmp)
    common = base_config(cluster, km.endpoint)
    del common["stream"]
    with_common = ", ".join("%s = '%s'" % (k, v) for k, v in sorted(common.items()))
    sql = (
        "-- one route per statement, matched in this order\n"
        "CREATE SINK customers FROM %s WITH (connector = 'kinesis', stream = 'customers-out', primary_key = 'id',\n"
        "  %s) FORMAT UPSERT ENCODE JSON;\n"
        "CREATE SINK clicks FROM %s WITH (connector = 'kinesis', stream = 'clicks-out', input.format = 'json',\n"
        "  primary_key = 'user',"
        "  %s) FORMAT PLAIN ENCODE JSON;\n"
        "CREATE SINK mirror FROM \"^events\\..*\" WITH (connector = 'kinesis', stream = 'mirror-${topic}',\n"
        "  input.format = 'raw', type = 'append-only', %s);\n") % (CDC, with_common, CLICKS, with_common, with_common)
    rc, log = run_kinesink(tmp, sql, timeout=90)  # a CREATE SINK file is known by its content
    assert rc == 0, "kinesink exited %d:\n%s" % (rc, log[-3000:])
    check_all(cluster, km, produced)


def test_refusing_stream_holds_only_its_own_offsets(tmp):
    """clicks go to a stream that refuses every record (retried until delivery.timeout.ms);
    the customers route's records are all delivered and committed meanwhile, and clicks'
    offsets are never committed, neither while it retries nor after the worker gives up."""
    cluster = MockCluster(tmp, topics={CDC: PARTS, CLICKS: PARTS})
    km = KinesisMock(tmp, {"customers-out": 2})
    fk = FakeKinesis(tmp, "--fail-rate", "1", "--stream", "clicks-out")
    cdc, clicks = cdc_messages(), click_messages()
    cluster.produce(CDC, cdc)
    cluster.produce(CLICKS, clicks)
    port = free_port()
    conf = base_config(cluster, km.endpoint)
    del conf["stream"]
    conf.update(route_props())
    conf.update({"routes": "customers, clicks", "route.clicks.endpoint": fk.endpoint,
                 "route.clicks.delivery.timeout.ms": "600000", "retry.backoff.max.ms": "200",
                 "shutdown.timeout.ms": "1000", "metrics.listen": "127.0.0.1:%d" % port})
    for k in [k for k in conf if k.startswith("route.mirror.")]:
        del conf[k]
    k = Kinesink(tmp, conf)

    def nothing_committed(topic):
        # Nothing past the first message: no commit (OFFSET_INVALID, -1001) or offset 0.
        c = cluster.committed("kinesink", topic, PARTS)
        return all(v in (-1001, 0) for v in c.values()), c

    try:
        wait_for(lambda: cluster.committed("kinesink", CDC, PARTS) == per_partition(cdc, PARTS) or not k.alive(),
                 60, "the customers route's offsets to be committed")
        assert k.alive(), "kinesink exited:\n%s" % k.log()[-3000:]
        # Every click was taken and refused at least once (and is being retried) ...
        wait_for(lambda: retried(port) >= len(clicks) or not k.alive(), 30, "every click to be refused")
        assert k.alive(), "kinesink exited:\n%s" % k.log()[-3000:]
        # ... and none of their offsets is committed, whatever the other route committed.
        ok, c = nothing_committed(CLICKS)
        assert ok, "clicks committed %r before any was acknowledged" % c
        k.proc.send_signal(signal.SIGTERM)
        rc = k.wait(60)
    finally:
        k.stop()
    log = k.log()
    assert rc == 1, "kinesink exited %d (its clicks were never acknowledged):\n%s" % (rc, log[-3000:])
    assert "records unacknowledged" in log, log[-3000:]
    assert by_key(stream_records(km, "customers-out")) == cdc_expected()
    assert cluster.committed("kinesink", CDC, PARTS) == per_partition(cdc, PARTS)
    ok, c = nothing_committed(CLICKS)
    assert ok, "clicks committed %r, none acknowledged" % c
    assert fk.accepted() == []


def test_bad_record_dead_lettered_naming_its_route(tmp):
    """A click that is not JSON goes to the dead-letter topic, its reason naming the clicks route
    and its coordinates; everything else of both routes is delivered and every offset committed."""
    cluster = MockCluster(tmp, topics={CDC: PARTS, CLICKS: PARTS, "dlq": 1})
    km = KinesisMock(tmp, {"customers-out": 2, "clicks-out": 1})
    cdc, clicks = cdc_messages(), click_messages()
    poison = ('{"user":1}', "not json {", 1)
    cluster.produce(CDC, cdc)
    cluster.produce(CLICKS, clicks[:10] + [poison] + clicks[10:])
    conf = base_config(cluster, km.endpoint)
    del conf["stream"]
    conf.update(route_props())
    conf.update({"routes": "customers, clicks", "errors.policy": "dlq", "errors.dlq.topic": "dlq"})
    for k in [k for k in conf if k.startswith("route.mirror.")]:
        del conf[k]
    rc, log = run_kinesink(tmp, conf)
    assert rc == 0, "kinesink exited %d:\n%s" % (rc, log[-3000:])
    dead = cluster.consume_all("dlq", 1)[0]
    assert len(dead) == 1, dead
    h = {k: v.decode() for k, v in dead[0].headers()}
    offset = sum(1 for m in clicks[:10] if m[2] == 1)
    assert dead[0].value() == poison[1].encode(), dead[0].value()
    assert h["kinesink.original.topic"] == CLICKS and h["kinesink.original.partition"] == "1", h
    assert h["kinesink.original.offset"] == str(offset), h
    assert h["kinesink.error.message"].startswith("route 'clicks': "), h
    assert by_key(stream_records(km, "customers-out")) == cdc_expected()
    want = {}
    for k, v, _ in clicks:
        want.setdefault(compact(json.loads(k)).decode(), []).append(compact(json.loads(v)))
    assert by_key(stream_records(km, "clicks-out")) == want
    assert cluster.committed("kinesink", CDC, PARTS) == per_partition(cdc, PARTS)
    assert cluster.committed("kinesink", CLICKS, PARTS) == per_partition(clicks + [poison], PARTS)


def test_template_stream_missing_stops_naming_route_and_topic(tmp):
    """events.raw's stream (mirror-events.raw) does not exist: the worker stops, saying which
    route, topic and stream, and commits nothing of that topic."""
    cluster = MockCluster(tmp, topics={RAW: PARTS})
    km = KinesisMock(tmp, {"customers-out": 1})
    raw = raw_messages()
    cluster.produce(RAW, raw)
    conf = base_config(cluster, km.endpoint)
    del conf["stream"]
    conf.update({k: v for k, v in route_props().items() if k.startswith("route.mirror.")})
    conf["routes"] = "mirror"
    rc, log = run_kinesink(tmp, conf)
    assert rc == 1, "kinesink exited %d:\n%s" % (rc, log[-3000:])
    assert "route 'mirror': topic 'events.raw': " in log and "mirror-events.raw" in log, log[-3000:]
    c = cluster.committed("kinesink", RAW, PARTS)
    assert all(v in (-1001, 0) for v in c.values()), c


def test_subscribed_topic_without_route_stops_before_committing_it(tmp):
    """topic (the subscription) is a regex; a topic it brings that no route takes stops the
    worker with an error naming it, and nothing of that topic is committed."""
    cluster = MockCluster(tmp, topics={"shop.orders": 1, "shop.refunds": 1})
    km = KinesisMock(tmp, {"orders-out": 1})
    orders = [(None, json.dumps({"id": i}), 0) for i in range(5)]
    cluster.produce("shop.orders", orders)
    cluster.produce("shop.refunds", [(None, json.dumps({"id": 1}), 0)])
    conf = base_config(cluster, km.endpoint)
    del conf["stream"]
    conf.update({"topic": "^shop\\..*", "routes": "orders", "route.orders.topic": "shop.orders",
                 "route.orders.stream": "orders-out", "route.orders.type": "append-only",
                 "route.orders.input.format": "json"})
    rc, log = run_kinesink(tmp, conf)
    assert rc == 1, "kinesink exited %d:\n%s" % (rc, log[-3000:])
    assert "shop.refunds [0] @0: topic 'shop.refunds' matches no route" in log, log[-3000:]
    assert cluster.committed("kinesink", "shop.refunds", 1)[0] in (-1001, 0)


def test_preview_takes_each_topic_through_its_route(tmp):
    """--preview shows what a run would send: each topic's records made by its own route."""
    cluster = MockCluster(tmp, topics={CDC: PARTS, CLICKS: PARTS, RAW: PARTS})
    produced = {CDC: cdc_messages(), CLICKS: click_messages(), RAW: raw_messages()}
    for topic, msgs in produced.items():
        cluster.produce(topic, msgs)
    conf = base_config(cluster, "http://127.0.0.1:9")
    del conf["stream"]
    conf.update(route_props())
    path = tmp.file("preview.conf", config_text(conf))
    p = subprocess.run([KINESINK, "-c", path, "--preview", "1000", "--preview-format", "json"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    stream_of = {CDC: "customers-out", CLICKS: "clicks-out", RAW: "mirror-events.raw"}
    got = {s: {} for s in stream_of.values()}
    for line in p.stdout.splitlines():
        r = json.loads(line)
        if "partition_key" not in r:
            continue
        data = base64.b64decode(r["data"]) if r.get("data_base64") else r["data"].encode()
        got[stream_of[r["topic"]]].setdefault(r["partition_key"], []).append(data)
    assert got == expected(produced), got
    assert "78 messages from 9 partitions: 74 records, 0 bad, 4 without a record" in p.stderr, p.stderr


def retried(port):
    return metrics(http_get("http://127.0.0.1:%d/metrics" % port)[1]).get("kinesink_records_retried_total", 0)


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
