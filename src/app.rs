//! Running a parsed command: wires config, the probe and the renderer together, and decides the
//! exit code. `main` only parses and calls [`run`].

use std::io::{self, Write};

use tokio::sync::{mpsc, watch};

use crate::check::run::check;
use crate::cli::args::{CheckArgs, ConnectArgs, DemoArgs, GatherArgs, NatArgs, OutputArgs};
use crate::cli::{check_config, connect_config, gather_config, nat_config, Cli, Command};
use crate::gather::{gather, GatherConfig};
use crate::report::check::CheckEvent;
use crate::report::connect::ConnectEvent;
use crate::report::nat::NatEvent;
use crate::report::render::{render_event, Format, Style};
use crate::report::render_check::render_check_event;
use crate::report::render_connect::render_connect_event;
use crate::report::render_nat::render_nat_event;
use crate::report::Event;

/// Exit code: usage or configuration error.
pub const EXIT_USAGE: i32 = 2;
/// Exit code: interrupted by Ctrl-C (128 + SIGINT).
pub const EXIT_INTERRUPTED: i32 = 130;

/// Run a command; `stdout` receives the report, `stderr` usage errors. Returns the exit code.
pub async fn run(cli: Cli, stdout: &mut dyn Write, stderr: &mut dyn Write, style: Style) -> i32 {
    let (cancel_tx, cancel_rx) = watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = cancel_tx.send(true);
        }
    });
    match cli.command {
        Command::Gather(a) => run_gather(&a, stdout, stderr, style, cancel_rx).await,
        Command::Demo(a) => run_demo(&a, stdout, stderr, style, cancel_rx).await,
        Command::Check(a) => run_check(&a, stdout, stderr, style, cancel_rx).await,
        Command::Nat(a) => run_nat(&a, stdout, stderr, style, cancel_rx).await,
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
        Err(e) => {
            let _ = writeln!(err, "iceprobe: error: {e}");
            return EXIT_USAGE;
        }
    };
    gather_and_render(cfg, &a.output, out, style, cancel).await
}

/// Render events as they arrive until the probe task ends, then map its verdict (or an
/// interruption, or a failed write) to the exit code. Rendering stops quietly on a broken pipe
/// (e.g. `| head`), but the probes still finish and release their allocations.
async fn render_until_done<E>(
    mut rx: mpsc::UnboundedReceiver<E>,
    task: tokio::task::JoinHandle<i32>,
    interrupted: watch::Receiver<bool>,
    out: &mut dyn Write,
    mut render: impl FnMut(&E, &mut dyn Write) -> io::Result<()>,
) -> i32 {
    let mut writable = true;
    let mut write_failed = false;
    while let Some(ev) = rx.recv().await {
        if writable {
            if let Err(e) = render(&ev, out).and_then(|_| out.flush()) {
                writable = false;
                write_failed = e.kind() != io::ErrorKind::BrokenPipe;
            }
        }
    }
    let code = match task.await {
        Ok(code) if !write_failed => code,
        _ => 1,
    };
    if *interrupted.borrow() {
        return EXIT_INTERRUPTED;
    }
    code
}

/// Run a gather and stream its events to the renderer.
pub async fn gather_and_render(
    cfg: GatherConfig,
    output: &OutputArgs,
    out: &mut dyn Write,
    style: Style,
    cancel: watch::Receiver<bool>,
) -> i32 {
    let (tx, rx) = mpsc::unbounded_channel::<Event>();
    let interrupted = cancel.clone();
    let task = tokio::spawn(async move { gather(cfg, tx, cancel).await.verdict.exit_code });
    let format = output.format;
    render_until_done(rx, task, interrupted, out, |ev, w| {
        render_event(format, ev, w, &style)
    })
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
        Err(e) => {
            let _ = writeln!(err, "iceprobe: error: {e}");
            return EXIT_USAGE;
        }
    };
    let (tx, rx) = mpsc::unbounded_channel::<CheckEvent>();
    let interrupted = cancel.clone();
    let task = tokio::spawn(async move { check(cfg, tx, cancel).await.verdict.exit_code });
    let format = a.output.format;
    render_until_done(rx, task, interrupted, out, |ev, w| {
        render_check_event(format, ev, w, &style)
    })
    .await
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
        Err(e) => {
            let _ = writeln!(err, "iceprobe: error: {e}");
            return EXIT_USAGE;
        }
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
    render_until_done(rx, task, interrupted, out, |ev, w| {
        render_nat_event(format, ev, w, &style)
    })
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
        Err(e) => {
            let _ = writeln!(err, "iceprobe: error: {e}");
            return EXIT_USAGE;
        }
    };
    let (tx, rx) = mpsc::unbounded_channel::<ConnectEvent>();
    let interrupted = cancel.clone();
    let task = tokio::spawn(async move {
        let report = crate::connect::run::run(cfg, tx, cancel).await;
        if let Some(c) = report
            .cause
            .as_ref()
            .filter(|c| c.code == "signaling" || c.code == "peer-connection")
        {
            eprintln!("iceprobe: error: {}", c.text);
        }
        report.verdict.exit_code
    });
    let format = a.output.format;
    render_until_done(rx, task, interrupted, out, |ev, w| {
        render_connect_event(format, ev, w, &style)
    })
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
        Err(e) => {
            let _ = writeln!(err, "iceprobe: error: {e}");
            return EXIT_USAGE;
        }
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
            let code = gather_and_render(cfg, &a.output, out, style, cancel).await;
            server.shutdown().await;
            code
        }
        Err(e) => {
            let _ = writeln!(err, "iceprobe: demo: cannot start the local server: {e}");
            1
        }
    }
}
