//! What NAT discovery observed, recorded as plain values: the input of the pure classifier
//! (`nat::classify`). Nothing here interprets; every field says what was sent where and what
//! came back, so the classifier can refuse to conclude from a reply that does not prove it.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

/// CHANGE-REQUEST flags of a Binding request (RFC 5780 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// No CHANGE-REQUEST: answer from where the request arrived.
    #[default]
    None,
    /// Change port (flag 0x02).
    Port,
    /// Change IP and port (flags 0x06).
    IpAndPort,
}

/// The answer to one Binding request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Answer {
    /// A success response.
    Reply {
        /// The UDP source address the reply came from.
        from: SocketAddr,
        /// XOR-MAPPED-ADDRESS.
        mapped: Option<SocketAddr>,
        /// MAPPED-ADDRESS, when also present (an ALG may rewrite this one only).
        plain_mapped: Option<SocketAddr>,
        /// RESPONSE-ORIGIN (RFC 5780 §7.3).
        response_origin: Option<SocketAddr>,
        /// OTHER-ADDRESS (RFC 5780 §7.4).
        other_address: Option<SocketAddr>,
        /// Round trip in milliseconds.
        rtt_ms: f64,
    },
    /// An error response (e.g. 420 when the server does not do RFC 5780).
    Error {
        /// ERROR-CODE.
        code: u16,
        /// Reason phrase.
        reason: String,
    },
    /// Replies came, but none could be accepted (not STUN, bad FINGERPRINT, unknown
    /// comprehension-required attributes, ...): a broken or hostile server, not silence.
    Rejected {
        /// What was wrong with them (see `proto::reject::Rejects::summary`).
        why: String,
    },
    /// No answer after every retransmission.
    Timeout,
}

impl Answer {
    /// XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS) of a reply.
    pub fn mapped(&self) -> Option<SocketAddr> {
        match self {
            Answer::Reply {
                mapped,
                plain_mapped,
                ..
            } => mapped.or(*plain_mapped),
            _ => None,
        }
    }
}

/// One Binding exchange: which local socket, to which server address, with which change flags,
/// and what came back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    /// Our local socket (the base), as bound.
    pub local: SocketAddr,
    /// Where the request was sent.
    pub to: SocketAddr,
    /// CHANGE-REQUEST flags.
    pub change: Change,
    /// What came back.
    pub answer: Answer,
}

/// RFC 5780 tests against one server that advertised OTHER-ADDRESS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rfc5780 {
    /// The server URL.
    pub url: String,
    /// The server's primary address.
    pub primary: SocketAddr,
    /// Filtering tests, run first on a fresh socket (RFC 5780 §4.4): test I, then test II
    /// (change IP and port) and test III (change port). `None` when not run.
    pub filtering: Option<Vec<Exchange>>,
    /// Mapping tests on another fresh socket (RFC 5780 §4.3): test I to the primary, then to
    /// OTHER-ADDRESS's IP with the primary port, then to OTHER-ADDRESS. `None` when not run.
    pub mapping: Option<Vec<Exchange>>,
}

/// Hairpinning (RFC 5780 §4.5): a Binding request sent to our own mapped address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hairpin {
    /// Our local socket.
    pub local: SocketAddr,
    /// Our mapped address, where the request went.
    pub to: SocketAddr,
    /// Whether the request came back to us (through the NAT).
    pub came_back: bool,
}

/// The idle lifetime search (RFC 5780 §4.6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lifetime {
    /// Longest idle time after which the mapping still worked, in seconds.
    pub alive_after_s: Option<f64>,
    /// Shortest idle time after which it had expired, in seconds.
    pub expired_after_s: Option<f64>,
    /// The search stopped at its time budget before converging.
    pub budget_exhausted: bool,
}

/// Everything observed for one address family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observations {
    /// `ipv4` or `ipv6`: observations of different families are never mixed.
    pub family: String,
    /// Local addresses of this family (to spot "no NAT").
    pub local_addresses: Vec<IpAddr>,
    /// RFC 5780 tests, one per server that advertised OTHER-ADDRESS (and servers that did not
    /// are recorded with `filtering`/`mapping` = None and their first exchange in `multi`).
    pub rfc5780: Vec<Rfc5780>,
    /// Multi-server comparison: one socket, one Binding to each server (RFC 4787 §4.1 by
    /// comparison), in the order sent.
    pub multi: Vec<Exchange>,
    /// Hairpin test, when a mapped address was known.
    pub hairpin: Option<Hairpin>,
    /// Idle lifetime, when `--lifetime` asked for it.
    pub lifetime: Option<Lifetime>,
    /// UDP got no answer at all, so Binding over TCP was tried: did it work?
    pub tcp_fallback: Option<bool>,
}
