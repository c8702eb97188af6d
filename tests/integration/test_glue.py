"""AWS Glue Schema Registry input end to end: Debezium changes with logical types (the envelopes
of the Confluent Avro tests) framed by an independent encoder following the Java serializer's
layout (python3-avro for the body, zlib for compression, uuid for the version id: byte 3, byte
0 or 5, the id's 16 bytes big-endian), in two schema versions, compressed and not, with key
schemas in two versions too; schemas served by a Glue stand-in that checks every signature with
botocore. The output must be byte for byte the output of the same changes Confluent-framed and
as plain Debezium JSON; framed JSON (Glue's, compressed and not, and Confluent's) that of the
same JSON unframed. Then bad records (unknown id, corrupt header, truncated body and stream, a
version of another DataFormat), access denied, and --check --connect."""
import base64
import copy
import datetime
import io
import json
import os
import struct
import subprocess
import sys
import uuid
import zlib

import avro.io
import avro.schema

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures"))
from harness import (KINESINK, KinesisMock, MockCluster, Registry, Standin, base_config,  # noqa: E402
                     config_text, main, run_kinesink)
import make_avro_fixtures as fx  # noqa: E402

AKID, SECRET = "AKIDGLUETEST", "glue-secret"
V1 = "7f3c1e2a-0b4d-4e5f-8a9b-0c1d2e3f4a5b"   # the envelope, version 1
V2 = "b2a1c3d4-e5f6-4789-9abc-def012345678"   # version 2: a nullable column more
K1 = "0a0b0c0d-1111-4222-8333-444455556666"   # the key schema
K2 = "0a0b0c0d-1111-4222-8333-444455556667"   # the key schema again, a later version
J1 = "c0ffee00-0000-4000-8000-00000000000a"   # a JSON Schema version (for framed JSON)
UNKNOWN = "deadbeef-0000-4000-8000-000000000000"

VALUE2 = copy.deepcopy(fx.VALUE)
VALUE2["fields"].append({"name": "coupon", "type": ["null", "string"], "default": None})
ENVELOPE2 = copy.deepcopy(fx.ENVELOPE)
for f in ENVELOPE2["fields"]:
    if f["name"] == "after":
        f["type"] = ["null", VALUE2]
CONFLUENT_IDS = {V1: 7, V2: 10, K1: 8, K2: 8}
JSON_SCHEMA = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"}


def avro_body(schema, datum):
    buf = io.BytesIO()
    avro.io.DatumWriter(schema).write(datum, avro.io.BinaryEncoder(buf))
    return buf.getvalue()


def glue_frame(version, body, compressed):
    """The Glue serializer's layout: header version 3, compression byte, the UUID's 16 bytes."""
    return bytes([3, 5 if compressed else 0]) + uuid.UUID(version).bytes + (zlib.compress(body) if compressed else body)


def confluent_frame(schema_id, body):
    return b"\x00" + struct.pack(">I", schema_id) + body


def json_row(r):
    """A row as Debezium's JSON converter writes it (decimals as strings, dates as days, bytes base64)."""
    if r is None:
        return None
    out = {}
    for k, v in r.items():
        if hasattr(v, "as_tuple"):
            v = format(v, "f")
        elif isinstance(v, datetime.date):
            v = (v - datetime.date(1970, 1, 1)).days
        elif isinstance(v, bytes):
            v = base64.b64encode(v).decode()
        out[k] = v
    return out


def changes():
    """(envelope version, key version, op, before, after): the fixtures' changes, then version 2's."""
    out = []
    for name in ("snapshot-read", "insert", "update", "delete", "small-decimal"):
        op, before, after = fx.CASES[name]
        out.append((V1, K1, op, before, after))
    r4 = dict(fx.row(4, 250, note="fourth"), coupon="SAVE10")
    out.append((V2, K2, "c", None, r4))
    out.append((V2, K2, "u", r4, dict(r4, status="PAID", coupon=None, paid=True)))
    r1 = dict(fx.row(1, 1234, note="first"), coupon=None)
    out.append((V2, K2, "u", r1, dict(r1, note="first, again")))
    return out


def encodings():
    """{"glue": [...], "confluent": [...], "json": [...]} of (key, value, partition) per change."""
    env = {V1: avro.schema.parse(json.dumps(fx.ENVELOPE)), V2: avro.schema.parse(json.dumps(ENVELOPE2))}
    key_schema = avro.schema.parse(json.dumps(fx.KEY))
    out = {"glue": [], "confluent": [], "json": []}
    for i, (vv, kv, op, before, after) in enumerate(changes()):
        datum = {"before": before, "after": after, "source": fx.SRC, "op": op, "ts_ms": 1700000000999}
        body = avro_body(env[vv], datum)
        key = {"id": (after or before)["id"]}
        kbody = avro_body(key_schema, key)
        out["glue"].append((glue_frame(kv, kbody, i % 2 == 1), glue_frame(vv, body, i % 2 == 0), 0))
        out["confluent"].append((confluent_frame(CONFLUENT_IDS[kv], kbody), confluent_frame(CONFLUENT_IDS[vv], body), 0))
        payload = {"before": json_row(before), "after": json_row(after), "source": fx.SRC, "op": op, "ts_ms": 1700000000999}
        out["json"].append((json.dumps(key), json.dumps(payload), 0))
    return out


def glue_standin(tmp, *extra, name="glue"):
    versions = {V1: fx.ENVELOPE, V2: ENVELOPE2, K1: fx.KEY, K2: fx.KEY}
    doc = {v: {"DataFormat": "AVRO", "SchemaDefinition": json.dumps(s)} for v, s in versions.items()}
    doc[J1] = {"DataFormat": "JSON", "SchemaDefinition": json.dumps(JSON_SCHEMA)}
    path = tmp.file("glue-versions.json", json.dumps(doc))
    return Standin(tmp, "glue_standin.py", name, "--versions", path, "--keys", "%s:%s" % (AKID, SECRET), *extra)


def glue_requests(standin):
    import urllib.request
    with urllib.request.urlopen(standin.url + "/_requests") as r:
        return json.loads(r.read().decode())


def schemas_dir(tmp):
    """The Confluent registry's schemas: the fixtures' and version 2 as id 10."""
    d = os.path.join(tmp.path, "schemas")
    os.makedirs(d, exist_ok=True)
    for sid, s in ((7, fx.ENVELOPE), (8, fx.KEY), (10, ENVELOPE2)):
        with open(os.path.join(d, "%d.json" % sid), "w") as f:
            json.dump(s, f)
    return d


def glue_keys(conf, standin):
    conf.update({"aws.credentials.access_key_id": AKID, "aws.credentials.secret_access_key": SECRET,
                 "schema.registry.type": "glue", "schema.registry.glue.endpoint": standin.url})
    return conf


def records(km, stream):
    return [(k, d) for shard in km.read_all(stream).values() for k, d, _ in shard]


def by_key(recs):
    """{partition key: [data, ...]}: the order the contract keeps (per key, ordering=key)."""
    out = {}
    for k, d in recs:
        out.setdefault(k, []).append(d)
    return out


def test_glue_avro_and_framed_json_match_confluent_and_plain_json(tmp):
    enc = encodings()
    framed_json = []
    for i, (k, v, p) in enumerate(enc["json"]):
        if i % 3 == 2:
            framed_json.append((b"\x00\x00\x00\x00\x2a" + k.encode(), b"\x00\x00\x00\x00\x2b" + v.encode(), p))
        else:
            framed_json.append((glue_frame(J1, k.encode(), i % 2 == 0), glue_frame(J1, v.encode(), i % 3 == 0), p))
    topics = {"glue.orders": enc["glue"], "conf.orders": enc["confluent"], "json.orders": enc["json"],
              "gluedbz.orders": enc["glue"], "confdbz.orders": enc["confluent"], "framed.orders": framed_json}
    cluster = MockCluster(tmp, topics={t: 1 for t in topics})
    for t, msgs in topics.items():
        cluster.produce(t, msgs)
    streams = {t.split(".")[0]: 1 for t in topics}
    km = KinesisMock(tmp, streams)
    # Throttling and a 5xx first: retried with backoff, never a bad record.
    glue = glue_standin(tmp, "--throttle-first", "2", "--fail-first", "1")
    reg = Registry(tmp, schemas_dir(tmp))
    conf = base_config(cluster, km.endpoint, type="upsert", topic=",".join(topics), **{"decode.threads": "3"})
    conf["routes"] = ",".join(streams)
    for t in topics:
        name = t.split(".")[0]
        conf["route.%s.topic" % name] = t
        conf["route.%s.stream" % name] = name
        if name in ("glue", "gluedbz"):
            conf.update({"route.%s.input.format" % name: "debezium-avro", "route.%s.schema.registry.type" % name: "glue",
                         "route.%s.schema.registry.glue.endpoint" % name: glue.url})
        elif name == "framed":
            conf.update({"route.framed.schema.registry.type": "glue", "route.framed.schema.registry.glue.endpoint": glue.url})
        elif name in ("conf", "confdbz"):
            conf.update({"route.%s.input.format" % name: "debezium-avro", "route.%s.schema.registry.url" % name: reg.url})
        if name.endswith("dbz"):
            conf["route.%s.type" % name] = "debezium"
    del conf["aws.credentials.access_key_id"], conf["aws.credentials.secret_access_key"]
    conf.update({"aws.credentials.access_key_id": AKID, "aws.credentials.secret_access_key": SECRET})
    rc, log = run_kinesink(tmp, conf, timeout=120)
    assert rc == 0, log[-4000:]
    got = {s: by_key(records(km, s)) for s in streams}
    # The same changes give the same records, byte for byte, whatever the framing.
    assert got["glue"] == got["conf"], (got["glue"], got["conf"])
    assert got["glue"] == got["json"], (got["glue"], got["json"])
    assert got["framed"] == got["json"], (got["framed"], got["json"])
    assert got["gluedbz"] == got["confdbz"], (got["gluedbz"], got["confdbz"])
    # Partition keys come from the decoded key (two key versions, one key), never the framed bytes.
    assert {k: len(v) for k, v in got["glue"].items()} == {'{"id":1}': 2, '{"id":2}': 3, '{"id":3}': 1, '{"id":4}': 2}, got["glue"]
    assert got["glue"]['{"id":1}'][0] == (
        b'{"amount":"12.34","attrs":{"x":1},"blob":null,"created":1700000000123456,"customer":"c-1","day":19675,'
        b'"id":1,"note":"first","paid":false,"status":"NEW","tags":["a","b"],"weight":null}'), got["glue"]
    assert b'"coupon":"SAVE10"' in got["glue"]['{"id":4}'][0] and got["glue"]['{"id":2}'][2] == b""
    dbz = {k: [json.loads(d)["payload"]["op"] for d in v if d] for k, v in got["gluedbz"].items()}
    assert dbz == {'{"id":1}': ["c", "u"], '{"id":2}': ["c", "u", "d"], '{"id":3}': ["c"], '{"id":4}': ["c", "u"]}, dbz
    dbz = [json.loads(d) for v in got["gluedbz"].values() for d in v if d]
    assert dbz[0]["schema"]["name"] == "shop.public.orders.Envelope", dbz[0]["schema"]
    # Every call signed right; each version fetched once for the whole process (routes and lanes share it).
    reqs = glue_requests(glue)
    assert all(r["signature"] == "ok" for r in reqs), reqs
    assert all(r["target"] == "AWSGlue.GetSchemaVersion" for r in reqs), reqs
    assert sorted(r["id"] for r in reqs[3:]) == sorted([V1, V2, K1, K2, J1]), reqs
    assert len(reqs) == 3 + 5, reqs
    assert "retrying" in log and "ThrottlingException" in log, log[-3000:]
    assert SECRET not in log


def test_bad_records_name_what_is_wrong(tmp):
    enc = encodings()
    good_key, good, _ = enc["glue"][0]
    body = good[18:]
    unknown = glue_frame(UNKNOWN, body, False)
    corrupt = bytes([3, 7]) + good[2:]
    truncated = glue_frame(V1, body[:len(body) // 2], False)
    cut_stream = glue_frame(V1, body, True)[:-6]
    wrong_format = glue_frame(J1, body, False)
    confluent = enc["confluent"][0][1]
    msgs = [(good_key, v, 0) for v in (good, unknown, corrupt, truncated, cut_stream, wrong_format, confluent, good)]
    cluster = MockCluster(tmp, topics={"t": 1})
    cluster.produce("t", msgs)
    km = KinesisMock(tmp, {"s1": 1})
    glue = glue_standin(tmp)
    conf = glue_keys(base_config(cluster, km.endpoint, type="upsert", topic="t", **{
        "input.format": "debezium-avro", "errors.policy": "skip"}), glue)
    rc, log = run_kinesink(tmp, conf)
    assert rc == 0, log[-4000:]
    for text in ("t [0] @1: unknown AWS Glue schema version id %s (GetSchemaVersion in region us-east-1 answered "
                 "EntityNotFoundException: Schema version is not found." % UNKNOWN,
                 "t [0] @2: AWS Glue Schema Registry compression byte is 0x07",
                 "t [0] @3: AWS Glue schema version %s: invalid or truncated Avro body" % V1,
                 "t [0] @4: AWS Glue Schema Registry payload is a truncated zlib stream",
                 "t [0] @5: AWS Glue schema version %s has DataFormat JSON, but input.format = debezium-avro reads Avro" % J1,
                 "t [0] @6: header version byte is 0x00, expected 0x03"):
        assert text in log, (text, log[-4000:])
    assert [k for k, _ in records(km, "s1")] == ['{"id":1}', '{"id":1}']
    assert cluster.committed("kinesink", "t", 1) == {0: len(msgs)}
    ids = [r["id"] for r in glue_requests(glue)]
    assert sorted(set(ids)) == sorted([V1, K1, UNKNOWN, J1]) and ids.count(V1) == 1, ids


def test_access_denied_stops_the_worker(tmp):
    enc = encodings()
    cluster = MockCluster(tmp, topics={"t": 1})
    cluster.produce("t", enc["glue"][:2])
    km = KinesisMock(tmp, {"s1": 1})
    glue = glue_standin(tmp, "--deny")
    conf = glue_keys(base_config(cluster, km.endpoint, type="upsert", topic="t", **{
        "input.format": "debezium-avro", "errors.policy": "skip"}), glue)
    rc, log = run_kinesink(tmp, conf)
    assert rc == 1, log[-3000:]
    assert "denied GetSchemaVersion of schema version" in log and "allow glue:GetSchemaVersion" in log, log[-3000:]
    assert cluster.committed("kinesink", "t", 1)[0] < 0
    assert km.count("s1") == 0


def test_check_connect_reaches_glue(tmp):
    cluster = MockCluster(tmp, topics={"t": 1})
    glue = glue_standin(tmp)
    denied = glue_standin(tmp, "--deny", name="glue-denied")
    conf = glue_keys(base_config(cluster, "http://127.0.0.1:9", type="upsert", topic="t",
                                 **{"input.format": "debezium-avro"}), glue)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    for standin, status, text in ((glue, "ok", "answered GetSchemaVersion (EntityNotFoundException for a version id "
                                                "no registry holds): reached, and the credentials may call "
                                                "glue:GetSchemaVersion"),
                                  (denied, "FAIL", "-> allow glue:GetSchemaVersion to these credentials")):
        conf["schema.registry.glue.endpoint"] = standin.url
        path = tmp.file("connect.conf", config_text(conf))
        p = subprocess.run([KINESINK, "-c", path, "--check", "--connect"], env=env, capture_output=True, text=True,
                           timeout=120)
        line = [ln for ln in p.stdout.splitlines() if "glue schema registry:" in ln]
        assert len(line) == 1 and line[0].startswith(status) and text in line[0], (line, p.stderr)
        assert p.returncode != 0  # the stream at port 9 is not there
        assert SECRET not in p.stdout + p.stderr
    assert [r["signature"] for r in glue_requests(glue)] == ["ok"]


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
