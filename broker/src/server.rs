//! Starting and stopping a broker.

use crate::config::{parse_host_port, BrokerConfig, ConfigError};
use crate::state::{State, TopicError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long shutdown waits for in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open storage: {0}")]
    Storage(#[from] TopicError),
}

/// A running broker. Dropping it stops it without waiting; [`Broker::shutdown`] stops it
/// gracefully.
#[derive(Debug)]
pub struct Broker {
    state: Arc<State>,
    addr: SocketAddr,
    closing: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    retention: JoinHandle<()>,
    groups: JoinHandle<()>,
}

impl Broker {
    /// Binds the listener, opens (and recovers) storage and starts serving.
    pub async fn start(config: BrokerConfig) -> Result<Broker, StartError> {
        config.validate()?;
        let listener =
            TcpListener::bind(&config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen.clone(),
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen.clone(),
            source,
        })?;
        let advertised = match &config.advertise {
            Some(a) => parse_host_port(a).map_err(|r| ConfigError::new("advertise", r))?,
            None => (addr.ip().to_string(), addr.port()),
        };
        let interval = config.retention_check_interval;
        let state = Arc::new(State::open(config, advertised)?);
        let (closing, closing_rx) = watch::channel(false);
        let server = tokio::spawn(crate::net::serve(
            listener,
            state.clone(),
            closing_rx,
            DRAIN_TIMEOUT,
        ));
        let retention = {
            let state = state.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(interval);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let s = state.clone();
                    let work = move || {
                        s.apply_retention();
                        // Also bounds how much log a restart after a crash replays to
                        // rebuild producer state.
                        s.flush_all();
                    };
                    if let Err(e) = tokio::task::spawn_blocking(work).await {
                        tracing::error!(error = %e, "retention task failed");
                    }
                }
            })
        };
        let groups = {
            let state = state.clone();
            tokio::spawn(async move {
                // Session timeouts and rebalance deadlines are checked at this resolution.
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    state.groups.tick(state.meta());
                    state.txns.tick(&state);
                }
            })
        };
        Ok(Broker {
            state,
            addr,
            closing,
            server: Some(server),
            retention,
            groups,
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `host:port` for clients' `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("{}:{}", self.state.advertised.0, self.state.advertised.1)
    }

    /// Shared state, for inspection in tests and tools.
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Closes the listener, lets in-flight requests finish, flushes the logs.
    pub async fn shutdown(mut self) {
        let _ = self.closing.send(true);
        self.state.appended.notify_waiters();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        self.retention.abort();
        self.groups.abort();
        let state = self.state.clone();
        let _ = tokio::task::spawn_blocking(move || state.flush_all()).await;
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.closing.send(true);
        self.retention.abort();
        self.groups.abort();
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}
