-- The alert-manager's alerts, stored by the db-writer: every trigger and resolve, one
-- row per event id; an incident is the rows that share a dedup_key.
CREATE TABLE IF NOT EXISTS agent_alerts (
    id uuid PRIMARY KEY,
    correlation_id uuid NOT NULL,
    dedup_key text NOT NULL,
    rule text NOT NULL,
    kind text NOT NULL,
    action text NOT NULL,
    severity text NOT NULL,
    subject text NOT NULL,
    summary text NOT NULL,
    agent_name text,
    occurrences bigint NOT NULL,
    window_seconds bigint NOT NULL,
    first_seen timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    details jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS agent_alerts_dedup_key ON agent_alerts (dedup_key);
CREATE INDEX IF NOT EXISTS agent_alerts_rule_created_at ON agent_alerts (rule, created_at);
CREATE INDEX IF NOT EXISTS agent_alerts_created_at ON agent_alerts (created_at);
