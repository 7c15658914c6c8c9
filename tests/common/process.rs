//! [`Running`]: the iceprobe binary started inside a [`Netns`] without waiting for it, so a test
//! can watch it, signal it mid-run and read its `/proc` entries; stopped by PID on drop.

use super::netns::Netns;
use super::{pid_alive, sys};
use std::io::Read;
use std::process::{Child, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running iceprobe. `ip netns exec` execs, so [`pid`](Self::pid) is iceprobe's own PID.
/// stdout and stderr are collected by threads (a full pipe never stalls it) and can be read
/// while it runs. Dropping it kills the process (SIGKILL by PID) and reaps it.
pub struct Running {
    child: Option<Child>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

fn collect(mut from: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    })
}

impl Running {
    /// Starts `iceprobe args...` in `ns` with `NO_COLOR=1`, stdin closed, and `env` added
    /// (secrets go there, not in argv).
    pub fn start(ns: &Netns, args: &[&str], env: &[(&str, &str)]) -> Running {
        let mut cmd =
            ns.exec(std::iter::once(env!("CARGO_BIN_EXE_iceprobe")).chain(args.iter().copied()));
        cmd.env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn iceprobe in namespace");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), stdout.clone()),
            collect(child.stderr.take().unwrap(), stderr.clone()),
        ];
        Running {
            child: Some(child),
            stdout,
            stderr,
            readers,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Whether it is still running (reaps it if it exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Sends `sig` (e.g. [`sys::SIGINT`]) to this process only; true when delivered.
    pub fn signal(&self, sig: i32) -> bool {
        sys::signal(self.pid(), sig)
    }

    /// stdout so far.
    pub fn stdout_so_far(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    /// stderr so far.
    pub fn stderr_so_far(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits until `pred(stdout, stderr)` holds, at most `limit`; false when it never did or the
    /// process exited first.
    pub fn wait_for(&mut self, limit: Duration, pred: impl Fn(&str, &str) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if pred(&self.stdout_so_far(), &self.stderr_so_far()) {
                return true;
            }
            if !self.is_running() {
                return pred(&self.stdout_so_far(), &self.stderr_so_far());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Waits for the exit, at most `limit` (then kills it and panics), and returns everything
    /// it printed.
    pub fn wait(mut self, limit: Duration) -> Output {
        let mut child = self.child.take().expect("not yet waited for");
        let deadline = Instant::now() + limit;
        let status: ExitStatus = loop {
            if let Some(s) = child.try_wait().expect("try_wait") {
                break s;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "iceprobe (pid {}) still running after {limit:?}\nstdout:\n{}\nstderr:\n{}",
                    child.id(),
                    self.stdout_so_far(),
                    self.stderr_so_far()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Output {
            status,
            stdout: std::mem::take(&mut *self.stdout.lock().unwrap()),
            stderr: std::mem::take(&mut *self.stderr.lock().unwrap()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id();
            let _ = child.kill();
            let _ = child.wait();
            debug_assert!(!pid_alive(pid));
        }
    }
}
