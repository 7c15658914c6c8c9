//! `iceprobe nat`: NAT behaviour discovery (RFC 5780, RFC 4787 terms) that says how sure it is.
//!
//! `sequence` is the RFC 5780 test sequence as a sans-IO machine; `discover` drives it over real
//! sockets and records [`Observations`](crate::model::nat::Observations); `classify` turns them
//! into verdicts as a pure function.

pub mod classify;
pub mod discover;
#[cfg(test)]
mod golden_tests;
pub mod run;
pub mod sequence;
#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests pick an arbitrary t0
mod sequence_tests;
