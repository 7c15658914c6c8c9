//! `--expect` results as they stand in a report: one [`AssertionResult`] per assertion.

use serde::{Deserialize, Serialize};

/// What one assertion gave on one report. Part of the JSON reports (`expectations`) when
/// `--expect` is used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertionResult {
    /// The assertion in canonical form (lower case, no spaces), e.g. `rtt<150ms`.
    pub expression: String,
    /// Whether it held. An assertion on something not measured does not hold.
    pub passed: bool,
    /// What was observed, in words; starts with `not measured` when nothing was.
    pub observed: String,
}

/// Prefix of `observed` when the thing asserted on was not measured.
pub const NOT_MEASURED: &str = "not measured";
