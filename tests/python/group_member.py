"""A consumer-group member that commits after each record and then reports it.

Usage: [IDLE_EXIT=SECONDS] [ASSIGNOR=...] [SESSION_TIMEOUT_MS=6000] group_member.py CLIENT BOOTSTRAP TOPIC GROUP
CLIENT is `confluent` (confluent-kafka) or `kafka-python`. Prints "assigned P,P,..." and
"revoked P,P,..." as partitions come and go (incremental, so cooperative assignors read the
same), and "PARTITION OFFSET" for every record whose offset commit succeeded. With IDLE_EXIT
it exits after that long without records (once it has had one); otherwise it runs until killed.
The client's own log goes to stderr at INFO, for the test to show when it fails.
"""
import faulthandler
import logging
import os
import signal
import sys
import time

# SIGUSR1 prints every thread's stack: how a test finds out where a client hangs.
faulthandler.register(signal.SIGUSR1, all_threads=True)

logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), stream=sys.stderr,
                    format="%(asctime)s %(name)s %(levelname)s %(message)s")

client, bootstrap, topic, group = sys.argv[1:5]
idle_exit = float(os.environ["IDLE_EXIT"]) if os.environ.get("IDLE_EXIT") else None
deadline = time.time() + 300
session_ms = int(os.environ.get("SESSION_TIMEOUT_MS", "6000"))


def report(partition, offset):
    print(f"{partition} {offset}", flush=True)


def membership(change, partitions):
    print(f"{change} " + ",".join(str(p.partition) for p in partitions), flush=True)


if client == "confluent":
    from confluent_kafka import Consumer, TopicPartition

    config = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    if os.environ.get("ASSIGNOR") == "consumer":
        config["group.protocol"] = "consumer"  # KIP-848: the broker assigns
    else:
        config.update({
            "session.timeout.ms": session_ms,
            "heartbeat.interval.ms": 500,
            "partition.assignment.strategy": os.environ.get("ASSIGNOR", "range,roundrobin"),
        })
    c = Consumer(config, logger=logging.getLogger("confluent"))
    c.subscribe([topic],
                on_assign=lambda _, parts: membership("assigned", parts),
                on_revoke=lambda _, parts: membership("revoked", parts),
                on_lost=lambda _, parts: membership("revoked", parts))
    last = None
    while time.time() < deadline:
        m = c.poll(0.2)
        if m is None:
            if idle_exit and last and time.time() - last > idle_exit:
                break
            continue
        if m.error():
            continue
        try:
            c.commit(offsets=[TopicPartition(m.topic(), m.partition(), m.offset() + 1)], asynchronous=False)
        except Exception as e:
            # Not counted: read it again if the partition is still ours, else its next
            # owner starts from the last committed offset.
            print(f"# commit failed: {e}", file=sys.stderr, flush=True)
            try:
                c.seek(TopicPartition(m.topic(), m.partition(), m.offset()))
            except Exception:
                pass
            continue
        report(m.partition(), m.offset())
        last = time.time()
    c.close()
elif client == "kafka-python":
    from kafka import KafkaConsumer, TopicPartition
    from kafka.consumer.subscription_state import ConsumerRebalanceListener
    from kafka.structs import OffsetAndMetadata

    class Membership(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            membership("revoked", revoked)

        def on_partitions_assigned(self, assigned):
            membership("assigned", assigned)

        def on_partitions_lost(self, lost):
            membership("revoked", lost)

    c = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=session_ms,
        heartbeat_interval_ms=500,
    )
    c.subscribe([topic], listener=Membership())
    last = None
    while time.time() < deadline:
        batch = c.poll(timeout_ms=200)
        if not batch:
            if idle_exit and last and time.time() - last > idle_exit:
                break
            continue
        for tp, records in batch.items():
            for m in records:
                try:
                    c.commit({TopicPartition(tp.topic, tp.partition): OffsetAndMetadata(m.offset + 1, None, -1)})
                except Exception as e:
                    # Not counted; the rest of this partition's batch is read again later.
                    print(f"# commit failed: {e}", file=sys.stderr, flush=True)
                    try:
                        c.seek(tp, m.offset)
                    except Exception:
                        pass
                    break
                report(m.partition, m.offset)
                last = time.time()
    c.close()
else:
    sys.exit(f"unknown client {client}")
