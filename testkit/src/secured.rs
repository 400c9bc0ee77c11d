//! How a testkit broker's listener is secured (the builder's `tls`, `sasl_users`, `acls`)
//! and the files its clients need.

use crate::certs::DevCerts;
use agentbus_broker::{BrokerConfig, ConfigError, StartError};
use std::path::PathBuf;
use std::sync::Arc;

/// How a testkit broker's listener is secured, and the files its clients need.
#[derive(Debug, Clone, Default)]
pub(crate) struct Security {
    pub(crate) protocol: &'static str,
    pub(crate) certs: Option<Arc<CertDir>>,
}

/// Generated certificates in a private directory, removed when the last broker using
/// them is dropped.
#[derive(Debug)]
pub(crate) struct CertDir {
    pub(crate) certs: DevCerts,
    dir: PathBuf,
}

impl Drop for CertDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sets up the listener, certificates and ACLs the builder asked for.
pub(crate) fn secure(
    config: &mut BrokerConfig,
    tls: bool,
    acls: &[String],
) -> Result<Security, StartError> {
    for rule in acls {
        let rule = agentbus_broker::parse_acl(rule)?;
        config.security.acls.push(rule);
    }
    let sasl = !config.security.scram_users.is_empty();
    let wanted = match (tls, sasl) {
        (false, false) => None,
        (true, false) => Some("SSL"),
        (false, true) => Some("SASL_PLAINTEXT"),
        (true, true) => Some("SASL_SSL"),
    };
    let sec = &mut config.security;
    // Listeners set with `configure` are kept (a secured one first, a PLAINTEXT one
    // beside it, say).
    if let (Some(protocol), None) = (wanted, &sec.listeners) {
        sec.listeners = Some(format!("{protocol}://127.0.0.1:0"));
    }
    let mut certs = None;
    if tls {
        let dir =
            std::env::temp_dir().join(format!("agentbus-tls-{}", crate::fixtures::uuid_like()));
        let generated = DevCerts::generate(&dir, &[])
            .map_err(|e| StartError::Config(ConfigError::new("tls", e.to_string())))?;
        sec.ssl_certificate = Some(generated.certificate.clone());
        sec.ssl_key = Some(generated.key.clone());
        sec.ssl_ca = Some(generated.ca.clone());
        certs = Some(Arc::new(CertDir {
            certs: generated,
            dir,
        }));
    }
    // What the (first) listener is, whoever configured it.
    let protocol = config
        .listeners()?
        .first()
        .map_or("PLAINTEXT", |l| l.protocol.name());
    Ok(Security { protocol, certs })
}
