"""confluent-kafka-python AdminClient asks for authorized operations (KIP-430).

Usage: confluent_authorized_operations.py BOOTSTRAP TOPIC COUNT
With no authorizer, Kafka answers every operation the resource type supports; without
the question, no set at all. Exits 0 when the cluster, a topic and a group answer so.
"""
import sys

from confluent_kafka import Consumer, TopicCollection, TopicPartition
from confluent_kafka.admin import AclOperation as Op
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, topic, _count = sys.argv[1], sys.argv[2], int(sys.argv[3])
group = f"{topic}-group"

admin = AdminClient({"bootstrap.servers": bootstrap})
for fut in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
    fut.result(10)
# A group with a committed offset.
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
consumer.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
consumer.close()

CLUSTER = {Op.CREATE, Op.CLUSTER_ACTION, Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS,
           Op.IDEMPOTENT_WRITE, Op.ALTER, Op.DESCRIBE}
TOPIC = {Op.READ, Op.WRITE, Op.CREATE, Op.DESCRIBE, Op.DELETE, Op.ALTER,
         Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS}
GROUP = {Op.READ, Op.DESCRIBE, Op.DELETE, Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS}

cluster = admin.describe_cluster(include_authorized_operations=True).result(10)
assert set(cluster.authorized_operations) == CLUSTER, cluster.authorized_operations
assert not admin.describe_cluster().result(10).authorized_operations

described = admin.describe_topics(TopicCollection([topic]), include_authorized_operations=True)
ops = described[topic].result(10).authorized_operations
assert set(ops) == TOPIC, ops
plain = admin.describe_topics(TopicCollection([topic]))[topic].result(10)
assert not plain.authorized_operations, plain.authorized_operations

groups = admin.describe_consumer_groups([group], include_authorized_operations=True)
ops = groups[group].result(10).authorized_operations
assert set(ops) == GROUP, ops
print("confluent-kafka-python: authorized operations as Kafka answers them")
