"""make bench: kinesink against the cost of merely reading the same data (kcat to /dev/null) and
against a peer (bench/peer.py: the same upsert in Python with confluent-kafka and botocore), with
the fake PutRecords endpoint's own ceiling shown, on one machine in one run.

Loads BENCH_RECORDS (default 1,000,000) realistic ~450-byte Debezium JSON change events, and the
same count of Debezium Avro events, into the mock Kafka cluster over enough partitions (it keeps
only ~5 MiB per partition), plus a tenth as many of two larger kinds: Debezium JSON as Kafka
Connect writes it by default (the `schema` part in every key and value) and a 50-column row;
runs each scenario BENCH_REPEAT (default 3) times and reports the median: records/s, MB/s, CPU
per record, peak RSS, and the ratio to the floor (kcat reading the same topic).

The shard scenarios write Debezium JSON -> upsert (BENCH_SHARD_RECORDS, default 100,000, over
100,000 keys) to a 4-shard stream whose per-shard limits the fake endpoint enforces (1,000
records/s and 1 MiB/s each, excess entries failed as the service fails them), with and without
aggregation: user records/s, Kinesis records and 25 KB PUT payload units per 1,000 user records,
the share of entries throttled, and the share of the four shards' byte limit used.
Writes the tables and the command to bench/RESULTS.md.
"""
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(TOP, "tests"))
sys.path.insert(0, os.path.join(TOP, "tests", "fixtures"))
from harness import (BUILDDIR, KINESINK, FakeKinesis, MockCluster, Registry, TempDir,  # noqa: E402
                     base_config, config_text)

N = int(os.environ.get("BENCH_RECORDS", "1000000"))
N_LARGE = int(os.environ.get("BENCH_LARGE_RECORDS", str(max(1000, N // 10))))
N_SHARD = int(os.environ.get("BENCH_SHARD_RECORDS", "100000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
KEYS = max(1000, N // 10)
SHARDS = 4


def partitions(n, record_bytes):
    """Enough partitions to keep each under ~3 MiB (the mock cluster keeps ~5 MiB of each)."""
    return max(8, (n * record_bytes) // (3 << 20) + 1)


def debezium_json_values(n, keys=None):
    keys = keys or KEYS
    rnd = random.Random(1)
    names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
    src = ('"source":{"version":"2.5.4.Final","connector":"postgresql","name":"shop","ts_ms":%d,'
           '"snapshot":"false","db":"shop","schema":"public","table":"customers","txId":%d,"lsn":%d}')
    out = []
    for i in range(n):
        k = rnd.randrange(keys) if keys < n else i % keys
        before = {"id": k, "name": names[k % 8], "email": "%s%d@example.com" % (names[k % 8], k),
                  "balance": round(rnd.random() * 1000, 2), "visits": rnd.randrange(1000), "active": True}
        after = dict(before, balance=round(rnd.random() * 1000, 2), visits=before["visits"] + 1)
        v = ('{"before":%s,"after":%s,%s,"op":"u","ts_ms":%d,"transaction":null}'
             % (json.dumps(before, separators=(",", ":")), json.dumps(after, separators=(",", ":")),
                src % (1700000000000 + i, 771 + i, 34563872 + i), 1700000000100 + i))
        out.append(('{"id":%d}' % k, v))
    return out


def connect_field(field, typ, optional=True, **extra):
    return dict({"type": typ, "optional": optional, "field": field}, **extra)


SOURCE_SCHEMA = {"type": "struct", "optional": False, "name": "io.debezium.connector.postgresql.Source",
                 "field": "source", "fields": [
                     connect_field("version", "string", False), connect_field("connector", "string", False),
                     connect_field("name", "string", False), connect_field("ts_ms", "int64", False),
                     connect_field("snapshot", "string", True, name="io.debezium.data.Enum", version=1,
                                   parameters={"allowed": "true,last,false,incremental"}, default="false"),
                     connect_field("db", "string", False), connect_field("sequence", "string"),
                     connect_field("schema", "string", False), connect_field("table", "string", False),
                     connect_field("txId", "int64"), connect_field("lsn", "int64"), connect_field("xmin", "int64")]}
TX_SCHEMA = {"type": "struct", "optional": True, "name": "event.block", "version": 1, "field": "transaction",
             "fields": [connect_field("id", "string", False), connect_field("total_order", "int64", False),
                        connect_field("data_collection_order", "int64", False)]}


def connect_envelope(row_fields, table):
    """The value schema Debezium's JSON converter writes with every message (schemas.enable=true)."""
    value = {"type": "struct", "optional": True, "name": "shop.public.%s.Value" % table, "fields": row_fields}
    return {"type": "struct", "optional": False, "name": "shop.public.%s.Envelope" % table, "version": 1,
            "fields": [dict(value, field="before"), dict(value, field="after"), SOURCE_SCHEMA,
                       connect_field("op", "string", False), connect_field("ts_ms", "int64"), TX_SCHEMA]}


def debezium_schema_values(n):
    """The same customers changes with the `schema` part in every key and value, as Kafka Connect's
    JSON converter writes them by default."""
    row_fields = [connect_field("id", "int32", False), connect_field("name", "string"),
                  connect_field("email", "string"), connect_field("balance", "double"),
                  connect_field("visits", "int32"), connect_field("active", "boolean")]
    schema = json.dumps(connect_envelope(row_fields, "customers"), separators=(",", ":"))
    key_schema = json.dumps({"type": "struct", "optional": False, "name": "shop.public.customers.Key",
                             "fields": [connect_field("id", "int32", False)]}, separators=(",", ":"))
    for k, v in debezium_json_values(n):
        yield ('{"schema":%s,"payload":%s}' % (key_schema, k), '{"schema":%s,"payload":%s}' % (schema, v))


WIDE_COLUMNS = 50


def wide_values(n):
    """Updates of a 50-column row (ints, strings, doubles, booleans, timestamps, nulls)."""
    rnd = random.Random(2)
    kinds = ["int", "str", "double", "bool", "ts", "null"]
    for i in range(n):
        k = rnd.randrange(KEYS)
        row = {"id": k}
        for c in range(1, WIDE_COLUMNS):
            kind = kinds[c % len(kinds)]
            row["c%02d_%s" % (c, kind)] = (rnd.randrange(1 << 31) if kind == "int" else
                                            "value-%d-%d" % (c, rnd.randrange(100000)) if kind == "str" else
                                            round(rnd.random() * 1e6, 3) if kind == "double" else
                                            bool(rnd.randrange(2)) if kind == "bool" else
                                            1700000000000 + rnd.randrange(10 ** 9) if kind == "ts" else None)
        before = dict(row, c06_int=row["c06_int"] - 1)
        v = ('{"before":%s,"after":%s,"source":{"version":"2.5.4.Final","connector":"postgresql","name":"shop",'
             '"ts_ms":%d,"snapshot":"false","db":"shop","schema":"public","table":"wide","txId":%d,"lsn":%d},'
             '"op":"u","ts_ms":%d,"transaction":null}'
             % (json.dumps(before, separators=(",", ":")), json.dumps(row, separators=(",", ":")),
                1700000000000 + i, 771 + i, 34563872 + i, 1700000000100 + i))
        yield ('{"id":%d}' % k, v)


def avro_values(n):
    import io
    import struct
    import decimal
    import datetime
    import avro.io
    import avro.schema
    import make_avro_fixtures as fx
    env = avro.schema.parse(json.dumps(fx.ENVELOPE))
    key = avro.schema.parse(json.dumps(fx.KEY))
    distinct = []
    for i in range(1000):
        row = fx.row(i, 1000 + i)
        row["amount"] = decimal.Decimal(1000 + i).scaleb(-2)
        row["day"] = datetime.date(2023, 11, 14)
        datum = {"before": None, "after": row, "source": fx.SRC, "op": "c", "ts_ms": 1700000000999}
        buf = io.BytesIO()
        buf.write(b"\x00" + struct.pack(">I", 7))
        avro.io.DatumWriter(env).write(datum, avro.io.BinaryEncoder(buf))
        kb = io.BytesIO()
        kb.write(b"\x00" + struct.pack(">I", 8))
        avro.io.DatumWriter(key).write({"id": i}, avro.io.BinaryEncoder(kb))
        distinct.append((kb.getvalue(), buf.getvalue()))
    return [distinct[i % 1000] for i in range(n)]


def run_measured(argv, log_path, env=None):
    """Run to completion; (wall seconds, cpu seconds, peak RSS MiB, log text)."""
    t0 = time.monotonic()
    hwm = 0
    with open(log_path, "wb") as logf:
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=logf, env=env)
        # The peak RSS of the program itself: VmHWM starts afresh at exec, while wait4's
        # ru_maxrss would count this (large) Python process the child was forked from.
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            try:
                with open("/proc/%d/status" % p.pid) as f:
                    m = re.search(r"VmHWM:\s+(\d+) kB", f.read())
                    hwm = max(hwm, int(m.group(1)) if m else 0)
            except OSError:
                pass
            time.sleep(0.02)
        p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    with open(log_path, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("%s failed:\n%s" % (argv[0], text[-3000:]))
    return wall, ru.ru_utime + ru.ru_stime, hwm / 1024.0, text


def stamp(line):
    m = re.match(r"(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+\.\d+)Z", line)
    h, mi, s = int(m.group(4)), int(m.group(5)), float(m.group(6))
    return h * 3600 + mi * 60 + s


def kinesink_active_seconds(log):
    """From the first assignment to the end: the group join wait of the mock cluster is not work."""
    lines = log.splitlines()
    start = [stamp(l) for l in lines if "[pipeline] assigned" in l][0]
    end = [stamp(l) for l in lines if "at its end and acknowledged" in l][0]
    return end - start


class Topic:
    """A benchmark topic: its messages made by a generator, loaded once, read by every scenario."""

    def __init__(self, name, make, count, record_bytes):
        self.name, self.make, self.count = name, make, count
        self.parts = partitions(count, record_bytes)
        self.bytes = 0

    def load(self, cluster):
        def messages():
            for i, (k, v) in enumerate(self.make(self.count)):
                self.bytes += len(k) + len(v)
                yield k, v, i % self.parts
        cluster.produce(self.name, messages())

    def sample(self, tmp, n=10000):
        """The first n values as bench/stages reads them (key TAB value per line)."""
        return tmp.file(self.name + ".tsv", "".join("%s\t%s\n" % kv for kv, _ in zip(self.make(n), range(n))))


def median_run(runs):
    return (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs), max(r[2] for r in runs))


def kinesink_run(tmp, cluster, endpoint, topic, props, group):
    conf = base_config(cluster, endpoint, stream="bench", topic=topic)
    # The fake endpoint's one shard takes anything: the pipeline is measured, not shard limits
    # (the shard scenarios set them).
    conf.update({"kafka.group.id": group, "stats.interval.ms": "0", "batch.linger.ms": "5",
                 "offsets.commit.interval.ms": "1000", "rate.limit.percent": "0"})
    conf.update(props)
    for k in ("kafka.session.timeout.ms", "kafka.heartbeat.interval.ms"):
        conf.pop(k, None)
    path = tmp.file("bench.conf", config_text(conf))
    wall, cpu, rss, log = run_measured([KINESINK, "-c", path, "--exit-at-eof"], tmp.file("kinesink.log"))
    return kinesink_active_seconds(log), cpu, rss


def shard_stats(log):
    """Sums over the fake endpoint's per-shard lines: accepted, bytes, units, throttled."""
    tot = [0, 0, 0, 0]
    for m in re.finditer(r"^shard \S+ \S+ accepted (\d+) bytes (\d+) units (\d+) throttled (\d+)$", log, re.M):
        tot = [a + int(b) for a, b in zip(tot, m.groups())]
    return tot


def shard_scenarios(tmp, cluster):
    """Debezium JSON -> upsert into 4 shards whose limits are enforced, with and without aggregation."""
    topic = Topic("cdc.shards", lambda n: debezium_json_values(n, keys=N_SHARD), N_SHARD, 480)
    topic.load(cluster)
    rows = []
    for n, (name, props) in enumerate([("no aggregation", {"rate.limit.percent": "100"}),
                                       ("aggregation=kpl", {"aggregation": "kpl", "rate.limit.percent": "100"})]):
        runs = []
        for r in range(REPEAT):
            fk = FakeKinesis(tmp, "--stream", "bench", "--shards", str(SHARDS), "--shard-limits")
            secs, cpu, rss = kinesink_run(tmp, cluster, fk.endpoint, topic.name, dict(props, type="upsert"),
                                          "bench-shards-%d-%d" % (n, r))
            fk.stop()
            acc, nbytes, units, thr = shard_stats(fk.log())
            runs.append((secs, acc, nbytes, units, thr))
        secs = statistics.median(x[0] for x in runs)
        acc, nbytes, units, thr = (statistics.median(x[i] for x in runs) for i in range(1, 5))
        rows.append((name, N_SHARD / secs, acc * 1000.0 / N_SHARD, units * 1000.0 / N_SHARD, thr / (acc + thr),
                     nbytes / secs / (SHARDS * 1024 * 1024), acc / secs / (SHARDS * 1000)))
        print("shards: %-20s %8.0f user rec/s  %7.1f Kinesis rec and %7.1f PUT units per 1000  throttled %.1f%%  "
              "bytes limit %.0f%%  records limit %.0f%%" % (name, rows[-1][1], rows[-1][2], rows[-1][3],
                                                          100 * rows[-1][4], 100 * rows[-1][5], 100 * rows[-1][6]),
              flush=True)
    return topic, rows


def main():
    tmp = TempDir()
    topics = [Topic("cdc.json", debezium_json_values, N, 480), Topic("cdc.avro", avro_values, N, 130),
              Topic("cdc.schema", debezium_schema_values, N_LARGE, 3300),
              Topic("cdc.wide", wide_values, N_LARGE, 2800)]
    shard_topic_parts = partitions(N_SHARD, 480)
    print("bench: %d records per topic (%d for the larger kinds, %d for shards), %d runs each (median)"
          % (N, N_LARGE, N_SHARD, REPEAT), flush=True)
    cluster = MockCluster(tmp, topics=dict([(t.name, t.parts) for t in topics] + [("cdc.shards", shard_topic_parts)]))
    fk = FakeKinesis(tmp, "--count-only")
    reg = Registry(tmp, os.path.join(TOP, "tests", "data", "avro", "schemas"))
    by_name = {t.name: t for t in topics}

    t0 = time.monotonic()
    for t in topics:
        t.load(cluster)
    print("loaded in %.0fs: %s" % (time.monotonic() - t0, ", ".join(
        "%s %.0f bytes/record over %d partitions" % (t.name, t.bytes / t.count, t.parts) for t in topics)), flush=True)

    putload = os.path.join(BUILDDIR, "bench", "putload")
    ceiling = float(subprocess.run([putload, fk.endpoint, "5", "8", "300"], capture_output=True, text=True,
                                   check=True).stdout.split()[1])
    print("fake endpoint ceiling: %.0f records/s (8 connections, 300-byte records)" % ceiling, flush=True)

    def floor(topic):
        return median_run([run_measured(["kcat", "-C", "-b", cluster.bootstrap, "-t", topic, "-o", "beginning",
                                         "-e", "-q", "-f", "%k %s\n"], tmp.file("kcat.log"))[:3]
                           for _ in range(REPEAT)])

    scenarios = [
        ("raw mirror, ordering=none", "cdc.json", {"input.format": "raw", "type": "append-only", "ordering": "none"}),
        ("raw mirror, ordering=key", "cdc.json", {"input.format": "raw", "type": "append-only", "ordering": "key"}),
        ("Debezium JSON -> upsert", "cdc.json", {"type": "upsert"}),
        ("Debezium JSON -> upsert, ordering=none", "cdc.json", {"type": "upsert", "ordering": "none"}),
        ("Debezium JSON -> debezium", "cdc.json", {"type": "debezium"}),
        ("Debezium Avro -> upsert", "cdc.avro", {"type": "upsert", "input.format": "debezium-avro",
                                                 "schema.registry.url": reg.url}),
        ("Debezium JSON with schema -> upsert", "cdc.schema", {"type": "upsert"}),
        ("Debezium JSON, 50-column rows -> upsert", "cdc.wide", {"type": "upsert"}),
    ]
    floors = {t.name: floor(t.name) for t in topics}
    rows = []
    for t in topics:
        wall, cpu, rss = floors[t.name]
        rows.append(("floor: kcat -C %s > /dev/null" % t.name, t.count / wall, t.bytes / wall / 1e6,
                     cpu / t.count * 1e6, rss, 1.0))
        print("%-45s %9.0f rec/s" % (rows[-1][0], rows[-1][1]), flush=True)
    for n, (name, topic, props) in enumerate(scenarios):
        t = by_name[topic]
        wall, cpu, rss = median_run([kinesink_run(tmp, cluster, fk.endpoint, topic, props, "bench-%d-%d" % (n, r))
                                     for r in range(REPEAT)])
        floor_rate = t.count / floors[topic][0]
        rows.append((name, t.count / wall, t.bytes / wall / 1e6, cpu / t.count * 1e6, rss,
                     (t.count / wall) / floor_rate))
        print("%-45s %9.0f rec/s  %.2f of floor  %.2f us CPU/record  %.0f MiB" %
              (name, rows[-1][1], rows[-1][5], rows[-1][3], rss), flush=True)
    raw_none, raw_key = rows[len(topics)][1], rows[len(topics) + 1][1]
    print("raw mirror: ordering=key moves %.2fx the records/s of ordering=none" % (raw_key / raw_none), flush=True)

    # The peer: the same Debezium JSON -> upsert in Python with confluent-kafka and botocore.
    runs = []
    for r in range(REPEAT):
        wall, cpu, rss, log = run_measured(["/usr/bin/python3", os.path.join(TOP, "bench", "peer.py"),
                                            cluster.bootstrap, "cdc.json", "bench-peer-%d" % r, fk.endpoint],
                                           tmp.file("peer.log"))
        got = int(re.search(r"^records (\d+)$", log, re.M).group(1))
        if got != N:
            raise SystemExit("peer moved %d records, expected %d" % (got, N))
        runs.append((float(re.search(r"^active ([0-9.]+)$", log, re.M).group(1)), cpu, rss))
    wall, cpu, rss = median_run(runs)
    json_topic = by_name["cdc.json"]
    peer = ("peer: Python (confluent-kafka + botocore), Debezium JSON -> upsert", N / wall, json_topic.bytes / wall / 1e6,
            cpu / N * 1e6, rss, (N / wall) / (N / floors["cdc.json"][0]))
    rows.append(peer)
    upsert = next(r for r in rows if r[0] == "Debezium JSON -> upsert")
    print("%-45s %9.0f rec/s  %.2f of floor  %.2f us CPU/record  %.0f MiB" % (peer[0], peer[1], peer[5], peer[3], peer[4]),
          flush=True)
    print("kinesink Debezium JSON -> upsert is %.1fx the peer's records/s at %.2fx its CPU per record"
          % (upsert[1] / peer[1], upsert[3] / peer[3]), flush=True)

    # Per stage, one thread: jansson's parse of the value alone (malloc), kinesink's decode, decode +
    # transform (in an arena, as the lanes run them).
    stages = {}
    for label, topic, typ in (("Debezium JSON -> upsert", "cdc.json", "upsert"),
                              ("Debezium JSON -> debezium", "cdc.json", "debezium"),
                              ("Debezium JSON with schema -> upsert", "cdc.schema", "upsert"),
                              ("Debezium JSON with schema -> debezium", "cdc.schema", "debezium"),
                              ("50-column rows -> upsert", "cdc.wide", "upsert")):
        out = subprocess.run([os.path.join(BUILDDIR, "bench", "stages"), by_name[topic].sample(tmp), typ],
                             capture_output=True, text=True, check=True).stdout.split()
        stages[label] = [float(out[1]), float(out[3]), float(out[5])]
        print("stages, %s, one thread: jansson parse %.2f us, decode %.2f us, decode + transform %.2f us"
              " per record" % (label, *stages[label]), flush=True)

    shard_topic, shard_rows = shard_scenarios(tmp, cluster)

    cmd = "make bench" + "".join(" %s=%s" % (k, os.environ[k]) for k in (
        "BENCH_RECORDS", "BENCH_REPEAT", "BENCH_LARGE_RECORDS", "BENCH_SHARD_RECORDS") if k in os.environ)
    with open(os.path.join(TOP, "bench", "RESULTS.md"), "w") as f:
        f.write("# Benchmark results\n\n")
        f.write("Command: `%s` (in the build directory). Machine: %s, %d cores. Median of %d runs. Topics: %s.\n\n"
                % (cmd, platform.machine(), os.cpu_count(), REPEAT, "; ".join(
                    "`%s` %d records of %.0f bytes over %d partitions" % (t.name, t.count, t.bytes / t.count, t.parts)
                    for t in topics)))
        f.write("Kafka is librdkafka's mock cluster over loopback TCP; Kinesis is the tests' own PutRecords "
                "endpoint (`tests/tools/fakekinesis --count-only`), whose ceiling measured in the same run was "
                "**%.0f records/s** (`bench/putload`, 8 connections), so it is not the bottleneck. "
                "The floor is `kcat` consuming the same topic to /dev/null: the cost of merely reading the data. "
                "kinesink's time runs from its first partition assignment to its exit with everything "
                "acknowledged and committed (`--exit-at-eof`); CPU is the whole process.\n\n" % ceiling)
        f.write("| scenario | records/s | MB/s | CPU µs/record | peak RSS MiB | ratio to floor |\n")
        f.write("|---|---:|---:|---:|---:|---:|\n")
        for r in rows:
            f.write("| %s | %.0f | %.1f | %.2f | %.0f | %.2f |\n" % r)
        f.write("\nRaw mirror with `ordering=key` moved **%.2fx** the records/s of `ordering=none` in this run.\n"
                % (raw_key / raw_none))
        f.write("\nThe peer (`bench/peer.py`) is the bridge a team would write in Python with the usual libraries: "
                "confluent-kafka (librdkafka) and botocore, the same upsert output, PutRecords of 500, failed entries "
                "sent again, offsets committed after acknowledgement. kinesink Debezium JSON -> upsert moved "
                "**%.1fx** the peer's records/s at **%.2fx** its CPU per record in this run.\n"
                % (upsert[1] / peer[1], upsert[3] / peer[3]))
        f.write("\nWhere the CPU goes before the writer (`bench/stages` on 10,000 of the same events, one thread, "
                "decode and transform in an arena as the lanes run them, µs per record):\n\n| events | jansson `json_loadb` of the value alone | decode | "
                "decode + transform |\n|---|---:|---:|---:|\n")
        for label, v in stages.items():
            f.write("| %s | %.2f | %.2f | %.2f |\n" % (label, *v))
        f.write("\n## Shards\n\nDebezium JSON -> upsert, %d records over %d distinct keys (%.0f bytes/record), into a "
                "%d-shard stream whose limits the fake endpoint enforces as the service does (1,000 records/s and "
                "1 MiB/s per shard; entries over them fail with ProvisionedThroughputExceededException and are sent "
                "again). A PUT payload unit is 25 KB of a Kinesis record.\n\n"
                % (N_SHARD, N_SHARD, shard_topic.bytes / N_SHARD, SHARDS))
        f.write("| writer | user records/s | Kinesis records per 1,000 | PUT payload units per 1,000 | "
                "entries throttled | shards' byte limit used | shards' record limit used |\n"
                "|---|---:|---:|---:|---:|---:|---:|\n")
        for r in shard_rows:
            f.write("| %s | %.0f | %.1f | %.1f | %.1f %% | %.0f %% | %.0f %% |\n"
                    % (r[0], r[1], r[2], r[3], 100 * r[4], 100 * r[5], 100 * r[6]))
        f.write("\nBoth writers run with the defaults (`rate.limit.percent=100`: each shard's token buckets at the "
                "service's limits); `aggregation=kpl` packs a shard's records across keys into aggregates of up to "
                "`aggregation.max.bytes` (51,200). The service's buckets, and the fake endpoint's, start full: one "
                "second of each limit goes at once, so a share over 100 %% is that first second over a short run "
                "(%s).\n" % ", ".join("%s %.1f s" % (r[0], N_SHARD / r[1]) for r in shard_rows))
    print("wrote bench/RESULTS.md")
    tmp.remove()


if __name__ == "__main__":
    main()
