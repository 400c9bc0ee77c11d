"""confluent-kafka-python against per-record produce errors (KIP-467).

Usage: confluent_record_errors.py BOOTSTRAP TOPIC COUNT
A compacted topic gets COUNT records in one batch, every tenth of them without a key. The
keyless ones fail with INVALID_RECORD and the broker's reason; the others fail as
_INVALID_DIFFERENT_RECORD (refused only for being in that batch), are sent again and are
stored. Exits 0 when the topic then holds exactly the keyed records, in order.
"""
import sys

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
INVALID_DIFFERENT_RECORD = -138  # librdkafka's RD_KAFKA_RESP_ERR__INVALID_DIFFERENT_RECORD

admin = AdminClient({"bootstrap.servers": bootstrap})
new = NewTopic(topic, num_partitions=1, replication_factor=1, config={"cleanup.policy": "compact"})
for fut in admin.create_topics([new]).values():
    fut.result(10)

producer = Producer({
    "bootstrap.servers": bootstrap,
    "acks": "all",
    "enable.idempotence": False,
    "linger.ms": 500,
    "batch.num.messages": 10000,
})
results = {}


def produce(i):
    key = None if i % 10 == 3 else f"k{i}"
    producer.produce(topic, key=key, value=f"v{i}", partition=0,
                     on_delivery=lambda err, msg, i=i: results.__setitem__(i, err))


for i in range(count):
    produce(i)
producer.flush(30)
assert len(results) == count, len(results)
refused = {i: e for i, e in results.items() if e is not None and e.code() == KafkaError.INVALID_RECORD}
others = [i for i, e in results.items() if e is not None and e.code() == INVALID_DIFFERENT_RECORD]
keyless = {i for i in range(count) if i % 10 == 3}
assert set(refused) == keyless, (sorted(refused), {i: str(e) for i, e in results.items()})
assert sorted(others) == sorted(set(range(count)) - keyless), sorted(others)

results.clear()
for i in others:
    produce(i)
producer.flush(30)
assert all(e is None for e in results.values()), results

consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
consumer.assign([TopicPartition(topic, 0, 0)])
got = []
while len(got) < len(others):
    msg = consumer.poll(10)
    assert msg is not None, f"timed out after {len(got)} records"
    assert msg.error() is None, msg.error()
    got.append((msg.key().decode(), msg.value().decode()))
assert got == [(f"k{i}", f"v{i}") for i in others], got[:5]
low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
assert (low, high) == (0, len(others)), (low, high)
consumer.close()
print(f"confluent-kafka-python: {len(refused)} keyless records refused by index, {len(others)} sent again and stored")
