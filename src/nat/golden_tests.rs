//! The whole `nat` pipeline on simulated NATs, golden-tested: observations from
//! `classify::sim`, the classifier's verdicts, the run's verdict, and the renderer's table, JSON
//! and NDJSON for them (`fixtures/golden/nat*`), checked against the schema.
use serde_json::Value;

use super::classify::sim::{Server, Sim, OTHER, PLAIN, PRIMARY};
use super::classify::{FilteringBehavior as F, MappingBehavior as M};
use super::run::{nat_verdict, results};
use crate::model::nat::*;
use crate::render::tests::{
    assert_matches_schema, assert_rejected, golden, machine_round_trip, render_all, schema,
};
use crate::render::{Format, Style};

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
        families: obs.iter().map(|o| o.family.parse().unwrap()).collect(),
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
    let families = results(obs);
    let verdict = nat_verdict(&families);
    ev.push(NatEvent::Summary(Box::new(NatReport::new(
        NatBody {
            duration_ms: t + 3000.0,
            families,
        },
        verdict,
    ))));
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
fn golden_json_and_ndjson_read_back() {
    machine_round_trip(&port_restricted(), Some("nat"));
    machine_round_trip(&symmetric(), None);
    machine_round_trip(&lying(), None);
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
fn every_ndjson_line_is_an_event() {
    let ev = lying();
    let got = render_all(&ev, Format::Ndjson, &Style::default());
    let first: Value = serde_json::from_str(got.lines().nth(2).unwrap()).unwrap();
    assert_eq!(first["type"], "exchange");
    assert_eq!(first["data"]["test"], "filtering-II");
}

#[test]
fn output_matches_the_schema() {
    let root = schema("nat-v1.schema.json");
    let mut reports = vec![];
    for ev in [port_restricted(), symmetric(), lying()] {
        reports.push(assert_matches_schema(&root, "NatEvent", &ev));
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
    let (m, f, c) = (
        MappingBehavior::ALL,
        FilteringBehavior::ALL,
        ClassicName::ALL,
    );
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
