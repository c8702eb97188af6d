"""The delivery contract under faults, against the tests' fault-injecting endpoint and the mock
Kafka cluster over TCP: nothing lost, no accepted entry sent twice, per-key order kept,
committed offsets never past an unacknowledged record."""
import json
import os
import re
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import (FakeKinesis, Kinesink, MockCluster, base_config, check_stream, main,  # noqa: E402
                     per_partition, run_kinesink, wait_for)
from harness import keyed_updates as harness_keyed_updates  # noqa: E402

PARTS = 4


def keyed_updates(n, keys):
    return harness_keyed_updates(n, keys, PARTS)


def test_faults_nothing_lost_order_kept(tmp):
    cluster = MockCluster(tmp, topics={"t": PARTS})
    fk = FakeKinesis(tmp, "--fail-rate", "0.2", "--http500-rate", "0.1", "--drop-rate", "0.1",
                     "--throttle-rate", "0.05", "--seed", "7")
    msgs = keyed_updates(3000, 50)
    cluster.produce("t", msgs)
    conf = base_config(cluster, fk.endpoint, type="upsert", topic="t", **{
        "retry.backoff.ms": "5", "retry.backoff.max.ms": "50", "batch.max.records": "100"})
    rc, log = run_kinesink(tmp, conf, timeout=120)
    assert rc == 0, log[-3000:]
    accepted = fk.accepted()
    check_stream(accepted, msgs, exactly_once=True)
    assert len(accepted) == len(msgs), (len(accepted), len(msgs))
    assert cluster.committed("kinesink", "t", PARTS) == per_partition(msgs, PARTS)


def test_ordering_none_still_delivers_everything(tmp):
    cluster = MockCluster(tmp, topics={"t": PARTS})
    fk = FakeKinesis(tmp, "--fail-rate", "0.2", "--seed", "3")
    msgs = keyed_updates(2000, 5)
    cluster.produce("t", msgs)
    conf = base_config(cluster, fk.endpoint, type="upsert", topic="t", ordering="none", **{
        "retry.backoff.ms": "5", "retry.backoff.max.ms": "20"})
    rc, log = run_kinesink(tmp, conf, timeout=120)
    assert rc == 0, log[-3000:]
    accepted = fk.accepted()
    assert sorted(accepted) == sorted((k, json.dumps(json.loads(v)["after"], sort_keys=True, separators=(",", ":")).encode())
                                      for k, v, _ in msgs)


def test_signatures_verified_by_endpoint(tmp):
    cluster = MockCluster(tmp, topics={"t": 1})
    fk = FakeKinesis(tmp, "--verify-sigv4", "AKIDTEST:testsecret")
    msgs = keyed_updates(50, 5)
    cluster.produce("t", [(k, v, 0) for k, v, _ in msgs])
    rc, log = run_kinesink(tmp, base_config(cluster, fk.endpoint, type="upsert", topic="t"))
    assert rc == 0, log[-3000:]
    assert len(fk.accepted()) == 50


def lost_answers_run(tmp, fk_args, **extra):
    """Answers lost after the entries were accepted: the writer cannot tell them from entries never
    received, so it sends them again. At least once, per key in order, each key's newest last,
    and every offset committed."""
    cluster = MockCluster(tmp, topics={"t": PARTS})
    fk = FakeKinesis(tmp, *fk_args)
    msgs = keyed_updates(1000, 50)
    cluster.produce("t", msgs)
    conf = base_config(cluster, fk.endpoint, type="upsert", topic="t", **{
        "retry.backoff.ms": "5", "retry.backoff.max.ms": "50", "batch.max.records": "50"})
    conf.update(extra)
    rc, log = run_kinesink(tmp, conf, timeout=120)
    assert rc == 0, log[-3000:]
    accepted = fk.accepted()
    check_stream(accepted, msgs, exactly_once=False)
    assert len(accepted) > len(msgs), "no answer was lost: the test proves nothing (%d)" % len(accepted)
    assert cluster.committed("kinesink", "t", PARTS) == per_partition(msgs, PARTS)
    return log


def test_answers_lost_after_acceptance_are_sent_again(tmp):
    # One request in five is accepted (its entries logged) and its connection closed unanswered.
    lost_answers_run(tmp, ("--accept-drop-rate", "0.2", "--seed", "5"))


def test_answers_later_than_request_timeout_are_sent_again(tmp):
    # Entries accepted at once, answers 0 to 400 ms later; the writer waits 200 ms
    # (request.timeout.ms): about half the answers come too late and their records go again.
    log = lost_answers_run(tmp, ("--latency-ms", "0:400", "--seed", "5"), **{"request.timeout.ms": "200"})
    assert "Timeout was reached" in log or "timed out" in log, log[-3000:]


def test_signature_for_another_region_is_refused(tmp):
    # The endpoint stands for us-east-1 and botocore checks each signature for that region, as the
    # service does: a worker whose aws.region does not match its endpoint is refused, not served.
    cluster = MockCluster(tmp, topics={"t": 1})
    fk = FakeKinesis(tmp, "--verify-sigv4", "AKIDTEST:testsecret", "--region", "us-east-1")
    cluster.produce("t", [(k, v, 0) for k, v, _ in keyed_updates(5, 5)])
    rc, log = run_kinesink(tmp, base_config(cluster, fk.endpoint, type="upsert", topic="t", **{"aws.region": "eu-west-1"}))
    assert rc == 1, log[-2000:]
    assert "Credential should be scoped to a valid region, not 'eu-west-1'" in log, log[-2000:]
    assert fk.accepted() == []
    assert all(o < 0 for o in cluster.committed("kinesink", "t", 1).values())


def test_wrong_secret_is_fatal_with_clear_error(tmp):
    cluster = MockCluster(tmp, topics={"t": 1})
    fk = FakeKinesis(tmp, "--verify-sigv4", "AKIDTEST:othersecret")
    cluster.produce("t", keyed_updates(5, 5))
    rc, log = run_kinesink(tmp, base_config(cluster, fk.endpoint, type="upsert", topic="t"))
    assert rc == 1, log[-2000:]
    assert "InvalidSignatureException" in log and "stream 's1'" in log and "request id" in log, log[-2000:]
    assert "testsecret" not in log
    assert all(o < 0 for o in cluster.committed("kinesink", "t", 1).values())


def test_expired_token_refreshes_once(tmp):
    cluster = MockCluster(tmp, topics={"t": 1})
    fk = FakeKinesis(tmp, "--expired-token", "1")
    msgs = keyed_updates(20, 4)
    cluster.produce("t", [(k, v, 0) for k, v, _ in msgs])
    rc, log = run_kinesink(tmp, base_config(cluster, fk.endpoint, type="upsert", topic="t"))
    assert rc == 0, log[-2000:]
    assert "credentials expired" in log
    assert len(fk.accepted()) == 20


def test_delivery_timeout_stops_without_committing(tmp):
    cluster = MockCluster(tmp, topics={"t": 1})
    fk = FakeKinesis(tmp, "--fail-rate", "1.0")
    cluster.produce("t", [(k, v, 0) for k, v, _ in keyed_updates(3, 3)])
    conf = base_config(cluster, fk.endpoint, type="upsert", topic="t", **{
        "delivery.timeout.ms": "400", "retry.backoff.ms": "20", "retry.backoff.max.ms": "50"})
    rc, log = run_kinesink(tmp, conf)
    assert rc == 1, log[-2000:]
    assert re.search(r"t \[0\] @\d: record of partition key '\{\"id\":\d\}' \(Kafka offset \d\) not accepted by stream "
                     r"s1 after \d+ attempts over \d+ ms \(delivery.timeout.ms\): last error "
                     r"ProvisionedThroughputExceededException", log), log[-2000:]
    assert fk.accepted() == []
    # Nothing was accepted, so nothing was committed past the first message.
    assert cluster.committed("kinesink", "t", 1)[0] <= 0


def test_kill9_and_restart_loses_nothing(tmp):
    cluster = MockCluster(tmp, topics={"t": PARTS})
    fk = FakeKinesis(tmp, "--fail-rate", "0.1", "--seed", "11")
    msgs = keyed_updates(20000, 200)
    cluster.produce("t", msgs)
    # The endpoint's one shard throttles a tenth of the entries whatever the rate: the adaptive
    # per-shard rate takes that for a shard at capacity and slows to its floor, which 20,000
    # records would take minutes to pass. This test is about kill -9, not shard capacity.
    conf = base_config(cluster, fk.endpoint, type="upsert", topic="t", **{"retry.backoff.ms": "5",
                                                                           "rate.limit.percent": "0"})
    k = Kinesink(tmp, conf, ["--exit-at-eof"], name="first")
    # Kill it while it is moving data: once part of the records were accepted.
    wait_for(lambda: len(fk.accepted()) >= 3000 or not k.alive(), 60, "records to flow")
    assert k.alive(), "finished before it could be killed: " + k.log()[-2000:]
    k.stop(signal.SIGKILL)
    committed = cluster.committed("kinesink", "t", PARTS)
    accepted = fk.accepted()
    # The committed offsets never pass an unacknowledged record.
    for p, off in committed.items():
        want = [json.loads(v)["after"]["v"] for key, v, part in msgs if part == p][:max(off, 0)]
        keys = [key for key, v, part in msgs if part == p][:max(off, 0)]
        acc = {}
        for key, data in accepted:
            acc.setdefault(key, set()).add(json.loads(data)["v"])
        for key, v in zip(keys, want):
            assert v in acc.get(key, ()), "offset of partition %d committed past unacknowledged %s v%d" % (p, key, v)
    rc, log = run_kinesink(tmp, conf, name="second", timeout=120)
    assert rc == 0, log[-3000:]
    check_stream(fk.accepted(), msgs, exactly_once=False)


def acked_prefix(msgs, accepted, part):
    """How many of partition part's messages, from its first on, were all accepted: the offset a
    worker that commits only acknowledged records commits for it."""
    seen = set((key, json.loads(data)["v"]) for key, data in accepted)
    n = 0
    for key, v, p in msgs:
        if p != part:
            continue
        if (key, json.loads(v)["after"]["v"]) not in seen:
            break
        n += 1
    return n


def test_sigterm_finishes_inflight_and_commits(tmp):
    # Every answer comes 300 to 600 ms after the entries were accepted: at the signal requests are
    # in flight, and the records they carry are the ones the stop must finish, not abandon. The
    # worker holds at most 300 records, so the stop comes with most of the topic not read yet.
    cluster = MockCluster(tmp, topics={"t": PARTS})
    fk = FakeKinesis(tmp, "--latency-ms", "300:600")
    msgs = keyed_updates(5000, 100)
    cluster.produce("t", msgs)
    k = Kinesink(tmp, base_config(cluster, fk.endpoint, type="upsert", topic="t", **{"max.inflight.records": "300"}))
    wait_for(lambda: len(fk.accepted()) >= 500, 60, "records to flow")
    os.killpg(k.proc.pid, signal.SIGTERM)
    at_signal = len(fk.accepted())
    rc = k.wait(30)
    assert rc == 0, k.log()[-2000:]
    accepted = fk.accepted()
    # Records were in flight: accepted after the signal was sent (the answers still to come).
    assert len(accepted) > at_signal, (at_signal, len(accepted))
    assert len(accepted) < len(msgs) // 2, "most of the topic was delivered before the signal: %d" % len(accepted)
    committed = cluster.committed("kinesink", "t", PARTS)
    # Each partition's commit is exactly its acknowledged prefix: past it would lose a record, short
    # of it means the records answered after the signal were abandoned.
    for p in range(PARTS):
        assert max(committed[p], 0) == acked_prefix(msgs, accepted, p), (p, committed, acked_prefix(msgs, accepted, p))
    assert "stopping" in k.log() and "done" in k.log()


def test_failed_commit_is_sent_again(tmp):
    # The first three OffsetCommit requests fail (OFFSET_METADATA_TOO_LARGE, not retried by
    # librdkafka). Everything is delivered before kinesink is stopped: the offsets must still
    # reach the end while it idles, so the failed commit has to be sent again, not forgotten.
    cluster = MockCluster(tmp, topics={"t": 1})
    fk = FakeKinesis(tmp)
    msgs = [(m[0], m[1], 0) for m in keyed_updates(200, 10)]
    cluster.produce("t", msgs)
    cluster.command("push_err 8 12 3")
    k = Kinesink(tmp, base_config(cluster, fk.endpoint, type="upsert", topic="t", **{"log.level": "debug"}))
    wait_for(lambda: len(fk.accepted()) == len(msgs), 60, "every record to be accepted")
    wait_for(lambda: cluster.committed("kinesink", "t", 1) == {0: len(msgs)}, 30, "the last offset to be committed")
    assert k.stop(signal.SIGTERM, timeout=30) == 0, k.log()[-2000:]
    assert "failed (Broker: Offset metadata string too large): sending it again" in k.log(), k.log()[-3000:]


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
