"""Quick A/B of raw mirror with ordering=none and ordering=key on the same data, run back to back
(the machine is shared: compare the ratio within a pair, not absolute numbers).

    cd build && python3 ../bench/orderab.py [pairs]      (BENCH_RECORDS, default 300,000)

Loads BENCH_RECORDS Debezium JSON events over BENCH_RECORDS/10 keys into the mock cluster (as
make bench does), then runs kinesink --exit-at-eof with its defaults against a fresh
`fakekinesis --count-only` stream of BENCH_SHARDS (512) shards with the limits enforced, as make
bench's pipeline rows do, with each ordering in turn; prints records/s, CPU per record and the
key/none ratio of every pair and the median ratio. Extra kinesink settings: BENCH_PROPS="k=v,k=v"
(rate.limit.percent=0 for the old runs without per-shard buckets). BENCH_KINESINK=path[:path...]: the
build(s) to run instead of src/kinesink (or a wrapper given the same arguments); with several,
each pair runs each in turn, for a before/after within one run.
"""
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("BENCH_RECORDS", "300000")
import run  # noqa: E402  (its generators and helpers; BENCH_RECORDS read at import)


def main():
    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    extra = dict(kv.split("=", 1) for kv in os.environ.get("BENCH_PROPS", "").split(",") if kv)
    # Several builds, ':'-separated, are run in turn within each pair (a before/after in one run).
    binaries = os.environ.get("BENCH_KINESINK", run.KINESINK).split(":")
    tmp = run.TempDir()
    topic = run.Topic("cdc.json", run.debezium_json_values, run.N, 480)
    cluster = run.MockCluster(tmp, topics={topic.name: topic.parts})
    topic.load(cluster)
    print("%d records, %d keys, %d partitions, %.0f bytes/record" %
          (topic.count, run.KEYS, topic.parts, topic.bytes / topic.count), flush=True)
    ratios = {b: [] for b in binaries}
    for p in range(pairs):
        for b, binary in enumerate(binaries):
            run.KINESINK = binary
            rate = {}
            for ordering in ("none", "key"):
                props = dict({"input.format": "raw", "type": "append-only", "ordering": ordering}, **extra)
                secs, cpu, _, _, _ = run.kinesink_run(tmp, cluster, topic.name, props,
                                                      "ab-%s-%d-%d" % (ordering, p, b))
                rate[ordering] = topic.count / secs
                with open(tmp.file("kinesink.log")) as f:
                    log = f.read()
                with open(tmp.file("ab-%s-%d-%d.log" % (ordering, p, b)), "w") as f:
                    f.write(log)
                print("pair %d %s ordering=%-4s %8.0f rec/s  %.2f us CPU/record  %d pauses" %
                      (p, binary, ordering, rate[ordering], cpu / topic.count * 1e6, log.count("pausing")),
                      flush=True)
            ratios[binary].append(rate["key"] / rate["none"])
            print("pair %d %s key/none %.2f" % (p, binary, ratios[binary][-1]), flush=True)
    for binary in binaries:
        print("%s: median key/none %.2f over %d pairs (%s)" % (binary, statistics.median(ratios[binary]), pairs,
              " ".join("%.2f" % r for r in ratios[binary])), flush=True)
    print("logs in %s" % tmp.path, flush=True)


if __name__ == "__main__":
    main()
