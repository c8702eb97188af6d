"""The consumer's fatal errors, against the mock Kafka cluster over TCP: a worker fenced out of its
group (static membership, another member with its group.instance.id) stops with exit 1 and a
message naming the cause, after committing what Kinesis acknowledged."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import FakeKinesis, Kinesink, MockCluster, base_config, debezium_event, main, wait_for  # noqa: E402

HEARTBEAT = 12
FENCED_INSTANCE_ID = 82


def test_fenced_static_member_stops_with_exit_1(tmp):
    cluster = MockCluster(tmp, topics={"t": 1})
    fk = FakeKinesis(tmp)
    msgs = [(json.dumps({"id": i}), debezium_event("c", None, {"id": i}), 0) for i in range(100)]
    cluster.produce("t", msgs)
    k = Kinesink(tmp, base_config(cluster, fk.endpoint, type="upsert", topic="t",
                                  **{"kafka.group.instance.id": "worker-1"}))
    wait_for(lambda: len(fk.accepted()) == len(msgs), 60, "every record to be accepted")
    wait_for(lambda: cluster.committed("kinesink", "t", 1) == {0: len(msgs)}, 30, "the last offset to be committed")
    # The group coordinator answers the next heartbeats: another member has this instance id.
    cluster.command("push_err %d %d 5" % (HEARTBEAT, FENCED_INSTANCE_ID))
    rc = k.wait(60)
    log = k.log()
    assert rc == 1, log[-3000:]
    assert "Kafka consumer stopped by a fatal error" in log and "FENCED_INSTANCE_ID" in log, log[-3000:]
    assert "kafka.group.instance.id" in log, log[-3000:]
    assert cluster.committed("kinesink", "t", 1) == {0: len(msgs)}


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
