"""confluent-kafka-python producer and consumer (assign, no group) against agentbus.

Usage: confluent_roundtrip.py BOOTSTRAP TOPIC COUNT
Exits 0 when every record comes back in order with its key, value and headers.
"""
import sys

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])

admin = AdminClient({"bootstrap.servers": bootstrap})
for fut in admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)]).values():
    fut.result(10)

delivered = []
producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "compression.type": "zstd"})
for i in range(count):
    producer.produce(
        topic,
        key=f"k{i % 5}",
        value=f"v{i}",
        partition=i % 2,
        headers=[("i", str(i).encode())],
        on_delivery=lambda err, msg: delivered.append((err, msg.partition(), msg.offset())),
    )
producer.flush(30)
errors = [d for d in delivered if d[0] is not None]
assert not errors, errors
assert len(delivered) == count, len(delivered)

consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
consumer.assign([TopicPartition(topic, p, 0) for p in range(2)])
got = {0: [], 1: []}
seen = 0
while seen < count:
    msg = consumer.poll(10)
    assert msg is not None, f"timed out after {seen} records"
    assert msg.error() is None, msg.error()
    got[msg.partition()].append((msg.offset(), msg.key().decode(), msg.value().decode(), dict(msg.headers())["i"].decode()))
    seen += 1
for p in (0, 1):
    expected = [(n, f"k{i % 5}", f"v{i}", str(i)) for n, i in enumerate(range(p, count, 2))]
    assert got[p] == expected, (p, got[p][:3], expected[:3])
low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
assert (low, high) == (0, len(got[0])), (low, high)
consumer.close()
print(f"confluent-kafka-python: {count} records round-tripped")
