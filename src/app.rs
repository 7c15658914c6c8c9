//! Running a parsed command: wires config, the probe and the renderer together, and decides the
//! exit code. `main` only parses and calls [`run`].

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use crate::progress::Spinner;

use tokio::sync::{mpsc, watch};

use crate::check::run::check;
use crate::cli::args::{
    CheckArgs, ConnectArgs, DemoArgs, GatherArgs, NatArgs, OutputArgs, ServeArgs,
};
use crate::cli::{
    check_config, ci_config, connect_config, gather_config, nat_config, CiConfig, Cli, Command,
    UsageError,
};
use crate::expect::Scope;
use crate::gather::{gather, GatherConfig};
use crate::model::check::CheckEvent;
use crate::model::connect::ConnectEvent;
use crate::model::nat::NatEvent;
use crate::model::Event;
use crate::render::check::render_check_event;
use crate::render::ci::{apply_expectations, junit, render_quiet, CiReport};
use crate::render::connect::render_connect_event;
use crate::render::gather::render_event;
use crate::render::nat::render_nat_event;
use crate::render::{Format, Style};

/// Show a progress line on stderr for long runs (stderr is a terminal; set once by [`run`]).
static PROGRESS: AtomicBool = AtomicBool::new(false);

/// Exit code: usage or configuration error.
pub const EXIT_USAGE: i32 = 2;
/// Exit code: interrupted by Ctrl-C (128 + SIGINT).
pub const EXIT_INTERRUPTED: i32 = 130;
/// Exit code: stopped by SIGTERM (128 + SIGTERM), e.g. `kill`, `timeout`, systemd, Docker.
pub const EXIT_TERMINATED: i32 = 143;

/// A signal that stops a run at once: probes are cancelled, allocations released (Refresh
/// LIFETIME 0), the report printed, and the exit code says which signal it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

impl StopSignal {
    /// The shell convention: 128 + the signal number.
    pub fn exit_code(self) -> i32 {
        match self {
            StopSignal::Interrupt => EXIT_INTERRUPTED,
            StopSignal::Terminate => EXIT_TERMINATED,
        }
    }
}

/// Exit code of the signal that cancelled the run (set once, before the cancel is sent).
static STOP_CODE: AtomicI32 = AtomicI32::new(EXIT_INTERRUPTED);

/// The exit code of a cancelled run: 130 after SIGINT, 143 after SIGTERM.
fn stopped_code() -> i32 {
    STOP_CODE.load(Ordering::Relaxed)
}

/// The first SIGINT or SIGTERM. The handlers are registered when this is called (not when the
/// future is first polled), so a signal that arrives right after start-up is caught too. On
/// other platforms only Ctrl-C is watched.
fn stop_signal() -> impl std::future::Future<Output = Option<StopSignal>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let int = signal(SignalKind::interrupt());
        let term = signal(SignalKind::terminate());
        async move {
            let (Ok(mut int), Ok(mut term)) = (int, term) else {
                return None;
            };
            tokio::select! {
                Some(()) = int.recv() => Some(StopSignal::Interrupt),
                Some(()) = term.recv() => Some(StopSignal::Terminate),
                else => None,
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            tokio::signal::ctrl_c()
                .await
                .ok()
                .map(|()| StopSignal::Interrupt)
        }
    }
}

/// Run a command; `stdout` receives the report, `stderr` usage errors. Returns the exit code.
pub async fn run(
    cli: Cli,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    style: Style,
    progress: bool,
) -> i32 {
    PROGRESS.store(progress, Ordering::Relaxed);
    let (cancel_tx, cancel_rx) = watch::channel(false);
    // The handlers are installed before any probe starts, so SIGINT or SIGTERM never kills the
    // process with an allocation left on the server.
    let signalled = stop_signal();
    tokio::spawn(async move {
        if let Some(sig) = signalled.await {
            STOP_CODE.store(sig.exit_code(), Ordering::Relaxed);
            let _ = cancel_tx.send(true);
        }
    });
    match cli.command {
        Command::Gather(a) => run_gather(&a, stdout, stderr, style, cancel_rx).await,
        Command::Demo(a) => run_demo(&a, stdout, stderr, style, cancel_rx).await,
        Command::Check(a) => run_check(&a, stdout, stderr, style, cancel_rx).await,
        Command::Nat(a) => run_nat(&a, stdout, stderr, style, cancel_rx).await,
        Command::Serve(a) => run_serve(&a, stderr, cancel_rx).await,
        Command::Completions(a) => generated(crate::cli::generate::completions(a.shell, stdout)),
        Command::Man(a) => generated(crate::cli::generate::man(a.subcommand.as_deref(), stdout)),
        Command::Connect(a) => run_connect(&a, stdout, stderr, style, cancel_rx).await,
    }
}

async fn run_gather(
    a: &GatherArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
    style: Style,
    cancel: watch::Receiver<bool>,
) -> i32 {
    let cfg = match gather_config(a).await {
        Ok(c) => c,
        Err(e) => return usage(err, e),
    };
    let ci = match ci_config(&a.ci, Scope::Gather) {
        Ok(c) => c,
        Err(e) => return usage(err, e),
    };
    gather_and_render(cfg, &a.output, ci, out, err, style, cancel).await
}

/// Exit code of printing generated text: 0, also on a broken pipe; 1 on another write error.
fn generated(r: io::Result<()>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
        Err(_) => 1,
    }
}

fn usage(err: &mut dyn Write, e: UsageError) -> i32 {
    let _ = writeln!(err, "iceprobe: error: {e}");
    EXIT_USAGE
}

/// Render events as they arrive until the probe task ends, then map its verdict (or an
/// interruption, or a failed write) to the exit code. Rendering stops quietly on a broken pipe
/// (e.g. `| head`), but the probes still finish and release their allocations. `amend` sees
/// every event before it is rendered; for the summary it applies `--expect` and `--junit` and
/// returns the amended exit code.
async fn render_until_done<E>(
    mut rx: mpsc::UnboundedReceiver<E>,
    task: tokio::task::JoinHandle<i32>,
    interrupted: watch::Receiver<bool>,
    out: &mut dyn Write,
    human: bool,
    mut amend: impl FnMut(&mut E) -> Option<i32>,
    mut render: impl FnMut(&E, &mut dyn Write) -> io::Result<()>,
) -> i32 {
    // Progress on stderr only for the human table, and only when stderr is a terminal.
    let spinner = Spinner::start(human && PROGRESS.load(Ordering::Relaxed), "running");
    let mut writable = true;
    let mut write_failed = false;
    let mut amended = None;
    // Each event is rendered whole into memory first: stdout is line-buffered, and a report of
    // 1,000 rows written straight to it would cost one write(2) per line.
    let mut buf = Vec::new();
    while let Some(mut ev) = rx.recv().await {
        if let Some(code) = amend(&mut ev) {
            amended = Some(code);
        }
        if writable {
            let _quiet = spinner.as_ref().map(Spinner::pause);
            buf.clear();
            let written = render(&ev, &mut buf)
                .and_then(|_| out.write_all(&buf))
                .and_then(|_| out.flush());
            if let Err(e) = written {
                writable = false;
                write_failed = e.kind() != io::ErrorKind::BrokenPipe;
            }
        }
    }
    drop(spinner);
    let code = match task.await {
        Ok(code) if !write_failed => amended.unwrap_or(code),
        _ => 1,
    };
    if *interrupted.borrow() {
        return stopped_code();
    }
    code
}

/// The end of a run for CI: evaluate the assertions into the report (amending its verdict) and
/// write the JUnit file. Returns the exit code; a JUnit file that cannot be written makes it 1.
fn finish_report<R: CiReport + ?Sized>(
    report: &mut R,
    ci: &mut CiConfig,
    err: &mut dyn Write,
) -> i32 {
    let mut code = apply_expectations(report, &ci.assertions);
    if let Some((path, file)) = ci.junit.as_mut() {
        let xml = junit(report);
        if let Err(e) = file.write_all(xml.as_bytes()).and_then(|_| file.flush()) {
            let _ = writeln!(err, "iceprobe: error: --junit {}: {e}", path.display());
            code = code.max(1);
        }
    }
    code
}

/// A streamed event whose last one carries a report that `--expect`, `--junit` and `--quiet`
/// act on.
trait Summarised {
    /// The report type.
    type Report: CiReport + ?Sized;
    /// The report, when this is the summary event.
    fn report_mut(&mut self) -> Option<&mut Self::Report>;
    /// The same, read-only.
    fn report(&self) -> Option<&Self::Report>;
}

macro_rules! summarised {
    ($event:ty, $report:ty, $pat:path) => {
        impl Summarised for $event {
            type Report = $report;
            fn report_mut(&mut self) -> Option<&mut $report> {
                match self {
                    $pat(r) => Some(&mut *r),
                    _ => None,
                }
            }
            fn report(&self) -> Option<&$report> {
                match self {
                    $pat(r) => Some(&*r),
                    _ => None,
                }
            }
        }
    };
}

summarised!(Event, crate::model::GatherReport, Event::Summary);
summarised!(
    CheckEvent,
    crate::model::check::CheckReport,
    CheckEvent::Summary
);
summarised!(NatEvent, crate::model::nat::NatReport, NatEvent::Summary);

/// [`render_until_done`] for the commands with CI flags: the summary gets the expectations and
/// the JUnit file; `--quiet` replaces the output with the one-line verdict.
#[allow(clippy::too_many_arguments)]
async fn stream_ci<E: Summarised>(
    rx: mpsc::UnboundedReceiver<E>,
    task: tokio::task::JoinHandle<i32>,
    interrupted: watch::Receiver<bool>,
    out: &mut dyn Write,
    err: &mut dyn Write,
    ci: &mut CiConfig,
    table: bool,
    mut render: impl FnMut(&E, &mut dyn Write) -> io::Result<()>,
) -> i32 {
    let quiet = ci.quiet;
    render_until_done(
        rx,
        task,
        interrupted,
        out,
        table && !quiet,
        |ev| ev.report_mut().map(|r| finish_report(r, ci, err)),
        |ev, w| match (quiet, ev.report()) {
            (true, Some(r)) => render_quiet(r, w),
            (true, None) => Ok(()),
            (false, _) => render(ev, w),
        },
    )
    .await
}

/// Run a gather and stream its events to the renderer.
pub async fn gather_and_render(
    cfg: GatherConfig,
    output: &OutputArgs,
    mut ci: CiConfig,
    out: &mut dyn Write,
    err: &mut dyn Write,
    style: Style,
    cancel: watch::Receiver<bool>,
) -> i32 {
    let (tx, rx) = mpsc::unbounded_channel::<Event>();
    let interrupted = cancel.clone();
    let task = tokio::spawn(async move { gather(cfg, tx, cancel).await.verdict.exit_code });
    let format = output.format;
    stream_ci(
        rx,
        task,
        interrupted,
        out,
        err,
        &mut ci,
        format == Format::Table,
        |ev, w| render_event(format, ev, w, &style),
    )
    .await
}

async fn run_check(
    a: &CheckArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
    style: Style,
    cancel: watch::Receiver<bool>,
) -> i32 {
    let cfg = match check_config(a).await {
        Ok(c) => c,
        Err(e) => return usage(err, e),
    };
    let mut ci = match ci_config(&a.ci, Scope::Check) {
        Ok(c) => c,
        Err(e) => return usage(err, e),
    };
    if let Some(every) = a.every {
        return check_every(cfg, every, ci, out, style, cancel).await;
    }
    let (tx, rx) = mpsc::unbounded_channel::<CheckEvent>();
    let interrupted = cancel.clone();
    let task = tokio::spawn(async move { check(cfg, tx, cancel).await.verdict.exit_code });
    let format = a.output.format;
    stream_ci(
        rx,
        task,
        interrupted,
        out,
        err,
        &mut ci,
        format == Format::Table,
        |ev, w| render_check_event(format, ev, w, &style),
    )
    .await
}

/// `check --every`: the same check on a fixed schedule, one NDJSON stream (or one quiet line
/// per run), until Ctrl-C or SIGTERM. Expectations are evaluated on every run.
async fn check_every(
    cfg: crate::check::run::CheckConfig,
    every: std::time::Duration,
    ci: CiConfig,
    out: &mut dyn Write,
    style: Style,
    cancel: watch::Receiver<bool>,
) -> i32 {
    let mut stop = cancel.clone();
    let mut schedule = tokio::time::interval(every);
    schedule.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // The first tick is immediate; later ones keep the period from run start to run start.
        tokio::select! {
            _ = schedule.tick() => {}
            _ = crate::net::driver::cancelled(&mut stop) => return stopped_code(),
        }
        let (tx, rx) = mpsc::unbounded_channel::<CheckEvent>();
        let run = cfg.clone();
        let c = cancel.clone();
        let task = tokio::spawn(async move { check(run, tx, c).await.verdict.exit_code });
        // Each run's verdict is in its summary; only a stop signal ends the schedule.
        let _verdict = render_until_done(
            rx,
            task,
            cancel.clone(),
            out,
            false,
            |ev| match ev {
                CheckEvent::Summary(r) => Some(apply_expectations(r.as_mut(), &ci.assertions)),
                _ => None,
            },
            |ev, w| match (ci.quiet, ev) {
                (true, CheckEvent::Summary(r)) => render_quiet(r.as_ref(), w),
                (true, _) => Ok(()),
                (false, _) => render_check_event(Format::Ndjson, ev, w, &style),
            },
        )
        .await;
        if *cancel.borrow() {
            return stopped_code();
        }
    }
}

async fn run_serve(a: &ServeArgs, err: &mut dyn Write, cancel: watch::Receiver<bool>) -> i32 {
    if !(1..=1024).contains(&a.max_concurrent) {
        let _ = writeln!(
            err,
            "iceprobe: error: --max-concurrent: must be from 1 to 1024"
        );
        return EXIT_USAGE;
    }
    let modules = match crate::serve::config::load(a.config.as_deref()) {
        Ok(m) => m,
        Err(e) => {
            let _ = writeln!(err, "iceprobe: error: {e}");
            return EXIT_USAGE;
        }
    };
    let names: Vec<&str> = modules.keys().map(String::as_str).collect();
    let _ = writeln!(
        err,
        "iceprobe: serving on http://{}/probe (modules: {})",
        a.listen,
        names.join(", ")
    );
    let exporter = crate::serve::http::Exporter::new(modules, a.max_concurrent, cancel.clone());
    // SIGINT or SIGTERM: stop accepting, cancel the probes in flight (they release their
    // allocations and answer), then exit 0: a service manager's stop is a clean stop.
    let mut stop = cancel;
    let shutdown = async move { crate::net::driver::cancelled(&mut stop).await };
    match crate::serve::http::serve(a.listen, exporter, shutdown).await {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(err, "iceprobe: error: cannot serve on {}: {e}", a.listen);
            EXIT_USAGE
        }
    }
}

async fn run_nat(
    a: &NatArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
    style: Style,
    cancel: watch::Receiver<bool>,
) -> i32 {
    let cfg = match nat_config(a).await {
        Ok(c) => c,
        Err(e) => return usage(err, e),
    };
    let mut ci = match ci_config(&a.ci, Scope::Nat) {
        Ok(c) => c,
        Err(e) => return usage(err, e),
    };
    let (tx, rx) = mpsc::unbounded_channel::<NatEvent>();
    let interrupted = cancel.clone();
    let task = tokio::spawn(async move {
        crate::nat::run::run(cfg, tx, cancel)
            .await
            .verdict
            .exit_code
    });
    let format = a.output.format;
    stream_ci(
        rx,
        task,
        interrupted,
        out,
        err,
        &mut ci,
        format == Format::Table,
        |ev, w| render_nat_event(format, ev, w, &style),
    )
    .await
}

async fn run_connect(
    a: &ConnectArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
    style: Style,
    cancel: watch::Receiver<bool>,
) -> i32 {
    let cfg = match connect_config(a).await {
        Ok(c) => c,
        Err(e) => return usage(err, e),
    };
    let (tx, rx) = mpsc::unbounded_channel::<ConnectEvent>();
    let interrupted = cancel.clone();
    let task = tokio::spawn(async move {
        crate::connect::run::run(cfg, tx, cancel)
            .await
            .verdict
            .exit_code
    });
    let format = a.output.format;
    render_until_done(
        rx,
        task,
        interrupted,
        out,
        format == Format::Table,
        // Signaling and set-up failures are errors of the run itself: say them on stderr too,
        // so they are seen whatever --format prints.
        |ev| {
            if let ConnectEvent::Summary(r) = ev {
                if let Some(c) = r
                    .cause
                    .as_ref()
                    .filter(|c| c.code == "signaling" || c.code == "peer-connection")
                {
                    let _ = writeln!(err, "iceprobe: error: {}", c.text);
                }
            }
            None
        },
        |ev, w| render_connect_event(format, ev, w, &style),
    )
    .await
}

async fn run_demo(
    a: &DemoArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
    style: Style,
    cancel: watch::Receiver<bool>,
) -> i32 {
    let timeout = match crate::cli::config::demo_timeout(a.timeout) {
        Ok(t) => t,
        Err(e) => return usage(err, e),
    };
    match crate::demo::run::demo_gather(timeout).await {
        Ok((server, cfg, _ca)) => {
            if a.output.format == Format::Table {
                let _ = writeln!(
                    out,
                    "iceprobe demo: in-process STUN/TURN server on {} (udp), {} (tcp), {} (tls); user {:?}, realm {:?}",
                    server.udp, server.tcp, server.tls, server.username, server.realm
                );
            }
            let code =
                gather_and_render(cfg, &a.output, CiConfig::default(), out, err, style, cancel)
                    .await;
            server.shutdown().await;
            code
        }
        Err(e) => {
            let _ = writeln!(err, "iceprobe: demo: cannot start the local server: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_signals_map_to_the_shell_exit_codes() {
        // 128 + the signal number: SIGINT 2, SIGTERM 15.
        for (sig, code) in [(StopSignal::Interrupt, 130), (StopSignal::Terminate, 143)] {
            assert_eq!(sig.exit_code(), code, "{sig:?}");
        }
    }
}
