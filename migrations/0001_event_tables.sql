-- One table per topic with the seeds' columns: event_id is the primary key (inserts
-- use ON CONFLICT (id) DO NOTHING), nested objects are JSONB, lists of names are
-- text[], the event timestamp is created_at.

CREATE TABLE IF NOT EXISTS agent_actions (
    id              uuid PRIMARY KEY,
    correlation_id  uuid NOT NULL,
    agent_name      text,
    action_type     text,
    action_name     text,
    action_details  jsonb,
    debug_mode      boolean,
    duration_ms     bigint,
    metadata        jsonb,
    created_at      timestamptz NOT NULL,
    ingested_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS agent_actions_correlation_id ON agent_actions (correlation_id);
CREATE INDEX IF NOT EXISTS agent_actions_created_at ON agent_actions (created_at);
CREATE INDEX IF NOT EXISTS agent_actions_agent_name ON agent_actions (agent_name, created_at);

CREATE TABLE IF NOT EXISTS agent_routing_decisions (
    id                uuid PRIMARY KEY,
    correlation_id    uuid NOT NULL,
    user_request      text,
    selected_agent    text,
    confidence_score  double precision,
    alternatives      jsonb,
    reasoning         text,
    routing_strategy  text,
    context           jsonb,
    routing_time_ms   bigint,
    created_at        timestamptz NOT NULL,
    ingested_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS agent_routing_decisions_correlation_id ON agent_routing_decisions (correlation_id);
CREATE INDEX IF NOT EXISTS agent_routing_decisions_created_at ON agent_routing_decisions (created_at);
CREATE INDEX IF NOT EXISTS agent_routing_decisions_selected_agent ON agent_routing_decisions (selected_agent, created_at);

CREATE TABLE IF NOT EXISTS agent_transformation_events (
    id                          uuid PRIMARY KEY,
    correlation_id              uuid NOT NULL,
    source_agent                text,
    target_agent                text,
    transformation_reason       text,
    confidence_score            double precision,
    transformation_duration_ms  bigint,
    success                     boolean,
    context_preserved           jsonb,
    created_at                  timestamptz NOT NULL,
    ingested_at                 timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS agent_transformation_events_correlation_id ON agent_transformation_events (correlation_id);
CREATE INDEX IF NOT EXISTS agent_transformation_events_created_at ON agent_transformation_events (created_at);
CREATE INDEX IF NOT EXISTS agent_transformation_events_target_agent ON agent_transformation_events (target_agent, created_at);

CREATE TABLE IF NOT EXISTS router_performance_metrics (
    id                      uuid PRIMARY KEY,
    correlation_id          uuid NOT NULL,
    query_text              text,
    routing_duration_ms     bigint,
    cache_hit               boolean,
    trigger_match_strategy  text,
    confidence_components   jsonb,
    candidates_evaluated    integer,
    created_at              timestamptz NOT NULL,
    ingested_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS router_performance_metrics_correlation_id ON router_performance_metrics (correlation_id);
CREATE INDEX IF NOT EXISTS router_performance_metrics_created_at ON router_performance_metrics (created_at);

CREATE TABLE IF NOT EXISTS execution_paths (
    id                 uuid PRIMARY KEY,
    correlation_id     uuid NOT NULL,
    fingerprint_id     uuid,
    task_hash          text,
    original_prompt    text,
    task_type          text,
    domain             text,
    agent_name         text,
    agent_chain        text[],
    success            boolean,
    quality_score      double precision,
    complexity_score   double precision,
    steps              jsonb,
    total_duration_ms  bigint,
    tools_used         text[],
    user_acceptance    boolean,
    created_at         timestamptz NOT NULL,
    ingested_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS execution_paths_correlation_id ON execution_paths (correlation_id);
CREATE INDEX IF NOT EXISTS execution_paths_created_at ON execution_paths (created_at);
CREATE INDEX IF NOT EXISTS execution_paths_agent_name ON execution_paths (agent_name, created_at);
CREATE INDEX IF NOT EXISTS execution_paths_fingerprint_id ON execution_paths (fingerprint_id);

CREATE TABLE IF NOT EXISTS code_artifacts (
    id                     uuid PRIMARY KEY,
    correlation_id         uuid NOT NULL,
    path_id                uuid,
    fingerprint_id         uuid,
    file_path              text,
    artifact_type          text,
    language               text,
    quality_score          double precision,
    onex_compliance_score  double precision,
    lines_added            bigint,
    lines_modified         bigint,
    lines_deleted          bigint,
    test_coverage          double precision,
    tests_passed           integer,
    tests_failed           integer,
    lint_passed            boolean,
    type_check_passed      boolean,
    security_scan_passed   boolean,
    onex_node_type         text,
    complexity_metrics     jsonb,
    created_at             timestamptz NOT NULL,
    ingested_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS code_artifacts_correlation_id ON code_artifacts (correlation_id);
CREATE INDEX IF NOT EXISTS code_artifacts_created_at ON code_artifacts (created_at);
CREATE INDEX IF NOT EXISTS code_artifacts_path_id ON code_artifacts (path_id);

CREATE TABLE IF NOT EXISTS success_patterns (
    id                      uuid PRIMARY KEY,
    correlation_id          uuid NOT NULL,
    pattern_id              uuid,
    fingerprint_id          uuid,
    path_id                 uuid,
    pattern_name            text,
    pattern_type            text,
    pattern_template        jsonb,
    applicability_criteria  jsonb,
    validation_criteria     jsonb,
    estimated_duration_ms   bigint,
    created_at              timestamptz NOT NULL,
    ingested_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS success_patterns_correlation_id ON success_patterns (correlation_id);
CREATE INDEX IF NOT EXISTS success_patterns_created_at ON success_patterns (created_at);
CREATE INDEX IF NOT EXISTS success_patterns_pattern_id ON success_patterns (pattern_id);

CREATE TABLE IF NOT EXISTS failure_patterns (
    id                    uuid PRIMARY KEY,
    correlation_id        uuid NOT NULL,
    failure_id            uuid,
    fingerprint_id        uuid,
    path_id               uuid,
    failure_type          text,
    error_category        text,
    error_message         text,
    error_stack_trace     text,
    failed_step           jsonb,
    root_cause            text,
    contributing_factors  text[],
    resolution            text,
    resolution_steps      jsonb,
    time_to_resolve_ms    bigint,
    prevention_strategy   jsonb,
    created_at            timestamptz NOT NULL,
    ingested_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS failure_patterns_correlation_id ON failure_patterns (correlation_id);
CREATE INDEX IF NOT EXISTS failure_patterns_created_at ON failure_patterns (created_at);
CREATE INDEX IF NOT EXISTS failure_patterns_failure_id ON failure_patterns (failure_id);
