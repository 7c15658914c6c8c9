//! Naming the result: the classic RFC 3489 name, how sure the verdict is, and what it means for
//! a WebRTC call (the forecast).

use super::multi::Source;
use super::{
    ClassicName, Confidence, ConfidenceLevel, Determination, FilteringBehavior, MappingBehavior,
    NatVerdict,
};

pub(super) fn classic(
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

pub(super) fn confidence(v: &NatVerdict, source: Source, replies: usize) -> Confidence {
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

pub(super) fn forecast(v: &NatVerdict) -> String {
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
            "no STUN server gave a usable answer: nothing can be forecast; keep a TURN server"
                .into()
        }
        None => "the NAT's behaviour could not be determined: keep a TURN server to be safe".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::sim::is;
    use super::super::tests::table;
    use super::super::*;

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
}
