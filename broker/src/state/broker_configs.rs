//! Broker configs set at run time (AlterConfigs on a BROKER resource), kept in the
//! metadata store: the cluster-wide defaults (resource name "") and each node's own.
//! The config the broker runs with is its settings with both applied.

use crate::broker_config;
use crate::config::BrokerConfig;
use crate::meta::{MetaError, MetaStore, Table, Write};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

const BROKER_CONFIGS: Table = "broker_configs";
/// The key of the cluster-wide layer.
const DEFAULTS: &str = "";

pub(crate) type Layer = BTreeMap<String, String>;

/// Which layer: the cluster-wide defaults, or one node's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Default,
    Node(i32),
}

impl Scope {
    fn key(self) -> String {
        match self {
            Self::Default => DEFAULTS.to_string(),
            Self::Node(id) => id.to_string(),
        }
    }
}

#[derive(Debug)]
struct Layers {
    by_key: BTreeMap<String, Layer>,
    effective: Arc<BrokerConfig>,
}

#[derive(Debug)]
pub(crate) struct BrokerConfigs {
    /// The broker's own settings (flags, variables, file).
    settings: BrokerConfig,
    meta: Arc<MetaStore>,
    layers: RwLock<Layers>,
}

impl BrokerConfigs {
    pub(crate) fn open(settings: BrokerConfig, meta: Arc<MetaStore>) -> Result<Self, MetaError> {
        let by_key: BTreeMap<String, Layer> = meta.load_json(BROKER_CONFIGS)?.into_iter().collect();
        let effective = Arc::new(Self::compute(&settings, &by_key));
        Ok(Self {
            settings,
            meta,
            layers: RwLock::new(Layers { by_key, effective }),
        })
    }

    fn compute(settings: &BrokerConfig, by_key: &BTreeMap<String, Layer>) -> BrokerConfig {
        let own = Scope::Node(settings.node_id).key();
        broker_config::apply(
            settings,
            [DEFAULTS.to_string(), own]
                .iter()
                .filter_map(|k| by_key.get(k)),
        )
    }

    /// The broker's own settings, before anything set at run time.
    pub(crate) fn settings(&self) -> &BrokerConfig {
        &self.settings
    }

    /// The config in force.
    pub(crate) fn effective(&self) -> Arc<BrokerConfig> {
        self.layers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .effective
            .clone()
    }

    /// The configs set at run time in one layer.
    pub(crate) fn layer(&self, scope: Scope) -> Layer {
        self.layers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_key
            .get(&scope.key())
            .cloned()
            .unwrap_or_default()
    }

    /// Replaces one layer, stored before it takes effect.
    pub(crate) fn replace(&self, scope: Scope, layer: Layer) -> Result<(), MetaError> {
        let mut layers = self.layers.write().unwrap_or_else(|p| p.into_inner());
        let key = scope.key();
        let write = if layer.is_empty() {
            Write::Delete {
                table: BROKER_CONFIGS,
                key: key.clone(),
            }
        } else {
            self.meta.put_json(BROKER_CONFIGS, &key, &layer)?
        };
        self.meta.apply(&[write])?;
        if layer.is_empty() {
            layers.by_key.remove(&key);
        } else {
            layers.by_key.insert(key, layer);
        }
        layers.effective = Arc::new(Self::compute(&self.settings, &layers.by_key));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_survive_reopen_and_apply() {
        let dir = tempfile::tempdir().unwrap();
        let settings = BrokerConfig::default();
        {
            let meta = Arc::new(MetaStore::open(dir.path()).unwrap());
            let c = BrokerConfigs::open(settings.clone(), meta).unwrap();
            c.replace(
                Scope::Default,
                Layer::from([("message.max.bytes".into(), "1000".into())]),
            )
            .unwrap();
            c.replace(
                Scope::Node(settings.node_id),
                Layer::from([("log.retention.ms".into(), "60000".into())]),
            )
            .unwrap();
            c.replace(
                Scope::Node(7),
                Layer::from([("message.max.bytes".into(), "5".into())]),
            )
            .unwrap();
            assert_eq!(c.effective().max_message_bytes, 1000);
        }
        let meta = Arc::new(MetaStore::open(dir.path()).unwrap());
        let c = BrokerConfigs::open(settings.clone(), meta).unwrap();
        let e = c.effective();
        assert_eq!((e.max_message_bytes, e.log.retention_ms), (1000, 60000));
        assert_eq!(c.layer(Scope::Node(7)).len(), 1);
        c.replace(Scope::Default, Layer::new()).unwrap();
        assert_eq!(c.effective().max_message_bytes, settings.max_message_bytes);
    }
}
