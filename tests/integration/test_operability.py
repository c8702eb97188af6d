"""The metrics and health endpoint scraped during a real run, JSON logs, and the man page."""
import json
import os
import re
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import (KINESINK, FakeKinesis, Kinesink, MockCluster, base_config, debezium_event,  # noqa: E402
                     free_port, http_get as get, main, metrics, wait_for)


def metric(text, name):
    return metrics(text).get(name)


def test_metrics_health_and_readiness_during_a_run(tmp):
    cluster = MockCluster(tmp, topics={"t": 2})
    fk = FakeKinesis(tmp, "--fail-rate", "0.2", "--seed", "5")
    msgs = [(json.dumps({"id": i}), debezium_event("c", None, {"id": i}), i % 2) for i in range(200)]
    msgs.append(('{"id":-1}', "not json", 0))
    cluster.produce("t", msgs)
    port = free_port()
    conf = base_config(cluster, fk.endpoint, type="upsert", topic="t", **{
        "metrics.listen": "127.0.0.1:%d" % port, "errors.policy": "skip", "retry.backoff.ms": "5",
        "log.format": "json", "stats.interval.ms": "200", "log.level": "debug", "kafka.debug": "cgrp"})
    k = Kinesink(tmp, conf)
    base = "http://127.0.0.1:%d" % port
    wait_for(lambda: k.alive() and get(base + "/healthz")[0] == 200, 30, "/healthz")
    wait_for(lambda: metric(get(base + "/metrics")[1], "kinesink_records_put_total") == 200, 60,
             "200 records put, seen on /metrics")
    status, text = get(base + "/metrics")
    assert status == 200
    assert metric(text, "kinesink_records_consumed_total") == 201, text
    assert metric(text, "kinesink_records_decoded_total") == 200, text
    assert metric(text, 'kinesink_records_bad_total{reason="decode"}') == 1, text
    assert metric(text, "kinesink_records_skipped_total") == 1, text
    retried = metric(text, "kinesink_records_retried_total")
    throttled = metric(text, 'kinesink_records_put_failed_total{code="throttled"}')
    assert retried and retried == throttled, (retried, throttled)
    assert metric(text, "kinesink_assigned_partitions") == 2
    assert 'kinesink_put_latency_seconds_bucket{le="+Inf"}' in text and "kinesink_batch_records_count" in text
    # Committed offsets follow the acknowledgements (the poison message, skipped, counts as done).
    wait_for(lambda: metric(get(base + "/metrics")[1], 'kinesink_partition_committed_offset{topic="t",partition="0"}') == 101
             and metric(get(base + "/metrics")[1], 'kinesink_partition_committed_offset{topic="t",partition="1"}') == 100,
             30, "committed offsets 101 and 100 on /metrics")
    assert re.search(r'^kinesink_partition_lag\{topic="t",partition="1"\} \d+$', text, re.M), text
    assert get(base + "/readyz") == (200, "ready\n")
    assert get(base + "/nope")[0] == 404
    assert k.stop(signal.SIGTERM) == 0
    # Logs are one JSON object per line, secrets nowhere.
    lines = [l for l in k.log().splitlines() if l.strip()]
    modules = set()
    for l in lines:
        j = json.loads(l)
        assert set(j) == {"ts", "level", "module", "msg"}, j
        modules.add(j["module"])
    # librdkafka's own log goes through ours; the progress line comes every stats.interval.ms.
    assert {"kafka", "pipeline"} <= modules, modules
    assert any('"msg":"progress: consumed' in l for l in lines), lines[-5:]
    assert "testsecret" not in k.log()


def test_readyz_not_ready_without_partitions(tmp):
    cluster = MockCluster(tmp, topics={"t": 1})
    fk = FakeKinesis(tmp)
    port = free_port()
    conf = base_config(cluster, fk.endpoint, type="upsert", topic="no-such-topic",
                       **{"metrics.listen": "127.0.0.1:%d" % port})
    k = Kinesink(tmp, conf)
    base = "http://127.0.0.1:%d" % port
    wait_for(lambda: get(base + "/healthz")[0] == 200, 30, "/healthz")
    assert get(base + "/readyz") == (503, "not ready: no partitions assigned\n")
    assert k.stop(signal.SIGTERM) == 0


def test_metrics_port_in_use_is_a_clear_error(tmp):
    cluster = MockCluster(tmp, topics={"t": 1})
    fk = FakeKinesis(tmp)
    conf = base_config(cluster, fk.endpoint, type="upsert", topic="t",
                       **{"metrics.listen": "127.0.0.1:%d" % fk.port})
    k = Kinesink(tmp, conf)
    assert k.wait(30) == 1
    assert "metrics.listen: cannot listen on 127.0.0.1:%d" % fk.port in k.log(), k.log()


def test_man_page_lists_every_property(tmp):
    out = subprocess.run([KINESINK, "--man"], capture_output=True, text=True, check=True).stdout
    assert out.startswith(".TH KINESINK 1")
    assert ".B aws.credentials.role.external_id" in out and ".B errors.dlq.topic" in out
    from harness import SRCDIR
    with open(os.path.join(SRCDIR, "doc", "kinesink.1")) as f:
        assert f.read() == out, "doc/kinesink.1 is stale: run make man"


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
