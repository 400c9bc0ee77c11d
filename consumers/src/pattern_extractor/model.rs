//! The extractor's thresholds and normalization rules: built-in defaults, a TOML file at
//! `ML_MODEL_PATH` (a file, or a directory holding `model.toml`), and the
//! `MIN_OCCURRENCES` / `MIN_SUCCESS_RATE` settings over both.

use crate::config::ConfigError;
use serde::Deserialize;
use std::path::Path;

/// When a step sequence becomes a template.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TemplateRules {
    /// Executions of the sequence needed (`MIN_OCCURRENCES`).
    pub min_occurrences: u64,
    /// Share of them that succeeded (`MIN_SUCCESS_RATE`).
    pub min_success_rate: f64,
    /// Mean `quality_score` needed (the seeds' `min_quality_score`).
    pub min_quality_score: f64,
}

impl Default for TemplateRules {
    fn default() -> Self {
        Self {
            min_occurrences: 5,
            min_success_rate: 0.8,
            min_quality_score: 0.85,
        }
    }
}

/// How failures fall into groups.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FailureRules {
    /// Largest Hamming distance between two 64-bit SimHashes of one group.
    pub max_distance: u32,
    /// Most groups a bucket keeps (its state is one changelog record, which must stay
    /// under the broker's message size): past it, the least-seen group without a
    /// resolution (else the least-seen) gives way.
    pub max_groups: usize,
}

impl Default for FailureRules {
    fn default() -> Self {
        Self {
            max_distance: 3,
            max_groups: 1000,
        }
    }
}

/// What normalization strips from an error message before it is hashed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Normalize {
    /// Quoted values (`'user_id'`, `"x"`) become `<str>`.
    pub quoted: bool,
    /// Paths (`models/product.py`, `/tmp/x`) become `<path>`.
    pub paths: bool,
    /// UUIDs and long hex ids become `<id>`.
    pub ids: bool,
    /// Numbers become `<num>`.
    pub numbers: bool,
}

impl Default for Normalize {
    fn default() -> Self {
        Self {
            quoted: true,
            paths: true,
            ids: true,
            numbers: true,
        }
    }
}

/// Everything the extractor learns by.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Model {
    /// `[templates]`.
    pub templates: TemplateRules,
    /// `[failures]`.
    pub failures: FailureRules,
    /// `[normalize]`.
    pub normalize: Normalize,
}

impl Model {
    /// The model of `path` (none: the defaults), with the environment's overrides.
    pub fn load(
        path: Option<&Path>,
        min_occurrences: Option<&str>,
        min_success_rate: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let mut model = match path {
            None => Model::default(),
            Some(p) => {
                let file = if p.is_dir() {
                    p.join("model.toml")
                } else {
                    p.to_path_buf()
                };
                let text = std::fs::read_to_string(&file).map_err(|e| {
                    ConfigError::new("ML_MODEL_PATH", format!("{}: {e}", file.display()))
                })?;
                Self::parse(&text).map_err(|e| {
                    ConfigError::new("ML_MODEL_PATH", format!("{}: {e}", file.display()))
                })?
            }
        };
        if let Some(v) = min_occurrences {
            model.templates.min_occurrences = v.trim().parse().map_err(|_| {
                ConfigError::new("MIN_OCCURRENCES", format!("{v:?} is not a whole number"))
            })?;
        }
        if let Some(v) = min_success_rate {
            model.templates.min_success_rate = v.trim().parse().map_err(|_| {
                ConfigError::new("MIN_SUCCESS_RATE", format!("{v:?} is not a number"))
            })?;
        }
        model.check().map_err(|(key, problem)| {
            let setting = match key {
                "templates.min_occurrences" if min_occurrences.is_some() => "MIN_OCCURRENCES",
                "templates.min_success_rate" if min_success_rate.is_some() => "MIN_SUCCESS_RATE",
                _ => "ML_MODEL_PATH",
            };
            ConfigError::new(setting, format!("{key}: {problem}"))
        })?;
        Ok(model)
    }

    /// Parses a model file (unknown keys and wrong types are errors naming the key).
    pub fn parse(text: &str) -> Result<Self, String> {
        let model: Model = toml::from_str(text).map_err(|e| e.to_string())?;
        model
            .check()
            .map_err(|(key, problem)| format!("{key}: {problem}"))?;
        Ok(model)
    }

    fn check(&self) -> Result<(), (&'static str, &'static str)> {
        let t = &self.templates;
        if t.min_occurrences == 0 {
            return Err(("templates.min_occurrences", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&t.min_success_rate) {
            return Err(("templates.min_success_rate", "must be within 0..=1"));
        }
        if !(0.0..=1.0).contains(&t.min_quality_score) {
            return Err(("templates.min_quality_score", "must be within 0..=1"));
        }
        if self.failures.max_distance > 32 {
            return Err((
                "failures.max_distance",
                "must be within 0..=32 (of 64 bits)",
            ));
        }
        if !(1..=10_000).contains(&self.failures.max_groups) {
            return Err(("failures.max_groups", "must be within 1..=10000"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_seeds() {
        let m = Model::default();
        assert_eq!(m.templates.min_occurrences, 5);
        assert_eq!(m.templates.min_success_rate, 0.8);
        assert_eq!(m.templates.min_quality_score, 0.85);
        assert_eq!(Model::parse("").unwrap(), m);
    }

    #[test]
    fn a_bad_file_names_the_key() {
        let e = Model::parse("[templates]\nmin_success_rate = 1.5\n").unwrap_err();
        assert!(e.contains("templates.min_success_rate"), "{e}");
        let e = Model::parse("[templates]\nmin_ocurrences = 5\n").unwrap_err();
        assert!(e.contains("min_ocurrences"), "{e}");
        let e = Model::parse("[failures]\nmax_distance = \"three\"\n").unwrap_err();
        assert!(e.contains("max_distance"), "{e}");
    }

    #[test]
    fn settings_override_the_file_and_are_named_when_wrong() {
        let m = Model::load(None, Some("7"), Some("0.9")).unwrap();
        assert_eq!(m.templates.min_occurrences, 7);
        assert_eq!(m.templates.min_success_rate, 0.9);
        let e = Model::load(None, None, Some("2")).unwrap_err();
        assert_eq!(e.setting, "MIN_SUCCESS_RATE");
        let e = Model::load(Some(Path::new("/nonexistent/model")), None, None).unwrap_err();
        assert_eq!(e.setting, "ML_MODEL_PATH");
    }
}
