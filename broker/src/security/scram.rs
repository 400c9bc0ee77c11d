//! SCRAM (RFC 5802, RFC 7677) as Kafka's broker does it: credentials kept salted, the
//! server side of the two-round exchange, and checking a plain password against them.

use crate::config::Mechanism;
use aws_lc_rs::{digest, hmac, pbkdf2, rand};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::num::NonZeroU32;

/// Kafka's bounds on iterations (`ScramMechanism.minIterations` / `maxIterations`).
pub(crate) const MIN_ITERATIONS: i32 = 4096;
pub(crate) const MAX_ITERATIONS: i32 = 16384;

/// A user's stored credential for one mechanism: never the password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ScramCredential {
    #[serde(with = "base64_bytes")]
    pub salt: Vec<u8>,
    #[serde(with = "base64_bytes")]
    pub stored_key: Vec<u8>,
    #[serde(with = "base64_bytes")]
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

/// Bytes stored as base64 text.
mod base64_bytes {
    use super::B64;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(v))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        B64.decode(text).map_err(serde::de::Error::custom)
    }
}

/// The hash a SCRAM mechanism uses.
#[derive(Clone, Copy)]
pub(crate) struct Hash {
    pbkdf2: pbkdf2::Algorithm,
    hmac: hmac::Algorithm,
    digest: &'static digest::Algorithm,
    len: usize,
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hash(SHA-{})", self.len * 8)
    }
}

impl Hash {
    pub(crate) fn of(mechanism: Mechanism) -> Option<Self> {
        match mechanism {
            Mechanism::ScramSha256 => Some(Self {
                pbkdf2: pbkdf2::PBKDF2_HMAC_SHA256,
                hmac: hmac::HMAC_SHA256,
                digest: &digest::SHA256,
                len: 32,
            }),
            Mechanism::ScramSha512 => Some(Self {
                pbkdf2: pbkdf2::PBKDF2_HMAC_SHA512,
                hmac: hmac::HMAC_SHA512,
                digest: &digest::SHA512,
                len: 64,
            }),
            _ => None,
        }
    }

    /// Bytes of the hash (and of a salted password).
    pub(crate) fn len(self) -> usize {
        self.len
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac, key), data)
            .as_ref()
            .to_vec()
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest, data).as_ref().to_vec()
    }

    /// `Hi(password, salt, i)`.
    pub(crate) fn salted_password(self, password: &[u8], salt: &[u8], iterations: i32) -> Vec<u8> {
        let mut out = vec![0; self.len];
        let n = NonZeroU32::new(iterations.max(1) as u32).unwrap_or(NonZeroU32::MIN);
        pbkdf2::derive(self.pbkdf2, n, salt, password, &mut out);
        out
    }

    /// The stored form of a salted password (what AlterUserScramCredentials sends).
    pub(crate) fn credential(
        self,
        salted: &[u8],
        salt: Vec<u8>,
        iterations: i32,
    ) -> ScramCredential {
        let client_key = self.hmac(salted, b"Client Key");
        ScramCredential {
            salt,
            stored_key: self.digest(&client_key),
            server_key: self.hmac(salted, b"Server Key"),
            iterations,
        }
    }

    /// A credential for a password with a fresh random salt.
    pub(crate) fn new_credential(self, password: &str, iterations: i32) -> ScramCredential {
        let salt = random_bytes(32);
        let salted = self.salted_password(password.as_bytes(), &salt, iterations);
        self.credential(&salted, salt, iterations)
    }

    /// Whether `password` is the one `cred` was made from (SASL/PLAIN checks this).
    pub(crate) fn verify_password(self, cred: &ScramCredential, password: &str) -> bool {
        let salted = self.salted_password(password.as_bytes(), &cred.salt, cred.iterations);
        let stored = self.digest(&self.hmac(&salted, b"Client Key"));
        constant_eq(&stored, &cred.stored_key)
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = vec![0; n];
    // The system's generator failing is not something a broker can serve through.
    if rand::fill(&mut out).is_err() {
        tracing::error!("the system random generator failed");
    }
    out
}

/// Why a SCRAM exchange failed; the message is what the client is told.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ScramError {
    #[error("Authentication failed during authentication due to invalid credentials with SASL mechanism {0}")]
    InvalidCredentials(&'static str),
    #[error("Invalid SCRAM client message: {0}")]
    Malformed(String),
}

/// SCRAM's `saslname`: `=2C` for `,` and `=3D` for `=`.
fn unescape_name(s: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let escaped = &rest[i..];
        if escaped.starts_with("=2C") {
            out.push(',');
        } else if escaped.starts_with("=3D") {
            out.push('=');
        } else {
            return Err(ScramError::Malformed(format!("bad username `{s}`")));
        }
        rest = &escaped[3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The attribute `key=` of a SCRAM message.
fn attr<'a>(parts: &[&'a str], key: char) -> Option<&'a str> {
    parts
        .iter()
        .find_map(|p| p.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// The first client message, parsed.
#[derive(Debug)]
pub(crate) struct ClientFirst {
    pub user: String,
    gs2_header: String,
    bare: String,
    nonce: String,
}

pub(crate) fn parse_client_first(msg: &[u8]) -> Result<ClientFirst, ScramError> {
    let text = std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("not UTF-8".into()))?;
    let mut fields = text.splitn(3, ',');
    let (cb, authzid, bare) = match (fields.next(), fields.next(), fields.next()) {
        (Some(cb), Some(authzid), Some(bare)) => (cb, authzid, bare),
        _ => return Err(ScramError::Malformed("no GS2 header".into())),
    };
    if cb != "n" && cb != "y" {
        return Err(ScramError::Malformed(
            "channel binding is not supported".into(),
        ));
    }
    let parts: Vec<&str> = bare.split(',').collect();
    let user = unescape_name(
        attr(&parts, 'n').ok_or_else(|| ScramError::Malformed("no username".into()))?,
    )?;
    if let Some(authzid) = authzid.strip_prefix("a=") {
        if unescape_name(authzid)? != user {
            return Err(ScramError::Malformed(
                "authorization id is not the username".into(),
            ));
        }
    }
    let nonce = attr(&parts, 'r')
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ScramError::Malformed("no nonce".into()))?;
    Ok(ClientFirst {
        user,
        gs2_header: format!("{cb},{authzid},"),
        bare: bare.to_string(),
        nonce: nonce.to_string(),
    })
}

/// A server between its first message and the client's final one.
#[derive(Debug)]
pub(crate) struct ServerFirst {
    hash: Hash,
    mechanism: &'static str,
    first: ClientFirst,
    server_first: String,
    nonce: String,
    /// None: the user is unknown; the exchange goes on with a made-up salt and fails at
    /// the proof, so a client cannot tell unknown users from wrong passwords.
    credential: Option<ScramCredential>,
}

impl ServerFirst {
    pub(crate) fn new(
        mechanism: Mechanism,
        first: ClientFirst,
        credential: Option<ScramCredential>,
    ) -> Option<(Self, Vec<u8>)> {
        let hash = Hash::of(mechanism)?;
        let nonce = format!("{}{}", first.nonce, B64.encode(random_bytes(18)));
        let (salt, iterations) = match &credential {
            Some(c) => (c.salt.clone(), c.iterations),
            None => (random_bytes(32), MIN_ITERATIONS),
        };
        let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(salt));
        let out = server_first.clone().into_bytes();
        Some((
            Self {
                hash,
                mechanism: mechanism.name(),
                first,
                server_first,
                nonce,
                credential,
            },
            out,
        ))
    }

    /// Checks the client's proof; on success gives the user and the server-final message.
    pub(crate) fn finish(self, msg: &[u8]) -> Result<(String, Vec<u8>), ScramError> {
        let text =
            std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("not UTF-8".into()))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or_else(|| ScramError::Malformed("no proof".into()))?;
        let parts: Vec<&str> = without_proof.split(',').collect();
        let binding = attr(&parts, 'c').unwrap_or_default();
        if binding != B64.encode(&self.first.gs2_header) {
            return Err(ScramError::Malformed(
                "channel binding does not match".into(),
            ));
        }
        if attr(&parts, 'r') != Some(self.nonce.as_str()) {
            return Err(ScramError::Malformed("nonce does not match".into()));
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| ScramError::Malformed("proof is not base64".into()))?;
        let invalid = ScramError::InvalidCredentials(self.mechanism);
        let cred = self.credential.ok_or(invalid.clone())?;
        let auth_message = format!(
            "{},{},{}",
            self.first.bare, self.server_first, without_proof
        );
        let signature = self.hash.hmac(&cred.stored_key, auth_message.as_bytes());
        if proof.len() != signature.len() {
            return Err(invalid);
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        if !constant_eq(&self.hash.digest(&client_key), &cred.stored_key) {
            return Err(invalid);
        }
        let server_signature = self.hash.hmac(&cred.server_key, auth_message.as_bytes());
        let server_final = format!("v={}", B64.encode(server_signature));
        Ok((self.first.user, server_final.into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client side, as RFC 5802 gives it.
    fn client_final(
        hash: Hash,
        password: &str,
        client_first_bare: &str,
        server_first: &str,
    ) -> String {
        let parts: Vec<&str> = server_first.split(',').collect();
        let nonce = attr(&parts, 'r').unwrap();
        let salt = B64.decode(attr(&parts, 's').unwrap()).unwrap();
        let i: i32 = attr(&parts, 'i').unwrap().parse().unwrap();
        let salted = hash.salted_password(password.as_bytes(), &salt, i);
        let client_key = hash.hmac(&salted, b"Client Key");
        let stored = hash.digest(&client_key);
        let without = format!("c=biws,r={nonce}");
        let auth = format!("{client_first_bare},{server_first},{without}");
        let sig = hash.hmac(&stored, auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        format!("{without},p={}", B64.encode(proof))
    }

    fn exchange(mech: Mechanism, stored: Option<&str>, tried: &str) -> Result<String, ScramError> {
        let hash = Hash::of(mech).unwrap();
        let cred = stored.map(|p| hash.new_credential(p, MIN_ITERATIONS));
        let first = parse_client_first(b"n,,n=al=2Cice,r=abc123").unwrap();
        assert_eq!(first.user, "al,ice");
        let (server, out) = ServerFirst::new(mech, first, cred).unwrap();
        let server_first = String::from_utf8(out).unwrap();
        let fin = client_final(hash, tried, "n=al=2Cice,r=abc123", &server_first);
        server.finish(fin.as_bytes()).map(|(user, _)| user)
    }

    #[test]
    fn the_right_password_passes_and_a_wrong_one_or_no_user_fails_alike() {
        for mech in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
            assert_eq!(exchange(mech, Some("pw"), "pw").unwrap(), "al,ice");
            let wrong = exchange(mech, Some("pw"), "nope").unwrap_err();
            let unknown = exchange(mech, None, "pw").unwrap_err();
            assert_eq!(wrong, unknown);
            assert!(matches!(wrong, ScramError::InvalidCredentials(_)));
        }
    }

    #[test]
    fn the_stored_form_is_salted_and_checks_plain_passwords() {
        let hash = Hash::of(Mechanism::ScramSha512).unwrap();
        let a = hash.new_credential("secret", 4096);
        let b = hash.new_credential("secret", 4096);
        assert_ne!(a.stored_key, b.stored_key, "a fresh salt each time");
        assert!(hash.verify_password(&a, "secret"));
        assert!(!hash.verify_password(&a, "Secret"));
    }

    #[test]
    fn malformed_client_messages_are_errors() {
        for bad in [
            "",
            "n",
            "p=tls-unique,,n=a,r=x",
            "n,,r=x",
            "n,,n=a",
            "n,a=b,n=a,r=x",
        ] {
            assert!(parse_client_first(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
