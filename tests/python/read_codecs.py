"""confluent-kafka-python and kafka-python read topics stored in each codec.

Usage: read_codecs.py BOOTSTRAP COUNT TOPIC...
Each topic holds COUNT records, key `k{i}`, value `value {i} ` and i % 50 `x`s, on
partition 0. Exits 0 when both clients read every record of every topic.
"""
import sys

from confluent_kafka import Consumer, TopicPartition
from kafka import KafkaConsumer
from kafka import TopicPartition as KTopicPartition

bootstrap, count, topics = sys.argv[1], int(sys.argv[2]), sys.argv[3:]


def expected(i):
    return (f"k{i}".encode(), f"value {i} {'x' * (i % 50)}".encode())


def check(client, topic, got):
    assert len(got) == count, f"{client} read {len(got)} of {count} from {topic}"
    for i, kv in enumerate(got):
        assert kv == expected(i), f"{client} {topic} record {i}: {kv}"


for topic in topics:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "read-codecs",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    while len(got) < count:
        m = c.poll(10)
        assert m is not None, f"confluent timed out on {topic} after {len(got)}"
        assert m.error() is None, m.error()
        got.append((m.key(), m.value()))
    c.close()
    check("confluent-kafka", topic, got)

    k = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                      consumer_timeout_ms=10000)
    k.assign([KTopicPartition(topic, 0)])
    k.seek_to_beginning()
    got = []
    for m in k:
        got.append((m.key, m.value))
        if len(got) == count:
            break
    k.close()
    check("kafka-python", topic, got)

print(f"both clients read {len(topics)} topics")
