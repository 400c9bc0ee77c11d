-- The pattern-extractor's outputs, stored by the db-writer: every template version and
-- every fix suggestion, one row per event id.
CREATE TABLE IF NOT EXISTS pattern_templates (
    id uuid PRIMARY KEY,
    correlation_id uuid NOT NULL,
    pattern_id uuid NOT NULL,
    fingerprint_id uuid NOT NULL,
    pattern_name text NOT NULL,
    pattern_type text NOT NULL,
    pattern_template jsonb NOT NULL,
    applicability_criteria jsonb NOT NULL,
    validation_criteria jsonb NOT NULL,
    estimated_duration_ms bigint NOT NULL,
    version bigint NOT NULL,
    status text NOT NULL,
    occurrences bigint NOT NULL,
    success_rate double precision NOT NULL,
    mean_quality_score double precision NOT NULL,
    created_at timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS pattern_templates_pattern_version ON pattern_templates (pattern_id, version);
CREATE INDEX IF NOT EXISTS pattern_templates_fingerprint ON pattern_templates (fingerprint_id);
CREATE INDEX IF NOT EXISTS pattern_templates_created_at ON pattern_templates (created_at);

CREATE TABLE IF NOT EXISTS fix_suggestions (
    id uuid PRIMARY KEY,
    correlation_id uuid NOT NULL,
    failure_id uuid NOT NULL,
    fingerprint_id uuid,
    signature text NOT NULL,
    error_category text NOT NULL,
    normalized_error text NOT NULL,
    group_occurrences bigint NOT NULL,
    suggested_resolution text NOT NULL,
    resolution_steps jsonb NOT NULL,
    resolution_count bigint NOT NULL,
    automated_fix_possible boolean NOT NULL,
    created_at timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS fix_suggestions_signature ON fix_suggestions (signature);
CREATE INDEX IF NOT EXISTS fix_suggestions_failure ON fix_suggestions (failure_id);
CREATE INDEX IF NOT EXISTS fix_suggestions_created_at ON fix_suggestions (created_at);
