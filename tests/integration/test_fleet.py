"""A fleet: several kinesink processes in one consumer group write Debezium upserts into one
kinesis-mock stream of 4 shards, aggregated per shard (aggregation=kpl), two of them at 1 % of the
shards' limits (a backlog at every revoke) and the others at the full limits, while a fourth worker
joins and one of the first three leaves (SIGTERM) mid-run. Everything is read
back from every shard and taken apart by the awslabs deaggregator (npm aws-kinesis-agg) with the
KCL's rule. Every row version arrives; per key a record is always the next version or a replay
(the partition's new owner reading again from the committed offset), never a jump forward, which
is what an older version landing after a newer one looks like; each key's last record is its newest
version; the replayed duplicates are counted; the offsets are committed."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import (Kinesink, KinesisMock, MockCluster, base_config, deaggregate, debezium_event, main,  # noqa: E402
                     per_partition, wait_for)

PARTS = 8
KEYS = 400
TOTAL = 4000


def updates(n):
    """n Debezium updates over KEYS rows of about 300 bytes, as (key, value, partition): the row's
    version counts up per key, the key's partition is its id modulo PARTS."""
    version, out = {}, []
    for i in range(n):
        k = i % KEYS
        version[k] = version.get(k, 0) + 1
        row = {"id": k, "v": version[k], "pad": "x" * 300}
        out.append((json.dumps({"id": k}, separators=(",", ":")), debezium_event("u", dict(row, v=version[k] - 1), row),
                    k % PARTS))
    return out


def visible(records):
    user = deaggregate(records)
    return [(r["partitionKey"], r["data"]) for r in user if not r["dropped"]]


def check_fleet(seen, produced):
    """Per key: every version, each record the next version or a replay; the last the newest.
    @returns the replayed duplicates."""
    got, want = {}, {}
    for key, data in seen:
        got.setdefault(key, []).append(json.loads(data)["v"])
    for k, v, _ in produced:
        want.setdefault(k, []).append(json.loads(v)["after"]["v"])
    assert got.keys() == want.keys(), (sorted(set(want) - set(got))[:5], sorted(set(got) - set(want))[:5])
    for k, versions in want.items():
        seq = got[k]
        assert set(seq) == set(versions), "key %s lost versions %s" % (k, sorted(set(versions) - set(seq))[:10])
        prev = 0
        for i, v in enumerate(seq):
            assert v == prev + 1 or v <= prev, "key %s: version %d after %d (records %s)" % (k, v, prev, seq[max(0, i - 5):i + 5])
            prev = v
        assert seq[-1] == versions[-1], "key %s ends on version %d, not its newest %d" % (k, seq[-1], versions[-1])
    return len(seen) - len(produced)


def test_workers_join_and_leave(tmp):
    import threading
    cluster = MockCluster(tmp, topics={"t": PARTS})
    km = KinesisMock(tmp, {"s1": 4})
    conf = base_config(cluster, km.endpoint, type="upsert", topic="t", aggregation="kpl", **{
        # 1 % of each shard's limits (about 120 records/s over the 4 shards, for 500/s produced)
        # and no drain: each revoke finds its partitions' records queued (dropped, read again by
        # the new owner) and in flight (awaited). Workers b and d write at the full limits.
        "rate.limit.percent": "1", "batch.linger.ms": "50", "rebalance.drain.ms": "0",
        "shutdown.timeout.ms": "10000",
        "kafka.partition.assignment.strategy": "cooperative-sticky"})
    msgs = updates(TOTAL)
    sent, rest, done = [], threading.Event(), threading.Event()

    def producer():
        # Half at once (a backlog of many seconds at the workers' rate), then a flow while workers
        # join and leave; the rest at once when told.
        i = 0
        while i < len(msgs):
            n = len(msgs) - i if rest.is_set() else len(msgs) // 2 if not i else 100
            cluster.produce("t", msgs[i:i + n])
            sent.extend(msgs[i:i + n])
            i += n
            rest.wait(0.2)
        done.set()

    def committed_some(n):
        return lambda: sum(v for v in cluster.committed("kinesink", "t", PARTS).values() if v > 0) >= n

    # b, which leaves, writes at the full limits, so that it has little left when it stops (within
    # shutdown.timeout.ms: it exits 0); a and c keep a backlog.
    fast = dict(conf, **{"rate.limit.percent": "100"})
    workers = {n: Kinesink(tmp, fast if n == "b" else conf, name=n) for n in ("a", "b", "c")}
    flow = threading.Thread(target=producer, daemon=True)
    flow.start()
    try:
        wait_for(committed_some(200), 120, "the first workers to commit")
        # A fourth worker joins while records flow: partitions move to it.
        # It writes at the service's full limits: what it re-reads reaches the stream long before
        # what the others still hold of the same partitions would.
        workers["d"] = Kinesink(tmp, fast, name="d")
        wait_for(lambda: "assigned" in workers["d"].log() and
                 "assigned 0 partitions" not in workers["d"].log().split("assigned")[1][:20], 60,
                 "the fourth worker's partitions")
        # One of the first leaves while records flow: its partitions move to the others.
        assert workers["b"].stop(timeout=30) == 0, workers["b"].log()[-3000:]
    finally:
        rest.set()
    wait_for(done.is_set, 60, "every record produced")
    want = per_partition(msgs, PARTS)
    wait_for(lambda: cluster.committed("kinesink", "t", PARTS) == want or
             not all(w.alive() for n, w in workers.items() if n != "b"), 180, "every record committed")
    for n, w in workers.items():
        if n != "b":
            assert w.alive(), w.log()[-3000:]
    logs = {n: w.log() for n, w in workers.items()}
    for n, w in workers.items():
        if n != "b":
            assert w.stop(timeout=30) == 0, logs[n][-3000:]
    dropped = sum(int(line.split("partitions revoked: ")[1].split()[0]) for lg in logs.values()
                  for line in lg.splitlines() if "partitions revoked: " in line)
    dups = check_fleet(visible(km.read_records("s1")), msgs)
    print("%d records, %d replayed duplicates seen by a KCL consumer (%.1f %%); %d records not sent at revokes"
          % (len(msgs), dups, 100.0 * dups / len(msgs), dropped))
    assert dropped > 0 and dups >= 0


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
