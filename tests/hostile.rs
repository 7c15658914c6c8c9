//! The hostile-server matrix: for every way a broken or malicious STUN/TURN server can answer,
//! `iceprobe` ends by its deadline (+10 %), exits with the right code, names the specific cause,
//! and never panics (the binary runs with RUST_BACKTRACE=1; any panic output fails the test).
//!
//! The servers are in-process fakes on loopback (tests/common/hostile.rs): a real coturn never
//! misbehaves like this. No root needed.
#![allow(clippy::disallowed_methods)] // tests read the clock

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::hostile::{HostileStream, HostileUdp, Mode, StreamMode, PASS, USER};
use serde_json::Value;

/// The deadline every case runs with (`--timeout`).
const TIMEOUT: Duration = Duration::from_secs(5);

/// Process start-up and exit around the deadline; the tool's own overrun must stay within 10 %.
const SPAWN_SLACK: Duration = Duration::from_millis(250);

struct Run {
    code: i32,
    json: Value,
    stderr: String,
    elapsed: Duration,
}

fn iceprobe(args: &[&str]) -> Run {
    let t0 = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_iceprobe"))
        .args(args)
        .args(["--timeout", "5s", "--format", "json"])
        .env("RUST_BACKTRACE", "1")
        .env_remove("ICEPROBE_CREDENTIAL")
        .stdin(Stdio::null())
        .output()
        .expect("run iceprobe");
    let elapsed = t0.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "iceprobe {args:?} panicked:\n{stderr}"
    );
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("iceprobe {args:?}: stdout is not JSON ({e}):\n{stdout}\n{stderr}")
    });
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        json,
        stderr,
        elapsed,
    };
    let limit = TIMEOUT.mul_f64(1.1) + SPAWN_SLACK;
    assert!(
        run.elapsed <= limit,
        "iceprobe {args:?} took {:?}, past its {TIMEOUT:?} deadline + 10 % (+{SPAWN_SLACK:?} process start-up)",
        run.elapsed
    );
    run
}

fn check(url: &str, extra: &[&str]) -> Run {
    let mut args = vec!["check", url, "-u", USER, "--credential", PASS];
    args.extend_from_slice(extra);
    iceprobe(&args)
}

/// The stage `name` of the first row: it must have failed, and its cause must contain `want`.
fn assert_stage_cause(run: &Run, name: &str, want: &str) {
    let stage = &run.json["rows"][0][name];
    assert_eq!(
        stage["status"], "failed",
        "stage {name} should fail: {:#}",
        run.json["rows"][0]
    );
    let cause = stage["cause"].as_str().unwrap_or_default();
    assert!(
        cause.contains(want),
        "stage {name}: cause {cause:?} lacks {want:?}\n{:#}",
        run.json["rows"][0]
    );
    assert_eq!(run.code, 1, "exit code; stderr: {}", run.stderr);
}

fn turn_udp(server: &HostileUdp) -> String {
    format!("turn:{}?transport=udp", server.addr)
}

/// One UDP case through `check`: the stage that fails first, and its cause.
fn udp_case(mode: Mode, stage: &str, want: &str) {
    let server = HostileUdp::start(mode);
    let run = check(&turn_udp(&server), &[]);
    assert_stage_cause(&run, stage, want);
}

#[test]
fn truncated_reply() {
    udp_case(
        Mode::Truncated,
        "binding",
        "truncated: the header announces",
    );
}

#[test]
fn length_field_larger_than_the_datagram() {
    udp_case(
        Mode::LengthOverrun,
        "binding",
        "truncated: the header announces",
    );
}

#[test]
fn attribute_length_overruns_the_message() {
    udp_case(Mode::AttrOverrun, "binding", "claims 4080 bytes");
}

#[test]
fn thousands_of_attributes() {
    udp_case(Mode::ManyAttributes, "binding", "more than 128 attributes");
}

#[test]
fn wrong_magic_cookie() {
    udp_case(
        Mode::WrongCookie,
        "binding",
        "wrong magic cookie 0xDEADBEEF",
    );
}

#[test]
fn wrong_transaction_id() {
    udp_case(Mode::WrongTxid, "binding", "wrong transaction id");
}

#[test]
fn reply_from_another_port() {
    udp_case(Mode::WrongSource, "binding", "not from the server");
}

#[test]
fn reply_from_another_address() {
    udp_case(
        Mode::WrongSourceAddress,
        "binding",
        "a reply came from 127.0.0.2:",
    );
}

#[test]
fn bad_fingerprint() {
    udp_case(
        Mode::BadFingerprint,
        "binding",
        "FINGERPRINT does not match",
    );
}

#[test]
fn unknown_comprehension_required_attribute() {
    udp_case(
        Mode::UnknownRequired,
        "binding",
        "unknown comprehension-required attribute 0x7FFF",
    );
}

#[test]
fn error_code_class_out_of_range() {
    udp_case(
        Mode::ErrorClassOutOfRange,
        "binding",
        "ERROR-CODE class 7 number 1 is out of range",
    );
}

#[test]
fn flood_of_unsolicited_datagrams() {
    udp_case(Mode::Flood, "binding", "replies rejected");
}

#[test]
fn bad_message_integrity_on_the_allocation() {
    let server = HostileUdp::start(Mode::BadIntegrity);
    let run = check(&turn_udp(&server), &[]);
    // The unauthenticated Binding is fine; the signed Allocate answer is forged.
    assert_eq!(run.json["rows"][0]["binding"]["status"], "ok");
    assert_stage_cause(&run, "allocate", "MESSAGE-INTEGRITY does not match");
}

#[test]
fn endless_401_with_fresh_nonces() {
    let server = HostileUdp::start(Mode::Endless401);
    let run = check(&turn_udp(&server), &[]);
    assert_stage_cause(&run, "allocate", "wrong TURN credentials");
    assert_eq!(run.json["rows"][0]["allocate"]["code"], 401);
    assert!(
        run.elapsed < TIMEOUT / 2,
        "a 401 ends the row at once: {:?}",
        run.elapsed
    );
}

#[test]
fn stale_nonce_loop() {
    let server = HostileUdp::start(Mode::StaleNonceLoop);
    let run = check(&turn_udp(&server), &[]);
    assert_stage_cause(&run, "allocate", "stale");
    assert_eq!(run.json["rows"][0]["allocate"]["code"], 438);
}

#[test]
fn alternate_server_pointing_at_itself() {
    let server = HostileUdp::start(Mode::AlternateSelf);
    let run = check(&turn_udp(&server), &[]);
    assert_stage_cause(&run, "challenge", "redirect loop");
    assert_eq!(
        run.json["rows"].as_array().map(Vec::len),
        Some(1),
        "the loop is not followed"
    );
}

#[test]
fn channel_data_with_a_bad_length() {
    let server = HostileUdp::start(Mode::BadChannelData);
    let run = check(&turn_udp(&server), &[]);
    for stage in ["allocate", "permission", "channel"] {
        assert_eq!(run.json["rows"][0][stage]["status"], "ok", "{stage}");
    }
    assert_stage_cause(&run, "channel_echo", "bad ChannelData frame");
}

/// A reply without FINGERPRINT is legal (RFC 8489 §14.7 makes it optional): the check passes
/// and warns, it does not fail.
#[test]
fn no_fingerprint_is_a_warning_not_a_failure() {
    let server = HostileUdp::start(Mode::NoFingerprint);
    let run = iceprobe(&["check", &format!("stun:{}", server.addr)]);
    assert_eq!(run.code, 0, "{:#}", run.json);
    let warnings = run.json["rows"][0]["warnings"].to_string();
    assert!(warnings.contains("no-fingerprint"), "{warnings}");
}

/// The same broken replies through `gather`: its error events carry the same causes.
#[test]
fn gather_names_rejected_replies() {
    for (mode, want) in [
        (Mode::WrongTxid, "wrong transaction id"),
        (Mode::BadIntegrity, "MESSAGE-INTEGRITY does not match"),
        (Mode::Truncated, "truncated"),
    ] {
        let server = HostileUdp::start(mode);
        let run = iceprobe(&[
            "gather",
            &turn_udp(&server),
            "-u",
            USER,
            "--credential",
            PASS,
        ]);
        assert_eq!(run.code, 1, "{mode:?}: {:#}", run.json);
        let errors = run.json["errors"].to_string();
        assert!(errors.contains(want), "{mode:?}: {errors}");
    }
}

#[test]
fn tcp_server_that_never_speaks() {
    let server = HostileStream::start(StreamMode::Mute, None);
    let run = check(&format!("turn:{}?transport=tcp", server.addr), &[]);
    assert_eq!(run.json["rows"][0]["connect"]["status"], "ok");
    assert_stage_cause(&run, "binding", "no STUN/TURN answer");
}

#[test]
fn tcp_server_that_sends_one_byte_a_second() {
    let server = HostileStream::start(StreamMode::OneBytePerSecond, None);
    let run = check(&format!("turn:{}?transport=tcp", server.addr), &[]);
    assert_stage_cause(&run, "binding", "an unfinished message");
}

#[test]
fn tls_server_that_stalls_mid_handshake() {
    let pki = common::TestPki::new();
    let leaf = pki.leaf("hostile", &["localhost"], common::LeafKind::Valid);
    let server = HostileStream::start(StreamMode::StallHandshake, Some((&leaf.cert, &leaf.key)));
    let ca = leaf.ca.to_string_lossy().into_owned();
    let run = check(
        &format!("turns:{}", server.addr),
        &["--ca", &ca, "--tls-name", "localhost"],
    );
    assert_eq!(run.json["rows"][0]["connect"]["status"], "ok");
    assert_stage_cause(&run, "tls", "handshake");
}

#[test]
fn tls_server_that_sends_garbage_after_the_handshake() {
    let pki = common::TestPki::new();
    let leaf = pki.leaf("hostile", &["localhost"], common::LeafKind::Valid);
    let server = HostileStream::start(
        StreamMode::GarbageAfterHandshake,
        Some((&leaf.cert, &leaf.key)),
    );
    let ca = leaf.ca.to_string_lossy().into_owned();
    let run = check(
        &format!("turns:{}", server.addr),
        &["--ca", &ca, "--tls-name", "localhost"],
    );
    assert_eq!(run.json["rows"][0]["tls"]["status"], "ok", "{:#}", run.json);
    assert_stage_cause(&run, "binding", "not STUN/TURN");
}

/// `nat` against a server whose every reply must be rejected: not "UDP blocked" (the server
/// did answer), but an inconclusive result that names what was wrong, and exit 1.
#[test]
fn nat_does_not_mistake_rejected_replies_for_silence() {
    for (mode, want) in [
        (Mode::BadFingerprint, "FINGERPRINT does not match"),
        (Mode::Truncated, "truncated"),
    ] {
        let server = HostileUdp::start(mode);
        let run = iceprobe(&["nat", &format!("stun:{}", server.addr)]);
        let text = run.json.to_string();
        assert!(text.contains("\"kind\":\"rejected\""), "{mode:?}: {text}");
        assert!(text.contains(want), "{mode:?}: {text}");
        assert!(
            !text.contains("udp-blocked"),
            "{mode:?}: {:#}",
            run.json["verdict"]
        );
        assert_eq!(run.code, 1, "{mode:?}: {:#}", run.json["verdict"]);
    }
}

/// `connect` (webrtc-rs underneath) with only a hostile relay to use: it still ends by its
/// deadline, exits 1, never panics, and says the relay gave nothing.
#[test]
fn connect_with_a_hostile_relay_ends_on_time() {
    // webrtc-rs gathers no relay from garbage, but takes the forged MESSAGE-INTEGRITY at its
    // word: that relay is gathered and then forwards nothing.
    for (mode, code) in [
        (Mode::Flood, "nothing-gathered"),
        (Mode::BadIntegrity, "relay-not-forwarding"),
        (Mode::Truncated, "nothing-gathered"),
    ] {
        let server = HostileUdp::start(mode);
        let run = iceprobe(&[
            "connect",
            &turn_udp(&server),
            "-u",
            USER,
            "--credential",
            PASS,
            "--policy-a",
            "relay",
            "--policy-b",
            "relay",
        ]);
        let cause = run.json["cause"].to_string();
        assert!(cause.contains("relay"), "{mode:?}: cause {cause}");
        assert_eq!(run.json["cause"]["code"], code, "{mode:?}: cause {cause}");
        assert_eq!(run.code, 1, "{mode:?}: {:#}", run.json);
    }
}

/// A UDP port that answers a DTLS ClientHello with something record-shaped but malformed, and a
/// port that never answers: TURN over DTLS (RFC 7350) fails its handshake stage with the cause,
/// by the deadline.
#[test]
fn dtls_port_that_answers_garbage_or_nothing() {
    let garbage = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let garbage_addr = garbage.local_addr().unwrap();
    let silent_addr = silent.local_addr().unwrap();
    garbage
        .set_read_timeout(Some(TIMEOUT + Duration::from_secs(1)))
        .unwrap();
    let answerer = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = garbage.recv_from(&mut buf) {
            // A handshake record header (type 22, DTLS 1.2) whose length field lies.
            let mut reply = vec![0x16, 0xfe, 0xfd];
            reply.extend_from_slice(&[0u8; 20]);
            reply.extend_from_slice(&buf[..n.min(30)]);
            let _ = garbage.send_to(&reply, from);
        }
    });
    for (addr, want_phase, want) in [
        (garbage_addr, "tls", "DTLS handshake failed: "),
        (
            silent_addr,
            "timeout",
            "no DTLS handshake answer within the deadline",
        ),
    ] {
        let run = check(&format!("turns:{addr}?transport=udp"), &["--insecure"]);
        assert_stage_cause(&run, "tls", want);
        let row = &run.json["rows"][0];
        assert_eq!(row["tls"]["phase"], want_phase, "{row:#}");
        assert_eq!(row["transport"], "dtls", "{row:#}");
        assert_eq!(row["connect"]["status"], "not-checked", "{row:#}");
    }
    drop(silent);
    answerer.join().unwrap();
}
