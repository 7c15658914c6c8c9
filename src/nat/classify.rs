//! The pure NAT classifier: recorded [`Observations`] in, a [`NatVerdict`] out.
//!
//! Terms are RFC 4787's (§4.1 mapping, §5 filtering); the tests are RFC 5780's (§4.3 mapping,
//! §4.4 filtering, §4.5 hairpinning, §4.6 lifetime). Every reply is validated before it counts:
//! its UDP source and its RESPONSE-ORIGIN (RFC 5780 §7.3) must be the address the test asked
//! for, so a server that ignores CHANGE-REQUEST (RFC 5780 §7.2) yields "inconclusive", never a
//! false "endpoint-independent". Anything not measured is [`Determination::NotChecked`] with the
//! reason: unknown is never false.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::observe::{Answer, Change, Exchange, Observations, Rfc5780};

/// A result that may not have been measured. Unknown is never reported as false.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Determination<T> {
    /// Determined from validated observations.
    Known {
        /// The result.
        value: T,
        /// What was observed that shows it.
        evidence: String,
    },
    /// Measured, but the observations do not prove anything (a lying server, missing or
    /// contradictory answers).
    Inconclusive {
        /// Why nothing can be concluded.
        reason: String,
    },
    /// Not measured, and why (server lacks RFC 5780, not asked for, nothing answered).
    NotChecked {
        /// Why it was not measured.
        reason: String,
    },
}

impl<T> Determination<T> {
    /// A known value with its evidence.
    pub fn known(value: T, evidence: impl Into<String>) -> Self {
        Determination::Known {
            value,
            evidence: evidence.into(),
        }
    }

    /// An inconclusive result with its reason.
    pub fn inconclusive(reason: impl Into<String>) -> Self {
        Determination::Inconclusive {
            reason: reason.into(),
        }
    }

    /// A result not checked, with the reason.
    pub fn not_checked(reason: impl Into<String>) -> Self {
        Determination::NotChecked {
            reason: reason.into(),
        }
    }

    /// The value when known.
    pub fn value(&self) -> Option<&T> {
        match self {
            Determination::Known { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Whether the value is known.
    pub fn is_known(&self) -> bool {
        matches!(self, Determination::Known { .. })
    }

    /// The evidence (known) or the reason (inconclusive, not checked).
    pub fn text(&self) -> &str {
        match self {
            Determination::Known { evidence, .. } => evidence,
            Determination::Inconclusive { reason } | Determination::NotChecked { reason } => reason,
        }
    }

    /// The same status and text with another value type (for unknowns only).
    fn cast<U>(&self) -> Option<Determination<U>> {
        match self {
            Determination::Known { .. } => None,
            Determination::Inconclusive { reason } => Some(Determination::inconclusive(reason)),
            Determination::NotChecked { reason } => Some(Determination::not_checked(reason)),
        }
    }
}

/// NAT mapping behaviour (RFC 4787 §4.1): when is the same external address reused?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MappingBehavior {
    /// One mapping for every destination (RFC 4787 §4.1 "Endpoint-Independent Mapping").
    EndpointIndependent,
    /// A mapping per destination IP ("Address-Dependent Mapping").
    AddressDependent,
    /// A mapping per destination IP and port ("Address and Port-Dependent Mapping").
    AddressAndPortDependent,
    /// The mapping varies by destination, but the observations (servers on different IPs only)
    /// cannot tell address-dependent from address-and-port-dependent.
    DestinationDependent,
}

/// NAT filtering behaviour (RFC 4787 §5): which inbound packets pass an existing mapping?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FilteringBehavior {
    /// Packets from any address and port ("Endpoint-Independent Filtering").
    EndpointIndependent,
    /// Only from IPs we sent to ("Address-Dependent Filtering").
    AddressDependent,
    /// Only from the exact IP and port we sent to ("Address and Port-Dependent Filtering").
    AddressAndPortDependent,
}

/// How the mapped address changed across the servers of the multi-server comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DestinationDependence {
    /// The same mapped address for every server.
    Constant,
    /// The mapped IP changed; the port did not.
    VariesByIp,
    /// The mapped port changed; the IP did not.
    VariesByPort,
    /// Both the mapped IP and port changed.
    VariesByIpAndPort,
}

/// How the NAT picks external ports (RFC 4787 §4.2.1 port preservation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortAllocation {
    /// The mapped port is the local port.
    Preserved,
    /// New mappings get small positive port steps (predictable).
    Sequential,
    /// New mappings get unrelated ports.
    Random,
}

/// What the idle lifetime search (RFC 5780 §4.6) bracketed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifetimeRange {
    /// The mapping survived this many idle seconds.
    pub alive_after_s: Option<f64>,
    /// The mapping had expired after this many idle seconds.
    pub expired_after_s: Option<f64>,
}

/// The classic (RFC 3489) name, given only as a hint: RFC 4787 explains why it is too coarse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClassicName {
    /// No NAT and no filtering.
    OpenInternet,
    /// No NAT, but a firewall filters inbound packets.
    SymmetricUdpFirewall,
    /// Endpoint-independent mapping and filtering.
    FullCone,
    /// Endpoint-independent mapping, address-dependent filtering.
    RestrictedCone,
    /// Endpoint-independent mapping, address-and-port-dependent filtering.
    PortRestrictedCone,
    /// Mapping that is not endpoint-independent.
    Symmetric,
    /// No UDP answer at all.
    UdpBlocked,
}

impl fmt::Display for ClassicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClassicName::OpenInternet => "open internet (no NAT)",
            ClassicName::SymmetricUdpFirewall => "symmetric UDP firewall (no NAT)",
            ClassicName::FullCone => "full cone NAT",
            ClassicName::RestrictedCone => "restricted cone NAT",
            ClassicName::PortRestrictedCone => "port-restricted cone NAT",
            ClassicName::Symmetric => "symmetric NAT",
            ClassicName::UdpBlocked => "UDP blocked",
        })
    }
}

impl fmt::Display for MappingBehavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MappingBehavior::EndpointIndependent => "endpoint-independent",
            MappingBehavior::AddressDependent => "address-dependent",
            MappingBehavior::AddressAndPortDependent => "address-and-port-dependent",
            MappingBehavior::DestinationDependent => "destination-dependent",
        })
    }
}

impl fmt::Display for FilteringBehavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FilteringBehavior::EndpointIndependent => "endpoint-independent",
            FilteringBehavior::AddressDependent => "address-dependent",
            FilteringBehavior::AddressAndPortDependent => "address-and-port-dependent",
        })
    }
}

impl fmt::Display for DestinationDependence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DestinationDependence::Constant => "constant",
            DestinationDependence::VariesByIp => "varies by destination (mapped IP)",
            DestinationDependence::VariesByPort => "varies by destination (mapped port)",
            DestinationDependence::VariesByIpAndPort => {
                "varies by destination (mapped IP and port)"
            }
        })
    }
}

impl fmt::Display for PortAllocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PortAllocation::Preserved => "preserved",
            PortAllocation::Sequential => "sequential",
            PortAllocation::Random => "random",
        })
    }
}

/// How sure the verdict is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConfidenceLevel {
    /// Two independent methods agree, or the evidence leaves no alternative.
    High,
    /// One method with validated replies.
    Medium,
    /// Suggestive only, or nothing determined.
    Low,
}

/// The confidence level and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confidence {
    /// The level.
    pub level: ConfidenceLevel,
    /// Why this level.
    pub reason: String,
}

/// Everything concluded for one address family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatVerdict {
    /// `ipv4` or `ipv6`, as in the observations.
    pub family: String,
    /// The first validated mapped address (XOR-MAPPED-ADDRESS), when any server answered.
    pub mapped_address: Option<SocketAddr>,
    /// The final mapping behaviour: RFC 5780 tests and the multi-server comparison combined.
    pub mapping: Determination<MappingBehavior>,
    /// Filtering behaviour (RFC 5780 §4.4 only: a comparison cannot see filtering).
    pub filtering: Determination<FilteringBehavior>,
    /// Mapping behaviour from the RFC 5780 §4.3 tests alone.
    pub rfc5780_mapping: Determination<MappingBehavior>,
    /// The multi-server comparison (one socket, one Binding per server).
    pub multi_server: Determination<DestinationDependence>,
    /// Port allocation seen in the multi-server comparison.
    pub port_allocation: Determination<PortAllocation>,
    /// Hairpinning (RFC 5780 §4.5; RFC 4787 §6).
    pub hairpin: Determination<bool>,
    /// A NAT is present: the mapped address is not one of this host's addresses.
    pub nat_present: Determination<bool>,
    /// The mapped address is private or CGNAT: another NAT beyond this one.
    pub cgnat_or_double_nat: Determination<bool>,
    /// MAPPED-ADDRESS differs from XOR-MAPPED-ADDRESS: an ALG rewrites STUN packets.
    pub alg_suspected: Determination<bool>,
    /// No Binding request got any answer over UDP.
    pub udp_blocked: Determination<bool>,
    /// Binding over TCP, tried when UDP got no answer.
    pub tcp_fallback: Determination<bool>,
    /// Idle mapping lifetime (RFC 5780 §4.6).
    pub lifetime: Determination<LifetimeRange>,
    /// The classic name, a hint only.
    pub classic_name: Determination<ClassicName>,
    /// How sure the verdict is.
    pub confidence: Confidence,
    /// What this means for peer-to-peer calls, in plain words.
    pub forecast: String,
}

/// Largest step between consecutive new mappings' ports still called sequential: other hosts
/// behind the NAT take ports in between (RFC 4787 §4.2.1 does not require any pattern).
pub const SEQUENTIAL_MAX_STEP: i32 = 32;

/// A reply checked against the address the test asked for.
enum Checked {
    /// From the right address; carries XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS).
    Valid(Option<SocketAddr>),
    /// From, or claiming, another address: the message says which.
    WrongSource(String),
    /// An error response.
    Error(u16, String),
    /// No answer.
    Timeout,
}

/// Validate a reply: the UDP source and RESPONSE-ORIGIN (when present, RFC 5780 §7.3) must both
/// be `expected`. `primary` names the server's primary address in the message.
fn check(answer: &Answer, expected: SocketAddr, primary: SocketAddr) -> Checked {
    match answer {
        Answer::Reply {
            from,
            response_origin,
            ..
        } => {
            let name = |a: SocketAddr| {
                if a == primary && expected != primary {
                    format!("{a}, its primary address")
                } else {
                    a.to_string()
                }
            };
            if *from != expected {
                Checked::WrongSource(format!(
                    "was answered from {}, not from {expected}",
                    name(*from)
                ))
            } else if let Some(ro) = response_origin.filter(|ro| *ro != expected) {
                Checked::WrongSource(format!(
                    "was answered with RESPONSE-ORIGIN {}, not {expected}",
                    name(ro)
                ))
            } else {
                Checked::Valid(answer.mapped())
            }
        }
        Answer::Error { code, reason } => Checked::Error(*code, reason.clone()),
        Answer::Timeout => Checked::Timeout,
    }
}

/// Why an address is not public, or `None` when it is (RFC 1918, RFC 6598, RFC 4193, ...).
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_private() {
                Some("private (RFC 1918)")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
                Some("CGNAT shared address space (100.64.0.0/10, RFC 6598)")
            } else if v4.is_unspecified() {
                Some("unspecified")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return non_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if (s[0] & 0xfe00) == 0xfc00 {
                Some("unique local (fc00::/7)")
            } else if (s[0] & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else {
                None
            }
        }
    }
}

const NO_5780: &str = "server does not support RFC 5780";
const LIES: &str = "server does not honour CHANGE-REQUEST";

/// Per-server RFC 5780 results.
struct ServerResult {
    mapping: Determination<MappingBehavior>,
    filtering: Determination<FilteringBehavior>,
}

impl ServerResult {
    fn both(d: Determination<()>) -> Self {
        ServerResult {
            mapping: d.cast().unwrap_or_else(|| Determination::inconclusive("")),
            filtering: d.cast().unwrap_or_else(|| Determination::inconclusive("")),
        }
    }
}

/// Whether `e` is a plain (no CHANGE-REQUEST) Binding answered from where it was sent, with a
/// mapped address: the replies every mapped-address finding uses.
fn direct_reply(e: &Exchange) -> Option<SocketAddr> {
    match &e.answer {
        Answer::Reply { from, .. } if e.change == Change::None && *from == e.to => {
            e.answer.mapped()
        }
        _ => None,
    }
}

/// OTHER-ADDRESS of the server from the first test I reply (RFC 5780 §4.2), validated: coturn
/// sends the alternate's own address from the alternate, so later replies are not used.
fn other_address(s: &Rfc5780, multi: &[Exchange]) -> Result<SocketAddr, Determination<()>> {
    let firsts: Vec<&Exchange> = s
        .filtering
        .iter()
        .flatten()
        .find(|e| e.change == Change::None)
        .into_iter()
        .chain(s.mapping.iter().flatten().next())
        .collect();
    if firsts.is_empty() {
        // Not run: say why, from this server's exchange in the comparison when there is one.
        let seen = multi.iter().find(|e| e.to == s.primary).map(|e| &e.answer);
        return Err(match seen {
            Some(Answer::Reply {
                other_address: None,
                ..
            }) => Determination::not_checked(format!("{NO_5780} (no OTHER-ADDRESS)")),
            Some(Answer::Timeout) => {
                Determination::not_checked(format!("{} did not answer", s.primary))
            }
            _ => Determination::not_checked("RFC 5780 tests not run"),
        });
    }
    let Some(first) = firsts
        .iter()
        .find(|e| matches!(e.answer, Answer::Reply { .. }))
    else {
        return Err(match &firsts[0].answer {
            Answer::Error { code, reason } => Determination::not_checked(format!(
                "{} answered test I with error {code} {reason}",
                s.primary
            )),
            _ => Determination::inconclusive(format!("no answer to test I from {}", s.primary)),
        });
    };
    if let Checked::WrongSource(m) = check(&first.answer, s.primary, s.primary) {
        return Err(Determination::inconclusive(format!(
            "test I to {} {m}: the server is behind a NAT or misconfigured, its OTHER-ADDRESS \
             cannot be trusted",
            s.primary
        )));
    }
    let Answer::Reply { other_address, .. } = &first.answer else {
        unreachable!("a reply was found above")
    };
    let p = s.primary;
    let Some(o) = *other_address else {
        return Err(Determination::not_checked(format!(
            "{NO_5780} (no OTHER-ADDRESS)"
        )));
    };
    let problem = if o == p {
        Some(format!(
            "{LIES}: it advertises its own primary address {p} as OTHER-ADDRESS"
        ))
    } else if o.is_ipv4() != p.is_ipv4() {
        Some(format!(
            "OTHER-ADDRESS {o} is not of the family of the primary address {p}"
        ))
    } else if o.ip() == p.ip() {
        Some(format!(
            "{LIES}: OTHER-ADDRESS {o} has the primary address's IP, so no test can change the IP"
        ))
    } else if o.port() == p.port() {
        Some(format!(
            "{LIES}: OTHER-ADDRESS {o} has the primary address's port, so no test can change the \
             port"
        ))
    } else if let (Some(kind), None) = (non_public(o.ip()), non_public(p.ip())) {
        Some(format!(
            "the server advertises OTHER-ADDRESS {o}, a {kind} address, while it is reached at {p}: \
             it is behind a NAT and its alternate cannot be reached"
        ))
    } else {
        None
    };
    match problem {
        Some(reason) => Err(Determination::inconclusive(reason)),
        None => Ok(o),
    }
}

/// Whether the alternate IP answered any mapping test directly (`None`: not tried). Tells a
/// filtering NAT from a dead alternate when the CHANGE-REQUEST tests get no answer.
fn alternate_alive(s: &Rfc5780, other: SocketAddr) -> Option<bool> {
    let to_alt: Vec<&Exchange> = s
        .mapping
        .iter()
        .flatten()
        .filter(|e| e.to.ip() == other.ip())
        .collect();
    if to_alt.is_empty() {
        return None;
    }
    Some(to_alt.iter().any(|e| direct_reply(e).is_some()))
}

/// RFC 5780 §4.4 filtering, from the filtering socket's tests I, II and III.
fn filtering(s: &Rfc5780, other: SocketAddr) -> Determination<FilteringBehavior> {
    use FilteringBehavior::*;
    let Some(tests) = &s.filtering else {
        return Determination::not_checked("filtering tests not run");
    };
    let p = s.primary;
    match tests.iter().find(|e| e.change == Change::None) {
        Some(t1) => match check(&t1.answer, p, p) {
            Checked::Valid(_) => {}
            Checked::WrongSource(m) => {
                return Determination::inconclusive(format!("filtering test I {m}"))
            }
            Checked::Error(c, r) => {
                return Determination::inconclusive(format!("filtering test I: error {c} {r}"))
            }
            Checked::Timeout => {
                return Determination::inconclusive("no answer to filtering test I")
            }
        },
        None => return Determination::inconclusive("filtering test I not run"),
    }
    let alive = alternate_alive(s, other);
    let alive_note = match alive {
        Some(true) => {
            "; the alternate answers direct requests (mapping tests), so the silence \
                       is the NAT's filtering"
        }
        _ => "; the alternate address was not confirmed to answer direct requests",
    };
    let dead = format!(
        "the alternate {} never answered the mapping tests either: cannot tell the NAT's \
         filtering from a dead alternate",
        other.ip()
    );
    let t2 = tests.iter().find(|e| e.change == Change::IpAndPort);
    let t3 = tests.iter().find(|e| e.change == Change::Port);
    let port_changed = SocketAddr::new(p.ip(), other.port());
    let t3_timed_out = t3.is_some_and(|e| e.answer == Answer::Timeout);
    let Some(t2) = t2 else {
        return Determination::inconclusive("filtering test II (change IP and port) not run");
    };
    match check(&t2.answer, other, p) {
        Checked::Valid(_) => {
            let mut ev = format!(
                "test II (change IP and port) was answered from OTHER-ADDRESS {other}: the NAT \
                 lets in packets from any address and port"
            );
            if t3_timed_out {
                ev.push_str(
                    "; test III (change port) got no answer, which cannot happen with this \
                     filtering: probably packet loss",
                );
            }
            return Determination::known(EndpointIndependent, ev);
        }
        Checked::WrongSource(m) => {
            return Determination::inconclusive(format!("{LIES}: test II (change IP and port) {m}"))
        }
        Checked::Error(420, r) => {
            return Determination::not_checked(format!(
                "{NO_5780}: test II (change IP and port) answered 420 {r}"
            ))
        }
        Checked::Error(c, r) => {
            return Determination::inconclusive(format!(
                "test II (change IP and port) answered error {c} {r}"
            ))
        }
        Checked::Timeout => {}
    }
    let Some(t3) = t3 else {
        return Determination::inconclusive(
            "test II (change IP and port) got no answer and test III (change port) was not run",
        );
    };
    match check(&t3.answer, port_changed, p) {
        Checked::Valid(_) if alive == Some(false) => Determination::inconclusive(dead),
        Checked::Valid(_) => Determination::known(
            AddressDependent,
            format!(
                "test II (change IP and port) got no answer; test III (change port) was \
                 answered from {port_changed}: only packets from IPs we sent to get in{alive_note}"
            ),
        ),
        Checked::WrongSource(m) => {
            Determination::inconclusive(format!("{LIES}: test III (change port) {m}"))
        }
        Checked::Error(420, r) => Determination::not_checked(format!(
            "{NO_5780}: test III (change port) answered 420 {r}"
        )),
        Checked::Error(c, r) => {
            Determination::inconclusive(format!("test III (change port) answered error {c} {r}"))
        }
        Checked::Timeout if alive == Some(false) => Determination::inconclusive(dead),
        Checked::Timeout => Determination::known(
            AddressAndPortDependent,
            format!(
                "neither test II (change IP and port) nor test III (change port) got an answer: \
                 only packets from the exact address we sent to get in{alive_note}"
            ),
        ),
    }
}

/// RFC 5780 §4.3 mapping, from the mapping socket's tests I, II (alternate IP, primary port)
/// and III (OTHER-ADDRESS).
fn mapping(s: &Rfc5780, other: SocketAddr) -> Determination<MappingBehavior> {
    use MappingBehavior::*;
    let Some(tests) = &s.mapping else {
        return Determination::not_checked("mapping tests not run");
    };
    let p = s.primary;
    let get = |i: usize, name: &str| -> Result<(SocketAddr, SocketAddr), String> {
        let Some(e) = tests.get(i) else {
            return Err(format!("mapping test {name} not run"));
        };
        match check(&e.answer, e.to, p) {
            Checked::Valid(Some(m)) => Ok((e.to, m)),
            Checked::Valid(None) => Err(format!(
                "mapping test {name} reply has no XOR-MAPPED-ADDRESS"
            )),
            Checked::WrongSource(m) => Err(format!("mapping test {name} to {} {m}", e.to)),
            Checked::Error(c, r) => Err(format!("mapping test {name} answered error {c} {r}")),
            Checked::Timeout => Err(format!("no answer to mapping test {name} (to {})", e.to)),
        }
    };
    let (to1, m1) = match get(0, "I") {
        Ok(x) => x,
        Err(r) => return Determination::inconclusive(r),
    };
    if to1 != p {
        return Determination::inconclusive(format!(
            "mapping test I went to {to1}, not the primary address {p}"
        ));
    }
    let (to2, m2) = match get(1, "II") {
        Ok(x) => x,
        Err(r) => return Determination::inconclusive(r),
    };
    if to2.ip() != other.ip() {
        return Determination::inconclusive(format!(
            "mapping test II went to {to2}, not to the alternate IP {}",
            other.ip()
        ));
    }
    if m1 == m2 {
        return Determination::known(
            EndpointIndependent,
            format!("test I to {to1} and test II to {to2} (another IP) were both mapped to {m1}"),
        );
    }
    let head = format!("test I to {to1} was mapped to {m1}, test II to {to2} (another IP) to {m2}");
    let (to3, m3) = match get(2, "III") {
        Ok(x) => x,
        Err(r) => {
            return Determination::inconclusive(format!(
                "{head}, but {r}: cannot tell address-dependent from address-and-port-dependent"
            ))
        }
    };
    if to3.ip() != to2.ip() || to3.port() == to2.port() {
        return Determination::inconclusive(format!(
            "{head}, but mapping test III went to {to3}, not another port of {}",
            to2.ip()
        ));
    }
    if m3 == m2 {
        Determination::known(
            AddressDependent,
            format!("{head}; test III to {to3} (same IP, other port) reused {m3}"),
        )
    } else {
        Determination::known(
            AddressAndPortDependent,
            format!("{head}; test III to {to3} (same IP, other port) got yet another, {m3}"),
        )
    }
}

fn analyse_server(s: &Rfc5780, multi: &[Exchange]) -> ServerResult {
    match other_address(s, multi) {
        Err(d) => ServerResult::both(d),
        Ok(other) => ServerResult {
            mapping: mapping(s, other),
            filtering: filtering(s, other),
        },
    }
}

/// Merge per-server results: agreeing known values stay known; disagreement is inconclusive.
fn merge<T: Copy + PartialEq + fmt::Display>(
    items: Vec<(&str, Determination<T>)>,
) -> Determination<T> {
    if items.is_empty() {
        return Determination::not_checked("no server to run the RFC 5780 tests against");
    }
    let many = items.len() > 1;
    let tag = |url: &str, t: &str| {
        if many {
            format!("{t} [{url}]")
        } else {
            t.to_string()
        }
    };
    let known: Vec<(&str, T, &str)> = items
        .iter()
        .filter_map(|(u, d)| match d {
            Determination::Known { value, evidence } => Some((*u, *value, evidence.as_str())),
            _ => None,
        })
        .collect();
    if let Some((u, v, ev)) = known.first() {
        if known.iter().all(|(_, w, _)| w == v) {
            let mut ev = tag(u, ev);
            if known.len() > 1 {
                ev.push_str(&format!(" ({} servers agree)", known.len()));
            }
            return Determination::known(*v, ev);
        }
        let says: Vec<String> = known.iter().map(|(u, v, _)| format!("{u}: {v}")).collect();
        return Determination::inconclusive(format!("servers disagree: {}", says.join("; ")));
    }
    let inconclusive = items
        .iter()
        .any(|(_, d)| matches!(d, Determination::Inconclusive { .. }));
    let reasons: Vec<String> = items.iter().map(|(u, d)| tag(u, d.text())).collect();
    if inconclusive {
        Determination::inconclusive(reasons.join("; "))
    } else {
        Determination::not_checked(reasons.join("; "))
    }
}

/// The multi-server comparison: what varied, the mapping it implies, and port allocation.
struct Multi {
    dependence: Determination<DestinationDependence>,
    implied: Determination<MappingBehavior>,
    ports: Determination<PortAllocation>,
}

fn multi(obs: &Observations) -> Multi {
    let replies: Vec<(&Exchange, SocketAddr)> = obs
        .multi
        .iter()
        .filter_map(|e| direct_reply(e).map(|m| (e, m)))
        .collect();
    if replies.len() < 2 {
        let r = format!(
            "the multi-server comparison needs answers from at least 2 servers; got {} of {}",
            replies.len(),
            obs.multi.len()
        );
        return Multi {
            dependence: Determination::not_checked(&r),
            implied: Determination::not_checked(&r),
            ports: Determination::not_checked(&r),
        };
    }
    let list: Vec<String> = replies
        .iter()
        .map(|(e, m)| format!("{} -> {m}", e.to))
        .collect();
    let list = list.join(", ");
    let base = replies[0].1;
    let ip_varies = replies.iter().any(|(_, m)| m.ip() != base.ip());
    let port_varies = replies.iter().any(|(_, m)| m.port() != base.port());
    let dep = match (ip_varies, port_varies) {
        (false, false) => DestinationDependence::Constant,
        (true, false) => DestinationDependence::VariesByIp,
        (false, true) => DestinationDependence::VariesByPort,
        (true, true) => DestinationDependence::VariesByIpAndPort,
    };
    let dependence = Determination::known(dep, format!("mapped addresses: {list}"));

    // RFC 4787 §4.1 by comparison: pairs of distinct destinations.
    let (mut port_varies_same_ip, mut port_same_same_ip) = (false, false);
    let (mut varies_other_ip, mut same_other_ip) = (false, false);
    for (i, (a, ma)) in replies.iter().enumerate() {
        for (b, mb) in &replies[i + 1..] {
            if a.to == b.to {
                continue;
            }
            let same = ma == mb;
            if a.to.ip() == b.to.ip() {
                port_varies_same_ip |= !same;
                port_same_same_ip |= same;
            } else {
                varies_other_ip |= !same;
                same_other_ip |= same;
            }
        }
    }
    use MappingBehavior::*;
    let implied = if port_varies_same_ip {
        Determination::known(
            AddressAndPortDependent,
            format!("the mapping changed between two ports of one server IP: {list}"),
        )
    } else if varies_other_ip && port_same_same_ip {
        Determination::known(
            AddressDependent,
            format!(
                "the mapping changed between server IPs but not between ports of one IP: {list}"
            ),
        )
    } else if varies_other_ip {
        Determination::known(
            DestinationDependent,
            format!("the mapping changed between server IPs: {list}"),
        )
    } else if same_other_ip {
        Determination::known(
            EndpointIndependent,
            format!("the same mapping for servers at different IPs, consistent with endpoint-independent mapping: {list}"),
        )
    } else {
        Determination::inconclusive(format!(
            "every server answered from one IP: cannot tell endpoint-independent from \
             address-dependent mapping ({list})"
        ))
    };
    Multi {
        dependence,
        implied,
        ports: port_allocation(&replies),
    }
}

/// Port allocation over the comparison's mappings, in the order sent.
fn port_allocation(replies: &[(&Exchange, SocketAddr)]) -> Determination<PortAllocation> {
    let local = replies[0].0.local.port();
    if replies.iter().all(|(_, m)| m.port() == local) {
        return Determination::known(
            PortAllocation::Preserved,
            format!(
                "the mapped port is the local port {local} for all {} servers",
                replies.len()
            ),
        );
    }
    let mut ports: Vec<u16> = Vec::new();
    for (_, m) in replies {
        if m.port() != local && !ports.contains(&m.port()) {
            ports.push(m.port());
        }
    }
    let shown: Vec<String> = ports.iter().map(u16::to_string).collect();
    let shown = shown.join(", ");
    if ports.len() < 2 {
        return Determination::inconclusive(format!(
            "one new mapped port ({shown}, local port {local}) for every destination: not \
             port-preserving, and a single allocation shows no pattern"
        ));
    }
    let steps: Vec<i32> = ports
        .windows(2)
        .map(|w| i32::from(w[1]) - i32::from(w[0]))
        .collect();
    if steps.iter().all(|d| (1..=SEQUENTIAL_MAX_STEP).contains(d)) {
        Determination::known(
            PortAllocation::Sequential,
            format!("new mappings took ports {shown} in small steps (local port {local})"),
        )
    } else {
        Determination::known(
            PortAllocation::Random,
            format!("new mappings took ports {shown}: no sequential pattern (local port {local})"),
        )
    }
}

/// Where the mapping determination came from.
#[derive(Clone, Copy, PartialEq)]
enum Source {
    Both,
    Rfc5780,
    Multi,
    Disagree,
    Neither,
}

fn agree(a: MappingBehavior, b: MappingBehavior) -> bool {
    use MappingBehavior::*;
    a == b || (b == DestinationDependent && matches!(a, AddressDependent | AddressAndPortDependent))
}

/// Combine the RFC 5780 mapping with the comparison's: agreement raises confidence,
/// disagreement is said, never hidden.
fn combine(
    r: &Determination<MappingBehavior>,
    m: &Determination<MappingBehavior>,
) -> (Determination<MappingBehavior>, Source) {
    match (r, m) {
        (
            Determination::Known {
                value: a,
                evidence: ea,
            },
            Determination::Known {
                value: b,
                evidence: eb,
            },
        ) => {
            if agree(*a, *b) {
                (
                    Determination::known(
                        *a,
                        format!("{ea}; the multi-server comparison agrees: {eb}"),
                    ),
                    Source::Both,
                )
            } else {
                (
                    Determination::inconclusive(format!(
                        "the evidence disagrees: the RFC 5780 tests say {a} ({ea}), the \
                         multi-server comparison says {b} ({eb})"
                    )),
                    Source::Disagree,
                )
            }
        }
        (Determination::Known { .. }, _) => (r.clone(), Source::Rfc5780),
        (_, Determination::Known { .. }) => (m.clone(), Source::Multi),
        _ => {
            let reason = format!(
                "RFC 5780 tests: {}; multi-server comparison: {}",
                r.text(),
                m.text()
            );
            let d = if matches!(r, Determination::Inconclusive { .. })
                || matches!(m, Determination::Inconclusive { .. })
            {
                Determination::inconclusive(reason)
            } else {
                Determination::not_checked(reason)
            };
            (d, Source::Neither)
        }
    }
}

/// Every exchange of the family.
fn all_exchanges(obs: &Observations) -> impl Iterator<Item = &Exchange> {
    obs.rfc5780
        .iter()
        .flat_map(|s| {
            s.filtering
                .iter()
                .flatten()
                .chain(s.mapping.iter().flatten())
        })
        .chain(&obs.multi)
}

fn udp_blocked(obs: &Observations) -> Determination<bool> {
    let all: Vec<&Exchange> = all_exchanges(obs).collect();
    let answered = all.iter().filter(|e| e.answer != Answer::Timeout).count();
    let mut servers: Vec<SocketAddr> = all.iter().map(|e| e.to).collect();
    servers.sort();
    servers.dedup();
    if all.is_empty() {
        Determination::not_checked("no UDP Binding request was sent")
    } else if answered == 0 {
        Determination::known(
            true,
            format!(
                "none of {} Binding requests to {} server address{} got an answer over UDP",
                all.len(),
                servers.len(),
                if servers.len() == 1 { "" } else { "es" }
            ),
        )
    } else {
        Determination::known(
            false,
            format!(
                "{answered} of {} Binding requests were answered over UDP",
                all.len()
            ),
        )
    }
}

fn nat_present(obs: &Observations, mapped: &[(&Exchange, SocketAddr)]) -> Determination<bool> {
    if mapped.is_empty() {
        return Determination::not_checked("no server answered: no mapped address to compare");
    }
    let mut locals: Vec<IpAddr> = obs.local_addresses.clone();
    locals.extend(
        mapped
            .iter()
            .map(|(e, _)| e.local.ip())
            .filter(|ip| !ip.is_unspecified()),
    );
    if locals.is_empty() {
        return Determination::inconclusive("this host's addresses are unknown");
    }
    let local_hits = mapped
        .iter()
        .filter(|(_, m)| locals.contains(&m.ip()))
        .count();
    let m = mapped[0].1;
    if local_hits == mapped.len() {
        Determination::known(
            false,
            format!("the mapped address {m} is this host's own address"),
        )
    } else if local_hits == 0 {
        locals.sort();
        locals.dedup();
        let l: Vec<String> = locals.iter().map(IpAddr::to_string).collect();
        Determination::known(
            true,
            format!(
                "the mapped address {m} is not one of this host's addresses ({})",
                l.join(", ")
            ),
        )
    } else {
        Determination::inconclusive(
            "some servers see this host's own address and some another: several routes out",
        )
    }
}

fn cgnat(mapped: &[(&Exchange, SocketAddr)]) -> Determination<bool> {
    if mapped.is_empty() {
        return Determination::not_checked("no server answered: no mapped address to look at");
    }
    // A server on a private network sees a private address without any NAT beyond.
    let beyond: Vec<&(&Exchange, SocketAddr)> = mapped
        .iter()
        .filter(|(e, _)| non_public(e.to.ip()).is_none())
        .collect();
    if beyond.is_empty() {
        return Determination::inconclusive(
            "every server that answered is on a private network itself: its view says nothing \
             about NATs beyond it",
        );
    }
    if let Some((e, m, kind)) = beyond
        .iter()
        .find_map(|(e, m)| non_public(m.ip()).map(|k| (e, m, k)))
    {
        return Determination::known(
            true,
            format!(
                "mapped address is private/CGNAT: another NAT beyond this one ({} saw {m}, {kind})",
                e.to
            ),
        );
    }
    Determination::known(
        false,
        format!(
            "the mapped address {} is public (a carrier NAT that hands out public addresses \
             cannot be seen this way)",
            beyond[0].1
        ),
    )
}

fn alg(obs: &Observations) -> Determination<bool> {
    let mut both = 0;
    for e in all_exchanges(obs) {
        if let Answer::Reply {
            from,
            mapped: Some(x),
            plain_mapped: Some(p),
            ..
        } = &e.answer
        {
            if *from != e.to || e.change != Change::None {
                continue;
            }
            both += 1;
            if x != p {
                return Determination::known(
                    true,
                    format!(
                        "MAPPED-ADDRESS {p} differs from XOR-MAPPED-ADDRESS {x} (from {from}): an \
                         ALG in the NAT rewrites STUN packets, and is likely to break SIP and \
                         WebRTC too"
                    ),
                );
            }
        }
    }
    if both == 0 {
        Determination::not_checked("no server sent both MAPPED-ADDRESS and XOR-MAPPED-ADDRESS")
    } else {
        Determination::known(
            false,
            format!("MAPPED-ADDRESS equals XOR-MAPPED-ADDRESS in {both} replies"),
        )
    }
}

fn hairpin(obs: &Observations, nat: &Determination<bool>) -> Determination<bool> {
    match (&obs.hairpin, nat) {
        (Some(h), _) if h.came_back => Determination::known(
            true,
            format!("a Binding request from {} to our mapped address {} came back through the NAT", h.local, h.to),
        ),
        (Some(h), _) => Determination::known(
            false,
            format!("a Binding request from {} to our mapped address {} did not come back: peers behind this NAT cannot reach each other by their public addresses", h.local, h.to),
        ),
        (None, Determination::Known { value: false, .. }) => {
            Determination::not_checked("no NAT: nothing to hairpin through")
        }
        (None, Determination::NotChecked { .. }) => {
            Determination::not_checked("no mapped address to send to")
        }
        (None, _) => Determination::not_checked("hairpin test not run"),
    }
}

fn lifetime(obs: &Observations) -> Determination<LifetimeRange> {
    let Some(l) = &obs.lifetime else {
        return Determination::not_checked(
            "not asked for: --lifetime runs it, and it takes minutes",
        );
    };
    let range = LifetimeRange {
        alive_after_s: l.alive_after_s,
        expired_after_s: l.expired_after_s,
    };
    let budget = if l.budget_exhausted {
        " (the search stopped at its time budget)"
    } else {
        ""
    };
    match (l.alive_after_s, l.expired_after_s) {
        (None, None) => Determination::inconclusive(format!("no idle period was measured{budget}")),
        (Some(a), None) => Determination::known(
            range,
            format!("an idle mapping survived {a:.0} s; no expiry seen{budget}"),
        ),
        (None, Some(x)) => Determination::known(
            range,
            format!("an idle mapping had expired after {x:.0} s{budget}"),
        ),
        (Some(a), Some(x)) => Determination::known(
            range,
            format!("an idle mapping survives between {a:.0} s and {x:.0} s{budget}"),
        ),
    }
}

fn classic(
    udp: &Determination<bool>,
    nat: &Determination<bool>,
    mapping: &Determination<MappingBehavior>,
    filtering: &Determination<FilteringBehavior>,
) -> Determination<ClassicName> {
    use ClassicName::*;
    use FilteringBehavior as F;
    if udp.value() == Some(&true) {
        return Determination::known(UdpBlocked, udp.text());
    }
    if nat.value() == Some(&false) {
        return match filtering.value() {
            Some(F::EndpointIndependent) => {
                Determination::known(OpenInternet, "no NAT and endpoint-independent filtering")
            }
            Some(f) => Determination::known(
                SymmetricUdpFirewall,
                format!("no NAT, but a firewall with {f} filtering"),
            ),
            None => Determination::inconclusive(format!(
                "no NAT; filtering not determined ({}): open internet or a filtering firewall",
                filtering.text()
            )),
        };
    }
    match mapping.value() {
        Some(MappingBehavior::EndpointIndependent) => match filtering.value() {
            Some(f) => Determination::known(
                match f {
                    F::EndpointIndependent => FullCone,
                    F::AddressDependent => RestrictedCone,
                    F::AddressAndPortDependent => PortRestrictedCone,
                },
                format!("endpoint-independent mapping, {f} filtering"),
            ),
            None => Determination::inconclusive(format!(
                "endpoint-independent mapping (a cone NAT), but filtering is not determined ({}), \
                 so which cone is unknown",
                filtering.text()
            )),
        },
        Some(m) => Determination::known(Symmetric, format!("{m} mapping")),
        None => match mapping {
            Determination::Inconclusive { reason } => {
                Determination::inconclusive(format!("mapping not determined: {reason}"))
            }
            _ => Determination::not_checked(format!("mapping not determined: {}", mapping.text())),
        },
    }
}

fn confidence(v: &NatVerdict, source: Source, replies: usize) -> Confidence {
    use ConfidenceLevel::*;
    let c = |level, reason: &str| Confidence {
        level,
        reason: reason.to_string(),
    };
    if v.udp_blocked.value() == Some(&true) {
        return if v.tcp_fallback.value() == Some(&true) {
            c(High, "no answer over UDP from servers that answer over TCP")
        } else {
            c(
                Medium,
                "no answer over UDP, and TCP did not confirm the servers are up",
            )
        };
    }
    if v.nat_present.value() == Some(&false) {
        return if replies >= 2 {
            c(High, "several servers see this host's own address")
        } else {
            c(Medium, "one server sees this host's own address")
        };
    }
    let eim = v.mapping.value() == Some(&MappingBehavior::EndpointIndependent);
    let filtering = v.filtering.is_known();
    let partial =
        v.filtering.text().contains("packet loss") || v.filtering.text().contains("not confirmed");
    let caveat = |level: ConfidenceLevel, reason: &str| {
        if partial && level == High {
            c(
                Medium,
                &format!("{reason}, but the filtering tests are not fully corroborated"),
            )
        } else {
            c(level, reason)
        }
    };
    match source {
        Source::Disagree => c(Low, "the RFC 5780 tests and the multi-server comparison disagree"),
        Source::Neither => c(Low, "the mapping could not be determined"),
        Source::Both if !eim || filtering => caveat(
            High,
            "validated RFC 5780 tests and the multi-server comparison agree",
        ),
        Source::Both => c(Medium, "both methods agree on the mapping; filtering not determined"),
        Source::Rfc5780 if !eim || filtering => caveat(
            Medium,
            "validated RFC 5780 tests only; the multi-server comparison did not corroborate",
        ),
        Source::Rfc5780 => c(Low, "endpoint-independent mapping from RFC 5780 tests only; filtering not determined"),
        Source::Multi if !eim => c(
            Medium,
            "the mapping varied by destination in the multi-server comparison; no RFC 5780 server confirmed it",
        ),
        Source::Multi => c(
            Low,
            "only the multi-server comparison, which suggests but cannot prove endpoint-independent mapping; filtering not determined",
        ),
    }
}

fn forecast(v: &NatVerdict) -> String {
    use FilteringBehavior as F;
    if v.udp_blocked.value() == Some(&true) {
        return if v.tcp_fallback.value() == Some(&true) {
            "UDP blocked: only TURN over TCP/TLS will work".into()
        } else {
            "UDP blocked: only TURN over TCP/TLS will work (STUN over TCP did not answer either: \
             check the servers and any proxy)"
                .into()
        };
    }
    if v.nat_present.value() == Some(&false) {
        return match v.filtering.value() {
            Some(F::EndpointIndependent) | None => {
                "no NAT: direct connection likely with most peers".into()
            }
            Some(_) => "no NAT, but a firewall filters unsolicited packets: direct connection \
                        likely with most peers (ICE opens the firewall by sending first)"
                .into(),
        };
    }
    match v.mapping.value() {
        Some(MappingBehavior::EndpointIndependent) => match v.filtering.value() {
            Some(F::EndpointIndependent) | Some(F::AddressDependent) => {
                "direct connection likely with most peers".into()
            }
            Some(F::AddressAndPortDependent) => "direct connection likely with most peers; \
                                                 peers behind symmetric NATs will need TURN"
                .into(),
            None => "direct connection likely with most peers; peers behind symmetric NATs may \
                     need TURN (filtering not determined)"
                .into(),
        },
        Some(_) => "symmetric NAT: direct P2P only with peers on open or endpoint-independent \
                    NATs; keep a TURN server"
            .into(),
        None if v.mapped_address.is_none() => {
            "no STUN server answered: nothing can be forecast; keep a TURN server".into()
        }
        None => "the NAT's behaviour could not be determined: keep a TURN server to be safe".into(),
    }
}

/// Classify one address family's observations (pure; RFC 4787 terms, RFC 5780 tests).
pub fn classify(obs: &Observations) -> NatVerdict {
    let per_server: Vec<(&str, ServerResult)> = obs
        .rfc5780
        .iter()
        .map(|s| (s.url.as_str(), analyse_server(s, &obs.multi)))
        .collect();
    let rfc5780_mapping = merge(
        per_server
            .iter()
            .map(|(u, r)| (*u, r.mapping.clone()))
            .collect(),
    );
    let filtering = merge(
        per_server
            .iter()
            .map(|(u, r)| (*u, r.filtering.clone()))
            .collect(),
    );
    let m = multi(obs);
    let (mapping, source) = combine(&rfc5780_mapping, &m.implied);
    let direct: Vec<(&Exchange, SocketAddr)> = all_exchanges(obs)
        .filter_map(|e| direct_reply(e).map(|m| (e, m)))
        .collect();
    let udp_blocked = udp_blocked(obs);
    let nat_present = nat_present(obs, &direct);
    let tcp_fallback = match obs.tcp_fallback {
        Some(true) => Determination::known(true, "a Binding over TCP was answered"),
        Some(false) => Determination::known(false, "a Binding over TCP got no answer either"),
        None if udp_blocked.value() == Some(&false) => {
            Determination::not_checked("UDP answered, so TCP was not tried")
        }
        None => Determination::not_checked("TCP not tried"),
    };
    let mut v = NatVerdict {
        family: obs.family.clone(),
        mapped_address: direct.first().map(|(_, m)| *m),
        classic_name: classic(&udp_blocked, &nat_present, &mapping, &filtering),
        hairpin: hairpin(obs, &nat_present),
        cgnat_or_double_nat: cgnat(&direct),
        alg_suspected: alg(obs),
        lifetime: lifetime(obs),
        mapping,
        filtering,
        rfc5780_mapping,
        multi_server: m.dependence,
        port_allocation: m.ports,
        nat_present,
        udp_blocked,
        tcp_fallback,
        confidence: Confidence {
            level: ConfidenceLevel::Low,
            reason: String::new(),
        },
        forecast: String::new(),
    };
    v.confidence = confidence(&v, source, direct.len());
    v.forecast = forecast(&v);
    v
}

/// Exit code of one family: 0 when discovery completed (mapping or filtering known, no NAT, or
/// UDP blocked with TCP confirmed), 1 when it could not determine (no usable server, UDP
/// blocked and no TCP).
pub fn exit_code(v: &NatVerdict) -> i32 {
    let completed = v.mapping.is_known()
        || v.filtering.is_known()
        || v.nat_present.value() == Some(&false)
        || (v.udp_blocked.value() == Some(&true) && v.tcp_fallback.value() == Some(&true));
    if completed {
        0
    } else {
        1
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Observation sets come from a small simulated NAT and server, so each row of the tables
    //! is what a real driver would have recorded behind that NAT.

    use super::*;
    use crate::nat::observe::{Hairpin, Lifetime};
    use FilteringBehavior as F;
    use MappingBehavior as M;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// The RFC 5780 server's primary address.
    pub(crate) const PRIMARY: &str = "198.51.100.1:3478";
    /// Its OTHER-ADDRESS.
    pub(crate) const OTHER: &str = "198.51.100.2:3479";
    /// A plain STUN server on another IP.
    pub(crate) const PLAIN: &str = "192.0.2.50:19302";
    const PUBLIC_IP: &str = "203.0.113.7";
    const LOCAL_IP: &str = "192.168.1.10";
    const RANDOM: [u16; 8] = [51234, 33001, 60210, 41877, 38455, 57002, 44120, 62011];

    /// How the simulated RFC 5780 server behaves.
    #[derive(Clone, Copy, PartialEq, Debug)]
    pub(crate) enum Server {
        /// As RFC 5780 says (coturn: OTHER-ADDRESS from the alternate names the primary).
        Honest,
        /// Answers CHANGE-REQUEST from the address the request went to.
        AnswersFromPrimary,
        /// Advertises its own primary address as OTHER-ADDRESS.
        SelfAsOther,
        /// Advertises an OTHER-ADDRESS with its own IP (another port).
        SameIpOther,
        /// Answers from the right address but with RESPONSE-ORIGIN = the primary.
        OriginMismatch,
        /// Plain STUN: no OTHER-ADDRESS.
        NoOther,
        /// Rejects CHANGE-REQUEST with 420.
        Rejects420,
        /// Advertises an alternate that never answers.
        DeadAlternate,
    }

    /// How new mappings get their external port.
    #[derive(Clone, Copy, PartialEq, Debug)]
    pub(crate) enum Ports {
        Sequential,
        Random,
        Preserved,
    }

    /// A NAT mapping's key: local port, and the destination parts the mapping depends on.
    type MapKey = (u16, Option<IpAddr>, Option<u16>);

    /// (mapping, ports, servers, dependence, implied mapping, port allocation)
    type MultiCase<'a> = (
        Option<MappingBehavior>,
        Ports,
        Vec<&'a str>,
        &'a str,
        &'a str,
        &'a str,
    );

    /// A simulated NAT (`mapping: None` = no NAT, only a firewall with `filtering`).
    pub(crate) struct Sim {
        mapping: Option<MappingBehavior>,
        filtering: FilteringBehavior,
        ports: Ports,
        server: Server,
        blocked: bool,
        alg: bool,
        public_ip: IpAddr,
        table: Vec<(MapKey, u16)>,
        sent: Vec<(u16, SocketAddr)>,
    }

    impl Sim {
        pub(crate) fn new(mapping: Option<MappingBehavior>, filtering: FilteringBehavior) -> Sim {
            Sim {
                mapping,
                filtering,
                ports: Ports::Sequential,
                server: Server::Honest,
                blocked: false,
                alg: false,
                public_ip: PUBLIC_IP.parse().unwrap(),
                table: vec![],
                sent: vec![],
            }
        }
        pub(crate) fn server(mut self, s: Server) -> Sim {
            self.server = s;
            self
        }
        fn ports(mut self, p: Ports) -> Sim {
            self.ports = p;
            self
        }
        fn public(mut self, ip: &str) -> Sim {
            self.public_ip = ip.parse().unwrap();
            self
        }

        fn map(&mut self, local: SocketAddr, to: SocketAddr) -> SocketAddr {
            let Some(m) = self.mapping else {
                return local;
            };
            let key = match m {
                M::EndpointIndependent => (local.port(), None, None),
                M::AddressDependent | M::DestinationDependent => {
                    (local.port(), Some(to.ip()), None)
                }
                M::AddressAndPortDependent => (local.port(), Some(to.ip()), Some(to.port())),
            };
            if let Some((_, p)) = self.table.iter().find(|(k, _)| *k == key) {
                return SocketAddr::new(self.public_ip, *p);
            }
            let n = self.table.len();
            let port = match self.ports {
                Ports::Sequential => 40000 + n as u16,
                Ports::Random => RANDOM[n % RANDOM.len()],
                Ports::Preserved if !self.table.iter().any(|(_, p)| *p == local.port()) => {
                    local.port()
                }
                Ports::Preserved => 40000 + n as u16,
            };
            self.table.push((key, port));
            SocketAddr::new(self.public_ip, port)
        }

        fn passes(&self, local: SocketAddr, src: SocketAddr) -> bool {
            let mine = self.sent.iter().filter(|(l, _)| *l == local.port());
            match self.filtering {
                F::EndpointIndependent => true,
                F::AddressDependent => mine.clone().any(|(_, d)| d.ip() == src.ip()),
                F::AddressAndPortDependent => mine.clone().any(|(_, d)| *d == src),
            }
        }

        /// One Binding exchange through the NAT to the server at `to`.
        pub(crate) fn send(&mut self, local: &str, to: &str, change: Change) -> Exchange {
            let (local, to) = (sa(local), sa(to));
            self.sent.push((local.port(), to));
            let mapped = self.map(local, to);
            let answer = self.answer(local, to, change, mapped);
            Exchange {
                local,
                to,
                change,
                answer,
            }
        }

        fn answer(
            &self,
            local: SocketAddr,
            to: SocketAddr,
            change: Change,
            mapped: SocketAddr,
        ) -> Answer {
            let (p, o) = (sa(PRIMARY), sa(OTHER));
            let flip_ip = |a: SocketAddr| if a.ip() == p.ip() { o.ip() } else { p.ip() };
            let flip_port = |a: SocketAddr| {
                if a.port() == p.port() {
                    o.port()
                } else {
                    p.port()
                }
            };
            let ours = to.ip() == p.ip() || to.ip() == o.ip();
            if self.blocked || (self.server == Server::DeadAlternate && to.ip() == o.ip()) {
                return Answer::Timeout;
            }
            if ours && change != Change::None && self.server == Server::Rejects420 {
                return Answer::Error {
                    code: 420,
                    reason: "Unknown Attribute".into(),
                };
            }
            let honest = match change {
                Change::None => to,
                Change::IpAndPort => SocketAddr::new(flip_ip(to), flip_port(to)),
                Change::Port => SocketAddr::new(to.ip(), flip_port(to)),
            };
            let (from, origin, other) = if !ours {
                (to, None, None)
            } else {
                let other = if to.ip() == p.ip() { o } else { p };
                match self.server {
                    Server::Honest | Server::Rejects420 | Server::DeadAlternate => {
                        (honest, Some(honest), Some(other))
                    }
                    Server::AnswersFromPrimary => (to, Some(to), Some(other)),
                    Server::SelfAsOther => (to, Some(to), Some(p)),
                    Server::SameIpOther => (to, Some(to), Some(SocketAddr::new(p.ip(), 3479))),
                    Server::OriginMismatch => (honest, Some(to), Some(other)),
                    Server::NoOther => (to, None, None),
                }
            };
            if (self.server == Server::DeadAlternate && from.ip() == o.ip())
                || !self.passes(local, from)
            {
                return Answer::Timeout;
            }
            Answer::Reply {
                from,
                mapped: Some(mapped),
                plain_mapped: Some(if self.alg { local } else { mapped }),
                response_origin: origin,
                other_address: other,
                rtt_ms: 20.0,
            }
        }

        /// What a driver records: RFC 5780 filtering tests on a fresh socket, mapping tests on
        /// another, then one Binding per server in `multi` from a third.
        pub(crate) fn observe(&mut self, multi: &[&str]) -> Observations {
            let l = |port: u16| format!("{LOCAL_IP}:{port}");
            let o = sa(OTHER);
            let alt_ip = SocketAddr::new(o.ip(), sa(PRIMARY).port()).to_string();
            let rfc = if self.server == Server::NoOther {
                Rfc5780 {
                    url: "stun:stun.example.net".into(),
                    primary: sa(PRIMARY),
                    filtering: None,
                    mapping: None,
                }
            } else {
                Rfc5780 {
                    url: "stun:stun.example.net".into(),
                    primary: sa(PRIMARY),
                    filtering: Some(vec![
                        self.send(&l(5000), PRIMARY, Change::None),
                        self.send(&l(5000), PRIMARY, Change::IpAndPort),
                        self.send(&l(5000), PRIMARY, Change::Port),
                    ]),
                    mapping: Some(vec![
                        self.send(&l(5001), PRIMARY, Change::None),
                        self.send(&l(5001), &alt_ip, Change::None),
                        self.send(&l(5001), OTHER, Change::None),
                    ]),
                }
            };
            let multi = multi
                .iter()
                .map(|to| self.send(&l(5002), to, Change::None))
                .collect();
            Observations {
                family: "ipv4".into(),
                local_addresses: vec![LOCAL_IP.parse().unwrap()],
                rfc5780: vec![rfc],
                multi,
                hairpin: None,
                lifetime: None,
                tcp_fallback: None,
            }
        }
    }

    /// `want`: a known value's Debug form, or `inconclusive: <part of reason>`, or
    /// `not-checked: <part of reason>`.
    fn is<T: fmt::Debug>(d: &Determination<T>, want: &str) -> bool {
        let (status, text) = want.split_once(": ").unwrap_or((want, ""));
        match d {
            Determination::Known { value, .. } => format!("{value:?}") == want,
            Determination::Inconclusive { reason } => {
                status == "inconclusive" && reason.contains(text)
            }
            Determination::NotChecked { reason } => {
                status == "not-checked" && reason.contains(text)
            }
        }
    }

    const TWO: &[&str] = &[PRIMARY, PLAIN];

    #[test]
    fn every_mapping_and_filtering_combination() {
        use ClassicName::*;
        let cases = [
            (
                M::EndpointIndependent,
                F::EndpointIndependent,
                FullCone,
                ConfidenceLevel::High,
            ),
            (
                M::EndpointIndependent,
                F::AddressDependent,
                RestrictedCone,
                ConfidenceLevel::High,
            ),
            (
                M::EndpointIndependent,
                F::AddressAndPortDependent,
                PortRestrictedCone,
                ConfidenceLevel::High,
            ),
            (
                M::AddressDependent,
                F::EndpointIndependent,
                Symmetric,
                ConfidenceLevel::High,
            ),
            (
                M::AddressDependent,
                F::AddressDependent,
                Symmetric,
                ConfidenceLevel::High,
            ),
            (
                M::AddressDependent,
                F::AddressAndPortDependent,
                Symmetric,
                ConfidenceLevel::High,
            ),
            (
                M::AddressAndPortDependent,
                F::EndpointIndependent,
                Symmetric,
                ConfidenceLevel::High,
            ),
            (
                M::AddressAndPortDependent,
                F::AddressDependent,
                Symmetric,
                ConfidenceLevel::High,
            ),
            (
                M::AddressAndPortDependent,
                F::AddressAndPortDependent,
                Symmetric,
                ConfidenceLevel::High,
            ),
        ];
        for (m, f, name, level) in cases {
            let obs = Sim::new(Some(m), f).observe(TWO);
            let v = classify(&obs);
            let ctx = format!("{m:?} {f:?}: {v:#?}");
            assert_eq!(v.mapping.value(), Some(&m), "{ctx}");
            assert_eq!(v.rfc5780_mapping.value(), Some(&m), "{ctx}");
            assert_eq!(v.filtering.value(), Some(&f), "{ctx}");
            assert_eq!(v.classic_name.value(), Some(&name), "{ctx}");
            assert_eq!(v.confidence.level, level, "{ctx}");
            assert_eq!(v.nat_present.value(), Some(&true), "{ctx}");
            assert_eq!(v.udp_blocked.value(), Some(&false), "{ctx}");
            assert_eq!(v.alg_suspected.value(), Some(&false), "{ctx}");
            assert_eq!(v.cgnat_or_double_nat.value(), Some(&false), "{ctx}");
            assert_eq!(exit_code(&v), 0);
            if m == M::EndpointIndependent {
                assert!(v.forecast.starts_with("direct connection likely"), "{ctx}");
            } else {
                assert!(v.forecast.starts_with("symmetric NAT:"), "{ctx}");
            }
        }
    }

    /// (name, observations, mapping, filtering, classic name, exit code)
    fn table() -> Vec<(
        &'static str,
        Observations,
        &'static str,
        &'static str,
        &'static str,
        i32,
    )> {
        let eim = Some(M::EndpointIndependent);
        let apdm = Some(M::AddressAndPortDependent);
        let lying = |s: Server, f: F| Sim::new(eim, f).server(s).observe(TWO);
        let mut iii_timeout = Sim::new(apdm, F::AddressAndPortDependent).observe(TWO);
        iii_timeout.rfc5780[0].mapping.as_mut().unwrap()[2].answer = Answer::Timeout;
        let mut eif_iii_lost = Sim::new(eim, F::EndpointIndependent).observe(TWO);
        eif_iii_lost.rfc5780[0].filtering.as_mut().unwrap()[2].answer = Answer::Timeout;
        let mut blocked = Sim::new(eim, F::AddressAndPortDependent);
        blocked.blocked = true;
        let mut blocked_tcp = blocked.observe(TWO);
        blocked_tcp.tcp_fallback = Some(true);
        let mut blocked_sim = Sim::new(eim, F::AddressAndPortDependent);
        blocked_sim.blocked = true;
        let mut blocked_no_tcp = blocked_sim.observe(TWO);
        blocked_no_tcp.tcp_fallback = Some(false);
        let mut multi_disagrees = Sim::new(eim, F::AddressAndPortDependent).observe(TWO);
        let m = multi_disagrees.multi[1].answer.clone();
        if let Answer::Reply { from, rtt_ms, .. } = m {
            let x = sa("203.0.113.7:41000");
            multi_disagrees.multi[1].answer = Answer::Reply {
                from,
                mapped: Some(x),
                plain_mapped: Some(x),
                response_origin: None,
                other_address: None,
                rtt_ms,
            };
        }
        vec![
            ("no NAT, open", Sim::new(None, F::EndpointIndependent).observe(TWO),
             "EndpointIndependent", "EndpointIndependent", "OpenInternet", 0),
            ("no NAT, firewall", Sim::new(None, F::AddressAndPortDependent).observe(TWO),
             "EndpointIndependent", "AddressAndPortDependent", "SymmetricUdpFirewall", 0),
            ("answers CHANGE-REQUEST from the primary", lying(Server::AnswersFromPrimary, F::AddressAndPortDependent),
             "EndpointIndependent", "inconclusive: server does not honour CHANGE-REQUEST: test II (change IP and port) was answered from 198.51.100.1:3478, its primary address",
             "inconclusive: filtering is not determined", 0),
            ("advertises itself as OTHER-ADDRESS", lying(Server::SelfAsOther, F::AddressAndPortDependent),
             "EndpointIndependent", "inconclusive: server does not honour CHANGE-REQUEST: it advertises its own primary address",
             "inconclusive: which cone is unknown", 0),
            ("OTHER-ADDRESS with the primary's IP", lying(Server::SameIpOther, F::EndpointIndependent),
             "EndpointIndependent", "inconclusive: has the primary address's IP", "inconclusive", 0),
            ("RESPONSE-ORIGIN mismatch", lying(Server::OriginMismatch, F::EndpointIndependent),
             "EndpointIndependent", "inconclusive: server does not honour CHANGE-REQUEST: test II (change IP and port) was answered with RESPONSE-ORIGIN",
             "inconclusive", 0),
            ("no OTHER-ADDRESS, same mapping", lying(Server::NoOther, F::AddressAndPortDependent),
             "EndpointIndependent", "not-checked: server does not support RFC 5780 (no OTHER-ADDRESS)", "inconclusive", 0),
            ("no OTHER-ADDRESS, symmetric", Sim::new(apdm, F::AddressAndPortDependent).server(Server::NoOther).observe(TWO),
             "DestinationDependent", "not-checked: no OTHER-ADDRESS", "Symmetric", 0),
            ("420 to CHANGE-REQUEST", lying(Server::Rejects420, F::AddressAndPortDependent),
             "EndpointIndependent", "not-checked: server does not support RFC 5780: test II (change IP and port) answered 420", "inconclusive", 0),
            ("dead alternate, filtering NAT", lying(Server::DeadAlternate, F::AddressAndPortDependent),
             "EndpointIndependent", "inconclusive: dead alternate", "inconclusive", 0),
            ("mapping test III timeout only", iii_timeout,
             "DestinationDependent", "AddressAndPortDependent", "Symmetric", 0),
            ("filtering test III lost after test II answered", eif_iii_lost,
             "EndpointIndependent", "EndpointIndependent", "FullCone", 0),
            ("all timeouts, TCP works", blocked_tcp,
             "inconclusive: no answer to test I", "inconclusive: no answer to test I", "UdpBlocked", 0),
            ("all timeouts, no TCP", blocked_no_tcp,
             "inconclusive: no answer to test I", "inconclusive: no answer to test I", "UdpBlocked", 1),
            ("methods disagree", multi_disagrees,
             "inconclusive: the evidence disagrees", "AddressAndPortDependent", "inconclusive: mapping not determined", 0),
        ]
    }

    #[test]
    fn observation_table() {
        for (name, obs, mapping, filtering, classic, code) in table() {
            let v = classify(&obs);
            let ctx = format!("{name}: {v:#?}");
            assert!(is(&v.mapping, mapping), "mapping, want {mapping}; {ctx}");
            assert!(
                is(&v.filtering, filtering),
                "filtering, want {filtering}; {ctx}"
            );
            assert!(
                is(&v.classic_name, classic),
                "classic, want {classic}; {ctx}"
            );
            assert_eq!(exit_code(&v), code, "{ctx}");
            // Unknown is never false: a filtering result that is not known is never EIF.
            if !v.filtering.is_known() {
                assert_ne!(
                    v.classic_name.value(),
                    Some(&ClassicName::FullCone),
                    "{ctx}"
                );
            }
        }
    }

    #[test]
    fn lying_servers_never_give_endpoint_independent_filtering() {
        for server in [
            Server::AnswersFromPrimary,
            Server::SelfAsOther,
            Server::SameIpOther,
            Server::OriginMismatch,
        ] {
            for f in [
                F::EndpointIndependent,
                F::AddressDependent,
                F::AddressAndPortDependent,
            ] {
                let v = classify(
                    &Sim::new(Some(M::EndpointIndependent), f)
                        .server(server)
                        .observe(TWO),
                );
                // Never a false result: inconclusive whenever a lying reply came back; known
                // only when the NAT itself dropped every lie (then it is the true filtering).
                let ctx = format!("{server:?} {f:?}: {:?}", v.filtering);
                match &v.filtering {
                    Determination::Inconclusive { reason } => {
                        assert!(
                            reason.starts_with("server does not honour CHANGE-REQUEST"),
                            "{ctx}"
                        )
                    }
                    Determination::Known { value, .. } => {
                        assert_eq!(*value, f, "{ctx}");
                        assert_eq!(server, Server::OriginMismatch, "{ctx}");
                        assert_eq!(f, F::AddressAndPortDependent, "{ctx}");
                    }
                    Determination::NotChecked { .. } => panic!("{ctx}"),
                }
            }
        }
    }

    #[test]
    fn partial_answers_say_so() {
        let v = classify(&table().into_iter().nth(10).unwrap().1);
        assert!(
            v.rfc5780_mapping
                .text()
                .contains("cannot tell address-dependent"),
            "{v:#?}"
        );
        let v = classify(&table().into_iter().nth(11).unwrap().1);
        assert!(
            v.filtering.text().contains("probably packet loss"),
            "{v:#?}"
        );
        assert_eq!(v.confidence.level, ConfidenceLevel::Medium);
    }

    #[test]
    fn udp_blocked_forecast_and_confidence() {
        let t = table();
        let v = classify(&t[12].1);
        assert_eq!(v.udp_blocked.value(), Some(&true));
        assert_eq!(v.forecast, "UDP blocked: only TURN over TCP/TLS will work");
        assert_eq!(v.confidence.level, ConfidenceLevel::High);
        assert!(is(&v.nat_present, "not-checked: no server answered"));
        assert!(is(
            &v.port_allocation,
            "not-checked: at least 2 servers; got 0 of 2"
        ));
        let v = classify(&t[13].1);
        assert_eq!(v.tcp_fallback.value(), Some(&false));
        assert_eq!(v.confidence.level, ConfidenceLevel::Medium);
    }

    #[test]
    fn multi_server_comparison() {
        let eim = Some(M::EndpointIndependent);
        let apdm = Some(M::AddressAndPortDependent);
        let adm = Some(M::AddressDependent);
        let third = "192.0.2.60:3478";
        let same_ip_other_port = "192.0.2.50:3478";
        let plain = |m, p: Ports, multi: &[&str]| {
            classify(
                &Sim::new(m, F::AddressAndPortDependent)
                    .server(Server::NoOther)
                    .ports(p)
                    .observe(multi),
            )
        };
        // (mapping, ports, servers, dependence, implied mapping, port allocation)
        let cases: Vec<MultiCase> = vec![
            (
                eim,
                Ports::Sequential,
                vec![PRIMARY, PLAIN, third],
                "Constant",
                "EndpointIndependent",
                "inconclusive: a single allocation shows no pattern",
            ),
            (
                eim,
                Ports::Preserved,
                vec![PRIMARY, PLAIN],
                "Constant",
                "EndpointIndependent",
                "Preserved",
            ),
            (
                apdm,
                Ports::Sequential,
                vec![PRIMARY, PLAIN, third],
                "VariesByPort",
                "DestinationDependent",
                "Sequential",
            ),
            (
                apdm,
                Ports::Random,
                vec![PRIMARY, PLAIN, third],
                "VariesByPort",
                "DestinationDependent",
                "Random",
            ),
            (
                apdm,
                Ports::Sequential,
                vec![PLAIN, same_ip_other_port],
                "VariesByPort",
                "AddressAndPortDependent",
                "Sequential",
            ),
            (
                adm,
                Ports::Sequential,
                vec![PLAIN, same_ip_other_port, PRIMARY],
                "VariesByPort",
                "AddressDependent",
                "Sequential",
            ),
            (
                eim,
                Ports::Sequential,
                vec![PLAIN, same_ip_other_port],
                "Constant",
                "inconclusive: one IP",
                "inconclusive",
            ),
            (
                eim,
                Ports::Sequential,
                vec![PRIMARY],
                "not-checked: at least 2 servers; got 1 of 1",
                "not-checked",
                "not-checked",
            ),
        ];
        for (m, p, servers, dep, implied, ports) in cases {
            let v = plain(m, p, &servers);
            let ctx = format!("{m:?} {p:?} {servers:?}: {v:#?}");
            assert!(is(&v.multi_server, dep), "dependence {dep}; {ctx}");
            assert!(is(&v.mapping, implied), "mapping {implied}; {ctx}");
            assert!(is(&v.port_allocation, ports), "ports {ports}; {ctx}");
        }
        // Multi-homed NAT: the mapped IP varies, the port does not.
        let mut obs = Sim::new(eim, F::AddressAndPortDependent)
            .server(Server::NoOther)
            .observe(TWO);
        if let Answer::Reply { mapped, .. } = &mut obs.multi[1].answer {
            *mapped = Some(sa("203.0.113.8:40000"));
        }
        assert!(is(&classify(&obs).multi_server, "VariesByIp"));
    }

    #[test]
    fn symmetric_from_two_plain_servers() {
        // Issue 4's "done when": symmetric NAT detected with two plain STUN servers.
        let v = classify(
            &Sim::new(Some(M::AddressAndPortDependent), F::AddressAndPortDependent)
                .server(Server::NoOther)
                .ports(Ports::Random)
                .observe(TWO),
        );
        assert_eq!(v.classic_name.value(), Some(&ClassicName::Symmetric));
        assert_eq!(v.confidence.level, ConfidenceLevel::Medium);
        assert!(v.forecast.contains("keep a TURN server"));
        assert_eq!(exit_code(&v), 0);
    }

    #[test]
    fn alg_cgnat_hairpin_lifetime() {
        let eim = Some(M::EndpointIndependent);
        let mut sim = Sim::new(eim, F::AddressAndPortDependent);
        sim.alg = true;
        let v = classify(&sim.observe(TWO));
        assert_eq!(v.alg_suspected.value(), Some(&true), "{v:#?}");
        assert!(v
            .alg_suspected
            .text()
            .contains("MAPPED-ADDRESS 192.168.1.10:5000 differs"));

        let v = classify(
            &Sim::new(eim, F::AddressAndPortDependent)
                .public("100.64.3.4")
                .observe(TWO),
        );
        assert_eq!(v.cgnat_or_double_nat.value(), Some(&true), "{v:#?}");
        assert!(v
            .cgnat_or_double_nat
            .text()
            .starts_with("mapped address is private/CGNAT: another NAT beyond this one"));
        let v = classify(
            &Sim::new(eim, F::AddressAndPortDependent)
                .public("10.9.8.7")
                .observe(TWO),
        );
        assert_eq!(v.cgnat_or_double_nat.value(), Some(&true));
        assert_eq!(v.nat_present.value(), Some(&true));

        let mut obs = Sim::new(eim, F::AddressAndPortDependent).observe(TWO);
        assert!(is(&classify(&obs).hairpin, "not-checked: not run"));
        assert!(is(&classify(&obs).lifetime, "not-checked: --lifetime"));
        obs.hairpin = Some(Hairpin {
            local: sa("192.168.1.10:5003"),
            to: sa("203.0.113.7:40000"),
            came_back: false,
        });
        obs.lifetime = Some(Lifetime {
            alive_after_s: Some(60.0),
            expired_after_s: Some(120.0),
            budget_exhausted: false,
        });
        let v = classify(&obs);
        assert_eq!(v.hairpin.value(), Some(&false));
        assert!(
            v.lifetime.text().contains("between 60 s and 120 s"),
            "{:?}",
            v.lifetime
        );
        obs.lifetime = Some(Lifetime {
            alive_after_s: None,
            expired_after_s: None,
            budget_exhausted: true,
        });
        assert!(is(&classify(&obs).lifetime, "inconclusive: time budget"));

        let v = classify(&Sim::new(None, F::EndpointIndependent).observe(TWO));
        assert_eq!(v.nat_present.value(), Some(&false));
        assert!(is(&v.hairpin, "not-checked: no NAT"));
        assert_eq!(v.confidence.level, ConfidenceLevel::High);
    }

    #[test]
    fn server_behind_nat_is_inconclusive() {
        // RESPONSE-ORIGIN of test I is not where we sent: OTHER-ADDRESS cannot be trusted.
        let mut obs = Sim::new(Some(M::EndpointIndependent), F::EndpointIndependent).observe(TWO);
        for e in obs.rfc5780[0].filtering.as_mut().unwrap() {
            if let Answer::Reply {
                response_origin, ..
            } = &mut e.answer
            {
                *response_origin = Some(sa("10.0.0.5:3478"));
            }
        }
        let v = classify(&obs);
        assert!(
            is(&v.filtering, "inconclusive: behind a NAT or misconfigured"),
            "{v:#?}"
        );
        // A private OTHER-ADDRESS behind a public primary cannot be reached.
        let mut obs = Sim::new(Some(M::EndpointIndependent), F::EndpointIndependent).observe(TWO);
        if let Answer::Reply { other_address, .. } =
            &mut obs.rfc5780[0].filtering.as_mut().unwrap()[0].answer
        {
            *other_address = Some(sa("10.0.0.6:3479"));
        }
        assert!(is(
            &classify(&obs).filtering,
            "inconclusive: its alternate cannot be reached"
        ));
    }

    #[test]
    fn nothing_at_all() {
        let obs = Observations {
            family: "ipv6".into(),
            local_addresses: vec![],
            rfc5780: vec![],
            multi: vec![],
            hairpin: None,
            lifetime: None,
            tcp_fallback: None,
        };
        let v = classify(&obs);
        assert!(is(&v.udp_blocked, "not-checked"));
        assert!(is(
            &v.mapping,
            "not-checked: no server to run the RFC 5780 tests against"
        ));
        assert_eq!(v.confidence.level, ConfidenceLevel::Low);
        assert_eq!(exit_code(&v), 1);
        assert!(v.forecast.starts_with("no STUN server answered"));
    }

    #[test]
    fn determination_wire_shape() {
        let d: Determination<MappingBehavior> = Determination::known(M::AddressDependent, "e");
        let j = serde_json::to_value(&d).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"status": "known", "value": "address-dependent", "evidence": "e"})
        );
        let n: Determination<bool> = Determination::not_checked("r");
        assert_eq!(
            serde_json::to_value(&n).unwrap(),
            serde_json::json!({"status": "not-checked", "reason": "r"})
        );
    }
}
