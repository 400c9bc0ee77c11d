"""kafka-python pinned to an old protocol (`api_version=(0, 10)`: no ApiVersions request,
Produce v2 and Fetch v2 with magic-1 message sets, ListOffsets v0, Metadata v1).

Usage: kafka_python_old_api.py BOOTSTRAP TOPIC COUNT works|refused
`works`: COUNT records produced and read back. `refused`: the broker (emulating Kafka 4)
does not serve that protocol, so the producer cannot deliver.
"""
import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

bootstrap, topic, count, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

producer = KafkaProducer(bootstrap_servers=bootstrap, api_version=(0, 10), acks="all",
                         max_block_ms=5000, request_timeout_ms=3000, retries=0)
try:
    for i in range(count):
        producer.send(topic, key=f"k{i}".encode(), value=f"old-{i}".encode(), partition=0).get(10)
except KafkaError as e:
    if mode != "refused":
        raise
    print(f"refused as Kafka 4 refuses it: {type(e).__name__}", flush=True)
    try:
        producer.close(0)
    except KafkaError:
        pass  # the undelivered record
    sys.exit(0)
producer.close(5)
assert mode == "works", "a Kafka-4 broker served a 0.10 client"

consumer = KafkaConsumer(bootstrap_servers=bootstrap, api_version=(0, 10),
                         enable_auto_commit=False, consumer_timeout_ms=10000)
consumer.assign([TopicPartition(topic, 0)])
consumer.seek_to_beginning()
got = []
for m in consumer:
    got.append((m.key, m.value, m.timestamp))
    if len(got) == count:
        break
consumer.close()
assert [(k, v) for k, v, _ in got] == [(f"k{i}".encode(), f"old-{i}".encode())
                                        for i in range(count)], got[:5]
assert all(ts > 0 for _, _, ts in got), "magic-1 messages carry their timestamps"
print(f"{count} records round-tripped over the 0.10 protocol")
