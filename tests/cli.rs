//! The CLI contract, run against the real binary: help and version, usage errors (exit 2, no
//! panic, the offending input named), secrets never printed, the JSON / NDJSON contract of
//! `demo`, broken pipes, and the run deadline.
//!
//! Loopback only and no root: "servers" are 127.0.0.1 ports known to be closed (bind, take the
//! port, drop) or a bound UDP socket that never answers. Every run has a deadline and a null
//! stdin.
#![allow(clippy::disallowed_methods)] // tests and their harness read the clock

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use iceprobe::candidate::CandidateType;
use iceprobe::ice_url::Protocol;
use iceprobe::model::gather::{
    GatherEvent as Event, GatherReport, GATHER_SCHEMA_VERSION as SCHEMA_VERSION,
};

const BIN: &str = env!("CARGO_BIN_EXE_iceprobe");
/// Deadline for one run; generous, the runs themselves take milliseconds to ~1 s.
const RUN_DEADLINE: Duration = Duration::from_secs(30);

/// What a finished run left behind.
struct Run {
    args: Vec<String>,
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn context(&self) -> String {
        format!(
            "iceprobe {:?}\nexit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.args, self.code, self.stdout, self.stderr
        )
    }
}

fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Only what a test sets explicitly may leak in.
        .env_remove("ICEPROBE_CREDENTIAL")
        .env_remove("ICEPROBE_TURN_SECRET")
        .env_remove("RUST_BACKTRACE")
        .env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn drain(mut r: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Wait for `child` until `deadline`; kill it and fail the test past that.
fn wait_with_deadline(child: &mut Child, deadline: Duration, what: &str) -> i32 {
    let start = Instant::now();
    loop {
        match child.try_wait().expect("try_wait") {
            Some(status) => {
                return status
                    .code()
                    .unwrap_or_else(|| panic!("{what}: killed by a signal: {status:?}"))
            }
            None if start.elapsed() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what}: still running after {deadline:?}; killed");
            }
            None => thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn run_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut child = command(args, env).spawn().expect("spawn iceprobe");
    let out = drain(child.stdout.take().expect("stdout"));
    let err = drain(child.stderr.take().expect("stderr"));
    let code = wait_with_deadline(&mut child, RUN_DEADLINE, &format!("iceprobe {args:?}"));
    let run = Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        code,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    };
    assert!(
        !run.stderr.contains("panicked") && !run.stdout.contains("panicked"),
        "panic:\n{}",
        run.context()
    );
    run
}

fn run(args: &[&str]) -> Run {
    run_env(args, &[])
}

/// A loopback UDP port nobody listens on (bound, then released).
fn closed_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind udp")
        .port()
}

/// A loopback TCP port nobody listens on (bound, then released).
fn closed_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind tcp")
        .port()
}

fn write_file(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write fixture");
    p.to_str().expect("utf-8 temp path").to_owned()
}

fn gather_report(r: &Run) -> GatherReport {
    serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("stdout is not a GatherReport ({e}):\n{}", r.context()))
}

// ---------------------------------------------------------------------------------------------
// 1. Help and version.

#[test]
fn help_and_version_exit_zero_and_describe_the_cli() {
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--help"],
            &["gather", "demo", "Exit codes", "0 ", "1 ", "2 ", "130"],
        ),
        (&["help"], &["gather", "demo", "Exit codes"]),
        (
            &["gather", "--help"],
            &[
                "--config",
                "--ice-servers-url",
                "--username",
                "--credential",
                "--credential-file",
                "--turn-secret",
                "--relay-only",
                "--timeout",
                "--rto",
                "--format",
                "-4",
                "-6",
                "ICEPROBE_CREDENTIAL",
                "Exit codes",
                "130",
            ],
        ),
        (&["help", "gather"], &["--timeout", "--format"]),
        (
            &["demo", "--help"],
            &["--timeout", "--format", "ndjson", "Exit codes", "130"],
        ),
        (&["--version"], &["iceprobe", env!("CARGO_PKG_VERSION")]),
        (&["-V"], &[env!("CARGO_PKG_VERSION")]),
        (&["gather", "--version"], &[env!("CARGO_PKG_VERSION")]),
    ];
    for (args, wants) in cases {
        let r = run(args);
        assert_eq!(r.code, 0, "{}", r.context());
        for w in *wants {
            assert!(r.stdout.contains(w), "missing {w:?}:\n{}", r.context());
        }
        // Rustdoc syntax is for rustdoc, not for users.
        assert!(
            !r.stdout.contains("[`"),
            "rustdoc link in help:\n{}",
            r.context()
        );
        assert!(r.stderr.is_empty(), "{}", r.context());
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Usage errors: exit 2, the problem named on stderr, nothing on stdout, no panic.

#[test]
fn usage_errors_exit_two_and_name_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let garbage = write_file(
        dir.path(),
        "garbage.json",
        "{\"iceServers\": [\n  {\"urls\": }\n",
    );
    let pw = write_file(dir.path(), "pw.txt", "from-file\n");
    let missing = dir.path().join("missing.json");
    let missing = missing.to_str().expect("utf-8");
    let u = format!("turn:127.0.0.1:{}", closed_udp_port());
    let u = u.as_str();

    let cases: &[(&[&str], &[&str])] = &[
        (&["--bogus"], &["--bogus"]),
        (&["gather", "--bogus", u], &["--bogus"]),
        (&["frobnicate"], &["frobnicate"]),
        (&[], &["Usage"]),
        (&["gather"], &["no servers given"]),
        (&["gather", "http://x"], &["http://x", "scheme"]),
        (&["gather", "turn:host:0"], &["turn:host:0", "port"]),
        (
            &["gather", "stuns:h?transport=udp"],
            &["stuns:h?transport=udp", "RFC 7064 defines no DTLS form"],
        ),
        (&["gather", "turn:fd00::1"], &["turn:fd00::1", "brackets"]),
        (&["gather", "--timeout", "abc", u], &["--timeout", "abc"]),
        (&["gather", "--timeout", "0s", u], &["--timeout"]),
        (&["gather", "--rto", "0s", u], &["--rto"]),
        (&["demo", "--timeout", "0s"], &["--timeout"]),
        (&["demo", "--format", "xml"], &["--format", "xml"]),
        (&["gather", "--format", "xml", u], &["--format", "xml"]),
        (&["gather", "-4", "-6", u], &["-4", "-6"]),
        (&["gather", "--config", missing], &[missing]),
        (
            &["gather", "--config", &garbage],
            &[&garbage, "line 2", "column"],
        ),
        (
            &["gather", "--credential", "x", "--credential-file", &pw, u],
            &["--credential", "--credential-file"],
        ),
        (
            &["gather", "--turn-secret", "s", "--credential", "x", u],
            &["--turn-secret", "--credential"],
        ),
        // Huge durations once overflowed `Instant + Duration` / `now + ttl` and panicked.
        (
            &["gather", "--timeout", "18446744073709551615s", u],
            &["--timeout"],
        ),
        (&["gather", "--rto", "18446744073709551615s", u], &["--rto"]),
        (
            &["demo", "--timeout", "18446744073709551615s"],
            &["--timeout"],
        ),
        (
            &[
                "gather",
                "--turn-secret",
                "s",
                "--turn-ttl",
                "18446744073709551615s",
                u,
            ],
            &["--turn-ttl"],
        ),
    ];
    for (args, wants) in cases {
        let r = run(args);
        assert_eq!(r.code, 2, "{}", r.context());
        assert!(r.stdout.is_empty(), "stdout not empty:\n{}", r.context());
        for w in *wants {
            assert!(r.stderr.contains(w), "stderr lacks {w:?}:\n{}", r.context());
        }
    }
}

#[test]
fn usage_errors_never_print_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A credential inside JSON that fails at several layers: syntax, an unterminated string,
    // a wrong type next to it, and an unsupported credentialType.
    let bad_jsons = [
        "{\"iceServers\": [{\"urls\": \"turn:h\", \"username\": \"a\", \"credential\": \"TOPSECRET\" \"x\": 1}]}",
        "{\"iceServers\": [{\"urls\": \"turn:h\", \"credential\": \"TOPSECRET",
        "{\"iceServers\": [{\"urls\": \"turn:h\", \"credential\": \"TOPSECRET\\q\"}]}",
        "{\"iceServers\": [{\"urls\": \"turn:h\", \"credential\": \"TOPSECRET\", \"username\": 7}]}",
        "{\"iceServers\": [{\"urls\": 7, \"credential\": \"TOPSECRET\"}]}",
        "{\"iceServers\": [{\"urls\": \"http://h\", \"credential\": \"TOPSECRET\"}]}",
        "{\"iceServers\": [{\"urls\": \"turn:h\", \"credential\": \"TOPSECRET\", \"credentialType\": \"oauth\"}]}",
        "[{\"urls\": \"turn:h\", \"credential\": \"TOPSECRET\"},]",
    ];
    for (i, text) in bad_jsons.iter().enumerate() {
        let path = write_file(dir.path(), &format!("bad{i}.json"), text);
        let r = run(&["gather", "--config", &path]);
        assert_eq!(r.code, 2, "{text}\n{}", r.context());
        assert!(r.stderr.contains(&path), "{}", r.context());
        assert!(
            !r.stderr.contains("TOPSECRET"),
            "secret leaked:\n{}",
            r.context()
        );
        assert!(
            !r.stdout.contains("TOPSECRET"),
            "secret leaked:\n{}",
            r.context()
        );
    }

    let fetch = format!(
        "http://127.0.0.1:{}/ice?apikey=SECRETKEY",
        closed_tcp_port()
    );
    let r = run(&["gather", "--ice-servers-url", &fetch, "--timeout", "2s"]);
    assert_eq!(r.code, 2, "{}", r.context());
    assert!(r.stderr.contains("127.0.0.1"), "{}", r.context());
    assert!(!r.stderr.contains("SECRETKEY"), "{}", r.context());
    assert!(!r.stdout.contains("SECRETKEY"), "{}", r.context());

    for url in ["turn:alice:hunter2@host", "turns:alice:hunter2@host:5349"] {
        let r = run(&["gather", url]);
        assert_eq!(r.code, 2, "{}", r.context());
        assert!(!r.stderr.contains("hunter2"), "{}", r.context());
        assert!(!r.stdout.contains("hunter2"), "{}", r.context());
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Credentials never printed, from argv, env or file, in any format.

#[test]
fn credentials_are_never_printed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pw = write_file(dir.path(), "pw.txt", "SUPERSECRET\n");
    let url = format!("turn:127.0.0.1:{}", closed_udp_port());
    let base = ["gather", "--timeout", "1s", "-u", "alice"];
    // (extra flags, extra environment)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        (vec!["--credential", "SUPERSECRET"], vec![]),
        (vec![], vec![("ICEPROBE_CREDENTIAL", "SUPERSECRET")]),
        (vec!["--credential-file", &pw], vec![]),
    ];
    for format in ["json", "ndjson", "table"] {
        for (extra, env) in &cases {
            let mut args: Vec<&str> = base.to_vec();
            args.extend(["--format", format]);
            args.extend(extra.iter().copied());
            args.push(&url);
            let r = run_env(&args, env);
            assert_eq!(r.code, 1, "server is silent:\n{}", r.context());
            assert!(!r.stdout.contains("SUPERSECRET"), "{}", r.context());
            assert!(!r.stderr.contains("SUPERSECRET"), "{}", r.context());
            match format {
                "json" => {
                    let rep = gather_report(&r);
                    assert!(!rep.verdict.ok, "{}", r.context());
                    assert_eq!(rep.verdict.exit_code, 1, "{}", r.context());
                }
                "ndjson" => {
                    for line in r.stdout.lines() {
                        serde_json::from_str::<Event>(line)
                            .unwrap_or_else(|e| panic!("{e}: {line}\n{}", r.context()));
                    }
                }
                _ => {}
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 4. The JSON contract of real output.

#[test]
fn demo_json_is_a_strict_gather_report() {
    let r = run(&["demo", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.context());
    let rep = gather_report(&r);
    assert_eq!(rep.schema_version, SCHEMA_VERSION);
    assert_eq!(rep.command, "gather");
    assert_eq!(rep.iceprobe_version, env!("CARGO_PKG_VERSION"));
    assert!(
        rep.verdict.ok && rep.verdict.exit_code == 0,
        "{}",
        r.context()
    );
    assert!(rep.errors.is_empty(), "{}", r.context());
    assert!(!rep.timed_out, "{}", r.context());
    let count = |k: CandidateType| rep.candidates.iter().filter(|c| c.kind == k).count();
    assert!(count(CandidateType::Host) >= 1, "{}", r.context());
    assert!(count(CandidateType::Srflx) >= 1, "{}", r.context());
    let mut relays: Vec<Protocol> = rep
        .candidates
        .iter()
        .filter(|c| c.kind == CandidateType::Relay)
        .map(|c| {
            c.relay_protocol
                .expect("relay candidates say how the server was reached")
        })
        .collect();
    relays.sort_by_key(|p| p.to_string());
    assert_eq!(
        relays,
        vec![Protocol::Tcp, Protocol::Tls, Protocol::Udp],
        "{}",
        r.context()
    );
    assert!(r.stderr.is_empty(), "{}", r.context());
}

#[test]
fn demo_ndjson_is_a_stream_of_events() {
    let r = run(&["demo", "--format", "ndjson"]);
    assert_eq!(r.code, 0, "{}", r.context());
    let events: Vec<Event> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{}", r.context())))
        .collect();
    assert!(
        matches!(events.first(), Some(Event::Start(_))),
        "{}",
        r.context()
    );
    let Some(Event::Summary(summary)) = events.last() else {
        panic!("last event is not the summary:\n{}", r.context());
    };
    assert_eq!(summary.schema_version, SCHEMA_VERSION);
    let summaries = events
        .iter()
        .filter(|e| matches!(e, Event::Summary(_)))
        .count();
    assert_eq!(summaries, 1, "{}", r.context());
    let streamed: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Candidate(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert!(!streamed.is_empty(), "{}", r.context());
    // Every candidate was trickled before the summary, and the summary holds exactly those.
    assert_eq!(streamed, summary.candidates, "{}", r.context());
}

#[test]
fn demo_table_has_relay_lines_and_a_verdict() {
    let r = run(&["demo"]);
    assert_eq!(r.code, 0, "{}", r.context());
    assert!(
        r.stdout.lines().any(|l| l.contains("relay")),
        "{}",
        r.context()
    );
    for via in ["via udp", "via tcp", "via tls"] {
        assert!(r.stdout.contains(via), "missing {via}:\n{}", r.context());
    }
    assert!(
        r.stdout.lines().any(|l| l.starts_with("ok:")),
        "no verdict line:\n{}",
        r.context()
    );
    assert!(
        !r.stdout.contains('\u{1b}'),
        "colour off a TTY:\n{}",
        r.context()
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Broken pipe (`iceprobe demo | head -1`).

#[test]
fn broken_pipe_exits_promptly_without_a_panic() {
    for format in ["ndjson", "table", "json"] {
        let mut child = command(&["demo", "--format", format], &[])
            .spawn()
            .expect("spawn");
        let err = drain(child.stderr.take().expect("stderr"));
        let mut first = String::new();
        {
            let mut out = BufReader::new(child.stdout.take().expect("stdout"));
            out.read_line(&mut first).expect("read one line");
            // `out` drops here: the read end of the pipe closes.
        }
        assert!(!first.is_empty(), "{format}: no output at all");
        let code = wait_with_deadline(&mut child, Duration::from_secs(10), format);
        let stderr = err.join().expect("stderr reader");
        assert!(
            code == 0 || code == 1,
            "{format}: exit {code}\nstderr:\n{stderr}"
        );
        assert!(
            !stderr.contains("panicked"),
            "{format}: panic on a broken pipe:\n{stderr}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 6. The deadline holds against a silent server.

#[test]
fn silent_server_is_cut_off_at_the_deadline() {
    // Bound but never read: datagrams are accepted and nothing ever answers.
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    for url in [
        format!("turn:127.0.0.1:{port}"),
        format!("stun:127.0.0.1:{port}"),
    ] {
        let started = Instant::now();
        let r = run(&[
            "gather",
            "--format",
            "json",
            "--timeout",
            "1s",
            "-u",
            "alice",
            "--credential",
            "pw",
            &url,
        ]);
        let wall = started.elapsed();
        assert_eq!(r.code, 1, "{}", r.context());
        let rep = gather_report(&r);
        assert!(
            rep.duration_ms <= 1100.0,
            "duration_ms {} past the 1 s deadline:\n{}",
            rep.duration_ms,
            r.context()
        );
        assert!(rep.duration_ms >= 900.0, "gave up early:\n{}", r.context());
        assert!(!rep.errors.is_empty(), "{}", r.context());
        assert!(
            rep.servers.iter().all(|s| s.url.to_string() == url),
            "{}",
            r.context()
        );
        assert!(wall < Duration::from_secs(5), "process took {wall:?}");
    }
    drop(silent);
}

#[test]
fn completions_and_man_page_print_and_exit_zero() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let r = run(&["completions", shell]);
        assert_eq!(r.code, 0, "{}", r.context());
        assert!(r.stdout.contains("--expect"), "{}", r.context());
    }
    let r = run(&["man"]);
    assert_eq!(r.code, 0, "{}", r.context());
    assert!(r.stdout.contains(".TH iceprobe 1"), "{}", r.context());
    let r = run(&["man", "nat"]);
    assert!(r.stdout.contains(".TH iceprobe-nat 1"), "{}", r.context());
    let r = run(&["completions", "tcsh"]);
    assert_eq!(r.code, 2, "{}", r.context());
}

#[test]
fn expect_and_junit_usage_errors_exit_two_before_probing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/j.xml");
    let cases: &[(&[&str], &str)] = &[
        (
            &["check", "stun:127.0.0.1", "--expect", "bogus"],
            "unknown key \"bogus\"; valid keys for check:",
        ),
        (
            &["gather", "stun:127.0.0.1", "--expect", "rtt<1s"],
            "gather records arrival times, not round trips; use check",
        ),
        (
            &["nat", "stun:127.0.0.1", "--expect", "nat:mapping=cone"],
            "bad value \"cone\"",
        ),
        (
            &[
                "check",
                "stun:127.0.0.1",
                "--junit",
                missing.to_str().unwrap(),
            ],
            "--junit",
        ),
        (
            &["check", "stun:127.0.0.1", "--quiet", "--format", "json"],
            "cannot be used with",
        ),
    ];
    for (args, want) in cases {
        let r = run(args);
        assert_eq!(r.code, 2, "{}", r.context());
        assert!(r.stderr.contains(want), "want {want:?}\n{}", r.context());
        assert!(r.stdout.is_empty(), "{}", r.context());
    }
}

#[test]
fn quiet_failing_expectation_is_one_line_and_exit_one() {
    let port = closed_udp_port().to_string();
    let url = format!("stun:127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("j.xml");
    let r = run(&[
        "check",
        &url,
        "--timeout",
        "1s",
        "--quiet",
        "--expect",
        "udp:ok",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1, "{}", r.context());
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.context());
    assert!(
        lines[0].starts_with("iceprobe check: FAIL "),
        "{}",
        r.context()
    );
    assert!(
        lines[1].starts_with("  FAIL udp:ok: observed 1 of 1 udp row failed"),
        "{}",
        r.context()
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<failure type=\"expectation\""), "{xml}");
}

/// `-4`/`-6` on a server without that family fails its row (exit 1) with the reason, instead of
/// a row of "not checked" stages counted as passed (exit 0): the family asked for does not work.
#[test]
fn a_family_the_server_lacks_fails_the_check() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["check", "-6", "stun:127.0.0.1", "--format", "json"],
            "127.0.0.1 is not an IPv6 address, and -6 asks for IPv6 only: give an IPv6 address, or drop -6",
        ),
        (
            &["check", "-4", "turn:[::1]", "--format", "json"],
            "[::1] is not an IPv4 address, and -4 asks for IPv4 only: give an IPv4 address, or drop -4",
        ),
    ];
    for (args, want) in cases {
        let r = run(args);
        assert_eq!(r.code, 1, "{}", r.context());
        let json: serde_json::Value =
            serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.context()));
        let dns = &json["rows"][0]["dns"];
        assert_eq!(dns["status"], "failed", "{}", r.context());
        assert_eq!(dns["cause"], *want, "{}", r.context());
        assert_eq!(json["verdict"]["ok"], false, "{}", r.context());
    }
}

/// gather leaves TURN over DTLS alone (browsers do not use it) and says so: the server is
/// not checked, and the summary does not claim it answered.
#[test]
fn gather_reports_a_dtls_server_as_not_checked() {
    let r = run(&[
        "gather",
        "turns:127.0.0.1?transport=udp",
        "--timeout",
        "2s",
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.context());
    let json: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.context()));
    let server = &json["servers"][0];
    assert_eq!(server["relay"]["status"], "not-checked", "{}", r.context());
    assert_eq!(
        server["relay"]["reason"],
        "browsers do not use TURN over DTLS (RFC 7350): iceprobe check probes it"
    );
    let summary = json["verdict"]["summary"].as_str().unwrap_or_default();
    assert!(
        summary.ends_with("no server was checked (1 not checked: see the servers table)"),
        "{summary}"
    );
}
