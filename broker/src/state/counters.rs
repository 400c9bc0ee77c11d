//! What happened to connections, counted across every listener and presented node, as
//! Kafka's socket-server metrics count them.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub(crate) struct ConnectionCounters {
    /// Closed at once because their address had `max.connections.per.ip` open.
    refused: AtomicU64,
    /// `successful-authentication-total`: SASL exchanges (and TLS client certificates
    /// without SASL) that named a principal.
    authenticated: AtomicU64,
    /// `failed-authentication-total`: wrong credentials, an unmapped certificate subject,
    /// a failed TLS handshake.
    failed_authentications: AtomicU64,
}

impl ConnectionCounters {
    pub(crate) fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn authenticated(&self) {
        self.authenticated.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn failed_authentication(&self) {
        self.failed_authentications.fetch_add(1, Ordering::Relaxed);
    }

    /// (refused, authenticated, failed authentications).
    pub(crate) fn read(&self) -> (u64, u64, u64) {
        (
            self.refused.load(Ordering::Relaxed),
            self.authenticated.load(Ordering::Relaxed),
            self.failed_authentications.load(Ordering::Relaxed),
        )
    }
}
