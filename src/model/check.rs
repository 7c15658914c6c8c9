//! The `check` report: one row per server × address × transport, stage by stage.
//!
//! Each stage is a [`Stage`]: `ok` with its time and details, `failed` with phase, code, reason
//! and cause, or `not-checked` with the reason. Unknown is never reported as false.

use serde::{Deserialize, Serialize};

use crate::ice_url::{Host, Protocol, ServerUrl};

use super::tls::TlsInfo;
use super::Phase;

/// Version of the check report (shares the envelope with gather's schema).
pub const CHECK_SCHEMA_VERSION: u32 = 1;

/// Warn when the leaf certificate expires in fewer days than this (issue 3: "within 14 days").
pub const CERT_EXPIRY_WARN_DAYS: i64 = 14;

/// One stage's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Stage<T> {
    /// Passed.
    Ok {
        /// Time the stage took, in milliseconds.
        ms: f64,
        /// What it found.
        info: T,
    },
    /// Failed.
    Failed {
        /// Time until the failure, when known.
        ms: Option<f64>,
        /// The phase.
        phase: Phase,
        /// STUN/TURN ERROR-CODE when the server sent one.
        code: Option<u16>,
        /// Server reason phrase or our technical reason.
        reason: Option<String>,
        /// Plain-language cause.
        cause: String,
    },
    /// Not attempted, and why.
    NotChecked {
        /// Why.
        reason: String,
    },
}

impl<T> Stage<T> {
    /// A not-checked stage.
    pub fn not_checked(reason: impl Into<String>) -> Self {
        Stage::NotChecked {
            reason: reason.into(),
        }
    }

    /// Whether the stage passed.
    pub fn is_ok(&self) -> bool {
        matches!(self, Stage::Ok { .. })
    }

    /// Whether the stage failed.
    pub fn is_failed(&self) -> bool {
        matches!(self, Stage::Failed { .. })
    }

    /// The STUN/TURN error code of a failed stage.
    pub fn code(&self) -> Option<u16> {
        match self {
            Stage::Failed { code, .. } => *code,
            _ => None,
        }
    }

    /// The details when ok.
    pub fn info(&self) -> Option<&T> {
        match self {
            Stage::Ok { info, .. } => Some(info),
            _ => None,
        }
    }

    /// The time when ok.
    pub fn ms(&self) -> Option<f64> {
        match self {
            Stage::Ok { ms, .. } => Some(*ms),
            Stage::Failed { ms, .. } => *ms,
            Stage::NotChecked { .. } => None,
        }
    }
}

/// Nothing to report beyond the time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nothing {}

/// DNS resolution of the URL's host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsInfo {
    /// All addresses found (both families), as text.
    pub addresses: Vec<String>,
    /// SRV targets when `--srv` found any (`target:port`).
    pub srv: Vec<String>,
}

/// A STUN Binding (RFC 5389 §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingInfo {
    /// XOR-MAPPED-ADDRESS.
    pub mapped: String,
    /// SOFTWARE: the server's name and version.
    pub software: Option<String>,
    /// FINGERPRINT present and valid.
    pub fingerprint: bool,
    /// Transmissions needed (1 = no loss).
    pub sends: u32,
}

/// The unauthenticated Allocate's 401 challenge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeInfo {
    /// REALM.
    pub realm: String,
}

/// The authenticated Allocate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllocationInfo {
    /// XOR-RELAYED-ADDRESS.
    pub relayed: String,
    /// XOR-MAPPED-ADDRESS.
    pub mapped: Option<String>,
    /// LIFETIME in seconds.
    pub lifetime_s: u32,
    /// MESSAGE-INTEGRITY of the success response: `true` valid, `false` invalid, `null` absent.
    pub integrity: Option<bool>,
    /// SOFTWARE.
    pub software: Option<String>,
}

/// Data sent through the relay and echoed back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EchoInfo {
    /// Where the data went (the peer's address as the relay saw it).
    pub peer: String,
    /// Bytes sent.
    pub bytes: usize,
}

/// Something that works but an operator should look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Warning {
    /// Stable machine-readable kind, e.g. `private-relay-address`.
    pub kind: String,
    /// What to do about it.
    pub message: String,
}

/// The row's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RowVerdict {
    /// Every applicable stage passed, no warnings.
    Pass,
    /// Every applicable stage passed, with warnings.
    Warn,
    /// A stage failed.
    Fail,
}

/// One server × address × transport.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRow {
    /// The URL as given.
    pub url: String,
    /// The URL actually probed for this row (differs with `--all-transports` or a 300 redirect).
    pub probed_url: String,
    /// `ipv4` or `ipv6`.
    pub family: String,
    /// The server address.
    pub address: String,
    /// How the server is reached.
    pub transport: Protocol,
    /// Whether TURN stages apply (turn:/turns: URLs).
    pub turn: bool,
    /// DNS.
    pub dns: Stage<DnsInfo>,
    /// TCP connect (not applicable to UDP).
    pub connect: Stage<Nothing>,
    /// TLS handshake and certificate.
    pub tls: Stage<TlsInfo>,
    /// STUN Binding.
    pub binding: Stage<BindingInfo>,
    /// Unauthenticated Allocate → 401.
    pub challenge: Stage<ChallengeInfo>,
    /// Authenticated Allocate.
    pub allocate: Stage<AllocationInfo>,
    /// CreatePermission.
    pub permission: Stage<Nothing>,
    /// ChannelBind.
    pub channel: Stage<Nothing>,
    /// Echo through the relay with a Send indication.
    pub send_echo: Stage<EchoInfo>,
    /// Echo through the relay with ChannelData.
    pub channel_echo: Stage<EchoInfo>,
    /// Refresh LIFETIME 0.
    pub release: Stage<Nothing>,
    /// ALTERNATE-SERVER of a 300 Try Alternate (RFC 8489 §10); iceprobe follows it once and
    /// reports the alternate in the next row.
    pub alternate_server: Option<String>,
    /// Warnings.
    pub warnings: Vec<Warning>,
    /// Verdict.
    pub verdict: RowVerdict,
}

/// The whole `check` report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckReport {
    /// [`CHECK_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `check`.
    pub command: String,
    /// iceprobe's version.
    pub iceprobe_version: String,
    /// The deadline, in milliseconds.
    pub timeout_ms: u64,
    /// Rows probed at once (`--concurrency`): with more rows than this, rows waited for a
    /// free slot, and the check took several rows' time.
    pub concurrency: usize,
    /// TLS certificates not verified.
    pub insecure_tls: bool,
    /// Wall time, in milliseconds.
    pub duration_ms: f64,
    /// Rows in plan order.
    pub rows: Vec<CheckRow>,
    /// Warnings across rows (e.g. UDP works but TCP/TLS do not).
    pub warnings: Vec<Warning>,
    /// What to fix, deduplicated causes and warnings, most important first.
    pub fix: Vec<String>,
    /// `--expect` results in the order given (absent from JSON without `--expect`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expectations: Vec<super::expect::AssertionResult>,
    /// The verdict.
    pub verdict: super::Verdict,
}

/// What a check is about to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckStart {
    /// Server URLs, without credentials.
    pub servers: Vec<String>,
    /// The deadline, in milliseconds.
    pub timeout_ms: u64,
    /// Probe every transport (UDP 3478, TCP 3478, TLS 5349) of each host.
    pub all_transports: bool,
    /// TLS certificates not verified.
    pub insecure_tls: bool,
}

/// One streamed `check` event (`--format ndjson`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    content = "data",
    rename_all = "kebab-case",
    deny_unknown_fields
)]
pub enum CheckEvent {
    /// The check started.
    Start(CheckStart),
    /// A row finished (rows arrive in completion order).
    Row(Box<CheckRow>),
    /// The check ended; the full report (rows in plan order).
    Summary(Box<CheckReport>),
}

// ---- reading a row: what renderers and decisions need ----

/// How one stage ended, without its details: what renderers and decisions need.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StageStatus<'a> {
    /// Passed in `ms`.
    Ok {
        /// Milliseconds.
        ms: f64,
    },
    /// Failed.
    Failed {
        /// Milliseconds until the failure, when known.
        ms: Option<f64>,
        /// The phase that failed.
        phase: Phase,
        /// STUN/TURN ERROR-CODE, when the server sent one.
        code: Option<u16>,
        /// Server reason phrase or our technical reason.
        reason: Option<&'a str>,
        /// Plain-language cause.
        cause: &'a str,
    },
    /// Not attempted.
    NotChecked {
        /// Why.
        reason: &'a str,
    },
}

/// One stage of a row under its short column name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StageView<'a> {
    /// Column name: `dns`, `connect`, `tls`, `stun`, `401`, `allocate`, `perm`, `chan`,
    /// `send-echo`, `chan-echo`, `release`.
    pub name: &'static str,
    /// How it ended.
    pub status: StageStatus<'a>,
}

fn view<'a, T>(name: &'static str, s: &'a Stage<T>) -> StageView<'a> {
    let status = match s {
        Stage::Ok { ms, .. } => StageStatus::Ok { ms: *ms },
        Stage::Failed {
            ms,
            phase,
            code,
            reason,
            cause,
        } => StageStatus::Failed {
            ms: *ms,
            phase: *phase,
            code: *code,
            reason: reason.as_deref(),
            cause,
        },
        Stage::NotChecked { reason } => StageStatus::NotChecked { reason },
    };
    StageView { name, status }
}

/// Every stage of a row, in protocol order.
pub fn stages(row: &CheckRow) -> [StageView<'_>; 11] {
    [
        view("dns", &row.dns),
        view("connect", &row.connect),
        view("tls", &row.tls),
        view("stun", &row.binding),
        view("401", &row.challenge),
        view("allocate", &row.allocate),
        view("perm", &row.permission),
        view("chan", &row.channel),
        view("send-echo", &row.send_echo),
        view("chan-echo", &row.channel_echo),
        view("release", &row.release),
    ]
}

/// Whether a stage applies at all to this row: connect only to TCP/TLS, TLS only to TLS, the
/// TURN stages only to TURN URLs, DNS only to host names. `stage` is a [`StageView::name`].
pub fn stage_applies(row: &CheckRow, stage: &str) -> bool {
    match stage {
        "dns" => !matches!(
            row.probed_url.parse::<ServerUrl>().map(|u| u.host),
            Ok(Host::Ip(_))
        ),
        "connect" => row.transport.is_stream(),
        "tls" => row.transport.is_secure(),
        "stun" => true,
        _ => row.turn,
    }
}

/// The failed stages of a row, in protocol order.
pub fn failed_stages(row: &CheckRow) -> Vec<StageView<'_>> {
    stages(row)
        .into_iter()
        .filter(|s| matches!(s.status, StageStatus::Failed { .. }))
        .collect()
}

/// Whether any stage of the row failed. Not-checked stages never count.
pub fn row_failed(row: &CheckRow) -> bool {
    stages(row)
        .iter()
        .any(|s| matches!(s.status, StageStatus::Failed { .. }))
}

/// `turn:h?transport=tcp 198.18.0.1:3478`: which row, for people (only the URL when the row
/// has no address: DNS failed or found none of the family asked for).
pub fn row_label(row: &CheckRow) -> String {
    if row.address.is_empty() {
        row.probed_url.clone()
    } else {
        format!("{} {}", row.probed_url, row.address)
    }
}
