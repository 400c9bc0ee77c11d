//! Connection limits of one presented broker across all its listeners, as Kafka counts
//! them: `max.connections` open at once, `max.connections.per.ip` from one address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
struct Counts {
    open: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// The connections a broker holds open.
#[derive(Debug, Default)]
pub(crate) struct ConnectionSlots {
    counts: Mutex<Counts>,
}

/// A taken slot, given back when dropped (the connection ended or was aborted).
#[derive(Debug)]
pub(crate) struct Slot {
    slots: Arc<ConnectionSlots>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.slots.lock();
        c.open = c.open.saturating_sub(1);
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

impl ConnectionSlots {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn open(&self) -> usize {
        self.lock().open
    }

    /// A slot for a connection from `ip`, or, with `per_ip` already open from it, none.
    pub(crate) fn take(self: &Arc<Self>, ip: IpAddr, per_ip: usize) -> Result<Slot, usize> {
        let mut c = self.lock();
        let from_ip = c.per_ip.get(&ip).copied().unwrap_or(0);
        if from_ip >= per_ip {
            return Err(from_ip);
        }
        c.open += 1;
        *c.per_ip.entry(ip).or_default() += 1;
        Ok(Slot {
            slots: self.clone(),
            ip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_address_and_given_back() {
        let slots = Arc::new(ConnectionSlots::default());
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let first = slots.take(a, 2).unwrap();
        let _second = slots.take(a, 2).unwrap();
        assert_eq!(slots.take(a, 2).unwrap_err(), 2);
        let _other = slots.take(b, 2).unwrap();
        assert_eq!(slots.open(), 3);
        drop(first);
        assert_eq!(slots.open(), 2);
        assert!(slots.take(a, 2).is_ok());
    }
}
