//! Delivering the spool through a producer: all of it (`agentbus spool flush`), a bounded
//! part (`agentbus log` once the broker answers), or continuously from a long-running
//! process ([`Drainer`]). Oldest first per topic, with the original event ids.

use super::{Entry, Spool, SpoolError};
use crate::{AnyEvent, Producer, Topic};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;

/// Delivers up to `max` spooled events (all topics, oldest first within each) through
/// `producer`, stopping at the first failed send (logged; the events stay spooled) or
/// after `within`; how many were delivered. Blocking: call it from a thread outside the
/// runtime of `handle`, or inside `tokio::task::block_in_place`.
pub fn deliver(
    spool: &Spool,
    producer: &Producer,
    handle: &Handle,
    max: usize,
    within: Duration,
) -> Result<usize, SpoolError> {
    let until = Instant::now().checked_add(within);
    let mut sent = 0;
    for topic_name in spool.topics()? {
        let Ok(topic) = topic_name.parse::<Topic>() else {
            continue;
        };
        loop {
            let left = max.saturating_sub(sent);
            if left == 0 || until.is_some_and(|u| Instant::now() >= u) {
                return Ok(sent);
            }
            let chunk = left.min(1000);
            let result = spool.drain(&topic_name, chunk, |entries| {
                handle.block_on(send(producer, topic, entries))
            })?;
            match result {
                Ok(0) => break,
                Ok(n) => sent += n,
                Err(e) => {
                    tracing::warn!("spooled {topic_name} events wait: {e}");
                    return Ok(sent);
                }
            }
        }
    }
    Ok(sent)
}

async fn send(producer: &Producer, topic: Topic, entries: &[Entry]) -> Result<(), String> {
    let mut pending = Vec::with_capacity(entries.len());
    for e in entries {
        // Spooled events were valid when spooled; one that no longer decodes is kept out
        // of the way rather than blocking the rest.
        let event = match AnyEvent::decode(topic, e.value.as_bytes()) {
            Ok(ev) => ev,
            Err(err) => {
                tracing::warn!("dropping a spooled {topic} event that does not decode: {err}");
                continue;
            }
        };
        pending.push(producer.enqueue_any(&event).map_err(|e| e.to_string())?);
    }
    for p in pending {
        p.wait().await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Drains a spool through a producer every `every`, on a thread of its own, for as long
/// as it lives: a long-running process (a service, `agentbus dev`) delivers what one-shot
/// `agentbus log` calls spooled while the broker was away. Dropping it stops the thread
/// (after the send in progress, if any).
#[derive(Debug)]
pub struct Drainer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drainer {
    /// Starts draining `spool` through `producer`, whose deliveries are driven by the
    /// current tokio runtime.
    pub fn spawn(spool: Spool, producer: Arc<Producer>, every: Duration) -> std::io::Result<Self> {
        let handle = Handle::current();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("agentbus-spool".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    match deliver(
                        &spool,
                        &producer,
                        &handle,
                        10_000,
                        every.max(Duration::from_secs(1)),
                    ) {
                        Ok(0) => {}
                        Ok(n) => tracing::info!("delivered {n} spooled event(s)"),
                        Err(e) => tracing::warn!("the spool cannot be read: {e}"),
                    }
                    let until = Instant::now() + every;
                    while Instant::now() < until && !stopped.load(Ordering::Relaxed) {
                        std::thread::sleep(every.min(Duration::from_millis(50)));
                    }
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Drainer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
