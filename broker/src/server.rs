//! Starting and stopping a broker.

use crate::cluster::Node;
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

/// One presented broker's listener.
#[derive(Debug)]
struct NodeServer {
    id: i32,
    addr: SocketAddr,
    closing: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl NodeServer {
    fn spawn(id: i32, listener: TcpListener, addr: SocketAddr, state: &Arc<State>) -> Self {
        let (closing, closing_rx) = watch::channel(false);
        let task = tokio::spawn(crate::net::serve(
            listener,
            state.clone(),
            id,
            closing_rx,
            DRAIN_TIMEOUT,
        ));
        Self {
            id,
            addr,
            closing,
            task: Some(task),
        }
    }

    /// Refuses new connections and drops the open ones at once (a crashed broker).
    fn kill(&mut self) {
        let _ = self.closing.send(true);
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

async fn bind(addr: &str) -> Result<(TcpListener, SocketAddr), StartError> {
    let err = |source| StartError::Bind {
        addr: addr.to_string(),
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(err)?;
    let local = listener.local_addr().map_err(err)?;
    Ok((listener, local))
}

/// The address each of `count` presented brokers listens on (see [`Broker::start_nodes`]).
fn node_listen_addrs(listen: &str, count: usize) -> Result<Vec<String>, ConfigError> {
    let list: Vec<&str> = listen.split(',').map(str::trim).collect();
    if list.len() > 1 {
        if list.len() != count {
            return Err(ConfigError::new(
                "listen",
                format!(
                    "{} addresses for {count} broker(s): give one (a base port) or one per broker",
                    list.len()
                ),
            ));
        }
        return Ok(list.into_iter().map(str::to_string).collect());
    }
    let (host, port) = parse_host_port(listen).map_err(|r| ConfigError::new("listen", r))?;
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    (0..count)
        .map(|i| {
            let node_port = if port == 0 {
                Some(0)
            } else {
                u16::try_from(usize::from(port) + i).ok()
            };
            node_port.map(|p| format!("{host}:{p}")).ok_or_else(|| {
                ConfigError::new("listen", format!("no port {port}+{i} for broker {}", i + 1))
            })
        })
        .collect()
}

/// A running broker (or, for tests, several presented brokers over one storage). Dropping
/// it stops it without waiting; [`Broker::shutdown`] stops it gracefully.
#[derive(Debug)]
pub struct Broker {
    state: Arc<State>,
    nodes: Vec<NodeServer>,
    retention: JoinHandle<()>,
    groups: JoinHandle<()>,
}

impl Broker {
    /// Binds the listener, opens (and recovers) storage and starts serving.
    pub async fn start(config: BrokerConfig) -> Result<Broker, StartError> {
        Self::start_nodes(config, 1).await
    }

    /// Presents `count` brokers (node ids from `config.node_id` on, each on its own port of
    /// the listen address's host) over one storage: the cluster simulation.
    ///
    /// `config.listen` is one address (the first node's; with a non-zero port the others
    /// take the ports after it, with port 0 each gets a free one) or a list of `count`.
    pub async fn start_nodes(config: BrokerConfig, count: usize) -> Result<Broker, StartError> {
        config.validate()?;
        let listen = node_listen_addrs(&config.listen, count.max(1))?;
        let (first, addr) = bind(&listen[0]).await?;
        let advertised = match &config.advertise {
            Some(a) => parse_host_port(a).map_err(|r| ConfigError::new("advertise", r))?,
            None => (addr.ip().to_string(), addr.port()),
        };
        let first_id = config.node_id;
        let interval = config.retention_check_interval;
        let state = Arc::new(State::open(config, advertised)?);
        let mut nodes = vec![NodeServer::spawn(first_id, first, addr, &state)];
        for (i, listen) in listen.iter().enumerate().skip(1) {
            let id = first_id + i as i32;
            let (listener, local) = bind(listen).await?;
            state.cluster.add_node(Node {
                id,
                host: local.ip().to_string(),
                port: local.port(),
                rack: None,
                up: true,
            });
            nodes.push(NodeServer::spawn(id, listener, local, &state));
        }
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
                        s.compact_all();
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
                    if !state.writes_to_disk() {
                        state.run_timers();
                        continue;
                    }
                    // Group snapshots, expired offsets and transaction markers are written here.
                    let s = state.clone();
                    if let Err(e) = tokio::task::spawn_blocking(move || s.run_timers()).await {
                        tracing::error!(error = %e, "coordinator timers failed");
                    }
                }
            })
        };
        Ok(Broker {
            state,
            nodes,
            retention,
            groups,
        })
    }

    /// The address the (first) listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.nodes[0].addr
    }

    /// `host:port` for clients' `bootstrap.servers` (the first node).
    pub fn bootstrap(&self) -> String {
        format!("{}:{}", self.state.advertised.0, self.state.advertised.1)
    }

    /// Node ids and addresses of the presented brokers.
    pub fn node_addrs(&self) -> Vec<(i32, SocketAddr)> {
        self.nodes.iter().map(|n| (n.id, n.addr)).collect()
    }

    /// What tests and tools may see of this broker, and the controls tests use.
    pub fn inspect(&self) -> crate::inspect::Inspector {
        crate::inspect::Inspector::new(self.state.clone())
    }

    /// Stops one presented broker: connections refused and dropped, its partitions and
    /// coordinators move to the others.
    pub fn stop_node(&mut self, id: i32) -> bool {
        let Some(node) = self.nodes.iter_mut().find(|n| n.id == id) else {
            return false;
        };
        node.kill();
        self.state.stop_node(id);
        true
    }

    /// Starts a stopped broker again on its old port.
    pub async fn start_node(&mut self, id: i32) -> Result<(), StartError> {
        let state = self.state.clone();
        let Some(node) = self.nodes.iter_mut().find(|n| n.id == id) else {
            return Ok(());
        };
        if node.task.is_some() {
            return Ok(());
        }
        let (listener, addr) = bind(&node.addr.to_string()).await?;
        *node = NodeServer::spawn(id, listener, addr, &state);
        state.start_node(id);
        Ok(())
    }

    /// Closes the listeners, lets in-flight requests finish, flushes the logs.
    pub async fn shutdown(mut self) {
        for n in &self.nodes {
            let _ = n.closing.send(true);
        }
        self.state.closing.notify_waiters();
        for n in &mut self.nodes {
            if let Some(task) = n.task.take() {
                let _ = task.await;
            }
        }
        self.retention.abort();
        self.groups.abort();
        let state = self.state.clone();
        let _ = tokio::task::spawn_blocking(move || state.flush_all()).await;
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
        self.retention.abort();
        self.groups.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::node_listen_addrs;

    #[test]
    fn each_presented_broker_gets_an_address() {
        assert_eq!(
            node_listen_addrs("127.0.0.1:0", 3).unwrap(),
            ["127.0.0.1:0"; 3]
        );
        assert_eq!(
            node_listen_addrs("127.0.0.1:9092", 3).unwrap(),
            ["127.0.0.1:9092", "127.0.0.1:9093", "127.0.0.1:9094"]
        );
        assert_eq!(node_listen_addrs("a:1, b:2", 2).unwrap(), ["a:1", "b:2"]);
        assert!(node_listen_addrs("a:1,b:2", 3).is_err());
        assert!(node_listen_addrs("a:65535", 2).is_err());
        assert_eq!(node_listen_addrs("[::1]:0", 1).unwrap(), ["[::1]:0"]);
    }
}
