//! The server side of a SASL exchange for one connection: PLAIN and SCRAM checked against
//! the stored SCRAM credentials, OAUTHBEARER with unsecured JWS tokens (Kafka's default
//! validator, for development).

use super::credentials::Credentials;
use super::oauth;
use super::scram::{self, ServerFirst};
use crate::config::Mechanism;

/// What one SaslAuthenticate step gives the client.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// More to exchange: send these bytes back.
    Challenge(Vec<u8>),
    /// Authenticated as `user`; `reply` is the last server message, `expires_ms` when the
    /// credential itself (an OAUTHBEARER token) expires.
    Done {
        user: String,
        reply: Vec<u8>,
        expires_ms: Option<i64>,
    },
}

/// Why authentication failed; the message goes to the client as Kafka words it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct SaslFailed(pub String);

#[derive(Debug)]
enum Step {
    Start,
    Scram(Box<ServerFirst>),
    /// An OAUTHBEARER token was refused with an error challenge; the client's next
    /// message acknowledges it and the exchange fails.
    Refused(String),
    Finished,
}

/// One exchange, from SaslHandshake's choice of mechanism to success or failure.
#[derive(Debug)]
pub(crate) struct Exchange {
    pub mechanism: Mechanism,
    step: Step,
}

impl Exchange {
    pub(crate) fn new(mechanism: Mechanism) -> Self {
        Self {
            mechanism,
            step: Step::Start,
        }
    }

    pub(crate) fn step(
        &mut self,
        token: &[u8],
        credentials: &Credentials,
        now_ms: i64,
    ) -> Result<Outcome, SaslFailed> {
        match std::mem::replace(&mut self.step, Step::Finished) {
            Step::Start => match self.mechanism {
                Mechanism::Plain => plain(token, credentials),
                Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
                    let first =
                        scram::parse_client_first(token).map_err(|e| SaslFailed(e.to_string()))?;
                    let credential = credentials.get(&first.user, self.mechanism);
                    let (server, reply) = ServerFirst::new(self.mechanism, first, credential)
                        .ok_or_else(|| SaslFailed("not a SCRAM mechanism".into()))?;
                    self.step = Step::Scram(Box::new(server));
                    Ok(Outcome::Challenge(reply))
                }
                Mechanism::OAuthBearer => match oauth::validate(token, now_ms) {
                    Ok((user, expires_ms)) => Ok(Outcome::Done {
                        user,
                        reply: Vec::new(),
                        expires_ms: Some(expires_ms),
                    }),
                    Err(why) => {
                        self.step = Step::Refused(why.clone());
                        Ok(Outcome::Challenge(
                            br#"{"status":"invalid_token"}"#.to_vec(),
                        ))
                    }
                },
            },
            Step::Scram(server) => {
                let (user, reply) = server
                    .finish(token)
                    .map_err(|e| SaslFailed(e.to_string()))?;
                Ok(Outcome::Done {
                    user,
                    reply,
                    expires_ms: None,
                })
            }
            Step::Refused(why) => Err(SaslFailed(format!(
                "Authentication failed: invalid token: {why}"
            ))),
            Step::Finished => Err(SaslFailed(
                "Unexpected SASL message after authentication completed".into(),
            )),
        }
    }
}

/// SASL/PLAIN (RFC 4616): `authzid NUL authcid NUL password`, checked against the user's
/// SCRAM credential, so one store serves both.
fn plain(token: &[u8], credentials: &Credentials) -> Result<Outcome, SaslFailed> {
    let text = std::str::from_utf8(token)
        .map_err(|_| SaslFailed("Authentication failed: message is not UTF-8".into()))?;
    let mut parts = text.split('\0');
    let (authzid, user, password) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(u), Some(p), None) => (a, u, p),
        _ => {
            return Err(SaslFailed(
                "Invalid SASL/PLAIN response: expected 3 tokens".into(),
            ))
        }
    };
    if user.is_empty() {
        return Err(SaslFailed(
            "Authentication failed: username not specified".into(),
        ));
    }
    if !authzid.is_empty() && authzid != user {
        return Err(SaslFailed(
            "Authentication failed: Client requested an authorization id that is different from username".into(),
        ));
    }
    let valid = credentials.any(user).is_some_and(|(mechanism, cred)| {
        scram::Hash::of(mechanism).is_some_and(|h| h.verify_password(&cred, password))
    });
    if !valid {
        return Err(SaslFailed(
            "Authentication failed: Invalid username or password".into(),
        ));
    }
    Ok(Outcome::Done {
        user: user.to_string(),
        reply: Vec::new(),
        expires_ms: None,
    })
}
