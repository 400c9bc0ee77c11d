//! Certificates for local TLS: a CA, a broker certificate for loopback names, and client
//! certificates for mutual TLS, written as PEM files (what `agentbus certs dev` writes and
//! what [`crate::BrokerBuilder::tls`] uses).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// Why certificates could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("the broker was started without TLS (BrokerBuilder::tls)")]
    NoTls,
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A development CA and a broker certificate it signed, as files.
pub struct DevCerts {
    /// The CA certificate: `ssl.ca.location` for clients, `--ssl-ca-location` for the
    /// broker when it checks client certificates.
    pub ca: PathBuf,
    /// The broker's certificate (`--ssl-certificate-location`).
    pub certificate: PathBuf,
    /// The broker's private key (`--ssl-key-location`).
    pub key: PathBuf,
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for DevCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCerts")
            .field("ca", &self.ca)
            .field("certificate", &self.certificate)
            .field("key", &self.key)
            .finish()
    }
}

fn write(path: PathBuf, text: &str) -> Result<PathBuf, CertError> {
    std::fs::write(&path, text).map_err(|source| CertError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

impl DevCerts {
    /// Writes `ca.pem`, `broker.pem` and `broker-key.pem` under `dir`; the broker's
    /// certificate names `hosts` (names and IP addresses) and `localhost`/`127.0.0.1`.
    pub fn generate(dir: &Path, hosts: &[String]) -> Result<Self, CertError> {
        std::fs::create_dir_all(dir).map_err(|source| CertError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.distinguished_name
            .push(DnType::CommonName, "agentbus development CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca, ca_key);
        let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
        for h in hosts {
            if !names.contains(h) {
                names.push(h.clone());
            }
        }
        let mut params = CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "agentbus broker");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Self {
            ca: write(dir.join("ca.pem"), &ca_cert.pem())?,
            certificate: write(dir.join("broker.pem"), &cert.pem())?,
            key: write(dir.join("broker-key.pem"), &key.serialize_pem())?,
            dir: dir.to_path_buf(),
            issuer,
        })
    }

    /// Writes `NAME.pem` and `NAME-key.pem`: a client certificate whose subject is
    /// `CN=NAME,O=agentbus`, so a mutual-TLS broker sees the principal
    /// `User:CN=NAME,O=agentbus`.
    pub fn client(&self, name: &str) -> Result<(PathBuf, PathBuf), CertError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        // Encoded O first (the default name holds a CN, which would come first), so
        // that RFC 2253 (last RDN first), as Kafka prints a subject, gives CN=NAME,O=….
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "agentbus");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((
            write(self.dir.join(format!("{name}.pem")), &cert.pem())?,
            write(
                self.dir.join(format!("{name}-key.pem")),
                &key.serialize_pem(),
            )?,
        ))
    }
}
