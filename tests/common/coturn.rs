//! [`Coturn`]: Debian's coturn (`turnserver`) running inside a [`Netns`], stopped by PID on drop.

use super::netns::Netns;
use super::{must_tool, pid_alive, stun::stun_binding, sys};
use std::fs::File;
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Peer ranges allowed by default: the test ranges (public and NAT LAN).
pub const DEFAULT_ALLOWED_PEERS: [&str; 2] =
    ["198.18.0.0-198.19.255.255", "100.64.0.0-100.127.255.255"];

/// How long [`CoturnBuilder::start`] waits for the listener to answer.
pub const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// Grace period between SIGTERM and SIGKILL when stopping.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

enum Auth {
    None,
    LongTerm(Vec<(String, String)>),
    Secret(String),
}

/// Builder over the known-good coturn command line (see `/work/shared/DEPENDENCIES.md`):
/// `turnserver -n --no-cli --log-file=stdout --simple-log --db=<tmp> --pidfile=<tmp> -L … `.
///
/// Defaults: port 3478, TLS port 5349 (only with [`tls`](Self::tls); otherwise `--no-tls
/// --no-dtls`), relay ports 49160-49200, relay IP = first listen IP, `--fingerprint`,
/// realm `iceprobe.test`, no authentication (add [`user`](Self::user) or
/// [`auth_secret`](Self::auth_secret)), allowed peers [`DEFAULT_ALLOWED_PEERS`].
pub struct CoturnBuilder {
    ns: Netns,
    listen: Vec<IpAddr>,
    relay_ip: Option<IpAddr>,
    port: u16,
    tls_port: u16,
    auth: Auth,
    realm: String,
    tls: Option<(PathBuf, PathBuf)>,
    fingerprint: bool,
    relay_ports: (u16, u16),
    allowed_peers: Option<Vec<String>>,
    denied_peers: Vec<String>,
    user_quota: Option<u32>,
    no_rfc5780: bool,
    stun_only: bool,
    verbose: bool,
    extra: Vec<String>,
}

impl CoturnBuilder {
    /// Adds a listening address (`-L`). Two addresses of one family switch RFC 5780 on
    /// (alternate port = port + 1). At least one is required.
    pub fn listen(mut self, ip: impl Into<IpAddr>) -> Self {
        self.listen.push(ip.into());
        self
    }

    /// `--relay-ip` (default: the first listen address).
    pub fn relay_ip(mut self, ip: impl Into<IpAddr>) -> Self {
        self.relay_ip = Some(ip.into());
        self
    }

    /// `--listening-port` (default 3478).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// `--tls-listening-port` (default 5349; used only with [`tls`](Self::tls)).
    pub fn tls_port(mut self, port: u16) -> Self {
        self.tls_port = port;
        self
    }

    /// Long-term credentials (`--lt-cred-mech --user=USER:PASS`); may be called repeatedly.
    /// Panics if [`auth_secret`](Self::auth_secret) was set: the two do not mix in one process.
    pub fn user(mut self, user: &str, pass: &str) -> Self {
        match &mut self.auth {
            Auth::Secret(_) => panic!("coturn: lt-cred users and use-auth-secret do not mix"),
            Auth::LongTerm(users) => users.push((user.into(), pass.into())),
            Auth::None => self.auth = Auth::LongTerm(vec![(user.into(), pass.into())]),
        }
        self
    }

    /// REST-API credentials (`--use-auth-secret --static-auth-secret=SECRET`).
    pub fn auth_secret(mut self, secret: &str) -> Self {
        assert!(
            !matches!(self.auth, Auth::LongTerm(_)),
            "coturn: lt-cred users and use-auth-secret do not mix"
        );
        self.auth = Auth::Secret(secret.into());
        self
    }

    /// `--realm` (default `iceprobe.test`).
    pub fn realm(mut self, realm: &str) -> Self {
        self.realm = realm.into();
        self
    }

    /// TLS listener with this certificate chain and key (`--cert`, `--pkey`); see
    /// [`TestPki`](super::TestPki). coturn 4.6.1 speaks at most TLS 1.2.
    pub fn tls(mut self, cert: &Path, key: &Path) -> Self {
        self.tls = Some((cert.to_owned(), key.to_owned()));
        self
    }

    /// Leaves out `--fingerprint`.
    pub fn no_fingerprint(mut self) -> Self {
        self.fingerprint = false;
        self
    }

    /// `--min-port` / `--max-port` for relayed addresses (default 49160-49200).
    pub fn relay_ports(mut self, min: u16, max: u16) -> Self {
        self.relay_ports = (min, max);
        self
    }

    /// `--allowed-peer-ip=RANGE` (`IP` or `IP1-IP2`). The first call replaces
    /// [`DEFAULT_ALLOWED_PEERS`]. coturn lets an allowed range override a denied one, so keep
    /// denied peers outside allowed ranges.
    pub fn allowed_peer_ip(mut self, range: &str) -> Self {
        self.allowed_peers
            .get_or_insert_with(Vec::new)
            .push(range.into());
        self
    }

    /// `--denied-peer-ip=RANGE` (CreatePermission then fails with 403). Combine with an explicit
    /// [`allowed_peer_ip`](Self::allowed_peer_ip) that excludes it.
    pub fn denied_peer_ip(mut self, range: &str) -> Self {
        self.denied_peers.push(range.into());
        self
    }

    /// `--user-quota=N` (486 when exceeded; coturn frees quota on a ~1 s timer).
    pub fn user_quota(mut self, n: u32) -> Self {
        self.user_quota = Some(n);
        self
    }

    /// `--no-rfc5780` (no OTHER-ADDRESS even with two listen addresses).
    pub fn no_rfc5780(mut self) -> Self {
        self.no_rfc5780 = true;
        self
    }

    /// `--stun-only`: TURN requests are ignored.
    pub fn stun_only(mut self) -> Self {
        self.stun_only = true;
        self
    }

    /// `-v`: per-request log lines (e.g. "error 401"), useful with [`Coturn::log`].
    pub fn verbose(mut self) -> Self {
        self.verbose = true;
        self
    }

    /// Any further raw argument, appended last.
    pub fn arg(mut self, arg: &str) -> Self {
        self.extra.push(arg.into());
        self
    }

    /// The full argument list (after `turnserver`) that [`start`](Self::start) would use with
    /// the given temp dir.
    pub fn args(&self, dir: &Path) -> Vec<String> {
        assert!(
            !self.listen.is_empty(),
            "coturn needs at least one listen IP"
        );
        let mut a: Vec<String> = vec![
            "-n".into(),
            "--no-cli".into(),
            "--log-file=stdout".into(),
            "--simple-log".into(),
            format!("--db={}", dir.join("turndb").display()),
            format!("--pidfile={}", dir.join("turnserver.pid").display()),
        ];
        for ip in &self.listen {
            a.push(format!("--listening-ip={ip}"));
        }
        a.push(format!(
            "--relay-ip={}",
            self.relay_ip.unwrap_or(self.listen[0])
        ));
        a.push(format!("--listening-port={}", self.port));
        match &self.tls {
            Some((cert, key)) => {
                a.push(format!("--tls-listening-port={}", self.tls_port));
                a.push(format!("--cert={}", cert.display()));
                a.push(format!("--pkey={}", key.display()));
            }
            None => {
                a.push("--no-tls".into());
                a.push("--no-dtls".into());
            }
        }
        match &self.auth {
            Auth::None => {}
            Auth::LongTerm(users) => {
                a.push("--lt-cred-mech".into());
                for (user, pass) in users {
                    a.push(format!("--user={user}:{pass}"));
                }
            }
            Auth::Secret(secret) => {
                a.push("--use-auth-secret".into());
                a.push(format!("--static-auth-secret={secret}"));
            }
        }
        a.push(format!("--realm={}", self.realm));
        if self.fingerprint {
            a.push("--fingerprint".into());
        }
        a.push(format!("--min-port={}", self.relay_ports.0));
        a.push(format!("--max-port={}", self.relay_ports.1));
        let default_allowed: Vec<String> =
            DEFAULT_ALLOWED_PEERS.iter().map(|s| (*s).into()).collect();
        for range in self.allowed_peers.as_ref().unwrap_or(&default_allowed) {
            a.push(format!("--allowed-peer-ip={range}"));
        }
        for range in &self.denied_peers {
            a.push(format!("--denied-peer-ip={range}"));
        }
        if let Some(n) = self.user_quota {
            a.push(format!("--user-quota={n}"));
        }
        if self.no_rfc5780 {
            a.push("--no-rfc5780".into());
        }
        if self.stun_only {
            a.push("--stun-only".into());
        }
        if self.verbose {
            a.push("-v".into());
        }
        a.extend(self.extra.iter().cloned());
        a
    }

    /// Starts coturn in the namespace and waits (≤ [`READY_TIMEOUT`]) until the primary
    /// listener answers a STUN Binding over UDP (or a TCP connect with `--no-udp`). Panics,
    /// printing the log, if it exits or does not become ready.
    pub fn start(self) -> Coturn {
        let dir = tempfile::Builder::new()
            .prefix("iceprobe-coturn-")
            .tempdir()
            .expect("temp dir");
        let log_path = dir.path().join("turnserver.log");
        let log = File::create(&log_path).expect("create coturn log");
        let args = self.args(dir.path());
        let child = self
            .ns
            .exec(
                std::iter::once(must_tool("turnserver").into_os_string())
                    .chain(args.iter().map(Into::into)),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log fd"))
            .stderr(log)
            .spawn()
            .expect("spawn turnserver");
        let mut coturn = Coturn {
            ns: self.ns.clone(),
            child: Some(child),
            log_path,
            addr: SocketAddr::new(self.listen[0], self.port),
            tls_addr: self
                .tls
                .as_ref()
                .map(|_| SocketAddr::new(self.listen[0], self.tls_port)),
            args,
            _dir: dir,
        };
        let tcp_only = coturn.args.iter().any(|a| a == "--no-udp");
        coturn.wait_ready(tcp_only);
        coturn
    }
}

/// A running coturn. Dropping it stops the process by PID (SIGTERM, then SIGKILL after
/// [`STOP_GRACE`]) and reaps it; if the thread is panicking, the log is printed to stderr.
pub struct Coturn {
    ns: Netns,
    child: Option<Child>,
    log_path: PathBuf,
    addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    args: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Coturn {
    /// A builder for a coturn running in `ns`.
    pub fn builder(ns: &Netns) -> CoturnBuilder {
        CoturnBuilder {
            ns: ns.clone(),
            listen: Vec::new(),
            relay_ip: None,
            port: 3478,
            tls_port: 5349,
            auth: Auth::None,
            realm: "iceprobe.test".into(),
            tls: None,
            fingerprint: true,
            relay_ports: (49160, 49200),
            allowed_peers: None,
            denied_peers: Vec::new(),
            user_quota: None,
            no_rfc5780: false,
            stun_only: false,
            verbose: false,
            extra: Vec::new(),
        }
    }

    /// PID of the turnserver process (`ip netns exec` execs, so it is turnserver's own).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Primary listener (`first listen IP:port`), for `stun:` / `turn:` URLs.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// TLS listener, if configured, for `turns:` URLs.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// The arguments turnserver was started with.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The namespace coturn runs in.
    pub fn netns(&self) -> &Netns {
        &self.ns
    }

    /// Path of the captured stdout+stderr log.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything coturn has logged so far (stdout and stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Whether the process is still running (reaps it if it exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stops the process now (same as dropping, but explicit).
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn wait_ready(&mut self, tcp_only: bool) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let addr = self.addr;
        loop {
            if !self.is_running() {
                panic!(
                    "turnserver exited during start-up\nargs: {:?}\n--- log ---\n{}",
                    self.args,
                    self.log()
                );
            }
            let ready = self.ns.in_ns(move || {
                if tcp_only {
                    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
                } else {
                    let bind = SocketAddr::new(
                        match addr.ip() {
                            IpAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
                            IpAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
                        },
                        0,
                    );
                    UdpSocket::bind(bind)
                        .ok()
                        .and_then(|sock| stun_binding(&sock, addr, Duration::from_millis(300)))
                        .is_some()
                }
            });
            if ready {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "turnserver not answering on {addr} after {READY_TIMEOUT:?}\nargs: {:?}\n--- log ---\n{}",
                    self.args,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop_inner(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id();
        if matches!(child.try_wait(), Ok(None)) {
            sys::signal(pid, sys::SIGTERM);
            let deadline = Instant::now() + STOP_GRACE;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if matches!(child.try_wait(), Ok(None)) {
                eprintln!("harness: turnserver pid {pid} ignored SIGTERM, sending SIGKILL");
                let _ = child.kill();
            }
        }
        let _ = child.wait();
        debug_assert!(!pid_alive(pid));
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        self.stop_inner();
        if std::thread::panicking() {
            eprintln!(
                "--- coturn log ({}, args {:?}) ---\n{}--- end of coturn log ---",
                self.ns.name(),
                self.args,
                self.log()
            );
        }
    }
}
