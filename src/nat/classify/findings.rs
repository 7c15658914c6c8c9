//! The single-fact findings of one family: UDP blocked, NAT present, CGNAT or double NAT
//! (RFC 6598), ALG suspected (MAPPED-ADDRESS rewritten), hairpinning (RFC 5780 §4.5) and mapping
//! lifetime (RFC 5780 §4.6).

use std::net::{IpAddr, SocketAddr};

use super::{all_exchanges, non_public, Determination, LifetimeRange};
use crate::model::nat::{Answer, Change, Exchange, Observations};

pub(super) fn udp_blocked(obs: &Observations) -> Determination<bool> {
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

pub(super) fn nat_present(
    obs: &Observations,
    mapped: &[(&Exchange, SocketAddr)],
) -> Determination<bool> {
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

pub(super) fn cgnat(mapped: &[(&Exchange, SocketAddr)]) -> Determination<bool> {
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

pub(super) fn alg(obs: &Observations) -> Determination<bool> {
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

pub(super) fn hairpin(obs: &Observations, nat: &Determination<bool>) -> Determination<bool> {
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

pub(super) fn lifetime(obs: &Observations) -> Determination<LifetimeRange> {
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

#[cfg(test)]
mod tests {
    use super::super::sim::{is, sa, Sim, TWO};
    use super::super::*;
    use crate::model::nat::{Hairpin, Lifetime};
    use FilteringBehavior as F;
    use MappingBehavior as M;

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
}
