//! The NAT discovery driver against coturn (RFC 5780 on: two listening IPs) behind real NATs:
//! the raw observations, before any classification, must show what each NAT really does.
#![allow(clippy::disallowed_methods)] // tests read the clock

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Coturn, NatKind, Testbed, ROUTER_WAN_IP, SERVER_IP, SERVER_IP2};
use iceprobe::model::nat::{Answer, Observations};
use iceprobe::nat::discover::{discover, NatConfig};
use iceprobe::net::dns::Families;

fn observe(tb: &Testbed) -> Observations {
    tb.cli.in_ns(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let cfg = NatConfig {
                servers: vec![format!("stun:{SERVER_IP}").parse().unwrap()],
                families: Families {
                    v4: true,
                    v6: false,
                },
                timeout: Duration::from_secs(20),
                rto: Duration::from_millis(100),
                test_timeout: Duration::from_millis(700),
                lifetime: None,
            };
            let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
            let (_c, cancel) = tokio::sync::watch::channel(false);
            let progress = iceprobe::nat::discover::Progress {
                tx,
                t0: std::time::Instant::now(),
            };
            let mut all = discover(&cfg, progress, cancel).await;
            assert_eq!(all.len(), 1, "one family");
            all.remove(0)
        })
    })
}

fn replied(a: &Answer) -> Option<SocketAddr> {
    match a {
        Answer::Reply { from, .. } => Some(*from),
        _ => None,
    }
}

fn mapped_ports(o: &Observations) -> Vec<u16> {
    o.rfc5780[0]
        .mapping
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| e.answer.mapped().unwrap().port())
        .collect()
}

#[test]
fn port_restricted_nat_observations() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::behind_nat(NatKind::PortRestricted);
    let _c = Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .listen(SERVER_IP2)
        .start();
    let o = observe(&tb);
    let f = o.rfc5780[0].filtering.as_ref().expect("filtering ran");
    assert_eq!(f.len(), 3, "{f:#?}");
    assert_eq!(
        replied(&f[0].answer),
        Some(SocketAddr::new(SERVER_IP.into(), 3478))
    );
    assert_eq!(
        replied(&f[1].answer),
        None,
        "change IP+port filtered: {f:#?}"
    );
    assert_eq!(replied(&f[2].answer), None, "change port filtered: {f:#?}");
    let ports = mapped_ports(&o);
    assert!(
        ports.windows(2).all(|w| w[0] == w[1]),
        "endpoint-independent mapping: {ports:?}"
    );
    assert_eq!(
        o.rfc5780[0].mapping.as_ref().unwrap()[0]
            .answer
            .mapped()
            .unwrap()
            .ip(),
        std::net::IpAddr::V4(ROUTER_WAN_IP)
    );
}

#[test]
fn full_cone_nat_observations() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::behind_nat(NatKind::FullCone);
    let _c = Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .listen(SERVER_IP2)
        .start();
    let o = observe(&tb);
    let f = o.rfc5780[0].filtering.as_ref().unwrap();
    assert_eq!(
        replied(&f[1].answer),
        Some(SocketAddr::new(SERVER_IP2.into(), 3479)),
        "{f:#?}"
    );
    assert_eq!(
        replied(&f[2].answer),
        Some(SocketAddr::new(SERVER_IP.into(), 3479)),
        "{f:#?}"
    );
}

#[test]
fn symmetric_nat_observations() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::behind_nat(NatKind::Symmetric);
    let _c = Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .listen(SERVER_IP2)
        .start();
    let o = observe(&tb);
    let ports = mapped_ports(&o);
    assert_ne!(
        ports[0], ports[1],
        "new mapping per destination IP: {ports:?}"
    );
    assert_ne!(
        ports[1], ports[2],
        "new mapping per destination port: {ports:?}"
    );
    assert!(o.hairpin.is_some());
}

#[test]
fn udp_blocked_observations() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::behind_nat(NatKind::UdpBlocked);
    let _c = Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .listen(SERVER_IP2)
        .start();
    let o = observe(&tb);
    assert!(o.multi.iter().all(|e| matches!(e.answer, Answer::Timeout)));
    assert_eq!(o.tcp_fallback, Some(true), "STUN over TCP still works");
}
