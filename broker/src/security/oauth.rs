//! OAUTHBEARER (RFC 7628) with unsecured JWS tokens (`alg: none`), as Kafka's
//! `OAuthBearerUnsecuredValidatorCallbackHandler` accepts them: the principal is the
//! `sub` claim, `exp` must lie ahead. For development; never a production authenticator.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// The user and the token's expiry (ms) from an OAUTHBEARER client message, or why not.
pub(crate) fn validate(message: &[u8], now_ms: i64) -> Result<(String, i64), String> {
    let text = std::str::from_utf8(message).map_err(|_| "message is not UTF-8".to_string())?;
    // GS2 header, then key=value pairs separated by ^A.
    let (_gs2, pairs) = text
        .split_once('\u{1}')
        .ok_or_else(|| "no GS2 header".to_string())?;
    let token = pairs
        .split('\u{1}')
        .find_map(|kv| kv.strip_prefix("auth="))
        .and_then(|auth| {
            auth.strip_prefix("Bearer ")
                .or_else(|| auth.strip_prefix("bearer "))
        })
        .ok_or_else(|| "no `auth=Bearer <token>`".to_string())?
        .trim();
    let mut parts = token.split('.');
    let (header, payload) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(_signature), None) => (h, p),
        _ => return Err("the token is not a JWS (header.payload.signature)".into()),
    };
    let decode = |part: &str| -> Result<serde_json::Value, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .map_err(|_| "a token part is not base64url".to_string())?;
        serde_json::from_slice(&bytes).map_err(|_| "a token part is not JSON".to_string())
    };
    let header = decode(header)?;
    if header["alg"] != "none" {
        return Err(format!(
            "only unsecured tokens (alg none) are accepted, not {}",
            header["alg"]
        ));
    }
    let claims = decode(payload)?;
    let user = claims["sub"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| "no `sub` claim".to_string())?;
    let exp = claims["exp"]
        .as_f64()
        .ok_or_else(|| "no `exp` claim".to_string())?;
    let expires_ms = (exp * 1000.0) as i64;
    if expires_ms <= now_ms {
        return Err("the token has expired".into());
    }
    Ok((user.to_string(), expires_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(claims: &str) -> Vec<u8> {
        let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
        let p = URL_SAFE_NO_PAD.encode(claims);
        format!("n,,\u{1}auth=Bearer {h}.{p}.\u{1}\u{1}").into_bytes()
    }

    #[test]
    fn unsecured_tokens_give_their_subject_until_they_expire() {
        let m = message(r#"{"sub":"writer","exp":2000.5,"iat":1000}"#);
        assert_eq!(
            validate(&m, 1_000_000).unwrap(),
            ("writer".into(), 2_000_500)
        );
        assert!(validate(&m, 2_000_500).is_err());
        assert!(validate(&message(r#"{"exp":2000}"#), 0).is_err());
        assert!(validate(b"n,,\x01auth=Basic x\x01\x01", 0).is_err());
    }
}
