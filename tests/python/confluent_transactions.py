"""confluent-kafka-python transactions against agentbus: commit, abort and
send_offsets_to_transaction, checked with read_committed and read_uncommitted consumers.

Usage: confluent_transactions.py BOOTSTRAP
"""
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap = sys.argv[1]
admin = AdminClient({"bootstrap.servers": bootstrap})
for f in admin.create_topics([NewTopic(t, num_partitions=1, replication_factor=1) for t in ("py-in", "py-out")]).values():
    f.result(10)


def read_all(topic, isolation):
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "reader-" + isolation,
        "isolation.level": isolation,
        "enable.partition.eof": True,
        "enable.auto.commit": False,
    })
    c.assign([TopicPartition(topic, 0, 0)])
    out = []
    deadline = time.time() + 20
    while time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                break
            raise SystemExit(f"consume error: {m.error()}")
        out.append(m.value().decode())
    c.close()
    return out


p = Producer({"bootstrap.servers": bootstrap, "transactional.id": "py-txn", "transaction.timeout.ms": 10000})
p.init_transactions(10)
p.begin_transaction()
for i in range(3):
    p.produce("py-out", value=f"committed-{i}")
p.commit_transaction(10)
p.begin_transaction()
p.produce("py-out", value="aborted")
p.flush(10)  # delivered first, so the abort has something to hide
p.abort_transaction(10)
got = read_all("py-out", "read_committed")
assert got == ["committed-0", "committed-1", "committed-2"], got
got = read_all("py-out", "read_uncommitted")
assert got == ["committed-0", "committed-1", "committed-2", "aborted"], got

# Consume-transform-produce with the input offsets in the transaction.
src = Producer({"bootstrap.servers": bootstrap})
for i in range(20):
    src.produce("py-in", value=f"in-{i}")
src.flush(10)
c = Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": "py-transformer",
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
    "isolation.level": "read_committed",
})
c.subscribe(["py-in"])
p.begin_transaction()
seen = 0
deadline = time.time() + 20
while seen < 20 and time.time() < deadline:
    m = c.poll(0.5)
    if m is None or m.error():
        continue
    p.produce("py-out", value=m.value().decode().upper())
    seen += 1
assert seen == 20, seen
p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 10)
p.commit_transaction(10)
committed = c.committed([TopicPartition("py-in", 0)], timeout=10)
assert committed[0].offset == 20, committed
c.close()
out = read_all("py-out", "read_committed")
assert out[3:] == [f"IN-{i}" for i in range(20)], out
print("confluent-kafka-python transactions: ok")
