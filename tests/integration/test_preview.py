"""--preview N against the mock cluster: the records shown are the ones a run sends (same decode
and transform), bad records come with errors.policy's verdict, nothing reaches Kinesis, nothing
is committed, a running member of the group is not rebalanced, and the preview stops at the
partitions' end."""
import base64
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import (KINESINK, FakeKinesis, Kinesink, MockCluster, base_config, config_text,  # noqa: E402
                     debezium_event, main, run_kinesink, wait_for)

NO_OFFSET = -1001  # librdkafka's OFFSET_INVALID: nothing committed


def preview(tmp, conf, *args, timeout=60):
    path = tmp.file("preview.conf", config_text(conf))
    p = subprocess.run([KINESINK, "-c", path] + list(args), capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def changes(n, start=0):
    """(key, value, partition): creates, then an update of each even id."""
    msgs = [(json.dumps({"id": i}), debezium_event("c", None, {"id": i, "name": "n%d" % i}), i % 2)
            for i in range(start, start + n)]
    msgs += [(json.dumps({"id": i}), debezium_event("u", {"id": i, "name": "n%d" % i}, {"id": i, "name": "m%d" % i}),
              i % 2) for i in range(start, start + n, 2)]
    return msgs


def test_json_preview_shows_what_a_run_sends_and_touches_nothing(tmp):
    cluster = MockCluster(tmp, topics={"t": 2})
    cluster.produce("t", changes(20) + [('{"id":99}', "not json", 1), ('{"id":98}', None, 0)])
    fk = FakeKinesis(tmp)
    conf = base_config(cluster, fk.endpoint, type="debezium", topic="t", **{"errors.policy": "skip"})
    rc, out, err = preview(tmp, conf, "--preview", "1000", "--preview-format", "json")
    assert rc == 0, err
    lines = [json.loads(l) for l in out.splitlines()]
    recs = [l for l in lines if "partition_key" in l]
    bad = [l for l in lines if "error" in l]
    none = [l for l in lines if l.get("verdict") == "no_record"]
    assert len(recs) == 30 and len(bad) == 1 and len(none) == 1, lines
    assert bad[0]["stage"] == "decode" and bad[0]["verdict"] == "skip" and bad[0]["partition"] == 1, bad
    assert bad[0]["error"].startswith("t [1] @10: "), bad
    assert none[0]["reason"] == "tombstone" and none[0]["op"] == "-", none
    assert all(isinstance(r["data"], str) and "data_base64" not in r for r in recs)
    assert "32 messages from 2 partitions: 30 records, 1 bad, 1 without a record" in err, err
    # Nothing was sent and nothing committed: the run that follows starts at the beginning.
    assert fk.accepted() == []
    assert cluster.committed("kinesink", "t", 2) == {0: NO_OFFSET, 1: NO_OFFSET}
    rc, log = run_kinesink(tmp, conf)
    assert rc == 0, log
    sent = fk.accepted()
    shown = [(r["partition_key"], r["data"].encode()) for r in recs]
    assert sorted(shown) == sorted(sent), (shown[:3], sent[:3])
    assert cluster.committed("kinesink", "t", 2) == {0: 21, 1: 11}


def test_text_preview_from_committed_offsets_stops_after_n_and_at_the_end(tmp):
    cluster = MockCluster(tmp, topics={"t": 1})
    fk = FakeKinesis(tmp)
    conf = base_config(cluster, fk.endpoint, type="upsert", topic="t")
    cluster.produce("t", [(json.dumps({"id": i}), debezium_event("c", None, {"id": i}), 0) for i in range(10)])
    rc, log = run_kinesink(tmp, conf)
    assert rc == 0, log
    assert cluster.committed("kinesink", "t", 1) == {0: 10}
    cluster.produce("t", [(json.dumps({"id": i}), debezium_event("c", None, {"id": i}), 0) for i in range(10, 15)])
    rc, out, err = preview(tmp, conf, "--preview", "3")
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 3, out
    assert re.fullmatch(r't \[0\] @10 c key=\S+ data=\{.*"id":10.*\}', lines[0]), lines[0]
    assert lines[2].startswith("t [0] @12 c key="), lines
    # More than there is: stops at the end of the partition instead of waiting for more.
    rc, out, err = preview(tmp, conf, "--preview", "100")
    assert rc == 0, err
    assert [l.split()[2] for l in out.splitlines()] == ["@%d" % o for o in range(10, 15)], out
    rc, out, err = preview(tmp, conf, "--preview", "100", "--from-beginning")
    assert rc == 0 and len(out.splitlines()) == 15, (out, err)
    assert cluster.committed("kinesink", "t", 1) == {0: 10}
    assert len(fk.accepted()) == 10


def test_bad_records_come_with_the_policy_verdict(tmp):
    cluster = MockCluster(tmp, topics={"t": 1})
    cluster.produce("t", [('{"id":1}', "not json", 0), ('{"id":2}', debezium_event("c", None, {"id": 2}), 0)])
    fk = FakeKinesis(tmp)
    conf = base_config(cluster, fk.endpoint, type="upsert", topic="t")
    verdicts = {"fail": "would stop the worker (errors.policy=fail)",
                "skip": "would be skipped (errors.policy=skip)",
                "dlq": "would be dead-lettered to t-dlq (errors.policy=dlq)"}
    for policy, verdict in verdicts.items():
        rc, out, err = preview(tmp, conf, "--preview", "5", "-X", "errors.policy=" + policy,
                               "-X", "errors.dlq.topic=t-dlq")
        assert rc == 0, err
        lines = out.splitlines()
        assert len(lines) == 2, out
        assert lines[0].startswith("bad record (decode): t [0] @0: ") and lines[0].endswith(" -> " + verdict), lines
        assert lines[1].startswith("t [0] @1 c key="), lines
    # A record past Kinesis' limits is judged by the writer's own check (stage produce).
    cluster.produce("t", [('{"id":3}', debezium_event("c", None, {"id": 3, "blob": "x" * (1100 * 1024)}), 0)])
    rc, out, err = preview(tmp, conf, "--preview", "5", "--preview-format", "json")
    assert rc == 0, err
    big = [json.loads(l) for l in out.splitlines()][-1]
    assert big["offset"] == 2 and big["stage"] == "produce" and big["reason"] == "too_large", big
    assert big["verdict"] == "fail", big


def test_records_checked_against_the_streams_own_size(tmp):
    """A record over 1 MiB is checked against the stream's own maximum record size, as a run's
    writer learns it (DescribeStreamSummary's MaxRecordSizeInKiB, here 2048 KiB): one of 1.1 MiB
    is shown as a record, one of 2.1 MiB is too large for 2 MiB. A stream that cannot be described
    leaves the preview with the 1 MiB every stream takes, and a warning that says so."""
    cluster = MockCluster(tmp, topics={"t": 1})
    cluster.produce("t", [('{"id":1}', debezium_event("c", None, {"id": 1, "blob": "x" * (1100 * 1024)}), 0),
                          ('{"id":2}', debezium_event("c", None, {"id": 2, "blob": "y" * (2100 * 1024)}), 0),
                          ('{"id":3}', debezium_event("c", None, {"id": 3}), 0)])
    fk = FakeKinesis(tmp, "--max-record-kib", "2048")
    conf = base_config(cluster, fk.endpoint, type="upsert", topic="t")
    rc, out, err = preview(tmp, conf, "--preview", "5", "--preview-format", "json")
    assert rc == 0, err
    lines = [json.loads(ln) for ln in out.splitlines()]
    assert [ln["offset"] for ln in lines] == [0, 1, 2], lines
    assert "partition_key" in lines[0] and len(lines[0]["data"]) > 1100 * 1024, lines[0].keys()
    assert lines[1]["reason"] == "too_large" and "exceed Kinesis' 2 MiB" in lines[1]["error"], lines[1]
    assert "partition_key" in lines[2], lines[2]
    assert "stream 's1' takes records up to 2048 KiB" in err, err
    assert fk.accepted() == []
    fk.stop()
    # The endpoint is gone: the stream cannot be described.
    rc, out, err = preview(tmp, conf, "--preview", "5", "--preview-format", "json")
    assert rc == 0, err
    lines = [json.loads(ln) for ln in out.splitlines()]
    assert [ln.get("reason") for ln in lines] == ["too_large", "too_large", None], lines
    assert "exceed Kinesis' 1 MiB" in lines[0]["error"], lines[0]
    assert err.count("records for stream 's1' are checked against 1 MiB, the size every stream takes") == 1, err


def test_binary_data_is_base64_in_json(tmp):
    cluster = MockCluster(tmp, topics={"raw": 1})
    blob = bytes(range(256))
    cluster.produce("raw", [(b"k1", blob, 0), (b"k2", b"plain text", 0)])
    fk = FakeKinesis(tmp)
    conf = base_config(cluster, fk.endpoint, topic="raw", **{"input.format": "raw", "type": "append-only"})
    rc, out, err = preview(tmp, conf, "--preview", "5", "--preview-format", "json")
    assert rc == 0, err
    a, b = [json.loads(l) for l in out.splitlines()]
    assert a["data_base64"] is True and base64.b64decode(a["data"]) == blob, a
    assert b["data"] == "plain text" and "data_base64" not in b, b
    rc, out, err = preview(tmp, conf, "--preview", "1")
    assert rc == 0 and " data=base64:" + base64.b64encode(blob).decode() in out, out


def test_preview_does_not_rebalance_a_running_member(tmp):
    cluster = MockCluster(tmp, topics={"t": 2})
    cluster.produce("t", changes(10))
    fk = FakeKinesis(tmp)
    # A session no late heartbeat on a loaded machine loses: a rebalance can only be the preview's.
    conf = base_config(cluster, fk.endpoint, type="upsert", topic="t", **{
        "kafka.session.timeout.ms": "30000", "kafka.max.poll.interval.ms": "30000"})
    k = Kinesink(tmp, conf)
    wait_for(lambda: len(fk.accepted()) == 15 and "assigned 2 partitions" in k.log(), 60,
             "the running member to own both partitions and send everything")
    assigned = k.log().count("assigned ")
    rc, out, err = preview(tmp, conf, "--preview", "100", "--from-beginning")
    assert rc == 0 and len(out.splitlines()) == 15, (out, err)
    cluster.produce("t", changes(2, start=100))
    wait_for(lambda: len(fk.accepted()) == 18, 60, "the member to go on")
    log = k.log()
    assert log.count("assigned ") == assigned and "revoking" not in log, log
    assert k.stop() == 0


def test_regex_topics(tmp):
    cluster = MockCluster(tmp, topics={"orders-a": 1, "orders-b": 2, "other": 1})
    for t in ("orders-a", "orders-b", "other"):
        cluster.produce(t, [(json.dumps({"id": 1}), debezium_event("c", None, {"id": 1}), 0)])
    conf = base_config(cluster, "http://127.0.0.1:9", type="upsert", topic="^orders-.*")
    rc, out, err = preview(tmp, conf, "--preview", "10", "--preview-format", "json")
    assert rc == 0, err
    assert sorted(json.loads(l)["topic"] for l in out.splitlines()) == ["orders-a", "orders-b"], out
    assert "2 messages from 3 partitions" in err, err
    rc, out, err = preview(tmp, dict(conf, topic="^nothing-.*"), "--preview", "10")
    assert rc == 1 and "no topic on the cluster at %s matches '^nothing-.*'" % cluster.bootstrap in err, err


def test_missing_topic_and_usage_errors(tmp):
    cluster = MockCluster(tmp, topics={"t": 1})
    conf = base_config(cluster, "http://127.0.0.1:9", type="upsert", topic="t, nope")
    rc, out, err = preview(tmp, conf, "--preview", "5")
    assert rc == 1 and out == "", (out, err)
    assert "topic 'nope' does not exist on the cluster at %s" % cluster.bootstrap in err, err
    for args, text in ((["--preview", "0"], "--preview expects a number of messages > 0"),
                       (["--from-beginning"], "--from-beginning and --preview-format go with --preview"),
                       (["--preview", "1", "--preview-format", "xml"], "--preview-format is text or json"),
                       (["--preview", "1", "--check"], "--preview does not go with --check")):
        rc, out, err = preview(tmp, conf, *args)
        assert rc == 2 and text in err, (args, err)


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
