//! The producer: validated events, keyed by their topic's partition key, over librdkafka
//! with idempotence on.
//!
//! Two ways to publish:
//! - [`Producer::publish`] waits for the broker's acknowledgement and returns where the
//!   event landed (topic, partition, offset), never waiting past the configured timeout;
//! - [`Producer::publish_detached`] only enqueues (fire and forget). At most
//!   `queue_capacity` such events are in flight; past that it fails at once with
//!   [`PublishError::QueueFull`]. Delivery failures of detached events are counted and
//!   reported by the next [`Producer::flush`], which should be called on shutdown.
//!
//! Dropping a producer (or [`Producer::close`]) sends what is still queued, waiting at
//! most [`DROP_FLUSH`] (or the timeout given), and logs how many events it could not
//! deliver; librdkafka alone would discard them.

use crate::config::ProducerConfig;
use crate::events::{AnyEvent, Event, EventError};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer,
};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Where an acknowledged event was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset in the partition.
    pub offset: i64,
}

/// Why an event was not published.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The event is not valid; nothing was sent.
    #[error(transparent)]
    Invalid(#[from] EventError),
    /// The event could not be encoded as JSON.
    #[error("cannot encode the event: {0}")]
    Encode(#[source] serde_json::Error),
    /// librdkafka refused the configuration.
    #[error("cannot create the producer: {0}")]
    Create(#[source] KafkaError),
    /// The fire-and-forget queue (or librdkafka's own) is full.
    #[error(
        "producer queue full: {capacity} events already waiting for delivery (flush or slow down)"
    )]
    QueueFull {
        /// The bound that was hit.
        capacity: usize,
    },
    /// No acknowledgement within the deadline (broker down or unreachable).
    #[error("no acknowledgement from {brokers} within {timeout_ms} ms{}", last.as_ref().map(|l| format!(" (last error: {l})")).unwrap_or_default())]
    Timeout {
        /// The bootstrap servers.
        brokers: String,
        /// The deadline.
        timeout_ms: u128,
        /// The last error librdkafka reported, if any.
        last: Option<String>,
    },
    /// The broker rejected the event.
    #[error("delivery to {topic} failed: {source}")]
    Delivery {
        /// The topic.
        topic: String,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// Detached events failed since the last flush.
    #[error("{count} fire-and-forget event(s) were not delivered; last error: {last}")]
    Undelivered {
        /// How many.
        count: u64,
        /// The last failure.
        last: String,
    },
    /// `flush` ran out of time with events still in flight.
    #[error("flush timed out after {timeout_ms} ms with {pending} event(s) still in flight")]
    FlushTimeout {
        /// The deadline.
        timeout_ms: u128,
        /// Events not yet acknowledged.
        pending: i32,
    },
}

/// Counters shared with the delivery callback.
#[derive(Debug, Default)]
struct Shared {
    detached: AtomicUsize,
    failed: AtomicU64,
    last_failure: Mutex<Option<String>>,
    last_client_error: Mutex<Option<String>>,
}

fn remember(slot: &Mutex<Option<String>>, text: String) {
    if let Ok(mut g) = slot.lock() {
        *g = Some(text);
    }
}

fn recall(slot: &Mutex<Option<String>>) -> Option<String> {
    slot.lock().ok().and_then(|g| g.clone())
}

/// What the delivery callback does with a result.
#[derive(Debug)]
enum Ticket {
    /// Hand it to a waiting `publish`.
    Waiter(oneshot::Sender<Result<Delivery, KafkaError>>),
    /// Count it (fire and forget).
    Detached,
}

/// librdkafka callbacks: deliveries, and logs routed to `tracing`.
#[derive(Debug)]
struct Ctx {
    shared: Arc<Shared>,
}

impl ClientContext for Ctx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        // Connection failures repeat every retry; they reach the user through the
        // timeout error instead.
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical => {
                tracing::error!(target: "librdkafka", "{fac}: {msg}")
            }
            _ => tracing::debug!(target: "librdkafka", "{fac}: {msg}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(target: "librdkafka", "{error}: {reason}");
        // "N/N brokers are down" follows the error that says why; keep that one.
        let summary = matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::AllBrokersDown)
        );
        if !summary || recall(&self.shared.last_client_error).is_none() {
            remember(&self.shared.last_client_error, reason.to_string());
        }
    }
}

impl ProducerContext for Ctx {
    type DeliveryOpaque = Box<Ticket>;

    fn delivery(&self, result: &DeliveryResult<'_>, ticket: Box<Ticket>) {
        match *ticket {
            Ticket::Waiter(tx) => {
                let r = match result {
                    Ok(m) => Ok(Delivery {
                        topic: m.topic().to_string(),
                        partition: m.partition(),
                        offset: m.offset(),
                    }),
                    Err((e, _)) => Err(e.clone()),
                };
                // The waiter may have given up; nothing to do then.
                let _ = tx.send(r);
            }
            Ticket::Detached => {
                self.shared.detached.fetch_sub(1, Ordering::AcqRel);
                if let Err((e, m)) = result {
                    self.shared.failed.fetch_add(1, Ordering::AcqRel);
                    let text = format!("{}: {e}", m.topic());
                    tracing::warn!("event not delivered: {text}");
                    remember(&self.shared.last_failure, text);
                }
            }
        }
    }
}

/// An event accepted by [`Producer::enqueue`], not yet acknowledged.
#[derive(Debug)]
pub struct Pending {
    rx: Option<oneshot::Receiver<Result<Delivery, KafkaError>>>,
    topic: &'static str,
    deadline: Instant,
    brokers: String,
    timeout: Duration,
    shared: Arc<Shared>,
}

impl Pending {
    /// Waits for the acknowledgement; `None` when publishing is disabled.
    pub async fn wait(self) -> Result<Option<Delivery>, PublishError> {
        let Some(rx) = self.rx else { return Ok(None) };
        // librdkafka fails the message at `message.timeout.ms` but checks only once a
        // second; the deadline is kept here exactly.
        let until = self.deadline;
        let timeout = || PublishError::Timeout {
            brokers: self.brokers.clone(),
            timeout_ms: self.timeout.as_millis(),
            last: recall(&self.shared.last_client_error),
        };
        match tokio::time::timeout_at(until.into(), rx).await {
            Ok(Ok(Ok(d))) => Ok(Some(d)),
            Ok(Ok(Err(KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut)))) => {
                Err(timeout())
            }
            Ok(Ok(Err(e))) => Err(PublishError::Delivery {
                topic: self.topic.to_string(),
                source: e,
            }),
            Ok(Err(_)) | Err(_) => Err(timeout()),
        }
    }
}

/// Longest a dropped producer waits for its queued events.
pub const DROP_FLUSH: Duration = Duration::from_secs(5);

/// A producer for the eight topics.
pub struct Producer {
    inner: Option<ThreadedProducer<Ctx>>,
    shared: Arc<Shared>,
    config: ProducerConfig,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("config", &self.config)
            .field(
                "detached_in_flight",
                &self.shared.detached.load(Ordering::Relaxed),
            )
            .finish_non_exhaustive()
    }
}

impl Producer {
    /// Creates a producer; with `enable_logging` false it never connects.
    pub fn new(config: ProducerConfig) -> Result<Self, PublishError> {
        let shared = Arc::new(Shared::default());
        let inner = if config.enable_logging {
            let ctx = Ctx {
                shared: shared.clone(),
            };
            Some(
                config
                    .rdkafka_config()
                    .create_with_context(ctx)
                    .map_err(PublishError::Create)?,
            )
        } else {
            None
        };
        Ok(Self {
            inner,
            shared,
            config,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &ProducerConfig {
        &self.config
    }

    fn prepare<E: Event>(event: &E) -> Result<Vec<u8>, PublishError> {
        event.validate().map_err(EventError::from)?;
        serde_json::to_vec(event).map_err(PublishError::Encode)
    }

    fn send(
        &self,
        topic: &'static str,
        key: &str,
        payload: &[u8],
        ticket: Ticket,
    ) -> Result<(), PublishError> {
        let Some(p) = &self.inner else { return Ok(()) };
        let record = BaseRecord::with_opaque_to(topic, Box::new(ticket))
            .key(key)
            .payload(payload);
        p.send(record).map_err(|(e, _)| match e {
            KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull) => PublishError::QueueFull {
                capacity: self.config.queue_capacity,
            },
            e => PublishError::Delivery {
                topic: topic.to_string(),
                source: e,
            },
        })
    }

    fn enqueue_raw(
        &self,
        topic: &'static str,
        key: &str,
        payload: &[u8],
    ) -> Result<Pending, PublishError> {
        let now = Instant::now();
        let rx = if self.inner.is_some() {
            let (tx, rx) = oneshot::channel();
            self.send(topic, key, payload, Ticket::Waiter(tx))?;
            Some(rx)
        } else {
            None
        };
        Ok(Pending {
            rx,
            topic,
            deadline: now + self.config.timeout,
            brokers: self.config.brokers.clone(),
            timeout: self.config.timeout,
            shared: self.shared.clone(),
        })
    }

    /// Validates and enqueues `event` without waiting; await [`Pending::wait`] for the
    /// acknowledgement.
    pub fn enqueue<E: Event>(&self, event: &E) -> Result<Pending, PublishError> {
        let payload = Self::prepare(event)?;
        self.enqueue_raw(E::TOPIC.name(), event.partition_key(), &payload)
    }

    /// [`Producer::enqueue`] for an event of any topic.
    pub fn enqueue_any(&self, event: &AnyEvent) -> Result<Pending, PublishError> {
        event.validate().map_err(EventError::from)?;
        let payload = event.to_json().map_err(PublishError::Encode)?;
        self.enqueue_raw(event.topic().name(), event.partition_key(), &payload)
    }

    /// Publishes `event` and waits for the acknowledgement (at most the configured
    /// timeout). `None` when publishing is disabled (`KAFKA_ENABLE_LOGGING=false`).
    pub async fn publish<E: Event>(&self, event: &E) -> Result<Option<Delivery>, PublishError> {
        let payload = Self::prepare(event)?;
        let deadline = Instant::now() + self.config.timeout;
        loop {
            match self.enqueue_raw(E::TOPIC.name(), event.partition_key(), &payload) {
                Ok(p) => return p.wait().await,
                // librdkafka's own queue is full: wait for room, within the deadline.
                Err(PublishError::QueueFull { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(1)).await
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Validates and enqueues `event` without waiting for, or reporting, its delivery.
    ///
    /// Fails with [`PublishError::QueueFull`] when `queue_capacity` detached events are
    /// already in flight. Failed deliveries are reported by the next [`Producer::flush`].
    pub fn publish_detached<E: Event>(&self, event: &E) -> Result<(), PublishError> {
        let payload = Self::prepare(event)?;
        if self.inner.is_none() {
            return Ok(());
        }
        let capacity = self.config.queue_capacity;
        if self.shared.detached.fetch_add(1, Ordering::AcqRel) >= capacity {
            self.shared.detached.fetch_sub(1, Ordering::AcqRel);
            return Err(PublishError::QueueFull { capacity });
        }
        let sent = self.send(
            E::TOPIC.name(),
            event.partition_key(),
            &payload,
            Ticket::Detached,
        );
        if sent.is_err() {
            self.shared.detached.fetch_sub(1, Ordering::AcqRel);
        }
        sent
    }

    /// Connects: asks the cluster for metadata (of `topic`, or of all topics) twice, within
    /// the configured timeout. Optional; it checks that the cluster is reachable and makes
    /// the first publish fast.
    ///
    /// Why twice: librdkafka (2.10 and later) drops the bootstrap connection once the first
    /// metadata answer names the real brokers, and an idempotent producer that found no
    /// broker up to ask for its producer id retries only on the next metadata answer or
    /// 500 ms later. The second answer, from a learned broker, lets it get the id at once.
    pub async fn connect(&self, topic: Option<&str>) -> Result<(), PublishError> {
        let Some(p) = &self.inner else { return Ok(()) };
        let p = p.clone();
        let topic = topic.map(str::to_string);
        let timeout = self.config.timeout;
        let r = tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + timeout;
            for _ in 0..2 {
                let left = deadline.saturating_duration_since(Instant::now());
                p.client().fetch_metadata(topic.as_deref(), left)?;
            }
            Ok::<(), KafkaError>(())
        })
        .await;
        match r {
            Ok(Ok(())) => Ok(()),
            _ => Err(PublishError::Timeout {
                brokers: self.config.brokers.clone(),
                timeout_ms: timeout.as_millis(),
                last: recall(&self.shared.last_client_error),
            }),
        }
    }

    /// Detached events not yet acknowledged.
    pub fn detached_in_flight(&self) -> usize {
        self.shared.detached.load(Ordering::Acquire)
    }

    /// Sends everything queued and waits for it, at most `timeout`; then reports detached
    /// events that failed since the last flush.
    pub async fn flush(&self, timeout: Duration) -> Result<(), PublishError> {
        if let Some(p) = &self.inner {
            let p = p.clone();
            let done = tokio::task::spawn_blocking(move || {
                let r = p.flush(timeout);
                (r, p.in_flight_count())
            })
            .await;
            match done {
                Ok((Ok(()), _)) => {}
                Ok((Err(_), pending)) => {
                    return Err(PublishError::FlushTimeout {
                        timeout_ms: timeout.as_millis(),
                        pending,
                    })
                }
                Err(_) => {
                    return Err(PublishError::FlushTimeout {
                        timeout_ms: timeout.as_millis(),
                        pending: -1,
                    })
                }
            }
        }
        let count = self.shared.failed.swap(0, Ordering::AcqRel);
        if count > 0 {
            return Err(PublishError::Undelivered {
                count,
                last: recall(&self.shared.last_failure).unwrap_or_default(),
            });
        }
        Ok(())
    }
}

impl Producer {
    /// Sends what is queued, waiting at most `timeout`; returns how many events were not
    /// delivered (still queued at the deadline, or failed since the last flush), and logs
    /// them. A producer that is only dropped does this with [`DROP_FLUSH`].
    pub fn close(mut self, timeout: Duration) -> usize {
        self.settle(timeout)
    }

    fn settle(&mut self, timeout: Duration) -> usize {
        let Some(p) = self.inner.take() else {
            return 0;
        };
        let _ = p.flush(timeout);
        let queued = usize::try_from(p.in_flight_count()).unwrap_or(0);
        let failed = usize::try_from(self.shared.failed.swap(0, Ordering::AcqRel)).unwrap_or(0);
        let lost = queued + failed;
        if lost > 0 {
            tracing::warn!(
                queued,
                failed,
                brokers = %self.config.brokers,
                "producer closed: {lost} event(s) not delivered"
            );
        }
        lost
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.settle(DROP_FLUSH);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{decode, RoutingDecision, Topic};
    use crate::examples;

    fn example() -> RoutingDecision {
        decode(examples::json(Topic::AgentRoutingDecisions).as_bytes()).unwrap()
    }

    #[tokio::test]
    async fn disabled_producer_never_connects() {
        let p = Producer::new(ProducerConfig {
            enable_logging: false,
            brokers: "127.0.0.1:1".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.publish(&example()).await.unwrap(), None);
        p.publish_detached(&example()).unwrap();
        p.flush(Duration::from_millis(10)).await.unwrap();
    }

    #[tokio::test]
    async fn invalid_events_are_not_sent() {
        let p = Producer::new(ProducerConfig {
            enable_logging: false,
            ..Default::default()
        })
        .unwrap();
        let mut e = example();
        e.confidence_score = 1.5;
        let err = p.publish(&e).await.unwrap_err();
        assert_eq!(err.to_string(), "confidence_score: 1.5 is outside 0..=1");
    }

    #[tokio::test]
    async fn detached_queue_is_bounded_and_unreachable_broker_times_out() {
        let p = Producer::new(ProducerConfig {
            brokers: "127.0.0.1:1".into(),
            timeout: Duration::from_millis(300),
            queue_capacity: 2,
            ..Default::default()
        })
        .unwrap();
        p.publish_detached(&example()).unwrap();
        p.publish_detached(&example()).unwrap();
        let full = p.publish_detached(&example()).unwrap_err();
        assert!(
            matches!(full, PublishError::QueueFull { capacity: 2 }),
            "{full}"
        );
        assert!(full.to_string().contains("queue full"), "{full}");
        let start = Instant::now();
        let err = p.publish(&example()).await.unwrap_err();
        assert!(matches!(err, PublishError::Timeout { .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(3));
        let flushed = p.flush(Duration::from_secs(3)).await.unwrap_err();
        assert!(
            matches!(flushed, PublishError::Undelivered { count: 2, .. }),
            "{flushed}"
        );
        assert_eq!(p.detached_in_flight(), 0);
    }
}
