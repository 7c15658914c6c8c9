//! The `connect` report: an end-to-end ICE run between two peer connections (RFC 8445 checks,
//! DTLS, an SCTP data channel). Per side: the timeline, every local and remote candidate, the
//! candidate pairs as the stats API showed them, the selected pair in a plain sentence, and the
//! data channel echo. On failure, the likely cause (`connect::cause`).

use serde::{Deserialize, Serialize};

use crate::candidate::CandidateType;

use super::Report;

/// Version of the connect report (same envelope and conventions as the other commands).
pub const CONNECT_SCHEMA_VERSION: u32 = 1;

/// Which peer connection: `a` offers, `b` answers (in two-host mode each process reports its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The offerer (loopback side A, `--peer`, `--signal stdio` without `--answer`).
    A,
    /// The answerer (loopback side B, `--listen`, `--signal stdio --answer`).
    B,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::A => "a",
            Side::B => "b",
        })
    }
}

/// ICE transport policy of one side (W3C `RTCIceTransportPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Every candidate type.
    All,
    /// Relay candidates only.
    Relay,
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Policy::All => "all",
            Policy::Relay => "relay",
        })
    }
}

/// How the two peer connections exchange their descriptions and candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Both peer connections in this process, signaling in memory.
    Loopback,
    /// This process answers over HTTP signaling (`--listen`).
    Listen,
    /// This process offers over HTTP signaling (`--peer`).
    Peer,
    /// Copy-paste signaling on stdin/stderr, offering.
    StdioOffer,
    /// Copy-paste signaling on stdin/stderr, answering.
    StdioAnswer,
}

/// A server URL given but not handed to webrtc, and why (webrtc 0.21.1 relays over UDP only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkippedServer {
    /// The URL as given (no credentials).
    pub url: String,
    /// Why it was skipped.
    pub why: String,
}

/// What a connect run is about to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectStart {
    /// How signaling works.
    pub mode: Mode,
    /// Server URLs handed to webrtc (no credentials; `?transport` stripped from STUN URLs).
    pub servers: Vec<String>,
    /// Server URLs that were not used.
    pub skipped: Vec<SkippedServer>,
    /// The sides run by this process, with their policy.
    pub sides: Vec<SideStart>,
    /// The deadline for the whole run, in milliseconds.
    pub timeout_ms: u64,
    /// Echo messages per side.
    pub count: u32,
}

/// One side's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SideStart {
    /// Which side.
    pub side: Side,
    /// Its ICE transport policy.
    pub policy: Policy,
    /// The local address its sockets bind to (`null`: every interface).
    pub bind: Option<String>,
}

/// Whose candidate: gathered here or received from the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Gathered by this side.
    Local,
    /// Learnt from the peer (signaled, or peer-reflexive from an inbound check).
    Remote,
}

/// One ICE candidate (RFC 8445 §5.1) as iceprobe reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectCandidate {
    /// host, srflx, prflx or relay.
    #[serde(rename = "type")]
    pub kind: CandidateType,
    /// `udp` or `tcp`.
    pub transport: String,
    /// The candidate's IP address.
    pub address: String,
    /// Its port.
    pub port: u16,
    /// The related address (base of srflx/prflx, mapped address of relay), if any.
    pub related_address: Option<String>,
    /// The related port, if any.
    pub related_port: Option<u16>,
    /// The STUN or TURN URL it came from, when known.
    pub url: Option<String>,
}

impl ConnectCandidate {
    /// `address:port` (IPv6 in brackets).
    pub fn endpoint(&self) -> String {
        if self.address.contains(':') {
            format!("[{}]:{}", self.address, self.port)
        } else {
            format!("{}:{}", self.address, self.port)
        }
    }
}

/// A candidate event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CandidateEvent {
    /// The side that gathered or received it.
    pub side: Side,
    /// Local or remote.
    pub origin: Origin,
    /// Milliseconds since the run started.
    pub elapsed_ms: u64,
    /// The candidate.
    pub candidate: ConnectCandidate,
}

/// Which state machine changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StateMachine {
    /// ICE gathering (`new`, `gathering`, `complete`).
    Gathering,
    /// ICE connection (`checking`, `connected`, `failed`, ...).
    Ice,
    /// The peer connection (ICE + DTLS).
    Peer,
    /// The echo data channel (`open`, `closed`).
    DataChannel,
}

/// A state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateEvent {
    /// The side.
    pub side: Side,
    /// Which state machine.
    pub machine: StateMachine,
    /// The W3C state word (e.g. `checking`, `connected`, `failed`, `open`).
    pub state: String,
    /// Milliseconds since the run started.
    pub elapsed_ms: u64,
}

/// Milliseconds since the start at which each milestone was reached (`null`: never).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeline {
    /// Gathering complete.
    pub gathering_done_ms: Option<u64>,
    /// ICE checking started.
    pub checking_ms: Option<u64>,
    /// ICE connected.
    pub connected_ms: Option<u64>,
    /// ICE or the peer connection failed.
    pub failed_ms: Option<u64>,
    /// The data channel opened.
    pub data_channel_open_ms: Option<u64>,
}

/// A candidate pair and what its connectivity checks did, as seen on the wire
/// (`connect::pairs`), at the end of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairReport {
    /// The local candidate.
    pub local: ConnectCandidate,
    /// The remote candidate.
    pub remote: ConnectCandidate,
    /// `frozen`, `waiting`, `in-progress`, `failed`, `succeeded` (W3C `RTCStatsIceCandidatePairState`).
    pub state: String,
    /// Nominated (RFC 8445 §8.1.1).
    pub nominated: bool,
    /// Connectivity-check requests sent on this pair.
    pub requests_sent: u64,
    /// Responses received on this pair.
    pub responses_received: u64,
    /// Checks the peer sent on this pair (its checks reached us even if ours got no answer:
    /// one direction works).
    pub requests_received: u64,
    /// Latest round-trip time of a check, in milliseconds (`null`: none measured).
    pub rtt_ms: Option<f64>,
}

/// The pair ICE selected, and what it means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectedPair {
    /// The local candidate.
    pub local: ConnectCandidate,
    /// The remote candidate.
    pub remote: ConnectCandidate,
    /// A plain sentence, e.g. "direct UDP via server-reflexive addresses".
    pub description: String,
}

/// Data channel echo results (unordered, no retransmissions: losses are real).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EchoReport {
    /// Messages sent.
    pub sent: u32,
    /// Echoes received in time.
    pub received: u32,
    /// Lost share, 0.0..=1.0.
    pub loss: f64,
    /// Fastest round trip, in milliseconds.
    pub rtt_min_ms: Option<f64>,
    /// Median round trip.
    pub rtt_median_ms: Option<f64>,
    /// 95th percentile round trip (nearest rank).
    pub rtt_p95_ms: Option<f64>,
    /// Slowest round trip.
    pub rtt_max_ms: Option<f64>,
}

/// Bulk transfer over a reliable channel for `--throughput`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThroughputReport {
    /// Bytes the peer confirmed.
    pub bytes: u64,
    /// Time from the first byte sent to the peer's confirmation, in milliseconds.
    pub duration_ms: u64,
    /// Bytes per second.
    pub bytes_per_second: f64,
}

/// One side's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SideReport {
    /// Which side.
    pub side: Side,
    /// Its ICE transport policy.
    pub policy: Policy,
    /// Milestones.
    pub timeline: Timeline,
    /// Candidates it gathered.
    pub local_candidates: Vec<ConnectCandidate>,
    /// Candidates it learnt from the peer (signaled, and prflx from the stats).
    pub remote_candidates: Vec<ConnectCandidate>,
    /// Candidate pairs (from the stats API).
    pub pairs: Vec<PairReport>,
    /// The selected pair, when ICE connected.
    pub selected: Option<SelectedPair>,
    /// The echo it measured (`null`: the data channel never opened).
    pub echo: Option<EchoReport>,
    /// `--throughput` result (`null`: not asked or not reached).
    pub throughput: Option<ThroughputReport>,
}

/// What a [`Cause`] is about: a stable identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CauseCode {
    /// A side gathered no candidates at all.
    NothingGathered,
    /// A TURN server was given but a side got no relay candidate from it.
    NoRelayCandidate,
    /// A side never received a candidate from its peer.
    NoRemoteCandidates,
    /// ICE connected but the data channel did not carry the echo.
    DataChannel,
    /// Relay candidates on both sides, but the relay did not forward between them.
    RelayNotForwarding,
    /// No relay was given, and the direct paths failed: a TURN server is needed.
    AddTurnServer,
    /// ICE failed for another reason.
    IceFailed,
    /// Signaling failed: the offer/answer exchange did not complete.
    Signaling,
    /// The peer connection could not be set up.
    PeerConnection,
    /// Ctrl-C or SIGTERM.
    Interrupted,
}

impl CauseCode {
    /// The wire word, e.g. `add-turn-server`.
    pub fn as_str(self) -> &'static str {
        match self {
            CauseCode::NothingGathered => "nothing-gathered",
            CauseCode::NoRelayCandidate => "no-relay-candidate",
            CauseCode::NoRemoteCandidates => "no-remote-candidates",
            CauseCode::DataChannel => "data-channel",
            CauseCode::RelayNotForwarding => "relay-not-forwarding",
            CauseCode::AddTurnServer => "add-turn-server",
            CauseCode::IceFailed => "ice-failed",
            CauseCode::Signaling => "signaling",
            CauseCode::PeerConnection => "peer-connection",
            CauseCode::Interrupted => "interrupted",
        }
    }

    /// A failure of the run's own set-up (signaling, the peer connection), not of the network.
    pub fn is_setup(self) -> bool {
        matches!(self, CauseCode::Signaling | CauseCode::PeerConnection)
    }
}

/// The likely reason a run failed (pure: `connect::cause::likely_cause`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cause {
    /// A stable identifier, e.g. `add-turn-server`.
    pub code: CauseCode,
    /// What to do, in one or two sentences.
    pub text: String,
}

/// What a `connect` report holds (inside the [`Report`] envelope).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectBody {
    /// How signaling worked.
    pub mode: Mode,
    /// Wall time, in milliseconds.
    pub duration_ms: f64,
    /// One entry per side run by this process.
    pub sides: Vec<SideReport>,
    /// The likely cause when it failed.
    pub cause: Option<Cause>,
}

/// The whole `connect` report (`--format json`); its verdict exits 0 when connected and
/// echoed, 1 when not.
pub type ConnectReport = Report<ConnectBody>;

/// One streamed `connect` event (`--format ndjson`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    content = "data",
    rename_all = "kebab-case",
    deny_unknown_fields
)]
pub enum ConnectEvent {
    /// The run started.
    Start(ConnectStart),
    /// A candidate was gathered or received.
    Candidate(CandidateEvent),
    /// A state machine changed state.
    State(StateEvent),
    /// The run ended; the full report.
    Summary(Box<ConnectReport>),
}
