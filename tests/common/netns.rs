//! [`Netns`]: a network namespace guard, and the link helpers to wire namespaces together.

use super::{must_tool, pid_alive, run, sys};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

/// Prefix of every namespace the harness creates: `ipt-<pid>-<counter>-<tag>`.
pub const PREFIX: &str = "ipt-";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A network namespace that exists while any clone of this guard lives.
///
/// Created with `lo` up, IPv6 disabled (see [`Netns::enable_ipv6`]) and
/// `/etc/netns/<name>/resolv.conf` = `nameserver 127.0.0.1`, so nothing inside reaches the
/// host's resolver. Cloning is cheap (an `Arc`); [`Coturn`](super::Coturn) keeps a clone so the
/// namespace outlives the process. When the last clone drops, any process still inside is
/// SIGKILLed by PID, then the namespace and `/etc/netns/<name>` are removed.
#[derive(Clone)]
pub struct Netns {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
}

impl Netns {
    /// Creates `ipt-<pid>-<n>-<tag>`. `tag` is a short label (`[a-z0-9]`, ≤ 8 chars) that shows up
    /// in `ip netns list` and failure messages. Panics on failure.
    pub fn new(tag: &str) -> Netns {
        assert!(
            !tag.is_empty()
                && tag.len() <= 8
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "namespace tag must be 1-8 chars of [a-z0-9], got {tag:?}"
        );
        static STALE: Once = Once::new();
        STALE.call_once(remove_stale_namespaces);

        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{PREFIX}{}-{n}-{tag}", std::process::id());
        run(Command::new(must_tool("ip")).args(["netns", "add", &name]));
        // From here on the guard owns the namespace: any panic below still cleans up.
        let ns = Netns {
            inner: Arc::new(Inner { name }),
        };
        let etc = ns.etc_dir();
        fs::create_dir_all(&etc).expect("create /etc/netns/<name>");
        fs::write(etc.join("resolv.conf"), "nameserver 127.0.0.1\n").expect("write resolv.conf");
        ns.ip(["link", "set", "lo", "up"]);
        ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1");
        ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1");
        ns
    }

    /// The namespace name as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// `/etc/netns/<name>`: files here are bind-mounted over `/etc` by `ip netns exec`.
    pub fn etc_dir(&self) -> PathBuf {
        PathBuf::from("/etc/netns").join(self.name())
    }

    /// Writes `/etc/netns/<name>/hosts` (seen as `/etc/hosts` by processes started with
    /// [`Netns::exec`]), e.g. `"198.18.0.1 turn.test\n"`.
    pub fn write_hosts(&self, content: &str) {
        fs::write(self.etc_dir().join("hosts"), content).expect("write netns hosts file");
    }

    /// A `Command` running `argv` inside the namespace (`ip netns exec <name> argv...`).
    /// `ip netns exec` execs the program, so the child's PID is the program's own PID.
    pub fn exec<I, S>(&self, argv: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(must_tool("ip"));
        cmd.args(["netns", "exec", self.name()]).args(argv);
        cmd
    }

    /// Runs `argv` inside the namespace to completion; panics on failure; returns stdout.
    pub fn run<I, S>(&self, argv: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run(&mut self.exec(argv))
    }

    /// Runs `ip -n <name> args...`; panics on failure; returns stdout.
    pub fn ip<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run(Command::new(must_tool("ip"))
            .args(["-n", self.name()])
            .args(args))
    }

    /// Sets a sysctl inside the namespace, e.g. `sysctl("net.ipv4.ip_forward", "1")`.
    pub fn sysctl(&self, key: &str, value: &str) {
        assert!(
            key.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
            "bad sysctl key {key:?}"
        );
        assert!(
            value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b" -".contains(&b)),
            "bad sysctl value {value:?}"
        );
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        self.run(["sh", "-c", &format!("echo '{value}' > {path}")]);
    }

    /// Reads a sysctl inside the namespace.
    pub fn sysctl_get(&self, key: &str) -> String {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        self.run(["cat", &path]).trim().to_owned()
    }

    /// Turns IPv4 forwarding on or off (routers need it on).
    pub fn set_ip_forward(&self, on: bool) {
        self.sysctl("net.ipv4.ip_forward", if on { "1" } else { "0" });
    }

    /// Re-enables IPv6 (off by default). Use ULA addresses (fd00::/8) with `nodad`.
    pub fn enable_ipv6(&self) {
        self.sysctl("net.ipv6.conf.all.disable_ipv6", "0");
        self.sysctl("net.ipv6.conf.default.disable_ipv6", "0");
    }

    /// Adds an address (`"198.18.0.1/24"`) to an interface.
    pub fn addr_add(&self, ifname: &str, cidr: &str) {
        self.ip(["addr", "add", cidr, "dev", ifname]);
    }

    /// Sets the IPv4 default route: `ip route replace default via <gateway>`.
    pub fn default_route(&self, gateway: &str) {
        self.ip(["route", "replace", "default", "via", gateway]);
    }

    /// Creates a bridge `name` (up) with the given addresses; more hosts join it with
    /// [`veth_to_bridge`].
    pub fn bridge(&self, name: &str, cidrs: &[&str]) {
        check_ifname(name);
        self.ip(["link", "add", "name", name, "type", "bridge"]);
        for cidr in cidrs {
            self.addr_add(name, cidr);
        }
        self.ip(["link", "set", name, "up"]);
    }

    /// Loads an nftables ruleset (the text of an `nft -f` file) inside the namespace.
    pub fn nft(&self, ruleset: &str) {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = self
            .exec(["nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nft");
        child
            .stdin
            .take()
            .expect("nft stdin")
            .write_all(ruleset.as_bytes())
            .expect("write nft ruleset");
        let out = child.wait_with_output().expect("wait for nft");
        assert!(
            out.status.success(),
            "nft -f failed in {}: {}\n--- ruleset ---\n{ruleset}",
            self.name(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// PIDs of processes currently inside the namespace (`ip netns pids`).
    pub fn pids(&self) -> Vec<u32> {
        pids_in(self.name())
    }

    /// Runs `f` on a fresh thread that has entered this namespace and returns its result, so
    /// plain `std::net` sockets (or a tokio runtime *created inside `f`*) live in the namespace.
    /// Threads spawned from inside `f` inherit the namespace. A panic in `f` is re-raised.
    pub fn in_ns<T, F>(&self, f: F) -> T
    where
        T: Send,
        F: FnOnce() -> T + Send,
    {
        let path = format!("/var/run/netns/{}", self.name());
        std::thread::scope(|scope| {
            let handle = scope.spawn(move || {
                let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
                sys::enter_netns(&file).unwrap_or_else(|e| panic!("setns {path}: {e}"));
                drop(file);
                f()
            });
            handle
                .join()
                .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
        })
    }
}

impl std::fmt::Debug for Netns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Netns").field(&self.inner.name).finish()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        destroy_namespace(&self.name);
    }
}

/// Creates a veth pair: `a_if` in `a` with `a_cidr`, `b_if` in `b` with `b_cidr`, both up.
/// The pair is created inside `a` and its peer moved into `b`: the root namespace is never used.
/// Interface names are ≤ 15 chars (kernel limit); they only need to be unique per namespace.
pub fn veth(a: &Netns, a_if: &str, a_cidr: &str, b: &Netns, b_if: &str, b_cidr: &str) {
    veth_raw(a, a_if, b, b_if);
    a.addr_add(a_if, a_cidr);
    b.addr_add(b_if, b_cidr);
    a.ip(["link", "set", a_if, "up"]);
    b.ip(["link", "set", b_if, "up"]);
}

/// Connects `host` to the bridge `bridge` in `hub`: `host_if` (with `host_cidr`) in `host`,
/// its peer `port_if` enslaved to the bridge.
pub fn veth_to_bridge(
    host: &Netns,
    host_if: &str,
    host_cidr: &str,
    hub: &Netns,
    bridge: &str,
    port_if: &str,
) {
    veth_raw(host, host_if, hub, port_if);
    hub.ip(["link", "set", port_if, "master", bridge]);
    hub.ip(["link", "set", port_if, "up"]);
    host.addr_add(host_if, host_cidr);
    host.ip(["link", "set", host_if, "up"]);
}

fn veth_raw(a: &Netns, a_if: &str, b: &Netns, b_if: &str) {
    check_ifname(a_if);
    check_ifname(b_if);
    assert_ne!(
        a.name(),
        b.name(),
        "veth ends must be in different namespaces"
    );
    a.ip([
        "link",
        "add",
        "name",
        a_if,
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "netns",
        b.name(),
    ]);
}

fn check_ifname(name: &str) {
    assert!(
        !name.is_empty() && name.len() <= 15 && !name.contains(['/', ' ']),
        "interface name {name:?} must be 1-15 chars without '/' or spaces"
    );
}

fn pids_in(name: &str) -> Vec<u32> {
    let Some(ip) = super::tool("ip") else {
        return Vec::new();
    };
    Command::new(ip)
        .args(["netns", "pids", name])
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Best-effort teardown (also used for stale namespaces): SIGKILL what is left inside, delete
/// the namespace, remove `/etc/netns/<name>`. Never panics (it runs inside `Drop`).
fn destroy_namespace(name: &str) {
    let leftovers = pids_in(name);
    for &pid in &leftovers {
        eprintln!("harness: SIGKILL leftover pid {pid} in namespace {name}");
        sys::signal(pid, sys::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while leftovers.iter().any(|&pid| pid_alive(pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Some(ip) = super::tool("ip") {
        match Command::new(ip).args(["netns", "del", name]).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "harness: `ip netns del {name}` failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("harness: cannot run `ip netns del {name}`: {e}"),
        }
    }
    let _ = fs::remove_dir_all(PathBuf::from("/etc/netns").join(name));
}

/// Names of this harness's namespaces (`ipt-…`) currently present.
pub fn harness_namespaces() -> Vec<String> {
    let Some(ip) = super::tool("ip") else {
        return Vec::new();
    };
    let out = Command::new(ip).args(["netns", "list"]).output();
    let Ok(out) = out else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| name.starts_with(PREFIX))
        .map(str::to_owned)
        .collect()
}

/// Removes namespaces left behind by harness processes that no longer exist (e.g. a test run
/// killed by SIGKILL). Runs once per test binary, before its first namespace is created.
fn remove_stale_namespaces() {
    for name in harness_namespaces() {
        let owner = name[PREFIX.len()..]
            .split('-')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = owner {
            if pid != std::process::id() && !pid_alive(pid) {
                eprintln!("harness: removing stale namespace {name} (owner pid {pid} is gone)");
                destroy_namespace(&name);
            }
        }
    }
}

/// Checks that a namespace can be created and deleted here (used by `require_netns`).
pub(super) fn probe_namespace_support() -> Result<(), String> {
    let name = format!("{PREFIX}{}-probe", std::process::id());
    let ip = must_tool("ip");
    let out = Command::new(&ip)
        .args(["netns", "add", &name])
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cannot create a network namespace: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    destroy_namespace(&name);
    Ok(())
}
