#!/usr/bin/env python3
"""A worker always stops: on its own at --exit-at-eof and in bounded time after SIGTERM, in every
state (start-up, consuming, idle, a rebalance under way), with several workers in one group.
scripts/test.sh also runs this file against the ThreadSanitizer build, where a signal handled
on another thread than the loop's shows as a data race and a non-zero exit.

Every committed offset must have been acknowledged: each record the fake endpoint accepted
carries its Kafka coordinates (raw.envelope = kafka), so a partition's committed offset is
checked against the offsets it accepted (a contiguous prefix from the group's start)."""
import json
import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import (FakeKinesis, Kinesink, MockCluster, base_config, main, wait_for)  # noqa: E402

PARTS = 8
# How long a worker may take to stop after SIGTERM: shutdown.timeout.ms below, plus leaving the
# group (KS_CLOSE_BOUND_MS, 10 s), plus a margin for a slow sanitizer build.
STOP_BOUND = 40


def produce(cluster, n, topic="t", start=0):
    msgs = [("k%d" % (i % 500), json.dumps({"i": start + i}), i % PARTS) for i in range(n)]
    cluster.produce(topic, msgs)
    return msgs


def worker_conf(cluster, fk, group, **extra):
    conf = base_config(cluster, fk.endpoint, topic="t", **{
        "type": "append-only", "input.format": "raw", "raw.envelope": "kafka", "kafka.group.id": group,
        "shutdown.timeout.ms": "10000", "rate.limit.percent": "0"})
    conf.update({k.replace("__", "."): v for k, v in extra.items()})
    return conf


def accepted_offsets(fk):
    """{partition: set of offsets} the endpoint accepted (the raw envelope's coordinates)."""
    got = {}
    for _key, data in fk.accepted():
        env = json.loads(data)
        got.setdefault(env["partition"], set()).add(env["offset"])
    return got


def check_committed_were_acked(cluster, fk, group):
    """Each partition's committed offset is within its contiguous accepted prefix."""
    acked = accepted_offsets(fk)
    committed = cluster.committed(group, "t", PARTS)
    for p, off in committed.items():
        if off <= 0:
            continue
        have = acked.get(p, set())
        missing = [o for o in range(off) if o not in have]
        assert not missing, "partition %d committed at %d, but offsets %s were never accepted" % (p, off, missing[:10])
    return committed


def stop_within(k, bound=STOP_BOUND, sig=signal.SIGTERM):
    """Send sig, wait for the exit; @returns (exit status, seconds it took)."""
    t0 = time.monotonic()
    k.proc.send_signal(sig)
    try:
        rc = k.proc.wait(bound)
    except Exception:
        k.stop(signal.SIGKILL)
        raise AssertionError("worker did not stop within %ds of %s:\n%s" % (bound, sig, k.log()[-4000:]))
    return rc, time.monotonic() - t0


def assert_clean(k, rc):
    log = k.log()
    assert "ThreadSanitizer" not in log and "AddressSanitizer" not in log, log[-6000:]
    assert rc == 0, "exit %s:\n%s" % (rc, log[-4000:])


def test_exit_at_eof_while_a_fourth_joins(tmp):
    """Three workers backfill with --exit-at-eof; a fourth joins while they work. Each leaves
    the group as its partitions reach their end, so the group rebalances again and again while
    members close: every worker must exit 0 on its own, with everything delivered and committed."""
    cluster = MockCluster(tmp, topics={"t": PARTS})
    # Four limited shards: the fleet takes some seconds, so the fourth joins mid-backfill.
    fk = FakeKinesis(tmp, "--shards", "4", "--shard-limits")
    msgs = produce(cluster, 24000)
    conf = worker_conf(cluster, fk, "backfill", **{"rate.limit.percent": "100"})
    ws = [Kinesink(tmp, conf, ["--exit-at-eof"], name="w%d" % i) for i in range(3)]
    wait_for(lambda: sum("assigned" in w.log() for w in ws) == 3 or not all(w.alive() for w in ws), 60,
             "three workers assigned")
    wait_for(lambda: len(fk.accepted()) >= 3000, 60, "records to flow")
    ws.append(Kinesink(tmp, conf, ["--exit-at-eof"], name="w3"))
    deadline = time.monotonic() + 120
    for w in ws:
        try:
            rc = w.proc.wait(max(1, deadline - time.monotonic()))
        except Exception:
            raise AssertionError("%s did not exit on its own:\n%s" % (w.log_path, w.log()[-4000:]))
        assert_clean(w, rc)
    committed = check_committed_were_acked(cluster, fk, "backfill")
    want = {p: sum(1 for m in msgs if m[2] == p) for p in range(PARTS)}
    assert committed == want, (committed, want)
    acked = accepted_offsets(fk)
    assert all(acked.get(p, set()) >= set(range(want[p])) for p in range(PARTS))


def _sigterm_at(tmp, cluster, fk, moment, rnd, group):
    """One worker of @p group, stopped by SIGTERM at @p moment; a second worker for 'joining'."""
    conf = worker_conf(cluster, fk, group)
    k = Kinesink(tmp, conf, name="%s-a" % group)
    other = None
    if moment == "start-up":
        # From the first line it logs (its configuration read, its peers being reached), within
        # its first 0.3 s: the moment of the signal, not a synchronisation.
        wait_for(lambda: k.log() or not k.alive(), 30, "the worker to start")
        time.sleep(rnd.uniform(0, 0.3))
    elif moment == "consuming":
        n = len(fk.accepted())
        wait_for(lambda: len(fk.accepted()) > n, 60, "records to flow")
    elif moment == "idle":
        wait_for(lambda: "assigned" in k.log(), 60, "the assignment")
        # Everything taken and committed: the worker waits for new messages.
        wait_for(lambda: sum(max(o, 0) for o in cluster.committed(group, "t", PARTS).values()) >= total[0],
                 60, "everything committed")
    elif moment == "joining":
        wait_for(lambda: "assigned" in k.log(), 60, "the assignment")
        other = Kinesink(tmp, conf, name="%s-b" % group)
        wait_for(lambda: "revoking" in k.log() or not k.alive(), 60, "the rebalance to begin")
        time.sleep(rnd.uniform(0, 0.5))  # somewhere inside the rebalance
    rc, took = stop_within(k)
    assert_clean(k, rc)
    if other:
        rc, _ = stop_within(other)
        assert_clean(other, rc)
    check_committed_were_acked(cluster, fk, group)
    return took


total = [0]


def test_sigterm_at_random_moments(tmp):
    """SIGTERM at start-up, while consuming, idle, and while a second worker joins, many times:
    each worker exits 0 in bounded time, and nothing unacknowledged is committed."""
    seed = int(os.environ.get("KS_SEED", time.time()))
    rnd = random.Random(seed)
    cluster = MockCluster(tmp, topics={"t": PARTS})
    fk = FakeKinesis(tmp)
    total[0] = len(produce(cluster, 20000))
    moments = ["start-up", "consuming", "idle", "joining"] * int(os.environ.get("KS_SHUTDOWN_ROUNDS", "2"))
    rnd.shuffle(moments)
    for i, moment in enumerate(moments):
        try:
            _sigterm_at(tmp, cluster, fk, moment, rnd, "g%d" % i)
        except AssertionError as e:
            raise AssertionError("round %d (%s, KS_SEED=%d): %s" % (i, moment, seed, e))


def test_second_signal_stops_at_once(tmp):
    """A worker whose records cannot be delivered (every PutRecords throttled while the hold
    file exists) drains for shutdown.timeout.ms after SIGTERM; a second SIGTERM ends it at once,
    with exit status 1 and nothing unacknowledged committed."""
    cluster = MockCluster(tmp, topics={"t": PARTS})
    hold = os.path.join(tmp.path, "hold")
    open(hold, "w").close()
    fk = FakeKinesis(tmp, "--hold-file", hold)
    produce(cluster, 2000)
    k = Kinesink(tmp, worker_conf(cluster, fk, "g", **{"shutdown.timeout.ms": "60000"}))
    wait_for(lambda: "assigned" in k.log(), 60, "the assignment")
    k.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "stopping: finishing" in k.log(), 30, "the shutdown to begin")
    assert k.alive(), k.log()[-3000:]
    rc, took = stop_within(k, bound=10)
    assert rc == 1, (rc, k.log()[-3000:])
    assert "SIGTERM again: exiting now" in k.log(), k.log()[-3000:]
    assert "ThreadSanitizer" not in k.log(), k.log()[-6000:]
    assert sum(max(o, 0) for o in cluster.committed("g", "t", PARTS).values()) == 0


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
