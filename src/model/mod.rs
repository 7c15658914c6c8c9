//! The report model: every type a report, an event or a renderer sees, and nothing else. A leaf:
//! it imports only the inputs (`ice_url`, `candidate`), std and serde, never a command, the
//! probing layer or `net` (`tests/layering.rs` keeps it so). The JSON contract is versioned
//! (`schema_version`); the NDJSON stream uses one envelope `{"type": ..., "data": ...}` per line.

pub mod check;
pub mod connect;
pub mod expect;
pub mod failure;
pub mod gather;
pub mod nat;
pub mod tls;

use serde::{Deserialize, Serialize};

pub use failure::{Failure, Phase};
pub use gather::*;

/// The overall verdict and exit code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    /// Every server gave what it should.
    pub ok: bool,
    /// The process exit code: 0 ok, 1 some server failed.
    pub exit_code: i32,
    /// One line for humans and logs.
    pub summary: String,
}
