//! Parked fetches waiting for data on one partition. A fetch registers its own `Notify`
//! with each partition it reads, before reading them; an append wakes only the fetches
//! registered with that partition, not every parked fetch of the broker.

use std::sync::{Arc, Mutex, Weak};
use tokio::sync::Notify;

#[derive(Debug, Default)]
pub(crate) struct Waiters(Mutex<Vec<Weak<Notify>>>);

impl Waiters {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Weak<Notify>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes `waiter` at the next append. A fetch that answered drops its `Notify`, and its
    /// entry is swept here, so a partition nobody writes to keeps no list of the dead.
    pub(crate) fn register(&self, waiter: &Arc<Notify>) {
        let mut list = self.lock();
        list.retain(|w| w.strong_count() > 0);
        let target = Arc::downgrade(waiter);
        if !list.iter().any(|w| w.ptr_eq(&target)) {
            list.push(target);
        }
    }

    /// Wakes every registered fetch (a fetch not yet waiting finds the wake-up stored).
    pub(crate) fn wake(&self) {
        let list = std::mem::take(&mut *self.lock());
        for waiter in list.iter().filter_map(Weak::upgrade) {
            waiter.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_append_wakes_the_registered_once_and_the_dead_are_swept() {
        let waiters = Waiters::default();
        let fetch = Arc::new(Notify::new());
        waiters.register(&fetch);
        waiters.register(&fetch);
        assert_eq!(waiters.lock().len(), 1, "registered twice, listed once");
        for _ in 0..100 {
            waiters.register(&Arc::new(Notify::new()));
        }
        assert!(waiters.lock().len() <= 2, "answered fetches are swept");
        waiters.wake();
        assert!(waiters.lock().is_empty());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let woken = rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(1), fetch.notified())
                .await
                .is_ok()
        });
        assert!(woken, "the wake-up was stored for a fetch not yet waiting");
    }
}
