"""make bench: kinesink against the cost of merely reading the same data (kcat to /dev/null) and
against a peer (bench/peer.py: the same upsert in Python with confluent-kafka and botocore), with
the fake PutRecords endpoint's own ceiling shown, on one machine in one run.

Loads BENCH_RECORDS (default 1,000,000) realistic ~400-byte Debezium JSON change events, and the
same count of Debezium Avro events, into the mock Kafka cluster over enough partitions (it keeps
only ~5 MiB per partition); runs each scenario BENCH_REPEAT (default 3) times and reports the
median: records/s, MB/s, CPU seconds per million records, peak RSS, and the ratio to the floor.
Writes the table and the command to bench/RESULTS.md.
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
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
PARTS = max(8, (N * 450) // (3 << 20) + 1)  # under ~3 MiB per partition
KEYS = max(1000, N // 10)


def debezium_json_values(n):
    rnd = random.Random(1)
    names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
    src = ('"source":{"version":"2.5.4.Final","connector":"postgresql","name":"shop","ts_ms":%d,'
           '"snapshot":"false","db":"shop","schema":"public","table":"customers","txId":%d,"lsn":%d}')
    out = []
    for i in range(n):
        k = rnd.randrange(KEYS)
        before = {"id": k, "name": names[k % 8], "email": "%s%d@example.com" % (names[k % 8], k),
                  "balance": round(rnd.random() * 1000, 2), "visits": rnd.randrange(1000), "active": True}
        after = dict(before, balance=round(rnd.random() * 1000, 2), visits=before["visits"] + 1)
        v = ('{"before":%s,"after":%s,%s,"op":"u","ts_ms":%d,"transaction":null}'
             % (json.dumps(before, separators=(",", ":")), json.dumps(after, separators=(",", ":")),
                src % (1700000000000 + i, 771 + i, 34563872 + i), 1700000000100 + i))
        out.append(('{"id":%d}' % k, v))
    return out


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


def main():
    tmp = TempDir()
    print("bench: %d records per topic, %d partitions, %d runs each (median)" % (N, PARTS, REPEAT), flush=True)
    cluster = MockCluster(tmp, topics={"cdc.json": PARTS, "cdc.avro": PARTS})
    fk = FakeKinesis(tmp, "--count-only")
    reg = Registry(tmp, os.path.join(TOP, "tests", "data", "avro", "schemas"))

    t0 = time.monotonic()
    vals = debezium_json_values(N)
    json_bytes = sum(len(k) + len(v) for k, v in vals)
    cluster.produce("cdc.json", ((k, v, i % PARTS) for i, (k, v) in enumerate(vals)))
    sample = tmp.file("sample.tsv", "".join("%s\t%s\n" % kv for kv in vals[:10000]))
    del vals
    avals = avro_values(N)
    avro_bytes = sum(len(k) + len(v) for k, v in avals)
    cluster.produce("cdc.avro", ((k, v, i % PARTS) for i, (k, v) in enumerate(avals)))
    del avals
    print("loaded in %.0fs: JSON %.0f bytes/record, Avro %.0f bytes/record"
          % (time.monotonic() - t0, json_bytes / N, avro_bytes / N), flush=True)

    putload = os.path.join(BUILDDIR, "bench", "putload")
    ceiling = float(subprocess.run([putload, fk.endpoint, "5", "8", "300"], capture_output=True, text=True,
                                   check=True).stdout.split()[1])
    print("fake endpoint ceiling: %.0f records/s (8 connections, 300-byte records)" % ceiling, flush=True)

    def floor(topic):
        runs = []
        for r in range(REPEAT):
            wall, cpu, rss, _ = run_measured(["kcat", "-C", "-b", cluster.bootstrap, "-t", topic, "-o", "beginning",
                                              "-e", "-q", "-f", "%k %s\n"], tmp.file("kcat.log"))
            runs.append((wall, cpu, rss))
        return runs

    scenarios = [
        ("raw mirror", "cdc.json", {"input.format": "raw", "type": "append-only", "ordering": "none"}),
        ("Debezium JSON -> upsert", "cdc.json", {"type": "upsert"}),
        ("Debezium JSON -> upsert, ordering=none", "cdc.json", {"type": "upsert", "ordering": "none"}),
        ("Debezium JSON -> debezium", "cdc.json", {"type": "debezium"}),
        ("Debezium Avro -> upsert", "cdc.avro", {"type": "upsert", "input.format": "debezium-avro",
                                                 "schema.registry.url": reg.url}),
    ]
    floors = {t: floor(t) for t in ("cdc.json", "cdc.avro")}
    rows = []
    for t, runs in floors.items():
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        rss = max(r[2] for r in runs)
        by = json_bytes if t == "cdc.json" else avro_bytes
        rows.append(("floor: kcat -C %s > /dev/null" % t, N / wall, by / wall / 1e6, cpu / N * 1e6, rss, 1.0))
        print("%-45s %9.0f rec/s" % (rows[-1][0], rows[-1][1]), flush=True)
    for n, (name, topic, props) in enumerate(scenarios):
        runs = []
        for r in range(REPEAT):
            conf = base_config(cluster, fk.endpoint, stream="bench", topic=topic)
            conf.update(props)
            conf.update({"kafka.group.id": "bench-%d-%d" % (n, r), "stats.interval.ms": "0",
                         "batch.linger.ms": "5", "offsets.commit.interval.ms": "1000"})
            for k in ("kafka.session.timeout.ms", "kafka.heartbeat.interval.ms"):
                conf.pop(k, None)
            path = tmp.file("bench.conf", config_text(conf))
            wall, cpu, rss, log = run_measured([KINESINK, "-c", path, "--exit-at-eof"], tmp.file("kinesink.log"))
            runs.append((kinesink_active_seconds(log), cpu, rss))
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        rss = max(r[2] for r in runs)
        fl = floors[topic]
        floor_rate = N / statistics.median(r[0] for r in fl)
        by = json_bytes if topic == "cdc.json" else avro_bytes
        rows.append((name, N / wall, by / wall / 1e6, cpu / N * 1e6, rss, (N / wall) / floor_rate))
        print("%-45s %9.0f rec/s  %.2f of floor  %.2f us CPU/record  %.0f MiB" %
              (name, rows[-1][1], rows[-1][5], rows[-1][3], rss), flush=True)

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
    wall = statistics.median(r[0] for r in runs)
    peer = ("peer: Python (confluent-kafka + botocore), Debezium JSON -> upsert", N / wall, json_bytes / wall / 1e6,
            statistics.median(r[1] for r in runs) / N * 1e6, max(r[2] for r in runs),
            (N / wall) / (N / statistics.median(r[0] for r in floors["cdc.json"])))
    rows.append(peer)
    upsert = next(r for r in rows if r[0] == "Debezium JSON -> upsert")
    print("%-45s %9.0f rec/s  %.2f of floor  %.2f us CPU/record  %.0f MiB" % (peer[0], peer[1], peer[5], peer[3], peer[4]),
          flush=True)
    print("kinesink Debezium JSON -> upsert is %.1fx the peer's records/s at %.2fx its CPU per record"
          % (upsert[1] / peer[1], upsert[3] / peer[3]), flush=True)

    # Per stage, one thread: jansson's parse of the value alone, kinesink's decode, decode + transform.
    stages = {}
    for typ in ("upsert", "debezium"):
        out = subprocess.run([os.path.join(BUILDDIR, "bench", "stages"), sample, typ], capture_output=True, text=True,
                             check=True).stdout.split()
        stages[typ] = [float(out[1]), float(out[3]), float(out[5])]
        print("stages, Debezium JSON -> %s, one thread: jansson parse %.2f us, decode %.2f us, decode + transform %.2f us"
              " per record" % (typ, *stages[typ]), flush=True)

    cmd = "make bench" + (" BENCH_RECORDS=%d" % N if N != 1000000 else "")
    with open(os.path.join(TOP, "bench", "RESULTS.md"), "w") as f:
        f.write("# Benchmark results\n\n")
        f.write("Command: `%s` (in the build directory). Machine: %s, %d cores. %d records per topic "
                "(Debezium JSON %.0f bytes/record, Avro %.0f), %d partitions, median of %d runs.\n\n"
                % (cmd, platform.machine(), os.cpu_count(), N, json_bytes / N, avro_bytes / N, PARTS, REPEAT))
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
        f.write("\nThe peer (`bench/peer.py`) is the bridge a team would write in Python with the usual libraries: "
                "confluent-kafka (librdkafka) and botocore, the same upsert output, PutRecords of 500, failed entries "
                "sent again, offsets committed after acknowledgement. kinesink Debezium JSON -> upsert moved "
                "**%.1fx** the peer's records/s at **%.2fx** its CPU per record in this run.\n"
                % (upsert[1] / peer[1], upsert[3] / peer[3]))
        f.write("\nWhere the CPU goes before the writer (`bench/stages` on 10,000 of the same events, one thread, "
                "µs per record):\n\n| Debezium JSON to | jansson `json_loadb` of the value alone | decode | "
                "decode + transform |\n|---|---:|---:|---:|\n")
        for typ, v in stages.items():
            f.write("| %s | %.2f | %.2f | %.2f |\n" % (typ, *v))
    print("wrote bench/RESULTS.md")
    tmp.remove()


if __name__ == "__main__":
    main()
