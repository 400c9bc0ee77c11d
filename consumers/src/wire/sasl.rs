//! The client side of SASL on a wire connection: SaslHandshake v1, then SaslAuthenticate
//! with PLAIN, SCRAM-SHA-256/512 (RFC 5802, the server's signature checked too) or
//! OAUTHBEARER with an unsecured token, as librdkafka builds it from
//! `sasl.oauthbearer.config` (RFC 7628).

use super::{WireClient, WireError};
use agentbus_client::kafka_props::ClientProps;
use aws_lc_rs::{digest, hmac, pbkdf2};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::Bytes;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;
use std::num::NonZeroU32;

fn auth_error(client: &WireClient, message: impl Into<String>) -> WireError {
    WireError::Auth {
        broker: client.broker.clone(),
        message: message.into(),
    }
}

async fn step(client: &mut WireClient, token: Vec<u8>) -> Result<Vec<u8>, WireError> {
    let mut req = SaslAuthenticateRequest::default();
    req.auth_bytes = Bytes::from(token);
    let resp = client.call(1, &req).await?;
    if resp.error_code != 0 {
        let message = resp
            .error_message
            .map(|m| m.to_string())
            .unwrap_or_else(|| format!("error code {}", resp.error_code));
        return Err(auth_error(client, message));
    }
    Ok(resp.auth_bytes.to_vec())
}

pub(super) async fn authenticate(
    client: &mut WireClient,
    props: &ClientProps,
) -> Result<(), WireError> {
    let mechanism = props
        .get("sasl.mechanism")
        .or_else(|| props.get("sasl.mechanisms"))
        .unwrap_or("GSSAPI")
        .to_ascii_uppercase();
    let user = props.get("sasl.username").unwrap_or_default().to_string();
    let password = props.get("sasl.password").unwrap_or_default().to_string();
    let oauth = mechanism == "OAUTHBEARER";
    let scram = match mechanism.as_str() {
        "PLAIN" | "OAUTHBEARER" => None,
        "SCRAM-SHA-256" => Some((
            pbkdf2::PBKDF2_HMAC_SHA256,
            hmac::HMAC_SHA256,
            &digest::SHA256,
            32,
        )),
        "SCRAM-SHA-512" => Some((
            pbkdf2::PBKDF2_HMAC_SHA512,
            hmac::HMAC_SHA512,
            &digest::SHA512,
            64,
        )),
        other => {
            return Err(WireError::Config {
                setting: "sasl.mechanism".into(),
                reason: format!(
                    "{other}: this tool speaks PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER"
                ),
            })
        }
    };
    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = StrBytes::from_string(mechanism.clone());
    let resp = client.call(1, &hs).await?;
    if resp.error_code != 0 {
        let offered: Vec<String> = resp.mechanisms.iter().map(|m| m.to_string()).collect();
        return Err(auth_error(
            client,
            format!(
                "the broker does not offer {mechanism} (it offers {})",
                offered.join(", ")
            ),
        ));
    }
    if oauth {
        let message = oauthbearer_message(props, now_secs())?;
        let challenge = step(client, message.into_bytes()).await?;
        if !challenge.is_empty() {
            // RFC 7628: an error comes as a JSON challenge, which the client answers with
            // one separator before the broker fails the exchange.
            let challenge = String::from_utf8_lossy(&challenge).to_string();
            return Err(match step(client, vec![1]).await {
                Err(e @ WireError::Auth { .. }) => e,
                _ => auth_error(client, challenge),
            });
        }
        return Ok(());
    }
    let Some((pbkdf, mac, hash, len)) = scram else {
        step(client, format!("\0{user}\0{password}").into_bytes()).await?;
        return Ok(());
    };
    let sign = |key: &[u8], data: &[u8]| {
        hmac::sign(&hmac::Key::new(mac, key), data)
            .as_ref()
            .to_vec()
    };
    let mut nonce = [0u8; 18];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| auth_error(client, "no random nonce"))?;
    let name = user.replace('=', "=3D").replace(',', "=2C");
    let first_bare = format!("n={name},r={}", B64.encode(nonce));
    let server_first = step(client, format!("n,,{first_bare}").into_bytes()).await?;
    let server_first = String::from_utf8(server_first)
        .map_err(|_| auth_error(client, "server-first is not UTF-8"))?;
    let attr = |key: &str| {
        server_first
            .split(',')
            .find_map(|p| p.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    };
    let (Some(full_nonce), Some(salt), Some(iterations)) = (attr("r"), attr("s"), attr("i")) else {
        return Err(auth_error(
            client,
            format!("bad server-first message: {server_first}"),
        ));
    };
    let salt = B64
        .decode(salt)
        .map_err(|_| auth_error(client, "salt is not base64"))?;
    let iterations: u32 = iterations
        .parse()
        .map_err(|_| auth_error(client, "bad iteration count"))?;
    let iterations =
        NonZeroU32::new(iterations).ok_or_else(|| auth_error(client, "zero iterations"))?;
    let mut salted = vec![0u8; len];
    pbkdf2::derive(pbkdf, iterations, &salt, password.as_bytes(), &mut salted);
    let client_key = sign(&salted, b"Client Key");
    let stored_key = digest::digest(hash, &client_key);
    let without_proof = format!("c=biws,r={full_nonce}");
    let auth_message = format!("{first_bare},{server_first},{without_proof}");
    let signature = sign(stored_key.as_ref(), auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(a, b)| a ^ b)
        .collect();
    let server_final = step(
        client,
        format!("{without_proof},p={}", B64.encode(proof)).into_bytes(),
    )
    .await?;
    let expected = sign(&sign(&salted, b"Server Key"), auth_message.as_bytes());
    let got = String::from_utf8_lossy(&server_final);
    if got.strip_prefix("v=").and_then(|v| B64.decode(v).ok()) != Some(expected) {
        return Err(auth_error(
            client,
            "the server's SCRAM signature does not match",
        ));
    }
    Ok(())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The OAUTHBEARER client message with the unsecured token (`alg: none`) librdkafka makes
/// from `sasl.oauthbearer.config`: `principal=NAME [lifeSeconds=N] [scope=A,B]
/// [scopeClaimName=C] [extension_KEY=VALUE …]`.
fn oauthbearer_message(props: &ClientProps, now: u64) -> Result<String, WireError> {
    let config_error = |setting: &str, reason: &str| WireError::Config {
        setting: setting.into(),
        reason: reason.into(),
    };
    if props
        .get("sasl.oauthbearer.method")
        .is_some_and(|m| m.eq_ignore_ascii_case("oidc"))
    {
        return Err(config_error(
            "sasl.oauthbearer.method",
            "oidc: this tool builds unsecured tokens (sasl.oauthbearer.config) only",
        ));
    }
    let config = props.get("sasl.oauthbearer.config").unwrap_or_default();
    let mut claims = serde_json::Map::new();
    let (mut life, mut scope, mut scope_claim) = (3600u64, None, "scope".to_string());
    let mut extensions = String::new();
    for pair in config.split_whitespace() {
        let (key, value) = pair.split_once('=').ok_or_else(|| {
            config_error(
                "sasl.oauthbearer.config",
                &format!("`{pair}` is not key=value"),
            )
        })?;
        match key {
            "principal" => {
                claims.insert("sub".into(), value.into());
            }
            "lifeSeconds" => {
                life = value.parse().map_err(|_| {
                    config_error("sasl.oauthbearer.config", "lifeSeconds is not a number")
                })?
            }
            "scope" => scope = Some(value.split(',').collect::<Vec<_>>()),
            "scopeClaimName" => scope_claim = value.to_string(),
            _ => match key.strip_prefix("extension_") {
                Some(name) => extensions.push_str(&format!("{name}={value}\u{1}")),
                None => {
                    return Err(config_error(
                        "sasl.oauthbearer.config",
                        &format!("unknown key `{key}`"),
                    ))
                }
            },
        }
    }
    if !claims.contains_key("sub") {
        return Err(config_error(
            "sasl.oauthbearer.config",
            "principal=NAME is required for an unsecured token",
        ));
    }
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + life).into());
    if let Some(scope) = scope {
        claims.insert(scope_claim, scope.into());
    }
    let part = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let token = format!(
        "{}.{}.",
        part(&serde_json::json!({"alg": "none"})),
        part(&serde_json::Value::Object(claims))
    );
    Ok(format!("n,,\u{1}auth=Bearer {token}\u{1}{extensions}\u{1}"))
}

/// The salted password AlterUserScramCredentials carries for `password` (what a SCRAM
/// client derives): `None` for a mechanism that is not SCRAM.
pub fn salted_password(
    mechanism: &str,
    password: &str,
    salt: &[u8],
    iterations: u32,
) -> Option<Vec<u8>> {
    let (algorithm, len) = match mechanism {
        "SCRAM-SHA-256" => (pbkdf2::PBKDF2_HMAC_SHA256, 32),
        "SCRAM-SHA-512" => (pbkdf2::PBKDF2_HMAC_SHA512, 64),
        _ => return None,
    };
    let mut out = vec![0u8; len];
    pbkdf2::derive(
        algorithm,
        NonZeroU32::new(iterations)?,
        salt,
        password.as_bytes(),
        &mut out,
    );
    Some(out)
}

/// A fresh random salt.
pub fn random_salt() -> Vec<u8> {
    let mut salt = vec![0u8; 32];
    if aws_lc_rs::rand::fill(&mut salt).is_err() {
        tracing::error!("the system random generator failed");
    }
    salt
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> ClientProps {
        let mut p = ClientProps::default();
        for (k, v) in pairs {
            p.set(k, v);
        }
        p
    }

    #[test]
    fn an_unsecured_token_as_librdkafka_builds_it() {
        let p = props(&[(
            "sasl.oauthbearer.config",
            "principal=svc lifeSeconds=60 scope=a,b extension_traceId=x1",
        )]);
        let message = oauthbearer_message(&p, 1_000).unwrap();
        let rest = message.strip_prefix("n,,\u{1}auth=Bearer ").unwrap();
        let (token, tail) = rest.split_once('\u{1}').unwrap();
        assert_eq!(tail, "traceId=x1\u{1}\u{1}");
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2], "", "no signature");
        let decode = |s: &str| -> serde_json::Value {
            serde_json::from_slice(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(s)
                    .unwrap(),
            )
            .unwrap()
        };
        assert_eq!(decode(parts[0]), serde_json::json!({"alg": "none"}));
        assert_eq!(
            decode(parts[1]),
            serde_json::json!({"sub": "svc", "iat": 1000, "exp": 1060, "scope": ["a", "b"]})
        );
        for (pairs, setting) in [
            (
                vec![("sasl.oauthbearer.config", "lifeSeconds=5")],
                "sasl.oauthbearer.config",
            ),
            (
                vec![("sasl.oauthbearer.config", "principal=a colour=red")],
                "sasl.oauthbearer.config",
            ),
            (
                vec![
                    ("sasl.oauthbearer.config", "principal=a"),
                    ("sasl.oauthbearer.method", "OIDC"),
                ],
                "sasl.oauthbearer.method",
            ),
        ] {
            match oauthbearer_message(&props(&pairs), 0) {
                Err(WireError::Config { setting: s, .. }) => assert_eq!(s, setting),
                other => panic!("{pairs:?}: {other:?}"),
            }
        }
    }
}
