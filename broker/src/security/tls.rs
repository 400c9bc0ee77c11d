//! TLS for SSL and SASL_SSL listeners: rustls from PEM files, optional client
//! certificates, and the principal a client certificate names.

use crate::config::{ClientAuth, SecurityConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// Why TLS could not be set up; names the setting.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting `{setting}`: {reason}")]
pub struct TlsError {
    pub setting: &'static str,
    pub reason: String,
}

fn err(setting: &'static str, reason: impl std::fmt::Display) -> TlsError {
    TlsError {
        setting,
        reason: reason.to_string(),
    }
}

fn certificates(
    path: &Path,
    setting: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(setting, format!("{}: {e}", path.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(setting, format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(err(
            setting,
            format!("{}: no PEM certificate in it", path.display()),
        ));
    }
    Ok(certs)
}

/// The acceptor for a broker's TLS listeners.
pub(crate) fn acceptor(config: &SecurityConfig) -> Result<TlsAcceptor, TlsError> {
    let cert_path = config
        .ssl_certificate
        .as_deref()
        .ok_or_else(|| err("ssl-certificate-location", "not given"))?;
    let key_path = config
        .ssl_key
        .as_deref()
        .ok_or_else(|| err("ssl-key-location", "not given"))?;
    let chain = certificates(cert_path, "ssl-certificate-location")?;
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| err("ssl-key-location", format!("{}: {e}", key_path.display())))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| err("ssl-certificate-location", e))?;
    let builder = match (config.ssl_client_auth, config.ssl_ca.as_deref()) {
        (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
        (auth, Some(ca)) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates(ca, "ssl-ca-location")? {
                roots
                    .add(cert)
                    .map_err(|e| err("ssl-ca-location", format!("{}: {e}", ca.display())))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder
                .with_client_cert_verifier(verifier.build().map_err(|e| err("ssl-ca-location", e))?)
        }
    };
    let server = builder
        .with_single_cert(chain, key)
        .map_err(|e| err("ssl-key-location", e))?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// The subject of a certificate as Kafka's default `ssl.principal.mapping.rules` give it:
/// the distinguished name in RFC 2253 form (`CN=writer,O=agentbus`, last RDN first).
pub(crate) fn subject_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let rdns: Vec<String> = parsed
        .subject()
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let key = x509_parser::objects::oid2abbrev(
                        atv.attr_type(),
                        x509_parser::objects::oid_registry(),
                    )
                    .map(str::to_string)
                    .unwrap_or_else(|_| atv.attr_type().to_id_string());
                    let value = atv.as_str().unwrap_or_default();
                    format!("{key}={}", escape_rfc2253(value))
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    Some(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

fn escape_rfc2253(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == v.chars().count() && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
