//! The librdkafka properties every Kafka client of a process gets, so one setting reaches
//! a secured cluster from every producer, consumer and admin client: Kafka's security
//! settings as `KAFKA_*` variables, a properties file (`--client-config`, as the
//! `kafka-*` tools' `--command-config`), and `-X key=value` pairs, in that order (a later
//! one wins).

use std::path::Path;
use std::sync::OnceLock;

/// The variables and the librdkafka property each sets.
pub const VARIABLES: &[(&str, &str)] = &[
    ("KAFKA_SECURITY_PROTOCOL", "security.protocol"),
    ("KAFKA_SASL_MECHANISM", "sasl.mechanism"),
    ("KAFKA_SASL_USERNAME", "sasl.username"),
    ("KAFKA_SASL_PASSWORD", "sasl.password"),
    ("KAFKA_SASL_OAUTHBEARER_CONFIG", "sasl.oauthbearer.config"),
    ("KAFKA_SSL_CA_LOCATION", "ssl.ca.location"),
    ("KAFKA_SSL_CERTIFICATE_LOCATION", "ssl.certificate.location"),
    ("KAFKA_SSL_KEY_LOCATION", "ssl.key.location"),
    ("KAFKA_SSL_KEY_PASSWORD", "ssl.key.password"),
    (
        "KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM",
        "ssl.endpoint.identification.algorithm",
    ),
];

/// The variable naming a properties file, as `--client-config` does.
pub const CLIENT_CONFIG_VARIABLE: &str = "KAFKA_CLIENT_CONFIG";

/// A property or file that cannot be used; names it.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting `{setting}`: {reason}")]
pub struct PropsError {
    pub setting: String,
    pub reason: String,
}

fn error(setting: impl Into<String>, reason: impl Into<String>) -> PropsError {
    PropsError {
        setting: setting.into(),
        reason: reason.into(),
    }
}

/// Whether a property holds a secret, which is never logged.
pub fn is_secret(key: &str) -> bool {
    key.contains("password") || key.contains("secret") || key == "ssl.key.pem"
}

/// Properties for every client, in the order they apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientProps {
    pairs: Vec<(String, String)>,
}

impl ClientProps {
    /// The file named by `KAFKA_CLIENT_CONFIG`, then the `KAFKA_*` security variables.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, PropsError> {
        let mut props = Self::default();
        if let Some(path) = get(CLIENT_CONFIG_VARIABLE).filter(|p| !p.trim().is_empty()) {
            props.load_file(Path::new(path.trim()), CLIENT_CONFIG_VARIABLE)?;
        }
        for (var, key) in VARIABLES {
            if let Some(v) = get(var).filter(|v| !v.is_empty()) {
                props.set(key, v.trim());
            }
        }
        Ok(props)
    }

    pub fn from_env() -> Result<Self, PropsError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn set(&mut self, key: &str, value: &str) {
        self.pairs.retain(|(k, _)| k != key);
        self.pairs.push((key.to_string(), value.to_string()));
    }

    /// A Java-style properties file as the `kafka-*` tools read: `key=value` (or
    /// `key: value`) lines, `#` and `!` comments.
    pub fn load_file(&mut self, path: &Path, setting: &str) -> Result<(), PropsError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| error(setting, format!("cannot read {}: {e}", path.display())))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .or_else(|| line.split_once(':'))
                .ok_or_else(|| {
                    error(
                        setting,
                        format!("{} line {}: expected key=value", path.display(), n + 1),
                    )
                })?;
            self.set(k.trim(), v.trim());
        }
        Ok(())
    }

    /// `-X key=value` pairs.
    pub fn set_pairs(&mut self, pairs: &[String]) -> Result<(), PropsError> {
        for p in pairs {
            let (k, v) = p
                .split_once('=')
                .filter(|(k, _)| !k.trim().is_empty())
                .ok_or_else(|| error("-X", format!("{p:?} is not key=value")))?;
            self.set(k.trim(), v.trim());
        }
        Ok(())
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The pairs with every secret replaced, for logs.
    pub fn redacted(&self) -> Vec<(String, String)> {
        self.pairs
            .iter()
            .map(|(k, v)| {
                let v = if is_secret(k) {
                    "[redacted]".into()
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect()
    }

    pub fn apply(&self, c: &mut rdkafka::ClientConfig) {
        for (k, v) in &self.pairs {
            c.set(k, v);
        }
    }
}

static PROCESS: OnceLock<ClientProps> = OnceLock::new();

/// Sets the process's properties (once, at start; later calls are ignored).
pub fn install(props: ClientProps) {
    if !props.pairs.is_empty() {
        tracing::debug!(properties = ?props.redacted(), "Kafka client properties");
    }
    let _ = PROCESS.set(props);
}

/// The process's properties (none until [`install`]).
pub fn process() -> &'static ClientProps {
    static NONE: ClientProps = ClientProps { pairs: Vec::new() };
    PROCESS.get().unwrap_or(&NONE)
}

/// A librdkafka configuration with the process's properties: where every client starts.
pub fn client_config() -> rdkafka::ClientConfig {
    let mut c = rdkafka::ClientConfig::new();
    process().apply(&mut c);
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn file_then_variables_then_pairs_and_secrets_are_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("client.properties");
        std::fs::write(
            &file,
            "# cluster\nsecurity.protocol=SASL_SSL\nsasl.mechanism: SCRAM-SHA-512\n! note\nsasl.username=from-file\n",
        )
        .unwrap();
        let env: HashMap<&str, String> = [
            (CLIENT_CONFIG_VARIABLE, file.display().to_string()),
            ("KAFKA_SASL_USERNAME", "from-env".into()),
            ("KAFKA_SASL_PASSWORD", "s3cret".into()),
        ]
        .into();
        let mut p = ClientProps::from_lookup(|k| env.get(k).cloned()).unwrap();
        assert_eq!(p.get("sasl.username"), Some("from-env"));
        assert_eq!(p.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        p.set_pairs(&["sasl.username=from-flag".into()]).unwrap();
        assert_eq!(p.get("sasl.username"), Some("from-flag"));
        let shown = format!("{:?}", p.redacted());
        assert!(
            !shown.contains("s3cret") && shown.contains("[redacted]"),
            "{shown}"
        );
        assert_eq!(p.set_pairs(&["novalue".into()]).unwrap_err().setting, "-X");
        std::fs::write(&file, "just words\n").unwrap();
        let e = ClientProps::from_lookup(|k| env.get(k).cloned()).unwrap_err();
        assert_eq!(e.setting, CLIENT_CONFIG_VARIABLE);
    }
}
