//! The consumer loop: one thread per group polls librdkafka, positions assigned
//! partitions, fills the batch, flushes it to the sink and commits; the async runtime
//! serves HTTP for every group of the process and drives the sinks' I/O.
//!
//! ```text
//!            assign (paused) → sink's offsets → seek → resume      flush ok: commit, resume
//!   ┌──────────┐ ───────────────────────────► ┌─────────┐ ◄──────────────────── ┌────────┐
//!   │ joining  │                              │ running │                       │ paused │
//!   └──────────┘ ◄─────────────────────────── └─────────┘ ────────────────────► └────────┘
//!        revoke: flush once (else drop: not committed)  │  flush fails (outage): pause all,
//!        lost: drop, the sink discards partial work     │  retry with backoff 100 ms…5 s
//!            SIGTERM/SIGINT (from any state)            ▼
//!   draining: pause fetching, flush until empty or DRAIN_TIMEOUT_MS, commit → leave → exit 0
//!   fatal (sink credentials, missing table, offsets of another log) → stop with an error
//! ```
//!
//! Everything the rebalance callback touches lives in the pipeline behind one
//! mutex; it is never held across `poll`, where librdkafka runs the callbacks.

use crate::config::{ConfigError, RuntimeConfig};
use crate::dlq::{self, DlqProducer};
use crate::metrics::Metrics;
use crate::pipeline::{Pipeline, Stop};
use crate::positions::OtherLog;
use crate::rebalance::Context;
use crate::sink::Sink;
use axum::Router;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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
    /// The sink's stored offsets belong to another log than the topic has now.
    #[error(transparent)]
    OtherLog(#[from] OtherLog),
    /// The consumer thread panicked.
    #[error("consumer thread failed: {0}")]
    Thread(String),
}

impl From<Stop> for RuntimeError {
    fn from(s: Stop) -> Self {
        match s {
            Stop::Sink(e) => RuntimeError::Sink(e),
            Stop::OtherLog(e) => RuntimeError::OtherLog(e),
        }
    }
}

type Consume = Box<dyn FnOnce(Handle, Arc<AtomicBool>) -> Result<(), RuntimeError> + Send>;

struct GroupRun {
    config: RuntimeConfig,
    metrics: Arc<Metrics>,
    consume: Consume,
}

/// The consumer groups of one process behind one HTTP listener.
pub struct Service {
    http_addr: SocketAddr,
    groups: Vec<GroupRun>,
    routes: Router,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("http_addr", &self.http_addr)
            .field(
                "groups",
                &self
                    .groups
                    .iter()
                    .map(|g| &g.config.group_id)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Service {
    /// A service whose `/health`, `/ready`, `/metrics` and `/metrics.json` are served on
    /// `http_addr`.
    pub fn new(http_addr: SocketAddr) -> Self {
        Self {
            http_addr,
            groups: Vec::new(),
            routes: Router::new(),
        }
    }

    /// Adds a consumer group writing to `sink`; its metrics.
    pub fn add<S: Sink>(&mut self, config: RuntimeConfig, sink: S) -> Arc<Metrics> {
        let metrics = Arc::new(Metrics::new(config.group_id.clone()));
        let (c, m) = (config.clone(), metrics.clone());
        self.groups.push(GroupRun {
            config,
            metrics: metrics.clone(),
            consume: Box::new(move |handle, stop| consume(c, sink, m, handle, &stop)),
        });
        metrics
    }

    /// Serves `routes` too (a group's own API).
    pub fn route(mut self, routes: Router) -> Self {
        self.add_routes(routes);
        self
    }

    /// [`Service::route`] on a service being assembled.
    pub fn add_routes(&mut self, routes: Router) {
        let all = std::mem::take(&mut self.routes);
        self.routes = all.merge(routes);
    }

    /// Runs every group until `shutdown` completes, then each stops fetching, flushes
    /// and commits its batch (within its drain timeout) and leaves its group. A group
    /// that stops with an error stops the others too.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), RuntimeError> {
        for g in &self.groups {
            g.config.validate()?;
        }
        let listener = tokio::net::TcpListener::bind(self.http_addr)
            .await
            .map_err(|source| RuntimeError::Http {
                addr: self.http_addr,
                source,
            })?;
        self.run_on(listener, shutdown).await
    }

    /// [`Service::run`] with the HTTP endpoints on a listener the caller bound.
    pub async fn run_on(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), RuntimeError> {
        for g in &self.groups {
            g.config.validate()?;
        }
        let http_addr = listener.local_addr().unwrap_or(self.http_addr);
        let all: Vec<Arc<Metrics>> = self.groups.iter().map(|g| g.metrics.clone()).collect();
        let (http_stop, http_stopped) = tokio::sync::oneshot::channel::<()>();
        let http = tokio::spawn(crate::http::serve(
            listener,
            all.clone(),
            self.routes,
            async {
                let _ = http_stopped.await;
            },
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let (stopper, everyone) = (stop.clone(), all.clone());
        tokio::spawn(async move {
            shutdown.await;
            for m in &everyone {
                m.shutting_down();
            }
            stopper.store(true, Ordering::SeqCst);
        });
        let mut threads = Vec::new();
        for g in self.groups {
            let c = &g.config;
            info!(
                group = %c.group_id,
                topics = %c.topics.join(","),
                batch_size = c.batch_size,
                batch_timeout_ms = c.batch_timeout.as_millis() as u64,
                start_from = %c.start_from,
                "{} consuming; serving /health /ready /metrics on http://{http_addr}",
                c.processor
            );
            let (handle, stop) = (Handle::current(), stop.clone());
            let consume = g.consume;
            let (brokers, topics) = (c.brokers.clone(), c.topics.clone());
            threads.push(tokio::task::spawn_blocking(move || {
                // On the group's own thread: the groups of a process start side by side.
                if let Err(e) = handle.block_on(dlq::ensure_topics(&brokers, &topics)) {
                    warn!("cannot create the DLQ topics ({e}); they are created on first use if the cluster allows it");
                }
                let result = consume(handle, stop.clone());
                if result.is_err() {
                    stop.store(true, Ordering::SeqCst);
                }
                result
            }));
        }
        let mut result = Ok(());
        for t in threads {
            let r = t
                .await
                .map_err(|e| RuntimeError::Thread(e.to_string()))
                .and_then(|r| r);
            if result.is_ok() {
                result = r;
            }
        }
        let _ = http_stop.send(());
        let _ = http.await;
        result
    }
}

/// Runs one consumer group member until `shutdown` completes (see [`Service::run`]).
pub async fn run<S: Sink>(
    config: RuntimeConfig,
    sink: S,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Arc<Metrics>, RuntimeError> {
    let mut service = Service::new(config.http_addr);
    let metrics = service.add(config, sink);
    service.run(shutdown).await?;
    Ok(metrics)
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
    let mut c = agentbus_client::kafka_props::client_config();
    c.set("bootstrap.servers", &config.brokers)
        .set("group.id", &config.group_id)
        .set("client.id", format!("agentbus-{}", config.processor))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // Only for a stored offset that retention overtook (logged and counted); the
        // start of a partition without one is START_FROM's.
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "false")
        .set("statistics.interval.ms", "1000")
        .set("topic.metadata.refresh.interval.ms", "10000")
        .set("fetch.queue.backoff.ms", "10")
        // librdkafka prefetches up to 64 MiB by default; a few batches are enough.
        .set("queued.max.messages.kbytes", "4096")
        .set("max.partition.fetch.bytes", "262144");
    // With KIP-848 the broker owns the assignor and the session; librdkafka refuses
    // the classic settings there.
    let consumer_protocol = config
        .kafka_properties
        .iter()
        .any(|(k, v)| k == "group.protocol" && v == "consumer");
    if !consumer_protocol {
        c.set("session.timeout.ms", config.session_timeout_ms.to_string())
            .set("partition.assignment.strategy", "cooperative-sticky");
    }
    for (k, v) in &config.kafka_properties {
        c.set(k, v);
    }
    c
}

fn consume<S: Sink>(
    config: RuntimeConfig,
    mut sink: S,
    metrics: Arc<Metrics>,
    handle: Handle,
    stop: &AtomicBool,
) -> Result<(), RuntimeError> {
    if !config.reset_sink_offsets.is_empty() {
        let removed =
            handle.block_on(sink.reset_offsets(&config.group_id, &config.reset_sink_offsets))?;
        info!(
            topics = %config.reset_sink_offsets.join(","),
            "reset-sink-offsets: forgot the offsets of {removed} partition(s); they start at START_FROM ({})",
            config.start_from
        );
    }
    let dlq = DlqProducer::new(&config.brokers, &config.group_id, &config.processor)?;
    let drain_timeout = config.drain_timeout;
    let client = consumer_config(&config);
    let topics = config.topics.clone();
    let pipeline = Pipeline::new(sink, dlq, metrics.clone(), handle, config);
    let context = Context {
        pipeline: Mutex::new(pipeline),
        metrics,
    };
    let consumer: BaseConsumer<Context<S>> = client.create_with_context(context)?;
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
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
                Instant::now() + drain_timeout
            });
            let mut p = consumer.context().pipeline();
            if p.is_empty() {
                p.close(&consumer);
                p.commit(&consumer, CommitMode::Sync);
                break Ok(());
            }
            if Instant::now() >= until {
                break Err(RuntimeError::DrainTimeout(
                    p.pending_records(),
                    drain_timeout,
                ));
            }
            p.tick(&consumer, true);
            if let Some(e) = p.fatal.take() {
                break Err(e.into());
            }
            drop(p);
            // Keep serving the group (heartbeats, rebalances) while draining; the
            // partitions are paused, and anything still delivered is read again later.
            let _ = consumer.poll(Duration::from_millis(20));
            continue;
        }
        let timeout = consumer.context().pipeline().poll_timeout();
        // Take what librdkafka has queued, up to a batch, before the next flush check.
        let mut wait = timeout;
        loop {
            match consumer.poll(wait) {
                Some(Ok(msg)) => {
                    let mut p = consumer.context().pipeline();
                    p.accept(&consumer, &msg);
                    if p.due(Instant::now()) {
                        break;
                    }
                }
                Some(Err(e)) => warn!("consume error: {e}"),
                None => break,
            }
            wait = Duration::ZERO;
        }
        let mut p = consumer.context().pipeline();
        p.position(&consumer);
        p.tick(&consumer, false);
        if let Some(e) = p.fatal.take() {
            break Err(e.into());
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
