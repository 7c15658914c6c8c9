//! The multi-server comparison (RFC 5780 §4.3 done with plain Binding requests): whether the
//! mapped address varied between servers, the mapping behaviour that implies, how the NAT
//! allocates ports, and how that evidence combines with the RFC 5780 tests.

use std::net::SocketAddr;

use super::{direct_reply, DestinationDependence, Determination, MappingBehavior, PortAllocation};
use crate::model::nat::{Exchange, Observations};

/// Largest step between consecutive new mappings' ports still called sequential: other hosts
/// behind the NAT take ports in between (RFC 4787 §4.2.1 does not require any pattern).
pub const SEQUENTIAL_MAX_STEP: i32 = 32;

/// The multi-server comparison: what varied, the mapping it implies, and port allocation.
pub(super) struct Multi {
    pub(super) dependence: Determination<DestinationDependence>,
    pub(super) implied: Determination<MappingBehavior>,
    pub(super) ports: Determination<PortAllocation>,
}

pub(super) fn multi(obs: &Observations) -> Multi {
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
pub(super) enum Source {
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
pub(super) fn combine(
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

#[cfg(test)]
mod tests {
    use super::super::sim::{is, sa, Ports, Server, Sim, PLAIN, PRIMARY, TWO};
    use super::super::*;
    use FilteringBehavior as F;
    use MappingBehavior as M;

    /// (mapping, ports, servers, dependence, implied mapping, port allocation)
    type MultiCase<'a> = (
        Option<MappingBehavior>,
        Ports,
        Vec<&'a str>,
        &'a str,
        &'a str,
        &'a str,
    );

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
        assert_eq!(v.exit_code(), 0);
    }
}
