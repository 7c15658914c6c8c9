//! Running a parsed command: wires config, the probe and the renderer together, and decides the
//! exit code. `main` only parses and calls [`run`].

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use tokio::sync::{mpsc, watch};

use crate::check::config::CheckSettings;
use crate::check::run::check;
use crate::cli::args::{CheckArgs, DemoArgs, ServeArgs};
use crate::cli::{
    check_settings, ci_config, connect_config, gather_config, nat_config, CiConfig, Cli, Command,
    UsageError,
};
use crate::expect::{apply_expectations, Evaluate, Scope};
use crate::gather::{gather, GatherConfig};
use crate::model::check::CheckEvent;
use crate::model::connect::{ConnectBody, ConnectEvent};
use crate::model::gather::GatherEvent;
use crate::model::nat::NatEvent;
use crate::model::{Body, Report, Summarised};
use crate::progress::Spinner;
use crate::render::ci::{junit, render_quiet, JunitCases};
use crate::render::{Format, Render, Style};

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
    let (cancel_tx, cancel) = watch::channel(false);
    // The handlers are installed before any probe starts, so SIGINT or SIGTERM never kills the
    // process with an allocation left on the server.
    let signalled = stop_signal();
    tokio::spawn(async move {
        if let Some(sig) = signalled.await {
            STOP_CODE.store(sig.exit_code(), Ordering::Relaxed);
            let _ = cancel_tx.send(true);
        }
    });
    match command(cli.command, stdout, stderr, style, cancel).await {
        Ok(code) => code,
        Err(e) => usage(stderr, e),
    }
}

/// Run one command. Every streaming command goes through [`stream`]; a flag that does not
/// validate is an `Err` (exit 2).
async fn command(
    command: Command,
    out: &mut dyn Write,
    err: &mut dyn Write,
    style: Style,
    cancel: watch::Receiver<bool>,
) -> Result<i32, UsageError> {
    Ok(match command {
        Command::Gather(a) => {
            let cfg = gather_config(&a).await?;
            let mut ci = ci_config(&a.ci, Scope::Gather)?;
            let view = View::new(a.output.format, style, ci.quiet);
            let run = |tx, c| gather(cfg, tx, c);
            stream::<GatherEvent, _, _>(run, cancel, out, view, |r| finish(r, &mut ci, err)).await
        }
        Command::Demo(a) => run_demo(&a, out, err, style, cancel).await?,
        Command::Check(a) => run_check(&a, out, err, style, cancel).await?,
        Command::Nat(a) => {
            let cfg = nat_config(&a).await?;
            let mut ci = ci_config(&a.ci, Scope::Nat)?;
            let view = View::new(a.output.format, style, ci.quiet);
            let run = |tx, c| crate::nat::run::run(cfg, tx, c);
            stream::<NatEvent, _, _>(run, cancel, out, view, |r| finish(r, &mut ci, err)).await
        }
        Command::Connect(a) => {
            let cfg = connect_config(&a).await?;
            let view = View::new(a.output.format, style, false);
            let run = |tx, c| crate::connect::run::run(cfg, tx, c);
            stream::<ConnectEvent, _, _>(run, cancel, out, view, |r| setup_failure(r, err)).await
        }
        Command::Serve(a) => run_serve(&a, err, cancel).await,
        Command::Completions(a) => generated(crate::cli::generate::completions(a.shell, out)),
        Command::Man(a) => generated(crate::cli::generate::man(a.subcommand.as_deref(), out)),
    })
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

/// How a run is shown: the format, the style, and `--quiet` (only the verdict line).
#[derive(Clone, Copy)]
struct View {
    format: Format,
    style: Style,
    quiet: bool,
}

impl View {
    fn new(format: Format, style: Style, quiet: bool) -> View {
        View {
            format,
            style,
            quiet,
        }
    }

    /// Render one event: `--quiet` shows only the summary's verdict line.
    fn render<E: Render + Summarised>(&self, ev: &E, w: &mut dyn Write) -> io::Result<()> {
        match (self.quiet, ev.summary()) {
            (true, Some(r)) => render_quiet(r, w),
            (true, None) => Ok(()),
            (false, _) => ev.render(self.format, w, &self.style),
        }
    }
}

/// The one runner of every streaming command: spawn the probe (`run`, which sends events and
/// returns the report), render each event as it arrives, let `finish` amend the summary before
/// it is rendered (`--expect`, `--junit`; its exit code wins), and map an interruption or a
/// failed write to the exit code. Rendering stops quietly on a broken pipe (e.g. `| head`), but
/// the probes still finish and release their allocations.
async fn stream<E, R, Fut>(
    run: R,
    cancel: watch::Receiver<bool>,
    out: &mut dyn Write,
    view: View,
    mut finish: impl FnMut(&mut Report<E::Body>) -> i32,
) -> i32
where
    E: Render + Summarised + Send + 'static,
    E::Body: Send,
    R: FnOnce(mpsc::UnboundedSender<E>, watch::Receiver<bool>) -> Fut,
    Fut: std::future::Future<Output = Report<E::Body>> + Send + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<E>();
    let probe = run(tx, cancel.clone());
    let task = tokio::spawn(async move { probe.await.verdict.exit_code });
    // Progress on stderr only for the human table, and only when stderr is a terminal.
    let human = view.format == Format::Table && !view.quiet;
    let spinner = Spinner::start(human && PROGRESS.load(Ordering::Relaxed), "running");
    let mut writable = true;
    let mut write_failed = false;
    let mut amended = None;
    // Each event is rendered whole into memory first: stdout is line-buffered, and a report of
    // 1,000 rows written straight to it would cost one write(2) per line.
    let mut buf = Vec::new();
    while let Some(mut ev) = rx.recv().await {
        if let Some(r) = ev.summary_mut() {
            amended = Some(finish(r));
        }
        if writable {
            let _quiet = spinner.as_ref().map(Spinner::pause);
            buf.clear();
            let written = view
                .render(&ev, &mut buf)
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
    if *cancel.borrow() {
        return stopped_code();
    }
    code
}

/// The end of a run for CI: evaluate the assertions into the report (amending its verdict) and
/// write the JUnit file. Returns the exit code; a JUnit file that cannot be written makes it 1.
fn finish<B: Body + Evaluate + JunitCases>(
    report: &mut Report<B>,
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

/// `connect`: signaling and set-up failures are errors of the run itself; they are said on
/// stderr too, so they are seen whatever `--format` prints.
fn setup_failure(report: &mut Report<ConnectBody>, err: &mut dyn Write) -> i32 {
    if let Some(c) = report.cause.as_ref().filter(|c| c.code.is_setup()) {
        let _ = writeln!(err, "iceprobe: error: {}", c.text);
    }
    report.verdict.exit_code
}

/// Run a gather and stream its events to the renderer.
pub async fn gather_and_render(
    cfg: GatherConfig,
    view_format: Format,
    out: &mut dyn Write,
    err: &mut dyn Write,
    style: Style,
    cancel: watch::Receiver<bool>,
) -> i32 {
    let mut ci = CiConfig::default();
    let view = View::new(view_format, style, false);
    let run = |tx, c| gather(cfg, tx, c);
    stream::<GatherEvent, _, _>(run, cancel, out, view, |r| finish(r, &mut ci, err)).await
}

async fn run_check(
    a: &CheckArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
    style: Style,
    cancel: watch::Receiver<bool>,
) -> Result<i32, UsageError> {
    let settings = check_settings(a).await?;
    let mut ci = ci_config(&a.ci, Scope::Check)?;
    if let Some(every) = a.every {
        return Ok(check_every(settings, every, ci, out, style, cancel).await);
    }
    let cfg = settings.config(crate::net::unix_now());
    let view = View::new(a.output.format, style, ci.quiet);
    let run = |tx, c| check(cfg, tx, c);
    Ok(stream::<CheckEvent, _, _>(run, cancel, out, view, |r| finish(r, &mut ci, err)).await)
}

/// `check --every`: the same check on a fixed schedule, one NDJSON stream (or one quiet line
/// per run), until Ctrl-C or SIGTERM. Expectations are evaluated on every run.
async fn check_every(
    settings: CheckSettings,
    every: std::time::Duration,
    ci: CiConfig,
    out: &mut dyn Write,
    style: Style,
    cancel: watch::Receiver<bool>,
) -> i32 {
    let mut stop = cancel.clone();
    let mut schedule = tokio::time::interval(every);
    schedule.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let view = View::new(Format::Ndjson, style, ci.quiet);
    loop {
        // The first tick is immediate; later ones keep the period from run start to run start.
        tokio::select! {
            _ = schedule.tick() => {}
            _ = crate::net::driver::cancelled(&mut stop) => return stopped_code(),
        }
        // Built per run, as serve does per scrape: REST credentials minted at start-up would
        // expire after --turn-ttl, and an expired REST username is judged against this run.
        let run = settings.config(crate::net::unix_now());
        let probe = |tx, c| check(run, tx, c);
        // Each run's verdict is in its summary; only a stop signal ends the schedule.
        let _verdict = stream::<CheckEvent, _, _>(probe, cancel.clone(), out, view, |r| {
            apply_expectations(r, &ci.assertions)
        })
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

async fn run_demo(
    a: &DemoArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
    style: Style,
    cancel: watch::Receiver<bool>,
) -> Result<i32, UsageError> {
    let timeout = crate::cli::config::demo_timeout(a.timeout)?;
    Ok(match crate::demo::run::demo_gather(timeout).await {
        Ok((server, cfg, _ca)) => {
            if a.output.format == Format::Table {
                let _ = writeln!(
                    out,
                    "iceprobe demo: in-process STUN/TURN server on {} (udp), {} (tcp), {} (tls); user {:?}, realm {:?}",
                    server.udp, server.tcp, server.tls, server.username, server.realm
                );
            }
            let code = gather_and_render(cfg, a.output.format, out, err, style, cancel).await;
            server.shutdown().await;
            code
        }
        Err(e) => {
            let _ = writeln!(err, "iceprobe: demo: cannot start the local server: {e}");
            1
        }
    })
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

    /// `check` flags and a serve module that say the same thing build the same config: the
    /// two front ends share one builder, and this keeps them from drifting apart again.
    #[tokio::test]
    async fn check_flags_and_a_serve_module_build_the_same_config() {
        use clap::Parser;
        const NOW: u64 = 1_700_000_000;
        let target = "turn:turn.example.org?transport=tcp";
        // (what, check flags, the module's fields)
        let cases: &[(&str, &[&str], &str)] = &[
            ("the defaults", &[], "{}"),
            (
                "long-term credentials, IPv6 only, every transport",
                &[
                    "--username",
                    "u",
                    "--credential",
                    "p",
                    "-6",
                    "--all-transports",
                    "--timeout",
                    "1s",
                ],
                r#"{"username":"u","credential":"p","families":"ipv6","all_transports":true,"timeout":"1s"}"#,
            ),
            (
                "REST credentials, IPv4 only, SRV, a short RTO",
                &[
                    "--username",
                    "probe",
                    "--turn-secret",
                    "s3",
                    "--turn-ttl",
                    "10m",
                    "-4",
                    "--srv",
                    "--rto",
                    "250ms",
                ],
                r#"{"username":"probe","turn_secret":"s3","turn_ttl":"10m","families":"ipv4","srv":true,"rto":"250ms"}"#,
            ),
            (
                "TLS options and a concurrency",
                &[
                    "--insecure",
                    "--tls-name",
                    "turn.example.org",
                    "--ca",
                    "/etc/ca.pem",
                    "--concurrency",
                    "8",
                    "--timeout",
                    "30s",
                ],
                r#"{"insecure":true,"tls_name":"turn.example.org","ca":"/etc/ca.pem","concurrency":8,"timeout":"30s"}"#,
            ),
        ];
        for (name, flags, module) in cases {
            let argv = ["iceprobe", "check"]
                .iter()
                .chain(flags.iter())
                .chain([&target]);
            let Command::Check(args) = Cli::try_parse_from(argv).unwrap().command else {
                panic!("{name}: not a check");
            };
            let from_flags = check_settings(&args).await.unwrap().config(NOW);
            let modules = crate::serve::config::parse(
                &format!(r#"{{"modules":{{"m":{module}}}}}"#),
                "serve.json",
            )
            .unwrap();
            let m = &modules["m"];
            let from_module = m.settings(target, m.check.timeout).unwrap().config(NOW);
            assert_eq!(from_flags, from_module, "{name}");
            // Credentials are compared by value (`Debug` redacts them, `==` does not).
            let turn = &from_flags.servers[0];
            assert_eq!(
                turn.username.is_some(),
                flags.contains(&"--username"),
                "{name}"
            );
        }
    }
}
