//! `iceprobe nat` end to end: the real binary behind real NATs (nftables in namespaces) against
//! coturn with RFC 5780 on, plus plain STUN servers and a lying fake server.
#![allow(clippy::disallowed_methods)] // tests read the clock

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{Coturn, NatKind, Testbed, ROUTER_WAN_IP, SERVER_IP, SERVER_IP2};
use iceprobe::model::nat::NatReport;
use iceprobe::nat::classify::{
    ClassicName, Determination, FilteringBehavior, MappingBehavior, NatVerdict,
};

fn nat(tb: &Testbed, urls: &[&str]) -> (NatReport, Output) {
    let mut args = vec![
        "nat",
        "--format",
        "json",
        "-4",
        "--timeout",
        "20s",
        "--test-timeout",
        "800ms",
        "--rto",
        "100ms",
    ];
    args.extend_from_slice(urls);
    let out = common::iceprobe_in(&tb.cli, &args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let r: NatReport = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (r, out)
}

fn verdict(r: &NatReport) -> &NatVerdict {
    assert_eq!(r.families.len(), 1, "IPv4 only");
    &r.families[0].verdict
}

fn known<T: Clone + std::fmt::Debug>(d: &Determination<T>) -> T {
    match d {
        Determination::Known { value, .. } => value.clone(),
        other => panic!("expected a known result, got {other:?}"),
    }
}

fn rfc5780_server(tb: &Testbed) -> Coturn {
    Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .listen(SERVER_IP2)
        .start()
}

fn stun_url() -> String {
    format!("stun:{SERVER_IP}")
}

#[test]
fn no_nat_is_open_internet() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::public();
    let _c = rfc5780_server(&tb);
    let (r, out) = nat(&tb, &[&stun_url()]);
    assert_eq!(out.status.code(), Some(0), "{r:#?}");
    let v = verdict(&r);
    assert!(!known(&v.nat_present), "{v:#?}");
    assert_eq!(known(&v.mapping), MappingBehavior::EndpointIndependent);
    assert_eq!(known(&v.filtering), FilteringBehavior::EndpointIndependent);
    assert_eq!(known(&v.classic_name), ClassicName::OpenInternet, "{v:#?}");
}

#[test]
fn linux_masquerade_is_port_restricted_cone() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::behind_nat(NatKind::PortRestricted);
    let _c = rfc5780_server(&tb);
    let (r, out) = nat(&tb, &[&stun_url()]);
    assert_eq!(out.status.code(), Some(0), "{r:#?}");
    let v = verdict(&r);
    assert!(known(&v.nat_present));
    assert_eq!(
        v.mapped_address.unwrap().ip(),
        std::net::IpAddr::V4(ROUTER_WAN_IP)
    );
    assert_eq!(
        known(&v.mapping),
        MappingBehavior::EndpointIndependent,
        "{v:#?}"
    );
    assert_eq!(
        known(&v.filtering),
        FilteringBehavior::AddressAndPortDependent,
        "{v:#?}"
    );
    assert_eq!(known(&v.classic_name), ClassicName::PortRestrictedCone);
    // Linux masquerade does not hairpin without an explicit rule.
    assert!(!known(&v.hairpin), "{v:#?}");
}

#[test]
fn fully_random_masquerade_is_symmetric() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::behind_nat(NatKind::Symmetric);
    let _c = rfc5780_server(&tb);
    let (r, out) = nat(&tb, &[&stun_url()]);
    assert_eq!(out.status.code(), Some(0), "{r:#?}");
    let v = verdict(&r);
    assert_eq!(
        known(&v.mapping),
        MappingBehavior::AddressAndPortDependent,
        "{v:#?}"
    );
    assert_eq!(known(&v.classic_name), ClassicName::Symmetric);
    assert!(v.forecast.contains("TURN"), "{}", v.forecast);
}

#[test]
fn full_cone_nat_is_endpoint_independent_filtering() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::behind_nat(NatKind::FullCone);
    let _c = rfc5780_server(&tb);
    let (r, out) = nat(&tb, &[&stun_url()]);
    assert_eq!(out.status.code(), Some(0), "{r:#?}");
    let v = verdict(&r);
    assert_eq!(
        known(&v.mapping),
        MappingBehavior::EndpointIndependent,
        "{v:#?}"
    );
    assert_eq!(
        known(&v.filtering),
        FilteringBehavior::EndpointIndependent,
        "{v:#?}"
    );
    assert_eq!(known(&v.classic_name), ClassicName::FullCone);
}

#[test]
fn udp_blocked_says_only_turn_over_tcp_tls() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::behind_nat(NatKind::UdpBlocked);
    let _c = rfc5780_server(&tb);
    let (r, out) = nat(&tb, &[&stun_url()]);
    let v = verdict(&r);
    assert!(known(&v.udp_blocked), "{v:#?}");
    assert!(known(&v.tcp_fallback), "STUN over TCP works: {v:#?}");
    assert!(v.forecast.contains("TCP"), "{}", v.forecast);
    assert_eq!(
        out.status.code(),
        Some(0),
        "discovery completed (UDP blocked, TCP confirmed)"
    );
}

#[test]
fn two_plain_stun_servers_detect_symmetric_nat() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::behind_nat(NatKind::Symmetric);
    // Plain STUN servers: one IP each, so coturn answers CHANGE-REQUEST with 420 and sends no
    // OTHER-ADDRESS. Only the multi-server comparison can tell.
    let _a = Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .no_rfc5780()
        .start();
    let _b = Coturn::builder(&tb.srv)
        .listen(SERVER_IP2)
        .no_rfc5780()
        .start();
    let (r, out) = nat(
        &tb,
        &[&format!("stun:{SERVER_IP}"), &format!("stun:{SERVER_IP2}")],
    );
    assert_eq!(out.status.code(), Some(0), "{r:#?}");
    let v = verdict(&r);
    assert!(
        matches!(v.filtering, Determination::NotChecked { .. }),
        "no RFC 5780: {:?}",
        v.filtering
    );
    let m = known(&v.mapping);
    assert!(m != MappingBehavior::EndpointIndependent, "{v:#?}");
    assert_eq!(known(&v.classic_name), ClassicName::Symmetric, "{v:#?}");
}

/// A STUN server that lies: it advertises OTHER-ADDRESS but answers every CHANGE-REQUEST from
/// its own primary address.
fn lying_server(tb: &Testbed, other: SocketAddr) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    use iceprobe::proto::stun::{self, Class};
    use rtc::stun::addr::MappedAddress;
    use rtc::stun::attributes::ATTR_OTHER_ADDRESS;
    use rtc::stun::message::{CLASS_SUCCESS_RESPONSE, METHOD_BINDING};
    use rtc::stun::xoraddr::XorMappedAddress;
    let sock = tb
        .srv
        .in_ns(|| UdpSocket::bind((SERVER_IP, 3478)).expect("bind lying server"));
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let handle = std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while !stop2.load(Ordering::Relaxed) {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let Ok(d) = stun::decode(&buf[..n]) else {
                continue;
            };
            if d.class != Some(Class::Request) {
                continue;
            }
            let mut m = stun::start(METHOD_BINDING, CLASS_SUCCESS_RESPONSE, d.txid);
            stun::add(
                &mut m,
                &XorMappedAddress {
                    ip: from.ip(),
                    port: from.port(),
                },
            )
            .unwrap();
            MappedAddress {
                ip: other.ip(),
                port: other.port(),
            }
            .add_to_as(&mut m, ATTR_OTHER_ADDRESS)
            .unwrap();
            m.write_length();
            let _ = sock.send_to(&stun::finish(m), from);
        }
    });
    (stop, handle)
}

#[test]
fn lying_server_is_inconclusive_not_endpoint_independent() {
    if !common::require_netns() {
        return;
    }
    // Behind a full-cone NAT every reply gets through, so only validation can catch the lie.
    let tb = Testbed::behind_nat(NatKind::FullCone);
    let (stop, handle) = lying_server(&tb, SocketAddr::new(SERVER_IP2.into(), 3479));
    let (r, _) = nat(&tb, &[&stun_url()]);
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
    let v = verdict(&r);
    match &v.filtering {
        Determination::Inconclusive { reason } => {
            assert!(reason.contains("CHANGE-REQUEST"), "{reason}")
        }
        other => panic!("a lying server must never give a filtering result: {other:?}"),
    }
}

#[test]
fn self_advertising_server_is_inconclusive() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::behind_nat(NatKind::FullCone);
    let (stop, handle) = lying_server(&tb, SocketAddr::new(SERVER_IP.into(), 3478));
    let (r, _) = nat(&tb, &[&stun_url()]);
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
    let v = verdict(&r);
    assert!(
        !matches!(v.filtering, Determination::Known { .. }),
        "{:?}",
        v.filtering
    );
    assert!(
        !matches!(v.rfc5780_mapping, Determination::Known { .. }),
        "{:?}",
        v.rfc5780_mapping
    );
}

#[test]
fn agrees_with_turnutils_natdiscovery() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::behind_nat(NatKind::PortRestricted);
    let _c = rfc5780_server(&tb);
    let (r, _) = nat(&tb, &[&stun_url()]);
    let v = verdict(&r);
    // coturn's own RFC 5780 client on the same topology.
    let out = tb
        .cli
        .exec([
            "timeout",
            "15",
            "stdbuf",
            "-oL",
            "turnutils_natdiscovery",
            "-m",
            "-f",
        ])
        .arg(SERVER_IP.to_string())
        .output()
        .expect("run turnutils_natdiscovery");
    let theirs = String::from_utf8_lossy(&out.stdout);
    assert!(
        theirs.contains("Endpoint Independent Mapping") || theirs.contains("Independent Mapping"),
        "{theirs}"
    );
    assert_eq!(known(&v.mapping), MappingBehavior::EndpointIndependent);
    assert!(
        theirs.contains("Address and Port Dependent Filtering"),
        "natdiscovery filtering: {theirs}"
    );
    assert_eq!(
        known(&v.filtering),
        FilteringBehavior::AddressAndPortDependent
    );
}

#[test]
fn lifetime_search_finds_the_conntrack_timeout() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::behind_nat(NatKind::PortRestricted);
    // The router forgets idle UDP mappings after 4 s (both conntrack UDP timeouts).
    tb.router()
        .sysctl("net.netfilter.nf_conntrack_udp_timeout", "4");
    tb.router()
        .sysctl("net.netfilter.nf_conntrack_udp_timeout_stream", "4");
    let _c = rfc5780_server(&tb);
    let url = stun_url();
    let args = [
        "nat",
        "--format",
        "json",
        "-4",
        "--lifetime",
        "40s",
        "--test-timeout",
        "800ms",
        "--rto",
        "100ms",
        &url,
    ];
    let out = common::iceprobe_in(&tb.cli, &args);
    let r: NatReport = serde_json::from_slice(&out.stdout).unwrap();
    let lt = r.families[0]
        .observations
        .lifetime
        .clone()
        .expect("lifetime measured");
    let alive = lt.alive_after_s.expect("alive at some idle time");
    let dead = lt.expired_after_s.expect("expired at some idle time");
    assert!(alive < 4.5, "{lt:?}");
    assert!((4.0..=8.5).contains(&dead), "{lt:?}");
}
