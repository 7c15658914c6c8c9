//! How one thing a probe set out to do ended: [`Outcome`] — passed with what it found, failed
//! with a [`Failure`](super::Failure), or not checked with a typed [`Reason`]. Unknown is never
//! reported as false: what was not attempted says why, and never counts as a failure.
//!
//! On the wire every outcome is one JSON object tagged by `status` (`ok`, `failed`,
//! `not-checked`); the passed and failed payloads' fields stand beside the tag.

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The result of one stage, candidate or check. `T` is what a pass carries, `F` what a failure
/// carries; each command fixes both (`check`: [`Stage`](super::check::Stage), `gather`:
/// [`Gathered`](super::gather::Gathered)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Outcome<T, F> {
    /// Passed.
    Ok(T),
    /// Failed.
    Failed(F),
    /// Not attempted, and why.
    NotChecked {
        /// Why.
        reason: Reason,
    },
}

impl<T, F> Outcome<T, F> {
    /// A not-checked outcome.
    pub fn not_checked(reason: impl Into<Reason>) -> Self {
        Outcome::NotChecked {
            reason: reason.into(),
        }
    }

    /// Whether it passed.
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok(_))
    }

    /// Whether it failed.
    pub fn is_failed(&self) -> bool {
        matches!(self, Outcome::Failed(_))
    }

    /// What a pass found.
    pub fn passed(&self) -> Option<&T> {
        match self {
            Outcome::Ok(t) => Some(t),
            _ => None,
        }
    }

    /// What a failure carries.
    pub fn failed(&self) -> Option<&F> {
        match self {
            Outcome::Failed(f) => Some(f),
            _ => None,
        }
    }

    /// Why it was not checked.
    pub fn reason(&self) -> Option<&Reason> {
        match self {
            Outcome::NotChecked { reason } => Some(reason),
            _ => None,
        }
    }
}

/// Why something was not checked. Decisions match the variant, never the words; the words are
/// what the report shows (`Display`) and what the JSON carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Not reached yet: a stage of a row still in progress (never left in a finished report:
    /// a stage an earlier failure made unreachable becomes [`Reason::Skipped`]).
    NotReached,
    /// The stage does not apply to this row (`stun: URL`, `UDP`, `no TLS`).
    NotApplicable(String),
    /// An earlier failure made it unreachable, and which.
    Skipped(String),
    /// A 300 Try Alternate redirected the request to this ALTERNATE-SERVER (RFC 8489 §10),
    /// which is checked in the next row.
    Redirected(SocketAddr),
    /// Any other reason, in words.
    Other(String),
}

/// The words of [`Reason::NotReached`].
const NOT_REACHED: &str = "not reached";
/// The prefix of [`Reason::NotApplicable`].
const NOT_APPLICABLE: &str = "not applicable: ";
/// The prefix of [`Reason::Skipped`].
const SKIPPED: &str = "skipped: ";
/// The prefix and suffix of [`Reason::Redirected`].
const REDIRECTED: (&str, &str) = (
    "300 Try Alternate: redirected to ",
    " (checked in the next row)",
);

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NotReached => f.write_str(NOT_REACHED),
            Reason::NotApplicable(what) => write!(f, "{NOT_APPLICABLE}{what}"),
            Reason::Skipped(why) => write!(f, "{SKIPPED}{why}"),
            Reason::Redirected(to) => write!(f, "{}{to}{}", REDIRECTED.0, REDIRECTED.1),
            Reason::Other(text) => f.write_str(text),
        }
    }
}

impl Reason {
    /// The reason written as `text` (the inverse of `Display`).
    pub fn parse(text: &str) -> Reason {
        if text == NOT_REACHED {
            return Reason::NotReached;
        }
        if let Some(what) = text.strip_prefix(NOT_APPLICABLE) {
            return Reason::NotApplicable(what.into());
        }
        if let Some(why) = text.strip_prefix(SKIPPED) {
            return Reason::Skipped(why.into());
        }
        let redirected = text
            .strip_prefix(REDIRECTED.0)
            .and_then(|t| t.strip_suffix(REDIRECTED.1))
            .and_then(|a| a.parse().ok());
        match redirected {
            Some(to) => Reason::Redirected(to),
            None => Reason::Other(text.into()),
        }
    }

    /// A stage that does not apply: `not applicable: {what}`.
    pub fn not_applicable(what: impl Into<String>) -> Reason {
        Reason::NotApplicable(what.into())
    }

    /// A stage an earlier failure made unreachable: `skipped: {why}`.
    pub fn skipped(why: impl Into<String>) -> Reason {
        Reason::Skipped(why.into())
    }
}

impl From<&str> for Reason {
    fn from(text: &str) -> Reason {
        Reason::Other(text.into())
    }
}

impl From<String> for Reason {
    fn from(text: String) -> Reason {
        Reason::Other(text)
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Reason, D::Error> {
        String::deserialize(d).map(|t| Reason::parse(&t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_back_as_written() {
        let cases = [
            (Reason::NotReached, "not reached"),
            (Reason::not_applicable("UDP"), "not applicable: UDP"),
            (Reason::skipped("DNS failed"), "skipped: DNS failed"),
            (
                Reason::Redirected("198.18.0.2:3478".parse().unwrap()),
                "300 Try Alternate: redirected to 198.18.0.2:3478 (checked in the next row)",
            ),
            (Reason::from("IP literal: no DNS"), "IP literal: no DNS"),
        ];
        for (reason, text) in cases {
            assert_eq!(reason.to_string(), text);
            assert_eq!(Reason::parse(text), reason, "{text}");
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(serde_json::from_str::<Reason>(&json).unwrap(), reason);
        }
        // A redirect whose address does not parse is only words.
        let odd = "300 Try Alternate: redirected to nowhere (checked in the next row)";
        assert_eq!(Reason::parse(odd), Reason::Other(odd.into()));
    }

    #[test]
    fn the_payload_stands_beside_the_tag() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Pass {
            ms: f64,
        }
        type O = Outcome<Pass, Pass>;
        let ok: O = Outcome::Ok(Pass { ms: 1.5 });
        assert_eq!(
            serde_json::to_string(&ok).unwrap(),
            r#"{"status":"ok","ms":1.5}"#
        );
        let nc: O = Outcome::not_checked(Reason::NotReached);
        assert_eq!(
            serde_json::to_string(&nc).unwrap(),
            r#"{"status":"not-checked","reason":"not reached"}"#
        );
        let back: O = serde_json::from_str(r#"{"status":"failed","ms":2.0}"#).unwrap();
        assert_eq!(back, Outcome::Failed(Pass { ms: 2.0 }));
        assert!(serde_json::from_str::<O>(r#"{"status":"ok","ms":1.0,"extra":1}"#).is_err());
    }
}
