"""The control API from Python (pytest): a three-broker agentbus, a confluent-kafka
producer and consumer group, and the faults a test suite needs.

Run: AGENTBUS_BIN=target/debug/agentbus python3 -m pytest tests/python/test_control.py
Each test starts its own `agentbus broker --brokers 3 --control 127.0.0.1:0` and reads
the bootstrap servers and the control URL from its ready line.
"""
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

AGENTBUS = os.environ.get("AGENTBUS_BIN", "agentbus")


class Control:
    """The control API: one method per request, JSON in and out."""

    def __init__(self, url):
        self.url = url

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def leader(self, topic, partition):
        return self.call("GET", f"/v1/partitions/{topic}/{partition}/leader")["leader"]

    def stop_node(self, node):
        return self.call("POST", f"/v1/nodes/{node}/stop")

    def start_node(self, node):
        return self.call("POST", f"/v1/nodes/{node}/start")

    def inject(self, api, **fault):
        return self.call("POST", "/v1/faults", {"api": api, **fault})

    def advance(self, ms):
        return self.call("POST", "/v1/clock/advance", {"ms": ms})


@pytest.fixture
def agentbus():
    proc = subprocess.Popen(
        [AGENTBUS, "broker", "--brokers", "3", "--listen", "127.0.0.1:0",
         "--control", "127.0.0.1:0", "--group-initial-rebalance-delay-ms", "0"],
        stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    found = re.search(r"bootstrap (\S+) .*control (http://[^)\s]+)", line)
    assert found, f"no ready line: {line!r}"
    yield found.group(1), Control(found.group(2))
    proc.terminate()
    assert proc.wait(20) == 0


def create_topic(bootstrap, name, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fs = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=3)])
    for f in fs.values():
        f.result(10)


def produce(bootstrap, topic, values):
    failed = []
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5})
    for v in values:
        p.produce(topic, value=v.encode(), key=v.encode(),
                  on_delivery=lambda err, _msg: err and failed.append(err))
    assert p.flush(60) == 0, "records left undelivered"
    assert not failed, failed


def consume(consumer, want, timeout=60):
    seen = set()
    deadline = time.time() + timeout
    while not want <= seen:
        assert time.time() < deadline, f"missing {sorted(want - seen)[:10]}"
        m = consumer.poll(0.5)
        if m is not None and m.error() is None:
            seen.add(m.value().decode())
    return seen


def test_stopping_the_leader_of_a_partition_loses_nothing(agentbus):
    bootstrap, control = agentbus
    create_topic(bootstrap, "orders", 3)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "orders-readers",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe(["orders"])
    first = [f"order-{i}" for i in range(300)]
    produce(bootstrap, "orders", first)
    consume(consumer, set(first))

    leader = control.leader("orders", 0)
    assert control.stop_node(leader)["up"] is False
    assert control.leader("orders", 0) != leader, "leadership moved"
    second = [f"order-{i}" for i in range(300, 600)]
    produce(bootstrap, "orders", second)
    consume(consumer, set(second))
    control.start_node(leader)
    consumer.close()
    counted = control.call("GET", "/v1/cluster")["connections"]
    assert counted == {"refused": 0, "authenticated": 0, "failed_authentications": 0}, counted


def test_an_injected_not_leader_error_is_retried(agentbus):
    bootstrap, control = agentbus
    create_topic(bootstrap, "retried", 1)
    produce(bootstrap, "retried", ["before"])
    control.call("PUT", "/v1/requests/recording", {"on": True})
    fault = control.inject("Produce", error="NOT_LEADER_OR_FOLLOWER", times=2)
    assert fault["fault"] == {"error": "NOT_LEADER_OR_FOLLOWER", "code": 6}
    produce(bootstrap, "retried", ["after"])
    assert control.call("GET", "/v1/faults") == [], "both injected errors were answered"
    produces = [r for r in control.call("GET", "/v1/requests") if r["api"] == "Produce"]
    assert len(produces) >= 3, produces
    # Refused twice, stored once.
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "retried-readers",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe(["retried"])
    assert consume(consumer, {"before", "after"}) == {"before", "after"}
    extra = consumer.poll(1.0)
    assert extra is None or extra.error() is not None, "a retry stored a duplicate"
    consumer.close()


def test_advancing_the_clock_past_the_session_timeout_expires_the_member(agentbus):
    bootstrap, control = agentbus
    create_topic(bootstrap, "sessions", 1)
    assigned = []
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "sessions",
                         "session.timeout.ms": 10000, "heartbeat.interval.ms": 1000,
                         "auto.offset.reset": "earliest"})
    consumer.subscribe(["sessions"], on_assign=lambda _c, parts: assigned.append(parts))
    deadline = time.time() + 30
    while not assigned:
        assert time.time() < deadline, "never assigned"
        consumer.poll(0.2)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    group = admin.describe_consumer_groups(["sessions"])["sessions"].result(10)
    (member,) = [m.member_id for m in group.members]

    control.advance(60_000)
    # The broker expired the member at once; its next heartbeat learns so and it joins again
    # under a new id.
    deadline = time.time() + 30
    while True:
        consumer.poll(0.2)
        group = admin.describe_consumer_groups(["sessions"])["sessions"].result(10)
        ids = [m.member_id for m in group.members]
        if member not in ids:
            break
        assert time.time() < deadline, f"{member} still in the group: {ids}"
    consumer.close()


def test_bad_requests_get_a_reason(agentbus):
    _bootstrap, control = agentbus
    with pytest.raises(urllib.error.HTTPError) as e:
        control.inject("NoSuchApi", error="NOT_LEADER_OR_FOLLOWER")
    assert e.value.code == 400
    assert "unknown Kafka API" in json.load(e.value)["error"]
    with pytest.raises(urllib.error.HTTPError) as e:
        control.stop_node(9)
    assert e.value.code == 404
