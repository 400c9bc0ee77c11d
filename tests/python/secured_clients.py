"""confluent-kafka-python and kafka-python over SASL_SSL with SCRAM-SHA-512.

Usage: secured_clients.py BOOTSTRAP CA_FILE USER PASSWORD TOPIC
Each client produces 50 records and reads back all 100 in a consumer group; then
confluent-kafka's admin client adds a SCRAM user over AlterUserScramCredentials, the new
user connects, and DescribeUserScramCredentials lists it.
"""
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import (AdminClient, NewTopic, ScramCredentialInfo,
                                   ScramMechanism, UserScramCredentialUpsertion)
from kafka import KafkaConsumer, KafkaProducer

bootstrap, ca, user, password, topic = sys.argv[1:6]


def confluent(user, password, extra=None):
    conf = {
        "bootstrap.servers": bootstrap,
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": user,
        "sasl.password": password,
        "ssl.ca.location": ca,
    }
    conf.update(extra or {})
    return conf


def kafka_python(**extra):
    return dict(
        bootstrap_servers=bootstrap,
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username=user,
        sasl_plain_password=password,
        ssl_cafile=ca,
        **extra,
    )


admin = AdminClient(confluent(user, password))
for fut in admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)]).values():
    fut.result(20)

errors = []
producer = Producer(confluent(user, password, {"acks": "all"}))
for i in range(50):
    producer.produce(topic, key=f"c{i}", value=f"confluent {i}",
                     on_delivery=lambda err, msg: err and errors.append(err))
assert producer.flush(30) == 0 and not errors, errors

kp = KafkaProducer(**kafka_python(acks="all"))
for i in range(50):
    kp.send(topic, key=f"k{i}".encode(), value=f"kafka-python {i}".encode())
kp.flush(30)
kp.close()

consumer = Consumer(confluent(user, password, {"group.id": "secured-confluent",
                                               "auto.offset.reset": "earliest"}))
consumer.subscribe([topic])
got = set()
deadline = time.time() + 60
while len(got) < 100 and time.time() < deadline:
    msg = consumer.poll(1)
    if msg is not None and msg.error() is None:
        got.add(msg.value().decode())
consumer.commit(asynchronous=False)
consumer.close()
assert len(got) == 100, f"confluent consumer read {len(got)} of 100"

kc = KafkaConsumer(topic, **kafka_python(group_id="secured-kafka-python",
                                         auto_offset_reset="earliest",
                                         consumer_timeout_ms=20000))
seen = set()
for msg in kc:
    seen.add(msg.value.decode())
    if len(seen) == 100:
        break
kc.commit()
kc.close()
assert seen == got, f"kafka-python consumer read {len(seen)} of 100"

# A new SCRAM user over the wire: the admin API sends a salted password, never the password.
new = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
futs = admin.alter_user_scram_credentials([UserScramCredentialUpsertion("carol", new, b"carol-pw")])
for fut in futs.values():
    fut.result(20)
# With users named, a future per user.
carol_info = admin.describe_user_scram_credentials(["carol"])["carol"].result(20)
info = carol_info.scram_credential_infos[0]
assert info.mechanism == ScramMechanism.SCRAM_SHA_512 and info.iterations == 8192, info
carol = AdminClient(confluent("carol", "carol-pw"))
md = carol.list_topics(timeout=20)
assert topic in md.topics, md.topics
wrong = AdminClient(confluent("carol", "not-her-password"))
try:
    wrong.list_topics(timeout=5)
    raise SystemExit("a wrong password listed topics")
except KafkaException as e:
    print(f"wrong password refused: {e}")
print("secured clients: confluent-kafka and kafka-python produced and consumed 100 records; carol added")
