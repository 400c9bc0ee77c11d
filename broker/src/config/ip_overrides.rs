//! `max.connections.per.ip.overrides`: `host:count,…`, a per-address exception to
//! `max.connections.per.ip` (a host name stands for every address it resolves to).

use std::net::{IpAddr, ToSocketAddrs};

/// Per-address connection limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpOverrides(Vec<(IpAddr, usize)>);

impl IpOverrides {
    /// Parses `host:count,…` as Kafka reads it; `Err` gives Kafka's reason.
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (host, count) = entry
                .rsplit_once(':')
                .ok_or_else(|| format!("`{entry}` is not host:count"))?;
            let count: usize = count
                .trim()
                .parse()
                .map_err(|_| format!("`{count}` in `{entry}` is not a number of connections"))?;
            let host = host.trim().trim_start_matches('[').trim_end_matches(']');
            let ips: Vec<IpAddr> = match host.parse::<IpAddr>() {
                Ok(ip) => vec![ip],
                Err(_) => (host, 0)
                    .to_socket_addrs()
                    .map_err(|e| format!("Unable to resolve address {host}: {e}"))?
                    .map(|a| a.ip())
                    .collect(),
            };
            out.extend(ips.into_iter().map(|ip| (ip, count)));
        }
        Ok(Self(out))
    }

    /// The limit for `ip`: its override, else `default`.
    pub fn limit(&self, ip: IpAddr, default: usize) -> usize {
        self.0
            .iter()
            .find(|(o, _)| *o == ip)
            .map_or(default, |(_, n)| *n)
    }

    /// As the config is written back: `ip:count,…`.
    pub fn render(&self) -> String {
        self.0
            .iter()
            .map(|(ip, n)| match ip {
                IpAddr::V6(_) => format!("[{ip}]:{n}"),
                IpAddr::V4(_) => format!("{ip}:{n}"),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_names_with_their_counts() {
        let o = IpOverrides::parse("127.0.0.2:5, [::1]:7 ,localhost:3").unwrap();
        assert_eq!(o.limit([127, 0, 0, 2].into(), 100), 5);
        assert_eq!(o.limit("::1".parse().unwrap(), 100), 7);
        assert_eq!(o.limit([127, 0, 0, 1].into(), 100), 3, "localhost resolved");
        assert_eq!(o.limit([10, 0, 0, 1].into(), 100), 100);
        assert!(IpOverrides::parse("").unwrap().0.is_empty());
        for bad in ["127.0.0.1", "127.0.0.1:many", "no-such-host.invalid:3"] {
            assert!(IpOverrides::parse(bad).is_err(), "{bad}");
        }
    }
}
