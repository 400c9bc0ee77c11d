//! agentbus-testkit: isolated in-process brokers for tests.
//!
//! ```no_run
//! # async fn demo() {
//! let broker = agentbus_testkit::Broker::start().await.unwrap();
//! let bootstrap = broker.bootstrap(); // "127.0.0.1:<ephemeral port>"
//! // point any Kafka client at `bootstrap`; dropping `broker` shuts it down
//! # }
//! ```

use agentbus_broker::group::GroupConfig;
use agentbus_broker::{BrokerConfig, StartError, StorageConfig};
use std::path::PathBuf;
use std::sync::Arc;

pub use agentbus_broker::state::State;

/// An in-process broker on an ephemeral loopback port with memory storage.
#[derive(Debug)]
pub struct Broker {
    inner: agentbus_broker::Broker,
}

impl Broker {
    /// Starts a broker with the defaults tests want (memory storage, auto-create on).
    pub async fn start() -> Result<Self, StartError> {
        Self::builder().start().await
    }

    /// A builder for non-default settings.
    pub fn builder() -> BrokerBuilder {
        BrokerBuilder {
            config: BrokerConfig {
                listen: "127.0.0.1:0".into(),
                // Kafka waits 3 s before the first rebalance of a group; tests need not.
                group: GroupConfig {
                    initial_rebalance_delay: std::time::Duration::ZERO,
                    // KIP-848 members learn of new assignments on their next heartbeat.
                    consumer_heartbeat_interval: std::time::Duration::from_millis(500),
                    ..GroupConfig::default()
                },
                ..BrokerConfig::default()
            },
        }
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.inner.bootstrap()
    }

    /// The broker's state, for assertions that need no client.
    pub fn state(&self) -> &Arc<State> {
        self.inner.state()
    }

    /// Stops gracefully: in-flight requests finish, logs are flushed.
    pub async fn shutdown(self) {
        self.inner.shutdown().await
    }
}

/// Settings for [`Broker`].
#[derive(Debug, Clone)]
pub struct BrokerBuilder {
    config: BrokerConfig,
}

impl BrokerBuilder {
    /// Stores data under `dir` instead of in memory.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.storage = StorageConfig::Disk(dir.into());
        self
    }

    /// `auto.create.topics.enable`.
    pub fn auto_create_topics(mut self, on: bool) -> Self {
        self.config.auto_create_topics = on;
        self
    }

    /// `num.partitions` for auto-created topics.
    pub fn default_partitions(mut self, n: i32) -> Self {
        self.config.default_partitions = n;
        self
    }

    /// Any other setting.
    pub fn configure(mut self, f: impl FnOnce(&mut BrokerConfig)) -> Self {
        f(&mut self.config);
        self
    }

    pub async fn start(self) -> Result<Broker, StartError> {
        Ok(Broker {
            inner: agentbus_broker::Broker::start(self.config).await?,
        })
    }
}
