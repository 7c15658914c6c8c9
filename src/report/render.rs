//! Pure renderers: events in, bytes out to an injected writer. Nothing here prints, reads the
//! environment or asks whether stdout is a terminal; the caller decides that and passes a
//! [`Style`]. Snapshot-tested against `fixtures/golden/`.

use std::fmt;
use std::io::{self, Write};

use comfy_table::{
    presets, Attribute, Cell, CellAlignment, Color, ColumnConstraint, ContentArrangement, Table,
    Width,
};

use crate::candidate::{Candidate, CandidateType};
use crate::failure::Failure;

use super::model::{Event, Expectation, GatherReport, Released, RunInfo, ServerSummary};

/// Output format (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Live lines as events arrive, then tables, hints and the verdict, for humans.
    #[default]
    Table,
    /// Nothing until the end, then the whole [`GatherReport`] as pretty JSON.
    #[value(help = "Nothing until the end, then the whole report as pretty JSON")]
    Json,
    /// One compact `{"type": ..., "data": ...}` [`Event`] per line, as it happens.
    #[value(help = "One compact {\"type\": ..., \"data\": ...} event per line, as it happens")]
    Ndjson,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Ndjson => "ndjson",
        })
    }
}

/// Table width used when the output is not a terminal, so that output is deterministic. Wide
/// enough for an IPv4 candidates table without wrapping.
pub const DEFAULT_WIDTH: u16 = 140;

/// The machine formats, the same for every command: [`Format::Json`] writes the summary's
/// report once, pretty, and nothing before it; [`Format::Ndjson`] writes every event as one
/// compact `{"type": ..., "data": ...}` line. `None` for [`Format::Table`], which each command
/// renders itself.
pub(super) fn machine<E: serde::Serialize, R: serde::Serialize>(
    format: Format,
    event: &E,
    summary: Option<&R>,
    out: &mut dyn Write,
) -> Option<io::Result<()>> {
    let written = match format {
        Format::Table => return None,
        Format::Json => match summary {
            Some(r) => serde_json::to_writer_pretty(&mut *out, r),
            None => return Some(Ok(())),
        },
        Format::Ndjson => serde_json::to_writer(&mut *out, event),
    };
    Some(
        written
            .map_err(io::Error::from)
            .and_then(|_| out.write_all(b"\n")),
    )
}

/// How the table format looks. Decided by the caller from the terminal and the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// ANSI colours and UTF-8 box drawing. Only when stdout is a TTY and `NO_COLOR` is unset;
    /// without it the output is plain ASCII.
    pub color: bool,
    /// Maximum table width in columns: the terminal's width on a TTY, else [`DEFAULT_WIDTH`].
    pub width: u16,
}

impl Default for Style {
    /// Plain ASCII, [`DEFAULT_WIDTH`] columns: what a pipe or a file gets.
    fn default() -> Self {
        Style {
            color: false,
            width: DEFAULT_WIDTH,
        }
    }
}

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

/// Milliseconds as people read them: `12.3 ms`.
pub(super) fn ms(v: f64) -> String {
    format!("{v:.1} ms")
}

/// Applies ANSI colour only when the style allows it, and picks ASCII or UTF-8 punctuation.
#[derive(Clone, Copy)]
pub(super) struct Painter<'a>(pub(super) &'a Style);

impl Painter<'_> {
    pub(super) fn paint(self, sgr: &str, s: &str) -> String {
        if self.0.color {
            format!("\x1b[{sgr}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    pub(super) fn red(self, s: &str) -> String {
        self.paint("1;31", s)
    }
    pub(super) fn green(self, s: &str) -> String {
        self.paint("1;32", s)
    }
    pub(super) fn dim(self, s: &str) -> String {
        self.paint("2", s)
    }
    pub(super) fn dash(self) -> &'static str {
        if self.0.color {
            "—"
        } else {
            "-"
        }
    }
    pub(super) fn table(self, header: &[&str]) -> Table {
        let mut t = Table::new();
        t.force_no_tty()
            .load_style(if self.0.color {
                presets::UTF8_FULL_CONDENSED
            } else {
                presets::ASCII_FULL_CONDENSED
            })
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(self.0.width)
            .set_header(
                header
                    .iter()
                    .map(|h| self.cell(h).add_attribute(Attribute::Bold)),
            );
        if self.0.color {
            t.enforce_styling();
        }
        t
    }
    pub(super) fn cell(self, s: &str) -> Cell {
        Cell::new(s)
    }
    pub(super) fn colored(self, s: &str, color: Color) -> Cell {
        let c = Cell::new(s);
        if self.0.color {
            c.fg(color)
        } else {
            c
        }
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

/// Width a table needs to show every cell on one line: content, one space of padding each side
/// and a border between and around columns.
pub(super) fn natural_width(t: &Table) -> usize {
    let content: usize = t
        .column_max_content_widths()
        .iter()
        .map(|w| *w as usize)
        .sum();
    content + 3 * t.column_iter().count() + 1
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

/// The `--expect` results, one line each (`PASS`/`FAIL`, the expression, what was observed);
/// nothing without `--expect`. Printed just before the verdict line.
pub(super) fn expectations_block(
    results: &[crate::expect::AssertionResult],
    out: &mut dyn Write,
    p: Painter,
) -> io::Result<()> {
    if results.is_empty() {
        return Ok(());
    }
    writeln!(out, "\nexpectations")?;
    let w = results
        .iter()
        .map(|r| r.expression.chars().count())
        .max()
        .unwrap_or(0);
    for r in results {
        let mark = if r.passed {
            p.green("PASS")
        } else {
            p.red("FAIL")
        };
        writeln!(out, "  {mark}  {:<w$}  {}", r.expression, r.observed)?;
    }
    Ok(())
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
pub(super) mod tests {
    use std::net::SocketAddr;
    use std::path::PathBuf;

    use serde_json::Value;

    use super::*;
    use crate::failure::{explain_code, ErrorContext, Phase};
    use crate::ice_url::{Protocol, ServerUrl};
    use crate::report::model::{verdict, SCHEMA_VERSION};

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

    /// Compare with `fixtures/golden/<name>`; `UPDATE_GOLDEN=1` rewrites it instead.
    pub(in crate::report) fn golden(name: &str, got: &str) {
        let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "fixtures", "golden", name]
            .iter()
            .collect();
        if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, got).unwrap();
            return;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_GOLDEN=1", path.display()));
        if got != want {
            let first = got
                .lines()
                .zip(want.lines())
                .position(|(g, w)| g != w)
                .unwrap_or_else(|| got.lines().count().min(want.lines().count()));
            panic!(
                "{} differs from the rendered output at line {}:\n  want: {:?}\n  got:  {:?}\n\
                 --- got (whole) ---\n{got}\n(if the change is intended, rerun with UPDATE_GOLDEN=1 and review the diff)",
                path.display(),
                first + 1,
                want.lines().nth(first),
                got.lines().nth(first),
            );
        }
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

    /// Validates `v` against the subset of JSON Schema 2020-12 the schema file uses. Any other
    /// keyword fails the test, so the subset can never be skipped silently.
    pub(in crate::report) fn validate(
        root: &Value,
        schema: &Value,
        v: &Value,
        at: &str,
    ) -> Result<(), String> {
        let obj = schema
            .as_object()
            .ok_or(format!("{at}: schema not an object"))?;
        for (k, s) in obj {
            match k.as_str() {
                "$schema" | "$defs" | "title" | "description" => {}
                "$ref" => {
                    let name = s.as_str().unwrap().strip_prefix("#/$defs/").unwrap();
                    validate(root, &root["$defs"][name], v, at)?;
                }
                "type" => {
                    let types: Vec<&str> = match s {
                        Value::String(t) => vec![t.as_str()],
                        _ => s
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|t| t.as_str().unwrap())
                            .collect(),
                    };
                    let ok = types.iter().any(|t| match *t {
                        "object" => v.is_object(),
                        "array" => v.is_array(),
                        "string" => v.is_string(),
                        "boolean" => v.is_boolean(),
                        "null" => v.is_null(),
                        "integer" => v.is_u64() || v.is_i64(),
                        "number" => v.is_number(),
                        t => panic!("type {t}"),
                    });
                    if !ok {
                        return Err(format!("{at}: {v} is not {types:?}"));
                    }
                }
                "const" if s != v => return Err(format!("{at}: {v} != const {s}")),
                "const" => {}
                "enum" if !s.as_array().unwrap().contains(v) => {
                    return Err(format!("{at}: {v} not in {s}"))
                }
                "enum" => {}
                "minimum" | "maximum" => {
                    if let (Some(x), Some(b)) = (v.as_f64(), s.as_f64()) {
                        if (k == "minimum" && x < b) || (k == "maximum" && x > b) {
                            return Err(format!("{at}: {x} breaks {k} {b}"));
                        }
                    }
                }
                "properties" => {
                    if let Some(o) = v.as_object() {
                        for (name, sub) in s.as_object().unwrap() {
                            if let Some(x) = o.get(name) {
                                validate(root, sub, x, &format!("{at}/{name}"))?;
                            }
                        }
                    }
                }
                "required" => {
                    for name in s.as_array().unwrap() {
                        if v.get(name.as_str().unwrap()).is_none() {
                            return Err(format!("{at}: missing {name}"));
                        }
                    }
                }
                "additionalProperties" => {
                    assert_eq!(s, &Value::Bool(false));
                    let known = obj["properties"].as_object().unwrap();
                    if let Some(extra) = v
                        .as_object()
                        .and_then(|o| o.keys().find(|k| !known.contains_key(*k)))
                    {
                        return Err(format!("{at}: unexpected field {extra}"));
                    }
                }
                "items" => {
                    for (i, x) in v.as_array().into_iter().flatten().enumerate() {
                        validate(root, s, x, &format!("{at}/{i}"))?;
                    }
                }
                "oneOf" => {
                    let results: Vec<_> = s
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|sub| validate(root, sub, v, at))
                        .collect();
                    let n = results.iter().filter(|r| r.is_ok()).count();
                    if n != 1 {
                        return Err(format!("{at}: {n} oneOf branches match: {results:?}"));
                    }
                }
                other => panic!("{at}: keyword {other} not supported by this test"),
            }
        }
        Ok(())
    }

    /// A schema file under docs/schema.
    pub(in crate::report) fn schema(file: &str) -> Value {
        let path = format!("{}/docs/schema/{file}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// Validate a JSON report against the schema's root and every NDJSON line against
    /// `#/$defs/{event}`; returns the report for further (negative) checks.
    pub(in crate::report) fn assert_matches_schema(
        root: &Value,
        event: &str,
        json: &str,
        ndjson: &str,
    ) -> Value {
        let report: Value = serde_json::from_str(json).unwrap();
        validate(root, root, &report, "").unwrap();
        let event = serde_json::json!({ "$ref": format!("#/$defs/{event}") });
        for line in ndjson.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            validate(root, &event, &v, "").unwrap();
        }
        report
    }

    /// The validator is not vacuous: `spoil` makes `report` invalid and it must be rejected.
    pub(in crate::report) fn assert_rejected(
        root: &Value,
        report: &Value,
        spoil: impl FnOnce(&mut Value),
    ) {
        let mut bad = report.clone();
        spoil(&mut bad);
        assert!(validate(root, root, &bad, "").is_err(), "accepted: {bad}");
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
