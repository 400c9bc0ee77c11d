//! The TLS side of a wire connection: the CA from `ssl.ca.location` (else the system's
//! roots), a client certificate from `ssl.certificate.location` / `ssl.key.location`,
//! no checking at all with `enable.ssl.certificate.verification=false`.

use super::WireError;
use agentbus_client::kafka_props::ClientProps;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

fn config_error(setting: &str, reason: impl std::fmt::Display) -> WireError {
    WireError::Config {
        setting: setting.into(),
        reason: reason.to_string(),
    }
}

/// Accepts any server certificate: `ssl.endpoint.identification.algorithm=none` with
/// `enable.ssl.certificate.verification=false`, as librdkafka allows for development.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

pub(super) async fn connect(
    broker: &str,
    tcp: TcpStream,
    props: &ClientProps,
) -> Result<TlsStream<TcpStream>, WireError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error("security.protocol", e))?;
    let verify = props
        .get("enable.ssl.certificate.verification")
        .is_none_or(|v| v != "false");
    let builder = if !verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match props.get("ssl.ca.location") {
            Some(path) => {
                for cert in CertificateDer::pem_file_iter(path)
                    .map_err(|e| config_error("ssl.ca.location", format!("{path}: {e}")))?
                {
                    let cert =
                        cert.map_err(|e| config_error("ssl.ca.location", format!("{path}: {e}")))?;
                    roots
                        .add(cert)
                        .map_err(|e| config_error("ssl.ca.location", format!("{path}: {e}")))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                for cert in found.certs {
                    let _ = roots.add(cert);
                }
            }
        }
        builder.with_root_certificates(roots)
    };
    let config = match (
        props.get("ssl.certificate.location"),
        props.get("ssl.key.location"),
    ) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| config_error("ssl.certificate.location", format!("{cert}: {e}")))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| config_error("ssl.key.location", format!("{key}: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| config_error("ssl.key.location", e))?
        }
        _ => builder.with_no_client_auth(),
    };
    let host = broker.rsplit_once(':').map_or(broker, |(h, _)| h);
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let name = ServerName::try_from(host).map_err(|e| config_error("bootstrap.servers", e))?;
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|source| WireError::Io {
            broker: broker.to_string(),
            source,
        })
}
