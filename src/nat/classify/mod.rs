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

use std::net::SocketAddr;

use crate::model::nat::{Answer, Change, Exchange, Observations};
pub use crate::model::nat::{
    ClassicName, Confidence, ConfidenceLevel, DestinationDependence, Determination,
    FilteringBehavior, LifetimeRange, MappingBehavior, NatVerdict, PortAllocation,
};
use findings::{alg, cgnat, hairpin, lifetime, nat_present, udp_blocked};
pub use multi::SEQUENTIAL_MAX_STEP;
use multi::{combine, multi};
use rfc5780::{analyse_server, merge, ServerResult};
use verdict::{classic, confidence, forecast};

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
            assert_eq!(v.exit_code(), 0);
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
            assert_eq!(v.exit_code(), code, "{ctx}");
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
        assert_eq!(v.exit_code(), 1);
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
