"""How far behind: kinesink_record_latency_seconds and kinesink_partition_seconds_behind against the
mock cluster over TCP and the tests' fakekinesis.

- An endpoint that answers every PutRecords 600 ms late gives latency quantiles just above that
  delay (nothing under it), records produced 100 s ago are observed 100 s late (the latency starts
  at the Kafka timestamp, not when kinesink took the record), and records stamped in the future
  are counted, not observed.
- Records produced an hour ago and held back by the endpoint show the partition an hour behind
  (in /metrics and the progress line), and 0 once Kinesis acknowledged them; a backfill's figures
  say the same."""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import (FakeKinesis, Kinesink, MockCluster, base_config, debezium_event, free_port,  # noqa: E402
                     http_get, main, wait_for)

STREAM = "s1"
LAT = "kinesink_record_latency_seconds"
UNMEASURED = "kinesink_record_latency_unmeasured_total"
BEHIND = "kinesink_partition_seconds_behind"


def produce(cluster, topic, msgs):
    """msgs: (key, value, partition, timestamp in ms since the epoch or None for the producer's now)."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": cluster.bootstrap, "linger.ms": 5, "acks": "all",
                  "enable.idempotence": True})
    for key, value, part, ts in msgs:
        p.produce(topic, value=value, key=key, partition=part, **({"timestamp": ts} if ts else {}))
    assert p.flush(30) == 0, "messages not delivered to the mock cluster"


def scrape(port):
    """{sample name with labels: value} of /metrics; {} while it does not answer."""
    status, text = http_get("http://127.0.0.1:%d/metrics" % port)
    if status != 200:
        return {}
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def buckets(m, stream):
    """[(upper bound, cumulative count)] of the stream's latency histogram, +Inf last."""
    out = []
    for name, v in m.items():
        g = re.fullmatch(r'%s_bucket\{stream="%s",le="([^"]+)"\}' % (LAT, re.escape(stream)), name)
        if g:
            out.append((float(g.group(1)), v))
    return sorted(out)


def quantile(q, bs, n):
    """histogram_quantile over the first n observations: linear inside the bucket it falls in."""
    rank, lo, below = q * n, 0.0, 0.0
    for le, cum in bs:
        if cum >= rank:
            return lo + (le - lo) * (rank - below) / (cum - below)
        lo, below = le, cum
    return float("inf")


def event(i):
    return json.dumps({"id": i}), debezium_event("c", None, {"id": i})


def test_latency_around_a_known_delay(tmp):
    cluster = MockCluster(tmp, topics={"t": 2})
    fk = FakeKinesis(tmp, "--latency-ms", "600")
    port = free_port()
    k = Kinesink(tmp, base_config(cluster, fk.endpoint, type="upsert", topic="t", **{
        "metrics.listen": "127.0.0.1:%d" % port}))
    # Produced only once the partitions are assigned: the group's join is no part of the latency.
    wait_for(lambda: scrape(port).get("kinesink_assigned_partitions") == 2, 60, "both partitions assigned")
    now = int(time.time() * 1000)
    fresh = [event(i) + (i % 2, None) for i in range(40)]
    old = [event(100 + i) + (i % 2, now - 100000) for i in range(10)]
    future = [event(200 + i) + (i % 2, now + 3600000) for i in range(5)]
    produce(cluster, "t", fresh + old + future)
    m = wait_for(lambda: (lambda m: m.get("kinesink_records_put_total") == 55 and m)(scrape(port)), 60,
                 "55 records put")
    assert k.stop() == 0, k.log()[-3000:]

    bs = buckets(m, STREAM)
    assert len(bs) == 17 and bs[0][0] == 0.005 and bs[-2][0] == 600 and bs[-1][0] == float("inf"), bs
    count = m['%s_count{stream="%s"}' % (LAT, STREAM)]
    assert count == 50 and bs[-1][1] == 50, (count, bs)
    assert m['%s{stream="%s",reason="future_timestamp"}' % (UNMEASURED, STREAM)] == 5, m
    assert m['%s{stream="%s",reason="no_timestamp"}' % (UNMEASURED, STREAM)] == 0, m
    cum = dict(bs)
    # Nothing is acknowledged sooner than the endpoint answers.
    assert cum[0.5] == 0, bs
    # The fresh records under a minute, the 100-second-old ones between one and two minutes.
    assert cum[60] == 40 and cum[120] == 50, bs
    p50, p99 = quantile(0.5, bs, 40), quantile(0.99, bs, 40)
    assert 0.6 <= p50 <= 2.5 and p50 <= p99 <= 5, (p50, p99, bs)
    total = m['%s_sum{stream="%s"}' % (LAT, STREAM)]
    assert 10 * 100 + 40 * 0.6 <= total <= 10 * 110 + 40 * 5, (total, bs)


def held_an_hour_behind(tmp, args):
    """Records an hour old (partition 1's a minute younger), held back by the endpoint."""
    cluster = MockCluster(tmp, topics={"t": 2})
    hold = tmp.file("hold", "")
    fk = FakeKinesis(tmp, "--hold-file", hold)
    hour_ago = int(time.time() * 1000) - 3600000
    produce(cluster, "t", [event(i) + (p, hour_ago + p * 60000 + i) for p in range(2) for i in range(10)])
    port = free_port()
    k = Kinesink(tmp, base_config(cluster, fk.endpoint, type="upsert", topic="t", **{
        "metrics.listen": "127.0.0.1:%d" % port, "stats.interval.ms": "200", "retry.backoff.ms": "20",
        "retry.backoff.max.ms": "200", "delivery.timeout.ms": "0"}), args)
    return k, port, hold, hour_ago


def test_seconds_behind_falls_to_zero_once_acknowledged(tmp):
    k, port, hold, hour_ago = held_an_hour_behind(tmp, [])
    p0, p1 = '%s{topic="t",partition="0"}' % BEHIND, '%s{topic="t",partition="1"}' % BEHIND
    started = time.time()
    m = wait_for(lambda: (lambda m: m.get(p0, 0) > 0 and m.get(p1, 0) > 0 and
                          m.get("kinesink_records_throttled_total", 0) > 0 and m)(scrape(port)), 60,
                 "both partitions behind, their records held back")
    assert m["kinesink_records_put_total"] == 0 and m["kinesink_records_throttled_total"] > 0, m
    # The oldest message waiting on each partition, an hour old, partition 1's a minute younger.
    age = time.time() * 1000 - hour_ago
    span = (time.time() - started) + 2
    assert age / 1000 - span <= m[p0] <= age / 1000 + 1, (m[p0], age)
    assert age / 1000 - 60 - span <= m[p1] <= age / 1000 - 60 + 1, (m[p1], age)
    # The progress line says it too: an hour (h:mm:ss) behind.
    wait_for(lambda: re.search(r"progress: consumed 20 .*, 2 partitions, 1:0[01]:\d\d behind", k.log()), 30,
             "the progress line an hour behind")

    os.unlink(hold)
    m = wait_for(lambda: (lambda m: m.get("kinesink_records_put_total") == 20 and m.get(p0) == 0 and
                          m.get(p1) == 0 and m)(scrape(port)), 60, "every record put and nothing behind")
    wait_for(lambda: re.search(r"progress: consumed 20 .*, put 20,.*, 2 partitions, 0\.\d s behind", k.log()), 30,
             "the progress line nothing behind")
    assert k.stop() == 0, k.log()[-3000:]


def test_backfill_figures_say_how_far_behind(tmp):
    k, port, hold, hour_ago = held_an_hour_behind(tmp, ["--exit-at-eof"])
    wait_for(lambda: re.search(r"; backfill: 0 of 20 records .* finished, 1:0[01]:\d\d behind", k.log()), 60,
             "the backfill's figures an hour behind")
    os.unlink(hold)
    rc = k.wait(60)
    log = k.log()
    assert rc == 0, log[-3000:]
    assert re.search(r"leaving the group; backfill: 20 of 20 records \(100\.0 %\).*, 2 of 2 partitions finished, 0\.\d s behind",
                     log), log[-3000:]


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
