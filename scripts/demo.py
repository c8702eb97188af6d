"""The demo: a local Kafka (librdkafka's mock cluster) and a local Kinesis (kinesis-mock), the
sample inventory change events of examples/data loaded into Kafka, kinesink run until it has
moved everything, and what arrived in Kinesis printed per shard."""
import json
import os
import sys
import zlib

top = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
os.environ.setdefault("KS_SRCDIR", top)
os.environ.setdefault("KS_BUILDDIR", os.path.join(top, "build"))
sys.path.insert(0, os.path.join(top, "tests"))
from harness import KinesisMock, MockCluster, TempDir, base_config, run_kinesink  # noqa: E402

tmp = TempDir()
print("starting a local Kafka (mock cluster) and a local Kinesis (kinesis-mock)...", flush=True)
cluster = MockCluster(tmp, topics={"inventory.customers": 2, "inventory.orders": 2})
kinesis = KinesisMock(tmp, {"inventory-cdc": 2})

events = [json.loads(line) for line in open(os.path.join(top, "examples", "data", "inventory.jsonl"))]
for topic in ("inventory.customers", "inventory.orders"):
    msgs = [(json.dumps(e["key"], separators=(",", ":")),
             None if e["value"] is None else json.dumps(e["value"]),
             zlib.crc32(json.dumps(e["key"]).encode()) % 2) for e in events if e["topic"] == topic]
    cluster.produce(topic, msgs)
print("loaded %d Debezium change events (snapshot, inserts, updates, deletes + tombstones)" % len(events))

conf = base_config(cluster, kinesis.endpoint, stream="inventory-cdc", type="upsert",
                   topic="inventory.customers,inventory.orders")
conf["stats.interval.ms"] = "0"
print("running: kinesink -c %s --exit-at-eof" % tmp.file("kinesink.conf"), flush=True)
rc, log = run_kinesink(tmp, conf)
print("".join("  | " + l + "\n" for l in log.splitlines()))
if rc != 0:
    print("kinesink exited with %d" % rc)
    sys.exit(rc)

print("what arrived in Kinesis stream 'inventory-cdc' (type=upsert: data = the row after the change, "
      "empty data = a delete):")
for shard, recs in sorted(kinesis.read_all("inventory-cdc").items()):
    print("\n%s (%d records)" % (shard, len(recs)))
    for key, data, seq in recs:
        print("  key %-24s %s" % (key, data.decode() if data else "<empty: deleted>"))
cluster.stop()
kinesis.stop()
tmp.remove()
