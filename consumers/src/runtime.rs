//! The consumer loop: one thread polls librdkafka, fills the batch, flushes it to the
//! sink and commits; the async runtime serves HTTP and drives the sink's I/O.
//!
//! ```text
//!            assign: start at the sink's offsets          flush ok: commit, resume
//!   ┌──────────┐ ───────────────────────────► ┌─────────┐ ◄──────────────────── ┌────────┐
//!   │ joining  │                              │ running │                       │ paused │
//!   └──────────┘ ◄─────────────────────────── └─────────┘ ────────────────────► └────────┘
//!        revoke: flush once (else drop: not committed)  │  flush fails (outage): pause all,
//!                                                       │  retry with backoff 100 ms…5 s
//!            SIGTERM/SIGINT (from any state)            ▼
//!   draining: pause fetching, flush until empty or DRAIN_TIMEOUT_MS, commit → leave → exit 0
//!   fatal sink error (credentials, missing table): stop with an error → exit 1
//! ```
//!
//! Everything the rebalance callback touches lives in the pipeline behind one
//! mutex; it is never held across `poll`, where librdkafka runs the callbacks.

use crate::config::{ConfigError, RuntimeConfig};
use crate::dlq::{self, DlqProducer};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::sink::Sink;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaResult;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::TopicPartitionList;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tracing::{error, info, warn};

/// Why the runtime stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A setting is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The HTTP port cannot be bound.
    #[error("HTTP_PORT: cannot listen on {addr}: {source}")]
    Http {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// librdkafka refused the configuration.
    #[error("kafka client: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// Shutdown could not flush the batch in time; it was not committed and will be
    /// read again.
    #[error("drain timeout: {0} record(s) not flushed within {1:?}; they will be read again")]
    DrainTimeout(usize, Duration),
    /// The sink failed in a way retrying cannot mend.
    #[error(transparent)]
    Sink(#[from] crate::sink::SinkError),
    /// The consumer thread panicked.
    #[error("consumer thread failed: {0}")]
    Thread(String),
}

struct Context<S> {
    pipeline: Mutex<Pipeline<S>>,
    metrics: Arc<Metrics>,
}

impl<S> Context<S> {
    fn pipeline(&self) -> MutexGuard<'_, Pipeline<S>> {
        self.pipeline.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<S: Sink> ClientContext for Context<S> {
    fn stats(&self, statistics: Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.hi_offset >= 0 {
                    self.metrics.set_high(topic, *partition, p.hi_offset);
                }
            }
        }
    }
}

impl<S: Sink> ConsumerContext for Context<S> {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let mut pipeline = self.pipeline();
                pipeline.on_assign(tpl, cooperative);
                let assigned = if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                };
                // An application pause survives unassign/reassign in librdkafka: set the
                // new partitions' state explicitly.
                assigned.and_then(|()| {
                    if pipeline.paused() {
                        consumer.pause(tpl)
                    } else {
                        consumer.resume(tpl)
                    }
                })
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.pipeline().on_revoke(consumer, tpl);
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                error!("rebalance failed: {other:?}");
                self.pipeline().on_revoke(consumer, tpl);
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            error!("cannot apply the new assignment: {e}");
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            self.metrics.commit_failed();
            warn!("offset commit failed: {e}");
        }
    }
}

/// Runs a consumer group member until `shutdown` completes, then stops fetching,
/// flushes and commits the batch (within `drain_timeout`) and leaves the group.
///
/// `/health`, `/ready`, `/metrics` and `/metrics.json` are served on
/// `config.http_addr` for as long as it runs.
pub async fn run<S: Sink>(
    config: RuntimeConfig,
    sink: S,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RuntimeError> {
    config.validate()?;
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .map_err(|source| RuntimeError::Http {
            addr: config.http_addr,
            source,
        })?;
    let http_addr = listener.local_addr().unwrap_or(config.http_addr);
    let (http_stop, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(crate::http::serve(listener, metrics.clone(), async {
        let _ = http_stopped.await;
    }));
    info!(
        group = %config.group_id,
        topics = %config.topics.join(","),
        batch_size = config.batch_size,
        batch_timeout_ms = config.batch_timeout.as_millis() as u64,
        "{} consuming; serving /health /ready /metrics on http://{http_addr}",
        config.processor
    );

    if let Err(e) = dlq::ensure_topics(&config.brokers, &config.topics).await {
        warn!("cannot create the DLQ topics ({e}); they are created on first use if the cluster allows it");
    }

    let stop = Arc::new(AtomicBool::new(false));
    let stopper = stop.clone();
    let stop_metrics = metrics.clone();
    tokio::spawn(async move {
        shutdown.await;
        stop_metrics.shutting_down();
        stopper.store(true, Ordering::SeqCst);
    });

    let handle = Handle::current();
    let result = tokio::task::spawn_blocking(move || consume(config, sink, metrics, handle, &stop))
        .await
        .map_err(|e| RuntimeError::Thread(e.to_string()))
        .and_then(|r| r);
    let _ = http_stop.send(());
    let _ = http.await;
    result
}

/// The HTTP port announced in the runtime's start-up log line
/// (`… serving /health /ready /metrics on http://HOST:PORT`), for tools that start a
/// consumer with `HTTP_PORT=0` and read its log.
pub fn http_port_in_log(line: &str) -> Option<u16> {
    let rest = line.split("/metrics on http://").nth(1)?;
    let addr: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || ".:[]-".contains(*c))
        .collect();
    addr.rsplit(':').next()?.parse().ok()
}

fn consumer_config(config: &RuntimeConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.brokers)
        .set("group.id", &config.group_id)
        .set("client.id", format!("agentbus-{}", config.processor))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("session.timeout.ms", config.session_timeout_ms.to_string())
        .set("enable.partition.eof", "false")
        .set("statistics.interval.ms", "1000")
        .set("topic.metadata.refresh.interval.ms", "10000")
        .set("fetch.queue.backoff.ms", "10")
        // librdkafka prefetches up to 64 MiB by default; a few batches are enough.
        .set("queued.max.messages.kbytes", "4096")
        .set("max.partition.fetch.bytes", "262144");
    for (k, v) in &config.kafka_properties {
        c.set(k, v);
    }
    c
}

fn consume<S: Sink>(
    config: RuntimeConfig,
    sink: S,
    metrics: Arc<Metrics>,
    handle: Handle,
    stop: &AtomicBool,
) -> Result<(), RuntimeError> {
    let dlq = DlqProducer::new(&config.brokers, &config.group_id, &config.processor)?;
    let pipeline = Pipeline::new(
        sink,
        dlq,
        metrics.clone(),
        handle,
        config.group_id.clone(),
        config.batch_size,
        config.batch_timeout,
    );
    let context = Context {
        pipeline: Mutex::new(pipeline),
        metrics,
    };
    let consumer: BaseConsumer<Context<S>> =
        consumer_config(&config).create_with_context(context)?;
    let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;

    let mut drain_until: Option<Instant> = None;
    let result = loop {
        if stop.load(Ordering::SeqCst) {
            let until = *drain_until.get_or_insert_with(|| {
                info!("shutting down: flushing the batch, then leaving the group");
                let assignment = consumer.assignment().unwrap_or_default();
                if let Err(e) = consumer.pause(&assignment) {
                    warn!("cannot pause fetching: {e}");
                }
                Instant::now() + config.drain_timeout
            });
            let mut p = consumer.context().pipeline();
            if p.is_empty() {
                p.commit(&consumer, CommitMode::Sync);
                break Ok(());
            }
            if Instant::now() >= until {
                break Err(RuntimeError::DrainTimeout(
                    p.pending_records(),
                    config.drain_timeout,
                ));
            }
            p.tick(&consumer, true);
            if let Some(e) = p.fatal.take() {
                break Err(RuntimeError::Sink(e));
            }
            drop(p);
            // Keep serving the group (heartbeats, rebalances) while draining; the
            // partitions are paused, and anything still delivered is read again later.
            let _ = consumer.poll(Duration::from_millis(20));
            continue;
        }
        let timeout = consumer.context().pipeline().poll_timeout();
        match consumer.poll(timeout) {
            Some(Ok(msg)) => consumer.context().pipeline().accept(&msg),
            Some(Err(e)) => warn!("consume error: {e}"),
            None => {}
        }
        let mut p = consumer.context().pipeline();
        p.tick(&consumer, false);
        if let Some(e) = p.fatal.take() {
            break Err(RuntimeError::Sink(e));
        }
    };
    consumer.context().pipeline().closed = true;
    if let Err(e) = &result {
        error!("{e}");
    }
    consumer.unsubscribe();
    drop(consumer);
    info!("left the group");
    result
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_announced_port_is_found() {
        let line = "INFO agentbus_consumers::runtime: db-writer consuming; serving /health /ready /metrics on http://127.0.0.1:41234 group=g";
        assert_eq!(super::http_port_in_log(line), Some(41234));
        let json = r#"{"fields":{"message":"db-writer consuming; serving /health /ready /metrics on http://0.0.0.0:8080","group":"g"}}"#;
        assert_eq!(super::http_port_in_log(json), Some(8080));
        assert_eq!(super::http_port_in_log("Batch processed"), None);
    }
}
