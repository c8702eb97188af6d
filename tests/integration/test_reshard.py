"""The shard-aware writer across resharding, end to end: one kinesink process aggregates per
shard (aggregation=kpl) into a kinesis-mock stream that is split, merged and scaled while it runs,
its shard map going stale each time (shards.refresh.ms=0: only answers tell it). Everything is read
back from every shard, closed ones included, taken apart by the awslabs deaggregator (npm
aws-kinesis-agg) with the KCL's rule that drops a user record hashing outside the shard it was read
from: every Kafka record is seen exactly once by such a consumer, each key in order, and the offsets
are committed."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import (Kinesink, KinesisMock, MockCluster, base_config, check_once_in_order, deaggregate, free_port,  # noqa: E402
                     http_get, keyed_updates, main, metrics, per_partition, wait_for)

PARTS = 4
KEYS = 300


def visible(records):
    """(partition_key, data) of the user records a KCL consumer sees, and how many it drops."""
    user = deaggregate(records)
    errors = [r for r in user if r.get("error")]
    assert not errors, errors[:3]
    return [(r["partitionKey"], r["data"]) for r in user if not r["dropped"]], sum(1 for r in user if r["dropped"])


def open_shards(kc):
    return [s for s in kc.list_shards(StreamName="s1")["Shards"]
            if "EndingSequenceNumber" not in s["SequenceNumberRange"]]


def reshard(km, kc, what):
    """Split the first open shard in two, merge two adjacent open shards, or scale to 4; then wait
    for the stream to be ACTIVE again."""
    shards = sorted(open_shards(kc), key=lambda s: int(s["HashKeyRange"]["StartingHashKey"]))
    if what == "split":
        r = shards[0]["HashKeyRange"]
        mid = (int(r["StartingHashKey"]) + int(r["EndingHashKey"])) // 2
        kc.split_shard(StreamName="s1", ShardToSplit=shards[0]["ShardId"], NewStartingHashKey=str(mid))
    elif what == "merge":
        kc.merge_shards(StreamName="s1", ShardToMerge=shards[0]["ShardId"],
                        AdjacentShardToMerge=shards[1]["ShardId"])
    else:
        kc.update_shard_count(StreamName="s1", TargetShardCount=4, ScalingType="UNIFORM_SCALING")
    wait_for(lambda: km._active("s1"), 30, "stream s1 to be ACTIVE after %s" % what)


def test_resharding_mid_run_seen_once_by_kcl_consumers(tmp):
    cluster = MockCluster(tmp, topics={"t": PARTS})
    km = KinesisMock(tmp, {"s1": 2})
    kc = km.client()
    port = free_port()
    conf = base_config(cluster, km.endpoint, type="upsert", topic="t", aggregation="kpl", **{
        "shards.refresh.ms": "0", "rate.limit.percent": "0", "batch.linger.ms": "50",
        "metrics.listen": "127.0.0.1:%d" % port})
    msgs = keyed_updates(2400, KEYS, PARTS)
    phases = [msgs[i:i + 600] for i in range(0, 2400, 600)]
    ks = Kinesink(tmp, conf)
    sent = []
    for i, phase in enumerate(phases):
        if i:
            reshard(km, kc, ["split", "merge", "scale"][i - 1])
        cluster.produce("t", phase)
        sent += phase
        want = per_partition(sent, PARTS)
        wait_for(lambda: cluster.committed("kinesink", "t", PARTS) == want or not ks.alive(), 120,
                 "phase %d committed" % (i + 1))
        assert ks.alive(), ks.log()[-3000:]
    m = metrics(http_get("http://127.0.0.1:%d/metrics" % port)[1])
    log = ks.log()
    assert ks.stop() == 0, log[-3000:]
    seen, dropped = visible(km.read_records("s1"))
    check_once_in_order(seen, msgs)
    # The stale map did send aggregates to a shard that holds only part of their records: those
    # copies are invisible to consumers, and the records went again.
    assert m["kinesink_shard_mispredictions_total"] > 0, m
    assert m["kinesink_shard_map_refreshes_total"] >= 3, m
    assert dropped > 0 and m["kinesink_records_resent_reshard_total"] >= dropped, (dropped, m)
    assert m["kinesink_stream_open_shards"] == 4, m
    # Per shard: the user records each acknowledged, which add up to every record once.
    # Closed shards' series go once no unit predicted in a map naming them is held: the first
    # shards of the stream (both closed by now) are no longer shown, the open ones are.
    per_shard = {k: v for k, v in m.items() if k.startswith('kinesink_shard_records_total{stream="s1",shard=')}
    shown = {k.split('shard="')[1].rstrip('"}') for k in per_shard}
    assert {s["ShardId"] for s in open_shards(kc)} <= shown, (shown, per_shard)
    assert "shardId-000000000000" not in shown and "shardId-000000000001" not in shown, per_shard
    assert sum(per_shard.values()) <= len(msgs), per_shard
    assert cluster.committed("kinesink", "t", PARTS) == per_partition(msgs, PARTS)


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
