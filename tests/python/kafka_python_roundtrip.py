"""kafka-python producer and consumer (assign, no group) against agentbus.

Usage: kafka_python_roundtrip.py BOOTSTRAP TOPIC COUNT
"""
import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])

admin = KafkaAdminClient(bootstrap_servers=bootstrap)
admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
admin.close()

producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type="gzip")
futures = [
    producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=i % 2, headers=[("i", str(i).encode())])
    for i in range(count)
]
producer.flush(30)
metas = [f.get(timeout=30) for f in futures]
assert sorted(m.offset for m in metas if m.partition == 0) == list(range((count + 1) // 2))
producer.close()

consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=15000)
parts = [TopicPartition(topic, p) for p in range(2)]
consumer.assign(parts)
consumer.seek_to_beginning(*parts)
got = {0: [], 1: []}
for msg in consumer:
    got[msg.partition].append((msg.offset, msg.key.decode(), msg.value.decode(), dict(msg.headers)["i"].decode()))
    if sum(len(v) for v in got.values()) == count:
        break
for p in (0, 1):
    expected = [(n, f"k{i}", f"v{i}", str(i)) for n, i in enumerate(range(p, count, 2))]
    assert got[p] == expected, (p, got[p][:3], expected[:3])
end = consumer.end_offsets(parts)
assert end[parts[0]] == len(got[0]), end
consumer.close()
print(f"kafka-python: {count} records round-tripped")
