//! The `nat` report: per address family, what discovery observed (plain values: what was sent
//! where and what came back) and what the pure classifier (`nat::classify`) concluded. Every
//! conclusion is a [`Determination`]: known with its evidence, inconclusive with the reason, or
//! not checked with the reason. Unknown is never reported as false.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::{Family, Report};

// ---- observations (the classifier's input) ----

/// CHANGE-REQUEST flags of a Binding request (RFC 5780 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// No CHANGE-REQUEST: answer from where the request arrived.
    #[default]
    None,
    /// Change port (flag 0x02).
    Port,
    /// Change IP and port (flags 0x06).
    IpAndPort,
}

/// The answer to one Binding request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Answer {
    /// A success response.
    Reply {
        /// The UDP source address the reply came from.
        from: SocketAddr,
        /// XOR-MAPPED-ADDRESS.
        mapped: Option<SocketAddr>,
        /// MAPPED-ADDRESS, when also present (an ALG may rewrite this one only).
        plain_mapped: Option<SocketAddr>,
        /// RESPONSE-ORIGIN (RFC 5780 §7.3).
        response_origin: Option<SocketAddr>,
        /// OTHER-ADDRESS (RFC 5780 §7.4).
        other_address: Option<SocketAddr>,
        /// Round trip in milliseconds.
        rtt_ms: f64,
    },
    /// An error response (e.g. 420 when the server does not do RFC 5780).
    Error {
        /// ERROR-CODE.
        code: u16,
        /// Reason phrase.
        reason: String,
    },
    /// Replies came, but none could be accepted (not STUN, bad FINGERPRINT, unknown
    /// comprehension-required attributes, ...): a broken or hostile server, not silence.
    Rejected {
        /// What was wrong with them (see `proto::reject::Rejects::summary`).
        why: String,
    },
    /// No answer after every retransmission.
    Timeout,
}

impl Answer {
    /// XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS) of a reply.
    pub fn mapped(&self) -> Option<SocketAddr> {
        match self {
            Answer::Reply {
                mapped,
                plain_mapped,
                ..
            } => mapped.or(*plain_mapped),
            _ => None,
        }
    }
}

/// One Binding exchange: which local socket, to which server address, with which change flags,
/// and what came back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    /// Our local socket (the base), as bound.
    pub local: SocketAddr,
    /// Where the request was sent.
    pub to: SocketAddr,
    /// CHANGE-REQUEST flags.
    pub change: Change,
    /// What came back.
    pub answer: Answer,
}

/// RFC 5780 tests against one server that advertised OTHER-ADDRESS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rfc5780 {
    /// The server URL.
    pub url: String,
    /// The server's primary address.
    pub primary: SocketAddr,
    /// Filtering tests, run first on a fresh socket (RFC 5780 §4.4): test I, then test II
    /// (change IP and port) and test III (change port). `None` when not run.
    pub filtering: Option<Vec<Exchange>>,
    /// Mapping tests on another fresh socket (RFC 5780 §4.3): test I to the primary, then to
    /// OTHER-ADDRESS's IP with the primary port, then to OTHER-ADDRESS. `None` when not run.
    pub mapping: Option<Vec<Exchange>>,
}

/// Hairpinning (RFC 5780 §4.5): a Binding request sent to our own mapped address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hairpin {
    /// Our local socket.
    pub local: SocketAddr,
    /// Our mapped address, where the request went.
    pub to: SocketAddr,
    /// Whether the request came back to us (through the NAT).
    pub came_back: bool,
}

/// The idle lifetime search (RFC 5780 §4.6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lifetime {
    /// Longest idle time after which the mapping still worked, in seconds.
    pub alive_after_s: Option<f64>,
    /// Shortest idle time after which it had expired, in seconds.
    pub expired_after_s: Option<f64>,
    /// The search stopped at its time budget before converging.
    pub budget_exhausted: bool,
}

/// Everything observed for one address family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observations {
    /// `ipv4` or `ipv6`: observations of different families are never mixed.
    pub family: String,
    /// Local addresses of this family (to spot "no NAT").
    pub local_addresses: Vec<IpAddr>,
    /// RFC 5780 tests, one per server that advertised OTHER-ADDRESS (and servers that did not
    /// are recorded with `filtering`/`mapping` = None and their first exchange in `multi`).
    pub rfc5780: Vec<Rfc5780>,
    /// Multi-server comparison: one socket, one Binding to each server (RFC 4787 §4.1 by
    /// comparison), in the order sent.
    pub multi: Vec<Exchange>,
    /// Hairpin test, when a mapped address was known.
    pub hairpin: Option<Hairpin>,
    /// Idle lifetime, when `--lifetime` asked for it.
    pub lifetime: Option<Lifetime>,
    /// UDP got no answer at all, so Binding over TCP was tried: did it work?
    pub tcp_fallback: Option<bool>,
}

// ---- conclusions (the classifier's output) ----

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
    pub fn cast<U>(&self) -> Option<Determination<U>> {
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

impl ClassicName {
    /// Every value, in schema order.
    pub const ALL: [ClassicName; 7] = [
        ClassicName::OpenInternet,
        ClassicName::SymmetricUdpFirewall,
        ClassicName::FullCone,
        ClassicName::RestrictedCone,
        ClassicName::PortRestrictedCone,
        ClassicName::Symmetric,
        ClassicName::UdpBlocked,
    ];
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

impl MappingBehavior {
    /// Every value, in schema order.
    pub const ALL: [MappingBehavior; 4] = [
        MappingBehavior::EndpointIndependent,
        MappingBehavior::AddressDependent,
        MappingBehavior::AddressAndPortDependent,
        MappingBehavior::DestinationDependent,
    ];
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

impl FilteringBehavior {
    /// Every value, in schema order.
    pub const ALL: [FilteringBehavior; 3] = [
        FilteringBehavior::EndpointIndependent,
        FilteringBehavior::AddressDependent,
        FilteringBehavior::AddressAndPortDependent,
    ];
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

impl NatVerdict {
    /// Exit code of this family: 0 when discovery completed (mapping or filtering known, no
    /// NAT, or UDP blocked with TCP confirmed), 1 when it could not determine (no usable
    /// server, UDP blocked and no TCP).
    pub fn exit_code(&self) -> i32 {
        let completed = self.mapping.is_known()
            || self.filtering.is_known()
            || self.nat_present.value() == Some(&false)
            || (self.udp_blocked.value() == Some(&true)
                && self.tcp_fallback.value() == Some(&true));
        if completed {
            0
        } else {
            1
        }
    }
}

// ---- the report ----

/// Version of the nat report (same envelope and conventions as gather and check).
pub const NAT_SCHEMA_VERSION: u32 = 1;

/// One address family: the raw observations and the verdict drawn from them. Families are
/// never mixed (RFC 4787 behaviour is per family; a v4 mapping says nothing about v6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FamilyResult {
    /// What was sent where and what came back.
    pub observations: Observations,
    /// What the classifier concluded.
    pub verdict: NatVerdict,
}

/// What a `nat` report holds (inside the [`Report`] envelope).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatBody {
    /// Wall time, in milliseconds.
    pub duration_ms: f64,
    /// One entry per address family probed.
    pub families: Vec<FamilyResult>,
}

/// The whole `nat` report (`--format json`).
pub type NatReport = Report<NatBody>;

/// What a nat run is about to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatStart {
    /// Server URLs, without credentials.
    pub servers: Vec<String>,
    /// Address families probed.
    pub families: Vec<Family>,
    /// Deadline of each Binding transaction, in milliseconds.
    pub timeout_ms: u64,
    /// The idle lifetime search runs (`--lifetime`).
    pub lifetime: bool,
}

/// Which test an exchange belongs to (RFC 5780 §4.3 mapping, §4.4 filtering, or the
/// multi-server comparison).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TestLabel {
    /// Filtering test I: plain Binding to the primary address, on a fresh socket.
    #[serde(rename = "filtering-I")]
    FilteringI,
    /// Filtering test II: CHANGE-REQUEST change IP and port.
    #[serde(rename = "filtering-II")]
    FilteringII,
    /// Filtering test III: CHANGE-REQUEST change port.
    #[serde(rename = "filtering-III")]
    FilteringIII,
    /// Mapping test I: Binding to the primary address, on another fresh socket.
    #[serde(rename = "mapping-I")]
    MappingI,
    /// Mapping test II: Binding to OTHER-ADDRESS's IP with the primary port.
    #[serde(rename = "mapping-II")]
    MappingII,
    /// Mapping test III: Binding to OTHER-ADDRESS.
    #[serde(rename = "mapping-III")]
    MappingIII,
    /// Multi-server comparison: one Binding per server from one socket.
    #[serde(rename = "multi")]
    Multi,
}

impl TestLabel {
    /// Every label, in the order the tests run.
    pub const ALL: [TestLabel; 7] = [
        TestLabel::FilteringI,
        TestLabel::FilteringII,
        TestLabel::FilteringIII,
        TestLabel::MappingI,
        TestLabel::MappingII,
        TestLabel::MappingIII,
        TestLabel::Multi,
    ];
}

impl fmt::Display for TestLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TestLabel::FilteringI => "filtering-I",
            TestLabel::FilteringII => "filtering-II",
            TestLabel::FilteringIII => "filtering-III",
            TestLabel::MappingI => "mapping-I",
            TestLabel::MappingII => "mapping-II",
            TestLabel::MappingIII => "mapping-III",
            TestLabel::Multi => "multi",
        })
    }
}

/// One exchange as it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatExchange {
    /// `ipv4` or `ipv6`.
    pub family: String,
    /// The server URL.
    pub server: String,
    /// Which test.
    pub test: TestLabel,
    /// Milliseconds since the run started, when the exchange ended.
    pub elapsed_ms: f64,
    /// What was sent and what came back.
    pub exchange: Exchange,
}

/// One streamed `nat` event (`--format ndjson`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    content = "data",
    rename_all = "kebab-case",
    deny_unknown_fields
)]
pub enum NatEvent {
    /// The run started.
    Start(NatStart),
    /// A Binding exchange ended (answered, error, or no answer).
    Exchange(Box<NatExchange>),
    /// The run ended; the full report.
    Summary(Box<NatReport>),
}

/// How a determination reads in one word or phrase.
fn short<T: fmt::Display>(d: &Determination<T>) -> String {
    match d {
        Determination::Known { value, .. } => value.to_string(),
        Determination::Inconclusive { .. } => "inconclusive".into(),
        Determination::NotChecked { .. } => "not checked".into(),
    }
}

/// One family's summary: the classic name when known, else the RFC 4787 terms.
pub fn family_summary(v: &NatVerdict) -> String {
    let head = match v.classic_name.value() {
        Some(name) => name.to_string(),
        None => format!(
            "mapping {}, filtering {}",
            short(&v.mapping),
            short(&v.filtering)
        ),
    };
    let level = serde_json::to_value(v.confidence.level)
        .ok()
        .and_then(|l| l.as_str().map(String::from))
        .unwrap_or_default();
    format!("{}: {head} (confidence {level})", v.family)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exhaustive matches: a new variant fails to compile here until `ALL` lists it.
    #[test]
    fn every_value_is_listed() {
        for x in MappingBehavior::ALL {
            match x {
                MappingBehavior::EndpointIndependent
                | MappingBehavior::AddressDependent
                | MappingBehavior::AddressAndPortDependent
                | MappingBehavior::DestinationDependent => {}
            }
        }
        for x in FilteringBehavior::ALL {
            match x {
                FilteringBehavior::EndpointIndependent
                | FilteringBehavior::AddressDependent
                | FilteringBehavior::AddressAndPortDependent => {}
            }
        }
        for x in ClassicName::ALL {
            match x {
                ClassicName::OpenInternet
                | ClassicName::SymmetricUdpFirewall
                | ClassicName::FullCone
                | ClassicName::RestrictedCone
                | ClassicName::PortRestrictedCone
                | ClassicName::Symmetric
                | ClassicName::UdpBlocked => {}
            }
        }
    }
}
