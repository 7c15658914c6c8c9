//! Pure renderers of `nat` events, in the formats and style of [`super::render`]: events in,
//! bytes out to an injected writer. Snapshot-tested against `fixtures/golden/nat*`.

use std::fmt::Display;
use std::io::{self, Write};

use crate::model::nat::{Answer, Change};
use crate::nat::classify::{ConfidenceLevel, Determination, LifetimeRange, NatVerdict};

use super::{expectations_block, machine, ms, Format, Painter, Style};
use crate::model::nat::{NatEvent, NatExchange, NatReport, NatStart};

/// Render one `nat` event as it happens.
///
/// - [`Format::Table`]: a start line, one line per exchange, then at the summary a verdict
///   block per family (each finding with its evidence, or "inconclusive (reason)" / "not
///   checked (reason)"), the classic name as a hint, the confidence, the P2P forecast, and the
///   verdict line.
/// - [`Format::Json`]: nothing until the summary, then the pretty [`NatReport`] and a newline.
/// - [`Format::Ndjson`]: every event as one compact `{"type": ..., "data": ...}` line.
pub fn render_nat_event(
    format: Format,
    event: &NatEvent,
    out: &mut dyn Write,
    style: &Style,
) -> io::Result<()> {
    let finished = match event {
        NatEvent::Summary(report) => Some(report.as_ref()),
        _ => None,
    };
    if let Some(done) = machine(format, event, finished, out) {
        return done;
    }
    let p = Painter(style);
    match event {
        NatEvent::Start(s) => start_line(s, out),
        NatEvent::Exchange(x) => exchange_line(x, out, p),
        NatEvent::Summary(report) => summary(report, out, p),
    }
}

fn start_line(s: &NatStart, out: &mut dyn Write) -> io::Result<()> {
    let n = s.servers.len();
    writeln!(
        out,
        "nat: {n} server{}, {}, timeout {} ms, lifetime search {}",
        if n == 1 { "" } else { "s" },
        s.families.join(" + "),
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

/// Word-wrap `text` after `first` on the first line and `indent` on the others, within `width`.
fn wrap(first: &str, indent: &str, text: &str, width: usize) -> String {
    let mut out = String::from(first);
    let mut col = first.chars().count();
    let mut start = true;
    for word in text.split(' ') {
        let n = word.chars().count();
        if !start && col + 1 + n > width {
            out.push('\n');
            out.push_str(indent);
            col = indent.len();
        } else if !start {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += n;
        start = false;
    }
    out
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
    let verdict = if report.verdict.ok {
        p.green(&report.verdict.summary)
    } else {
        p.red(&report.verdict.summary)
    };
    writeln!(
        out,
        "\n{verdict} (done in {}; exit {})",
        ms(report.duration_ms),
        report.verdict.exit_code
    )
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::model::nat::{FamilyResult, TestLabel, NAT_SCHEMA_VERSION};
    use crate::model::nat::{Hairpin, Observations};
    use crate::nat::classify::sim::{Server, Sim, OTHER, PLAIN, PRIMARY};
    use crate::nat::classify::{classify, FilteringBehavior as F, MappingBehavior as M};
    use crate::nat::run::nat_verdict;
    use crate::render::tests::{assert_matches_schema, assert_rejected, golden, schema};

    /// The observations' exchanges with their test labels, in the order they ran.
    fn labelled(obs: &Observations) -> Vec<(TestLabel, String, crate::model::nat::Exchange)> {
        let mut out = Vec::new();
        for s in &obs.rfc5780 {
            let f = [
                TestLabel::FilteringI,
                TestLabel::FilteringII,
                TestLabel::FilteringIII,
            ];
            for (l, e) in f.iter().zip(s.filtering.iter().flatten()) {
                out.push((*l, s.url.clone(), e.clone()));
            }
            let m = [
                TestLabel::MappingI,
                TestLabel::MappingII,
                TestLabel::MappingIII,
            ];
            for (l, e) in m.iter().zip(s.mapping.iter().flatten()) {
                out.push((*l, s.url.clone(), e.clone()));
            }
        }
        for e in &obs.multi {
            let url = if e.to.to_string() == PRIMARY {
                "stun:stun.example.net"
            } else {
                "stun:stun.plain.example"
            };
            out.push((TestLabel::Multi, url.into(), e.clone()));
        }
        out
    }

    fn events(obs: Vec<Observations>) -> Vec<NatEvent> {
        let mut ev = vec![NatEvent::Start(NatStart {
            servers: vec![
                "stun:stun.example.net".into(),
                "stun:stun.plain.example".into(),
            ],
            families: obs.iter().map(|o| o.family.clone()).collect(),
            timeout_ms: 3000,
            lifetime: false,
        })];
        let mut t = 0.0;
        for o in &obs {
            for (test, server, exchange) in labelled(o) {
                t += 21.25;
                ev.push(NatEvent::Exchange(Box::new(NatExchange {
                    family: o.family.clone(),
                    server,
                    test,
                    elapsed_ms: t,
                    exchange,
                })));
            }
        }
        let families: Vec<FamilyResult> = obs
            .into_iter()
            .map(|o| FamilyResult {
                verdict: classify(&o),
                observations: o,
            })
            .collect();
        ev.push(NatEvent::Summary(Box::new(NatReport {
            schema_version: NAT_SCHEMA_VERSION,
            command: "nat".into(),
            iceprobe_version: "0.1.0".into(),
            duration_ms: t + 3000.0,
            expectations: Vec::new(),
            verdict: nat_verdict(&families),
            families,
        })));
        ev
    }

    /// Linux masquerade: endpoint-independent mapping, address-and-port-dependent filtering,
    /// with a hairpin that comes back.
    fn port_restricted() -> Vec<NatEvent> {
        let mut o = Sim::new(Some(M::EndpointIndependent), F::AddressAndPortDependent)
            .observe(&[PRIMARY, PLAIN]);
        o.hairpin = Some(Hairpin {
            local: "192.168.1.10:5003".parse().unwrap(),
            to: "203.0.113.7:40000".parse().unwrap(),
            came_back: true,
        });
        events(vec![o])
    }

    fn symmetric() -> Vec<NatEvent> {
        events(vec![Sim::new(
            Some(M::AddressAndPortDependent),
            F::AddressAndPortDependent,
        )
        .observe(&[PRIMARY, PLAIN])])
    }

    /// A server that answers CHANGE-REQUEST from its primary address, and a comparison with
    /// only one server answering.
    fn lying() -> Vec<NatEvent> {
        let mut o = Sim::new(Some(M::EndpointIndependent), F::EndpointIndependent)
            .server(Server::AnswersFromPrimary)
            .observe(&[PRIMARY, PLAIN]);
        o.multi[1].answer = Answer::Timeout;
        events(vec![o])
    }

    fn render_all(events: &[NatEvent], format: Format, style: &Style) -> String {
        let mut out = Vec::new();
        for e in events {
            render_nat_event(format, e, &mut out, style).unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn golden_tables() {
        for (name, ev) in [
            ("nat-port-restricted.table.txt", port_restricted()),
            ("nat-symmetric.table.txt", symmetric()),
            ("nat-lying-server.table.txt", lying()),
        ] {
            let got = render_all(&ev, Format::Table, &Style::default());
            assert!(got.is_ascii(), "plain style must be ASCII");
            assert!(!got.contains('\x1b'));
            let long: Vec<&str> = got
                .lines()
                .skip_while(|l| !l.is_empty())
                .filter(|l| l.len() > usize::from(Style::default().width))
                .collect();
            assert!(
                long.is_empty(),
                "{name}: longer than 140 columns: {long:#?}"
            );
            golden(name, &got);
        }
    }

    #[test]
    fn golden_json_and_ndjson() {
        let ev = port_restricted();
        golden(
            "nat.json",
            &render_all(&ev, Format::Json, &Style::default()),
        );
        golden(
            "nat.ndjson",
            &render_all(&ev, Format::Ndjson, &Style::default()),
        );
    }

    #[test]
    fn the_fixtures_show_what_they_claim() {
        let table = |ev: Vec<NatEvent>| render_all(&ev, Format::Table, &Style::default());
        let t = table(port_restricted());
        assert!(
            t.contains("classic name      port-restricted cone NAT (hint)"),
            "{t}"
        );
        assert!(
            t.contains("=> direct connection likely with most peers"),
            "{t}"
        );
        let t = table(symmetric());
        assert!(t.contains("classic name      symmetric NAT (hint)"), "{t}");
        assert!(
            t.contains("=> symmetric NAT: direct P2P only with peers"),
            "{t}"
        );
        let t = table(lying());
        assert!(
            t.contains("filtering         inconclusive (server does not honour CHANGE-REQUEST"),
            "{t}"
        );
        assert!(
            t.contains("not checked (the multi-server comparison needs"),
            "{t}"
        );
        assert!(!t.contains("full cone"), "{t}");
        assert!(t.contains(OTHER), "{t}");
    }

    #[test]
    fn json_round_trips_into_the_model() {
        for ev in [port_restricted(), symmetric(), lying()] {
            let got = render_all(&ev, Format::Json, &Style::default());
            let back: NatReport = serde_json::from_str(&got).expect("JSON output is a NatReport");
            let Some(NatEvent::Summary(want)) = ev.last() else {
                unreachable!()
            };
            assert_eq!(back, **want);
        }
    }

    #[test]
    fn every_ndjson_line_is_an_event() {
        let ev = lying();
        let got = render_all(&ev, Format::Ndjson, &Style::default());
        let back: Vec<NatEvent> = got
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(back, ev);
        let first: Value = serde_json::from_str(got.lines().nth(2).unwrap()).unwrap();
        assert_eq!(first["type"], "exchange");
        assert_eq!(first["data"]["test"], "filtering-II");
    }

    #[test]
    fn colour_only_when_asked() {
        let style = Style {
            color: true,
            width: 200,
        };
        assert!(render_all(&lying(), Format::Table, &style).contains("\x1b["));
        for f in [Format::Json, Format::Ndjson] {
            assert!(!render_all(&lying(), f, &style).contains('\x1b'));
        }
    }

    #[test]
    fn output_matches_the_schema() {
        let root = schema("nat-v1.schema.json");
        let style = Style::default();
        let mut reports = vec![];
        for ev in [port_restricted(), symmetric(), lying()] {
            reports.push(assert_matches_schema(
                &root,
                "NatEvent",
                &render_all(&ev, Format::Json, &style),
                &render_all(&ev, Format::Ndjson, &style),
            ));
        }
        let report = &reports[0];
        assert_rejected(&root, report, |r| {
            r["families"][0]["verdict"]["mapping"]["status"] = "maybe".into()
        });
        assert_rejected(&root, report, |r| {
            r["families"][0]["verdict"]["filtering"] =
                serde_json::json!({"status": "known", "value": false, "evidence": "x"})
        });
        assert_rejected(&root, report, |r| {
            r["families"][0]["observations"]["extra"] = 1.into()
        });
    }

    #[test]
    fn schema_enums_are_the_model_enums() {
        use crate::nat::classify::*;
        let root = schema("nat-v1.schema.json");
        fn words<T: serde::Serialize>(xs: &[T]) -> Value {
            Value::Array(
                xs.iter()
                    .map(|x| serde_json::to_value(x).unwrap())
                    .collect(),
            )
        }
        // Exhaustive matches: a new variant fails to compile here until it is listed.
        let m = [
            MappingBehavior::EndpointIndependent,
            MappingBehavior::AddressDependent,
            MappingBehavior::AddressAndPortDependent,
            MappingBehavior::DestinationDependent,
        ];
        for x in m {
            match x {
                MappingBehavior::EndpointIndependent
                | MappingBehavior::AddressDependent
                | MappingBehavior::AddressAndPortDependent
                | MappingBehavior::DestinationDependent => {}
            }
        }
        let f = [
            FilteringBehavior::EndpointIndependent,
            FilteringBehavior::AddressDependent,
            FilteringBehavior::AddressAndPortDependent,
        ];
        let d = [
            DestinationDependence::Constant,
            DestinationDependence::VariesByIp,
            DestinationDependence::VariesByPort,
            DestinationDependence::VariesByIpAndPort,
        ];
        let pa = [
            PortAllocation::Preserved,
            PortAllocation::Sequential,
            PortAllocation::Random,
        ];
        let c = [
            ClassicName::OpenInternet,
            ClassicName::SymmetricUdpFirewall,
            ClassicName::FullCone,
            ClassicName::RestrictedCone,
            ClassicName::PortRestrictedCone,
            ClassicName::Symmetric,
            ClassicName::UdpBlocked,
        ];
        for x in c {
            match x {
                ClassicName::OpenInternet
                | ClassicName::SymmetricUdpFirewall
                | ClassicName::FullCone
                | ClassicName::RestrictedCone
                | ClassicName::PortRestrictedCone
                | ClassicName::Symmetric
                | ClassicName::UdpBlocked => {}
            }
        }
        let l = [
            ConfidenceLevel::High,
            ConfidenceLevel::Medium,
            ConfidenceLevel::Low,
        ];
        let d_ = &root["$defs"];
        assert_eq!(d_["MappingBehavior"]["enum"], words(&m));
        assert_eq!(d_["FilteringBehavior"]["enum"], words(&f));
        assert_eq!(d_["DestinationDependence"]["enum"], words(&d));
        assert_eq!(d_["PortAllocation"]["enum"], words(&pa));
        assert_eq!(d_["ClassicName"]["enum"], words(&c));
        assert_eq!(d_["ConfidenceLevel"]["enum"], words(&l));
        assert_eq!(d_["TestLabel"]["enum"], words(&TestLabel::ALL));
        for t in TestLabel::ALL {
            assert_eq!(serde_json::to_value(t).unwrap(), Value::from(t.to_string()));
        }
        let check: Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/docs/schema/check-v1.schema.json"
            ))
            .unwrap(),
        )
        .unwrap();
        assert_eq!(root["$defs"]["Millis"], check["$defs"]["Millis"]);
    }
}
