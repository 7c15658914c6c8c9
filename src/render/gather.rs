//! The `gather` renderer: one line per start, candidate, error and released event, then the
//! candidates table, the per-server table, what to fix and the verdict.

use std::io::{self, Write};

use comfy_table::{Cell, CellAlignment, Color, ColumnConstraint, Table, Width};

use crate::candidate::{Candidate, CandidateType};
use crate::model::Failure;

use super::{expectations_block, machine, ms, natural_width, Format, Painter, Style};
use crate::model::{Event, Expectation, GatherReport, Released, RunInfo, ServerSummary};

/// Render one event as it happens.
///
/// - [`Format::Table`]: one line per start, candidate, error and released event; at the summary,
///   a candidates table, a per-server table, "what to fix" hints and the verdict line.
/// - [`Format::Json`]: nothing until the summary, then the pretty [`GatherReport`] and a newline.
/// - [`Format::Ndjson`]: every event as one compact `{"type": ..., "data": ...}` line.
pub fn render_event(
    format: Format,
    event: &Event,
    out: &mut dyn Write,
    style: &Style,
) -> io::Result<()> {
    let finished = match event {
        Event::Summary(report) => Some(report),
        _ => None,
    };
    if let Some(done) = machine(format, event, finished, out) {
        return done;
    }
    let p = Painter(style);
    match event {
        Event::Start(run) => start_line(run, out, p),
        Event::Candidate(c) => candidate_line(c, out, p),
        Event::Error(e) => error_line(e, out, p),
        Event::Released(r) => released_line(r, out, p),
        Event::Summary(report) => summary(report, out, p),
    }
}

/// Prefix of every live line: the elapsed time, right-aligned.
fn time_col(v: f64) -> String {
    format!("{:>10}", ms(v))
}

fn start_line(run: &RunInfo, out: &mut dyn Write, p: Painter) -> io::Result<()> {
    let n = run.servers.len();
    let mut line = format!(
        "{}: {n} server{}, {}, timeout {} ms, {}",
        run.command,
        if n == 1 { "" } else { "s" },
        run.families.join("+"),
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

/// `turn-auth 401 Unauthorized`, or just the phase when there is no code or reason.
fn failure_head(e: &Failure) -> String {
    let mut s = format!("{} ({})", e.phase, e.candidate);
    if let Some(c) = e.code {
        s.push_str(&format!(" {c}"));
    }
    if let Some(r) = &e.reason {
        s.push_str(&format!(" {r}"));
    }
    s
}

fn error_line(e: &Failure, out: &mut dyn Write, p: Painter) -> io::Result<()> {
    let mut line = format!(
        "{}  {}  {}",
        time_col(e.elapsed_ms),
        p.red(&format!("ERROR {}", failure_head(e))),
        e.url
    );
    if let Some(a) = &e.address {
        line.push_str(&format!(" ({a})"));
    }
    writeln!(out, "{line} {} {}", p.dash(), e.cause)
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

/// An expectation as a table cell. NotChecked is spelt out with its reason, never "no".
fn expectation_cell(e: &Expectation, p: Painter) -> Cell {
    match e {
        Expectation::Ok { elapsed_ms } => {
            p.colored(&format!("ok ({})", ms(*elapsed_ms)), Color::Green)
        }
        Expectation::Failed { phase, .. } => p.colored(&format!("FAILED ({phase})"), Color::Red),
        Expectation::NotChecked { reason } => {
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
            p.cell(&s.url),
            expectation_cell(&s.srflx, p),
            expectation_cell(&s.relay, p),
            released_cell(s, p),
        ]);
    }
    t
}

/// "What to fix": one bullet per distinct cause, naming every URL that has it, in the order the
/// causes first appeared (errors, then failed expectations that no error explained).
fn fixes(report: &GatherReport) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut add = |cause: &str, url: &str| match out.iter_mut().find(|(c, _)| c == cause) {
        Some((_, urls)) => {
            if !urls.iter().any(|u| u == url) {
                urls.push(url.to_string());
            }
        }
        None => out.push((cause.to_string(), vec![url.to_string()])),
    };
    for e in &report.errors {
        add(&e.cause, &e.url);
    }
    for s in &report.servers {
        for e in [&s.srflx, &s.relay] {
            if let Expectation::Failed { cause, .. } = e {
                add(cause, &s.url);
            }
        }
    }
    out
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
    let fixes = fixes(report);
    if !fixes.is_empty() {
        writeln!(out, "\nwhat to fix")?;
        for (cause, urls) in fixes {
            writeln!(out, "  * {cause}")?;
            writeln!(out, "    {}", p.dim(&urls.join(", ")))?;
        }
    }
    expectations_block(&report.expectations, out, p)?;
    let mut tail = format!("done in {}", ms(report.duration_ms));
    if report.timed_out {
        tail.push_str(", cut short by the deadline");
    }
    let verdict = if report.verdict.ok {
        p.green(&report.verdict.summary)
    } else {
        p.red(&report.verdict.summary)
    };
    writeln!(
        out,
        "\n{verdict} ({tail}; exit {})",
        report.verdict.exit_code
    )
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use serde_json::Value;

    use super::*;
    use crate::failure::{explain_code, ErrorContext};
    use crate::gather::verdict::verdict;
    use crate::ice_url::{Protocol, ServerUrl};
    use crate::model::Phase;
    use crate::model::SCHEMA_VERSION;
    use crate::render::tests::{assert_matches_schema, assert_rejected, golden, schema};

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
    fn events() -> Vec<Event> {
        let run = RunInfo {
            command: "gather".into(),
            servers: [STUN, TURN_UDP, TURN_TCP, TURNS, TURN_BAD]
                .map(String::from)
                .to_vec(),
            timeout_ms: 5000,
            relay_only: false,
            families: vec!["ipv4".into()],
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
        let cause = explain_code(Phase::TurnAuth, 401, &ErrorContext::default());
        let error = Failure {
            url: TURN_BAD.into(),
            candidate: CandidateType::Relay,
            address: Some("198.18.0.2:3478".into()),
            phase: Phase::TurnAuth,
            code: Some(401),
            reason: Some("Unauthorized".into()),
            cause: cause.clone(),
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
            relayed: (*r).into(),
            elapsed_ms: *t,
        })
        .collect();
        let ok = |elapsed_ms| Expectation::Ok { elapsed_ms };
        let nc = |reason: &str| Expectation::NotChecked {
            reason: reason.into(),
        };
        let tcp_srflx = "browsers use only UDP TURN servers for srflx";
        let servers = vec![
            ServerSummary {
                url: STUN.into(),
                srflx: ok(12.345),
                relay: nc("stun: URLs give no relay"),
                released: None,
            },
            ServerSummary {
                url: TURN_UDP.into(),
                srflx: ok(23.456),
                relay: ok(23.456),
                released: Some(true),
            },
            ServerSummary {
                url: TURN_TCP.into(),
                srflx: nc(tcp_srflx),
                relay: ok(31.207),
                released: Some(true),
            },
            ServerSummary {
                url: TURNS.into(),
                srflx: nc(tcp_srflx),
                relay: ok(58.911),
                released: Some(true),
            },
            ServerSummary {
                url: TURN_BAD.into(),
                srflx: nc(tcp_srflx),
                relay: Expectation::Failed {
                    phase: Phase::TurnAuth,
                    cause,
                },
                released: None,
            },
        ];
        let report = GatherReport {
            schema_version: SCHEMA_VERSION,
            command: "gather".into(),
            iceprobe_version: "0.1.0".into(),
            run: run.clone(),
            duration_ms: 90.52,
            timed_out: false,
            expectations: Vec::new(),
            verdict: verdict(&servers, &candidates),
            candidates: candidates.clone(),
            errors: vec![error.clone()],
            servers,
        };
        let mut ev = vec![Event::Start(run)];
        ev.extend(candidates[..3].iter().cloned().map(Event::Candidate));
        ev.push(Event::Error(error));
        ev.extend(candidates[3..].iter().cloned().map(Event::Candidate));
        ev.extend(released.into_iter().map(Event::Released));
        ev.push(Event::Summary(report));
        ev
    }

    fn render_all(format: Format, style: &Style) -> String {
        let mut out = Vec::new();
        for e in events() {
            render_event(format, &e, &mut out, style).unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn golden_table() {
        let got = render_all(Format::Table, &Style::default());
        assert!(got.is_ascii(), "plain style must be ASCII");
        assert!(!got.contains('\x1b'), "no colour codes without color");
        golden("gather.table.txt", &got);
    }

    #[test]
    fn golden_json() {
        golden("gather.json", &render_all(Format::Json, &Style::default()));
    }

    #[test]
    fn golden_ndjson() {
        golden(
            "gather.ndjson",
            &render_all(Format::Ndjson, &Style::default()),
        );
    }

    #[test]
    fn json_round_trips_into_the_model() {
        let got = render_all(Format::Json, &Style::default());
        let back: GatherReport = serde_json::from_str(&got).expect("JSON output is a GatherReport");
        let Some(Event::Summary(want)) = events().pop() else {
            unreachable!()
        };
        assert_eq!(back, want);
    }

    #[test]
    fn every_ndjson_line_is_an_event() {
        let got = render_all(Format::Ndjson, &Style::default());
        let back: Vec<Event> = got
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(back, events());
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
    fn colour_only_when_asked() {
        let style = Style {
            color: true,
            width: 200,
        };
        let got = render_all(Format::Table, &style);
        assert!(got.contains("\x1b["), "colour codes when color is on");
        // JSON and NDJSON never carry colour.
        for f in [Format::Json, Format::Ndjson] {
            assert!(!render_all(f, &style).contains('\x1b'));
        }
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
    fn fixes_are_deduplicated() {
        let Some(Event::Summary(mut r)) = events().pop() else {
            unreachable!()
        };
        let dup = Failure {
            url: "turn:198.18.0.3".into(),
            ..r.errors[0].clone()
        };
        r.errors.push(dup.clone());
        r.errors.push(dup);
        let f = fixes(&r);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].1, vec![TURN_BAD.to_string(), "turn:198.18.0.3".into()]);
    }

    #[test]
    fn output_matches_the_schema() {
        let root = schema("gather-v1.schema.json");
        let style = Style::default();
        let report = assert_matches_schema(
            &root,
            "Event",
            &render_all(Format::Json, &style),
            &render_all(Format::Ndjson, &style),
        );
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
            Expectation::Ok { elapsed_ms: 1.0 },
            Expectation::Failed {
                phase: Phase::Dns,
                cause: String::new(),
            },
            Expectation::NotChecked {
                reason: String::new(),
            },
        ];
        let model: Vec<Value> = model
            .iter()
            .map(|e| {
                match e {
                    Expectation::Ok { .. }
                    | Expectation::Failed { .. }
                    | Expectation::NotChecked { .. } => {}
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
