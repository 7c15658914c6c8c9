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
pub mod outcome;
pub mod report;
pub mod tls;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use failure::{Failure, Phase};
pub use outcome::{Outcome, Reason};
pub use report::{Body, Report, Summarised};

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

/// An IP address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
}

impl Family {
    /// The family of `ip`.
    pub fn of(ip: std::net::IpAddr) -> Family {
        if ip.is_ipv4() {
            Family::Ipv4
        } else {
            Family::Ipv6
        }
    }

    /// `ipv4` or `ipv6`.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Family {
    type Err = String;
    fn from_str(s: &str) -> Result<Family, String> {
        match s {
            "ipv4" => Ok(Family::Ipv4),
            "ipv6" => Ok(Family::Ipv6),
            other => Err(format!("{other:?} is not ipv4 or ipv6")),
        }
    }
}

/// Milliseconds of a duration, as reports give every time.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Serde for an optional value that the contract writes as `""` when absent (and as its
/// `Display` text when present), e.g. a check row's address when DNS found none.
pub(crate) mod blank {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer};

    /// `""` for `None`, the text for `Some`.
    pub fn serialize<T: Display, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(v),
            None => s.serialize_str(""),
        }
    }

    /// `None` for `""`, else the parsed text.
    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    /// A report of `fixtures/golden/` (the output contract), read back into the model.
    pub(crate) fn fixture<T: serde::de::DeserializeOwned>(name: &str) -> T {
        let path = format!("{}/fixtures/golden/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }
}
