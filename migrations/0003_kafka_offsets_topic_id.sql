-- The topic id (KIP-516, Kafka's base64 form) the offsets were stored under: offsets
-- belong to one log, and a recreated topic under the same name must not inherit them.
ALTER TABLE kafka_offsets ADD COLUMN IF NOT EXISTS topic_id text;
