//! Pure judgements over a finished run: the selected pair in a sentence, the likely cause of a
//! failure, and the verdict. Table-tested.

use crate::candidate::CandidateType;
use crate::model::connect::{Cause, CauseCode, ConnectCandidate, Policy, SideReport};
use crate::model::Verdict;

/// A plain sentence for the selected pair, e.g. "direct UDP via server-reflexive addresses" or
/// "relayed via turn:198.18.0.1 over UDP".
pub fn describe_pair(local: &ConnectCandidate, remote: &ConnectCandidate) -> String {
    use CandidateType::*;
    let transport = local.transport.to_uppercase();
    let name = |c: &ConnectCandidate| match &c.url {
        Some(u) => u.clone(),
        None => format!("relay {}", c.endpoint()),
    };
    let relays: Vec<String> = [local, remote]
        .iter()
        .filter(|c| c.kind == Relay)
        .map(|c| name(c))
        .collect();
    if local.kind == Relay && remote.kind == Relay {
        return if relays[0] == relays[1] {
            format!(
                "relayed via {} on both sides (relay to relay) over {transport}",
                relays[0]
            )
        } else {
            format!(
                "relayed via {} and the peer's {} over {transport}",
                relays[0], relays[1]
            )
        };
    }
    if local.kind == Relay {
        return format!("relayed via {} over {transport}", relays[0]);
    }
    if remote.kind == Relay {
        return format!("relayed via the peer's {} over {transport}", relays[0]);
    }
    let word = |k: CandidateType| match k {
        Host => "host",
        Srflx => "server-reflexive",
        Prflx => "peer-reflexive",
        Relay => "relayed",
    };
    if local.kind == remote.kind {
        format!("direct {transport} via {} addresses", word(local.kind))
    } else {
        format!(
            "direct {transport} from a {} to a {} address",
            word(local.kind),
            word(remote.kind)
        )
    }
}

/// What the run knew when it ended, beyond the side reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunFacts {
    /// A TURN server was handed to webrtc.
    pub relay_given: bool,
    /// Any server (STUN or TURN) was handed to webrtc.
    pub any_server: bool,
}

fn has(c: &[ConnectCandidate], k: CandidateType) -> bool {
    c.iter().any(|c| c.kind == k)
}

fn cause(code: CauseCode, text: String) -> Option<Cause> {
    Some(Cause { code, text })
}

/// The likely cause when a run did not connect and echo (`None` when it did).
pub fn likely_cause(sides: &[SideReport], facts: RunFacts) -> Option<Cause> {
    let connected = sides.iter().all(|s| s.timeline.connected_ms.is_some());
    let echoed = sides
        .iter()
        .all(|s| s.echo.as_ref().is_some_and(|e| e.received > 0));
    if connected && echoed {
        return None;
    }
    if let Some(s) = sides.iter().find(|s| s.local_candidates.is_empty()) {
        let text = match (s.policy, facts.relay_given) {
            (Policy::Relay, false) => format!(
                "side {} is relay-only but no UDP TURN server was given: add turn:HOST?transport=udp with credentials",
                s.side
            ),
            (Policy::Relay, true) => format!(
                "side {} is relay-only and gathered no relay candidate: the TURN server did not answer or refused the credentials; run `iceprobe check` on it",
                s.side
            ),
            (Policy::All, _) => format!(
                "side {} gathered no candidates at all: no usable local address (check --bind-{})",
                s.side, s.side
            ),
        };
        return cause(CauseCode::NothingGathered, text);
    }
    if facts.relay_given {
        if let Some(s) = sides
            .iter()
            .find(|s| !has(&s.local_candidates, CandidateType::Relay))
        {
            return cause(CauseCode::NoRelayCandidate,
                format!(
                    "a TURN server was given but side {} got no relay candidate from it: check it with `iceprobe check` (credentials, UDP reachability)",
                    s.side
                ),
            );
        }
    }
    if let Some(s) = sides.iter().find(|s| s.remote_candidates.is_empty()) {
        return cause(CauseCode::NoRemoteCandidates,
            format!(
                "side {} never received a candidate from its peer: signaling lost them, or the peer gathered nothing",
                s.side
            ),
        );
    }
    if connected {
        return cause(CauseCode::DataChannel,
            "ICE connected but the data channel did not carry the echo: DTLS or SCTP failed on the path (a middlebox dropping large UDP datagrams, or MTU)".into(),
        );
    }
    let relays_everywhere = sides.iter().all(|s| {
        has(&s.local_candidates, CandidateType::Relay)
            && has(&s.remote_candidates, CandidateType::Relay)
    });
    let evidence = pairs_tried(sides);
    if relays_everywhere {
        return cause(CauseCode::RelayNotForwarding,
            format!("relays were gathered on both sides but no relay pair connected: the relay does not forward between allocations: check denied-peer-ip / allowed-peer-ip (and no-loopback-peers) on the TURN server{evidence}"),
        );
    }
    if !facts.relay_given {
        let text = if facts.any_server {
            "no candidate pair worked and no TURN server was given: the NATs on the path map per destination (symmetric) or filter what a direct path needs; add a TURN server"
        } else {
            "no candidate pair worked with host candidates only: the peers are not on one network; give a STUN server, and add a TURN server for peers behind symmetric NATs"
        };
        return cause(CauseCode::AddTurnServer, format!("{text}{evidence}"));
    }
    cause(CauseCode::IceFailed,
        format!("no candidate pair succeeded although relay candidates existed: a firewall drops UDP between the peers and the relay{evidence}"),
    )
}

/// What the connectivity checks showed, as a tail for a failure cause: per side, how many
/// pairs were checked and how many answered, and the pairs where only the peer's checks
/// arrived (one direction works). Empty when no pair was seen.
fn pairs_tried(sides: &[SideReport]) -> String {
    let mut parts = vec![];
    for s in sides {
        let checked = s.pairs.iter().filter(|p| p.requests_sent > 0).count();
        if checked == 0 && s.pairs.is_empty() {
            continue;
        }
        let answered = s.pairs.iter().filter(|p| p.state == "succeeded").count();
        let one_way = s.pairs.iter().filter(|p| p.state == "waiting").count();
        let mut t = format!(
            "side {} checked {checked} of {} pairs, {answered} answered",
            s.side,
            s.pairs.len()
        );
        if one_way > 0 {
            t.push_str(&format!(
                ", on {one_way} only the peer's checks arrived (one direction works)"
            ));
        }
        parts.push(t);
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join("; "))
    }
}

/// Exit 0 only when every side connected and received echoes; 1 otherwise.
pub fn connect_verdict(sides: &[SideReport], cause: Option<&Cause>) -> Verdict {
    let ok = cause.is_none() && !sides.is_empty();
    let summary = if ok {
        let how = sides
            .iter()
            .find_map(|s| s.selected.as_ref())
            .map(|p| p.description.clone())
            .unwrap_or_else(|| "connected".into());
        format!("connected and echoed: {how}")
    } else {
        match cause {
            Some(c) => format!("not connected: {}", c.text),
            None => "not connected".into(),
        }
    };
    Verdict {
        ok,
        exit_code: if ok { 0 } else { 1 },
        summary,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::connect::{EchoReport, Side, Timeline};

    pub(crate) fn cand(kind: CandidateType, addr: &str, url: Option<&str>) -> ConnectCandidate {
        ConnectCandidate {
            kind,
            transport: "udp".into(),
            address: addr.into(),
            port: 50000,
            related_address: None,
            related_port: None,
            url: url.map(String::from),
        }
    }

    use CandidateType::*;

    #[test]
    fn failure_causes_say_which_pairs_were_tried() {
        let pair = |state: &str, sent| crate::model::connect::PairReport {
            local: cand(Host, "100.64.0.2", None),
            remote: cand(Srflx, "198.18.0.253", None),
            state: state.into(),
            nominated: false,
            requests_sent: sent,
            responses_received: 0,
            requests_received: u64::from(state == "waiting"),
            rtt_ms: None,
        };
        let mut a = side(
            Side::A,
            Policy::All,
            &[Host, Srflx],
            &[Host, Srflx],
            false,
            false,
        );
        a.pairs = vec![pair("failed", 6), pair("failed", 6), pair("frozen", 0)];
        let mut b = side(
            Side::B,
            Policy::All,
            &[Host, Srflx],
            &[Host, Srflx],
            false,
            false,
        );
        b.pairs = vec![pair("waiting", 0)];
        let facts = RunFacts {
            relay_given: false,
            any_server: true,
        };
        let c = likely_cause(&[a, b], facts).unwrap();
        assert_eq!(c.code, CauseCode::AddTurnServer);
        assert!(
            c.text.ends_with(
                "(side a checked 2 of 3 pairs, 0 answered; side b checked 0 of 1 pairs, 0 answered, on 1 only the peer's checks arrived (one direction works))"
            ),
            "{}",
            c.text
        );
    }

    #[test]
    fn pair_sentences() {
        let t = "turn:198.18.0.1";
        for (l, r, want) in [
            (
                cand(Host, "a", None),
                cand(Host, "b", None),
                "direct UDP via host addresses",
            ),
            (
                cand(Srflx, "a", None),
                cand(Srflx, "b", None),
                "direct UDP via server-reflexive addresses",
            ),
            (
                cand(Host, "a", None),
                cand(Prflx, "b", None),
                "direct UDP from a host to a peer-reflexive address",
            ),
            (
                cand(Relay, "a", Some(t)),
                cand(Srflx, "b", None),
                "relayed via turn:198.18.0.1 over UDP",
            ),
            (
                cand(Relay, "a", Some(t)),
                cand(Relay, "b", Some(t)),
                "relayed via turn:198.18.0.1 on both sides (relay to relay) over UDP",
            ),
            (
                cand(Srflx, "a", None),
                cand(Relay, "198.18.0.1", None),
                "relayed via the peer's relay 198.18.0.1:50000 over UDP",
            ),
        ] {
            assert_eq!(describe_pair(&l, &r), want);
        }
    }

    pub(crate) fn side(
        side: Side,
        policy: Policy,
        local: &[CandidateType],
        remote: &[CandidateType],
        connected: bool,
        echoed: bool,
    ) -> SideReport {
        SideReport {
            side,
            policy,
            timeline: Timeline {
                connected_ms: connected.then_some(10),
                ..Timeline::default()
            },
            local_candidates: local.iter().map(|k| cand(*k, "l", None)).collect(),
            remote_candidates: remote.iter().map(|k| cand(*k, "r", None)).collect(),
            pairs: vec![],
            selected: None,
            echo: echoed.then_some(EchoReport {
                sent: 20,
                received: 20,
                loss: 0.0,
                rtt_min_ms: Some(1.0),
                rtt_median_ms: Some(1.0),
                rtt_p95_ms: Some(1.0),
                rtt_max_ms: Some(1.0),
            }),
            throughput: None,
        }
    }

    #[test]
    fn likely_causes() {
        const STUN: RunFacts = RunFacts {
            relay_given: false,
            any_server: true,
        };
        const NONE: RunFacts = RunFacts {
            relay_given: false,
            any_server: false,
        };
        const TURN: RunFacts = RunFacts {
            relay_given: true,
            any_server: true,
        };
        let both = |p: Policy, l: &[CandidateType], r: &[CandidateType], c: bool, e: bool| {
            vec![side(Side::A, p, l, r, c, e), side(Side::B, p, l, r, c, e)]
        };
        let all = Policy::All;
        let relay = Policy::Relay;
        for (sides, facts, want) in [
            (both(all, &[Host], &[Host], true, true), NONE, None),
            (
                both(all, &[Host, Srflx], &[Host, Srflx], false, false),
                STUN,
                Some("add-turn-server"),
            ),
            (
                both(all, &[Host], &[Host], false, false),
                NONE,
                Some("add-turn-server"),
            ),
            (
                both(relay, &[Relay], &[Relay], false, false),
                TURN,
                Some("relay-not-forwarding"),
            ),
            (
                both(relay, &[], &[], false, false),
                TURN,
                Some("nothing-gathered"),
            ),
            (
                both(relay, &[], &[], false, false),
                STUN,
                Some("nothing-gathered"),
            ),
            (
                vec![
                    side(Side::A, all, &[Host, Relay], &[Host], false, false),
                    side(Side::B, all, &[Host], &[Host, Relay], false, false),
                ],
                TURN,
                Some("no-relay-candidate"),
            ),
            (
                both(all, &[Host], &[], false, false),
                NONE,
                Some("no-remote-candidates"),
            ),
            (
                both(all, &[Host], &[Host], true, false),
                NONE,
                Some("data-channel"),
            ),
            (
                both(all, &[Host, Relay], &[Host], false, false),
                TURN,
                Some("ice-failed"),
            ),
        ] {
            let got = likely_cause(&sides, facts);
            assert_eq!(got.as_ref().map(|c| c.code.as_str()), want, "{got:?}");
            let v = connect_verdict(&sides, got.as_ref());
            assert_eq!(v.exit_code, if want.is_none() { 0 } else { 1 });
        }
    }

    #[test]
    fn relay_only_without_turn_says_to_add_one() {
        let s = vec![side(Side::A, Policy::Relay, &[], &[], false, false)];
        let c = likely_cause(
            &s,
            RunFacts {
                relay_given: false,
                any_server: false,
            },
        )
        .unwrap();
        assert!(
            c.text.contains("no UDP TURN server was given"),
            "{}",
            c.text
        );
    }
}
