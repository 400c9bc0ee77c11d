//! The log output of every command: `AGENTBUS_LOG` filters (default `info`), text or JSON
//! lines on stderr. The levels can be changed while the process runs: the broker offers
//! them as Kafka's BROKER_LOGGER config resource (`kafka-configs --entity-type
//! broker-loggers`), a logger being a module path (`agentbus_broker::handlers`) or `root`.

use agentbus_broker::LogLevels;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

/// Kafka's log levels and the tracing level each becomes.
const LEVELS: &[(&str, &str)] = &[
    ("TRACE", "trace"),
    ("DEBUG", "debug"),
    ("INFO", "info"),
    ("WARN", "warn"),
    ("ERROR", "error"),
    ("FATAL", "error"),
    ("OFF", "off"),
];

/// The process's log levels: the root one and each logger's own.
struct Levels {
    root: String,
    loggers: BTreeMap<String, String>,
    handle: reload::Handle<EnvFilter, Registry>,
}

impl std::fmt::Debug for Levels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Levels")
            .field("root", &self.root)
            .field("loggers", &self.loggers)
            .finish()
    }
}

impl Levels {
    fn filter(&self) -> Result<EnvFilter, String> {
        let to_tracing = |kafka: &str| {
            LEVELS
                .iter()
                .find(|(k, _)| *k == kafka)
                .map_or("info", |(_, t)| t)
        };
        let mut directives = vec![to_tracing(&self.root).to_string()];
        directives.extend(
            self.loggers
                .iter()
                .map(|(logger, level)| format!("{logger}={}", to_tracing(level))),
        );
        EnvFilter::try_new(directives.join(",")).map_err(|e| e.to_string())
    }
}

/// The handle the broker changes levels through.
#[derive(Debug, Clone)]
struct ProcessLevels(Arc<Mutex<Levels>>);

impl LogLevels for ProcessLevels {
    fn loggers(&self) -> Vec<(String, String)> {
        let levels = self.0.lock().unwrap_or_else(|p| p.into_inner());
        std::iter::once(("root".to_string(), levels.root.clone()))
            .chain(levels.loggers.clone())
            .collect()
    }

    fn set(&self, logger: &str, level: Option<&str>) -> Result<(), String> {
        let mut levels = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = Levels {
            root: levels.root.clone(),
            loggers: levels.loggers.clone(),
            handle: levels.handle.clone(),
        };
        match (logger, level) {
            ("root", None) => return Err("Removing the log level of the root logger is not allowed".into()),
            (_, Some(level)) if !LEVELS.iter().any(|(k, _)| *k == level) => {
                return Err(format!(
                    "Cannot set the log level of {logger} to {level} as it is not a supported log level. Valid log levels are {}",
                    LEVELS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
                ))
            }
            ("root", Some(level)) => next.root = level.to_string(),
            (_, Some(level)) => {
                next.loggers.insert(logger.to_string(), level.to_string());
            }
            (_, None) => {
                next.loggers.remove(logger);
            }
        }
        let filter = next.filter()?;
        levels.handle.reload(filter).map_err(|e| e.to_string())?;
        *levels = next;
        Ok(())
    }
}

static PROCESS_LEVELS: OnceLock<ProcessLevels> = OnceLock::new();

/// The process's log levels, once `init` ran.
pub(crate) fn levels() -> Option<Arc<dyn LogLevels>> {
    PROCESS_LEVELS
        .get()
        .map(|l| Arc::new(l.clone()) as Arc<dyn LogLevels>)
}

pub(crate) fn init(format: LogFormat) {
    let from_env = std::env::var("AGENTBUS_LOG").ok();
    let filter = from_env
        .as_deref()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().boxed(),
    };
    if tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .try_init()
        .is_ok()
    {
        // A filter given in AGENTBUS_LOG beyond one level is kept as the root level's
        // starting point only when it is one; loggers set later are added to `info`.
        let root = from_env
            .as_deref()
            .and_then(|f| LEVELS.iter().find(|(_, t)| t.eq_ignore_ascii_case(f)))
            .map_or("INFO", |(k, _)| k);
        let _ = PROCESS_LEVELS.set(ProcessLevels(Arc::new(Mutex::new(Levels {
            root: root.to_string(),
            loggers: BTreeMap::new(),
            handle,
        }))));
    }
}
