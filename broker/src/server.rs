//! Starting and stopping a broker.

use crate::cluster::Node;
use crate::config::{parse_host_port, BrokerConfig, ConfigError, Listener};
use crate::net::ListenerInfo;
use crate::security::TlsError;
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
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// One presented broker's listeners.
#[derive(Debug)]
struct NodeServer {
    id: i32,
    /// The bound address of each listener, in the broker's listener order.
    addrs: Vec<SocketAddr>,
    closing: watch::Sender<bool>,
    /// One per listener; empty while the node is stopped.
    tasks: Vec<JoinHandle<()>>,
}

impl NodeServer {
    fn spawn(
        id: i32,
        bound: Vec<(TcpListener, SocketAddr)>,
        infos: &[ListenerInfo],
        state: &Arc<State>,
    ) -> Self {
        let (closing, closing_rx) = watch::channel(false);
        let slots = Arc::new(crate::net::ConnectionSlots::default());
        let mut addrs = Vec::new();
        let mut tasks = Vec::new();
        for ((listener, addr), info) in bound.into_iter().zip(infos) {
            addrs.push(addr);
            tasks.push(tokio::spawn(crate::net::serve(
                listener,
                info.clone(),
                state.clone(),
                id,
                slots.clone(),
                closing_rx.clone(),
                DRAIN_TIMEOUT,
            )));
        }
        Self {
            id,
            addrs,
            closing,
            tasks,
        }
    }

    /// Refuses new connections and drops the open ones at once (a crashed broker).
    fn kill(&mut self) {
        let _ = self.closing.send(true);
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

/// The address clients of a listener are given: its advertised one (for the first
/// presented broker), else the bound one.
fn endpoint(
    listener: &Listener,
    local: SocketAddr,
    first: bool,
) -> Result<(String, u16), ConfigError> {
    match &listener.advertised {
        Some(a) if first => {
            parse_host_port(a).map_err(|r| ConfigError::new("advertised-listeners", r))
        }
        _ => Ok((local.ip().to_string(), local.port())),
    }
}

/// Binds a presented broker's listeners.
async fn bind_all(
    addrs: &[Vec<String>],
    node: usize,
) -> Result<Vec<(TcpListener, SocketAddr)>, StartError> {
    let mut bound = Vec::new();
    for per_node in addrs {
        bound.push(bind(&per_node[node]).await?);
    }
    Ok(bound)
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
    listeners: Vec<Listener>,
    infos: Vec<ListenerInfo>,
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
        let count = count.max(1);
        let listeners = config.listeners()?;
        let tls = if listeners.iter().any(|l| l.protocol.tls()) {
            Some(crate::security::acceptor(&config.security)?)
        } else {
            None
        };
        let mapper = match &config.security.ssl_principal_mapping_rules {
            Some(rules) => Some(Arc::new(
                crate::security::PrincipalMapper::parse(rules)
                    .map_err(|reason| ConfigError::new("ssl-principal-mapping-rules", reason))?,
            )),
            None => None,
        };
        let infos: Vec<ListenerInfo> = listeners
            .iter()
            .enumerate()
            .map(|(index, l)| ListenerInfo {
                index,
                protocol: l.protocol,
                tls: tls.clone().filter(|_| l.protocol.tls()),
                mapper: mapper.clone(),
                mechanisms: l.sasl_mechanisms.clone().into(),
            })
            .collect();
        let addrs = listeners
            .iter()
            .map(|l| node_listen_addrs(&l.bind, count))
            .collect::<Result<Vec<_>, _>>()?;
        let first = bind_all(&addrs, 0).await?;
        let endpoints = |bound: &[(TcpListener, SocketAddr)], first: bool| {
            listeners
                .iter()
                .zip(bound)
                .map(|(l, (_, local))| endpoint(l, *local, first))
                .collect::<Result<Vec<_>, _>>()
        };
        let mut first_endpoints = endpoints(&first, true)?;
        let advertised = first_endpoints.remove(0);
        let first_id = config.node_id;
        let interval = config.retention_check_interval;
        let state = Arc::new(State::open(config, advertised)?);
        state.cluster.set_endpoints(first_id, first_endpoints);
        let mut nodes = vec![NodeServer::spawn(first_id, first, &infos, &state)];
        for i in 1..count {
            let id = first_id + i as i32;
            let bound = bind_all(&addrs, i).await?;
            let mut rest = endpoints(&bound, false)?;
            let (host, port) = rest.remove(0);
            state.cluster.add_node(Node {
                id,
                host,
                port,
                rack: None,
                up: true,
                endpoints: rest,
            });
            nodes.push(NodeServer::spawn(id, bound, &infos, &state));
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
            listeners,
            infos,
            retention,
            groups,
        })
    }

    /// The address the (first) listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.nodes[0].addrs[0]
    }

    /// `host:port` of the first presented broker on the listener named `name`
    /// (`SASL_SSL`, …), as clients of that listener bootstrap.
    pub fn listener_bootstrap(&self, name: &str) -> Option<String> {
        let index = self.listeners.iter().position(|l| l.name == name)?;
        let node = self.state.cluster.node(self.nodes[0].id)?;
        let (host, port) = node.endpoint(index);
        Some(format!("{host}:{port}"))
    }

    /// The broker's listeners, in order.
    pub fn listeners(&self) -> &[Listener] {
        &self.listeners
    }

    /// `host:port` for clients' `bootstrap.servers` (the first node).
    pub fn bootstrap(&self) -> String {
        format!("{}:{}", self.state.advertised.0, self.state.advertised.1)
    }

    /// Node ids and addresses of the presented brokers.
    pub fn node_addrs(&self) -> Vec<(i32, SocketAddr)> {
        self.nodes.iter().map(|n| (n.id, n.addrs[0])).collect()
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
        if !node.tasks.is_empty() {
            return Ok(());
        }
        let addrs: Vec<Vec<String>> = node.addrs.iter().map(|a| vec![a.to_string()]).collect();
        let bound = bind_all(&addrs, 0).await?;
        *node = NodeServer::spawn(id, bound, &self.infos, &state);
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
            for task in n.tasks.drain(..) {
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
