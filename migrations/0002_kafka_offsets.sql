-- Next offset to read (last written + 1, as Kafka stores it) per group and partition,
-- written in the same transaction as the rows; consumers seek here on assignment.
CREATE TABLE IF NOT EXISTS kafka_offsets (
    consumer_group  text    NOT NULL,
    topic           text    NOT NULL,
    "partition"     integer NOT NULL,
    next_offset     bigint  NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, "partition")
);
