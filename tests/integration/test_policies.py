"""Bad records under each errors.policy, a worker fleet sharing a group, and a broker going
down and coming back — all through the real binary against the mock cluster over TCP."""
import json
import os
import re
import signal
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import (FakeKinesis, Kinesink, MockCluster, base_config, check_stream, debezium_event,  # noqa: E402
                     delivered, free_port, keyed_updates, main, run_kinesink, wait_for)


def rows(n, start=0, part=0):
    return [(json.dumps({"id": i}, separators=(",", ":")),
             debezium_event("c", None, {"id": i, "v": 1}), part) for i in range(start, start + n)]


POISON = (json.dumps({"id": 999}), '{"payload": {"op": "c", "after": ', 0)


def poisoned(tmp, policy, **extra):
    cluster = MockCluster(tmp, topics={"t": 1, "dlq": 1})
    fk = FakeKinesis(tmp)
    cluster.produce("t", rows(5) + [POISON] + rows(5, start=5), )
    conf = base_config(cluster, fk.endpoint, type="upsert", topic="t", **{"errors.policy": policy})
    conf.update(extra)
    rc, log = run_kinesink(tmp, conf)
    return cluster, fk, rc, log


def test_poison_fail_stops_before_it(tmp):
    cluster, fk, rc, log = poisoned(tmp, "fail")
    assert rc == 1, log[-2000:]
    assert "bad record (decode): t [0] @5: value is not JSON: line 1 column 33" in log, log[-2000:]
    assert "errors.policy=fail stops here" in log
    # Committed up to the poison message, never past it.
    assert cluster.committed("kinesink", "t", 1) == {0: 5}


def test_poison_skip_carries_on(tmp):
    cluster, fk, rc, log = poisoned(tmp, "skip")
    assert rc == 0, log[-2000:]
    assert "skipping bad record (decode): t [0] @5: value is not JSON" in log
    assert len(fk.accepted()) == 10
    assert cluster.committed("kinesink", "t", 1) == {0: 11}


def test_poison_dead_lettered_with_headers(tmp):
    cluster, fk, rc, log = poisoned(tmp, "dlq", **{"errors.dlq.topic": "dlq"})
    assert rc == 0, log[-2000:]
    assert len(fk.accepted()) == 10
    assert cluster.committed("kinesink", "t", 1) == {0: 11}
    dead = cluster.consume_all("dlq", 1)[0]
    assert len(dead) == 1
    m = dead[0]
    assert m.value() == POISON[1].encode() and m.key() == POISON[0].encode()
    h = {k: v.decode() for k, v in m.headers()}
    assert h["kinesink.error.reason"] == "not_json" and h["kinesink.error.stage"] == "decode", h
    assert h["kinesink.original.topic"] == "t" and h["kinesink.original.partition"] == "0", h
    assert h["kinesink.original.offset"] == "5", h
    assert "value is not JSON" in h["kinesink.error.message"], h


def test_oversized_record_is_a_bad_record(tmp):
    cluster = MockCluster(tmp, topics={"t": 1})
    fk = FakeKinesis(tmp)
    big = debezium_event("c", None, {"id": 1, "blob": "x" * (1024 * 1024 + 10)})
    cluster.produce("t", rows(2) + [('{"id":1}', big, 0)] + rows(2, start=2))
    rc, log = run_kinesink(tmp, base_config(cluster, fk.endpoint, type="upsert", topic="t",
                                            **{"errors.policy": "skip"}))
    assert rc == 0, log[-2000:]
    assert "t [0] @2: record too large:" in log and "exceed Kinesis' 1 MiB" in log, log[-2000:]
    assert len(fk.accepted()) == 4
    assert cluster.committed("kinesink", "t", 1) == {0: 5}


# Over Kinesis' 1 MiB and three times librdkafka's default message.max.bytes.
BIG = (json.dumps({"id": 1}), debezium_event("c", None, {"id": 1, "blob": "x" * (3 * 1024 * 1024)}), 0)
# Over the consumer's fetch.max.bytes (4 MiB) and the transform's output buffer (the mock cluster
# keeps 5 MiB a partition: no bigger).
HUGE = (json.dumps({"id": 1}), debezium_event("c", None, {"id": 1, "blob": "x" * (4608 * 1024)}), 0)


def big_record_dlq(tmp, push_err=None, record=BIG, metrics=None):
    cluster = MockCluster(tmp, topics={"t": 1, "dlq": 1})
    fk = FakeKinesis(tmp)
    cluster.produce("t", rows(2) + [record] + rows(2, start=2))
    if push_err is not None:
        # The next ProduceRequest the cluster sees is the dead letter's.
        cluster.command("push_err 0 %d" % push_err)
    conf = base_config(cluster, fk.endpoint, type="upsert", topic="t", **{
        "errors.policy": "dlq", "errors.dlq.topic": "dlq"})
    if metrics is None:
        rc, log = run_kinesink(tmp, conf)
        return cluster, fk, rc, log
    # Running on (no --exit-at-eof) until /metrics shows what @p metrics expects.
    port = free_port()
    conf["metrics.listen"] = "127.0.0.1:%d" % port
    k = Kinesink(tmp, conf)

    def scraped():
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return False
        return all(re.search(r"^%s %d$" % (re.escape(n), v), text, re.M) for n, v in metrics.items())
    wait_for(scraped, 60, "%s on /metrics" % metrics)
    return cluster, fk, k.stop(signal.SIGTERM, timeout=30), k.log()


def assert_dead_letter_of_big(m, stage="produce"):
    h = {k: v.decode() for k, v in m.headers()}
    assert h["kinesink.error.reason"] == "too_large" and h["kinesink.error.stage"] == stage, h
    assert h["kinesink.original.topic"] == "t" and h["kinesink.original.partition"] == "0", h
    assert h["kinesink.original.offset"] == "2", h
    return h


def big_record_dead_lettered_whole(tmp, record, stage):
    cluster, fk, rc, log = big_record_dlq(tmp, record=record)
    assert rc == 0, log[-2000:]
    assert sorted(k for k, _ in fk.accepted()) == sorted(k for k, _, _ in rows(4)), fk.accepted()
    assert cluster.committed("kinesink", "t", 1) == {0: 5}
    dead = cluster.consume_all("dlq", 1)[0]
    assert len(dead) == 1
    assert dead[0].value() == record[1].encode() and dead[0].key() == record[0].encode()
    h = assert_dead_letter_of_big(dead[0], stage)
    assert "kinesink.truncated.reason" not in h, h
    return log


def test_big_record_dead_lettered_at_default_settings(tmp):
    big_record_dead_lettered_whole(tmp, BIG, "produce")


def test_huge_record_dead_lettered_at_default_settings(tmp):
    # Over fetch.max.bytes: fetched alone all the same, within the transform's 10 MiB output, and
    # refused by the writer's record limit.
    log = big_record_dead_lettered_whole(tmp, HUGE, "produce")
    assert "t [0] @2: record too large: 4718610 bytes of data" in log, log[-2000:]


def test_big_record_refused_by_the_dlq_topic_goes_as_a_reference(tmp):
    cluster, fk, rc, log = big_record_dlq(tmp, push_err=10, metrics={  # MESSAGE_TOO_LARGE
        "kinesink_records_dead_lettered_total": 1, "kinesink_records_dead_lettered_truncated_total": 1,
        "kinesink_records_put_total": 4})
    assert rc == 0, log[-2000:]
    assert "t [0] @2: the dead letter (%d bytes of value) was refused by size (Broker: Message size too large); " \
           "writing a reference record" % len(BIG[1]) in log, log[-2000:]
    assert len(fk.accepted()) == 4
    assert cluster.committed("kinesink", "t", 1) == {0: 5}
    dead = cluster.consume_all("dlq", 1)[0]
    assert len(dead) == 1
    assert dead[0].value() == BIG[1].encode()[:1024] and dead[0].key() == BIG[0].encode()
    h = assert_dead_letter_of_big(dead[0])
    assert h["kinesink.original.size"] == str(len(BIG[1])), h
    assert h["kinesink.truncated.reason"] == "Broker: Message size too large", h


def test_dlq_producer_fatal_error_stops_before_the_record(tmp):
    # A sequence error on the head request: the idempotent producer can no longer vouch for
    # order or once-ness and raises a fatal error.
    cluster, fk, rc, log = big_record_dlq(tmp, push_err=45, record=POISON)  # OUT_OF_ORDER_SEQUENCE_NUMBER
    assert rc == 1, log[-2000:]
    assert "cannot dead-letter t [0] @2 to dlq: the dead-letter producer failed for good: ProduceRequest " \
           "for dlq [0] with 1 message(s) failed due to sequence desynchronization" in log, log[-3000:]
    assert cluster.committed("kinesink", "t", 1) == {0: 2}
    assert cluster.consume_all("dlq", 1, timeout=5)[0] == []


def fleet_one_killed_one_added(tmp, strategy, fk_args=(), versions=20, **extra):
    parts = 6
    cluster = MockCluster(tmp, topics={"t": parts})
    fk = FakeKinesis(tmp, *fk_args)
    # 120 rows, 20 versions each: partitions move with versions of their keys in flight.
    msgs = keyed_updates(120 * versions, 120, parts)
    conf = base_config(cluster, fk.endpoint, type="upsert", topic="t", **{
        "max.inflight.records": "50", "batch.linger.ms": "50"})
    if strategy:
        conf["kafka.partition.assignment.strategy"] = strategy
    conf.update(extra)
    workers = [Kinesink(tmp, conf, name="w%d" % i) for i in range(3)]
    wait_for(lambda: all("assigned" in w.log() for w in workers), 60, "three workers to get partitions")
    cluster.produce("t", msgs[: len(msgs) // 2])
    wait_for(lambda: len(fk.accepted()) >= 300, 60, "records to flow")
    workers[0].stop(signal.SIGKILL)
    workers.append(Kinesink(tmp, conf, name="w3"))
    cluster.produce("t", msgs[len(msgs) // 2:])
    wait_for(lambda: delivered(fk.accepted(), msgs), 120, "every record to arrive, each key's newest last")
    wait_for(lambda: sum(max(0, o) for o in cluster.committed("kinesink", "t", parts).values()) == len(msgs),
             60, "every offset to be committed")
    for w in workers[1:]:
        assert w.stop(signal.SIGTERM, timeout=30) == 0, w.log()[-2000:]
    # At least once (the killed worker's records go again), per key in order, each key's newest last.
    check_stream(fk.accepted(), msgs, exactly_once=False)


def test_fleet_of_workers_one_killed_one_added(tmp):
    # The default, cooperative-sticky: commits that meet the rebalance wait for it to end (a
    # commit with a stale generation would make librdkafka give the whole assignment up, and
    # three workers doing that to each other never settle).
    # Without that, this run never got every offset committed.
    fleet_one_killed_one_added(tmp, None)


def test_fleet_eager_protocol(tmp):
    fleet_one_killed_one_added(tmp, "range")


def test_fleet_revokes_with_answers_in_flight(tmp):
    # Answers come 0.2 to 0.8 s after the entries were accepted and a revoked partition's records
    # get 50 ms to finish: partitions leave workers with acknowledgements still to come, which
    # then reach the retired trackers (under AddressSanitizer in scripts/test.sh, a tracker freed
    # at the revoke is a use-after-free here).
    fleet_one_killed_one_added(tmp, "range", ("--latency-ms", "200:800"), versions=8, **{"rebalance.drain.ms": "50"})


def test_broker_down_and_back(tmp):
    cluster = MockCluster(tmp, brokers=3, topics={"t": 3})
    fk = FakeKinesis(tmp)
    msgs = keyed_updates(900, 90, 3)
    cluster.produce("t", msgs[:450])
    k = Kinesink(tmp, base_config(cluster, fk.endpoint, type="upsert", topic="t"))
    wait_for(lambda: len(fk.accepted()) >= 100, 60, "records to flow")
    cluster.down(2)
    cluster.up(2)
    cluster.produce("t", msgs[450:])
    wait_for(lambda: delivered(fk.accepted(), msgs), 90, "every record after the broker came back")
    wait_for(lambda: sum(max(0, o) for o in cluster.committed("kinesink", "t", 3).values()) == len(msgs), 60,
             "every offset to be committed")
    assert k.stop(signal.SIGTERM, timeout=30) == 0, k.log()[-2000:]
    check_stream(fk.accepted(), msgs, exactly_once=False)


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
