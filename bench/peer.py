#!/usr/bin/env python3
"""The peer in `make bench`: the Kafka-to-Kinesis bridge a team writes with the usual Python
libraries (confluent-kafka, which is librdkafka, and botocore) doing what kinesink's
Debezium JSON -> upsert does: the row after the change (empty data for a delete) as compact
JSON with sorted keys, the Kafka key in the same form as partition key, PutRecords of up to
500 entries, failed entries sent again, offsets committed once Kinesis acknowledged them.

    peer.py BOOTSTRAP TOPIC GROUP ENDPOINT

Exits when every assigned partition reached its end and everything was committed; writes
"active SECONDS" (first assignment to exit) and "records N" to standard error.
"""
import json
import sys
import time

import botocore.session
from confluent_kafka import Consumer, KafkaError, TopicPartition


def compact(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def to_entry(msg):
    value = json.loads(msg.value())
    payload = value.get("payload", value) if "op" not in value else value
    key = json.loads(msg.key())
    key = key.get("payload", key) if isinstance(key, dict) and "schema" in key else key
    data = b"" if payload["op"] == "d" else compact(payload["after"]).encode()
    return {"PartitionKey": compact(key), "Data": data}


def put_all(kinesis, stream, entries):
    while entries:
        resp = kinesis.put_records(StreamName=stream, Records=entries)
        if not resp["FailedRecordCount"]:
            return
        entries = [e for e, r in zip(entries, resp["Records"]) if "ErrorCode" in r]


def main():
    bootstrap, topic, group, endpoint = sys.argv[1:5]
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    kinesis = botocore.session.get_session().create_client(
        "kinesis", region_name="us-east-1", endpoint_url=endpoint,
        aws_access_key_id="AKIDTEST", aws_secret_access_key="testsecret")
    state = {"assigned": set(), "since": None}

    def on_assign(c, parts):
        state["assigned"] |= {(p.topic, p.partition) for p in parts}
        if state["since"] is None:
            state["since"] = time.monotonic()

    consumer.subscribe([topic], on_assign=on_assign)
    at_end, total = set(), 0
    while not state["assigned"] or at_end != state["assigned"]:
        entries, offsets = [], {}
        for msg in consumer.consume(num_messages=500, timeout=0.5):
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    raise SystemExit("peer: %s" % msg.error())
                at_end.add((msg.topic(), msg.partition()))
                continue
            entries.append(to_entry(msg))
            offsets[(msg.topic(), msg.partition())] = msg.offset() + 1
        if entries:
            put_all(kinesis, "bench", entries)
            total += len(entries)
        if offsets:
            consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False)
    consumer.close()
    sys.stderr.write("active %.3f\nrecords %d\n" % (time.monotonic() - state["since"], total))


if __name__ == "__main__":
    main()
