"""raw.envelope = kafka end to end: records with keys, headers (repeated, null-valued, binary),
JSON and binary values and a tombstone go from the mock Kafka cluster through kinesink to
kinesis-mock; examples/mirror_consumer.py reads the stream back and turns each record into the
Kafka record again, which must equal what Kafka holds (read back with librdkafka), byte for byte."""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples"))
from harness import KinesisMock, MockCluster, base_config, main, per_partition, run_kinesink  # noqa: E402
import mirror_consumer  # noqa: E402

TOPIC = "events.raw"
PARTS = 2

MESSAGES = [
    # (key, value, partition, headers)
    (b'{"id":1}', b'{"a":[1,2.5,null],"b":"\xc3\xa9t\xc3\xa9"}', 0,
     [("trace", b"t-1"), ("trace", b"t-2"), ("empty", None), ("bin", b"\x00\xff\xfe")]),
    (b"\xff\xfe\x00binary-key", b"\x00\x01\x02\xff binary value", 1, [("n", b"12")]),
    (None, b'{"b":1, "a":2}', 0, []),           # JSON, but not as kinesink writes it: base64
    (b"order-42", None, 1, [("deleted", b"yes")]),  # a tombstone is mirrored too
    (b"order-43", b"", 0, None),                # empty, not null
    (b"", b'{"x":0.1,"y":1e16,"z":-0.0}', 1, None),  # empty key; reals in kinesink's form
    (b"k", b'"just a string"', 0, [("h", b"")]),
]


def kafka_view(cluster):
    """What Kafka holds, as to_record() gives it back: {(partition, offset): record}."""
    out = {}
    for part, msgs in cluster.consume_all(TOPIC, PARTS).items():
        for m in msgs:
            tstype, ts = m.timestamp()
            out[(part, m.offset())] = {
                "topic": m.topic(), "partition": part, "offset": m.offset(),
                "timestamp": ts if tstype else None,
                "timestamp_type": {0: None, 1: "create", 2: "log-append"}[tstype],
                "key": m.key(), "value": m.value(),
                "headers": [(n, v) for n, v in (m.headers() or [])],
            }
    return out


def test_envelope_round_trip(tmp):
    cluster = MockCluster(tmp, topics={TOPIC: PARTS})
    km = KinesisMock(tmp, {"mirror": 2})
    cluster.produce(TOPIC, [m if m[3] is not None else m[:3] for m in MESSAGES])
    conf = base_config(cluster, km.endpoint, stream="mirror", type="append-only", topic=TOPIC)
    conf.update({"input.format": "raw", "raw.envelope": "kafka", "ordering": "none"})
    rc, log = run_kinesink(tmp, conf)
    assert rc == 0, "kinesink exited %d:\n%s" % (rc, log[-3000:])

    want = kafka_view(cluster)
    assert len(want) == len(MESSAGES), want
    got, forms = {}, {}
    for pkey, data in mirror_consumer.read_stream(km.client(), "mirror"):
        r = mirror_consumer.to_record(data)
        env = json.loads(data)
        forms[r["value"]] = ("value" in env and "JSON") or ("value_base64" in env and "base64")
        assert (r["partition"], r["offset"]) not in got, "duplicate %r" % (r,)
        got[(r["partition"], r["offset"])] = r
        if r["key"] == b"order-42":
            assert pkey == "order-42", pkey  # the partition key raw mirroring uses: the Kafka key
    assert sorted(got) == sorted(want), "records %s, Kafka holds %s" % (sorted(got), sorted(want))
    for coords, w in want.items():
        assert got[coords] == w, "at %s: mirrored %r, Kafka holds %r" % (coords, got[coords], w)
    # JSON exactly as kinesink writes it is shown as JSON; other bytes go in base64.
    assert forms[MESSAGES[0][1]] == "JSON" and forms[MESSAGES[5][1]] == "JSON", forms
    assert forms[MESSAGES[2][1]] == "base64" and forms[MESSAGES[1][1]] == "base64", forms
    assert forms[None] == "JSON", forms  # the tombstone: "value": null
    # And what was produced, field by field (Kafka's view above holds the timestamps).
    for key, value, part, headers in MESSAGES:
        match = [r for r in got.values() if r["partition"] == part and r["value"] == value]
        assert len(match) == 1, "produced %r %r: mirrored as %r" % (key, value, match)
        r = match[0]
        assert r["key"] == key, (key, r["key"])
        assert r["headers"] == list(headers or []), (headers, r["headers"])
        assert r["topic"] == TOPIC and r["timestamp_type"] == "create" and r["timestamp"] > 0, r

    committed = cluster.committed("kinesink", TOPIC, PARTS)
    assert committed == per_partition(MESSAGES, PARTS), "committed %r" % (committed,)


def test_canonical_json_matches_kinesink():
    """The example's writer gives back the bytes of every JSON value kinesink writes as JSON."""
    for text in ['{"a":1.5,"b":[true,null],"c":"\u00e9\\n\\u0001"}', "100.0", "1e16", "1.5e-7", "0.0001",
                 "0.00001", "5e-324", "-0.0", "1.2345678901234568e17", "1234567890123456.0", '{"":{},"a":[]}']:
        v = json.loads(text)
        assert mirror_consumer.canonical_json(v) == text, (text, mirror_consumer.canonical_json(v))


if __name__ == "__main__":
    main([("envelope_round_trip", test_envelope_round_trip),
          ("canonical_json_matches_kinesink", lambda tmp: test_canonical_json_matches_kinesink())])
