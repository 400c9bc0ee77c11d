//! Every series a consumer process exposes, in one table: the renderer writes from it
//! and the test of required series reads it, so a name cannot drift between the two.

/// The Prometheus type of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Buckets, sum and count.
    Histogram,
}

impl Kind {
    /// The name in a `# TYPE` line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Metric {
    /// `agentbus_events_received_total`
    EventsReceived,
    /// `agentbus_events_written_total`
    EventsWritten,
    /// `agentbus_events_duplicate_total`
    EventsDuplicate,
    /// `agentbus_errors_total{stage,error_type}`
    Errors,
    /// `agentbus_dlq_records_total{stage}`
    DlqRecords,
    /// `agentbus_dlq_write_failures_total`
    DlqWriteFailures,
    /// `agentbus_batch_flush_duration_seconds`
    BatchFlushDuration,
    /// `agentbus_batch_size_events`
    BatchSize,
    /// `agentbus_offset_commit_failures_total`
    OffsetCommitFailures,
    /// `agentbus_offset_mismatches_total{topic,direction}`
    OffsetMismatches,
    /// `agentbus_offset_resets_total{topic,reason}`
    OffsetResets,
    /// `agentbus_up`
    Up,
    /// `agentbus_uptime_seconds`
    Uptime,
    /// `kafka_consumergroup_current_offset{consumergroup,topic,partition}`
    CurrentOffset,
    /// `kafka_consumergroup_lag{consumergroup,topic,partition}`
    Lag,
    /// `kafka_consumergroup_lag_sum{consumergroup,topic}`
    LagSum,
    /// `agentbus_audit_files_uploaded_total` (audit-logger)
    AuditFiles,
    /// `agentbus_audit_bytes_uploaded_total` (audit-logger)
    AuditBytes,
    /// `agentbus_audit_upload_duration_seconds` (audit-logger)
    AuditUploadDuration,
    /// `agentbus_audit_open_records` (audit-logger)
    AuditOpenRecords,
    /// `agentbus_audit_lag_seconds` (audit-logger)
    AuditLag,
    /// `agentbus_alerts_total{rule,action}` (alert-manager)
    Alerts,
    /// `agentbus_alert_deliveries_total{destination,outcome}` (alert-manager)
    AlertDeliveries,
    /// `agentbus_alert_delivery_latency_seconds` (alert-manager)
    AlertDeliveryLatency,
    /// `agentbus_alerts_held_back_total` (alert-manager)
    AlertsHeldBack,
}

impl Metric {
    /// Every family, in the order they are rendered.
    pub const ALL: [Metric; 25] = [
        Metric::EventsReceived,
        Metric::EventsWritten,
        Metric::EventsDuplicate,
        Metric::DlqWriteFailures,
        Metric::OffsetCommitFailures,
        Metric::Errors,
        Metric::DlqRecords,
        Metric::OffsetMismatches,
        Metric::OffsetResets,
        Metric::BatchFlushDuration,
        Metric::BatchSize,
        Metric::Up,
        Metric::Uptime,
        Metric::CurrentOffset,
        Metric::Lag,
        Metric::LagSum,
        Metric::AuditFiles,
        Metric::AuditBytes,
        Metric::AuditUploadDuration,
        Metric::AuditOpenRecords,
        Metric::AuditLag,
        Metric::Alerts,
        Metric::AlertDeliveries,
        Metric::AlertDeliveryLatency,
        Metric::AlertsHeldBack,
    ];

    /// The series every consumer must expose (CONVENTIONS.md); dashboards and alert
    /// rules are written against these names.
    pub const REQUIRED: [Metric; 12] = [
        Metric::EventsReceived,
        Metric::EventsWritten,
        Metric::EventsDuplicate,
        Metric::Errors,
        Metric::DlqRecords,
        Metric::DlqWriteFailures,
        Metric::BatchFlushDuration,
        Metric::BatchSize,
        Metric::OffsetCommitFailures,
        Metric::Lag,
        Metric::LagSum,
        Metric::CurrentOffset,
    ];

    /// The Prometheus name.
    pub const fn name(self) -> &'static str {
        match self {
            Metric::EventsReceived => "agentbus_events_received_total",
            Metric::EventsWritten => "agentbus_events_written_total",
            Metric::EventsDuplicate => "agentbus_events_duplicate_total",
            Metric::Errors => "agentbus_errors_total",
            Metric::DlqRecords => "agentbus_dlq_records_total",
            Metric::DlqWriteFailures => "agentbus_dlq_write_failures_total",
            Metric::BatchFlushDuration => "agentbus_batch_flush_duration_seconds",
            Metric::BatchSize => "agentbus_batch_size_events",
            Metric::OffsetCommitFailures => "agentbus_offset_commit_failures_total",
            Metric::OffsetMismatches => "agentbus_offset_mismatches_total",
            Metric::OffsetResets => "agentbus_offset_resets_total",
            Metric::Up => "agentbus_up",
            Metric::Uptime => "agentbus_uptime_seconds",
            Metric::CurrentOffset => "kafka_consumergroup_current_offset",
            Metric::Lag => "kafka_consumergroup_lag",
            Metric::LagSum => "kafka_consumergroup_lag_sum",
            Metric::AuditFiles => "agentbus_audit_files_uploaded_total",
            Metric::AuditBytes => "agentbus_audit_bytes_uploaded_total",
            Metric::AuditUploadDuration => "agentbus_audit_upload_duration_seconds",
            Metric::AuditOpenRecords => "agentbus_audit_open_records",
            Metric::AuditLag => "agentbus_audit_lag_seconds",
            Metric::Alerts => "agentbus_alerts_total",
            Metric::AlertDeliveries => "agentbus_alert_deliveries_total",
            Metric::AlertDeliveryLatency => "agentbus_alert_delivery_latency_seconds",
            Metric::AlertsHeldBack => "agentbus_alerts_held_back_total",
        }
    }

    /// The `# HELP` text.
    pub const fn help(self) -> &'static str {
        match self {
            Metric::EventsReceived => "Records received from Kafka.",
            Metric::EventsWritten => "Events stored by the sink.",
            Metric::EventsDuplicate => "Events the sink already had.",
            Metric::Errors => "Errors by stage and type.",
            Metric::DlqRecords => "Records sent to the dead-letter queue, by stage.",
            Metric::DlqWriteFailures => "Dead letters that could not be written.",
            Metric::BatchFlushDuration => "Time to write one batch and its offsets.",
            Metric::BatchSize => "Events per flushed batch.",
            Metric::OffsetCommitFailures => "Failed Kafka offset commits.",
            Metric::OffsetMismatches => "Batches a sink refused because its stored offset was not where the batch started (rewind: the sink lost writes; forward: another member wrote on).",
            Metric::OffsetResets => "Partitions whose stored offset was gone from the log (retention), so reading restarted at the log start.",
            Metric::Up => "Whether the consumer is ready (assigned, sink reachable).",
            Metric::Uptime => "Seconds since start.",
            Metric::CurrentOffset => "Current offset of a consumer group at a partition.",
            Metric::Lag => "Approximate lag of a consumer group at a partition.",
            Metric::LagSum => "Approximate lag of a consumer group summed over a topic's partitions.",
            Metric::AuditFiles => "Archive files uploaded.",
            Metric::AuditBytes => "Bytes of archive files uploaded.",
            Metric::AuditUploadDuration => "Time to upload one archive file and its marker.",
            Metric::AuditOpenRecords => "Records in open or not yet uploaded archive files.",
            Metric::AuditLag => "Age of the oldest record not yet archived.",
            Metric::Alerts => "Alerts produced to agent-alerts, by rule and action (trigger, resolve, suppressed).",
            Metric::AlertDeliveries => "Alert requests to a destination, by outcome (delivered, retried, refused).",
            Metric::AlertDeliveryLatency => "Time from an alert's event to its acceptance by a destination.",
            Metric::AlertsHeldBack => "Triggers held back by the rate limit.",
        }
    }

    /// The Prometheus type.
    pub const fn kind(self) -> Kind {
        match self {
            Metric::BatchFlushDuration
            | Metric::BatchSize
            | Metric::AuditUploadDuration
            | Metric::AlertDeliveryLatency => Kind::Histogram,
            Metric::Up
            | Metric::Uptime
            | Metric::CurrentOffset
            | Metric::Lag
            | Metric::LagSum
            | Metric::AuditOpenRecords
            | Metric::AuditLag => Kind::Gauge,
            _ => Kind::Counter,
        }
    }
}

/// Where in the pipeline an error happened (`stage` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorStage {
    /// Not JSON, or not the event's shape.
    Deserialize,
    /// The right shape with a wrong value.
    Validate,
    /// A processor refused it.
    Transform,
    /// The sink failed or refused.
    Sink,
    /// The dead-letter queue could not be written.
    Dlq,
}

impl ErrorStage {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorStage::Deserialize => "DESERIALIZE",
            ErrorStage::Validate => "VALIDATE",
            ErrorStage::Transform => "TRANSFORM",
            ErrorStage::Sink => "SINK",
            ErrorStage::Dlq => "DLQ",
        }
    }
}

impl From<crate::dlq::Stage> for ErrorStage {
    fn from(s: crate::dlq::Stage) -> Self {
        use crate::dlq::Stage;
        match s {
            Stage::Deserialize => ErrorStage::Deserialize,
            Stage::Validate => ErrorStage::Validate,
            Stage::Transform => ErrorStage::Transform,
            Stage::Sink => ErrorStage::Sink,
        }
    }
}

/// What kind of error (`error_type` label, and `__connect.errors.exception.class.name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorType {
    /// The record's topic is not one of the eight.
    UnknownTopic,
    /// Not JSON, or not the event's shape.
    Decode,
    /// A value is out of its range.
    Invalid,
    /// A processor refused the event.
    Transform,
    /// The sink is down.
    SinkUnavailable,
    /// The sink refused the data.
    SinkRejected,
    /// The sink cannot go on.
    SinkFatal,
    /// The dead-letter queue refused the records.
    Dlq,
}

impl ErrorType {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorType::UnknownTopic => "UnknownTopic",
            ErrorType::Decode => "EventError::Decode",
            ErrorType::Invalid => "EventError::Invalid",
            ErrorType::Transform => "TransformError",
            ErrorType::SinkUnavailable => "SinkError::Unavailable",
            ErrorType::SinkRejected => "SinkError::Rejected",
            ErrorType::SinkFatal => "SinkError::Fatal",
            ErrorType::Dlq => "DlqError",
        }
    }
}

impl From<&crate::sink::SinkError> for ErrorType {
    fn from(e: &crate::sink::SinkError) -> Self {
        use crate::sink::SinkError;
        match e {
            SinkError::Unavailable(_) => ErrorType::SinkUnavailable,
            SinkError::Rejected(_) => ErrorType::SinkRejected,
            SinkError::Fatal(_) => ErrorType::SinkFatal,
        }
    }
}

/// Which way a refused batch moved the consumer (`direction` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direction {
    /// The sink holds less than the batch assumed (a restored or failed-over store).
    Rewind,
    /// The sink holds more (another member wrote on: this one was a zombie).
    Forward,
}

impl Direction {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::Rewind => "rewind",
            Direction::Forward => "forward",
        }
    }
}
