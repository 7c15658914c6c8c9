//! The RFC 5780 tests against one server (§4.3 mapping, §4.4 filtering), validated: each
//! reply's UDP source and RESPONSE-ORIGIN (§7.3) must be the address the test asked for, and
//! OTHER-ADDRESS must name a reachable alternate with another IP and port. Then the per-server
//! results are merged: agreement stays known, disagreement is inconclusive.

use std::fmt;
use std::net::SocketAddr;

use super::{direct_reply, non_public, Determination, FilteringBehavior, MappingBehavior};
use crate::model::nat::{Answer, Change, Exchange, Rfc5780};

/// A reply checked against the address the test asked for.
enum Checked {
    /// From the right address; carries XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS).
    Valid(Option<SocketAddr>),
    /// From, or claiming, another address, or only rejected replies: the message says which.
    Untrusted(String),
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
                Checked::Untrusted(format!(
                    "was answered from {}, not from {expected}",
                    name(*from)
                ))
            } else if let Some(ro) = response_origin.filter(|ro| *ro != expected) {
                Checked::Untrusted(format!(
                    "was answered with RESPONSE-ORIGIN {}, not {expected}",
                    name(ro)
                ))
            } else {
                Checked::Valid(answer.mapped())
            }
        }
        Answer::Error { code, reason } => Checked::Error(*code, reason.clone()),
        // Something came back, so this is not the silence a filtering test measures.
        Answer::Rejected { why } => Checked::Untrusted(format!(
            "was answered only with replies that had to be rejected ({why})"
        )),
        Answer::Timeout => Checked::Timeout,
    }
}

const NO_5780: &str = "server does not support RFC 5780";
const LIES: &str = "server does not honour CHANGE-REQUEST";

/// Per-server RFC 5780 results.
pub(super) struct ServerResult {
    pub(super) mapping: Determination<MappingBehavior>,
    pub(super) filtering: Determination<FilteringBehavior>,
}

impl ServerResult {
    fn both(d: Determination<()>) -> Self {
        ServerResult {
            mapping: d.cast().unwrap_or_else(|| Determination::inconclusive("")),
            filtering: d.cast().unwrap_or_else(|| Determination::inconclusive("")),
        }
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
            Some(Answer::Rejected { why }) => Determination::inconclusive(format!(
                "{} answered only with replies that had to be rejected: {why}",
                s.primary
            )),
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
            Answer::Rejected { why } => Determination::inconclusive(format!(
                "{} answered test I only with replies that had to be rejected: {why}",
                s.primary
            )),
            _ => Determination::inconclusive(format!("no answer to test I from {}", s.primary)),
        });
    };
    if let Checked::Untrusted(m) = check(&first.answer, s.primary, s.primary) {
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
            Checked::Untrusted(m) => {
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
        Checked::Untrusted(m) => {
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
        Checked::Untrusted(m) => {
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
            Checked::Untrusted(m) => Err(format!("mapping test {name} to {} {m}", e.to)),
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

pub(super) fn analyse_server(s: &Rfc5780, multi: &[Exchange]) -> ServerResult {
    match other_address(s, multi) {
        Err(d) => ServerResult::both(d),
        Ok(other) => ServerResult {
            mapping: mapping(s, other),
            filtering: filtering(s, other),
        },
    }
}

/// Merge per-server results: agreeing known values stay known; disagreement is inconclusive.
pub(super) fn merge<T: Copy + PartialEq + fmt::Display>(
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

#[cfg(test)]
mod tests {
    use super::super::sim::{is, sa, Server, Sim, TWO};
    use super::super::*;
    use FilteringBehavior as F;
    use MappingBehavior as M;

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
}
