//! `iceprobe check`: the TURN/STUN deployment doctor — every server × address × transport,
//! stage by stage.
//!
//! `config` builds the one [`config::CheckConfig`] from the inputs `check` flags and `serve`
//! modules share (pure); `plan` (pure) says what to probe; `run` resolves names and runs the rows, at most
//! `--concurrency` at once; each row is the sans-IO machine in `row`, driven over real links by
//! `probe`; `stages` builds and amends rows (pure); `verdict` decides warnings, what to fix and
//! the exit code (pure).

pub mod config;
#[cfg(test)]
mod critical_path;
pub mod plan;
pub mod probe;
pub mod row;
pub mod run;
mod stages;
pub mod verdict;
