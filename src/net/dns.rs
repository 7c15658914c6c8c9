//! Resolving server hosts (A/AAAA through the system resolver), with a deadline.

use crate::model::Family;
use std::io;
use std::net::{IpAddr, SocketAddr};

use tokio::time::Instant;

use crate::ice_url::{Host, ServerUrl};

/// Which address families to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Families {
    /// Use IPv4.
    pub v4: bool,
    /// Use IPv6.
    pub v6: bool,
}

impl Families {
    /// The families allowed, IPv4 first.
    pub fn list(&self) -> Vec<Family> {
        [(self.v4, Family::Ipv4), (self.v6, Family::Ipv6)]
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, f)| f)
            .collect()
    }

    /// Whether `ip` is of an allowed family.
    pub fn allows(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(_) => self.v4,
            IpAddr::V6(_) => self.v6,
        }
    }
}

/// Why a lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The resolver failed (no such name, no server, ...).
    #[error("could not resolve {host}: {detail}")]
    Failed {
        /// The host name.
        host: String,
        /// The resolver's message.
        detail: String,
    },
    /// Addresses exist but none of an allowed family.
    #[error("{host} has no {family} address")]
    NoAddressOfFamily {
        /// The host name.
        host: String,
        /// "IPv4" or "IPv6".
        family: &'static str,
    },
    /// The deadline passed.
    #[error("resolving {host} timed out")]
    Timeout {
        /// The host name.
        host: String,
    },
}

/// Resolve the URL's host to socket addresses of the allowed families, deduplicated, in
/// resolver order.
pub async fn resolve(
    url: &ServerUrl,
    fam: Families,
    deadline: Instant,
) -> Result<Vec<SocketAddr>, DnsError> {
    let name = match &url.host {
        Host::Ip(ip) => {
            return if fam.allows(*ip) {
                Ok(vec![SocketAddr::new(*ip, url.port)])
            } else {
                Err(DnsError::NoAddressOfFamily {
                    host: ip.to_string(),
                    family: family_name(fam),
                })
            }
        }
        Host::Name(n) => n.clone(),
    };
    let lookup = tokio::net::lookup_host((name.clone(), url.port));
    let addrs: io::Result<Vec<SocketAddr>> = match tokio::time::timeout_at(deadline, lookup).await {
        Ok(r) => r.map(|it| it.collect()),
        Err(_) => return Err(DnsError::Timeout { host: name }),
    };
    let addrs = addrs.map_err(|e| DnsError::Failed {
        host: name.clone(),
        detail: e.to_string(),
    })?;
    let mut out: Vec<SocketAddr> = vec![];
    for a in addrs.into_iter().filter(|a| fam.allows(a.ip())) {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    if out.is_empty() {
        return Err(DnsError::NoAddressOfFamily {
            host: name,
            family: family_name(fam),
        });
    }
    Ok(out)
}

fn family_name(fam: Families) -> &'static str {
    match (fam.v4, fam.v6) {
        (true, false) => "IPv4",
        (false, true) => "IPv6",
        _ => "usable",
    }
}

/// One SRV target (RFC 2782), in the order a client should try them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvTarget {
    /// Target host name, without the trailing dot.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Priority (lower first).
    pub priority: u16,
    /// Weight (higher first within a priority).
    pub weight: u16,
}

/// The SRV service label for a URL (RFC 5928 §3 for TURN, RFC 7064 §3.3 / RFC 5389 §9 for STUN):
/// `_turn._udp`, `_turn._tcp`, `_turns._tcp`, `_stun._udp`, `_stun._tcp`, `_stuns._tcp`.
pub fn srv_service(url: &ServerUrl) -> &'static str {
    use crate::ice_url::{Protocol, Scheme};
    match (url.scheme, url.protocol()) {
        (Scheme::Turn, Protocol::Udp) => "_turn._udp",
        (Scheme::Turn, _) => "_turn._tcp",
        (Scheme::Turns, _) => "_turns._tcp",
        (Scheme::Stun, Protocol::Udp) => "_stun._udp",
        (Scheme::Stun, _) => "_stun._tcp",
        (Scheme::Stuns, _) => "_stuns._tcp",
    }
}

/// Order SRV records as RFC 2782 asks: by priority, then by weight, heaviest first (a
/// deterministic stand-in for the weighted random choice; a prober tries them all anyway).
pub fn order_srv(mut targets: Vec<SrvTarget>) -> Vec<SrvTarget> {
    targets.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then(b.weight.cmp(&a.weight))
            .then(a.host.cmp(&b.host))
    });
    // RFC 2782: a target of "." means the service is decidedly not available.
    targets.retain(|t| !t.host.is_empty());
    targets
}

/// Look up the SRV records for `url`'s service at its host with the system resolver
/// (`/etc/resolv.conf`). `Ok(empty)` when the name has no such records.
pub async fn srv_lookup(url: &ServerUrl, deadline: Instant) -> Result<Vec<SrvTarget>, DnsError> {
    use hickory_resolver::proto::rr::RData;
    use hickory_resolver::TokioResolver;
    let Host::Name(host) = &url.host else {
        return Ok(vec![]);
    };
    let name = format!("{}.{}.", srv_service(url), host);
    let failed = |detail: String| DnsError::Failed {
        host: name.clone(),
        detail,
    };
    let resolver = TokioResolver::builder_tokio()
        .map_err(|e| failed(e.to_string()))?
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let lookup = match tokio::time::timeout_at(deadline, resolver.srv_lookup(name.as_str())).await {
        Err(_) => return Err(DnsError::Timeout { host: name }),
        Ok(Err(e)) if e.is_no_records_found() || e.is_nx_domain() => return Ok(vec![]),
        Ok(Err(e)) => return Err(failed(e.to_string())),
        Ok(Ok(l)) => l,
    };
    let targets = lookup
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(s) => Some(SrvTarget {
                host: s.target.to_utf8().trim_end_matches('.').to_string(),
                port: s.port,
                priority: s.priority,
                weight: s.weight,
            }),
            _ => None,
        })
        .collect();
    Ok(order_srv(targets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srv_service_names() {
        let cases = [
            ("turn:h", "_turn._udp"),
            ("turn:h?transport=tcp", "_turn._tcp"),
            ("turns:h", "_turns._tcp"),
            ("stun:h", "_stun._udp"),
            ("stun:h?transport=tcp", "_stun._tcp"),
            ("stuns:h", "_stuns._tcp"),
        ];
        for (u, want) in cases {
            assert_eq!(srv_service(&u.parse().unwrap()), want, "{u}");
        }
    }

    #[test]
    fn srv_order_is_priority_then_weight() {
        let t = |h: &str, priority, weight| SrvTarget {
            host: h.into(),
            port: 3478,
            priority,
            weight,
        };
        let got = order_srv(vec![
            t("c", 20, 100),
            t("a", 10, 1),
            t("b", 10, 50),
            t("", 5, 0),
        ]);
        let hosts: Vec<_> = got.iter().map(|t| t.host.as_str()).collect();
        assert_eq!(hosts, ["b", "a", "c"]);
    }
}
