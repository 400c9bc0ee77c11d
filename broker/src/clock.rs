//! The broker's clock. Real time, plus an offset that tests can move forward
//! (`advance`) to pass session timeouts, rebalance delays, transaction timeouts and
//! retention instantly. Clients' own timers are unaffected.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Default, Clone)]
pub(crate) struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub(crate) fn now(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.offset_ms.load(Ordering::Acquire).max(0) as u64)
    }

    /// Milliseconds since the Unix epoch, as the broker sees them.
    pub(crate) fn now_ms(&self) -> i64 {
        now_ms() + self.offset_ms.load(Ordering::Acquire)
    }

    /// Moves the broker's time forward.
    pub(crate) fn advance(&self, by: Duration) {
        self.offset_ms
            .fetch_add(by.as_millis() as i64, Ordering::AcqRel);
    }
}

/// Wall-clock milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
