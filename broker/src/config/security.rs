//! Listeners and their security settings, with Kafka's names: `listeners`,
//! `advertised.listeners`, `listener.security.protocol.map`, the `ssl.*` files and
//! `sasl.enabled.mechanisms`, and the limits of authentication.

use super::{parse_host_port, ConfigError};
use std::path::PathBuf;
use std::time::Duration;

/// How a listener's connections are secured (Kafka's `SecurityProtocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Self::Plaintext,
            "SSL" => Self::Ssl,
            "SASL_PLAINTEXT" => Self::SaslPlaintext,
            "SASL_SSL" => Self::SaslSsl,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }

    pub fn tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    pub fn sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

/// SASL mechanisms a listener can offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
    OAuthBearer,
}

impl Mechanism {
    pub const ALL: [Mechanism; 4] = [
        Self::ScramSha512,
        Self::ScramSha256,
        Self::Plain,
        Self::OAuthBearer,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == s)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
            Self::OAuthBearer => "OAUTHBEARER",
        }
    }
}

/// `ssl.client.auth`: whether a TLS client must present a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    #[default]
    None,
    Requested,
    Required,
}

impl ClientAuth {
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        match s {
            "none" => Ok(Self::None),
            "requested" => Ok(Self::Requested),
            "required" => Ok(Self::Required),
            other => Err(ConfigError::new(
                "ssl-client-auth",
                format!("`{other}` is not `required`, `requested` or `none`"),
            )),
        }
    }
}

/// The security side of a broker's settings.
#[derive(Debug, Clone)]
pub struct SecurityConfig {
    /// `listeners`: `NAME://host:port,…`; none: one PLAINTEXT listener on `listen`.
    pub listeners: Option<String>,
    /// `advertised.listeners`: `NAME://host:port,…` given to clients per listener.
    pub advertised_listeners: Option<String>,
    /// `listener.security.protocol.map`: `NAME:PROTOCOL,…` for listeners not named after
    /// their protocol.
    pub protocol_map: Option<String>,
    /// PEM file with the broker's certificate chain (`ssl.certificate.location`).
    pub ssl_certificate: Option<PathBuf>,
    /// PEM file with the broker's private key (`ssl.key.location`).
    pub ssl_key: Option<PathBuf>,
    /// PEM file with the CA certificates client certificates are checked against.
    pub ssl_ca: Option<PathBuf>,
    pub ssl_client_auth: ClientAuth,
    /// `ssl.principal.mapping.rules`: how a client certificate's subject becomes the
    /// principal's name (`RULE:pattern/replacement/[L|U]`, …, `DEFAULT`).
    pub ssl_principal_mapping_rules: Option<String>,
    /// `sasl.enabled.mechanisms`.
    pub sasl_mechanisms: Vec<Mechanism>,
    /// `listener.name.NAME.sasl.enabled.mechanisms`: what one listener offers instead.
    pub listener_mechanisms: Vec<(String, Vec<Mechanism>)>,
    /// `connections.max.reauth.ms` (KIP-368): 0, sessions do not expire.
    pub max_reauth_ms: i64,
    /// `connection.failed.authentication.delay.ms`: a failed authentication is answered
    /// (and the connection closed) after this.
    pub failed_authentication_delay: Duration,
    /// Time from accepting a connection to its authentication (TLS handshake and SASL).
    pub authentication_timeout: Duration,
    /// `sasl.server.max.receive.size`: the largest frame before authentication.
    pub sasl_max_receive_size: usize,
    /// `authorizer.class.name` set: ACLs are enforced on every request.
    pub authorizer: bool,
    /// `super.users`: principals (`User:NAME`) every ACL check allows.
    pub super_users: Vec<String>,
    /// `allow.everyone.if.no.acl.found`: a resource no ACL names is open to all.
    pub allow_everyone_if_no_acl_found: bool,
    /// ACLs created at start (kept with the ones created over the wire).
    pub acls: Vec<super::AclRule>,
    /// Users given SCRAM-SHA-256 and SCRAM-SHA-512 credentials at start (name, password),
    /// as `kafka-storage format --add-scram` seeds them.
    pub scram_users: Vec<(String, String)>,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            listeners: None,
            advertised_listeners: None,
            protocol_map: None,
            ssl_certificate: None,
            ssl_key: None,
            ssl_ca: None,
            ssl_client_auth: ClientAuth::None,
            ssl_principal_mapping_rules: None,
            sasl_mechanisms: Mechanism::ALL.to_vec(),
            listener_mechanisms: Vec::new(),
            max_reauth_ms: 0,
            failed_authentication_delay: Duration::from_millis(100),
            authentication_timeout: Duration::from_secs(10),
            sasl_max_receive_size: 524_288,
            scram_users: Vec::new(),
            authorizer: false,
            super_users: Vec::new(),
            allow_everyone_if_no_acl_found: false,
            acls: Vec::new(),
        }
    }
}

/// One listener: where it binds, what it advertises, how it is secured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub protocol: SecurityProtocol,
    /// `host:port` (port 0: a free one), or a list of them for several presented brokers.
    pub bind: String,
    /// `host:port` given to clients; none: the bound address.
    pub advertised: Option<String>,
    /// The SASL mechanisms it offers (its own list, else the broker's).
    pub sasl_mechanisms: Vec<Mechanism>,
}

/// Splits `NAME://host:port` (an empty host binds every interface, as in Kafka).
fn split_listener(entry: &str, setting: &str) -> Result<(String, String), ConfigError> {
    let (name, addr) = entry.split_once("://").ok_or_else(|| {
        ConfigError::new(
            setting,
            format!("`{entry}` is not NAME://host:port (as PLAINTEXT://127.0.0.1:9092)"),
        )
    })?;
    let addr = if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_string()
    };
    parse_host_port(&addr).map_err(|r| ConfigError::new(setting, r))?;
    Ok((name.to_ascii_uppercase(), addr))
}

impl SecurityConfig {
    /// The listeners, the first one's address being `listen` when none are set.
    pub fn listeners(
        &self,
        listen: &str,
        advertise: Option<&str>,
    ) -> Result<Vec<Listener>, ConfigError> {
        let Some(spec) = self.listeners.as_deref().filter(|s| !s.trim().is_empty()) else {
            return Ok(vec![Listener {
                name: "PLAINTEXT".into(),
                protocol: SecurityProtocol::Plaintext,
                bind: listen.to_string(),
                advertised: advertise.map(str::to_string),
                sasl_mechanisms: self.sasl_mechanisms.clone(),
            }]);
        };
        let mut map = Vec::new();
        for pair in self.protocol_map.iter().flat_map(|m| m.split(',')) {
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            let bad = || {
                ConfigError::new(
                    "listener-security-protocol-map",
                    format!("`{pair}` is not NAME:PROTOCOL (as CLIENT:SASL_SSL)"),
                )
            };
            let (name, protocol) = pair.split_once(':').ok_or_else(bad)?;
            let protocol = SecurityProtocol::parse(protocol).ok_or_else(bad)?;
            map.push((name.to_ascii_uppercase(), protocol));
        }
        let mut out: Vec<Listener> = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, bind) = split_listener(entry, "listeners")?;
            let protocol = map
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, p)| *p)
                .or_else(|| SecurityProtocol::parse(&name))
                .ok_or_else(|| {
                    ConfigError::new(
                        "listeners",
                        format!(
                            "listener `{name}` is not a security protocol (PLAINTEXT, SSL, \
                             SASL_PLAINTEXT, SASL_SSL) nor named in listener-security-protocol-map"
                        ),
                    )
                })?;
            if out.iter().any(|l| l.name == name) {
                return Err(ConfigError::new(
                    "listeners",
                    format!("listener `{name}` is given twice"),
                ));
            }
            let sasl_mechanisms = self
                .listener_mechanisms
                .iter()
                .find(|(n, _)| *n == name)
                .map_or_else(|| self.sasl_mechanisms.clone(), |(_, m)| m.clone());
            out.push(Listener {
                name,
                protocol,
                bind,
                advertised: None,
                sasl_mechanisms,
            });
        }
        if out.is_empty() {
            return Err(ConfigError::new("listeners", "no listener given"));
        }
        for entry in self
            .advertised_listeners
            .iter()
            .flat_map(|a| a.split(','))
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let (name, addr) = split_listener(entry, "advertised-listeners")?;
            let listener = out.iter_mut().find(|l| l.name == name).ok_or_else(|| {
                ConfigError::new(
                    "advertised-listeners",
                    format!("`{name}` is not one of the listeners"),
                )
            })?;
            listener.advertised = Some(addr);
        }
        for (name, _) in &self.listener_mechanisms {
            if !out.iter().any(|l| l.name == *name && l.protocol.sasl()) {
                return Err(ConfigError::new(
                    "listener-sasl-enabled-mechanisms",
                    format!("`{name}` is not one of the SASL listeners"),
                ));
            }
        }
        Ok(out)
    }

    /// Checks that what the listeners need is given.
    pub fn validate(&self, listeners: &[Listener]) -> Result<(), ConfigError> {
        if listeners.iter().any(|l| l.protocol.tls()) {
            if self.ssl_certificate.is_none() {
                return Err(ConfigError::new(
                    "ssl-certificate-location",
                    "a TLS listener (SSL, SASL_SSL) needs the broker's certificate (PEM)",
                ));
            }
            if self.ssl_key.is_none() {
                return Err(ConfigError::new(
                    "ssl-key-location",
                    "a TLS listener (SSL, SASL_SSL) needs the broker's private key (PEM)",
                ));
            }
            if self.ssl_client_auth != ClientAuth::None && self.ssl_ca.is_none() {
                return Err(ConfigError::new(
                    "ssl-ca-location",
                    "ssl-client-auth needs the CA that signs client certificates",
                ));
            }
        }
        if let Some(l) = listeners
            .iter()
            .find(|l| l.protocol.sasl() && l.sasl_mechanisms.is_empty())
        {
            let own = self.listener_mechanisms.iter().any(|(n, _)| *n == l.name);
            return Err(ConfigError::new(
                if own {
                    "listener-sasl-enabled-mechanisms"
                } else {
                    "sasl-enabled-mechanisms"
                },
                format!("SASL listener {} needs at least one mechanism", l.name),
            ));
        }
        if self.max_reauth_ms < 0 {
            return Err(ConfigError::new(
                "connections-max-reauth-ms",
                "must not be negative",
            ));
        }
        Ok(())
    }
}

/// Parses `authorizer.class.name`: Kafka's authorizers (or `standard`) turn ACLs on, an
/// empty value leaves them off.
pub fn parse_authorizer(name: &str) -> Result<bool, ConfigError> {
    match name.trim() {
        "" => Ok(false),
        "standard"
        | "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
        | "kafka.security.authorizer.AclAuthorizer" => Ok(true),
        other => Err(ConfigError::new(
            "authorizer-class-name",
            format!("`{other}` is not an authorizer agentbus has; use org.apache.kafka.metadata.authorizer.StandardAuthorizer (or `standard`)"),
        )),
    }
}

/// Parses `super.users`: `User:a;User:b` as Kafka writes it (commas are accepted too).
pub fn parse_super_users(list: &str) -> Result<Vec<String>, ConfigError> {
    list.split([';', ','])
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| {
            if u.contains(':') {
                Ok(u.to_string())
            } else {
                Err(ConfigError::new(
                    "super-users",
                    format!("`{u}` is not a principal (as User:admin)"),
                ))
            }
        })
        .collect()
}

/// Parses `NAME:PASSWORD,…` (the password may hold `:` but not `,`).
pub fn parse_scram_users(list: &str) -> Result<Vec<(String, String)>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| match u.split_once(':') {
            Some((name, password)) if !name.is_empty() && !password.is_empty() => {
                Ok((name.to_string(), password.to_string()))
            }
            _ => Err(ConfigError::new(
                "scram-users",
                "expected NAME:PASSWORD, comma-separated",
            )),
        })
        .collect()
}

/// Parses `sasl.enabled.mechanisms` (a comma-separated list).
pub fn parse_mechanisms(list: &str) -> Result<Vec<Mechanism>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(|m| {
            Mechanism::parse(&m.to_ascii_uppercase()).ok_or_else(|| {
                ConfigError::new(
                    "sasl-enabled-mechanisms",
                    format!("`{m}` is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER"),
                )
            })
        })
        .collect()
}

/// Parses `listener.name.NAME.sasl.enabled.mechanisms` for several listeners:
/// `SASL_SSL=SCRAM-SHA-512,SCRAM-SHA-256;INTERNAL=PLAIN`.
pub fn parse_listener_mechanisms(list: &str) -> Result<Vec<(String, Vec<Mechanism>)>, ConfigError> {
    const SETTING: &str = "listener-sasl-enabled-mechanisms";
    list.split(';')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let (name, mechanisms) = entry.split_once('=').ok_or_else(|| {
                ConfigError::new(
                    SETTING,
                    format!("`{entry}` is not LISTENER=MECHANISM,… (as SASL_SSL=SCRAM-SHA-512)"),
                )
            })?;
            let mechanisms =
                parse_mechanisms(mechanisms).map_err(|e| ConfigError::new(SETTING, e.reason))?;
            Ok((name.trim().to_ascii_uppercase(), mechanisms))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_as_kafka_writes_them() {
        let c = SecurityConfig {
            listeners: Some("PLAINTEXT://127.0.0.1:9092, SASL_SSL://:9094,CLIENT://h:1".into()),
            advertised_listeners: Some("SASL_SSL://broker.example:19094".into()),
            protocol_map: Some("CLIENT:SSL".into()),
            ..SecurityConfig::default()
        };
        let l = c.listeners("ignored:1", None).unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].protocol, SecurityProtocol::Plaintext);
        assert_eq!(l[1].bind, "0.0.0.0:9094");
        assert_eq!(l[1].advertised.as_deref(), Some("broker.example:19094"));
        assert_eq!(l[2].protocol, SecurityProtocol::Ssl);
        for bad in ["FOO://h:1", "PLAINTEXT://h", "h:1", "SSL://h:1,SSL://h:2"] {
            let c = SecurityConfig {
                listeners: Some(bad.into()),
                ..SecurityConfig::default()
            };
            assert_eq!(
                c.listeners("x:1", None).unwrap_err().setting,
                "listeners",
                "{bad}"
            );
        }
        let none = SecurityConfig::default()
            .listeners("127.0.0.1:0", Some("a:1"))
            .unwrap();
        assert_eq!(none[0].name, "PLAINTEXT");
        assert_eq!(none[0].advertised.as_deref(), Some("a:1"));
    }

    #[test]
    fn a_tls_listener_without_its_files_names_the_setting() {
        let c = SecurityConfig {
            listeners: Some("SSL://127.0.0.1:0".into()),
            ..SecurityConfig::default()
        };
        let l = c.listeners("", None).unwrap();
        assert_eq!(
            c.validate(&l).unwrap_err().setting,
            "ssl-certificate-location"
        );
        assert!(parse_mechanisms("PLAIN,scram-sha-512").is_ok());
        assert_eq!(
            parse_mechanisms("GSSAPI").unwrap_err().setting,
            "sasl-enabled-mechanisms"
        );
    }

    #[test]
    fn a_listener_offers_its_own_mechanisms() {
        let mut c = SecurityConfig {
            listeners: Some("SASL_PLAINTEXT://h:1,INTERNAL://h:2".into()),
            protocol_map: Some("INTERNAL:SASL_PLAINTEXT".into()),
            sasl_mechanisms: vec![Mechanism::ScramSha256],
            listener_mechanisms: parse_listener_mechanisms(" internal=PLAIN,SCRAM-SHA-512 ")
                .unwrap(),
            ..SecurityConfig::default()
        };
        let l = c.listeners("", None).unwrap();
        assert_eq!(l[0].sasl_mechanisms, [Mechanism::ScramSha256]);
        assert_eq!(
            l[1].sasl_mechanisms,
            [Mechanism::Plain, Mechanism::ScramSha512]
        );
        c.listener_mechanisms = parse_listener_mechanisms("INTERNAL=").unwrap();
        let l = c.listeners("", None).unwrap();
        assert_eq!(
            c.validate(&l).unwrap_err().setting,
            "listener-sasl-enabled-mechanisms"
        );
        c.listener_mechanisms = parse_listener_mechanisms("OTHER=PLAIN").unwrap();
        assert_eq!(
            c.listeners("", None).unwrap_err().setting,
            "listener-sasl-enabled-mechanisms"
        );
        for bad in ["SASL_SSL", "SASL_SSL=GSSAPI"] {
            assert_eq!(
                parse_listener_mechanisms(bad).unwrap_err().setting,
                "listener-sasl-enabled-mechanisms"
            );
        }
    }
}
