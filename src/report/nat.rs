//! The `nat` report: per address family, what was observed and what the pure classifier
//! concluded (`nat::classify`). Every conclusion is a [`Determination`]: known with its
//! evidence, inconclusive with the reason, or not checked with the reason. Unknown is never
//! reported as false.
//!
//! [`Determination`]: crate::nat::classify::Determination

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::nat::classify::{exit_code, Determination, NatVerdict};
use crate::nat::observe::{Exchange, Observations};

use super::Verdict;

/// Version of the nat report (same envelope and conventions as gather and check).
pub const NAT_SCHEMA_VERSION: u32 = 1;

/// One address family: the raw observations and the verdict drawn from them. Families are
/// never mixed (RFC 4787 behaviour is per family; a v4 mapping says nothing about v6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FamilyResult {
    /// What was sent where and what came back.
    pub observations: Observations,
    /// What the classifier concluded.
    pub verdict: NatVerdict,
}

/// The whole `nat` report (`--format json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatReport {
    /// [`NAT_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `nat`.
    pub command: String,
    /// iceprobe's version.
    pub iceprobe_version: String,
    /// Wall time, in milliseconds.
    pub duration_ms: f64,
    /// One entry per address family probed.
    pub families: Vec<FamilyResult>,
    /// `--expect` results in the order given (absent from JSON without `--expect`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expectations: Vec<crate::expect::AssertionResult>,
    /// The verdict and exit code.
    pub verdict: Verdict,
}

/// What a nat run is about to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatStart {
    /// Server URLs, without credentials.
    pub servers: Vec<String>,
    /// Address families probed: `ipv4`, `ipv6`.
    pub families: Vec<String>,
    /// Deadline of each Binding transaction, in milliseconds.
    pub timeout_ms: u64,
    /// The idle lifetime search runs (`--lifetime`).
    pub lifetime: bool,
}

/// Which test an exchange belongs to (RFC 5780 §4.3 mapping, §4.4 filtering, or the
/// multi-server comparison).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TestLabel {
    /// Filtering test I: plain Binding to the primary address, on a fresh socket.
    #[serde(rename = "filtering-I")]
    FilteringI,
    /// Filtering test II: CHANGE-REQUEST change IP and port.
    #[serde(rename = "filtering-II")]
    FilteringII,
    /// Filtering test III: CHANGE-REQUEST change port.
    #[serde(rename = "filtering-III")]
    FilteringIII,
    /// Mapping test I: Binding to the primary address, on another fresh socket.
    #[serde(rename = "mapping-I")]
    MappingI,
    /// Mapping test II: Binding to OTHER-ADDRESS's IP with the primary port.
    #[serde(rename = "mapping-II")]
    MappingII,
    /// Mapping test III: Binding to OTHER-ADDRESS.
    #[serde(rename = "mapping-III")]
    MappingIII,
    /// Multi-server comparison: one Binding per server from one socket.
    #[serde(rename = "multi")]
    Multi,
}

impl TestLabel {
    /// Every label, in the order the tests run.
    pub const ALL: [TestLabel; 7] = [
        TestLabel::FilteringI,
        TestLabel::FilteringII,
        TestLabel::FilteringIII,
        TestLabel::MappingI,
        TestLabel::MappingII,
        TestLabel::MappingIII,
        TestLabel::Multi,
    ];
}

impl fmt::Display for TestLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TestLabel::FilteringI => "filtering-I",
            TestLabel::FilteringII => "filtering-II",
            TestLabel::FilteringIII => "filtering-III",
            TestLabel::MappingI => "mapping-I",
            TestLabel::MappingII => "mapping-II",
            TestLabel::MappingIII => "mapping-III",
            TestLabel::Multi => "multi",
        })
    }
}

/// One exchange as it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatExchange {
    /// `ipv4` or `ipv6`.
    pub family: String,
    /// The server URL.
    pub server: String,
    /// Which test.
    pub test: TestLabel,
    /// Milliseconds since the run started, when the exchange ended.
    pub elapsed_ms: f64,
    /// What was sent and what came back.
    pub exchange: Exchange,
}

/// One streamed `nat` event (`--format ndjson`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    content = "data",
    rename_all = "kebab-case",
    deny_unknown_fields
)]
pub enum NatEvent {
    /// The run started.
    Start(NatStart),
    /// A Binding exchange ended (answered, error, or no answer).
    Exchange(Box<NatExchange>),
    /// The run ended; the full report.
    Summary(Box<NatReport>),
}

/// How a determination reads in one word or phrase.
fn short<T: fmt::Display>(d: &Determination<T>) -> String {
    match d {
        Determination::Known { value, .. } => value.to_string(),
        Determination::Inconclusive { .. } => "inconclusive".into(),
        Determination::NotChecked { .. } => "not checked".into(),
    }
}

/// One family's summary: the classic name when known, else the RFC 4787 terms.
pub fn family_summary(v: &NatVerdict) -> String {
    let head = match v.classic_name.value() {
        Some(name) => name.to_string(),
        None => format!(
            "mapping {}, filtering {}",
            short(&v.mapping),
            short(&v.filtering)
        ),
    };
    let level = serde_json::to_value(v.confidence.level)
        .ok()
        .and_then(|l| l.as_str().map(String::from))
        .unwrap_or_default();
    format!("{}: {head} (confidence {level})", v.family)
}

/// The run's verdict (pure): exit 0 only when discovery completed for every family probed
/// ([`exit_code`]); 1 when some family could not be determined or nothing was probed.
pub fn nat_verdict(families: &[FamilyResult]) -> Verdict {
    if families.is_empty() {
        return Verdict {
            ok: false,
            exit_code: 1,
            summary: "could not determine: no address family was probed".into(),
        };
    }
    let code = families
        .iter()
        .map(|f| exit_code(&f.verdict))
        .max()
        .unwrap_or(1);
    let parts: Vec<String> = families
        .iter()
        .map(|f| family_summary(&f.verdict))
        .collect();
    Verdict {
        ok: code == 0,
        exit_code: code,
        summary: if code == 0 {
            parts.join("; ")
        } else {
            format!("could not determine: {}", parts.join("; "))
        },
    }
}
