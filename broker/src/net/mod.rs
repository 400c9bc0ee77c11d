//! TCP listener and connections: length-prefixed frames in, responses out in request order.
//!
//! Like Kafka, a connection serves one request at a time; clients pipeline by sending more
//! frames, which wait in the read buffer. Responses are written when no further request is
//! already buffered, so a pipelined burst costs one write.

mod limits;
mod session;

pub(crate) use limits::ConnectionSlots;

use crate::config::{Mechanism, SecurityProtocol};
use crate::protocol::{Connection, FrameError};
use crate::security::{subject_name, user_principal, PrincipalMapper, ANONYMOUS};
use crate::service::serve_frame;
use crate::state::State;
use bytes::{Bytes, BytesMut};
use session::{Route, Session};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// What a connection needs to know of the listener it came in on.
#[derive(Clone)]
pub(crate) struct ListenerInfo {
    /// Its index among the broker's listeners.
    pub index: usize,
    pub protocol: SecurityProtocol,
    /// For SSL and SASL_SSL.
    pub tls: Option<TlsAcceptor>,
    /// `ssl.principal.mapping.rules`, for principals from client certificates.
    pub mapper: Option<Arc<PrincipalMapper>>,
    /// The SASL mechanisms this listener offers.
    pub mechanisms: Arc<[Mechanism]>,
}

impl std::fmt::Debug for ListenerInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerInfo")
            .field("index", &self.index)
            .field("protocol", &self.protocol)
            .finish()
    }
}

/// A response buffer that grew beyond this is dropped after use rather than kept.
const MAX_KEPT_RESPONSE_BUFFER: usize = 4 << 20;

/// Requests that can park until something else happens: Fetch (max_wait), JoinGroup (the
/// other members), SyncGroup (the leader's assignment).
const PARKING_KEYS: [[u8; 2]; 3] = {
    use kafka_protocol::messages::ApiKey;
    [
        (ApiKey::Fetch as i16).to_be_bytes(),
        (ApiKey::JoinGroup as i16).to_be_bytes(),
        (ApiKey::SyncGroup as i16).to_be_bytes(),
    ]
};

fn may_park(frame: &[u8]) -> bool {
    PARKING_KEYS.iter().any(|k| frame.starts_with(k))
}

/// Whether `buf` starts with a whole length-prefixed frame.
fn has_complete_frame(buf: &[u8]) -> bool {
    match buf.get(..4) {
        Some(len) => {
            let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
            len >= 0 && buf.len() >= 4 + len as usize
        }
        None => false,
    }
}

/// Sends what has been encoded so far and keeps the buffer for reuse unless it grew large.
async fn write_out<W: AsyncWrite + Unpin>(
    writer: &mut W,
    out: &mut BytesMut,
) -> std::io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    writer.write_all(out).await?;
    // TLS holds records back until flushed; a TCP socket's flush does nothing.
    writer.flush().await?;
    out.clear();
    if out.capacity() > MAX_KEPT_RESPONSE_BUFFER {
        *out = BytesMut::with_capacity(64 * 1024);
    }
    Ok(())
}

/// Reads exactly `len` bytes without zero-filling the buffer first.
async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    len: usize,
) -> std::io::Result<Bytes> {
    let mut frame = BytesMut::with_capacity(len);
    while frame.len() < len {
        let limit = len - frame.len();
        let n = (&mut *reader)
            .take(limit as u64)
            .read_buf(&mut frame)
            .await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(frame.freeze())
}

/// Kafka's `connections.max.idle.ms` default.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// Why a connection ended other than by the client closing it.
#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("frame length {0} is negative or larger than socket.request.max.bytes {1}")]
    FrameSize(i32, usize),
    #[error("idle for {0:?}")]
    Idle(Duration),
    #[error("not authenticated in time")]
    AuthTimeout,
    #[error(
        "request with api key {0} before authentication (only ApiVersions and SASL are served)"
    )]
    Unauthenticated(i16),
    #[error("authentication failed: {0}")]
    AuthFailed(String),
    #[error("the session expired without re-authentication")]
    SessionExpired,
    #[error("SASL exchange out of order: {0}")]
    SaslState(String),
    #[error("TLS handshake: {0}")]
    Tls(std::io::Error),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Accepts connections until `closing` turns true, then waits for them to finish.
/// `max.connections` holds accepting back while the broker has that many open on all its
/// listeners (as Kafka's acceptor waits); `max.connections.per.ip` closes a connection over
/// it at once and counts it.
pub(crate) async fn serve(
    listener: TcpListener,
    info: ListenerInfo,
    state: Arc<State>,
    node_id: i32,
    slots: Arc<ConnectionSlots>,
    mut closing: watch::Receiver<bool>,
    drain: Duration,
) {
    let mut conns = JoinSet::new();
    loop {
        let full = slots.open() >= state.config().max_connections;
        tokio::select! {
            accepted = listener.accept(), if !full => match accepted {
                Ok((stream, peer)) => {
                    let slot = match slots.take(peer.ip(), state.config().max_connections_from(peer.ip())) {
                        Ok(slot) => slot,
                        Err(open) => {
                            state.connections.refused();
                            tracing::warn!(%peer, open, "connection refused: max.connections.per.ip reached");
                            drop(stream);
                            continue;
                        }
                    };
                    let state = state.clone();
                    let closing = closing.clone();
                    let info = info.clone();
                    conns.spawn(async move {
                        connection(stream, peer, info, state, node_id, closing).await;
                        drop(slot);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Full: look again shortly (a connection on another listener may have ended).
            _ = tokio::time::sleep(Duration::from_millis(20)), if full => {}
            _ = closing.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let finished =
        tokio::time::timeout(drain, async { while conns.join_next().await.is_some() {} }).await;
    if finished.is_err() {
        tracing::warn!(
            left = conns.len(),
            "connections still busy after drain timeout; closing them"
        );
        conns.shutdown().await;
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    info: ListenerInfo,
    state: Arc<State>,
    node_id: i32,
    closing: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    match secure(stream, peer, &info, &state, node_id, closing).await {
        Ok(()) => tracing::debug!(%peer, "connection closed"),
        Err(ConnError::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
            ) =>
        {
            tracing::debug!(%peer, error = %e, "client went away")
        }
        Err(e @ (ConnError::AuthFailed(_) | ConnError::Tls(_))) => {
            state.connections.failed_authentication();
            tracing::info!(%peer, error = %e, "closing connection")
        }
        Err(e) => tracing::warn!(%peer, error = %e, "closing connection"),
    }
}

/// TLS first on SSL listeners (its handshake within the authentication time), then the
/// frames.
async fn secure(
    stream: TcpStream,
    peer: SocketAddr,
    info: &ListenerInfo,
    state: &Arc<State>,
    node_id: i32,
    closing: watch::Receiver<bool>,
) -> Result<(), ConnError> {
    let security = &state.config().security;
    let session = Session::new(
        info.protocol.sasl(),
        info.mechanisms.clone(),
        security.authentication_timeout,
    );
    let mut conn = Connection {
        client_host: format!("/{}", peer.ip()),
        node_id,
        listener: info.index,
        principal: Arc::from(ANONYMOUS),
    };
    let Some(acceptor) = &info.tls else {
        let (read, write) = stream.into_split();
        return serve_connection(read, write, conn, session, state, closing).await;
    };
    let tls = match tokio::time::timeout(security.authentication_timeout, acceptor.accept(stream))
        .await
    {
        Err(_) => return Err(ConnError::AuthTimeout),
        Ok(Err(e)) => return Err(ConnError::Tls(e)),
        Ok(Ok(tls)) => tls,
    };
    // Without SASL, a client certificate names the principal (Kafka's default mapping).
    if !info.protocol.sasl() {
        let subject = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(subject_name);
        if let Some(dn) = subject {
            let name = match &info.mapper {
                Some(mapper) => mapper.map(&dn).ok_or_else(|| {
                    ConnError::AuthFailed(format!(
                        "no ssl.principal.mapping.rules rule matches {dn}"
                    ))
                })?,
                None => dn,
            };
            conn.principal = Arc::from(user_principal(&name));
            state.connections.authenticated();
        }
    }
    let (read, write) = tokio::io::split(tls);
    serve_connection(read, write, conn, session, state, closing).await
}

async fn serve_connection<R, W>(
    read: R,
    mut writer: W,
    mut conn: Connection,
    mut session: Session,
    state: &Arc<State>,
    mut closing: watch::Receiver<bool>,
) -> Result<(), ConnError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = BufReader::with_capacity(64 * 1024, read);
    // Responses are encoded into one buffer that is reused, so a steady stream of fetches
    // does not allocate (and fault in) fresh memory for every response.
    let mut out = BytesMut::with_capacity(64 * 1024);
    let max = state.config().max_request_bytes;
    let sasl_max = state.config().security.sasl_max_receive_size;
    loop {
        if *closing.borrow() {
            return Ok(());
        }
        // Before authentication: a shorter wait and smaller frames.
        let (wait, max) = match session.time_left() {
            Some(left) => (left, sasl_max),
            None => (IDLE_TIMEOUT, max),
        };
        let len = tokio::select! {
            r = tokio::time::timeout(wait, reader.read_i32()) => match r {
                Err(_) if !session.authenticated() => return Err(ConnError::AuthTimeout),
                Err(_) => return Err(ConnError::Idle(IDLE_TIMEOUT)),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Ok(r) => r?,
            },
            _ = closing.changed() => return Ok(()),
        };
        if len < 0 || len as usize > max {
            return Err(ConnError::FrameSize(len, max));
        }
        let frame = read_frame(&mut reader, len as usize).await?;
        if let Route::Sasl = session.route(&frame)? {
            write_out(&mut writer, &mut out).await?;
            let served = session.serve(state, frame, &mut conn, &mut out).await;
            write_out(&mut writer, &mut out).await?;
            served?;
            continue;
        }
        // Answers to earlier requests must not wait behind one that parks (a heartbeat's
        // answer held until a pipelined JoinGroup completes would look like a dead broker).
        if may_park(&frame) {
            write_out(&mut writer, &mut out).await?;
        }
        serve_frame(state, frame, &conn, &mut out).await?;
        // Requests already complete in the read buffer are answered in the same write.
        if !has_complete_frame(reader.buffer()) {
            write_out(&mut writer, &mut out).await?;
        }
    }
}
