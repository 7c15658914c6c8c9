//! Secrets never leave iceprobe: one recognisable secret of each kind — the TURN credential, the
//! REST shared secret (and the credential minted from it), the API key in an
//! `--ice-servers-url` query, and the HTTP signaling token of `connect` — goes through every
//! command (gather, check, nat, connect, serve) and every output format, against real coturn in
//! namespaces, on success and on failure paths; none of them may appear in stdout, stderr, the
//! JSON / NDJSON / table report, the JUnit file or the exporter's metrics. A running iceprobe
//! fed its secrets from the environment or from files shows none of them in its command line
//! (`/proc/PID/cmdline`, what `ps` prints).
//!
//! Logs: iceprobe has no log level flag, and nothing installs a `log` / `tracing` logger, so the
//! log records of webrtc, rustls and reqwest are discarded; stdout and stderr are everything it
//! prints.
#![allow(clippy::disallowed_methods)] // tests read the clock

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{Coturn, Netns, Running, Testbed, SERVER_IP, SERVER_IP2};
use iceprobe::secret::Secret;

const USER: &str = "alice";
/// The TURN credential (long-term, coturn `--user`).
const CRED: &str = "CredSecret7f3a9c";
/// A wrong TURN credential: rejected with 401, and still never printed.
const WRONG: &str = "WrongSecret0c4d1e";
/// The REST shared secret (coturn `--static-auth-secret`).
const REST: &str = "RestSecret4b1d2e";
/// The API key in the `--ice-servers-url` query string.
const APIKEY: &str = "KeySecret5d8e77";
const SECRETS: [&str; 4] = [CRED, WRONG, REST, APIKEY];

/// coturn with long-term credentials on SERVER_IP.
const TURN: &str = "turn:198.18.0.1?transport=udp";
const STUN: &str = "stun:198.18.0.1";
/// coturn with REST credentials (`use-auth-secret`) on SERVER_IP2.
const TURN_REST: &str = "turn:198.18.0.2?transport=udp";
/// The iceServers endpoint (in the server namespace).
const ICE_HTTP: &str = "198.18.0.1:8080";
const FORMATS: [&str; 3] = ["table", "json", "ndjson"];

/// A tiny HTTP server in a namespace answering every request with one iceServers JSON (which
/// carries [`CRED`]); it records the request lines it saw. Stopped and joined on drop.
struct IceServersHttp {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<String>>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl IceServersHttp {
    fn start(ns: &Netns) -> IceServersHttp {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (ns, st, se) = (ns.clone(), stop.clone(), seen.clone());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = thread::spawn(move || {
            ns.in_ns(move || {
                let l = TcpListener::bind(ICE_HTTP).unwrap();
                l.set_nonblocking(true).unwrap();
                ready_tx.send(()).unwrap();
                let body = format!(
                    r#"{{"iceServers":[{{"urls":["{TURN}","{STUN}"],"username":"{USER}","credential":"{CRED}"}}]}}"#
                );
                while !st.load(Ordering::Relaxed) {
                    let Ok((mut s, _)) = l.accept() else {
                        thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let mut req = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&req);
                    se.lock()
                        .unwrap()
                        .push(text.lines().next().unwrap_or_default().to_string());
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
            })
        });
        ready_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        IceServersHttp {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn url() -> String {
        format!("http://{ICE_HTTP}/ice?apikey={APIKEY}")
    }
}

impl Drop for IceServersHttp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Two coturns (long-term credentials, REST secret), the iceServers endpoint, and files holding
/// the secrets.
struct Bed {
    tb: Testbed,
    /// Runs until the bed is dropped.
    _lt: Coturn,
    rest: Coturn,
    http: IceServersHttp,
    dir: tempfile::TempDir,
}

impl Bed {
    fn start() -> Bed {
        let tb = Testbed::public();
        let lt = Coturn::builder(&tb.srv)
            .listen(SERVER_IP)
            .user(USER, CRED)
            .verbose()
            .start();
        let rest = Coturn::builder(&tb.srv)
            .listen(SERVER_IP2)
            .auth_secret(REST)
            .relay_ports(49201, 49240)
            .verbose()
            .start();
        let http = IceServersHttp::start(&tb.srv);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cred.txt"), format!("{CRED}\n")).unwrap();
        std::fs::write(dir.path().join("rest.txt"), format!("{REST}\n")).unwrap();
        Bed {
            tb,
            _lt: lt,
            rest,
            http,
            dir,
        }
    }

    fn file(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    /// Every secret to look for: the fixed ones, and the REST credentials coturn saw minted
    /// (its `-v` log names each REST username `<expiry>:alice`; the password is derived).
    fn secrets(&self) -> Vec<String> {
        let mut all: Vec<String> = SECRETS.iter().map(|s| s.to_string()).collect();
        for line in self.rest.log().lines() {
            let Some(name) = line
                .split_once("username=<")
                .and_then(|(_, r)| r.split_once('>'))
                .map(|(n, _)| n.to_string())
            else {
                continue;
            };
            if let Some(expiry) = name
                .split_once(':')
                .and_then(|(e, _)| e.parse::<u64>().ok())
            {
                let (_, pass) =
                    iceprobe::servers::rest_credentials(&Secret::new(REST), Some(USER), expiry);
                let pass = pass.expose().to_string();
                if !all.contains(&pass) {
                    all.push(pass);
                }
            }
        }
        all
    }
}

/// One way of handing iceprobe its servers and secrets.
struct Source {
    name: &'static str,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    /// The run is expected to succeed (false: a wrong credential).
    ok: bool,
}

fn sources(b: &Bed) -> Vec<Source> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        Source {
            name: "credential from the environment",
            args: s(&["-u", USER, TURN]),
            env: vec![("ICEPROBE_CREDENTIAL", CRED.into())],
            ok: true,
        },
        Source {
            name: "credential file",
            args: s(&["-u", USER, "--credential-file", &b.file("cred.txt"), TURN]),
            env: vec![],
            ok: true,
        },
        Source {
            name: "wrong credential (401)",
            args: s(&["-u", USER, TURN]),
            env: vec![("ICEPROBE_CREDENTIAL", WRONG.into())],
            ok: false,
        },
        Source {
            name: "REST secret from the environment",
            args: s(&["-u", USER, TURN_REST]),
            env: vec![("ICEPROBE_TURN_SECRET", REST.into())],
            ok: true,
        },
        Source {
            name: "REST secret file",
            args: s(&[
                "-u",
                USER,
                "--turn-secret-file",
                &b.file("rest.txt"),
                TURN_REST,
            ]),
            env: vec![],
            ok: true,
        },
        Source {
            name: "--ice-servers-url with an API key",
            args: s(&["--ice-servers-url", &IceServersHttp::url()]),
            env: vec![],
            ok: true,
        },
        Source {
            name: "ICEPROBE_ICE_SERVERS_URL with an API key",
            args: vec![],
            env: vec![("ICEPROBE_ICE_SERVERS_URL", IceServersHttp::url())],
            ok: true,
        },
    ]
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Panics when any secret occurs in `text`.
fn assert_clean(secrets: &[String], text: &str, what: &str) {
    for s in secrets {
        assert!(
            !text.contains(s.as_str()),
            "{what}: a secret leaked ({s}):\n{text}"
        );
    }
}

fn run(b: &Bed, args: &[String], env: &[(&'static str, String)]) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    common::iceprobe_in_env(&b.tb.cli, &args, &env)
}

/// `cmd` (gather, check or nat) with every source and format, and `--junit`.
fn every_source_and_format(b: &Bed, cmd: &[&str], ok_code: Option<i32>) {
    let junit = b.dir.path().join("junit.xml");
    for src in sources(b) {
        for format in FORMATS {
            let _ = std::fs::remove_file(&junit);
            let mut args: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
            args.extend(["--format", format, "--timeout", "5s", "--junit"].map(String::from));
            args.push(junit.to_string_lossy().into_owned());
            args.extend(src.args.iter().cloned());
            let out = run(b, &args, &src.env);
            let what = format!("{cmd:?} {format}, {}", src.name);
            if let Some(code) = ok_code {
                let want = if src.ok { code } else { 1 };
                assert_eq!(out.status.code(), Some(want), "{what}\n{}", show(&out));
            } else {
                assert!(
                    matches!(out.status.code(), Some(0 | 1)),
                    "{what}\n{}",
                    show(&out)
                );
            }
            let xml = std::fs::read_to_string(&junit)
                .unwrap_or_else(|e| panic!("{what}: no JUnit file: {e}\n{}", show(&out)));
            let secrets = b.secrets();
            assert_clean(&secrets, &String::from_utf8_lossy(&out.stdout), &what);
            assert_clean(&secrets, &String::from_utf8_lossy(&out.stderr), &what);
            assert_clean(&secrets, &xml, &format!("{what}, JUnit"));
        }
    }
    // The endpoint was really asked, with the key: the secret went through iceprobe.
    let seen = b.http.seen.lock().unwrap();
    assert!(
        seen.iter().any(|l| l.contains(APIKEY)),
        "the iceServers endpoint never saw the key: {seen:?}"
    );
}

#[test]
fn gather_never_prints_a_secret() {
    if !common::require_netns() {
        return;
    }
    let b = Bed::start();
    every_source_and_format(&b, &["gather", "--relay-only"], Some(0));
    // The REST runs really minted credentials, so the derived ones were looked for too.
    assert!(b.secrets().len() > SECRETS.len(), "{}", b.rest.log());
}

#[test]
fn check_never_prints_a_secret() {
    if !common::require_netns() {
        return;
    }
    let b = Bed::start();
    every_source_and_format(&b, &["check"], Some(0));
    assert!(b.secrets().len() > SECRETS.len(), "{}", b.rest.log());
}

#[test]
fn nat_never_prints_a_secret() {
    if !common::require_netns() {
        return;
    }
    let b = Bed::start();
    // nat probes STUN only; the credentials ride along (and the iceServers JSON carries one).
    every_source_and_format(&b, &["nat", STUN], None);
}

#[test]
fn connect_never_prints_a_secret() {
    if !common::require_netns() {
        return;
    }
    let b = Bed::start();
    let relay = [
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
        "3",
        // webrtc-rs takes ~2.4 s to connect relay to relay and ~6 s to open the data channel
        // here; 10 s left too little room when the tests of this file share the 2 cores.
        "--timeout",
        "30s",
    ];
    for src in sources(&b) {
        // One format per source keeps the run short; every format is covered across sources.
        for format in FORMATS {
            let mut args: Vec<String> = relay.iter().map(|s| s.to_string()).collect();
            args.extend(["--format", format].map(String::from));
            args.extend(src.args.iter().cloned());
            let out = run(&b, &args, &src.env);
            let what = format!("connect {format}, {}", src.name);
            let want = if src.ok { 0 } else { 1 };
            assert_eq!(out.status.code(), Some(want), "{what}\n{}", show(&out));
            let secrets = b.secrets();
            assert_clean(&secrets, &String::from_utf8_lossy(&out.stdout), &what);
            assert_clean(&secrets, &String::from_utf8_lossy(&out.stderr), &what);
        }
    }
}

/// Whether the listener has finished printing its URL line: a read can land in the middle of
/// the line, and a URL cut short would lose the token.
fn url_line_complete(stderr: &str) -> bool {
    stderr
        .split_inclusive('\n')
        .any(|l| l.contains("http://") && l.ends_with('\n'))
}

/// The signaling token of `connect --listen` is printed once, on the listener's stderr (that is
/// how it is handed over); it is in no report, and the offering side never prints it — also
/// when the listener cannot be reached or refuses it.
#[test]
fn the_signaling_token_is_printed_only_where_it_is_handed_over() {
    if !common::require_netns() {
        return;
    }
    let mut b = Bed::start();
    let peer = b.tb.add_public_host("peer", Ipv4Addr::new(198, 18, 0, 20));
    for format in FORMATS {
        let mut l = Running::start(
            &peer,
            &[
                "connect",
                "--listen",
                "198.18.0.20:7000",
                "--format",
                format,
                "-u",
                USER,
                STUN,
                TURN,
            ],
            &[("ICEPROBE_CREDENTIAL", CRED)],
        );
        assert!(
            l.wait_for(Duration::from_secs(15), |_, err| url_line_complete(err)),
            "the listener prints its URL\n{}",
            l.stderr_so_far()
        );
        let url = l
            .stderr_so_far()
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap()
            .to_string();
        let token = url.rsplit('/').next().unwrap().to_string();
        assert!(token.len() >= 16, "{url}");
        let o = common::iceprobe_in_env(
            &b.tb.cli,
            &[
                "connect", "--peer", &url, "--format", format, "-u", USER, STUN, TURN,
            ],
            &[("ICEPROBE_CREDENTIAL", CRED)],
        );
        let lo = l.wait(Duration::from_secs(60));
        let what = format!("connect --peer/--listen {format}");
        assert_eq!(o.status.code(), Some(0), "{what}\n{}", show(&o));
        assert_eq!(lo.status.code(), Some(0), "{what}\n{}", show(&lo));
        let mut secrets = b.secrets();
        secrets.push(token.clone());
        assert_clean(&secrets, &String::from_utf8_lossy(&o.stdout), &what);
        assert_clean(&secrets, &String::from_utf8_lossy(&o.stderr), &what);
        assert_clean(&secrets, &String::from_utf8_lossy(&lo.stdout), &what);
        // The listener's stderr hands the URL over (its only lines with the token); no
        // credential there.
        let lerr = String::from_utf8_lossy(&lo.stderr);
        let with_token: Vec<&str> = lerr.lines().filter(|l| l.contains(&token)).collect();
        assert!(!with_token.is_empty(), "{lerr}");
        assert!(
            with_token
                .iter()
                .all(|l| l.starts_with("iceprobe: ") && l.trim_end().ends_with(&url)),
            "the token is printed only as the URL to hand over:\n{lerr}"
        );
        assert_clean(&b.secrets(), &lerr, &what);
    }

    // Failure paths: nobody listening, and a listener that refuses the token.
    let token = "TokSecret93e1c0aa93e1c0aa93e1c0aa";
    let mut l = Running::start(
        &peer,
        &[
            "connect",
            "--listen",
            "198.18.0.20:7001",
            "--timeout",
            "20s",
        ],
        &[],
    );
    assert!(l.wait_for(Duration::from_secs(15), |_, err| url_line_complete(err)));
    for (url, want) in [
        (format!("http://198.18.0.20:7999/{token}"), "unreachable"),
        (format!("http://198.18.0.20:7001/{token}"), "wrong token"),
    ] {
        for format in FORMATS {
            let o = common::iceprobe_in(
                &b.tb.cli,
                &[
                    "connect",
                    "--peer",
                    &url,
                    "--format",
                    format,
                    "--timeout",
                    "5s",
                ],
            );
            let what = format!("connect --peer {want} {format}");
            assert!(
                matches!(o.status.code(), Some(1 | 2)),
                "{what}\n{}",
                show(&o)
            );
            let secrets = vec![token.to_string()];
            assert_clean(&secrets, &String::from_utf8_lossy(&o.stdout), &what);
            assert_clean(&secrets, &String::from_utf8_lossy(&o.stderr), &what);
        }
    }
    drop(l);
}

/// `iceprobe serve`: credentials live in the module file's environment variables and files;
/// neither the metrics nor the exporter's stderr show them.
#[test]
fn serve_never_prints_a_secret() {
    if !common::require_netns() {
        return;
    }
    let b = Bed::start();
    let cfg = b.dir.path().join("serve.json");
    std::fs::write(
        &cfg,
        format!(
            r#"{{"modules":{{
              "env":{{"username":"{USER}","credential_env":"TURN_PASSWORD"}},
              "file":{{"username":"{USER}","credential_file":"{}"}},
              "wrong":{{"username":"{USER}","credential_env":"WRONG_PASSWORD"}},
              "rest":{{"username":"{USER}","turn_secret_file":"{}"}},
              "restenv":{{"username":"{USER}","turn_secret_env":"REST_SECRET"}}
            }}}}"#,
            b.file("cred.txt"),
            b.file("rest.txt")
        ),
    )
    .unwrap();
    let listen = "198.18.0.10:9478";
    let p = Running::start(
        &b.tb.cli,
        &[
            "serve",
            "--listen",
            listen,
            "--config",
            cfg.to_str().unwrap(),
        ],
        &[
            ("TURN_PASSWORD", CRED),
            ("WRONG_PASSWORD", WRONG),
            ("REST_SECRET", REST),
        ],
    );
    common::wait_listening(&b.tb.cli, listen);
    assert_cmdline_clean(p.pid(), &b.secrets(), "serve");
    for (module, target, ok) in [
        ("env", TURN, true),
        ("file", TURN, true),
        ("wrong", TURN, false),
        ("rest", TURN_REST, true),
        ("restenv", TURN_REST, true),
    ] {
        let path = format!(
            "/probe?target={}&module={module}",
            common::query_encode(target)
        );
        let (status, body) = common::http_get(&b.tb.cli, listen, &path);
        assert_eq!(status, 200, "{module}: {body}");
        let want = format!("iceprobe_probe_success {}", u8::from(ok));
        assert!(body.contains(&want), "{module}: {body}");
        assert_clean(&b.secrets(), &body, &format!("serve module {module}"));
    }
    let (_, own) = common::http_get(&b.tb.cli, listen, "/metrics");
    assert_clean(&b.secrets(), &own, "serve /metrics");
    assert!(p.signal(common::sys::SIGTERM));
    let out = p.wait(Duration::from_secs(15));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_clean(
        &b.secrets(),
        &String::from_utf8_lossy(&out.stderr),
        "serve stderr",
    );
    assert_clean(
        &b.secrets(),
        &String::from_utf8_lossy(&out.stdout),
        "serve stdout",
    );
}

/// The command line of a running process, as `ps` shows it.
fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

fn assert_cmdline_clean(pid: u32, secrets: &[String], what: &str) {
    let line = cmdline(pid);
    assert!(line.contains("iceprobe"), "{what}: not iceprobe's: {line}");
    assert_clean(secrets, &line, &format!("{what}: /proc/{pid}/cmdline"));
}

/// Secrets from the environment and from files never reach the command line: `ps` on a running
/// iceprobe shows none (argv would: `--credential` and `--turn-secret` say so in their help).
#[test]
fn ps_shows_no_secret_given_by_environment_or_file() {
    if !common::require_netns() {
        return;
    }
    let b = Bed::start();
    // `check --every` keeps running, with the secret loaded and in use, until SIGTERM. The
    // `--ice-servers-url` source is left out: its key is part of an argument by design.
    for src in sources(&b)
        .into_iter()
        .filter(|s| s.env.len() + s.args.iter().filter(|a| a.ends_with(".txt")).count() > 0)
    {
        let mut args: Vec<String> = ["check", "--every", "30s", "--format", "ndjson"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(src.args.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = src.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut p = Running::start(&b.tb.cli, &args, &env);
        // Wait for the first run's summary: the secret has been read and used by then.
        assert!(
            p.wait_for(Duration::from_secs(20), |out, _| out
                .contains("{\"type\":\"summary\"")),
            "{}: no summary\n{}",
            src.name,
            p.stderr_so_far()
        );
        assert_cmdline_clean(p.pid(), &b.secrets(), src.name);
        assert!(p.signal(common::sys::SIGTERM));
        let out = p.wait(Duration::from_secs(15));
        assert_eq!(out.status.code(), Some(143), "{}\n{}", src.name, show(&out));
        assert_clean(
            &b.secrets(),
            &String::from_utf8_lossy(&out.stdout),
            src.name,
        );
    }
}

/// A module file that fails to load never shows the credentials written in it.
#[test]
fn serve_config_errors_never_print_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let bad = [
        format!(r#"{{"modules":{{"m":{{"username":"a","credential":"{CRED}" "x":1}}}}}}"#),
        format!(r#"{{"modules":{{"m":{{"username":"a","credential":"{CRED}"#),
        format!(r#"{{"modules":{{"m":{{"username":"a","credential":"{CRED}\q"}}}}}}"#),
        format!(r#"{{"modules":{{"m":{{"credential":"{CRED}","username":7}}}}}}"#),
        format!(r#"{{"modules":{{"m":{{"credential":"{CRED}","turn_secret":"{REST}"}}}}}}"#),
        format!(r#"{{"modules":{{"m":{{"credential":"{CRED}","timeout":"soon"}}}}}}"#),
        format!(r#"{{"modules":{{"m":{{"credential":"{CRED}","expect":["{REST}"]}}}}}}"#),
        format!(r#"{{"modules":{{"m":{{"turn_secret":"{REST}","nope":true}}}}}}"#),
    ];
    for (i, text) in bad.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.json"));
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_iceprobe"))
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&path)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{text}\n{}", show(&out));
        let secrets: Vec<String> = SECRETS.iter().map(|s| s.to_string()).collect();
        assert_clean(&secrets, &String::from_utf8_lossy(&out.stderr), text);
        assert_clean(&secrets, &String::from_utf8_lossy(&out.stdout), text);
    }
}
