//! The pure NAT classifier: recorded [`Observations`] in, a [`NatVerdict`] out.
//!
//! Terms are RFC 4787's (§4.1 mapping, §5 filtering); the tests are RFC 5780's (§4.3 mapping,
//! §4.4 filtering, §4.5 hairpinning, §4.6 lifetime). Every reply is validated before it counts:
//! its UDP source and its RESPONSE-ORIGIN (RFC 5780 §7.3) must be the address the test asked
//! for, so a server that ignores CHANGE-REQUEST (RFC 5780 §7.2) yields "inconclusive", never a
//! false "endpoint-independent". Anything not measured is [`Determination::NotChecked`] with the
//! reason: unknown is never false.
//!
//! This module owns the verdict model (the value enums, [`Determination`], [`NatVerdict`]), the
//! shared reply helpers, [`classify`] which assembles a verdict, and [`exit_code`]. The parts:
//! `rfc5780` validates and merges the per-server RFC 5780 mapping and filtering tests; `multi`
//! compares plain Bindings to several servers (dependence, port allocation) and combines that
//! with RFC 5780; `findings` holds the single-fact findings (UDP blocked, NAT present, CGNAT,
//! ALG, hairpin, lifetime); `verdict` names the result (classic name, confidence, forecast).

mod findings;
mod multi;
mod rfc5780;
#[cfg(test)]
pub(crate) mod sim;
mod verdict;

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::observe::{Answer, Change, Exchange, Observations};
use findings::{alg, cgnat, hairpin, lifetime, nat_present, udp_blocked};
pub use multi::SEQUENTIAL_MAX_STEP;
use multi::{combine, multi};
use rfc5780::{analyse_server, merge, ServerResult};
use verdict::{classic, confidence, forecast};

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

pub use crate::ip_class::non_public;

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
    //! The whole classifier, table-driven over the simulated NAT in [`super::sim`].

    use super::sim::{is, sa, Server, Sim, TWO};
    use super::*;
    use FilteringBehavior as F;
    use MappingBehavior as M;

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
    pub(crate) fn table() -> Vec<(
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
        assert!(v
            .forecast
            .starts_with("no STUN server gave a usable answer"));
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
