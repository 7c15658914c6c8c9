//! Pure renderers of `check` events, in the formats and style of [`super`]: events in,
//! bytes out to an injected writer. Snapshot-tested against `fixtures/golden/check.*`.

use std::io::{self, Write};

use comfy_table::{CellAlignment, Color, ColumnConstraint, LineStyle, TableStyle, Width};

use super::{expectations_block, ms, verdict_line, wrap, Format, Painter, Render, Style};
use crate::model::check::{
    stage_applies as applies, stages, CheckEvent, CheckReport, CheckRow, CheckStart, RowVerdict,
    StageView, CERT_EXPIRY_WARN_DAYS,
};
use crate::model::tls::{TlsInfo, Verification};
use crate::model::Outcome;

/// Render one `check` event as it happens.
///
/// - [`Format::Table`]: a start line, one line per finished row, then at the summary the stage
///   matrix with its legend, the TLS details, the servers' SOFTWARE, "what to fix" and the
///   verdict line.
/// - [`Format::Json`]: nothing until the summary, then the pretty [`CheckReport`] and a newline.
/// - [`Format::Ndjson`]: every event as one compact `{"type": ..., "data": ...}` line.
impl Render for CheckEvent {
    fn render(&self, format: Format, out: &mut dyn Write, style: &Style) -> io::Result<()> {
        super::event(format, self, out, style, |event, out, p| match event {
            CheckEvent::Start(s) => start_line(s, out, p),
            CheckEvent::Row(row) => row_line(row, out, p),
            CheckEvent::Summary(report) => summary(report, out, p),
        })
    }
}

fn start_line(s: &CheckStart, out: &mut dyn Write, p: Painter) -> io::Result<()> {
    let n = s.servers.len();
    let mut line = format!(
        "check: {n} server{}, {}, timeout {} ms",
        if n == 1 { "" } else { "s" },
        if s.all_transports {
            "all transports (udp 3478, tcp 3478, tls 5349)"
        } else {
            "each URL's own transport"
        },
        s.timeout_ms
    );
    if s.insecure_tls {
        line.push_str("  ");
        line.push_str(&p.red("!! --insecure: TLS certificates are NOT verified !!"));
    }
    writeln!(out, "{line}")
}

fn verdict_word(v: RowVerdict) -> &'static str {
    match v {
        RowVerdict::Pass => "PASS",
        RowVerdict::Warn => "WARN",
        RowVerdict::Fail => "FAIL",
    }
}

fn paint_verdict(v: RowVerdict, p: Painter) -> String {
    match v {
        RowVerdict::Pass => p.green("PASS"),
        RowVerdict::Warn => p.paint("1;33", "WARN"),
        RowVerdict::Fail => p.red("FAIL"),
    }
}

/// A row's address as the table shows it (`""` when it got none).
fn address(row: &CheckRow) -> String {
    row.address.map(|a| a.to_string()).unwrap_or_default()
}

/// `PASS  udp  198.18.0.1:3478  turn:h?transport=udp`, then the failure or the warnings.
fn row_line(row: &CheckRow, out: &mut dyn Write, p: Painter) -> io::Result<()> {
    let mut line = format!(
        "{}  {:<3}  {:<15}  {}",
        paint_verdict(row.verdict, p),
        row.transport,
        address(row),
        row.probed_url
    );
    let failed = stages(row)
        .into_iter()
        .find_map(|s| s.status.failed().map(|f| (s.name, f.failure.clone())));
    if let Some((name, f)) = failed {
        line.push_str(&format!(
            "  {} {} {}",
            p.red(&format!("{}: {}", name.column(), f.head())),
            p.dash(),
            f.cause
        ));
    } else if !row.warnings.is_empty() {
        let kinds: Vec<&str> = row.warnings.iter().map(|w| w.kind.as_str()).collect();
        line.push_str(&format!("  {}", p.dim(&kinds.join(", "))));
    }
    writeln!(out, "{line}")
}

/// Milliseconds for a matrix cell: one decimal below 10 ms, whole numbers above.
fn short_ms(v: f64) -> String {
    if v < 9.95 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// The legend printed under the matrix; keep it in step with [`matrix_cell`].
const LEGEND: &[(&str, &str)] = &[
    ("21", "passed in 21 ms"),
    ("FAIL 401", "failed (STUN/TURN error code)"),
    ("-", "does not apply"),
    ("skip", "not tried after a failure"),
    ("?", "not checked (see below)"),
];

/// What a matrix cell shows, and whether it is a not-checked stage whose reason must be listed.
fn matrix_cell(
    row: &CheckRow,
    stages: &[StageView],
    i: usize,
    p: Painter,
) -> (comfy_table::Cell, bool) {
    let s = &stages[i];
    match &s.status {
        Outcome::Ok(ms) => (p.cell(&short_ms(*ms)), false),
        Outcome::Failed(f) => {
            let text = match f.failure.code {
                Some(c) => format!("FAIL {c}"),
                None => "FAIL".to_string(),
            };
            (p.colored(&text, Color::Red), false)
        }
        Outcome::NotChecked { .. } if !applies(row, s.name) => {
            (p.colored("-", Color::DarkGrey), false)
        }
        Outcome::NotChecked { .. } if stages[..i].iter().any(|e| e.status.is_failed()) => {
            (p.colored("skip", Color::DarkGrey), false)
        }
        Outcome::NotChecked { .. } => (p.colored("?", Color::Yellow), true),
    }
}

/// Column headers of the matrix, one per stage of [`stages`].
const STAGE_HEADERS: [&str; 11] = [
    "dns",
    "connect",
    "tls",
    "stun",
    "401",
    "allocate",
    "perm",
    "chan",
    "send\necho",
    "chan\necho",
    "release",
];

/// The matrix has fourteen columns: it is drawn like `kubectl get`, without vertical lines, so
/// that an IPv4 row with a 36-character URL fits 140 columns on one line.
const MATRIX_ASCII: TableStyle = TableStyle::new()
    .header_separator(LineStyle::none().fill('-').junction('-'))
    .bottom_border(LineStyle::none().fill('-').junction('-'));

/// [`MATRIX_ASCII`] in UTF-8 box drawing.
const MATRIX_UTF8: TableStyle = TableStyle::new()
    .header_separator(LineStyle::none().fill('─').junction('─'))
    .bottom_border(LineStyle::none().fill('─').junction('─'));

fn matrix(report: &CheckReport, p: Painter) -> (comfy_table::Table, Vec<String>) {
    let mut header = vec!["server", "address"];
    header.extend(STAGE_HEADERS);
    header.push("verdict");
    let mut t = p.table(&header);
    t.load_style(if p.0.color { MATRIX_UTF8 } else { MATRIX_ASCII });
    let mut unchecked = Vec::new();
    for row in &report.rows {
        let st = stages(row);
        let mut cells = vec![
            p.cell(&row.probed_url.to_string()),
            p.cell(&format!("{} {}", address(row), row.transport)),
        ];
        for i in 0..st.len() {
            let (cell, listed) = matrix_cell(row, &st, i, p);
            if listed {
                if let Some(reason) = st[i].status.reason() {
                    unchecked.push(format!(
                        "{} {} {}: {reason}",
                        row.probed_url,
                        address(row),
                        st[i].name.column()
                    ));
                }
            }
            cells.push(cell);
        }
        let color = match row.verdict {
            RowVerdict::Pass => Color::Green,
            RowVerdict::Warn => Color::Yellow,
            RowVerdict::Fail => Color::Red,
        };
        cells.push(p.colored(verdict_word(row.verdict), color));
        t.add_row(cells);
    }
    // Only the server URL may wrap; addresses, times and verdicts never do. Columns are two
    // spaces apart: one of padding and the (blank) vertical line.
    let last = STAGE_HEADERS.len() + 2;
    for (i, col) in t.column_iter_mut().enumerate() {
        col.set_constraint(if i == 0 {
            ColumnConstraint::LowerBoundary(Width::Fixed(24))
        } else {
            ColumnConstraint::ContentWidth
        });
        col.set_padding((0, if i == last { 0 } else { 1 }));
        if (2..last).contains(&i) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    (t, unchecked)
}

fn days(n: i64) -> String {
    match n {
        n if n < 0 => format!("EXPIRED {} day{} ago", -n, if n == -1 { "" } else { "s" }),
        0 => "expires today".into(),
        1 => "1 day left".into(),
        n => format!("{n} days left"),
    }
}

fn tls_block(row: &CheckRow, tls: &TlsInfo, out: &mut dyn Write, p: Painter) -> io::Result<()> {
    writeln!(out, "  {} {}", row.probed_url, address(row))?;
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| p.dash().to_string());
    writeln!(
        out,
        "    {} {}, ALPN {}, SNI {}, handshake {}",
        tls.version,
        tls.cipher,
        opt(&tls.alpn),
        opt(&tls.sni),
        ms(tls.handshake_ms)
    )?;
    if let Some(leaf) = tls.chain.first() {
        writeln!(out, "    subject   {}", leaf.subject)?;
        writeln!(out, "    issuer    {}", leaf.issuer)?;
        writeln!(out, "    SANs      {}", leaf.sans.join(", "))?;
        let left = days(leaf.days_left);
        let left = if leaf.days_left < CERT_EXPIRY_WARN_DAYS {
            p.paint("1;33", &left)
        } else {
            left
        };
        writeln!(out, "    not after {} ({left})", leaf.not_after)?;
    }
    let verified = match &tls.verification {
        Verification::Verified => p.green("verified"),
        Verification::Skipped { would_fail: None } => {
            p.red("NOT verified (--insecure); it would have verified")
        }
        Verification::Skipped {
            would_fail: Some(problem),
        } => p.red(&format!(
            "NOT verified (--insecure); it would have failed: {}",
            problem.describe()
        )),
    };
    writeln!(
        out,
        "    chain     {} certificate{}, {verified}",
        tls.chain.len(),
        if tls.chain.len() == 1 { "" } else { "s" }
    )
}

/// SOFTWARE per server host, from the Binding or Allocate response; `None` when the server
/// answered without one. Hosts that never answered are left out: unknown is not "none".
fn software(report: &CheckReport) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for row in &report.rows {
        let answered = row.binding.is_ok() || row.allocate.is_ok();
        if !answered {
            continue;
        }
        let sw = row
            .binding
            .info()
            .and_then(|b| b.software.clone())
            .or_else(|| row.allocate.info().and_then(|a| a.software.clone()));
        let host = row.probed_url.host.to_string();
        let ip = row.address.map(|a| a.ip().to_string()).unwrap_or_default();
        let name = if host == ip || host == format!("[{ip}]") {
            host
        } else {
            format!("{host} ({ip})")
        };
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, s @ None)) => *s = sw,
            Some(_) => {}
            None => out.push((name, sw)),
        }
    }
    out
}

/// Rows that took a `--concurrency` slot: every row with an address, except the second row of
/// a followed 300 redirect, which ran in its first row's slot. (Rows without an address —
/// DNS failed, or no address of the family asked for — never waited for one.)
fn slotted_rows(rows: &[CheckRow]) -> usize {
    let followed = |prev: &CheckRow, row: &CheckRow| {
        row.address.is_some() && prev.alternate_server == row.address && prev.address != row.address
    };
    let follow_up = |i: usize| i > 0 && followed(&rows[i - 1], &rows[i]);
    rows.iter()
        .enumerate()
        .filter(|&(i, r)| r.address.is_some() && !follow_up(i))
        .count()
}

/// Why a check of many rows takes more than one row's time: they ran `concurrency` at a time.
fn queue_note(rows: usize, concurrency: usize) -> Option<String> {
    let concurrency = concurrency.max(1);
    (rows > concurrency).then(|| {
        format!(
            "{rows} rows ran {concurrency} at a time (--concurrency {concurrency}): the others waited for a free slot; --concurrency {rows} checks them all at once"
        )
    })
}

fn summary(report: &CheckReport, out: &mut dyn Write, p: Painter) -> io::Result<()> {
    writeln!(out)?;
    if report.rows.is_empty() {
        writeln!(out, "nothing was checked")?;
    } else {
        let (t, unchecked) = matrix(report, p);
        writeln!(out, "stages (times in ms)")?;
        for line in t.to_string().lines() {
            writeln!(out, "{}", line.trim_end())?;
        }
        let legend: Vec<String> = LEGEND.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        let legend = wrap(
            "legend: ",
            "        ",
            &legend.join(" | "),
            usize::from(p.0.width),
        );
        writeln!(out, "{}", p.dim(&legend))?;
        if !unchecked.is_empty() {
            writeln!(out, "\nnot checked")?;
            for u in unchecked {
                writeln!(out, "  ? {u}")?;
            }
        }
    }
    let tls_rows: Vec<&CheckRow> = report
        .rows
        .iter()
        .filter(|r| r.transport.is_secure() && !matches!(r.tls, Outcome::NotChecked { .. }))
        .collect();
    if !tls_rows.is_empty() {
        writeln!(out, "\ntls")?;
        for row in tls_rows {
            match &row.tls {
                Outcome::Ok(tls) => tls_block(row, &tls.info, out, p)?,
                Outcome::Failed(f) => writeln!(
                    out,
                    "  {} {}\n    {}",
                    row.probed_url,
                    address(row),
                    p.red(&format!("handshake failed: {}", f.failure.cause))
                )?,
                Outcome::NotChecked { .. } => {}
            }
        }
    }
    let sw = software(report);
    if !sw.is_empty() {
        writeln!(out, "\nsoftware")?;
        let w = sw.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        for (name, s) in sw {
            let s = s.unwrap_or_else(|| p.dim("(no SOFTWARE attribute)"));
            writeln!(out, "  {name:<w$}  {s}")?;
        }
    }
    if !report.fix.is_empty() {
        writeln!(out, "\nwhat to fix")?;
        let width = usize::from(p.0.width);
        for f in &report.fix {
            writeln!(out, "{}", wrap("  * ", "    ", f, width))?;
        }
    }
    if let Some(note) = queue_note(slotted_rows(&report.rows), report.concurrency) {
        writeln!(
            out,
            "\n{}",
            p.dim(&wrap("", "", &note, usize::from(p.0.width)))
        )?;
    }
    expectations_block(&report.expectations, out, p)?;
    verdict_line(
        &report.verdict,
        &format!("done in {}", ms(report.duration_ms)),
        out,
        p,
    )
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use crate::ice_url::Protocol;

    use super::*;
    use crate::model::check::{
        AllocationInfo, BindingInfo, ChallengeInfo, DnsInfo, EchoInfo, Nothing, Stage, WarningKind,
    };
    use crate::model::tests::fixture;
    use crate::render::tests::{
        self, assert_matches_schema, assert_rejected, golden, machine_round_trip, schema,
    };

    const UDP: &str = "turn:turn.example.org?transport=udp";
    const TCP: &str = "turn:turn.example.org?transport=tcp";
    const TLS: &str = "turns:turn.example.org";
    const EU: &str = "turn:turn-eu.example.org";

    fn ok<T>(ms: f64, info: T) -> Stage<T> {
        Stage::ok(ms, info)
    }

    fn done(ms: f64) -> Stage<Nothing> {
        ok(ms, Nothing {})
    }

    fn na<T>(reason: &str) -> Stage<T> {
        Stage::not_checked(reason)
    }

    fn dns(ms: f64, ip: &str) -> Stage<DnsInfo> {
        ok(
            ms,
            DnsInfo {
                addresses: vec![ip.parse().unwrap()],
                srv: vec![],
            },
        )
    }

    fn binding(ms: f64, mapped: &str, software: Option<&str>) -> Stage<BindingInfo> {
        ok(
            ms,
            BindingInfo {
                mapped: mapped.parse().unwrap(),
                software: software.map(String::from),
                fingerprint: true,
                sends: 1,
            },
        )
    }

    fn alloc(ms: f64, relayed: &str, software: Option<&str>) -> Stage<AllocationInfo> {
        ok(
            ms,
            AllocationInfo {
                relayed: relayed.parse().unwrap(),
                mapped: Some("198.18.0.254:40000".parse().unwrap()),
                lifetime_s: 600,
                integrity: Some(true),
                software: software.map(String::from),
            },
        )
    }

    fn echo(ms: f64, peer: &str) -> Stage<EchoInfo> {
        ok(
            ms,
            EchoInfo {
                peer: peer.parse().unwrap(),
                bytes: 64,
            },
        )
    }

    fn challenge(ms: f64) -> Stage<ChallengeInfo> {
        ok(
            ms,
            ChallengeInfo {
                realm: "example.org".into(),
            },
        )
    }

    /// A TURN row over `transport` where every applicable stage passed, ~20 ms RTT.
    fn healthy(probed: &str, address: &str, transport: Protocol, relayed: &str) -> CheckRow {
        let stream = transport.is_stream();
        let sw = Some("Coturn-4.6.2 'Gorst'");
        CheckRow {
            url: probed.parse().unwrap(),
            probed_url: probed.parse().unwrap(),
            family: Some(crate::model::Family::Ipv4),
            address: address.parse().ok(),
            transport,
            turn: true,
            dns: dns(
                1.234,
                address
                    .split(':')
                    .next()
                    .filter(|h| !h.is_empty())
                    .unwrap_or("198.18.0.1"),
            ),
            connect: if stream {
                done(20.512)
            } else {
                na("UDP has no connection")
            },
            tls: na("not a TLS transport"),
            binding: binding(21.402, "198.18.0.254:40000", sw),
            challenge: challenge(20.93),
            allocate: alloc(21.817, relayed, sw),
            permission: done(20.71),
            channel: done(20.64),
            send_echo: echo(21.33, "198.18.0.254:40001"),
            channel_echo: echo(21.12, "198.18.0.254:40001"),
            release: done(20.8),
            alternate_server: None,
            warnings: vec![],
            verdict: RowVerdict::Pass,
        }
    }

    /// The golden check (`fixtures/golden/check.json`: a healthy UDP row, a TCP row failing
    /// 401, a TLS row whose certificate expires in 5 days, a UDP row on another server relaying
    /// from a CGNAT address) as its events: `check::verdict` decided its warnings, fix list and
    /// verdict (its tests prove it), the renderer only shows them.
    fn events() -> Vec<CheckEvent> {
        let report: CheckReport = fixture("check.json");
        let start = CheckStart {
            servers: [UDP, TCP, TLS, EU].map(String::from).to_vec(),
            timeout_ms: 5000,
            all_transports: false,
            insecure_tls: false,
        };
        let mut ev = vec![CheckEvent::Start(start)];
        // Completion order differs from plan order.
        for i in [1, 0, 3, 2] {
            ev.push(CheckEvent::Row(Box::new(report.rows[i].clone())));
        }
        ev.push(CheckEvent::Summary(Box::new(report)));
        ev
    }

    fn render_all(format: Format, style: &Style) -> String {
        tests::render_all(&events(), format, style)
    }

    #[test]
    fn golden_table() {
        let got = render_all(Format::Table, &Style::default());
        let summary = got.lines().skip_while(|l| !l.is_empty());
        let long: Vec<&str> = summary
            .take_while(|l| !l.starts_with("FAILED"))
            .filter(|l| l.len() > usize::from(Style::default().width))
            .collect();
        assert!(long.is_empty(), "longer than 140 columns: {long:#?}");
        golden("check.table.txt", &got);
    }

    #[test]
    fn golden_json_and_ndjson_read_back() {
        machine_round_trip(&events(), Some("check"));
    }

    #[test]
    fn narrow_terminal_wraps_only_the_server_column() {
        let style = Style {
            color: false,
            width: 128,
        };
        let got = render_all(Format::Table, &style);
        let table: Vec<&str> = got
            .lines()
            .skip_while(|l| !l.starts_with("stages"))
            .take_while(|l| !l.starts_with("legend"))
            .collect();
        assert!(table.iter().all(|l| l.len() <= 128), "{}", table.join("\n"));
        assert!(got.contains("  198.18.0.1:3478 udp  "), "{got}");
        assert!(got.contains("  FAIL 401  "), "{got}");
    }

    #[test]
    fn only_rows_that_took_a_slot_count() {
        let at = |probed: &str, address: &str| {
            let mut r = healthy(probed, address, Protocol::Udp, "198.18.0.1:49152");
            r.address = address.parse().ok();
            r
        };
        let redirected = {
            let mut r = at(UDP, "198.18.0.1:3478");
            r.alternate_server = Some("198.18.0.2:3478".parse().unwrap());
            r
        };
        let looping = {
            let mut r = at(UDP, "198.18.0.1:3478");
            r.alternate_server = Some("198.18.0.1:3478".parse().unwrap());
            r
        };
        let cases: Vec<(&str, Vec<CheckRow>, usize)> = vec![
            ("none", vec![], 0),
            (
                "two addressed rows",
                vec![at(UDP, "198.18.0.1:3478"), at(TCP, "198.18.0.1:3478")],
                2,
            ),
            (
                "a row without an address took no slot",
                vec![at(UDP, "198.18.0.1:3478"), at(EU, "")],
                1,
            ),
            (
                "a followed redirect shares its slot",
                vec![redirected.clone(), at(UDP, "198.18.0.2:3478")],
                1,
            ),
            (
                "a redirect loop is not followed",
                vec![looping, at(TCP, "198.18.0.1:3478")],
                2,
            ),
            (
                "an unrelated next row counts",
                vec![redirected, at(EU, "198.18.0.3:3478")],
                2,
            ),
        ];
        for (what, rows, want) in cases {
            assert_eq!(slotted_rows(&rows), want, "{what}");
        }
    }

    #[test]
    fn queue_note_only_when_rows_waited() {
        let cases: &[(usize, usize, Option<&str>)] = &[
            (0, 64, None),
            (64, 64, None),
            (1000, 1024, None),
            (65, 64, Some("65 rows ran 64 at a time (--concurrency 64): the others waited for a free slot; --concurrency 65 checks them all at once")),
            (1000, 256, Some("1000 rows ran 256 at a time (--concurrency 256): the others waited for a free slot; --concurrency 1000 checks them all at once")),
            // A zero never divides: it counts as 1, as the semaphore does.
            (3, 0, Some("3 rows ran 1 at a time (--concurrency 1): the others waited for a free slot; --concurrency 3 checks them all at once")),
        ];
        for &(rows, conc, want) in cases {
            assert_eq!(
                queue_note(rows, conc).as_deref(),
                want,
                "{rows} rows at {conc}"
            );
        }
    }

    #[test]
    fn output_matches_the_schema() {
        let root = schema("check-v1.schema.json");
        let report = assert_matches_schema(&root, "CheckEvent", &events());
        assert_rejected(&root, &report, |r| {
            r["rows"][0]["allocate"]["status"] = "no".into()
        });
        assert_rejected(&root, &report, |r| r["rows"][0]["extra"] = 1.into());
        assert_rejected(&root, &report, |r| {
            r["rows"][2]["tls"]["info"]["verification"]["status"] = "maybe".into()
        });
    }

    #[test]
    fn schema_enums_are_the_model_enums() {
        let root = schema("check-v1.schema.json");
        let verdicts = [RowVerdict::Pass, RowVerdict::Warn, RowVerdict::Fail];
        for v in verdicts {
            match v {
                RowVerdict::Pass | RowVerdict::Warn | RowVerdict::Fail => {}
            }
        }
        let words: Vec<Value> = verdicts
            .iter()
            .map(|v| serde_json::to_value(v).unwrap())
            .collect();
        assert_eq!(root["$defs"]["RowVerdict"]["enum"], Value::Array(words));
        let kinds: Vec<Value> = WarningKind::ALL
            .iter()
            .map(|k| Value::from(k.as_str()))
            .collect();
        assert_eq!(
            root["$defs"]["Warning"]["properties"]["kind"]["enum"],
            Value::Array(kinds)
        );
        let gather: Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/docs/schema/gather-v1.schema.json"
            ))
            .unwrap(),
        )
        .unwrap();
        for shared in ["Phase", "Protocol", "Millis"] {
            assert_eq!(
                root["$defs"][shared], gather["$defs"][shared],
                "{shared} must match the gather schema"
            );
        }
    }
}
