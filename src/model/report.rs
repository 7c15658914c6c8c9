//! The envelope every final report shares ([`Report`]), what each command's report holds
//! inside it ([`Body`]), and how each command's event stream carries it ([`Summarised`]). The
//! four commands' impls stand together here, so that adding a command is one look.

use serde::{Deserialize, Serialize};

use super::check::{CheckBody, CheckEvent, CHECK_SCHEMA_VERSION};
use super::connect::{ConnectBody, ConnectEvent, CONNECT_SCHEMA_VERSION};
use super::expect;
use super::gather::{GatherBody, GatherEvent, GATHER_SCHEMA_VERSION};
use super::nat::{NatBody, NatEvent, NAT_SCHEMA_VERSION};
use super::Verdict;

/// The envelope every final report shares: the schema version, the command and iceprobe's
/// version, then the command's own fields ([`Body`], flattened beside them), the `--expect`
/// results and the verdict. It dereferences to its body, so `report.rows` reads a check's rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report<B> {
    /// The body's [`Body::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The body's [`Body::COMMAND`].
    pub command: String,
    /// iceprobe's version.
    pub iceprobe_version: String,
    /// What the command found.
    #[serde(flatten)]
    pub body: B,
    /// `--expect` results in the order given (absent from JSON without `--expect`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expectations: Vec<expect::AssertionResult>,
    /// The verdict.
    pub verdict: Verdict,
}

/// What one command's report holds besides the envelope.
pub trait Body {
    /// The subcommand: `gather`, `check`, `nat`, `connect`.
    const COMMAND: &'static str;
    /// The version of its report and events (bump on any incompatible change).
    const SCHEMA_VERSION: u32;
    /// Wall time of the run, in milliseconds.
    fn duration_ms(&self) -> f64;
}

impl<B: Body> Report<B> {
    /// The report of a finished run, without `--expect` results (they are added later).
    pub fn new(body: B, verdict: Verdict) -> Report<B> {
        Report {
            schema_version: B::SCHEMA_VERSION,
            command: B::COMMAND.into(),
            iceprobe_version: env!("CARGO_PKG_VERSION").into(),
            body,
            expectations: Vec::new(),
            verdict,
        }
    }

    /// Wall time of the run, in milliseconds.
    pub fn duration_ms(&self) -> f64 {
        self.body.duration_ms()
    }
}

/// A command's stream of events, whose last one carries the final report.
pub trait Summarised {
    /// What the report holds.
    type Body: Body;
    /// The report, when this is the summary event.
    fn summary(&self) -> Option<&Report<Self::Body>>;
    /// The same, to amend (`--expect` results).
    fn summary_mut(&mut self) -> Option<&mut Report<Self::Body>>;
}

impl<B> std::ops::Deref for Report<B> {
    type Target = B;
    fn deref(&self) -> &B {
        &self.body
    }
}

impl<B> std::ops::DerefMut for Report<B> {
    fn deref_mut(&mut self) -> &mut B {
        &mut self.body
    }
}

impl Body for GatherBody {
    const COMMAND: &'static str = "gather";
    const SCHEMA_VERSION: u32 = GATHER_SCHEMA_VERSION;
    fn duration_ms(&self) -> f64 {
        self.duration_ms
    }
}

impl Summarised for GatherEvent {
    type Body = GatherBody;
    fn summary(&self) -> Option<&Report<GatherBody>> {
        match self {
            GatherEvent::Summary(r) => Some(r),
            _ => None,
        }
    }
    fn summary_mut(&mut self) -> Option<&mut Report<GatherBody>> {
        match self {
            GatherEvent::Summary(r) => Some(r),
            _ => None,
        }
    }
}

impl Body for CheckBody {
    const COMMAND: &'static str = "check";
    const SCHEMA_VERSION: u32 = CHECK_SCHEMA_VERSION;
    fn duration_ms(&self) -> f64 {
        self.duration_ms
    }
}

impl Summarised for CheckEvent {
    type Body = CheckBody;
    fn summary(&self) -> Option<&Report<CheckBody>> {
        match self {
            CheckEvent::Summary(r) => Some(r),
            _ => None,
        }
    }
    fn summary_mut(&mut self) -> Option<&mut Report<CheckBody>> {
        match self {
            CheckEvent::Summary(r) => Some(r),
            _ => None,
        }
    }
}

impl Body for NatBody {
    const COMMAND: &'static str = "nat";
    const SCHEMA_VERSION: u32 = NAT_SCHEMA_VERSION;
    fn duration_ms(&self) -> f64 {
        self.duration_ms
    }
}

impl Summarised for NatEvent {
    type Body = NatBody;
    fn summary(&self) -> Option<&Report<NatBody>> {
        match self {
            NatEvent::Summary(r) => Some(r),
            _ => None,
        }
    }
    fn summary_mut(&mut self) -> Option<&mut Report<NatBody>> {
        match self {
            NatEvent::Summary(r) => Some(r),
            _ => None,
        }
    }
}

impl Body for ConnectBody {
    const COMMAND: &'static str = "connect";
    const SCHEMA_VERSION: u32 = CONNECT_SCHEMA_VERSION;
    fn duration_ms(&self) -> f64 {
        self.duration_ms
    }
}

impl Summarised for ConnectEvent {
    type Body = ConnectBody;
    fn summary(&self) -> Option<&Report<ConnectBody>> {
        match self {
            ConnectEvent::Summary(r) => Some(r),
            _ => None,
        }
    }
    fn summary_mut(&mut self) -> Option<&mut Report<ConnectBody>> {
        match self {
            ConnectEvent::Summary(r) => Some(r),
            _ => None,
        }
    }
}
