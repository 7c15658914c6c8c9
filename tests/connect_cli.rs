//! `iceprobe connect` on loopback, no root: the in-process self-test, two processes over HTTP
//! signaling and over copy-paste (stdio through pipes), and bad signaling input (garbage, wrong
//! token, a peer that is not there) failing fast with a clear error.
#![allow(clippy::disallowed_methods)] // tests read the clock

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use iceprobe::candidate::CandidateType;
use iceprobe::model::connect::{ConnectReport, Mode, Side};

fn iceprobe() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_iceprobe"));
    c.env("NO_COLOR", "1");
    c
}

/// Run to completion with a hard limit; returns the output and how long it took.
fn run(args: &[&str]) -> (Output, Duration) {
    let t0 = Instant::now();
    let child = iceprobe()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (wait(child, 60), t0.elapsed())
}

fn wait(child: Child, secs: u64) -> Output {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("iceprobe hung for {secs} s")
        }
    }
}

fn report(out: &Output) -> ConnectReport {
    common::json_report(out, "")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A stderr line matching `pick`, read on a thread; the rest of stderr is kept for later.
fn stderr_line(
    err: ChildStderr,
    pick: fn(&str) -> Option<String>,
) -> (mpsc::Receiver<String>, thread::JoinHandle<String>) {
    let (tx, rx) = mpsc::channel();
    let h = thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if let Some(x) = pick(&line) {
                let _ = tx.send(x);
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    (rx, h)
}

fn assert_connected(r: &ConnectReport, want: CandidateType) {
    assert!(r.verdict.ok, "{r:#?}");
    for s in &r.sides {
        let sel = s.selected.as_ref().expect("a selected pair");
        assert_eq!(sel.local.kind, want, "{r:#?}");
        let e = s.echo.as_ref().expect("echo ran");
        assert!(e.received > 0, "{e:?}");
    }
}

#[test]
fn loopback_self_test_connects_over_host_candidates() {
    let (out, took) = run(&[
        "connect",
        "--bind-a",
        "127.0.0.1",
        "--bind-b",
        "127.0.0.1",
        "--count",
        "10",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r = report(&out);
    assert_eq!(r.mode, Mode::Loopback);
    assert_eq!(r.sides.len(), 2);
    assert_connected(&r, CandidateType::Host);
    assert_eq!(
        r.sides[0].selected.as_ref().unwrap().description,
        "direct UDP via host addresses"
    );
    for s in &r.sides {
        let t = &s.timeline;
        assert!(
            t.gathering_done_ms.is_some() && t.connected_ms.is_some(),
            "{t:?}"
        );
        assert!(t.data_channel_open_ms >= t.connected_ms, "{t:?}");
        assert_eq!(s.echo.as_ref().unwrap().sent, 10);
        assert!(!s.pairs.is_empty() && s.pairs[0].nominated, "{:?}", s.pairs);
    }
    assert!(took < Duration::from_secs(15), "{took:?}");
}

#[test]
fn throughput_is_measured_on_both_sides() {
    let (out, _) = run(&[
        "connect",
        "--bind-a",
        "127.0.0.1",
        "--bind-b",
        "127.0.0.1",
        "--count",
        "3",
        "--throughput",
        "1s",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r = report(&out);
    for s in &r.sides {
        let t = s.throughput.as_ref().unwrap_or_else(|| panic!("{r:#?}"));
        assert!(t.bytes > 100_000 && t.bytes_per_second > 0.0, "{t:?}");
    }
    assert_eq!(
        r.sides[0].throughput.as_ref().unwrap().bytes,
        r.sides[1].throughput.as_ref().unwrap().bytes,
        "the receiver confirms what it counted"
    );
    let (out, _) = run(&["connect", "--throughput", "30s", "--timeout", "20s"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("raise --timeout"));
}

#[test]
fn table_output_names_the_selected_path() {
    let (out, _) = run(&[
        "connect",
        "--bind-a",
        "127.0.0.1",
        "--bind-b",
        "127.0.0.1",
        "--count",
        "3",
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("connected and echoed: direct UDP via host addresses"),
        "{t}"
    );
    assert!(t.contains("a  data-channel open"), "{t}");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `iceprobe connect --listen` on a free loopback port, bound to 127.0.0.1, with `extra`
/// flags; stdout piped or discarded. Returns the listen address, the child, the receiver of the
/// URL it prints, and the thread collecting the rest of its stderr.
fn listener(
    extra: &[&str],
    stdout_piped: bool,
) -> (
    String,
    Child,
    mpsc::Receiver<String>,
    thread::JoinHandle<String>,
) {
    let listen = format!("127.0.0.1:{}", free_port());
    let mut l = iceprobe()
        .args(["connect", "--listen", &listen, "--bind", "127.0.0.1"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(if stdout_piped {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (urls, err) = stderr_line(l.stderr.take().unwrap(), peer_url);
    (listen, l, urls, err)
}

fn peer_url(line: &str) -> Option<String> {
    line.split_whitespace()
        .skip_while(|w| *w != "--peer")
        .nth(1)
        .map(String::from)
}

#[test]
fn two_processes_over_http_signaling() {
    let (listen, l, urls, l_err) = listener(&["--count", "5", "--format", "json"], true);
    let url = urls
        .recv_timeout(Duration::from_secs(10))
        .expect("the listener prints the URL");
    assert!(url.starts_with(&format!("http://{listen}/")), "{url}");
    let (out, _) = run(&[
        "connect",
        "--peer",
        &url,
        "--bind",
        "127.0.0.1",
        "--count",
        "5",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let offerer = report(&out);
    assert_eq!(offerer.mode, Mode::Peer);
    assert_eq!(offerer.sides[0].side, Side::A);
    assert_connected(&offerer, CandidateType::Host);
    let lout = wait(l, 30);
    let lerr = l_err.join().unwrap();
    assert_eq!(lout.status.code(), Some(0), "{lerr}");
    let answerer = report(&lout);
    assert_eq!(answerer.mode, Mode::Listen);
    assert_eq!(answerer.sides[0].side, Side::B);
    assert_connected(&answerer, CandidateType::Host);
}

#[test]
fn wrong_token_is_refused_clearly() {
    let (listen, l, urls, _err) = listener(&["--timeout", "8s"], false);
    urls.recv_timeout(Duration::from_secs(10)).unwrap();
    let bad = format!("http://{listen}/0123456789abcdef0123456789abcdef");
    let (out, took) = run(&["connect", "--peer", &bad, "--bind", "127.0.0.1"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("wrong session token"), "{t}");
    assert!(t.contains("check the token"), "{t}");
    assert!(took < Duration::from_secs(8), "{took:?}");
    // Nobody joined: the listener gives up at its deadline with exit 1, not a hang.
    let lout = wait(l, 30);
    assert_eq!(lout.status.code(), Some(1));
}

#[test]
fn a_peer_that_is_not_there_fails_fast() {
    let port = free_port(); // closed again: nothing listens
    let url = format!("http://127.0.0.1:{port}/abc");
    let (out, took) = run(&["connect", "--peer", &url, "--bind", "127.0.0.1"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("cannot reach the signaling peer"), "{t}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn bad_peer_urls_are_usage_errors() {
    for (url, want) in [
        ("https://h/abc", "plain HTTP"),
        ("http://127.0.0.1:9", "no session token"),
    ] {
        let (out, _) = run(&["connect", "--peer", url]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{t}");
        assert!(t.contains(want), "{t}");
    }
    let (out, _) = run(&[
        "connect",
        "--listen",
        "127.0.0.1:1",
        "--bind-b",
        "127.0.0.1",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

fn blob(line: &str) -> Option<String> {
    line.starts_with("iceprobe1:").then(|| line.to_string())
}

#[test]
fn stdio_signaling_through_pipes() {
    let spawn = |extra: &[&str]| {
        iceprobe()
            .args([
                "connect",
                "--signal",
                "stdio",
                "--bind",
                "127.0.0.1",
                "--count",
                "5",
            ])
            .args(["--format", "json"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut a = spawn(&[]);
    let (a_blobs, a_err) = stderr_line(a.stderr.take().unwrap(), blob);
    let offer = a_blobs
        .recv_timeout(Duration::from_secs(10))
        .expect("the offerer prints its blob");
    let mut b = spawn(&["--answer"]);
    let (b_blobs, b_err) = stderr_line(b.stderr.take().unwrap(), blob);
    writeln!(b.stdin.take().unwrap(), "{offer}").unwrap();
    let answer = b_blobs
        .recv_timeout(Duration::from_secs(10))
        .expect("the answerer prints its blob");
    writeln!(a.stdin.take().unwrap(), "{answer}").unwrap();
    let (aout, bout) = (wait(a, 30), wait(b, 30));
    let (aerr, berr) = (a_err.join().unwrap(), b_err.join().unwrap());
    assert_eq!(aout.status.code(), Some(0), "{aerr}");
    assert_eq!(bout.status.code(), Some(0), "{berr}");
    let (ra, rb) = (report(&aout), report(&bout));
    assert_eq!((ra.mode, rb.mode), (Mode::StdioOffer, Mode::StdioAnswer));
    assert_connected(&ra, CandidateType::Host);
    assert_connected(&rb, CandidateType::Host);
    // Non-trickle: the candidates came inside the pasted description.
    assert!(!ra.sides[0].remote_candidates.is_empty());
}

#[test]
fn stdio_garbage_is_a_clear_usage_error() {
    for (input, want) in [
        ("hello world\n", "expected a line starting with"),
        ("iceprobe1:%%%\n", "not base64"),
        ("", "stdin ended"),
    ] {
        let mut c = iceprobe()
            .args([
                "connect",
                "--signal",
                "stdio",
                "--answer",
                "--bind",
                "127.0.0.1",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = c.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
        drop(stdin);
        let t0 = Instant::now();
        let out = wait(c, 30);
        let t = text(&out);
        assert!(t.contains(want), "{input:?}: {t}");
        let code = if input.is_empty() { 1 } else { 2 };
        assert_eq!(out.status.code(), Some(code), "{t}");
        assert!(t0.elapsed() < Duration::from_secs(10));
    }
}

#[test]
fn ctrl_c_while_waiting_for_a_peer_exits_130_with_a_report() {
    let (_, l, urls, _err) = listener(&["--format", "json"], true);
    urls.recv_timeout(Duration::from_secs(10)).unwrap();
    let t0 = Instant::now();
    Command::new("kill")
        .args(["-INT", &l.id().to_string()])
        .status()
        .unwrap();
    let out = wait(l, 20);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
    let r = report(&out);
    assert!(!r.verdict.ok);
}

/// A raw HTTP/1.1 request to the listener; returns the response text.
fn http(addr: &str, method: &str, path: &str, body: &str) -> String {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn the_signaling_endpoint_refuses_strangers_and_garbage() {
    let (listen, l, urls, _err) = listener(&["--timeout", "6s"], false);
    let url = urls.recv_timeout(Duration::from_secs(10)).unwrap();
    let token = url.rsplit('/').next().unwrap().to_string();
    let r = http(&listen, "POST", "/nottoken/messages", "{}");
    assert!(r.starts_with("HTTP/1.1 403"), "{r}");
    let r = http(&listen, "GET", "/nottoken/messages", "");
    assert!(r.starts_with("HTTP/1.1 403"), "{r}");
    let r = http(
        &listen,
        "POST",
        &format!("/{token}/messages"),
        "{\"kind\":\"nonsense\"}",
    );
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    assert!(r.contains("not a signaling message"), "{r}");
    let r = http(&listen, "GET", "/", "");
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    let out = wait(l, 30);
    assert_eq!(out.status.code(), Some(1), "no peer ever joined");
}
