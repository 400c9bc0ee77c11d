//! Value checks shared by the event types, and the error that names the offending field.
//!
//! Decoding (see [`crate::events::EventError`]) checks shapes and types; the checks here
//! check values: UUIDs, scores in `0..=1`, RFC 3339 timestamps, non-empty strings.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// A value that breaks the event contract, with the field it is in (a JSON path such as
/// `alternatives[1].confidence_score`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// Not a UUID in its hyphenated 8-4-4-4-12 form.
    #[error("{field}: {value:?} is not a UUID (expected 8-4-4-4-12 hex digits)")]
    NotUuid {
        /// Path of the field.
        field: String,
        /// The rejected value.
        value: String,
    },
    /// A number outside its allowed range.
    #[error("{field}: {value} is outside {range}")]
    OutOfRange {
        /// Path of the field.
        field: String,
        /// The rejected value.
        value: f64,
        /// The allowed range, e.g. `0..=1`.
        range: &'static str,
    },
    /// Not an RFC 3339 date-time (e.g. `2025-10-20T18:30:00.123Z`).
    #[error("{field}: {value:?} is not an RFC 3339 timestamp ({reason})")]
    NotRfc3339 {
        /// Path of the field.
        field: String,
        /// The rejected value.
        value: String,
        /// What the parser objected to.
        reason: String,
    },
    /// A required string that is empty or only white space.
    #[error("{field}: must not be empty")]
    Empty {
        /// Path of the field.
        field: String,
    },
}

impl ValidationError {
    /// The path of the offending field.
    pub fn field(&self) -> &str {
        match self {
            Self::NotUuid { field, .. }
            | Self::OutOfRange { field, .. }
            | Self::NotRfc3339 { field, .. }
            | Self::Empty { field } => field,
        }
    }
}

/// A UUID kept as the text the producer wrote (hyphenated, any case), so that events
/// round-trip unchanged; [`Id::check`] validates it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Id(pub String);

impl Id {
    /// A new random (version 4) UUID.
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// The text of the id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks that the id is a hyphenated UUID.
    pub fn check(&self, field: &str) -> Result<(), ValidationError> {
        let ok = self.0.len() == 36
            && self.0.as_bytes()[8] == b'-'
            && uuid::Uuid::try_parse(&self.0).is_ok();
        if ok {
            Ok(())
        } else {
            Err(ValidationError::NotUuid {
                field: field.to_string(),
                value: self.0.clone(),
            })
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Id {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

impl From<String> for Id {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl JsonSchema for Id {
    fn schema_name() -> Cow<'static, str> {
        "Uuid".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "uuid",
            "pattern": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
        })
    }
}

/// An RFC 3339 timestamp kept as written (e.g. `2025-10-20T18:30:00.123Z`);
/// [`Timestamp::check`] validates it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub String);

impl Timestamp {
    /// The current UTC time with millisecond precision, `Z` suffix.
    pub fn now() -> Self {
        let now = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now());
        Self(now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    }

    /// The text of the timestamp.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Milliseconds since the Unix epoch, if the text is a valid RFC 3339 timestamp.
    pub fn millis(&self) -> Option<i64> {
        chrono::DateTime::parse_from_rfc3339(&self.0)
            .ok()
            .map(|t| t.timestamp_millis())
    }

    /// Checks that the text is an RFC 3339 date-time with a time zone.
    pub fn check(&self, field: &str) -> Result<(), ValidationError> {
        chrono::DateTime::parse_from_rfc3339(&self.0)
            .map(drop)
            .map_err(|e| ValidationError::NotRfc3339 {
                field: field.to_string(),
                value: self.0.clone(),
                reason: e.to_string(),
            })
    }
}

impl From<&str> for Timestamp {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl JsonSchema for Timestamp {
    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "format": "date-time" })
    }
}

/// Checks a score in `0..=1`.
pub(crate) fn score(value: f64, field: &str) -> Result<(), ValidationError> {
    range(value, 0.0, 1.0, "0..=1", field)
}

/// Checks a percentage in `0..=100`.
pub(crate) fn percent(value: f64, field: &str) -> Result<(), ValidationError> {
    range(value, 0.0, 100.0, "0..=100", field)
}

fn range(
    value: f64,
    lo: f64,
    hi: f64,
    text: &'static str,
    field: &str,
) -> Result<(), ValidationError> {
    if (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(ValidationError::OutOfRange {
            field: field.to_string(),
            value,
            range: text,
        })
    }
}

/// Checks an optional score.
pub(crate) fn opt_score(value: Option<f64>, field: &str) -> Result<(), ValidationError> {
    value.map_or(Ok(()), |v| score(v, field))
}

/// Checks an optional id.
pub(crate) fn opt_id(value: Option<&Id>, field: &str) -> Result<(), ValidationError> {
    value.map_or(Ok(()), |v| v.check(field))
}

/// Checks that a required string has content.
pub(crate) fn non_empty(value: &str, field: &str) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        Err(ValidationError::Empty {
            field: field.to_string(),
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(Id::from("7415f61f-ab2f-4961-97f5-a5f5c6499a4d")
            .check("x")
            .is_ok());
        assert!(Id::from("7415F61F-AB2F-4961-97F5-A5F5C6499A4D")
            .check("x")
            .is_ok());
        for bad in [
            "uuid",
            "7415f61fab2f496197f5a5f5c6499a4d",
            "7415f61f-ab2f-4961-97f5-a5f5c6499a4g",
            "",
        ] {
            let e = Id::from(bad).check("event_id").unwrap_err();
            assert_eq!(e.field(), "event_id");
            assert!(e.to_string().starts_with("event_id: "), "{e}");
        }
        assert_eq!(Id::random().check("x"), Ok(()));
    }

    #[test]
    fn timestamps() {
        assert!(Timestamp::from("2025-10-20T18:30:00.123Z")
            .check("t")
            .is_ok());
        assert!(Timestamp::from("2025-10-20T18:30:00+02:00")
            .check("t")
            .is_ok());
        assert!(Timestamp::from("2025-10-20 18:30:00").check("t").is_err());
        assert!(Timestamp::from("2025-10-20T18:30:00").check("t").is_err());
        let now = Timestamp::now();
        assert!(now.check("t").is_ok(), "{now}");
        assert!(now.as_str().ends_with('Z'));
    }

    #[test]
    fn scores() {
        assert!(score(0.0, "s").is_ok());
        assert!(score(1.0, "s").is_ok());
        let e = score(1.5, "confidence_score").unwrap_err();
        assert_eq!(e.to_string(), "confidence_score: 1.5 is outside 0..=1");
        assert!(score(-0.1, "s").is_err());
        assert!(percent(87.5, "p").is_ok());
        assert!(percent(100.5, "p").is_err());
        assert_eq!(
            non_empty(" ", "agent").unwrap_err().to_string(),
            "agent: must not be empty"
        );
    }
}
