//! A fixed, order-keeping delay for the benchmark, since this kernel has no `netem`: bind an
//! NFQUEUE, hold every queued packet `--delay-ms`, then ACCEPT it, first in, first out. Only
//! metadata is copied from the kernel (copy mode META); the payload never leaves it.
//!
//!     nfq_delay --queue 7 --delay-ms 25 --time-limit 600
//!
//! Pair it with `-j NFQUEUE --queue-num 7 --queue-bypass` so packets pass undelayed whenever the
//! program is not running. It stops by itself after `--time-limit` seconds (or on SIGTERM, by the
//! default action), accepting whatever it still holds first when the limit is reached.
//! Needs CAP_NET_ADMIN (root). Not part of iceprobe: only `scripts/bench-check.sh` uses it.
#![allow(clippy::disallowed_methods)] // a tool at the I/O edge: reads the clock

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nfq::{Queue, Verdict};

/// How often the (non-blocking) queue is polled for new packets.
const POLL: Duration = Duration::from_micros(200);

struct Args {
    queue: u16,
    delay: Duration,
    time_limit: Duration,
}

fn parse() -> Result<Args, String> {
    let mut queue = None;
    let mut delay = None;
    let mut limit = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let n: u64 = value
            .parse()
            .map_err(|_| format!("{flag}: not a number: {value}"))?;
        match flag.as_str() {
            "--queue" => queue = Some(u16::try_from(n).map_err(|_| "--queue: 0..=65535")?),
            "--delay-ms" => delay = Some(Duration::from_millis(n)),
            "--time-limit" => limit = Some(Duration::from_secs(n)),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(Args {
        queue: queue.ok_or("--queue is required")?,
        delay: delay.ok_or("--delay-ms is required")?,
        time_limit: limit.ok_or("--time-limit is required (seconds)")?,
    })
}

fn run(args: &Args) -> std::io::Result<u64> {
    let mut q = Queue::open()?;
    q.bind(args.queue)?;
    q.set_copy_range(args.queue, 0)?; // metadata only
    q.set_queue_max_len(args.queue, 65_535)?;
    q.set_fail_open(args.queue, true)?; // a full queue accepts rather than drops
    q.set_nonblocking(true);
    let stop_at = Instant::now() + args.time_limit;
    let mut held = VecDeque::new();
    let mut passed = 0u64;
    eprintln!(
        "nfq_delay: queue {} delay {:?} for at most {:?}",
        args.queue, args.delay, args.time_limit
    );
    loop {
        // Take everything the kernel has queued, stamping each packet's release time.
        loop {
            match q.recv() {
                Ok(msg) => held.push_back((Instant::now() + args.delay, msg)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        let now = Instant::now();
        let stopping = now >= stop_at;
        // The delay is the same for every packet, so release order is arrival order.
        while let Some((due, _)) = held.front() {
            if *due > now && !stopping {
                break;
            }
            let (_, mut msg) = held.pop_front().expect("front exists");
            msg.set_verdict(Verdict::Accept);
            q.verdict(msg)?;
            passed += 1;
        }
        if stopping {
            q.unbind(args.queue)?;
            return Ok(passed);
        }
        // Wake for the next release, and every POLL for new arrivals: a packet's delay is late
        // by at most POLL plus the sleep's overshoot (the netlink socket is not exposed to poll).
        let next = held.front().map_or(now + POLL, |(d, _)| *d);
        let nap = next.saturating_duration_since(now).min(POLL);
        std::thread::sleep(nap.max(Duration::from_micros(20)));
    }
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "nfq_delay: {e}\nusage: nfq_delay --queue N --delay-ms D --time-limit SECONDS"
            );
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(n) => {
            eprintln!("nfq_delay: time limit reached after {n} packets");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nfq_delay: {e}");
            ExitCode::FAILURE
        }
    }
}
