//! `iceprobe serve` (the Prometheus exporter) against coturn in namespaces, scraped by hand and
//! by a real Prometheus server (Debian's `prometheus`); the shipped scrape config and alert
//! rules are checked with `promtool`.
#![allow(clippy::disallowed_methods)] // tests read the clock

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{wait_listening, Coturn, Netns, Testbed, CLIENT_PUBLIC_IP, SERVER_IP};

/// A process stopped by PID on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn need(tool: &str) -> bool {
    if common::tool(tool).is_some() {
        return true;
    }
    let msg = format!("`{tool}` (Debian package prometheus) is not installed");
    if std::env::var(common::REQUIRE_ENV).as_deref() == Ok("1") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    false
}

/// Percent-encode a query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A plain HTTP/1.1 GET from inside `ns`; returns (status, body).
fn get(ns: &Netns, addr: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    common::http::http_get_with(ns, addr, path, headers)
}

fn exporter(tb: &Testbed, dir: &std::path::Path) -> (Proc, String) {
    let cfg = dir.join("serve.json");
    std::fs::write(
        &cfg,
        r#"{"modules":{"turn":{"username":"alice","credential_env":"TURN_PASSWORD","timeout":"8s"},"stun":{"timeout":"3s"},"strict":{"username":"alice","credential_env":"TURN_PASSWORD","expect":["relay:udp","tls:ok"]}}}"#,
    )
    .unwrap();
    let listen = format!("{CLIENT_PUBLIC_IP}:9478");
    let child = tb
        .cli
        .exec([
            env!("CARGO_BIN_EXE_iceprobe"),
            "serve",
            "--listen",
            &listen,
            "--config",
        ])
        .arg(&cfg)
        .env("TURN_PASSWORD", "pw")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn iceprobe serve");
    let p = Proc(child);
    wait_listening(&tb.cli, &listen);
    (p, listen)
}

#[test]
fn shipped_prometheus_config_and_rules_are_valid() {
    if !need("promtool") {
        return;
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/prometheus");
    for args in [
        ["check", "rules", "iceprobe-alerts.yml"],
        ["check", "config", "prometheus.yml"],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn probe_returns_stage_metrics_and_rejects_credentials_in_the_url() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::public();
    let _c = Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .user("alice", "pw")
        .start();
    let dir = tempfile::tempdir().unwrap();
    let (_p, listen) = exporter(&tb, dir.path());
    let target = enc(&format!("turn:{SERVER_IP}?transport=udp"));

    let (status, body) = get(
        &tb.cli,
        &listen,
        &format!("/probe?target={target}&module=turn"),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    for want in [
        "iceprobe_probe_success 1",
        "iceprobe_stage_success{url=\"turn:198.18.0.1?transport=udp\",address=\"198.18.0.1:3478\",transport=\"udp\",stage=\"allocate\"} 1",
        "iceprobe_relay_rtt_seconds{",
        "method=\"channel\"",
        "iceprobe_allocation_success{",
    ] {
        assert!(body.contains(want), "missing {want:?} in\n{body}");
    }
    assert!(!body.contains("pw\""), "no credential in metrics");

    let (status, body) = get(
        &tb.cli,
        &listen,
        &format!("/probe?target={target}&module=turn&credential=x"),
        &[],
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("module file"), "{body}");
    let (status, body) = get(
        &tb.cli,
        &listen,
        &format!("/probe?target={target}&module=nope"),
        &[],
    );
    assert_eq!(status, 400);
    assert!(body.contains("unknown module"), "{body}");
    let (status, _) = get(
        &tb.cli,
        &listen,
        "/probe?target=http%3A%2F%2Fx&module=turn",
        &[],
    );
    assert_eq!(status, 400);

    // A module's expectations decide probe_success: tls:ok is not measured on a UDP target.
    let (status, body) = get(
        &tb.cli,
        &listen,
        &format!("/probe?target={target}&module=strict"),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("iceprobe_expectation_success{expression=\"relay:udp\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("iceprobe_expectation_success{expression=\"tls:ok\"} 0"),
        "{body}"
    );
    assert!(body.contains("iceprobe_probe_success 0"), "{body}");

    let (status, body) = get(&tb.cli, &listen, "/metrics", &[]);
    assert_eq!(status, 200);
    assert!(
        body.contains("iceprobe_exporter_probes_total{module=\"turn\",result=\"success\"} 1"),
        "{body}"
    );
}

#[test]
fn short_scrape_deadline_gives_a_partial_result_in_time() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::public();
    let dir = tempfile::tempdir().unwrap();
    let (_p, listen) = exporter(&tb, dir.path());
    // Nothing answers on 3999: the module's 8 s would be too long for a 2 s scrape.
    let target = enc(&format!("turn:{SERVER_IP}:3999?transport=udp"));
    let started = Instant::now();
    let (status, body) = get(
        &tb.cli,
        &listen,
        &format!("/probe?target={target}&module=turn"),
        &[("X-Prometheus-Scrape-Timeout-Seconds", "2")],
    );
    let took = started.elapsed();
    assert_eq!(status, 200, "{body}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert!(body.contains("iceprobe_probe_success 0"), "{body}");
}

#[test]
fn real_prometheus_scrapes_the_exporter() {
    if !common::require_netns() || !need("prometheus") {
        return;
    }
    let tb = Testbed::public();
    let _c = Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .user("alice", "pw")
        .start();
    let dir = tempfile::tempdir().unwrap();
    let (_p, listen) = exporter(&tb, dir.path());
    let config = format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: iceprobe
    metrics_path: /probe
    params:
      module: [turn]
    static_configs:
      - targets: ["turn:{SERVER_IP}?transport=udp"]
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: {listen}
"#
    );
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, config).unwrap();
    let web = format!("{CLIENT_PUBLIC_IP}:9090");
    let prom = tb
        .cli
        .exec(["prometheus", "--web.listen-address", &web, "--config.file"])
        .arg(&cfg)
        .arg("--storage.tsdb.path")
        .arg(dir.path().join("data"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn prometheus");
    let _prom = Proc(prom);
    wait_listening(&tb.cli, &web);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = get(
            &tb.cli,
            &web,
            "/api/v1/query?query=iceprobe_probe_success",
            &[],
        );
        if status == 200 && body.contains("\"value\":[") && body.contains("\"1\"]") {
            assert!(body.contains("turn:198.18.0.1?transport=udp"), "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never stored iceprobe_probe_success 1: {body}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
