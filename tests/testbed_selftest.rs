//! Self-test of the netns testbed harness (`tests/common`), independent of the iceprobe CLI:
//! coturn answers in every topology, each NAT kind behaves as RFC 4787 says, certificates have
//! the promised defects, and nothing is left behind.
#![allow(clippy::disallowed_methods)] // tests and their harness read the clock

mod common;

use common::{
    netns::harness_namespaces, pid_alive, stun_binding, Coturn, LeafKind, NatKind, Netns, TestPki,
    Testbed, CLIENT_LAN_IP, CLIENT_PUBLIC_IP, ROUTER_WAN_IP, SERVER_IP, SERVER_IP2,
};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

const PEER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 20);

/// coturn with RFC 5780 (two listen IPs) and long-term credentials.
fn start_coturn(srv: &Netns) -> Coturn {
    Coturn::builder(srv)
        .listen(SERVER_IP)
        .listen(SERVER_IP2)
        .user("alice", "secret")
        .start()
}

/// `turnutils_stunclient SERVER` from `ns`; returns the first "UDP reflexive addr".
/// stunclient never times out behind a NAT, hence `timeout` (and line-buffered stdout so the
/// reply survives the kill).
fn stunclient_mapped(ns: &Netns, server: Ipv4Addr) -> SocketAddr {
    let out = ns
        .exec(["timeout", "5", "stdbuf", "-oL", "turnutils_stunclient"])
        .arg(server.to_string())
        .output()
        .expect("run turnutils_stunclient");
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|line| line.split_once("UDP reflexive addr: "))
        .and_then(|(_, addr)| addr.trim().parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no reflexive address from turnutils_stunclient ({})\nstdout: {stdout}\nstderr: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// Binds a UDP socket in `ns` and returns the mapped address seen by each server.
fn mapped_from(ns: &Netns, servers: &[SocketAddr]) -> (SocketAddr, Vec<Option<SocketAddr>>) {
    let servers = servers.to_vec();
    ns.in_ns(move || {
        let sock = UdpSocket::bind("0.0.0.0:0").expect("bind");
        let local = sock.local_addr().expect("local addr");
        let mapped = servers
            .iter()
            .map(|&s| stun_binding(&sock, s, Duration::from_millis(900)))
            .collect();
        (local, mapped)
    })
}

/// From `ns`, one socket does a Binding to coturn, then `peer` sends an unsolicited datagram
/// to the mapped address. Returns (mapped address, whether the datagram arrived).
fn unsolicited_reaches_client(client: &Netns, peer: &Netns) -> (SocketAddr, bool) {
    let sock = client.in_ns(|| UdpSocket::bind("0.0.0.0:0").expect("bind"));
    // The socket stays in the client namespace although this thread is not in it.
    let mapped = stun_binding(
        &sock,
        SocketAddr::new(SERVER_IP.into(), 3478),
        Duration::from_secs(2),
    )
    .expect("binding response");
    let tx = peer.in_ns(|| UdpSocket::bind("0.0.0.0:0").expect("bind peer"));
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    // Up to 3 s in all, one packet per try: a loaded machine (the whole suite on 2 cores) or
    // the peer's first ARP exchange must not turn into a false "filtered".
    for _ in 0..15 {
        tx.send_to(b"unsolicited", mapped).expect("send");
        if matches!(sock.recv_from(&mut buf), Ok((11, from)) if from.ip() == IpAddr::V4(PEER_IP)) {
            return (mapped, true);
        }
    }
    (mapped, false)
}

/// Drops the testbed and coturn, then checks that namespaces, /etc/netns dirs and the
/// turnserver process are all gone.
fn assert_cleaned_up(testbed: Testbed, coturn: Coturn) {
    let pid = coturn.pid();
    let names: Vec<String> = [Some(&testbed.srv), Some(&testbed.cli), testbed.rtr.as_ref()]
        .into_iter()
        .flatten()
        .map(|ns| ns.name().to_owned())
        .collect();
    assert!(pid_alive(pid), "turnserver {pid} should be running");
    assert!(names.iter().all(|n| harness_namespaces().contains(n)));
    drop(coturn);
    drop(testbed);
    assert!(
        !pid_alive(pid),
        "turnserver pid {pid} still alive after drop"
    );
    let left = harness_namespaces();
    for name in &names {
        assert!(!left.contains(name), "namespace {name} left behind");
        assert!(
            !std::path::Path::new("/etc/netns").join(name).exists(),
            "/etc/netns/{name} left behind"
        );
    }
}

#[test]
fn public_topology_maps_to_client_ip() {
    if !common::require_netns() {
        return;
    }
    let testbed = Testbed::public();
    let coturn = start_coturn(&testbed.srv);
    assert_eq!(coturn.pid(), {
        let pidfile = coturn.log_path().with_file_name("turnserver.pid");
        std::fs::read_to_string(pidfile)
            .expect("pid file")
            .trim()
            .parse::<u32>()
            .expect("pid")
    });

    let mapped = stunclient_mapped(&testbed.cli, SERVER_IP);
    assert_eq!(mapped.ip(), IpAddr::V4(CLIENT_PUBLIC_IP));

    let (local, mapped) = mapped_from(&testbed.cli, &[SocketAddr::new(SERVER_IP.into(), 3478)]);
    assert_eq!(
        mapped[0],
        Some(SocketAddr::new(CLIENT_PUBLIC_IP.into(), local.port()))
    );
    assert!(coturn.log().contains("Coturn"), "log is captured");
    assert_cleaned_up(testbed, coturn);
}

#[test]
fn port_restricted_nat_is_endpoint_independent_and_filters() {
    if !common::require_netns() {
        return;
    }
    let mut testbed = Testbed::behind_nat(NatKind::PortRestricted);
    let coturn = start_coturn(&testbed.srv);
    let peer = testbed.add_public_host("peer", PEER_IP);

    let mapped = stunclient_mapped(&testbed.cli, SERVER_IP);
    assert_eq!(mapped.ip(), IpAddr::V4(ROUTER_WAN_IP));

    let (local, mapped) = mapped_from(
        &testbed.cli,
        &[
            SocketAddr::new(SERVER_IP.into(), 3478),
            SocketAddr::new(SERVER_IP2.into(), 3478),
        ],
    );
    let first = mapped[0].expect("mapped via server IP 1");
    assert_eq!(first, SocketAddr::new(ROUTER_WAN_IP.into(), local.port()));
    assert_eq!(mapped[1], Some(first), "mapping is endpoint-independent");

    let (_, arrived) = unsolicited_reaches_client(&testbed.cli, &peer);
    assert!(
        !arrived,
        "port-restricted NAT must drop unsolicited packets"
    );
    drop(peer);
    assert_cleaned_up(testbed, coturn);
}

#[test]
fn symmetric_nat_maps_per_destination() {
    if !common::require_netns() {
        return;
    }
    let testbed = Testbed::behind_nat(NatKind::Symmetric);
    let coturn = start_coturn(&testbed.srv);

    let (_, mapped) = mapped_from(
        &testbed.cli,
        &[
            SocketAddr::new(SERVER_IP.into(), 3478),
            SocketAddr::new(SERVER_IP.into(), 3479),
            SocketAddr::new(SERVER_IP2.into(), 3478),
        ],
    );
    let mapped: Vec<SocketAddr> = mapped
        .into_iter()
        .map(|m| m.expect("every server port answers"))
        .collect();
    assert!(mapped.iter().all(|m| m.ip() == IpAddr::V4(ROUTER_WAN_IP)));
    assert_ne!(
        mapped[0].port(),
        mapped[1].port(),
        "new port per server port"
    );
    assert_ne!(mapped[0].port(), mapped[2].port(), "new port per server IP");

    // Cross-check with coturn's own RFC 5780 client.
    let out = testbed
        .cli
        .exec([
            "timeout",
            "10",
            "stdbuf",
            "-oL",
            "turnutils_natdiscovery",
            "-m",
        ])
        .arg(SERVER_IP.to_string())
        .output()
        .expect("run turnutils_natdiscovery");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Address and Port Dependent Mapping")
            || stdout.contains("Address Dependent Mapping"),
        "natdiscovery verdict: {stdout}"
    );
    assert_cleaned_up(testbed, coturn);
}

#[test]
fn full_cone_nat_accepts_unsolicited() {
    if !common::require_netns() {
        return;
    }
    let mut testbed = Testbed::behind_nat(NatKind::FullCone);
    let coturn = start_coturn(&testbed.srv);
    let peer = testbed.add_public_host("peer", PEER_IP);

    let (mapped, arrived) = unsolicited_reaches_client(&testbed.cli, &peer);
    assert_eq!(mapped.ip(), IpAddr::V4(ROUTER_WAN_IP));
    assert!(arrived, "full-cone NAT must forward unsolicited packets");
    drop(peer);
    assert_cleaned_up(testbed, coturn);
}

#[test]
fn udp_blocked_nat_allows_only_tcp() {
    if !common::require_netns() {
        return;
    }
    let testbed = Testbed::behind_nat(NatKind::UdpBlocked);
    let coturn = start_coturn(&testbed.srv);

    let (_, mapped) = mapped_from(&testbed.cli, &[SocketAddr::new(SERVER_IP.into(), 3478)]);
    assert_eq!(mapped, vec![None], "UDP must be blocked");
    let tcp_ok = testbed.cli.in_ns(|| {
        TcpStream::connect_timeout(
            &SocketAddr::new(SERVER_IP.into(), 3478),
            Duration::from_secs(2),
        )
        .is_ok()
    });
    assert!(tcp_ok, "TCP to coturn must pass the UDP-blocking NAT");
    assert_cleaned_up(testbed, coturn);
}

#[test]
fn client_behind_nat_has_lan_address() {
    if !common::require_netns() {
        return;
    }
    let testbed = Testbed::behind_nat(NatKind::PortRestricted);
    let addrs = testbed.cli.ip(["-4", "-o", "addr", "show", "dev", "eth0"]);
    assert!(addrs.contains(&format!("{CLIENT_LAN_IP}/24")), "{addrs}");
    assert_eq!(testbed.router().sysctl_get("net.ipv4.ip_forward"), "1");
    assert_eq!(
        testbed.cli.sysctl_get("net.ipv6.conf.all.disable_ipv6"),
        "1"
    );
    let resolv = std::fs::read_to_string(testbed.cli.etc_dir().join("resolv.conf")).unwrap();
    assert_eq!(resolv, "nameserver 127.0.0.1\n");
    let seen = testbed.cli.run(["cat", "/etc/resolv.conf"]);
    assert_eq!(seen, resolv, "ip netns exec bind-mounts /etc/netns/<name>");
}

#[test]
fn certificates_have_the_promised_defects() {
    let pki = TestPki::new();
    let sans = ["198.18.0.1", "turn.test"];
    let now = x509_parser::time::ASN1Time::now();
    for kind in [
        LeafKind::Valid,
        LeafKind::Expired,
        LeafKind::NotYetValid,
        LeafKind::WrongName,
        LeafKind::UnknownCa,
    ] {
        let paths = pki.leaf(&format!("{kind:?}").to_lowercase(), &sans, kind);
        let pem = std::fs::read(&paths.cert).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).expect("PEM");
        let cert = pem.parse_x509().expect("X.509");
        let ca_pem = std::fs::read(&paths.ca).unwrap();
        let (_, ca_pem) = x509_parser::pem::parse_x509_pem(&ca_pem).expect("CA PEM");
        let ca = ca_pem.parse_x509().expect("CA X.509");
        let valid_now = cert.validity().is_valid_at(now);
        let names = format!(
            "{:?}",
            cert.subject_alternative_name().unwrap().unwrap().value
        );
        let by_ca = cert.issuer() == ca.subject();
        assert_eq!(
            valid_now,
            !matches!(kind, LeafKind::Expired | LeafKind::NotYetValid),
            "{kind:?}"
        );
        assert_eq!(
            names.contains("turn.test"),
            kind != LeafKind::WrongName,
            "{kind:?}: {names}"
        );
        assert_eq!(by_ca, kind != LeafKind::UnknownCa, "{kind:?}");
    }
}

#[test]
fn coturn_serves_tls_with_test_pki_leaf() {
    if !common::require_netns() {
        return;
    }
    let pki = TestPki::new();
    let sans = ["198.18.0.1", "turn.test"];
    // coturn accepts the valid leaf and opens its TLS listener.
    let testbed = Testbed::public();
    let leaf = pki.leaf("server", &sans, LeafKind::Valid);
    let coturn = Coturn::builder(&testbed.srv)
        .listen(SERVER_IP)
        .user("alice", "secret")
        .tls(&leaf.cert, &leaf.key)
        .start();
    let tls = coturn.tls_addr().expect("TLS listener");
    let tcp_ok = testbed
        .cli
        .in_ns(move || TcpStream::connect_timeout(&tls, Duration::from_secs(2)).is_ok());
    assert!(tcp_ok, "TLS port accepts connections\n{}", coturn.log());
    assert_cleaned_up(testbed, coturn);
}

#[test]
fn iceprobe_binary_runs_inside_a_namespace() {
    if !common::require_netns() {
        return;
    }
    let testbed = Testbed::public();
    // The CLI is still being written: only check that it was started (not 126/127 from exec
    // failure, not 124 from the timeout), whatever it answered.
    let out = common::iceprobe_in(&testbed.cli, &["--help"]);
    assert!(
        !matches!(out.status.code(), Some(124 | 126 | 127) | None),
        "iceprobe did not run: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
