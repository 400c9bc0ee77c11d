//! Authentication on a connection: SaslHandshake and SaslAuthenticate (v0–v2, and the
//! raw tokens that follow a v0 handshake), which requests may come before it, and
//! re-authentication when a session's lifetime ends (KIP-368).

use super::ConnError;
use crate::config::Mechanism;
use crate::protocol::{decode, encode, Connection, Decoded};
use crate::security::{user_principal, Exchange, Outcome};
use crate::state::State;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, RequestKind, ResponseKind, SaslAuthenticateResponse, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use std::sync::Arc;
use std::time::{Duration, Instant};

const API_VERSIONS: i16 = ApiKey::ApiVersions as i16;
const SASL_HANDSHAKE: i16 = ApiKey::SaslHandshake as i16;
const SASL_AUTHENTICATE: i16 = ApiKey::SaslAuthenticate as i16;

/// What the connection does with a frame.
pub(super) enum Route {
    /// An ordinary request: serve it.
    Serve,
    /// A SASL request or token: the session answers it.
    Sasl,
}

#[derive(Debug)]
pub(super) struct Session {
    /// The listener asks for SASL.
    sasl: bool,
    /// The mechanisms it offers.
    mechanisms: Arc<[Mechanism]>,
    /// Authenticated as this user (SASL), once.
    user: Option<String>,
    /// Until when an unauthenticated connection may take to authenticate.
    deadline: Instant,
    /// When the authenticated session ends unless the client re-authenticates.
    expires: Option<Instant>,
    exchange: Option<Exchange>,
    /// After a v0 handshake, tokens come as bare length-prefixed frames.
    raw_tokens: bool,
}

impl Session {
    pub(super) fn new(sasl: bool, mechanisms: Arc<[Mechanism]>, timeout: Duration) -> Self {
        Self {
            sasl,
            mechanisms,
            user: None,
            deadline: Instant::now() + timeout,
            expires: None,
            exchange: None,
            raw_tokens: false,
        }
    }

    /// Whether requests other than ApiVersions and SASL may be served.
    pub(super) fn authenticated(&self) -> bool {
        !self.sasl || self.user.is_some()
    }

    /// The time left to authenticate, while not yet authenticated.
    pub(super) fn time_left(&self) -> Option<Duration> {
        (!self.authenticated()).then(|| self.deadline.saturating_duration_since(Instant::now()))
    }

    /// Where a frame goes, or why the connection closes instead (Kafka closes it too).
    pub(super) fn route(&self, frame: &[u8]) -> Result<Route, ConnError> {
        if !self.sasl {
            return Ok(Route::Serve);
        }
        if self.raw_tokens {
            return Ok(Route::Sasl);
        }
        let key = frame
            .get(..2)
            .map_or(-1, |k| i16::from_be_bytes([k[0], k[1]]));
        if key == SASL_HANDSHAKE || key == SASL_AUTHENTICATE {
            return Ok(Route::Sasl);
        }
        if key == API_VERSIONS {
            return Ok(Route::Serve);
        }
        if self.user.is_none() {
            return Err(ConnError::Unauthenticated(key));
        }
        if self.expires.is_some_and(|at| Instant::now() >= at) && self.exchange.is_none() {
            return Err(ConnError::SessionExpired);
        }
        Ok(Route::Serve)
    }

    /// Answers a SASL request (or a raw token), appending the response to `out`. A failed
    /// authentication is answered after `connection.failed.authentication.delay.ms` and
    /// then ends the connection.
    pub(super) async fn serve(
        &mut self,
        state: &Arc<State>,
        frame: Bytes,
        conn: &mut Connection,
        out: &mut BytesMut,
    ) -> Result<(), ConnError> {
        if self.raw_tokens {
            return self.raw_token(state, &frame, conn, out).await;
        }
        let Decoded::Request {
            correlation_id,
            body,
            api,
            version,
            ..
        } = decode(frame, &state.api_table)?
        else {
            return Err(ConnError::SaslState(
                "ApiVersions in the SASL exchange".into(),
            ));
        };
        let (response, failed): (ResponseKind, Option<String>) = match body {
            RequestKind::SaslHandshake(r) => {
                let (resp, failed) = self.handshake(version, r.mechanism.as_str());
                (resp.into(), failed)
            }
            RequestKind::SaslAuthenticate(r) => {
                let (resp, failed) = self.authenticate(state, version, &r.auth_bytes, conn);
                (resp.into(), failed)
            }
            _ => {
                return Err(ConnError::SaslState(format!(
                    "{api:?} in the SASL exchange"
                )))
            }
        };
        if let Some(why) = failed {
            tokio::time::sleep(state.config().security.failed_authentication_delay).await;
            encode(api, version, correlation_id, &response, out)?;
            return Err(ConnError::AuthFailed(why));
        }
        encode(api, version, correlation_id, &response, out)?;
        Ok(())
    }

    fn handshake(&mut self, version: i16, asked: &str) -> (SaslHandshakeResponse, Option<String>) {
        let enabled = &self.mechanisms;
        let mut resp = SaslHandshakeResponse::default();
        resp.mechanisms = enabled
            .iter()
            .map(|m| StrBytes::from_static_str(m.name()))
            .collect();
        let chosen = Mechanism::parse(asked).filter(|m| enabled.contains(m));
        let Some(mechanism) = chosen else {
            resp.error_code = ResponseError::UnsupportedSaslMechanism.code();
            return (resp, Some(format!("unsupported SASL mechanism {asked}")));
        };
        if self.exchange.is_some() {
            resp.error_code = ResponseError::IllegalSaslState.code();
            return (resp, Some("SaslHandshake during an exchange".into()));
        }
        self.exchange = Some(Exchange::new(mechanism));
        self.raw_tokens = version == 0;
        (resp, None)
    }

    fn authenticate(
        &mut self,
        state: &Arc<State>,
        version: i16,
        token: &[u8],
        conn: &mut Connection,
    ) -> (SaslAuthenticateResponse, Option<String>) {
        let mut resp = SaslAuthenticateResponse::default();
        let fail = |mut resp: SaslAuthenticateResponse, code: ResponseError, why: String| {
            resp.error_code = code.code();
            resp.error_message = Some(StrBytes::from_string(why.clone()));
            (resp, Some(why))
        };
        match self.step(state, token, conn) {
            Ok((reply, lifetime)) => {
                resp.auth_bytes = Bytes::from(reply);
                if version >= 1 {
                    resp.session_lifetime_ms = lifetime;
                }
                (resp, None)
            }
            Err((code, why)) => fail(resp, code, why),
        }
    }

    /// One step of the exchange; on completion the session lifetime in ms (0: none).
    fn step(
        &mut self,
        state: &Arc<State>,
        token: &[u8],
        conn: &mut Connection,
    ) -> Result<(Vec<u8>, i64), (ResponseError, String)> {
        let Some(exchange) = self.exchange.as_mut() else {
            return Err((
                ResponseError::IllegalSaslState,
                "SaslAuthenticate before SaslHandshake".into(),
            ));
        };
        let now_ms = state.clock.now_ms();
        let outcome = exchange
            .step(token, &state.credentials, now_ms)
            .map_err(|e| (ResponseError::SaslAuthenticationFailed, e.0))?;
        let (user, reply, expires_ms) = match outcome {
            Outcome::Challenge(bytes) => return Ok((bytes, 0)),
            Outcome::Done {
                user,
                reply,
                expires_ms,
            } => (user, reply, expires_ms),
        };
        self.exchange = None;
        self.raw_tokens = false;
        if self.user.as_ref().is_some_and(|old| *old != user) {
            return Err((
                ResponseError::SaslAuthenticationFailed,
                "re-authentication must keep the same principal".into(),
            ));
        }
        let reauth_ms = state.config().security.max_reauth_ms;
        // KIP-368: sessions end only when connections.max.reauth.ms is set; then at that
        // or at the credential's own expiry, whichever comes first.
        let lifetime = if reauth_ms > 0 {
            expires_ms.map_or(reauth_ms, |at| reauth_ms.min((at - now_ms).max(0)))
        } else {
            0
        };
        self.expires =
            (lifetime > 0).then(|| Instant::now() + Duration::from_millis(lifetime as u64));
        conn.principal = Arc::from(user_principal(&user));
        tracing::debug!(principal = %conn.principal, lifetime_ms = lifetime, "authenticated");
        state.connections.authenticated();
        self.user = Some(user);
        Ok((reply, lifetime))
    }

    /// A token after a v0 handshake: the reply goes back as a bare length-prefixed frame;
    /// a failure closes the connection without one (as Kafka does).
    async fn raw_token(
        &mut self,
        state: &Arc<State>,
        token: &[u8],
        conn: &mut Connection,
        out: &mut BytesMut,
    ) -> Result<(), ConnError> {
        match self.step(state, token, conn) {
            Ok((reply, _)) => {
                out.put_i32(reply.len() as i32);
                out.extend_from_slice(&reply);
                Ok(())
            }
            Err((_, why)) => {
                tokio::time::sleep(state.config().security.failed_authentication_delay).await;
                Err(ConnError::AuthFailed(why))
            }
        }
    }
}
