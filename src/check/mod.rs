//! `iceprobe check`: the pure parts around the network driver. [`plan`] decides what to probe;
//! [`verdict`] turns finished rows into warnings, verdicts and the "what to fix" list.

pub mod plan;
pub mod verdict;
