//! No allocation left behind: against a real coturn with `--user-quota`, every allocating
//! command (gather, check, connect) runs many times in a row — normally, cut short by
//! `--timeout`, and stopped by SIGINT and SIGTERM mid-run — and after every run the server holds
//! no allocation of ours and the next normal run succeeds. A leaked allocation would live for its
//! whole lifetime (600 s) and make the next run fail with 486 Allocation Quota Reached.
//!
//! Two independent witnesses, so the test cannot pass vacuously:
//! - the quota: the next normal run needs the whole quota (gather 1 allocation with quota 1;
//!   check and connect 2 allocations — check's row and its echo peer, connect's two relay
//!   sides — with quota 2), so a single leaked allocation fails it;
//! - coturn's own log (`-v`): every allocation is a session logged `new,` when made and
//!   `delete:` when freed; sessions made but not deleted are live allocations.
//!
//! [`a_leaked_allocation_blocks_the_next_run`] proves both have teeth: a raw allocation that is
//! never released shows up as live and makes the next gather fail with 486.
//!
//! "Mid-run" is made real, not guessed with sleeps: while a cut run goes, nftables stalls it
//! at a point where the server holds its allocations ([`Stall`]). Either the Allocate success
//! responses are lost on the way back (the server has allocated, the client never heard: the
//! hardest case, it must release what it was never told about), or relayed data between the
//! two allocations is dropped (check's echo and connect's ICE checks wait with both allocations
//! made). A signal is sent only once coturn's log shows the allocations live and the process is
//! still running, and the exit code (130 / 143, or 1 for `--timeout`) proves the run was cut.
#![allow(clippy::disallowed_methods)] // tests read the clock

mod common;

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::process::Output;
use std::thread;
use std::time::{Duration, Instant};

use common::{sys, Coturn, Netns, Running, Testbed, SERVER_IP};
use iceprobe::proto::turn::{TurnClient, TurnConfig, TurnEvent};
use iceprobe::proto::SansIo;
use iceprobe::secret::Secret;

const USER: &str = "alice";
const PASS: &str = "leak-test-credential";
const TURN: &str = "turn:198.18.0.1?transport=udp";
/// coturn frees quota on a ~1 s timer: pause this long between runs.
const PAUSE: Duration = Duration::from_secs(2);
/// Runs of each kind in a row.
const N: usize = 3;

/// A testbed with coturn (`-v`, for the session log) limited to `quota` allocations of USER.
struct Server {
    tb: Testbed,
    coturn: Coturn,
}

impl Server {
    fn start(quota: u32) -> Server {
        let tb = Testbed::public();
        let coturn = Coturn::builder(&tb.srv)
            .listen(SERVER_IP)
            .user(USER, PASS)
            .user_quota(quota)
            .verbose()
            .start();
        Server { tb, coturn }
    }

    /// (allocations ever made, allocations not yet freed), from coturn's session log lines
    /// `session ID: new, …` and `session ID: delete: …`.
    fn allocations(&self) -> (usize, usize) {
        let log = self.coturn.log();
        let sessions = |what: &str| -> BTreeSet<String> {
            log.lines()
                .filter_map(|l| l.split_once("session ")?.1.split_once(what))
                .map(|(id, _)| id.to_string())
                .collect()
        };
        let made = sessions(": new, ");
        let freed = sessions(": delete: ");
        (made.len(), made.difference(&freed).count())
    }

    fn live(&self) -> usize {
        self.allocations().1
    }

    /// Waits (bounded) until coturn has freed every allocation, then pauses for its quota timer.
    fn assert_all_freed(&self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(6);
        while self.live() > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(
            self.live(),
            0,
            "{what}: allocations left on the server\n{}",
            self.coturn.log()
        );
        thread::sleep(PAUSE);
    }
}

/// The allocating commands, each with what one normal run needs from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Gather,
    Check,
    /// The loopback self-test with both sides on relay policy: two allocations per run.
    Connect,
}

impl Cmd {
    /// Allocations one run holds at once (and the quota that makes one leaked allocation fail
    /// the next run).
    fn allocations(self) -> usize {
        match self {
            Cmd::Gather => 1,
            Cmd::Check | Cmd::Connect => 2,
        }
    }

    fn args(self, timeout: &str) -> Vec<String> {
        let v: Vec<&str> = match self {
            Cmd::Gather => vec!["gather", "--relay-only", TURN],
            Cmd::Check => vec!["check", TURN],
            Cmd::Connect => vec![
                "connect",
                "--policy-a",
                "relay",
                "--policy-b",
                "relay",
                "--bind-a",
                "198.18.0.10",
                "--bind-b",
                "198.18.0.10",
                "--count",
                "5",
                TURN,
            ],
        };
        let mut v: Vec<String> = v.into_iter().map(String::from).collect();
        v.extend(
            ["-u", USER, "--format", "json", "--timeout", timeout]
                .iter()
                .map(|s| s.to_string()),
        );
        v
    }

    /// A `--timeout` that passes while the run is stalled with its allocations made.
    fn short_timeout(self) -> &'static str {
        match self {
            Cmd::Gather => "2s",
            Cmd::Check => "3s",
            Cmd::Connect => "5s",
        }
    }

    /// How the `i`-th cut run is held mid-run. gather releases as soon as its relay candidate
    /// is known, so only a lost answer holds it; check and connect take turns (connect: webrtc
    /// itself releases only the allocations it heard of, iceprobe's sweep the others).
    fn stall(self, i: usize) -> Stall {
        match self {
            Cmd::Gather => Stall::AllocateAnswerLost,
            _ if i.is_multiple_of(2) => Stall::AllocateAnswerLost,
            Cmd::Check | Cmd::Connect => Stall::RelaySilent,
        }
    }
}

/// A way to hold a run at a point where the server holds its allocations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stall {
    /// The client drops Allocate success responses (STUN type 0x0103): coturn allocates, the
    /// client retransmits and never learns the relayed address.
    AllocateAnswerLost,
    /// coturn's relay ports drop what they send each other: allocations are made, but data
    /// (check's echo, connect's ICE checks) never crosses the relay.
    RelaySilent,
}

impl Stall {
    fn arm(self, s: &Server) {
        match self {
            Stall::AllocateAnswerLost => s.tb.cli.nft(
                "table inet stall {\n  chain inbound {\n    type filter hook input priority 0;\n    udp sport 3478 @th,64,16 0x0103 drop\n  }\n}\n",
            ),
            Stall::RelaySilent => s.tb.srv.nft(
                "table inet stall {\n  chain inbound {\n    type filter hook input priority 0;\n    udp sport 49160-49200 udp dport 49160-49200 drop\n  }\n}\n",
            ),
        }
    }

    fn disarm(self, s: &Server) {
        let ns = match self {
            Stall::AllocateAnswerLost => &s.tb.cli,
            Stall::RelaySilent => &s.tb.srv,
        };
        ns.run(["nft", "delete", "table", "inet", "stall"]);
    }
}

/// How a cut run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    Timeout,
    Signal(i32),
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The report's verdict (every command prints one JSON report with `verdict.ok`).
fn verdict_ok(out: &Output) -> bool {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e})\n{}", show(out)));
    v["verdict"]["ok"]
        .as_bool()
        .unwrap_or_else(|| panic!("no verdict.ok\n{}", show(out)))
}

fn normal_run(s: &Server, cmd: Cmd, what: &str) {
    let out = common::iceprobe_in_env(
        &s.tb.cli,
        &strs(&cmd.args("20s")),
        &[("ICEPROBE_CREDENTIAL", PASS)],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{cmd:?} {what}: a normal run must succeed (486 here means an earlier run leaked)\n{}\n--- coturn ---\n{}",
        show(&out),
        s.coturn.log()
    );
    assert!(verdict_ok(&out), "{}", show(&out));
    s.assert_all_freed(&format!("{cmd:?} {what}"));
}

/// One run cut short while the server holds its allocations.
fn cut_run(s: &Server, cmd: Cmd, cut: Cut, stall: Stall, what: &str) {
    let (made_before, live_before) = s.allocations();
    assert_eq!(live_before, 0);
    stall.arm(s);
    let env = [("ICEPROBE_CREDENTIAL", PASS)];
    let out = match cut {
        Cut::Timeout => {
            let out =
                common::iceprobe_in_env(&s.tb.cli, &strs(&cmd.args(cmd.short_timeout())), &env);
            // Cut, not finished: the deadline ended it, with the allocations made.
            assert_eq!(out.status.code(), Some(1), "{cmd:?} {what}\n{}", show(&out));
            let (made, _) = s.allocations();
            assert!(
                made >= made_before + cmd.allocations(),
                "{cmd:?} {what}: the run ended before the server allocated ({stall:?})\n{}",
                s.coturn.log()
            );
            out
        }
        Cut::Signal(sig) => {
            let mut p = Running::start(&s.tb.cli, &strs(&cmd.args("60s")), &env);
            let deadline = Instant::now() + Duration::from_secs(20);
            while s.live() < cmd.allocations() && Instant::now() < deadline && p.is_running() {
                thread::sleep(Duration::from_millis(20));
            }
            assert_eq!(
                s.live(),
                cmd.allocations(),
                "{cmd:?} {what}: the server never held the run's allocations ({stall:?})\nstdout:\n{}\nstderr:\n{}\n--- coturn ---\n{}",
                p.stdout_so_far(),
                p.stderr_so_far(),
                s.coturn.log()
            );
            assert!(p.is_running(), "{cmd:?} {what}: ended before the signal");
            assert!(p.signal(sig));
            let out = p.wait(Duration::from_secs(15));
            let want = if sig == sys::SIGINT { 130 } else { 143 };
            assert_eq!(
                out.status.code(),
                Some(want),
                "{cmd:?} {what}\n{}",
                show(&out)
            );
            out
        }
    };
    // The report is printed also when cut, and says it failed.
    assert!(!verdict_ok(&out), "{}", show(&out));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(PASS)
            && !String::from_utf8_lossy(&out.stderr).contains(PASS)
    );
    stall.disarm(s);
    s.assert_all_freed(&format!("{cmd:?} {what} ({stall:?})"));
}

/// N normal runs, then N runs of each cut, each followed by a normal run that needs the whole
/// quota.
fn never_leaks(cmd: Cmd) {
    let s = Server::start(u32::try_from(cmd.allocations()).unwrap());
    for i in 0..N {
        normal_run(&s, cmd, &format!("normal run {i}"));
    }
    let cuts = [
        Cut::Timeout,
        Cut::Signal(sys::SIGINT),
        Cut::Signal(sys::SIGTERM),
    ];
    for cut in cuts {
        for i in 0..N {
            let what = format!("{cut:?} run {i}");
            cut_run(&s, cmd, cut, cmd.stall(i), &what);
            normal_run(&s, cmd, &format!("normal run after {what}"));
        }
    }
    let (made, live) = s.allocations();
    // Normal runs + cut runs, each made at least `allocations()`.
    assert!(
        made >= (N + 2 * cuts.len() * N) * cmd.allocations(),
        "{made}"
    );
    assert_eq!(live, 0);
}

#[test]
fn gather_never_leaks_an_allocation() {
    if !common::require_netns() {
        return;
    }
    never_leaks(Cmd::Gather);
}

#[test]
fn check_never_leaks_an_allocation() {
    if !common::require_netns() {
        return;
    }
    never_leaks(Cmd::Check);
}

#[test]
fn connect_never_leaks_an_allocation() {
    if !common::require_netns() {
        return;
    }
    never_leaks(Cmd::Connect);
}

/// Starts `args` (a long-running command), waits until the server holds `n` allocations of
/// it, sends `sig`, and returns its output (waited for, bounded).
fn signal_once_allocated(s: &Server, p: Running, n: usize, sig: i32, what: &str) -> Output {
    let mut p = p;
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.live() < n && Instant::now() < deadline && p.is_running() {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        s.live(),
        n,
        "{what}: the server never held the allocations\nstderr:\n{}\n--- coturn ---\n{}",
        p.stderr_so_far(),
        s.coturn.log()
    );
    assert!(p.is_running(), "{what}: ended before the signal");
    assert!(p.signal(sig));
    p.wait(Duration::from_secs(15))
}

const SIGNALS: [(i32, i32); 2] = [(sys::SIGINT, 130), (sys::SIGTERM, 143)];

#[test]
fn check_every_releases_on_both_signals() {
    if !common::require_netns() {
        return;
    }
    let s = Server::start(2);
    for (sig, code) in SIGNALS {
        let what = format!("check --every, signal {sig}");
        Stall::RelaySilent.arm(&s);
        let p = Running::start(
            &s.tb.cli,
            &[
                "check",
                "--every",
                "30s",
                "--timeout",
                "20s",
                "-u",
                USER,
                TURN,
            ],
            &[("ICEPROBE_CREDENTIAL", PASS)],
        );
        let out = signal_once_allocated(&s, p, 2, sig, &what);
        assert_eq!(out.status.code(), Some(code), "{what}\n{}", show(&out));
        // The interrupted run still ends its NDJSON stream with a summary.
        let last = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .to_string();
        assert!(
            last.starts_with("{\"type\":\"summary\""),
            "{what}\n{}",
            show(&out)
        );
        Stall::RelaySilent.disarm(&s);
        s.assert_all_freed(&what);
        normal_run(&s, Cmd::Check, &format!("normal run after {what}"));
    }
}

/// `iceprobe serve` with one module `turn` (USER, credential from the environment) on
/// 198.18.0.10:9478; returns it and its address.
fn start_serve(s: &Server, dir: &std::path::Path) -> (Running, String) {
    let cfg = dir.join("serve.json");
    std::fs::write(
        &cfg,
        format!(r#"{{"modules":{{"turn":{{"username":"{USER}","credential_env":"TURN_PASSWORD","timeout":"20s"}}}}}}"#),
    )
    .unwrap();
    let listen = "198.18.0.10:9478".to_string();
    let p = Running::start(
        &s.tb.cli,
        &[
            "serve",
            "--listen",
            &listen,
            "--config",
            cfg.to_str().unwrap(),
        ],
        &[("TURN_PASSWORD", PASS)],
    );
    common::wait_listening(&s.tb.cli, &listen);
    (p, listen)
}

fn probe_path(target: &str) -> String {
    format!("/probe?target={}&module=turn", common::query_encode(target))
}

#[test]
fn serve_releases_the_probes_in_flight_on_both_signals() {
    if !common::require_netns() {
        return;
    }
    let s = Server::start(2);
    let dir = tempfile::tempdir().unwrap();
    for (sig, _) in SIGNALS {
        let what = format!("serve, signal {sig} during a scrape");
        let (p, listen) = start_serve(&s, dir.path());
        let (status, body) = common::http_get(&s.tb.cli, &listen, &probe_path(TURN));
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("iceprobe_probe_success 1"), "{body}");
        s.assert_all_freed(&format!("{what}: the first scrape"));

        Stall::RelaySilent.arm(&s);
        let ns = s.tb.cli.clone();
        let (l, path) = (listen.clone(), probe_path(TURN));
        let scrape = thread::spawn(move || common::http_get(&ns, &l, &path));
        let out = signal_once_allocated(&s, p, 2, sig, &what);
        // A service manager's stop is a clean stop; the probe in flight was cancelled and
        // answered rather than waited out.
        assert_eq!(out.status.code(), Some(0), "{what}\n{}", show(&out));
        let (status, body) = scrape.join().unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("iceprobe_probe_success 0"), "{body}");
        Stall::RelaySilent.disarm(&s);
        s.assert_all_freed(&what);
        normal_run(&s, Cmd::Check, &format!("normal run after {what}"));
    }
}

/// Open file descriptors of `pid`.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Every socket a probe opens is closed when its scrape is answered: the exporter's open file
/// descriptors return to their baseline after many scrapes over UDP and TCP.
#[test]
fn serve_closes_every_socket_after_each_scrape() {
    if !common::require_netns() {
        return;
    }
    let s = Server::start(2);
    let dir = tempfile::tempdir().unwrap();
    let (p, listen) = start_serve(&s, dir.path());
    let targets = [
        TURN.to_string(),
        "turn:198.18.0.1?transport=tcp".to_string(),
        "stun:198.18.0.1".to_string(),
    ];
    let scrape = |target: &str| {
        let (status, body) = common::http_get(&s.tb.cli, &listen, &probe_path(target));
        assert_eq!(status, 200, "{body}");
        assert!(
            body.contains("iceprobe_probe_success 1"),
            "{target}: {body}"
        );
        // Whole quota per scrape: each must release before the next.
        s.assert_all_freed(target);
    };
    // Warm up: the runtime's worker threads and lazily made descriptors exist after this.
    for t in &targets {
        scrape(t);
    }
    let baseline = fds(p.pid());
    let rounds = 4;
    for _ in 0..rounds {
        for t in &targets {
            scrape(t);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while fds(p.pid()) > baseline && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    let after = fds(p.pid());
    assert!(
        after <= baseline,
        "{} scrapes left {} descriptors open (baseline {baseline}): {:?}",
        rounds * targets.len(),
        after - baseline,
        std::fs::read_dir(format!("/proc/{}/fd", p.pid()))
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .collect::<Vec<_>>()
    );
}

/// Allocates from `ns` with a raw client and drops the socket without Refresh LIFETIME 0: the
/// allocation stays on the server for its lifetime.
fn leak_one_allocation(ns: &Netns, server: SocketAddr) -> SocketAddr {
    ns.in_ns(move || {
        let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut c = TurnClient::new(TurnConfig {
            username: Some(USER.into()),
            password: Some(Secret::new(PASS)),
            ipv6_relay: None,
            rto: Duration::from_millis(250),
            reliable: false,
        })
        .unwrap();
        c.allocate(Instant::now());
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 2048];
        loop {
            assert!(Instant::now() < deadline, "raw allocation: no answer");
            while let Some(b) = c.poll_transmit() {
                sock.send_to(&b, server).unwrap();
            }
            while let Some(ev) = c.poll_event() {
                match ev {
                    TurnEvent::Allocated { relayed, .. } => return relayed,
                    TurnEvent::Failed { op, failure } => {
                        panic!("raw allocation: {op:?} {failure:?}")
                    }
                    _ => {}
                }
            }
            match sock.recv_from(&mut buf) {
                Ok((n, _)) => c.handle_input(Instant::now(), &buf[..n]),
                Err(_) => c.handle_timeout(Instant::now()),
            }
        }
    })
}

#[test]
fn a_leaked_allocation_blocks_the_next_run() {
    if !common::require_netns() {
        return;
    }
    let s = Server::start(1);
    normal_run(&s, Cmd::Gather, "before the leak");
    leak_one_allocation(&s.tb.cli, s.coturn.addr());
    thread::sleep(PAUSE);
    assert_eq!(
        s.live(),
        1,
        "the log witness sees the leak\n{}",
        s.coturn.log()
    );
    let out = common::iceprobe_in_env(
        &s.tb.cli,
        &strs(&Cmd::Gather.args("5s")),
        &[("ICEPROBE_CREDENTIAL", PASS)],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        r["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["code"] == 486),
        "the quota witness sees the leak: 486 Allocation Quota Reached\n{}",
        show(&out)
    );
    // The refused run itself left nothing more behind.
    thread::sleep(PAUSE);
    assert_eq!(s.live(), 1, "{}", s.coturn.log());
}
