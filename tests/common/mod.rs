//! Integration-test harness: a small internet built from Linux network namespaces.
//!
//! Every `tests/*.rs` file that needs it starts with `mod common;`. The pieces:
//!
//! - [`require_netns`]: call first; `false` means "skip this test" (a loud message was printed),
//!   unless `ICEPROBE_REQUIRE_NETNS=1`, in which case a missing prerequisite panics.
//! - [`Netns`] (`netns.rs`): a namespace guard, deleted on drop; [`veth`], bridges, routes, sysctls,
//!   [`Netns::exec`] / [`Netns::in_ns`] to run commands or Rust code inside it.
//! - [`Testbed`] (`topology.rs`): ready-made topologies, [`Testbed::public`] and
//!   [`Testbed::behind_nat`] with the [`NatKind`]s of RFC 4787, built with nftables.
//! - [`Coturn`] (`coturn.rs`): a coturn process inside a namespace, waited for, stopped by PID.
//! - [`TestPki`] (`certs.rs`): a CA and leaf certificates (valid, expired, not yet valid, wrong
//!   name, unknown CA) written to a temp dir for coturn's `--cert` / `--pkey`.
//! - [`stun_binding`] (`stun.rs`): a tiny reference STUN Binding client for harness self-checks.
//! - [`iceprobe_in`]: run the iceprobe binary inside a namespace; [`Running`] (`process.rs`):
//!   start it without waiting, to signal it mid-run or read its `/proc` entries.
//!
//! Cleanup: guards clean up in `Drop`, also while a failing test unwinds. Processes hold a clone
//! of their namespace, so a namespace is only deleted after every guard that runs inside it has
//! stopped its process. Addresses: public 198.18.0.0/15, NAT LANs 100.64.0.0/10, nothing else.
#![allow(clippy::disallowed_methods)] // tests and their harness read the clock
#![allow(dead_code, unused_imports)]

pub mod certs;
pub mod coturn;
pub mod hostile;
pub mod http;
pub mod netns;
pub mod process;
pub mod stun;
pub mod topology;

pub use certs::{CertPaths, LeafKind, TestPki};
pub use coturn::{Coturn, CoturnBuilder};
pub use http::{http_get, query_encode, wait_listening};
pub use netns::{veth, Netns};
pub use process::Running;
pub use stun::stun_binding;
pub use topology::{
    NatKind, Testbed, CLIENT2_LAN_IP, CLIENT_LAN_IP, CLIENT_PUBLIC_IP, ROUTER2_WAN_IP,
    ROUTER_LAN_IP, ROUTER_WAN_IP, SERVER_IP, SERVER_IP2,
};

use std::ffi::OsStr;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// Environment variable: `1` turns a missing testbed prerequisite from a skip into a failure.
pub const REQUIRE_ENV: &str = "ICEPROBE_REQUIRE_NETNS";

/// Seconds after which [`iceprobe_in`] kills the binary (`timeout` then exits with 124).
pub const ICEPROBE_TIMEOUT_SECS: u32 = 120;

/// Whether namespace tests can run here: root, and `ip`, `nft`, `turnserver`, `timeout` present,
/// and a namespace can actually be created.
///
/// Returns `false` after printing a loud skip notice to stderr; with `ICEPROBE_REQUIRE_NETNS=1`
/// it panics naming the missing prerequisite instead. The check runs once per test binary.
///
/// ```ignore
/// #[test]
/// fn my_test() {
///     if !common::require_netns() { return; }
///     // ...
/// }
/// ```
pub fn require_netns() -> bool {
    static RESULT: OnceLock<Result<(), String>> = OnceLock::new();
    let missing = match RESULT.get_or_init(check_prerequisites) {
        Ok(()) => return true,
        Err(missing) => missing,
    };
    if std::env::var(REQUIRE_ENV).as_deref() == Ok("1") {
        panic!("{REQUIRE_ENV}=1 but the netns testbed cannot run: {missing}");
    }
    // Written straight to fd 2: libtest captures `eprintln!` of passing tests, and a skip
    // must never be silent.
    static BANNER: std::sync::Once = std::sync::Once::new();
    let mut stderr = std::io::stderr().lock();
    BANNER.call_once(|| {
        let _ = write!(
            stderr,
            "\n\
             ################################################################################\n\
             ### SKIPPING netns integration tests: their bodies do NOT run\n\
             ### reason: {missing}\n\
             ### run `scripts/test.sh` as root (or with sudo), or set {REQUIRE_ENV}=1 to make this a failure\n\
             ################################################################################\n"
        );
    });
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    let _ = writeln!(stderr, "### SKIPPED (no netns testbed): {test}");
    false
}

fn check_prerequisites() -> Result<(), String> {
    let euid = sys::euid();
    if euid != 0 {
        return Err(format!("not running as root (euid {euid})"));
    }
    let hints = [
        ("ip", "iproute2"),
        ("nft", "nftables"),
        ("turnserver", "coturn"),
        ("turnutils_stunclient", "coturn"),
        ("timeout", "coreutils"),
    ];
    let missing: Vec<String> = hints
        .iter()
        .filter(|(tool_name, _)| tool(tool_name).is_none())
        .map(|(tool_name, pkg)| format!("`{tool_name}` (apt-get install {pkg})"))
        .collect();
    if !missing.is_empty() {
        return Err(format!("missing {}", missing.join(", ")));
    }
    netns::probe_namespace_support()
}

/// Full path of an executable: `$PATH` first, then the sbin directories `sudo` may drop.
pub fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Like [`tool`], but panics when the tool is missing.
pub fn must_tool(name: &str) -> PathBuf {
    tool(name).unwrap_or_else(|| panic!("required tool `{name}` not found in PATH or sbin"))
}

/// Runs a command to completion; panics with its command line, status and stderr on failure.
/// Returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot spawn {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "command failed ({}): {cmd:?}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the iceprobe binary (built by cargo for this test run) inside `ns` and collects its
/// output. stdin is closed, `NO_COLOR=1` is set, and it is killed after
/// [`ICEPROBE_TIMEOUT_SECS`] (exit status 124 then) so a hang cannot stall CI.
pub fn iceprobe_in(ns: &Netns, args: &[&str]) -> Output {
    iceprobe_in_env(ns, args, &[])
}

/// Like [`iceprobe_in`], with extra environment variables (secrets go here, not in argv).
pub fn iceprobe_in_env(ns: &Netns, args: &[&str], env: &[(&str, &str)]) -> Output {
    let bin = env!("CARGO_BIN_EXE_iceprobe");
    let timeout = ICEPROBE_TIMEOUT_SECS.to_string();
    let head = ["timeout", "-k", "5", timeout.as_str(), bin];
    let argv: Vec<&OsStr> = head
        .iter()
        .map(OsStr::new)
        .chain(args.iter().map(OsStr::new))
        .collect();
    let mut cmd = ns.exec(argv);
    cmd.env("NO_COLOR", "1").stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("spawn iceprobe in namespace")
}

/// Whether a process with this PID exists and is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state field follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// The few libc calls the harness needs, declared directly (glibc is always linked).
pub(crate) mod sys {
    use std::fs::File;
    use std::io;
    use std::os::fd::AsRawFd;

    extern "C" {
        fn geteuid() -> u32;
        fn kill(pid: i32, sig: i32) -> i32;
        fn setns(fd: i32, nstype: i32) -> i32;
    }

    /// `SIGINT` (Ctrl-C).
    pub const SIGINT: i32 = 2;
    /// `SIGTERM`.
    pub const SIGTERM: i32 = 15;
    /// `SIGKILL`.
    pub const SIGKILL: i32 = 9;
    const CLONE_NEWNET: i32 = 0x4000_0000;

    /// Effective user id of the test process.
    pub fn euid() -> u32 {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { geteuid() }
    }

    /// Sends `sig` to `pid`; true when delivered.
    pub fn signal(pid: u32, sig: i32) -> bool {
        let Ok(pid) = i32::try_from(pid) else {
            return false;
        };
        if pid <= 0 {
            return false; // never signal process groups
        }
        // SAFETY: kill takes plain integers; a positive pid targets one process.
        unsafe { kill(pid, sig) == 0 }
    }

    /// Moves the calling thread into the network namespace behind `ns_file`.
    pub fn enter_netns(ns_file: &File) -> io::Result<()> {
        // SAFETY: the fd is valid for the duration of the call; CLONE_NEWNET only changes the
        // calling thread's network namespace, which is allowed in a multi-threaded process.
        let rc = unsafe { setns(ns_file.as_raw_fd(), CLONE_NEWNET) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// The JSON report on `out`'s stdout; when it is not one, panics showing the exit status, both
/// streams and `context` (e.g. a server log).
pub fn json_report<T: serde::de::DeserializeOwned>(out: &Output, context: &str) -> T {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not the report ({e})\nexit {:?}\nstdout:\n{}\nstderr:\n{}\n{context}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Neither stdout nor stderr of `out` contains `secret` (the message never shows it).
pub fn assert_no_secret(out: &Output, secret: &str) {
    for (name, s) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(
            !String::from_utf8_lossy(s).contains(secret),
            "{name} leaks a secret"
        );
    }
}
