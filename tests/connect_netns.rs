//! `iceprobe connect` across real NATs (nftables in router namespaces) with a real coturn:
//! host pairs on one segment, relay pairs between two symmetric NATs (and the "add a TURN
//! server" cause without one), a peer-reflexive candidate learnt behind a full-cone NAT from a
//! symmetric peer, relay-to-relay by policy (allocations released: a quota of 2 allows a second
//! run), and a relay that refuses to forward (denied-peer-ip).
#![allow(clippy::disallowed_methods)] // tests read the clock

mod common;

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{Coturn, NatKind, Netns, Testbed, CLIENT2_LAN_IP, ROUTER2_WAN_IP, SERVER_IP};
use iceprobe::candidate::CandidateType;
use iceprobe::model::connect::{ConnectReport, SideReport};

fn report(out: &Output, extra: &str) -> ConnectReport {
    common::json_report(out, extra)
}

/// coturn with user alice. The server gets a route to the NAT LANs (100.64.0.0/10) through a
/// next hop that does not exist, as on the internet, where private addresses are routed and
/// silently lost: without any route coturn's relay sendto() fails with "network unreachable"
/// when ICE checks a peer's host candidate through the relay, and coturn then closes the whole
/// allocation ("closed (2nd stage), reason: general"), which breaks the relay pair too.
fn coturn(tb: &Testbed) -> Coturn {
    tb.srv
        .run(["ip", "route", "add", "100.64.0.0/10", "via", "198.18.0.200"]);
    Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .user("alice", "secret")
        .start()
}

const TURN: &str = "turn:198.18.0.1?transport=udp";
const STUN: &str = "stun:198.18.0.1";

/// Runs `--listen` in `answerer` and `--peer` in `offerer` with the same extra args; returns
/// (offerer report, answerer report). `public_ip`: where the offerer reaches the listener when
/// it sits behind a NAT with a port forward (the printed URL names its private address).
fn two_hosts(
    answerer: &Netns,
    offerer: &Netns,
    listen_ip: &str,
    public_ip: Option<&str>,
    args: &[&str],
) -> (Output, Output) {
    let bin = env!("CARGO_BIN_EXE_iceprobe");
    let listen = format!("{listen_ip}:7000");
    let mut cmd = answerer.exec(
        [
            "timeout", "-k", "5", "90", bin, "connect", "--listen", &listen, "--format", "json",
        ]
        .iter()
        .chain(args),
    );
    let mut l = cmd
        .env("NO_COLOR", "1")
        .env("ICEPROBE_CREDENTIAL", "secret")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = l.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if let Some(url) = line
                .split_whitespace()
                .skip_while(|w| *w != "--peer")
                .nth(1)
            {
                let _ = tx.send(url.to_string());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let mut url = rx
        .recv_timeout(Duration::from_secs(15))
        .expect("the listener prints its URL");
    if let Some(public) = public_ip {
        url = url.replace(&format!("//{listen_ip}:"), &format!("//{public}:"));
    }
    let mut oargs = vec!["connect", "--peer", url.as_str(), "--format", "json"];
    oargs.extend_from_slice(args);
    let out = common::iceprobe_in_env(offerer, &oargs, &[("ICEPROBE_CREDENTIAL", "secret")]);
    let mut lout = l.wait_with_output().unwrap();
    lout.stderr = reader.join().unwrap().into_bytes();
    (out, lout)
}

fn involves_relay(s: &SideReport) -> bool {
    s.selected.as_ref().is_some_and(|p| {
        p.local.kind == CandidateType::Relay || p.remote.kind == CandidateType::Relay
    })
}

#[test]
fn two_hosts_on_one_segment_connect_directly() {
    if !common::require_netns() {
        return;
    }
    let mut tb = Testbed::public();
    let peer = tb.add_public_host("peer", Ipv4Addr::new(198, 18, 0, 20));
    let (o, a) = two_hosts(&peer, &tb.cli, "198.18.0.20", None, &["--count", "10"]);
    for (out, r) in [(&o, report(&o, "")), (&a, report(&a, ""))] {
        assert_eq!(out.status.code(), Some(0), "{r:#?}");
        let sel = r.sides[0].selected.as_ref().unwrap();
        assert_eq!(sel.local.kind, CandidateType::Host, "{r:#?}");
        assert_eq!(r.sides[0].echo.as_ref().unwrap().received, 10);
    }
}

/// The real two-host case over HTTP: the answerer at "home" behind a NAT whose router forwards
/// TCP 7000 to it (the one port a user can open), the offerer at "the office" behind a
/// symmetric NAT. Signaling crosses both NATs over HTTP; media goes through the relay.
#[test]
fn http_signaling_across_two_nats_with_a_port_forward() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::two_clients(NatKind::Symmetric, NatKind::PortRestricted);
    let coturn = coturn(&tb);
    tb.router2().nft(&format!(
        "table ip portfwd {{\n\
         \tchain prerouting {{\n\
         \t\ttype nat hook prerouting priority dstnat; policy accept;\n\
         \t\tiifname \"wan0\" tcp dport 7000 dnat to {CLIENT2_LAN_IP}:7000\n\
         \t}}\n\
         }}\n"
    ));
    let cli2 = tb.cli2.clone().unwrap();
    let (o, a) = two_hosts(
        &cli2,
        &tb.cli,
        &CLIENT2_LAN_IP.to_string(),
        Some(&ROUTER2_WAN_IP.to_string()),
        &[
            STUN,
            TURN,
            "-u",
            "alice",
            "--timeout",
            "30s",
            "--count",
            "10",
        ],
    );
    for out in [&o, &a] {
        let r = report(out, &coturn.log());
        assert_eq!(out.status.code(), Some(0), "{r:#?}\n{}", coturn.log());
        assert!(involves_relay(&r.sides[0]), "{r:#?}");
        assert_eq!(r.sides[0].echo.as_ref().unwrap().received, 10, "{r:#?}");
    }
}

/// Runs `--signal stdio` offering in `offerer` and answering in `answerer`, carrying the blobs
/// between them (signaling that works whatever NATs sit in between); returns (offerer,
/// answerer) outputs.
fn stdio_pair(offerer: &Netns, answerer: &Netns, args: &[&str]) -> (Output, Output) {
    let bin = env!("CARGO_BIN_EXE_iceprobe");
    let spawn = |ns: &Netns, answer: bool| {
        let mut argv = vec![
            "timeout", "-k", "5", "90", bin, "connect", "--signal", "stdio", "--format", "json",
        ];
        if answer {
            argv.push("--answer");
        }
        argv.extend_from_slice(args);
        let mut c = ns
            .exec(argv)
            .env("NO_COLOR", "1")
            .env("ICEPROBE_CREDENTIAL", "secret")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = c.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let h = thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if line.starts_with("iceprobe1:") {
                    let _ = tx.send(line.clone());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        (c, rx, h)
    };
    use std::io::Write;
    let (mut a, a_blob, a_err) = spawn(offerer, false);
    let (mut b, b_blob, b_err) = spawn(answerer, true);
    let offer = a_blob
        .recv_timeout(Duration::from_secs(30))
        .expect("offer blob");
    writeln!(b.stdin.take().unwrap(), "{offer}").unwrap();
    let answer = b_blob
        .recv_timeout(Duration::from_secs(30))
        .expect("answer blob");
    writeln!(a.stdin.take().unwrap(), "{answer}").unwrap();
    let mut ao = a.wait_with_output().unwrap();
    let mut bo = b.wait_with_output().unwrap();
    ao.stderr = a_err.join().unwrap().into_bytes();
    bo.stderr = b_err.join().unwrap().into_bytes();
    (ao, bo)
}

#[test]
fn two_symmetric_nats_connect_through_the_relay() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::two_clients(NatKind::Symmetric, NatKind::Symmetric);
    let coturn = coturn(&tb);
    let cli2 = tb.cli2.clone().unwrap();
    let (o, a) = stdio_pair(
        &tb.cli,
        &cli2,
        &[STUN, TURN, "-u", "alice", "--timeout", "30s"],
    );
    for out in [&o, &a] {
        let r = report(out, &coturn.log());
        assert_eq!(out.status.code(), Some(0), "{r:#?}\n{}", coturn.log());
        assert!(involves_relay(&r.sides[0]), "{r:#?}");
        let sel = r.sides[0].selected.as_ref().unwrap();
        assert!(
            sel.description.starts_with("relayed via"),
            "{}",
            sel.description
        );
        assert!(r.sides[0].echo.as_ref().unwrap().received > 0);
    }
}

#[test]
fn two_symmetric_nats_without_turn_say_add_a_turn_server() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::two_clients(NatKind::Symmetric, NatKind::Symmetric);
    let coturn = coturn(&tb);
    let cli2 = tb.cli2.clone().unwrap();
    let (o, a) = stdio_pair(&tb.cli, &cli2, &[STUN, "--timeout", "12s"]);
    for out in [&o, &a] {
        let r = report(out, &coturn.log());
        assert_eq!(out.status.code(), Some(1), "{r:#?}");
        let s = &r.sides[0];
        assert!(s.selected.is_none(), "{r:#?}");
        assert!(
            s.local_candidates
                .iter()
                .any(|c| c.kind == CandidateType::Srflx),
            "{r:#?}"
        );
        let cause = r.cause.as_ref().unwrap();
        assert_eq!(cause.code.as_str(), "add-turn-server", "{r:#?}");
        assert!(cause.text.contains("add a TURN server"));
        // Which pairs were tried: checks went out and none was answered.
        assert!(
            s.pairs
                .iter()
                .any(|p| p.requests_sent > 0 && p.state == "failed"),
            "{:#?}",
            s.pairs
        );
        assert!(
            s.pairs.iter().all(|p| p.responses_received == 0),
            "{:#?}",
            s.pairs
        );
    }
}

#[test]
fn a_full_cone_side_learns_a_prflx_candidate_from_a_symmetric_peer() {
    if !common::require_netns() {
        return;
    }
    // cli: symmetric (a new port per destination), cli2: full cone (accepts anyone).
    let tb = Testbed::two_clients(NatKind::Symmetric, NatKind::FullCone);
    let coturn = coturn(&tb);
    let cli2 = tb.cli2.clone().unwrap();
    let (o, a) = stdio_pair(&tb.cli, &cli2, &[STUN, "--timeout", "30s"]);
    let (ro, ra) = (report(&o, &coturn.log()), report(&a, &coturn.log()));
    assert_eq!(o.status.code(), Some(0), "{ro:#?}");
    assert_eq!(a.status.code(), Some(0), "{ra:#?}");
    // The full-cone side (b, the answerer) got checks from a mapping it was never told about.
    let b = &ra.sides[0];
    let prflx: Vec<_> = b
        .remote_candidates
        .iter()
        .filter(|c| c.kind == CandidateType::Prflx)
        .collect();
    assert!(!prflx.is_empty(), "{ra:#?}");
    assert!(
        prflx.iter().all(|c| c.address == "198.18.0.254"),
        "{prflx:?}"
    );
    let sel = b.selected.as_ref().unwrap();
    assert_eq!(sel.remote.kind, CandidateType::Prflx, "{ra:#?}");
    // The symmetric side (a, the offerer) learns its own prflx: the full-cone peer saw its
    // checks come from a mapping its STUN server never showed it.
    let a_side = &ro.sides[0];
    assert!(
        a_side
            .local_candidates
            .iter()
            .any(|c| c.kind == CandidateType::Prflx && c.address == "198.18.0.254"),
        "{ro:#?}"
    );
    // Its srflx candidates name the STUN server that reported them.
    assert!(
        a_side
            .local_candidates
            .iter()
            .filter(|c| c.kind == CandidateType::Srflx)
            .all(|c| c.url.as_deref() == Some(STUN)),
        "{ro:#?}"
    );
    assert!(
        sel.description.contains("peer-reflexive"),
        "{}",
        sel.description
    );
}

fn relay_loopback(tb: &Testbed, extra: &[&str]) -> Output {
    let mut args = vec![
        "connect",
        "--policy-a",
        "relay",
        "--policy-b",
        "relay",
        "--bind-a",
        "198.18.0.10",
        "--bind-b",
        "198.18.0.10",
        TURN,
        "-u",
        "alice",
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    common::iceprobe_in_env(&tb.cli, &args, &[("ICEPROBE_CREDENTIAL", "secret")])
}

#[test]
fn relay_policy_on_both_sides_goes_relay_to_relay_and_releases() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::public();
    // Two allocations per run; a quota of 2 makes a second run prove the first released them.
    let coturn = Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .user("alice", "secret")
        .user_quota(2)
        .start();
    for run in 0..2 {
        let out = relay_loopback(&tb, &["--count", "5"]);
        for stream in [&out.stdout, &out.stderr] {
            assert!(
                !String::from_utf8_lossy(stream).contains("secret"),
                "the credential must never be printed"
            );
        }
        let r = report(&out, &coturn.log());
        assert_eq!(
            out.status.code(),
            Some(0),
            "run {run}: {r:#?}\n{}",
            coturn.log()
        );
        for s in &r.sides {
            assert!(s
                .local_candidates
                .iter()
                .all(|c| c.kind == CandidateType::Relay));
            let sel = s.selected.as_ref().unwrap();
            assert_eq!(
                (sel.local.kind, sel.remote.kind),
                (CandidateType::Relay, CandidateType::Relay),
                "{r:#?}"
            );
            assert_eq!(sel.local.url.as_deref(), Some(TURN), "{sel:?}");
            // The checks went through the relay (Send indications or ChannelData) and were
            // seen: the relay-relay pair succeeded, nominated, with its check counts.
            let pair = s
                .pairs
                .iter()
                .find(|p| p.local.endpoint() == sel.local.endpoint())
                .unwrap_or_else(|| panic!("{:#?}", s.pairs));
            assert_eq!(pair.state, "succeeded", "{pair:?}");
            assert!(pair.nominated && pair.requests_sent > 0 && pair.responses_received > 0);
            assert_eq!(pair.remote.kind, CandidateType::Relay, "{pair:?}");
        }
        assert!(
            r.sides[0]
                .selected
                .as_ref()
                .unwrap()
                .description
                .contains("relayed via turn:198.18.0.1?transport=udp"),
            "{r:#?}"
        );
        thread::sleep(Duration::from_secs(3)); // coturn frees quota on a ~1 s timer
    }
}

#[test]
fn a_relay_that_denies_peers_is_named_as_the_cause() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::public();
    let coturn = Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .user("alice", "secret")
        .allowed_peer_ip("100.64.0.0-100.127.255.255")
        .denied_peer_ip("198.18.0.0-198.19.255.255")
        .start();
    let out = relay_loopback(&tb, &["--timeout", "12s"]);
    let r = report(&out, &coturn.log());
    assert_eq!(out.status.code(), Some(1), "{r:#?}");
    assert_eq!(
        r.cause.as_ref().unwrap().code.as_str(),
        "relay-not-forwarding",
        "{r:#?}"
    );
    assert!(r.cause.as_ref().unwrap().text.contains("denied-peer-ip"));
}
