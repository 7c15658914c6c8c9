//! `iceprobe nat`: NAT behaviour discovery (RFC 5780, RFC 4787 terms) that says how sure it is.
//!
//! `discover` runs the tests and records [`Observations`](crate::model::nat::Observations); `classify` turns them into
//! verdicts as a pure function.

pub mod classify;
pub mod discover;
#[cfg(test)]
mod golden_tests;
pub mod run;
#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests pick an arbitrary t0
mod sequence_tests;
