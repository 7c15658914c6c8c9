//! iceprobe under limits of its own: a small open-files limit (it raises the soft limit to the
//! hard one, and when even the hard limit is too small, the rows it could not open say that the
//! limit is ours and the server was not reached, instead of "could not connect", which blames
//! the server), and a deadline that passes while rows still wait for a `--concurrency` slot
//! (they say they were not tried, instead of "connect timed out: a firewall drops it").
//!
//! The servers are TCP listeners on loopback that complete the handshake (the kernel's backlog
//! does) and never answer; no root needed.

use std::net::TcpListener;
use std::process::{Command, Stdio};

use serde_json::Value;

/// Silent TCP servers: 24 TURN/TCP rows need 48 descriptors besides iceprobe's own.
fn listeners() -> Vec<TcpListener> {
    silent(24)
}

fn silent(n: usize) -> Vec<TcpListener> {
    (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener"))
        .collect()
}

/// `iceprobe check` over every listener, in a shell that first runs `ulimit_args`.
fn check_under(ulimit_args: &str, servers: &[TcpListener]) -> (i32, Value, String) {
    check_with(&format!("ulimit {ulimit_args} && "), servers, &[])
}

/// `iceprobe check EXTRA` over every listener, exec'd by a shell after `prelude`.
fn check_with(prelude: &str, servers: &[TcpListener], extra: &[&str]) -> (i32, Value, String) {
    let urls: Vec<String> = servers
        .iter()
        .map(|l| {
            let a = l.local_addr().expect("listener address");
            format!("turn:{a}?transport=tcp")
        })
        .collect();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("{prelude}exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_iceprobe"))
        .args([
            "check",
            "-u",
            "user",
            "--credential",
            "pw",
            "--timeout",
            "1s",
        ])
        .args(["--format", "json"])
        .args(extra)
        .args(&urls)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run iceprobe through bash");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "iceprobe panicked:\n{stderr}");
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{stdout}\n{stderr}"));
    (out.status.code().unwrap_or(-1), json, stderr)
}

fn connect_causes(json: &Value) -> Vec<String> {
    json["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["connect"]["cause"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn a_hard_limit_too_small_is_reported_as_ours() {
    let servers = listeners();
    // Soft and hard both 20: room for iceprobe's own descriptors and a few connections only.
    let (code, json, stderr) = check_under("-n 20", &servers);
    assert_eq!(
        code, 1,
        "the silent servers fail their rows; stderr: {stderr}"
    );
    let causes = connect_causes(&json);
    assert!(
        causes.iter().any(
            |c| c.starts_with("iceprobe ran out of file descriptors (ulimit -n)")
                && c.contains("the server was not reached")
                && c.contains("--concurrency")
        ),
        "no row says the descriptor limit is ours: {causes:#?}"
    );
    assert!(
        !causes.iter().any(|c| c.contains("could not connect")),
        "a local limit was blamed on the server: {causes:#?}"
    );
}

#[test]
fn the_soft_limit_is_raised_to_the_hard_one() {
    let servers = listeners();
    // Soft 20 as above, hard left as it is: iceprobe raises the soft limit and connects to all.
    let (_, json, stderr) = check_under("-S -n 20", &servers);
    let rows = json["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), servers.len(), "stderr: {stderr}");
    for row in rows {
        assert_eq!(
            row["connect"]["status"], "ok",
            "every row connects once the soft limit is raised: {row:#}"
        );
    }
}

#[test]
fn rows_still_queued_at_the_deadline_say_they_were_not_tried() {
    let servers = silent(6);
    // Two slots, six silent servers, one second: the first two rows hold their slots until the
    // deadline waiting for an answer, and the other four never get one.
    let (code, json, stderr) = check_with("", &servers, &["--concurrency", "2"]);
    assert_eq!(code, 1, "stderr: {stderr}");
    assert_eq!(json["concurrency"], 2);
    let rows = json["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 6);
    let not_tried: Vec<&Value> = rows
        .iter()
        .filter(|r| r["connect"]["status"] == "failed")
        .collect();
    assert_eq!(not_tried.len(), 4, "{rows:#?}");
    for row in &not_tried {
        let connect = &row["connect"];
        assert_eq!(connect["phase"], "timeout", "{row:#}");
        assert_eq!(
            connect["cause"],
            "not tried: the check's 1s deadline passed while this row waited for one of 2 slots (--concurrency); raise --timeout or --concurrency",
            "{row:#}"
        );
        assert_eq!(row["binding"]["status"], "not-checked", "{row:#}");
    }
    for row in rows.iter().filter(|r| r["connect"]["status"] == "ok") {
        assert_eq!(
            row["binding"]["status"], "failed",
            "the tried rows reached their server: {row:#}"
        );
    }
}
