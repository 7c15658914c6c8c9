//! ICE candidates as iceprobe reports them: type, addresses, priority (RFC 8445 §5.1.2),
//! foundation (RFC 8445 §5.1.1.3) and where they came from.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use crate::ice_url::{Protocol, ServerUrl};

/// Candidate type (RFC 8445 §5.1.1), with the SDP words as names.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum CandidateType {
    /// An address on a local interface.
    Host,
    /// Server-reflexive: our address as a STUN server saw it.
    Srflx,
    /// Peer-reflexive: learnt from a peer's connectivity check.
    Prflx,
    /// Relayed: an address allocated on a TURN server.
    Relay,
}

impl CandidateType {
    /// The SDP word.
    pub fn as_str(self) -> &'static str {
        match self {
            CandidateType::Host => "host",
            CandidateType::Srflx => "srflx",
            CandidateType::Prflx => "prflx",
            CandidateType::Relay => "relay",
        }
    }
}

impl fmt::Display for CandidateType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Type preference (RFC 8445 §5.1.2.2), using the values browsers (libwebrtc) use so that our
/// priorities match what a browser would put in its SDP. Relays are ranked by the protocol that
/// reaches the TURN server: UDP 2, TCP 1, TLS 0.
pub fn type_preference(kind: CandidateType, relay_protocol: Option<Protocol>) -> u32 {
    match kind {
        CandidateType::Host => 126,
        CandidateType::Prflx => 110,
        CandidateType::Srflx => 100,
        CandidateType::Relay => match relay_protocol {
            Some(Protocol::Udp) | None => 2,
            Some(Protocol::Tcp) => 1,
            // Browsers gather no relay over DTLS; ranked with TLS should one ever appear.
            Some(Protocol::Tls | Protocol::Dtls) => 0,
        },
    }
}

/// Local preference (RFC 8445 §5.1.2.1): IPv6 above IPv4 (RFC 8421 §4), loopback last, and a
/// little lower for each later interface so that every base gets a distinct value.
pub fn local_preference(ip: IpAddr, interface_index: u32) -> u32 {
    let family = match ip {
        _ if ip.is_loopback() => 20_000,
        IpAddr::V6(_) => 60_000,
        IpAddr::V4(_) => 50_000,
    };
    family - (interface_index.min(1_000) * 8)
}

/// Priority (RFC 8445 §5.1.2.1):
/// `2^24 * type pref + 2^8 * local pref + (256 - component)`.
pub fn priority(type_pref: u32, local_pref: u32, component: u16) -> u32 {
    (type_pref.min(126) << 24)
        + (local_pref.min(65_535) << 8)
        + (256 - u32::from(component.clamp(1, 256)))
}

/// Foundation (RFC 8445 §5.1.1.3): equal for candidates of the same type, base IP, server and
/// transport, different otherwise. A stable FNV-1a hash of those, printed in decimal.
pub fn foundation(
    kind: CandidateType,
    base: IpAddr,
    server: Option<IpAddr>,
    proto: Protocol,
    relay: Option<Protocol>,
) -> String {
    let key = format!(
        "{}|{}|{}|{}|{}",
        kind,
        base,
        server.map(|s| s.to_string()).unwrap_or_default(),
        proto,
        relay.map(|r| r.as_str()).unwrap_or("")
    );
    let mut h: u32 = 0x811c_9dc5;
    for b in key.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h.to_string()
}

/// One gathered candidate.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Candidate {
    /// host, srflx, prflx or relay.
    #[serde(rename = "type")]
    pub kind: CandidateType,
    /// Candidate transport as in SDP: `udp` (relayed candidates are always UDP allocations).
    pub transport: Protocol,
    /// Address.
    pub address: IpAddr,
    /// Port.
    pub port: u16,
    /// Related address (raddr): the base for srflx, the mapped address for relay.
    pub related_address: Option<IpAddr>,
    /// Related port (rport).
    pub related_port: Option<u16>,
    /// For relay candidates: how the TURN server was reached (udp, tcp, tls).
    pub relay_protocol: Option<Protocol>,
    /// Priority (RFC 8445 §5.1.2).
    pub priority: u32,
    /// Foundation (RFC 8445 §5.1.1.3).
    pub foundation: String,
    /// Component id; 1 (RTP / data) for everything iceprobe gathers.
    pub component: u16,
    /// The server URL the candidate came from (none for host candidates).
    pub url: Option<String>,
    /// Milliseconds since the run started, with microsecond resolution.
    pub elapsed_ms: f64,
}

impl Candidate {
    /// Build a candidate and compute its priority and foundation.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kind: CandidateType,
        addr: SocketAddr,
        related: Option<SocketAddr>,
        base_ip: IpAddr,
        relay_protocol: Option<Protocol>,
        server: Option<(&ServerUrl, IpAddr)>,
        interface_index: u32,
        elapsed_ms: f64,
    ) -> Self {
        let component = 1;
        let priority = priority(
            type_preference(kind, relay_protocol),
            local_preference(base_ip, interface_index),
            component,
        );
        Candidate {
            kind,
            transport: Protocol::Udp,
            address: addr.ip(),
            port: addr.port(),
            related_address: related.map(|r| r.ip()),
            related_port: related.map(|r| r.port()),
            relay_protocol,
            priority,
            foundation: foundation(
                kind,
                base_ip,
                server.map(|s| s.1),
                Protocol::Udp,
                relay_protocol,
            ),
            component,
            url: server.map(|s| s.0.to_string()),
            elapsed_ms,
        }
    }

    /// The `a=candidate` line a browser would put in SDP (RFC 8839 §5.1), without the `a=`.
    pub fn sdp(&self) -> String {
        let mut s = format!(
            "candidate:{} {} {} {} {} {} typ {}",
            self.foundation,
            self.component,
            self.transport,
            self.priority,
            self.address,
            self.port,
            self.kind
        );
        if let (Some(a), Some(p)) = (self.related_address, self.related_port) {
            s.push_str(&format!(" raddr {a} rport {p}"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_formula_and_browser_order() {
        // RFC 8445 §5.1.2.1 with host type pref 126, local pref 65535, component 1.
        assert_eq!(priority(126, 65_535, 1), 2_130_706_431);
        let v4: IpAddr = "198.18.0.10".parse().unwrap();
        let p = |k, r| priority(type_preference(k, r), local_preference(v4, 0), 1);
        let ordered = [
            p(CandidateType::Host, None),
            p(CandidateType::Prflx, None),
            p(CandidateType::Srflx, None),
            p(CandidateType::Relay, Some(Protocol::Udp)),
            p(CandidateType::Relay, Some(Protocol::Tcp)),
            p(CandidateType::Relay, Some(Protocol::Tls)),
        ];
        assert!(ordered.windows(2).all(|w| w[0] > w[1]), "{ordered:?}");
        // Chrome's srflx for one IPv4 interface: (100 << 24) + (50000 << 8) + 255.
        assert_eq!(p(CandidateType::Srflx, None), 1_690_521_855);
    }

    #[test]
    fn ipv6_above_ipv4_and_interfaces_distinct() {
        let v6: IpAddr = "fd00::1".parse().unwrap();
        let v4: IpAddr = "198.18.0.10".parse().unwrap();
        assert!(local_preference(v6, 0) > local_preference(v4, 0));
        assert!(local_preference(v4, 0) > local_preference(v4, 1));
        assert!(local_preference(v4, 5) > local_preference("127.0.0.1".parse().unwrap(), 0));
    }

    #[test]
    fn foundation_rules() {
        let b: IpAddr = "198.18.0.10".parse().unwrap();
        let s1: IpAddr = "198.18.0.1".parse().unwrap();
        let s2: IpAddr = "198.18.0.2".parse().unwrap();
        let f = |k, s, r| foundation(k, b, s, Protocol::Udp, r);
        assert_eq!(
            f(CandidateType::Srflx, Some(s1), None),
            f(CandidateType::Srflx, Some(s1), None)
        );
        assert_ne!(
            f(CandidateType::Srflx, Some(s1), None),
            f(CandidateType::Srflx, Some(s2), None)
        );
        assert_ne!(
            f(CandidateType::Srflx, Some(s1), None),
            f(CandidateType::Relay, Some(s1), Some(Protocol::Udp))
        );
        assert_ne!(
            f(CandidateType::Relay, Some(s1), Some(Protocol::Udp)),
            f(CandidateType::Relay, Some(s1), Some(Protocol::Tls))
        );
    }

    #[test]
    fn sdp_line() {
        let url: ServerUrl = "stun:198.18.0.1".parse().unwrap();
        let c = Candidate::new(
            CandidateType::Srflx,
            "198.18.0.254:40000".parse().unwrap(),
            Some("100.64.0.2:5000".parse().unwrap()),
            "100.64.0.2".parse().unwrap(),
            None,
            Some((&url, "198.18.0.1".parse().unwrap())),
            0,
            1.5,
        );
        let line = c.sdp();
        assert!(
            line.ends_with(
                " 1 udp 1690521855 198.18.0.254 40000 typ srflx raddr 100.64.0.2 rport 5000"
            ),
            "{line}"
        );
        assert_eq!(c.url.as_deref(), Some("stun:198.18.0.1"));
    }
}
