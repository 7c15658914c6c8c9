//! Ctrl-C (SIGINT) and SIGTERM: the run stops at once with exit 130 (SIGTERM: 143), prints its
//! report, and still releases an allocation that may exist on the server — here one whose
//! Allocate was never answered.
#![allow(clippy::disallowed_methods)] // tests read the clock

use std::io::Read;
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use iceprobe::model::gather::GatherReport;
use iceprobe::proto::stun::{self, method, Class};
use rtc::stun::attributes::{ATTR_NONCE, ATTR_REALM};
use rtc::stun::error_code::{ErrorCode, ErrorCodeAttribute};
use rtc::stun::message::{CLASS_ERROR_RESPONSE, METHOD_ALLOCATE};

/// A TURN server that challenges the first Allocate with 401, then goes silent, recording
/// every request it sees.
fn challenge_then_silence(sock: &UdpSocket, until: Instant) -> Vec<(u16, bool)> {
    let mut seen = vec![];
    let mut buf = [0u8; 2048];
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    while Instant::now() < until {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let Ok(d) = stun::decode(&buf[..n]) else {
            continue;
        };
        if d.class != Some(Class::Request) {
            continue;
        }
        seen.push((d.method, d.has_integrity));
        if d.method == method::ALLOCATE && !d.has_integrity {
            let mut r = stun::start(METHOD_ALLOCATE, CLASS_ERROR_RESPONSE, d.txid);
            stun::add(
                &mut r,
                &ErrorCodeAttribute {
                    code: ErrorCode(401),
                    reason: b"Unauthorized".to_vec(),
                },
            )
            .unwrap();
            stun::add_raw(&mut r, ATTR_REALM, b"interrupt.test");
            stun::add_raw(&mut r, ATTR_NONCE, b"n0nce");
            sock.send_to(&stun::finish(r), from).unwrap();
        }
    }
    seen
}

/// Gather from a server that challenges, then goes silent; send `signal` mid-run.
fn signal_releases_a_maybe_allocation(signal: &'static str, code: i32) {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let url = format!("turn:{}?transport=udp", server.local_addr().unwrap());
    let mut child = Command::new(env!("CARGO_BIN_EXE_iceprobe"))
        .args([
            "gather",
            "--format",
            "json",
            "--relay-only",
            "--timeout",
            "30s",
            "-u",
            "alice",
            &url,
        ])
        .env("ICEPROBE_CREDENTIAL", "pw")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(800));
        let started = Instant::now();
        Command::new("kill").args([signal, &pid]).status().unwrap();
        started
    });
    let seen = challenge_then_silence(&server, Instant::now() + Duration::from_millis(2500));
    let sent_at = killer.join().unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let status = child.wait().unwrap();
    let exited_after = sent_at.elapsed();

    assert_eq!(status.code(), Some(code), "stdout: {stdout}");
    assert!(
        exited_after < Duration::from_secs(5),
        "took {exited_after:?} after {signal}"
    );
    let report: GatherReport =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert!(!report.verdict.ok);
    // Unauthenticated Allocate, authenticated Allocate (retransmitted while unanswered), then
    // the release: an authenticated Refresh sent after Ctrl-C.
    assert_eq!(seen.first(), Some(&(method::ALLOCATE, false)), "{seen:?}");
    assert!(seen.contains(&(method::ALLOCATE, true)), "{seen:?}");
    assert_eq!(
        seen.last(),
        Some(&(method::REFRESH, true)),
        "release after {signal}: {seen:?}"
    );
}

#[test]
fn sigint_exits_130_and_releases_a_maybe_allocation() {
    signal_releases_a_maybe_allocation("-INT", 130);
}

#[test]
fn sigterm_exits_143_and_releases_a_maybe_allocation() {
    signal_releases_a_maybe_allocation("-TERM", 143);
}

#[test]
fn sigint_during_check_exits_130_with_a_report() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let url = format!("stun:{}", server.local_addr().unwrap());
    let child = Command::new(env!("CARGO_BIN_EXE_iceprobe"))
        .args(["check", "--format", "json", "--timeout", "30s", &url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(started.elapsed() < Duration::from_secs(5));
    let r: iceprobe::model::check::CheckReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r.rows.len(), 1);
    assert!(r.rows[0].binding.is_failed(), "{:?}", r.rows[0].binding);
    drop(server);
}

/// `check --every` until `signal`: exits with `code` after one summary per run.
fn check_every_until(signal: &str, code: i32) {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let url = format!("stun:{}", server.local_addr().unwrap());
    let child = Command::new(env!("CARGO_BIN_EXE_iceprobe"))
        .args([
            "check",
            "--every",
            "1s",
            "--timeout",
            "300ms",
            "--format",
            "ndjson",
            &url,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(code));
    let events: Vec<iceprobe::model::check::CheckEvent> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let summaries = events
        .iter()
        .filter(|e| matches!(e, iceprobe::model::check::CheckEvent::Summary(_)))
        .count();
    assert!(
        (2..=4).contains(&summaries),
        "one summary per run, a run a second: {summaries}"
    );
    drop(server);
}

#[test]
fn check_every_repeats_until_sigint() {
    check_every_until("-INT", 130);
}

#[test]
fn check_every_repeats_until_sigterm() {
    check_every_until("-TERM", 143);
}
