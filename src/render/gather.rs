//! The `gather` renderer: one line per start, candidate, error and released event, then the
//! candidates table, the per-server table, what to fix and the verdict.

use std::io::{self, Write};

use comfy_table::{Cell, CellAlignment, Color, ColumnConstraint, Table, Width};

use super::{
    expectations_block, families, ms, natural_width, verdict_line, Format, Painter, Render, Style,
};
use crate::candidate::{Candidate, CandidateType};
use crate::model::gather::{
    GatherError, GatherEvent, GatherReport, GatherStart, Gathered, Released, ServerSummary,
};
use crate::model::Outcome;

/// Render one event as it happens.
///
/// - [`Format::Table`]: one line per start, candidate, error and released event; at the summary,
///   a candidates table, a per-server table, "what to fix" hints and the verdict line.
/// - [`Format::Json`]: nothing until the summary, then the pretty [`GatherReport`] and a newline.
/// - [`Format::Ndjson`]: every event as one compact `{"type": ..., "data": ...}` line.
impl Render for GatherEvent {
    fn render(&self, format: Format, out: &mut dyn Write, style: &Style) -> io::Result<()> {
        super::event(format, self, out, style, |event, out, p| match event {
            GatherEvent::Start(run) => start_line(run, out, p),
            GatherEvent::Candidate(c) => candidate_line(c, out, p),
            GatherEvent::Error(e) => error_line(e, out, p),
            GatherEvent::Released(r) => released_line(r, out, p),
            GatherEvent::Summary(report) => summary(report, out, p),
        })
    }
}

/// Prefix of every live line: the elapsed time, right-aligned.
fn time_col(v: f64) -> String {
    format!("{:>10}", ms(v))
}

fn start_line(run: &GatherStart, out: &mut dyn Write, p: Painter) -> io::Result<()> {
    let n = run.servers.len();
    let mut line = format!(
        "{}: {n} server{}, {}, timeout {} ms, {}",
        run.command,
        if n == 1 { "" } else { "s" },
        families(&run.families, "+"),
        run.timeout_ms,
        if run.relay_only {
            "relay candidates only"
        } else {
            "all candidate types"
        }
    );
    if run.insecure_tls {
        line.push_str("  ");
        line.push_str(&p.red("!! --insecure: TLS certificates are NOT verified !!"));
    }
    writeln!(out, "{line}")
}

/// `udp` for host and srflx; for relays, how the TURN server was reached: `udp via tls`.
fn transport(c: &Candidate) -> String {
    match (c.kind, c.relay_protocol) {
        (CandidateType::Relay, Some(r)) => format!("{} via {r}", c.transport),
        _ => c.transport.to_string(),
    }
}

fn addr(ip: std::net::IpAddr, port: u16) -> String {
    std::net::SocketAddr::new(ip, port).to_string()
}

fn related(c: &Candidate) -> Option<String> {
    match (c.related_address, c.related_port) {
        (Some(a), Some(p)) => Some(addr(a, p)),
        (Some(a), None) => Some(a.to_string()),
        _ => None,
    }
}

fn candidate_line(c: &Candidate, out: &mut dyn Write, p: Painter) -> io::Result<()> {
    let kind = format!("{:<5}", c.kind.as_str());
    let kind = match c.kind {
        CandidateType::Relay | CandidateType::Srflx => p.green(&kind),
        _ => kind,
    };
    let mut line = format!(
        "{}  {kind}  {:<11}  {}",
        time_col(c.elapsed_ms),
        transport(c),
        addr(c.address, c.port)
    );
    if let Some(r) = related(c) {
        line.push_str(&format!("  raddr {r}"));
    }
    if let Some(u) = &c.url {
        line.push_str("  ");
        line.push_str(&p.dim(u));
    }
    writeln!(out, "{line}")
}

/// `turn-auth (relay) 401 Unauthorized`, or just the phase and candidate when there is no code
/// or reason.
fn failure_head(e: &GatherError) -> String {
    let f = &e.failure;
    format!("{} ({}){}", f.phase, e.candidate, f.code_and_reason())
}

fn error_line(e: &GatherError, out: &mut dyn Write, p: Painter) -> io::Result<()> {
    let mut line = format!(
        "{}  {}  {}",
        time_col(e.elapsed_ms),
        p.red(&format!("ERROR {}", failure_head(e))),
        e.url
    );
    if let Some(a) = &e.address {
        line.push_str(&format!(" ({a})"));
    }
    writeln!(out, "{line} {} {}", p.dash(), e.failure.cause)
}

fn released_line(r: &Released, out: &mut dyn Write, p: Painter) -> io::Result<()> {
    writeln!(
        out,
        "{}  released  {}  {}",
        time_col(r.elapsed_ms),
        r.relayed,
        p.dim(&r.url)
    )
}

/// What a server gave as a table cell. NotChecked is spelt out with its reason, never "no".
fn gathered_cell(g: &Gathered, p: Painter) -> Cell {
    match g {
        Outcome::Ok(o) => p.colored(&format!("ok ({})", ms(o.elapsed_ms)), Color::Green),
        Outcome::Failed(f) => p.colored(&format!("FAILED ({})", f.phase), Color::Red),
        Outcome::NotChecked { reason } => {
            p.colored(&format!("not checked ({reason})"), Color::DarkGrey)
        }
    }
}

fn released_cell(s: &ServerSummary, p: Painter) -> Cell {
    match s.released {
        Some(true) => p.colored("yes", Color::Green),
        Some(false) => p.colored("NO (allocation left on the server)", Color::Yellow),
        None => p.colored("n/a (no allocation)", Color::DarkGrey),
    }
}

/// The candidates table. When it does not fit the width, priority and foundation (which are in
/// the JSON output) give way before anything wraps; then only the URL column wraps.
fn candidates_table(report: &GatherReport, p: Painter) -> Table {
    let full = candidates_table_with(report, p, true);
    if natural_width(&full) <= usize::from(p.0.width) {
        full
    } else {
        candidates_table_with(report, p, false)
    }
}

fn candidates_table_with(report: &GatherReport, p: Painter, ids: bool) -> Table {
    let mut header = vec!["type", "transport", "address", "related"];
    if ids {
        header.extend(["priority", "foundation"]);
    }
    header.extend(["url", "at"]);
    let url_col = header.len() - 2;
    let mut t = p.table(&header);
    for c in &report.candidates {
        let mut row = vec![
            p.cell(c.kind.as_str()),
            p.cell(&transport(c)),
            p.cell(&addr(c.address, c.port)),
            p.cell(&related(c).unwrap_or_default()),
        ];
        if ids {
            row.push(
                p.cell(&c.priority.to_string())
                    .set_alignment(CellAlignment::Right),
            );
            row.push(p.cell(&c.foundation));
        }
        row.push(p.cell(c.url.as_deref().unwrap_or_default()));
        row.push(
            p.cell(&ms(c.elapsed_ms))
                .set_alignment(CellAlignment::Right),
        );
        t.add_row(row);
    }
    // Addresses and numbers never wrap; the URL column wraps but keeps a readable width.
    for (i, col) in t.column_iter_mut().enumerate() {
        col.set_constraint(if i == url_col {
            ColumnConstraint::LowerBoundary(Width::Fixed(24))
        } else {
            ColumnConstraint::ContentWidth
        });
    }
    t
}

fn servers_table(report: &GatherReport, p: Painter) -> Table {
    let mut t = p.table(&["server", "srflx", "relay", "released"]);
    if let Some(col) = t.column_mut(0) {
        col.set_constraint(ColumnConstraint::ContentWidth);
    }
    for s in &report.servers {
        t.add_row(vec![
            p.cell(&s.url.to_string()),
            gathered_cell(&s.srflx, p),
            gathered_cell(&s.relay, p),
            released_cell(s, p),
        ]);
    }
    t
}

fn summary(report: &GatherReport, out: &mut dyn Write, p: Painter) -> io::Result<()> {
    writeln!(out)?;
    if report.candidates.is_empty() {
        writeln!(out, "no candidates")?;
    } else {
        writeln!(out, "candidates")?;
        writeln!(out, "{}", candidates_table(report, p))?;
    }
    if !report.servers.is_empty() {
        writeln!(out, "\nservers")?;
        writeln!(out, "{}", servers_table(report, p))?;
    }
    if !report.fix.is_empty() {
        writeln!(out, "\nwhat to fix")?;
        for f in &report.fix {
            writeln!(out, "  * {}", f.cause)?;
            writeln!(out, "    {}", p.dim(&f.urls.join(", ")))?;
        }
    }
    expectations_block(&report.expectations, out, p)?;
    let mut tail = format!("done in {}", ms(report.duration_ms));
    if report.timed_out {
        tail.push_str(", cut short by the deadline");
    }
    verdict_line(&report.verdict, &tail, out, p)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use serde_json::Value;

    use super::*;
    use crate::ice_url::{Protocol, ServerUrl};
    use crate::model::gather::{FailedAt, Fix, GatherBody, Obtained};
    use crate::model::{Failure, Family, Phase, Verdict};
    use crate::render::tests::{
        self, assert_matches_schema, assert_rejected, golden, machine_round_trip, schema,
    };

    const STUN: &str = "stun:198.18.0.1";
    const TURN_UDP: &str = "turn:198.18.0.1?transport=udp";
    const TURN_TCP: &str = "turn:198.18.0.1?transport=tcp";
    const TURNS: &str = "turns:198.18.0.1?transport=tcp";
    const TURN_BAD: &str = "turn:198.18.0.2?transport=tcp";

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn cand(
        kind: CandidateType,
        addr: &str,
        related: Option<&str>,
        relay: Option<Protocol>,
        url: Option<&str>,
        elapsed_ms: f64,
    ) -> Candidate {
        let url: Option<ServerUrl> = url.map(|u| u.parse().unwrap());
        let server_ip = "198.18.0.1".parse().unwrap();
        Candidate::new(
            kind,
            sa(addr),
            related.map(sa),
            "100.64.0.2".parse().unwrap(),
            relay,
            url.as_ref().map(|u| (u, server_ip)),
            0,
            elapsed_ms,
        )
    }

    /// A realistic run: host, srflx, relays over UDP, TCP and TLS, a 401 on one TURN server, and
    /// a STUN URL whose relay is not checked.
    fn events() -> Vec<GatherEvent> {
        let run = GatherStart {
            command: "gather".into(),
            servers: [STUN, TURN_UDP, TURN_TCP, TURNS, TURN_BAD]
                .map(String::from)
                .to_vec(),
            timeout_ms: 5000,
            relay_only: false,
            families: vec![Family::Ipv4],
            insecure_tls: true,
        };
        let candidates = vec![
            cand(
                CandidateType::Host,
                "100.64.0.2:5000",
                None,
                None,
                None,
                0.412,
            ),
            cand(
                CandidateType::Srflx,
                "198.18.0.254:40000",
                Some("100.64.0.2:5000"),
                None,
                Some(STUN),
                12.345,
            ),
            cand(
                CandidateType::Relay,
                "198.18.0.1:49152",
                Some("198.18.0.254:40000"),
                Some(Protocol::Udp),
                Some(TURN_UDP),
                23.456,
            ),
            cand(
                CandidateType::Relay,
                "198.18.0.1:49153",
                Some("198.18.0.254:40001"),
                Some(Protocol::Tcp),
                Some(TURN_TCP),
                31.207,
            ),
            cand(
                CandidateType::Relay,
                "198.18.0.1:49154",
                Some("198.18.0.254:40002"),
                Some(Protocol::Tls),
                Some(TURNS),
                58.911,
            ),
        ];
        let cause = "wrong TURN credentials: the server rejected the username or password";
        let error = GatherError {
            url: TURN_BAD.into(),
            candidate: CandidateType::Relay,
            address: Some(sa("198.18.0.2:3478")),
            failure: Failure {
                phase: Phase::TurnAuth,
                code: Some(401),
                reason: Some("Unauthorized".into()),
                cause: cause.into(),
            },
            elapsed_ms: 26.734,
        };
        let released: Vec<Released> = [
            (TURN_UDP, "198.18.0.1:49152", 60.218),
            (TURN_TCP, "198.18.0.1:49153", 61.003),
            (TURNS, "198.18.0.1:49154", 88.4),
        ]
        .iter()
        .map(|(u, r, t)| Released {
            url: (*u).into(),
            relayed: sa(r),
            elapsed_ms: *t,
        })
        .collect();
        let ok = |elapsed_ms| Gathered::Ok(Obtained { elapsed_ms });
        let nc = |reason: &str| Gathered::not_checked(reason);
        let tcp_srflx = "browsers use only UDP TURN servers for srflx";
        let servers = vec![
            ServerSummary {
                url: STUN.parse().unwrap(),
                srflx: ok(12.345),
                relay: nc("stun: URLs give no relay"),
                released: None,
            },
            ServerSummary {
                url: TURN_UDP.parse().unwrap(),
                srflx: ok(23.456),
                relay: ok(23.456),
                released: Some(true),
            },
            ServerSummary {
                url: TURN_TCP.parse().unwrap(),
                srflx: nc(tcp_srflx),
                relay: ok(31.207),
                released: Some(true),
            },
            ServerSummary {
                url: TURNS.parse().unwrap(),
                srflx: nc(tcp_srflx),
                relay: ok(58.911),
                released: Some(true),
            },
            ServerSummary {
                url: TURN_BAD.parse().unwrap(),
                srflx: nc(tcp_srflx),
                relay: Gathered::Failed(FailedAt {
                    phase: Phase::TurnAuth,
                    cause: cause.into(),
                }),
                released: None,
            },
        ];
        // What `gather::verdict` decides for this run (the renderer only shows it).
        let verdict = Verdict {
            ok: false,
            exit_code: 1,
            summary: format!("FAILED: 1 of 5 servers ({TURN_BAD}); 1 host, 1 srflx, 3 relay"),
        };
        let fix = vec![Fix {
            cause: cause.into(),
            urls: vec![TURN_BAD.into()],
        }];
        let report = GatherReport::new(
            GatherBody {
                run: run.clone(),
                duration_ms: 90.52,
                timed_out: false,
                candidates: candidates.clone(),
                errors: vec![error.clone()],
                servers,
                fix,
            },
            verdict,
        );
        let mut ev = vec![GatherEvent::Start(run)];
        ev.extend(candidates[..3].iter().cloned().map(GatherEvent::Candidate));
        ev.push(GatherEvent::Error(error));
        ev.extend(candidates[3..].iter().cloned().map(GatherEvent::Candidate));
        ev.extend(released.into_iter().map(GatherEvent::Released));
        ev.push(GatherEvent::Summary(Box::new(report)));
        ev
    }

    fn render_all(format: Format, style: &Style) -> String {
        tests::render_all(&events(), format, style)
    }

    #[test]
    fn golden_table() {
        let got = render_all(Format::Table, &Style::default());
        golden("gather.table.txt", &got);
    }

    #[test]
    fn golden_json_and_ndjson_read_back() {
        machine_round_trip(&events(), Some("gather"));
    }

    #[test]
    fn not_checked_is_spelt_out() {
        let got = render_all(Format::Table, &Style::default());
        assert!(
            got.contains("not checked (stun: URLs give no relay)"),
            "{got}"
        );
        assert!(got.contains("--insecure"));
    }

    #[test]
    fn format_display_matches_value_enum() {
        use clap::ValueEnum;
        for f in Format::value_variants() {
            let name = f.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(f.to_string(), name);
            assert_eq!(Format::from_str(&name, false), Ok(*f));
        }
    }

    #[test]
    fn output_matches_the_schema() {
        let root = schema("gather-v1.schema.json");
        let report = assert_matches_schema(&root, "Event", &events());
        assert_rejected(&root, &report, |r| {
            r["servers"][0]["relay"]["status"] = "no".into()
        });
        assert_rejected(&root, &report, |r| r["candidates"][0]["extra"] = 1.into());
    }

    #[test]
    fn schema_enums_are_the_model_enums() {
        // Exhaustive matches: a new variant fails to compile here until the schema is updated.
        let phases = [
            Phase::Dns,
            Phase::Connect,
            Phase::Tls,
            Phase::Stun,
            Phase::TurnAuth,
            Phase::TurnAllocate,
            Phase::Permission,
            Phase::Channel,
            Phase::Relay,
            Phase::Release,
            Phase::Timeout,
        ];
        for p in phases {
            match p {
                Phase::Dns
                | Phase::Connect
                | Phase::Tls
                | Phase::Stun
                | Phase::TurnAuth
                | Phase::TurnAllocate
                | Phase::Permission
                | Phase::Channel
                | Phase::Relay
                | Phase::Release
                | Phase::Timeout => {}
            }
        }
        let kinds = [
            CandidateType::Host,
            CandidateType::Srflx,
            CandidateType::Prflx,
            CandidateType::Relay,
        ];
        for k in kinds {
            match k {
                CandidateType::Host
                | CandidateType::Srflx
                | CandidateType::Prflx
                | CandidateType::Relay => {}
            }
        }
        let protocols = [Protocol::Udp, Protocol::Tcp, Protocol::Tls, Protocol::Dtls];
        for p in protocols {
            match p {
                Protocol::Udp | Protocol::Tcp | Protocol::Tls | Protocol::Dtls => {}
            }
        }
        let root = schema("gather-v1.schema.json");
        let names = |def: &str| root["$defs"][def]["enum"].clone();
        let words = |v: Vec<Value>| Value::Array(v);
        assert_eq!(names("Phase"), words(phases.iter().map(json).collect()));
        assert_eq!(
            names("CandidateType"),
            words(kinds.iter().map(json).collect())
        );
        assert_eq!(
            names("Protocol"),
            words(protocols.iter().map(json).collect())
        );
        let statuses: Vec<Value> = root["$defs"]["Expectation"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["properties"]["status"]["const"].clone())
            .collect();
        let model = [
            Gathered::Ok(Obtained { elapsed_ms: 1.0 }),
            Gathered::Failed(FailedAt {
                phase: Phase::Dns,
                cause: String::new(),
            }),
            Gathered::not_checked(""),
        ];
        let model: Vec<Value> = model
            .iter()
            .map(|e| {
                match e {
                    Outcome::Ok(_) | Outcome::Failed(_) | Outcome::NotChecked { .. } => {}
                }
                serde_json::to_value(e).unwrap()["status"].clone()
            })
            .collect();
        assert_eq!(statuses, model);
    }

    #[test]
    fn narrow_terminal_drops_ids_before_wrapping_addresses() {
        let style = Style {
            color: false,
            width: 100,
        };
        let got = render_all(Format::Table, &style);
        let table: Vec<&str> = got
            .lines()
            .skip_while(|l| *l != "candidates")
            .take_while(|l| !l.is_empty())
            .collect();
        assert!(!table[2].contains("foundation"), "{}", table.join("\n"));
        assert!(table.iter().all(|l| l.len() <= 100), "{}", table.join("\n"));
        assert!(got.contains("| 198.18.0.254:40000 |"), "{got}");
    }

    fn json<T: serde::Serialize>(x: &T) -> Value {
        serde_json::to_value(x).unwrap()
    }
}
