//! Resolving server hosts (A/AAAA through the system resolver), with a deadline.

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
