//! Pure renderers of `nat` events, in the formats and style of [`super::render`]: events in,
//! bytes out to an injected writer. Snapshot-tested against `fixtures/golden/nat*`.

use std::fmt::Display;
use std::io::{self, Write};

use crate::model::nat::{Answer, Change};
use crate::model::nat::{ConfidenceLevel, Determination, LifetimeRange, NatVerdict};

use super::{expectations_block, families, ms, verdict_line, wrap, Format, Painter, Render, Style};
use crate::model::nat::{NatEvent, NatExchange, NatReport, NatStart};

/// Render one `nat` event as it happens.
///
/// - [`Format::Table`]: a start line, one line per exchange, then at the summary a verdict
///   block per family (each finding with its evidence, or "inconclusive (reason)" / "not
///   checked (reason)"), the classic name as a hint, the confidence, the P2P forecast, and the
///   verdict line.
/// - [`Format::Json`]: nothing until the summary, then the pretty [`NatReport`] and a newline.
/// - [`Format::Ndjson`]: every event as one compact `{"type": ..., "data": ...}` line.
impl Render for NatEvent {
    fn render(&self, format: Format, out: &mut dyn Write, style: &Style) -> io::Result<()> {
        super::event(format, self, out, style, |event, out, p| match event {
            NatEvent::Start(s) => start_line(s, out),
            NatEvent::Exchange(x) => exchange_line(x, out, p),
            NatEvent::Summary(report) => summary(report, out, p),
        })
    }
}

fn start_line(s: &NatStart, out: &mut dyn Write) -> io::Result<()> {
    let n = s.servers.len();
    writeln!(
        out,
        "nat: {n} server{}, {}, timeout {} ms, lifetime search {}",
        if n == 1 { "" } else { "s" },
        families(&s.families, " + "),
        s.timeout_ms,
        if s.lifetime { "on" } else { "off" }
    )
}

/// `   21.0 ms  ipv4  filtering-II   198.51.100.1:3478  change IP+port  from ... mapped ...`
fn exchange_line(x: &NatExchange, out: &mut dyn Write, p: Painter) -> io::Result<()> {
    let e = &x.exchange;
    let change = match e.change {
        Change::None => "",
        Change::Port => "change port",
        Change::IpAndPort => "change IP+port",
    };
    let result = match &e.answer {
        Answer::Reply { from, rtt_ms, .. } => {
            let mapped = e
                .answer
                .mapped()
                .map(|m| m.to_string())
                .unwrap_or_else(|| p.dash().to_string());
            format!("from {from}  mapped {mapped}  ({})", ms(*rtt_ms))
        }
        Answer::Error { code, reason } => p.red(&format!("error {code} {reason}")),
        Answer::Rejected { why } => p.red(&format!("rejected: {why}")),
        Answer::Timeout => p.dim("no answer"),
    };
    writeln!(
        out,
        "{:>9}  {}  {:<13}  {:<22}  {:<14}  {result}",
        ms(x.elapsed_ms),
        x.family,
        x.test.to_string(),
        e.to.to_string(),
        change
    )
}

const LABEL: usize = 18;

/// `  mapping           <body>`, the body wrapped under itself.
fn line(out: &mut dyn Write, p: Painter, label: &str, body: &str) -> io::Result<()> {
    let first = format!("  {label:<LABEL$}");
    let indent = " ".repeat(first.len());
    writeln!(
        out,
        "{}",
        wrap(&first, &indent, body, usize::from(p.0.width))
    )
}

/// A determination as `value: evidence`, `inconclusive (reason)` or `not checked (reason)`.
fn determination<T>(
    out: &mut dyn Write,
    p: Painter,
    label: &str,
    d: &Determination<T>,
    word: impl Fn(&T) -> String,
) -> io::Result<()> {
    match d {
        Determination::Known { value, evidence } => {
            line(out, p, label, &format!("{}: {evidence}", word(value)))
        }
        Determination::Inconclusive { reason } => line(
            out,
            p,
            label,
            &format!("{} ({reason})", p.paint("1;33", "inconclusive")),
        ),
        Determination::NotChecked { reason } => line(
            out,
            p,
            label,
            &format!("{} ({reason})", p.dim("not checked")),
        ),
    }
}

fn display<T: Display>(v: &T) -> String {
    v.to_string()
}

fn yes_no(v: &bool) -> String {
    if *v { "yes" } else { "no" }.to_string()
}

fn lifetime(l: &LifetimeRange) -> String {
    match (l.alive_after_s, l.expired_after_s) {
        (Some(a), Some(x)) => format!("{a:.0}-{x:.0} s"),
        (Some(a), None) => format!("more than {a:.0} s"),
        (None, Some(x)) => format!("less than {x:.0} s"),
        (None, None) => "unknown".into(),
    }
}

fn family_block(v: &NatVerdict, out: &mut dyn Write, p: Painter) -> io::Result<()> {
    let mapped = v
        .mapped_address
        .map(|m| format!(" (mapped address {m})"))
        .unwrap_or_default();
    writeln!(out, "\n{}{mapped}", v.family)?;
    determination(out, p, "mapping", &v.mapping, display)?;
    determination(out, p, "filtering", &v.filtering, display)?;
    determination(out, p, "hairpin", &v.hairpin, yes_no)?;
    determination(out, p, "NAT present", &v.nat_present, yes_no)?;
    determination(out, p, "CGNAT/double NAT", &v.cgnat_or_double_nat, yes_no)?;
    determination(out, p, "ALG", &v.alg_suspected, yes_no)?;
    determination(out, p, "port allocation", &v.port_allocation, display)?;
    determination(out, p, "lifetime", &v.lifetime, lifetime)?;
    determination(out, p, "UDP blocked", &v.udp_blocked, yes_no)?;
    determination(out, p, "TCP fallback", &v.tcp_fallback, yes_no)?;
    match &v.classic_name {
        Determination::Known { value, .. } => {
            line(out, p, "classic name", &format!("{value} (hint)"))?
        }
        d => determination(out, p, "classic name", d, display)?,
    }
    let level = match v.confidence.level {
        ConfidenceLevel::High => p.green("high"),
        ConfidenceLevel::Medium => p.paint("1;33", "medium"),
        ConfidenceLevel::Low => p.red("low"),
    };
    line(
        out,
        p,
        "confidence",
        &format!("{level}: {}", v.confidence.reason),
    )?;
    let forecast = wrap("  => ", "     ", &v.forecast, usize::from(p.0.width));
    writeln!(out, "\n{}", p.paint("1", &forecast))
}

fn summary(report: &NatReport, out: &mut dyn Write, p: Painter) -> io::Result<()> {
    if report.families.is_empty() {
        writeln!(out, "\nnothing was probed")?;
    }
    for f in &report.families {
        family_block(&f.verdict, out, p)?;
    }
    expectations_block(&report.expectations, out, p)?;
    verdict_line(
        &report.verdict,
        &format!("done in {}", ms(report.duration_ms)),
        out,
        p,
    )
}
