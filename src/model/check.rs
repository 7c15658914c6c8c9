//! The `check` report: one row per server × address × transport, stage by stage.
//!
//! Each stage is a [`Stage`]: `ok` with its time and details, `failed` with its [`Failure`], or
//! `not-checked` with the [`Reason`]. Unknown is never reported as false.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::ice_url::{Host, Protocol, ServerUrl};

use super::outcome::Outcome;
use super::tls::TlsInfo;
use super::{Failure, Family, Report};

/// Version of the check report (shares the envelope with gather's schema).
pub const CHECK_SCHEMA_VERSION: u32 = 1;

/// Warn when the leaf certificate expires in fewer days than this (issue 3: "within 14 days").
pub const CERT_EXPIRY_WARN_DAYS: i64 = 14;

/// One stage's result: `ok` with its time and details, `failed` with its time and the
/// [`Failure`], or `not-checked` with the [`Reason`].
pub type Stage<T> = Outcome<Passed<T>, StageFailure>;

/// What a passed stage reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Passed<T> {
    /// Time the stage took, in milliseconds.
    pub ms: f64,
    /// What it found.
    pub info: T,
}

/// What a failed stage reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageFailure {
    /// Time until the failure, when known.
    pub ms: Option<f64>,
    /// Why it failed.
    #[serde(flatten)]
    pub failure: Failure,
}

impl<T> Stage<T> {
    /// A passed stage.
    pub fn ok(ms: f64, info: T) -> Self {
        Outcome::Ok(Passed { ms, info })
    }

    /// A failed stage.
    pub fn fail(ms: Option<f64>, failure: Failure) -> Self {
        Outcome::Failed(StageFailure { ms, failure })
    }

    /// The STUN/TURN error code of a failed stage.
    pub fn code(&self) -> Option<u16> {
        self.failed().and_then(|f| f.failure.code)
    }

    /// The details when ok.
    pub fn info(&self) -> Option<&T> {
        self.passed().map(|p| &p.info)
    }

    /// The time the stage took (ok), or took to fail (when known).
    pub fn ms(&self) -> Option<f64> {
        match self {
            Outcome::Ok(p) => Some(p.ms),
            Outcome::Failed(f) => f.ms,
            Outcome::NotChecked { .. } => None,
        }
    }

    /// The same failure or reason for a stage of another type; `None` for a pass (whose
    /// details belong to its own stage).
    pub fn cast<U>(&self) -> Option<Stage<U>> {
        match self {
            Outcome::Ok(_) => None,
            Outcome::Failed(f) => Some(Outcome::Failed(f.clone())),
            Outcome::NotChecked { reason } => Some(Outcome::not_checked(reason.clone())),
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
    /// All addresses found (both families).
    pub addresses: Vec<IpAddr>,
    /// SRV targets when `--srv` found any (`target:port`).
    pub srv: Vec<String>,
}

/// A STUN Binding (RFC 5389 §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingInfo {
    /// XOR-MAPPED-ADDRESS.
    pub mapped: SocketAddr,
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
    pub relayed: SocketAddr,
    /// XOR-MAPPED-ADDRESS.
    pub mapped: Option<SocketAddr>,
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
    pub peer: SocketAddr,
    /// Bytes sent.
    pub bytes: usize,
}

/// What a [`Warning`] is about: a stable, machine-readable kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WarningKind {
    /// The relayed address is private, loopback, link-local, CGNAT or ULA.
    PrivateRelayAddress,
    /// The leaf certificate expires within [`CERT_EXPIRY_WARN_DAYS`].
    CertificateExpiring,
    /// The Binding response had no (valid) FINGERPRINT.
    NoFingerprint,
    /// The Allocate success response had no MESSAGE-INTEGRITY.
    NoMessageIntegrity,
    /// The Allocate success response had an invalid MESSAGE-INTEGRITY.
    BadMessageIntegrity,
    /// STUN Binding works on a TURN URL, TURN does not.
    StunOkTurnFailed,
    /// `--insecure`: the certificate was not verified.
    TlsNotVerified,
    /// UDP works on a host, TCP or TLS does not.
    UdpOnly,
    /// TCP or TLS works on a host, UDP does not.
    UdpBlocked,
    /// The server answered Allocate with 300 Try Alternate (followed in the next row).
    Redirected,
}

impl WarningKind {
    /// The wire word, e.g. `private-relay-address`.
    pub fn as_str(self) -> &'static str {
        match self {
            WarningKind::PrivateRelayAddress => "private-relay-address",
            WarningKind::CertificateExpiring => "certificate-expiring",
            WarningKind::NoFingerprint => "no-fingerprint",
            WarningKind::NoMessageIntegrity => "no-message-integrity",
            WarningKind::BadMessageIntegrity => "bad-message-integrity",
            WarningKind::StunOkTurnFailed => "stun-ok-turn-failed",
            WarningKind::TlsNotVerified => "tls-not-verified",
            WarningKind::UdpOnly => "udp-only",
            WarningKind::UdpBlocked => "udp-blocked",
            WarningKind::Redirected => "redirected",
        }
    }

    /// Every kind, in schema order (the schema test compares against this list).
    pub const ALL: [WarningKind; 10] = [
        WarningKind::PrivateRelayAddress,
        WarningKind::CertificateExpiring,
        WarningKind::NoFingerprint,
        WarningKind::NoMessageIntegrity,
        WarningKind::BadMessageIntegrity,
        WarningKind::StunOkTurnFailed,
        WarningKind::TlsNotVerified,
        WarningKind::UdpOnly,
        WarningKind::UdpBlocked,
        WarningKind::Redirected,
    ];
}

/// Something that works but an operator should look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Warning {
    /// What it is about.
    pub kind: WarningKind,
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
    pub url: ServerUrl,
    /// The URL actually probed for this row (differs with `--all-transports` or a 300 redirect).
    pub probed_url: ServerUrl,
    /// `ipv4` or `ipv6`; `""` when the row got no address (DNS failed, or found none of the
    /// family asked for).
    #[serde(with = "super::blank")]
    pub family: Option<Family>,
    /// The server address; `""` when the row got none.
    #[serde(with = "super::blank")]
    pub address: Option<SocketAddr>,
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
    pub alternate_server: Option<SocketAddr>,
    /// Warnings.
    pub warnings: Vec<Warning>,
    /// Verdict.
    pub verdict: RowVerdict,
}

/// What a `check` report holds (inside the [`Report`] envelope).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckBody {
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
}

/// The whole `check` report (`--format json`).
pub type CheckReport = Report<CheckBody>;

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

/// How one stage ended, without its details: the time when it passed, the failure, or the
/// reason it was not checked.
pub type StageStatus<'a> = Outcome<f64, &'a StageFailure>;

/// A stage of a check row, by its short column name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StageName {
    /// DNS.
    Dns,
    /// TCP connect.
    Connect,
    /// TLS or DTLS handshake.
    Tls,
    /// STUN Binding.
    Stun,
    /// Unauthenticated Allocate → 401.
    Challenge,
    /// Authenticated Allocate.
    Allocate,
    /// CreatePermission.
    Permission,
    /// ChannelBind.
    Channel,
    /// Echo by Send indication.
    SendEcho,
    /// Echo by ChannelData.
    ChannelEcho,
    /// Refresh LIFETIME 0.
    Release,
}

impl StageName {
    /// The row's field name: `dns`, `connect`, `tls`, `binding`, `challenge`, `allocate`,
    /// `permission`, `channel`, `send_echo`, `channel_echo`, `release` (the metrics' `stage`).
    pub fn field(self) -> &'static str {
        match self {
            StageName::Dns => "dns",
            StageName::Connect => "connect",
            StageName::Tls => "tls",
            StageName::Stun => "binding",
            StageName::Challenge => "challenge",
            StageName::Allocate => "allocate",
            StageName::Permission => "permission",
            StageName::Channel => "channel",
            StageName::SendEcho => "send_echo",
            StageName::ChannelEcho => "channel_echo",
            StageName::Release => "release",
        }
    }

    /// The column name: `dns`, `connect`, `tls`, `stun`, `401`, `allocate`, `perm`, `chan`,
    /// `send-echo`, `chan-echo`, `release` (the JUnit case names too).
    pub fn column(self) -> &'static str {
        match self {
            StageName::Dns => "dns",
            StageName::Connect => "connect",
            StageName::Tls => "tls",
            StageName::Stun => "stun",
            StageName::Challenge => "401",
            StageName::Allocate => "allocate",
            StageName::Permission => "perm",
            StageName::Channel => "chan",
            StageName::SendEcho => "send-echo",
            StageName::ChannelEcho => "chan-echo",
            StageName::Release => "release",
        }
    }
}

/// One stage of a row under its name.
#[derive(Debug, Clone, PartialEq)]
pub struct StageView<'a> {
    /// Which stage.
    pub name: StageName,
    /// How it ended.
    pub status: StageStatus<'a>,
}

fn view<T>(name: StageName, s: &Stage<T>) -> StageView<'_> {
    let status = match s {
        Outcome::Ok(p) => Outcome::Ok(p.ms),
        Outcome::Failed(f) => Outcome::Failed(f),
        Outcome::NotChecked { reason } => Outcome::not_checked(reason.clone()),
    };
    StageView { name, status }
}

/// Every stage of a row, in protocol order.
pub fn stages(row: &CheckRow) -> [StageView<'_>; 11] {
    [
        view(StageName::Dns, &row.dns),
        view(StageName::Connect, &row.connect),
        view(StageName::Tls, &row.tls),
        view(StageName::Stun, &row.binding),
        view(StageName::Challenge, &row.challenge),
        view(StageName::Allocate, &row.allocate),
        view(StageName::Permission, &row.permission),
        view(StageName::Channel, &row.channel),
        view(StageName::SendEcho, &row.send_echo),
        view(StageName::ChannelEcho, &row.channel_echo),
        view(StageName::Release, &row.release),
    ]
}

/// Whether a stage applies at all to this row: connect only to TCP/TLS, TLS only to TLS and
/// DTLS, the TURN stages only to TURN URLs, DNS only to host names.
pub fn stage_applies(row: &CheckRow, stage: StageName) -> bool {
    match stage {
        StageName::Dns => !matches!(row.probed_url.host, Host::Ip(_)),
        StageName::Connect => row.transport.is_stream(),
        StageName::Tls => row.transport.is_secure(),
        StageName::Stun => true,
        _ => row.turn,
    }
}

/// The failed stages of a row, in protocol order.
pub fn failed_stages(row: &CheckRow) -> Vec<StageView<'_>> {
    stages(row)
        .into_iter()
        .filter(|s| s.status.is_failed())
        .collect()
}

/// Whether any stage of the row failed. Not-checked stages never count.
pub fn row_failed(row: &CheckRow) -> bool {
    stages(row).iter().any(|s| s.status.is_failed())
}

/// `turn:h?transport=tcp 198.18.0.1:3478`: which row, for people (only the URL when the row
/// has no address: DNS failed or found none of the family asked for).
pub fn row_label(row: &CheckRow) -> String {
    match row.address {
        None => row.probed_url.to_string(),
        Some(a) => format!("{} {a}", row.probed_url),
    }
}
