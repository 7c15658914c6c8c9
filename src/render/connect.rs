//! Pure renderers of `connect` events, in the formats and style of [`super::render`]: events
//! in, bytes out to an injected writer. Snapshot-tested against `fixtures/golden/connect*`.

use std::io::{self, Write};

use super::{verdict_line, Format, Painter, Render, Style};
use crate::model::connect::{
    CandidateEvent, ConnectCandidate, ConnectEvent, ConnectReport, ConnectStart, EchoReport,
    Origin, SideReport, StateEvent, Timeline,
};

/// Render one `connect` event as it happens.
///
/// - [`Format::Table`]: a start line, one line per candidate and state change, then per side
///   the timeline, the candidates, the pairs, the selected pair, the echo; the likely cause and
///   the verdict line.
/// - [`Format::Json`]: nothing until the summary, then the pretty [`ConnectReport`] and a newline.
/// - [`Format::Ndjson`]: every event as one compact `{"type": ..., "data": ...}` line.
impl Render for ConnectEvent {
    fn render(&self, format: Format, out: &mut dyn Write, style: &Style) -> io::Result<()> {
        super::event(format, self, out, style, |event, out, p| match event {
            ConnectEvent::Start(s) => start_line(s, out),
            ConnectEvent::Candidate(c) => candidate_line(c, out),
            ConnectEvent::State(s) => state_line(s, out, p),
            ConnectEvent::Summary(r) => summary(r, out, p),
        })
    }
}

fn start_line(s: &ConnectStart, out: &mut dyn Write) -> io::Result<()> {
    let mode = serde_json::to_value(s.mode)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    let servers = if s.servers.is_empty() {
        "no servers (host candidates only)".to_string()
    } else {
        s.servers.join(", ")
    };
    let sides: Vec<String> = s
        .sides
        .iter()
        .map(|x| {
            format!(
                "side {} policy {}{}",
                x.side,
                x.policy,
                x.bind
                    .as_ref()
                    .map(|b| format!(" bind {b}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    writeln!(
        out,
        "connect: {mode}, {servers}; {}; timeout {} ms, {} echoes",
        sides.join(", "),
        s.timeout_ms,
        s.count
    )?;
    for k in &s.skipped {
        writeln!(out, "  skipped {}: {}", k.url, k.why)?;
    }
    Ok(())
}

fn candidate_text(c: &ConnectCandidate) -> String {
    let mut t = format!("{:<5} {} {}", c.kind, c.transport, c.endpoint());
    if let (Some(a), Some(p)) = (&c.related_address, c.related_port) {
        t.push_str(&format!(" (related {a}:{p})"));
    }
    if let Some(u) = &c.url {
        t.push_str(&format!(" from {u}"));
    }
    t
}

fn candidate_line(c: &CandidateEvent, out: &mut dyn Write) -> io::Result<()> {
    let origin = match c.origin {
        Origin::Local => "local ",
        Origin::Remote => "remote",
    };
    writeln!(
        out,
        "{:>7} ms  {}  {origin} {}",
        c.elapsed_ms,
        c.side,
        candidate_text(&c.candidate)
    )
}

fn state_line(s: &StateEvent, out: &mut dyn Write, p: Painter) -> io::Result<()> {
    let machine = serde_json::to_value(s.machine)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    let state = match s.state.as_str() {
        "failed" | "deadline" => p.red(&s.state),
        "connected" | "open" => p.green(&s.state),
        _ => s.state.clone(),
    };
    writeln!(out, "{:>7} ms  {}  {machine} {state}", s.elapsed_ms, s.side)
}

fn opt_ms(v: Option<u64>) -> String {
    v.map(|v| format!("{v} ms")).unwrap_or_else(|| "-".into())
}

fn timeline(t: &Timeline) -> String {
    format!(
        "gathering done {}, checking {}, connected {}, failed {}, data channel open {}",
        opt_ms(t.gathering_done_ms),
        opt_ms(t.checking_ms),
        opt_ms(t.connected_ms),
        opt_ms(t.failed_ms),
        opt_ms(t.data_channel_open_ms)
    )
}

fn counts(cs: &[ConnectCandidate]) -> String {
    if cs.is_empty() {
        return "none".into();
    }
    let mut kinds: Vec<(crate::candidate::CandidateType, usize)> = Vec::new();
    for c in cs {
        match kinds.iter_mut().find(|(k, _)| *k == c.kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((c.kind, 1)),
        }
    }
    kinds.sort();
    kinds
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn echo(e: &Option<EchoReport>) -> String {
    let Some(e) = e else {
        return "not run (the data channel never opened)".into();
    };
    let f = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
    format!(
        "{}/{} echoed, loss {:.1}%, rtt min/median/p95/max {}/{}/{}/{} ms",
        e.received,
        e.sent,
        e.loss * 100.0,
        f(e.rtt_min_ms),
        f(e.rtt_median_ms),
        f(e.rtt_p95_ms),
        f(e.rtt_max_ms)
    )
}

fn side_block(s: &SideReport, out: &mut dyn Write, p: Painter) -> io::Result<()> {
    writeln!(out, "\nside {} (policy {})", s.side, s.policy)?;
    writeln!(out, "  timeline    {}", timeline(&s.timeline))?;
    writeln!(
        out,
        "  candidates  local: {}; remote: {}",
        counts(&s.local_candidates),
        counts(&s.remote_candidates)
    )?;
    if !s.pairs.is_empty() {
        let mut t = p.table(&[
            "local",
            "remote",
            "state",
            "nominated",
            "answered/sent",
            "peer sent",
            "rtt",
        ]);
        for pr in &s.pairs {
            t.add_row(vec![
                format!("{} {}", pr.local.kind, pr.local.endpoint()),
                format!("{} {}", pr.remote.kind, pr.remote.endpoint()),
                pr.state.clone(),
                if pr.nominated { "yes" } else { "no" }.into(),
                format!("{}/{}", pr.responses_received, pr.requests_sent),
                pr.requests_received.to_string(),
                pr.rtt_ms
                    .map(|r| format!("{r:.1} ms"))
                    .unwrap_or_else(|| "-".into()),
            ]);
        }
        for line in t.to_string().lines() {
            writeln!(out, "  {line}")?;
        }
    }
    match &s.selected {
        Some(sel) => writeln!(
            out,
            "  selected    {} {} -> {} {}: {}",
            sel.local.kind,
            sel.local.endpoint(),
            sel.remote.kind,
            sel.remote.endpoint(),
            p.green(&sel.description)
        )?,
        None => writeln!(out, "  selected    {}", p.red("none"))?,
    }
    writeln!(out, "  echo        {}", echo(&s.echo))?;
    if let Some(t) = &s.throughput {
        writeln!(
            out,
            "  throughput  {:.0} bytes/s ({} bytes in {} ms)",
            t.bytes_per_second, t.bytes, t.duration_ms
        )?;
    }
    Ok(())
}

fn summary(r: &ConnectReport, out: &mut dyn Write, p: Painter) -> io::Result<()> {
    for s in &r.sides {
        side_block(s, out, p)?;
    }
    if let Some(c) = &r.cause {
        writeln!(out, "\nlikely cause ({}): {}", c.code.as_str(), c.text)?;
    }
    let tail = format!("done in {:.0} ms", r.duration_ms);
    verdict_line(&r.verdict, &tail, out, p)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::candidate::CandidateType::{self, *};
    use crate::model::connect::*;
    use crate::model::Verdict;
    use crate::render::tests::{
        assert_matches_schema, assert_rejected, golden, machine_round_trip, render_all, schema,
    };

    fn c(kind: CandidateType, addr: &str, port: u16, url: Option<&str>) -> ConnectCandidate {
        ConnectCandidate {
            kind,
            transport: "udp".into(),
            address: addr.into(),
            port,
            related_address: (kind != Host).then(|| "100.64.0.2".into()),
            related_port: (kind != Host).then_some(5000),
            url: url.map(String::from),
        }
    }

    const TURN: &str = "turn:198.18.0.1";

    /// Loopback, relay to relay through one TURN server, connected and echoed.
    fn relayed() -> Vec<ConnectEvent> {
        let ra = c(Relay, "198.18.0.1", 49160, Some(TURN));
        let rb = c(Relay, "198.18.0.1", 49161, Some(TURN));
        let side = |s: Side, l: &ConnectCandidate, r: &ConnectCandidate| {
            let mut r_plain = r.clone();
            r_plain.url = None;
            SideReport {
                side: s,
                policy: Policy::Relay,
                timeline: Timeline {
                    gathering_done_ms: Some(40),
                    checking_ms: Some(45),
                    connected_ms: Some(60),
                    failed_ms: None,
                    data_channel_open_ms: Some(250),
                },
                local_candidates: vec![l.clone()],
                remote_candidates: vec![r_plain.clone()],
                pairs: vec![PairReport {
                    local: l.clone(),
                    remote: r_plain.clone(),
                    state: "succeeded".into(),
                    nominated: true,
                    requests_sent: 3,
                    responses_received: 3,
                    requests_received: 2,
                    rtt_ms: Some(0.4),
                }],
                selected: Some(SelectedPair {
                    description: format!(
                        "relayed via {TURN} and the peer's relay {} over UDP",
                        r_plain.endpoint()
                    ),
                    local: l.clone(),
                    remote: r_plain,
                }),
                echo: Some(EchoReport {
                    sent: 20,
                    received: 19,
                    loss: 0.05,
                    rtt_min_ms: Some(0.5),
                    rtt_median_ms: Some(0.5),
                    rtt_p95_ms: Some(0.5),
                    rtt_max_ms: Some(0.5),
                }),
                throughput: None,
            }
        };
        let sides = vec![side(Side::A, &ra, &rb), side(Side::B, &rb, &ra)];
        // What `connect::cause` decides for this run (the renderer only shows it).
        let cause = None;
        let verdict = Verdict {
            ok: true,
            exit_code: 0,
            summary: format!(
                "connected and echoed: {}",
                sides[0].selected.as_ref().unwrap().description
            ),
        };
        vec![
            ConnectEvent::Start(ConnectStart {
                mode: Mode::Loopback,
                servers: vec![TURN.into()],
                skipped: vec![SkippedServer {
                    url: "turns:198.18.0.1".into(),
                    why: "webrtc 0.21.1 gathers relays over UDP only".into(),
                }],
                sides: vec![
                    SideStart {
                        side: Side::A,
                        policy: Policy::Relay,
                        bind: None,
                    },
                    SideStart {
                        side: Side::B,
                        policy: Policy::Relay,
                        bind: Some("198.18.0.10".into()),
                    },
                ],
                timeout_ms: 20000,
                count: 20,
            }),
            ConnectEvent::Candidate(CandidateEvent {
                side: Side::A,
                origin: Origin::Local,
                elapsed_ms: 38,
                candidate: ra.clone(),
            }),
            ConnectEvent::State(StateEvent {
                side: Side::A,
                machine: StateMachine::Ice,
                state: "connected".into(),
                elapsed_ms: 60,
            }),
            ConnectEvent::Summary(Box::new(ConnectReport::new(
                ConnectBody {
                    mode: Mode::Loopback,
                    duration_ms: 900.0,
                    sides,
                    cause,
                },
                verdict,
            ))),
        ]
    }

    /// Two-host, symmetric NATs, STUN only: failed with "add a TURN server".
    fn failed() -> Vec<ConnectEvent> {
        let side = SideReport {
            side: Side::A,
            policy: Policy::All,
            timeline: Timeline {
                gathering_done_ms: Some(30),
                checking_ms: Some(35),
                connected_ms: None,
                failed_ms: Some(8100),
                data_channel_open_ms: None,
            },
            local_candidates: vec![
                c(Host, "100.64.0.2", 5000, None),
                c(Srflx, "198.18.0.254", 40000, Some("stun:198.18.0.1")),
            ],
            remote_candidates: vec![
                c(Host, "100.64.1.2", 6000, None),
                c(Srflx, "198.18.0.253", 41000, None),
            ],
            pairs: vec![],
            selected: None,
            echo: None,
            throughput: None,
        };
        let sides = vec![side];
        // What `connect::cause` decides for this run (the renderer only shows it).
        let text = "no candidate pair worked and no TURN server was given: the NATs on the path map per destination (symmetric) or filter what a direct path needs; add a TURN server";
        let cause = Some(Cause {
            code: CauseCode::AddTurnServer,
            text: text.into(),
        });
        let verdict = Verdict {
            ok: false,
            exit_code: 1,
            summary: format!("not connected: {text}"),
        };
        vec![
            ConnectEvent::Start(ConnectStart {
                mode: Mode::Peer,
                servers: vec!["stun:198.18.0.1".into()],
                skipped: vec![],
                sides: vec![SideStart {
                    side: Side::A,
                    policy: Policy::All,
                    bind: None,
                }],
                timeout_ms: 10000,
                count: 20,
            }),
            ConnectEvent::State(StateEvent {
                side: Side::A,
                machine: StateMachine::Ice,
                state: "failed".into(),
                elapsed_ms: 8100,
            }),
            ConnectEvent::Summary(Box::new(ConnectReport::new(
                ConnectBody {
                    mode: Mode::Peer,
                    duration_ms: 8200.0,
                    sides,
                    cause,
                },
                verdict,
            ))),
        ]
    }

    #[test]
    fn golden_outputs() {
        let plain = Style::default();
        for (name, ev) in [("connect-relayed", relayed()), ("connect-failed", failed())] {
            golden(
                &format!("{name}.table.txt"),
                &render_all(&ev, Format::Table, &plain),
            );
        }
        machine_round_trip(&relayed(), Some("connect"));
        machine_round_trip(&failed(), None);
    }

    #[test]
    fn the_fixtures_show_what_they_claim() {
        let t = render_all(&relayed(), Format::Table, &Style::default());
        assert!(
            t.contains(
                "relayed via turn:198.18.0.1 and the peer's relay 198.18.0.1:49161 over UDP"
            ),
            "{t}"
        );
        assert!(t.contains("19/20 echoed, loss 5.0%"), "{t}");
        assert!(t.contains("skipped turns:198.18.0.1"), "{t}");
        let t = render_all(&failed(), Format::Table, &Style::default());
        assert!(t.contains("likely cause (add-turn-server)"), "{t}");
        assert!(t.contains("exit 1"), "{t}");
    }

    #[test]
    fn output_matches_the_schema() {
        let root = schema("connect-v1.schema.json");
        let mut reports = vec![];
        for ev in [relayed(), failed()] {
            reports.push(assert_matches_schema(&root, "ConnectEvent", &ev));
        }
        let report = &reports[0];
        assert_rejected(&root, report, |r| {
            r["sides"][0]["local_candidates"][0]["type"] = "maybe".into()
        });
        assert_rejected(&root, report, |r| r["sides"][0]["extra"] = 1.into());
    }

    #[test]
    fn schema_enums_are_the_model_enums() {
        let root = schema("connect-v1.schema.json");
        let words = |v: Vec<Value>| Value::Array(v);
        assert_eq!(
            root["$defs"]["Mode"]["enum"],
            words(
                [
                    Mode::Loopback,
                    Mode::Listen,
                    Mode::Peer,
                    Mode::StdioOffer,
                    Mode::StdioAnswer
                ]
                .iter()
                .map(|m| serde_json::to_value(m).unwrap())
                .collect()
            )
        );
        assert_eq!(
            root["$defs"]["Machine"]["enum"],
            words(
                [
                    StateMachine::Gathering,
                    StateMachine::Ice,
                    StateMachine::Peer,
                    StateMachine::DataChannel
                ]
                .iter()
                .map(|m| serde_json::to_value(m).unwrap())
                .collect()
            )
        );
    }
}
