//! The `iceprobe` binary: parse, run, map the outcome to a documented exit code.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use iceprobe::app;
use iceprobe::cli::Cli;
use iceprobe::render::Style;

fn main() -> ExitCode {
    // rustls and reqwest use the process-wide provider: ring, never aws-lc (DEPENDENCIES.md).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // --help and --version are not errors; everything else is a usage error (exit 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                app::EXIT_USAGE as u8
            } else {
                0
            });
        }
    };
    // Raise the soft limit on open files to the hard one, as Go's runtime does: a check of a
    // fleet over TCP/TLS needs two descriptors per row in flight, and the usual soft limit of
    // 1,024 is a relic of select(2), which nothing here uses. Failure leaves the limit as it was.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let stdout = std::io::stdout();
    let color = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let style = Style {
        color,
        ..Style::default()
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("iceprobe: error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(async {
        let mut out = stdout.lock();
        let mut err = std::io::stderr();
        // Progress only where a person watches stderr.
        let progress = std::io::stderr().is_terminal();
        app::run(cli, &mut out, &mut err, style, progress).await
    });
    // Do not wait for stray blocking tasks (e.g. a DNS lookup past its deadline).
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
