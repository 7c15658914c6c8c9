//! Probe planning (pure): which URL to probe over which transport.
//!
//! Without `--all-transports` each URL is probed over its own transport, as given. With it, each
//! URL stands for the whole matrix of its host, because ops want to know every way in: UDP 3478,
//! TCP 3478 and TLS 5349 (RFC 5766 §17 / RFC 5389 §18.6 default ports). The URL's own transport
//! keeps the URL as given (and so its port); the other two use the default ports.
//!
//! Identical probes are planned once, in first-seen order: two targets are the same probe when
//! they agree on STUN-vs-TURN, host, port and transport (`turn:h` and `turn:h?transport=udp` are
//! one probe; `stun:h` and `turn:h` are two, because TURN goes on to allocate).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::ice_url::{Host, Protocol, Scheme, ServerUrl, DEFAULT_PORT, DEFAULT_TLS_PORT};
use crate::model::check::{DnsInfo, Stage};
use crate::net::tls::TlsOptions;
use crate::net::udp::MuxPool;
use crate::secret::Secret;

/// Settings shared by every row of a run.
///
/// Equality compares the settings, not the socket pool: `udp` is per-run plumbing (each run
/// gets a fresh one), so two configs that probe the same way are equal.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// Initial RTO over UDP.
    pub rto: Duration,
    /// TLS verification.
    pub tls: TlsOptions,
    /// Ask for an IPv6 relay (REQUESTED-ADDRESS-FAMILY).
    pub ipv6_relay: bool,
    /// Credentials came from a REST secret.
    pub rest_credentials: bool,
    /// Wall-clock time the run started (Unix seconds): recognises expired REST usernames.
    pub now_unix: u64,
    /// Longest wait for the echoes, within the deadline.
    pub echo_timeout: Duration,
    /// UDP sockets shared by the rows of one run ([`crate::check::run::check`] gives each run
    /// a fresh pool).
    pub udp: Arc<MuxPool>,
}

impl PartialEq for ProbeConfig {
    fn eq(&self, other: &Self) -> bool {
        // Destructured, so that a new field cannot be left out of the comparison unnoticed.
        let ProbeConfig {
            rto,
            tls,
            ipv6_relay,
            rest_credentials,
            now_unix,
            echo_timeout,
            udp: _,
        } = self;
        (
            rto,
            tls,
            ipv6_relay,
            rest_credentials,
            now_unix,
            echo_timeout,
        ) == (
            &other.rto,
            &other.tls,
            &other.ipv6_relay,
            &other.rest_credentials,
            &other.now_unix,
            &other.echo_timeout,
        )
    }
}

/// What one row probes: a target at one of its addresses.
#[derive(Debug, Clone)]
pub struct RowInput {
    /// The URL as given.
    pub url: ServerUrl,
    /// The URL probed for this transport.
    pub probed: ServerUrl,
    /// The server address.
    pub addr: SocketAddr,
    /// DNS stage for the host (shared by its rows).
    pub dns: Stage<DnsInfo>,
    /// TURN username.
    pub username: Option<String>,
    /// TURN credential.
    pub password: Option<Secret>,
}

/// One thing to probe: a server URL over one transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as given by the user (or the iceServers configuration).
    pub url: ServerUrl,
    /// The URL to probe for this transport: `url` itself for its own transport, else a URL of
    /// the same host spelling out the other transport on its default port.
    pub probed: ServerUrl,
    /// How the server is reached: `probed.protocol()`.
    pub transport: Protocol,
}

impl Target {
    /// The identity used for deduplication: STUN or TURN, host, port, transport.
    fn key(&self) -> (bool, &Host, u16, Protocol) {
        (
            self.probed.is_turn(),
            &self.probed.host,
            self.probed.port,
            self.transport,
        )
    }
}

/// The matrix order, also the order of rows per URL in the report.
const MATRIX: [Protocol; 3] = [Protocol::Udp, Protocol::Tcp, Protocol::Tls];

/// The URL that reaches `url`'s host over `transport` on the default port, keeping STUN-vs-TURN:
/// `turn:host?transport=udp`, `turn:host?transport=tcp`, `turns:host` for TURN URLs, and
/// `stun:host`, `stun:host?transport=tcp`, `stuns:host` for STUN URLs.
fn matrix_url(url: &ServerUrl, transport: Protocol) -> ServerUrl {
    let turn = url.is_turn();
    let (scheme, port, transport_param) = match (turn, transport) {
        (true, Protocol::Udp) => (Scheme::Turn, DEFAULT_PORT, Some(Protocol::Udp)),
        (true, Protocol::Tcp) => (Scheme::Turn, DEFAULT_PORT, Some(Protocol::Tcp)),
        (true, Protocol::Tls) => (Scheme::Turns, DEFAULT_TLS_PORT, None),
        (false, Protocol::Udp) => (Scheme::Stun, DEFAULT_PORT, None),
        (false, Protocol::Tcp) => (Scheme::Stun, DEFAULT_PORT, Some(Protocol::Tcp)),
        (false, Protocol::Tls) => (Scheme::Stuns, DEFAULT_TLS_PORT, None),
        // Not in MATRIX (browsers do not use TURN over DTLS); only a URL's own transport.
        (_, Protocol::Dtls) => (Scheme::Turns, DEFAULT_TLS_PORT, Some(Protocol::Udp)),
    };
    ServerUrl {
        scheme,
        host: url.host.clone(),
        port,
        transport_param,
    }
}

/// Expand URLs into targets, in the order given.
///
/// Each URL gives its own transport; with `all_transports` it gives UDP, TCP and TLS on its host
/// (in that order), the URL's own transport probing the URL as given (so a non-default port is
/// kept for that transport only). Identical probes are deduplicated, keeping the first.
pub fn plan(urls: &[ServerUrl], all_transports: bool) -> Vec<Target> {
    let mut out: Vec<Target> = Vec::new();
    for url in urls {
        let own = url.protocol();
        let mut transports: Vec<Protocol> = if all_transports {
            MATRIX.to_vec()
        } else {
            vec![]
        };
        // A DTLS URL is outside the matrix: it is probed as given, after it.
        if !transports.contains(&own) {
            transports.push(own);
        }
        for transport in transports {
            let probed = if transport == own {
                url.clone()
            } else {
                matrix_url(url, transport)
            };
            let target = Target {
                url: url.clone(),
                probed,
                transport,
            };
            if !out.iter().any(|t| t.key() == target.key()) {
                out.push(target);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> ServerUrl {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// `(given, probed, transport)` triples, compared as a whole plan.
    type Want = &'static [(&'static str, &'static str, Protocol)];

    #[test]
    fn whole_plans() {
        use Protocol::*;
        let cases: &[(&str, &[&str], bool, Want)] = &[
            ("nothing", &[], true, &[]),
            (
                "own transport only",
                &["turn:h?transport=udp", "turn:h?transport=tcp", "turns:h"],
                false,
                &[
                    ("turn:h?transport=udp", "turn:h?transport=udp", Udp),
                    ("turn:h?transport=tcp", "turn:h?transport=tcp", Tcp),
                    ("turns:h", "turns:h", Tls),
                ],
            ),
            (
                "turn matrix",
                &["turn:h"],
                true,
                &[
                    ("turn:h", "turn:h", Udp),
                    ("turn:h", "turn:h?transport=tcp", Tcp),
                    ("turn:h", "turns:h", Tls),
                ],
            ),
            (
                "a DTLS URL is outside the matrix: its host's matrix, then the URL itself",
                &["turns:h?transport=udp"],
                true,
                &[
                    ("turns:h?transport=udp", "turn:h?transport=udp", Udp),
                    ("turns:h?transport=udp", "turn:h?transport=tcp", Tcp),
                    ("turns:h?transport=udp", "turns:h", Tls),
                    ("turns:h?transport=udp", "turns:h?transport=udp", Dtls),
                ],
            ),
            (
                "a DTLS URL alone",
                &["turns:h?transport=udp"],
                false,
                &[("turns:h?transport=udp", "turns:h?transport=udp", Dtls)],
            ),
            (
                "stun matrix",
                &["stun:h"],
                true,
                &[
                    ("stun:h", "stun:h", Udp),
                    ("stun:h", "stun:h?transport=tcp", Tcp),
                    ("stun:h", "stuns:h", Tls),
                ],
            ),
            (
                "stuns: URL expands to the same matrix, keeping the given URL for TLS",
                &["stuns:h"],
                true,
                &[
                    ("stuns:h", "stun:h", Udp),
                    ("stuns:h", "stun:h?transport=tcp", Tcp),
                    ("stuns:h", "stuns:h", Tls),
                ],
            ),
            (
                "non-default port kept for its own transport only",
                &["turn:h:443?transport=tcp"],
                true,
                &[
                    ("turn:h:443?transport=tcp", "turn:h?transport=udp", Udp),
                    ("turn:h:443?transport=tcp", "turn:h:443?transport=tcp", Tcp),
                    ("turn:h:443?transport=tcp", "turns:h", Tls),
                ],
            ),
            (
                "turns: with ?transport=tcp is TLS; the given spelling is kept",
                &["turns:h:443?transport=tcp"],
                true,
                &[
                    ("turns:h:443?transport=tcp", "turn:h?transport=udp", Udp),
                    ("turns:h:443?transport=tcp", "turn:h?transport=tcp", Tcp),
                    (
                        "turns:h:443?transport=tcp",
                        "turns:h:443?transport=tcp",
                        Tls,
                    ),
                ],
            ),
            (
                "the matrix of the first URL covers the later ones",
                &["turn:h", "turns:h", "turn:h?transport=tcp"],
                true,
                &[
                    ("turn:h", "turn:h", Udp),
                    ("turn:h", "turn:h?transport=tcp", Tcp),
                    ("turn:h", "turns:h", Tls),
                ],
            ),
            (
                "spellings of one probe are deduplicated without the matrix too",
                &[
                    "turn:h",
                    "turn:h?transport=udp",
                    "turns:h?transport=tcp",
                    "turns:h",
                ],
                false,
                &[
                    ("turn:h", "turn:h", Udp),
                    ("turns:h?transport=tcp", "turns:h?transport=tcp", Tls),
                ],
            ),
            (
                "STUN and TURN on one port are different probes",
                &["stun:h", "turn:h"],
                false,
                &[("stun:h", "stun:h", Udp), ("turn:h", "turn:h", Udp)],
            ),
            (
                "hosts are kept apart, in the order given; IPv6 literals survive",
                &["turn:[2001:db8::1]:3479", "turn:b"],
                true,
                &[
                    ("turn:[2001:db8::1]:3479", "turn:[2001:db8::1]:3479", Udp),
                    (
                        "turn:[2001:db8::1]:3479",
                        "turn:[2001:db8::1]?transport=tcp",
                        Tcp,
                    ),
                    ("turn:[2001:db8::1]:3479", "turns:[2001:db8::1]", Tls),
                    ("turn:b", "turn:b", Udp),
                    ("turn:b", "turn:b?transport=tcp", Tcp),
                    ("turn:b", "turns:b", Tls),
                ],
            ),
            (
                "a matrix URL with a non-default port does not swallow the default one",
                &["turn:h:3479", "turn:h"],
                true,
                &[
                    ("turn:h:3479", "turn:h:3479", Udp),
                    ("turn:h:3479", "turn:h?transport=tcp", Tcp),
                    ("turn:h:3479", "turns:h", Tls),
                    ("turn:h", "turn:h", Udp),
                ],
            ),
        ];
        for (name, urls, all, want) in cases {
            let urls: Vec<ServerUrl> = urls.iter().map(|s| u(s)).collect();
            let got = plan(&urls, *all);
            let want: Vec<Target> = want
                .iter()
                .map(|(given, probed, transport)| Target {
                    url: u(given),
                    probed: u(probed),
                    transport: *transport,
                })
                .collect();
            assert_eq!(got, want, "{name}");
            for t in &got {
                assert_eq!(t.probed.protocol(), t.transport, "{name}: {t:?}");
            }
        }
    }
}
