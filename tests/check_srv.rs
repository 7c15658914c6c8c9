//! `iceprobe check --srv` against a real DNS server (dnsmasq) and coturn in namespaces:
//! SRV targets (RFC 5928) are found, resolved and probed, and named in the report.
#![allow(clippy::disallowed_methods)] // tests and their harness read the clock

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{Coturn, Netns, Testbed, SERVER_IP, SERVER_IP2};
use std::net::IpAddr;

use iceprobe::model::check::CheckReport;
use iceprobe::model::Outcome;

/// dnsmasq inside a namespace, stopped by PID on drop.
struct Dnsmasq(Child);

impl Dnsmasq {
    fn start(ns: &Netns, records: &[String]) -> Option<Dnsmasq> {
        let Some(bin) = common::tool("dnsmasq") else {
            let msg = "dnsmasq (Debian dnsmasq-base) is not installed";
            if std::env::var(common::REQUIRE_ENV).as_deref() == Ok("1") {
                panic!("{msg}");
            }
            eprintln!("SKIPPED: {msg}");
            return None;
        };
        let mut argv: Vec<String> = [
            bin.to_string_lossy().as_ref(),
            "--no-daemon",
            "--no-resolv",
            "--no-hosts",
            "--user=root",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--port=53",
            "--log-facility=-",
        ]
        .map(String::from)
        .to_vec();
        argv.extend(records.iter().cloned());
        let guard = Dnsmasq(
            ns.exec(&argv)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn dnsmasq"),
        );
        // Wait until it answers: a TCP connect to port 53 inside the namespace.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let ok = ns
                .exec(["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/53"])
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return Some(guard);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("dnsmasq did not start");
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn srv_targets_are_probed_and_named() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::public();
    // Two coturns behind one SRV name: _turn._udp.turn.test → turn1 (198.18.0.1:3478) and
    // turn2 (198.18.0.2:3479).
    let _c1 = Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .user("alice", "pw")
        .start();
    let _c2 = Coturn::builder(&tb.srv)
        .listen(SERVER_IP2)
        .port(3479)
        .user("alice", "pw")
        .no_rfc5780()
        .start();
    let Some(_dns) = Dnsmasq::start(
        &tb.cli,
        &[
            "--srv-host=_turn._udp.turn.test,turn1.turn.test,3478,10,0".into(),
            "--srv-host=_turn._udp.turn.test,turn2.turn.test,3479,20,0".into(),
            format!("--host-record=turn1.turn.test,{SERVER_IP}"),
            format!("--host-record=turn2.turn.test,{SERVER_IP2}"),
        ],
    ) else {
        return;
    };
    let out = common::iceprobe_in_env(
        &tb.cli,
        &[
            "check",
            "--srv",
            "--format",
            "json",
            "-4",
            "-u",
            "alice",
            "turn:turn.test",
        ],
        &[("ICEPROBE_CREDENTIAL", "pw")],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let r: CheckReport = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{:#?}", r.rows);
    let probed: Vec<_> = r
        .rows
        .iter()
        .map(|row| {
            let address = row.address.map(|a| a.to_string()).unwrap_or_default();
            (row.probed_url.to_string(), address)
        })
        .collect();
    let s = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        probed,
        vec![
            s("turn:turn1.turn.test", "198.18.0.1:3478"),
            s("turn:turn2.turn.test:3479", "198.18.0.2:3479")
        ],
        "priority order, each target resolved"
    );
    for row in &r.rows {
        assert_eq!(row.url.to_string(), "turn:turn.test");
        match &row.dns {
            Outcome::Ok(p) => assert_eq!(
                p.info.srv,
                vec!["turn1.turn.test:3478", "turn2.turn.test:3479"]
            ),
            other => panic!("{other:?}"),
        }
        assert!(row.send_echo.is_ok(), "{row:#?}");
    }
}

#[test]
fn without_srv_records_the_name_itself_is_probed() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::public();
    let _c1 = Coturn::builder(&tb.srv).listen(SERVER_IP).start();
    let Some(_dns) = Dnsmasq::start(&tb.cli, &[format!("--host-record=stun.test,{SERVER_IP}")])
    else {
        return;
    };
    let out = common::iceprobe_in(
        &tb.cli,
        &["check", "--srv", "--format", "json", "-4", "stun:stun.test"],
    );
    let r: CheckReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{:#?}", r.rows);
    assert_eq!(r.rows.len(), 1);
    assert_eq!(r.rows[0].address, Some("198.18.0.1:3478".parse().unwrap()));
    match &r.rows[0].dns {
        Outcome::Ok(p) => {
            assert!(p.info.srv.is_empty());
            assert_eq!(
                p.info.addresses,
                vec!["198.18.0.1".parse::<IpAddr>().unwrap()]
            );
        }
        other => panic!("{other:?}"),
    }
}
