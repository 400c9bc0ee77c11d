//! TCP listener and connections: length-prefixed frames in, responses out in request order.
//!
//! Like Kafka, a connection serves one request at a time; clients pipeline by sending more
//! frames, which wait in the read buffer. Responses are written when no further request is
//! already buffered, so a pipelined burst costs one write.

use crate::protocol::{Connection, FrameError};
use crate::service::serve_frame;
use crate::state::State;
use bytes::{Bytes, BytesMut};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

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
async fn write_out(writer: &mut OwnedWriteHalf, out: &mut BytesMut) -> std::io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    writer.write_all(out).await?;
    out.clear();
    if out.capacity() > MAX_KEPT_RESPONSE_BUFFER {
        *out = BytesMut::with_capacity(64 * 1024);
    }
    Ok(())
}

/// Reads exactly `len` bytes without zero-filling the buffer first.
async fn read_frame(reader: &mut BufReader<OwnedReadHalf>, len: usize) -> std::io::Result<Bytes> {
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
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Accepts connections until `closing` turns true, then waits for them to finish.
/// `max.connections` holds accepting back while that many are open (as Kafka's acceptor
/// waits); `max.connections.per.ip` closes a connection over it at once and counts it.
pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    node_id: i32,
    mut closing: watch::Receiver<bool>,
    drain: Duration,
) {
    let mut conns = JoinSet::new();
    let mut per_ip: HashMap<IpAddr, usize> = HashMap::new();
    loop {
        let open = conns.len();
        tokio::select! {
            accepted = listener.accept(), if open < state.config().max_connections => match accepted {
                Ok((stream, peer)) => {
                    let from_ip = per_ip.get(&peer.ip()).copied().unwrap_or(0);
                    if from_ip >= state.config().max_connections_per_ip {
                        state.connections_refused.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%peer, open = from_ip, "connection refused: max.connections.per.ip reached");
                        drop(stream);
                        continue;
                    }
                    *per_ip.entry(peer.ip()).or_default() += 1;
                    let state = state.clone();
                    let closing = closing.clone();
                    conns.spawn(async move {
                        connection(stream, peer, state, node_id, closing).await;
                        peer.ip()
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = closing.changed() => break,
            Some(done) = conns.join_next(), if !conns.is_empty() => {
                if let Ok(ip) = done {
                    if let Some(n) = per_ip.get_mut(&ip) {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            per_ip.remove(&ip);
                        }
                    }
                }
            }
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
    state: Arc<State>,
    node_id: i32,
    closing: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    match serve_connection(stream, &state, node_id, closing).await {
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
        Err(e) => tracing::warn!(%peer, error = %e, "closing connection"),
    }
}

async fn serve_connection(
    stream: TcpStream,
    state: &Arc<State>,
    node_id: i32,
    mut closing: watch::Receiver<bool>,
) -> Result<(), ConnError> {
    let conn = Connection {
        client_host: stream
            .peer_addr()
            .map(|a| format!("/{}", a.ip()))
            .unwrap_or_default(),
        node_id,
    };
    let (read, mut writer) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, read);
    // Responses are encoded into one buffer that is reused, so a steady stream of fetches
    // does not allocate (and fault in) fresh memory for every response.
    let mut out = BytesMut::with_capacity(64 * 1024);
    let max = state.config().max_request_bytes;
    loop {
        if *closing.borrow() {
            return Ok(());
        }
        let len = tokio::select! {
            r = tokio::time::timeout(IDLE_TIMEOUT, reader.read_i32()) => match r {
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
