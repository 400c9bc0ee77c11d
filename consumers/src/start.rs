//! Where a group starts on a partition it holds nothing for (`START_FROM`).

use crate::config::ConfigError;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The start position of a group on a partition without stored offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// The oldest record the log still holds (sinks that must not lose data).
    Earliest,
    /// Only records produced from now on.
    Latest,
    /// The first record not older than this (a new alerting group need not replay a
    /// year of failures).
    NotOlderThan(Duration),
}

impl FromStr for StartFrom {
    type Err = ConfigError;

    /// `earliest`, `latest`, or a duration: `90s`, `30m`, `24h`, `7d`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        match s {
            "earliest" => return Ok(StartFrom::Earliest),
            "latest" => return Ok(StartFrom::Latest),
            _ => {}
        }
        let bad = || {
            ConfigError::new(
                "START_FROM",
                format!("{s:?} is not earliest, latest or a duration such as 30m, 24h, 7d"),
            )
        };
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (n, unit) = s.split_at(split);
        let n: u64 = n.parse().map_err(|_| bad())?;
        let secs = match unit {
            "s" => n,
            "m" => n * 60,
            "h" => n * 3600,
            "d" => n * 86_400,
            _ => return Err(bad()),
        };
        if secs == 0 {
            return Err(bad());
        }
        Ok(StartFrom::NotOlderThan(Duration::from_secs(secs)))
    }
}

impl fmt::Display for StartFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartFrom::Earliest => f.write_str("earliest"),
            StartFrom::Latest => f.write_str("latest"),
            StartFrom::NotOlderThan(d) => write!(f, "{}s", d.as_secs()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_positions_and_durations() {
        assert_eq!("earliest".parse(), Ok(StartFrom::Earliest));
        assert_eq!("latest".parse(), Ok(StartFrom::Latest));
        assert_eq!(
            "24h".parse(),
            Ok(StartFrom::NotOlderThan(Duration::from_secs(86_400)))
        );
        assert_eq!(
            "7d".parse(),
            Ok(StartFrom::NotOlderThan(Duration::from_secs(7 * 86_400)))
        );
        for bad in ["", "soon", "5", "0h", "3w", "-1h"] {
            let e = bad.parse::<StartFrom>().unwrap_err();
            assert_eq!(e.setting, "START_FROM", "{bad}");
        }
    }
}
