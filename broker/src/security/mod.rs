//! Authentication: TLS for SSL listeners, SASL exchanges (PLAIN, SCRAM, OAUTHBEARER) and
//! the SCRAM credentials they check against.

pub(crate) mod acl;
mod credentials;
mod oauth;
mod principal_mapping;
mod sasl;
mod scram;
mod tls;

pub(crate) use acl::{AclBinding, AclFilter, Authorizer, Subject};
pub(crate) use credentials::{CredentialChange, Credentials};
pub(crate) use principal_mapping::PrincipalMapper;
pub(crate) use sasl::{Exchange, Outcome};
pub(crate) use scram::{Hash, MAX_ITERATIONS, MIN_ITERATIONS};
pub use tls::TlsError;
pub(crate) use tls::{acceptor, subject_name};

/// The principal of a connection that has not authenticated (PLAINTEXT, or SSL without a
/// client certificate), as Kafka names it.
pub(crate) const ANONYMOUS: &str = "User:ANONYMOUS";

/// Kafka's principal for a user name: `User:NAME`.
pub(crate) fn user_principal(name: &str) -> String {
    format!("User:{name}")
}
