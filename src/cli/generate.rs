//! `iceprobe completions SHELL` and `iceprobe man`: generated from the clap definition, so they
//! never drift from the flags. Pure: they write to an injected writer; snapshot-tested.

use std::io::{self, Write};

use clap::CommandFactory;
use clap_complete::Shell;

use super::args::Cli;

/// Write the completion script for `shell`.
pub fn completions(shell: Shell, out: &mut dyn Write) -> io::Result<()> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "iceprobe", &mut buf);
    out.write_all(&buf)
}

/// Write the man page (roff) of `iceprobe`, or of one subcommand (`iceprobe-check(1)`).
pub fn man(subcommand: Option<&str>, out: &mut dyn Write) -> io::Result<()> {
    let mut cmd = Cli::command();
    cmd.build();
    let page = match subcommand {
        None => cmd,
        Some(name) => {
            let sub = cmd
                .get_subcommands()
                .find(|s| s.get_name() == name)
                .cloned()
                .ok_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, format!("no subcommand {name:?}"))
                })?;
            sub.display_name(format!("iceprobe-{name}"))
        }
    };
    clap_mangen::Man::new(page).render(out)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// Compare with `fixtures/golden/<name>`; `UPDATE_GOLDEN=1` rewrites it instead.
    fn golden(name: &str, got: &[u8]) {
        let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "fixtures", "golden", name]
            .iter()
            .collect();
        if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
            std::fs::write(&path, got).unwrap();
            return;
        }
        let want = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_GOLDEN=1", path.display()));
        assert!(
            want == got,
            "{} differs from the clap definition; rerun with UPDATE_GOLDEN=1 and review the diff",
            path.display()
        );
    }

    #[test]
    fn completions_are_stable() {
        for (shell, file) in [
            (Shell::Bash, "completions.bash"),
            (Shell::Zsh, "completions.zsh"),
            (Shell::Fish, "completions.fish"),
            (Shell::PowerShell, "completions.ps1"),
            (Shell::Elvish, "completions.elv"),
        ] {
            let mut out = Vec::new();
            completions(shell, &mut out).unwrap();
            let text = String::from_utf8(out.clone()).unwrap();
            assert!(text.contains("--expect"), "{file}");
            golden(file, &out);
        }
    }

    #[test]
    fn man_pages_are_stable() {
        let mut out = Vec::new();
        man(None, &mut out).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with(".ie \\n(.g .ds Aq"), "{}", &text[..80]);
        assert!(text.contains(".TH iceprobe 1"));
        golden("iceprobe.1", &out);
        let mut out = Vec::new();
        man(Some("check"), &mut out).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.contains(".TH iceprobe-check 1") && text.contains("expect"));
        golden("iceprobe-check.1", &out);
        assert!(man(Some("nope"), &mut Vec::new()).is_err());
    }
}
