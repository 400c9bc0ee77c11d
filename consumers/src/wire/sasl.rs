//! The client side of SASL on a wire connection: SaslHandshake v1, then SaslAuthenticate
//! with PLAIN or SCRAM-SHA-256/512 (RFC 5802, the server's signature checked too).

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
    let scram = match mechanism.as_str() {
        "PLAIN" => None,
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
                reason: format!("{other}: this tool speaks PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512"),
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
