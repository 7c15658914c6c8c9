//! Replies a machine had to throw away, and why.
//!
//! RFC 8489 §6.3 and §7.3 tell a client to silently discard what does not parse, fails its
//! FINGERPRINT or MESSAGE-INTEGRITY, or answers no transaction of its own. Silently is right for
//! the protocol and wrong for a diagnostic tool: "server silent" and "server answered with
//! garbage" need different fixes. So every machine keeps a small log of what it discarded, and
//! a timeout is explained with it. The log is bounded whatever a hostile server sends: a count,
//! the first reason and the latest one.

use std::fmt;
use std::net::SocketAddr;

/// One discarded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    /// The bytes are not STUN at all (RFC 8489 §6: first two bits, magic cookie, length).
    NotStun(String),
    /// STUN framing that does not hold together (attribute overruns, bad ERROR-CODE, ...).
    Malformed(String),
    /// FINGERPRINT present but wrong (RFC 8489 §7.3: discard).
    BadFingerprint,
    /// MESSAGE-INTEGRITY present but computed with another key (RFC 8489 §9.2.5: discard).
    BadIntegrity,
    /// A response carries a comprehension-required attribute we do not know (RFC 8489 §7.3.3).
    UnknownRequired(Vec<u16>),
    /// A response to a transaction we never started (or a wrong transaction id).
    UnknownTransaction,
    /// A datagram from an address other than the server's (spoofed, or rewritten on the way).
    WrongSource {
        /// Where it came from.
        from: SocketAddr,
        /// The server we talk to.
        expected: SocketAddr,
    },
    /// A ChannelData frame that does not parse (RFC 8656 §12.4).
    BadChannelData(String),
    /// A stream ended the wait holding the start of a message that never completed.
    Incomplete {
        /// Bytes of the unfinished message that did arrive.
        buffered: usize,
    },
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reject::NotStun(why) => write!(f, "not STUN: {why}"),
            Reject::Malformed(why) => write!(f, "malformed STUN: {why}"),
            Reject::BadFingerprint => f.write_str("FINGERPRINT does not match the message"),
            Reject::BadIntegrity => f.write_str(
                "MESSAGE-INTEGRITY does not match our credentials (a forged reply, or a server with another password)",
            ),
            Reject::UnknownRequired(types) => {
                let list: Vec<String> = types.iter().map(|t| format!("0x{t:04X}")).collect();
                write!(
                    f,
                    "unknown comprehension-required attribute {}",
                    list.join(", ")
                )
            }
            Reject::UnknownTransaction => {
                f.write_str("a response to a transaction iceprobe never sent (wrong transaction id)")
            }
            Reject::WrongSource { from, expected } => write!(
                f,
                "a reply came from {from}, not from the server {expected} (spoofed, or rewritten by a middlebox)"
            ),
            Reject::BadChannelData(why) => write!(f, "bad ChannelData frame: {why}"),
            Reject::Incomplete { buffered } => write!(
                f,
                "an unfinished message: {buffered} bytes arrived, the rest never did (a stalled or very slow stream)"
            ),
        }
    }
}

/// The bounded log of discarded messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rejects {
    count: u64,
    first: Option<Reject>,
    last: Option<Reject>,
}

impl Rejects {
    /// Record one discarded message.
    pub fn push(&mut self, r: Reject) {
        self.count = self.count.saturating_add(1);
        if self.first.is_none() {
            self.first = Some(r);
        } else {
            self.last = Some(r);
        }
    }

    /// How many messages were discarded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether nothing was discarded.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The first reason.
    pub fn first(&self) -> Option<&Reject> {
        self.first.as_ref()
    }

    /// One line for a cause: how many, the first reason, and the latest when it differs.
    /// `None` when nothing was discarded.
    pub fn summary(&self) -> Option<String> {
        let first = self.first.as_ref()?;
        let n = self.count;
        let what = if n == 1 {
            "1 reply".to_string()
        } else {
            format!("{n} replies")
        };
        Some(match &self.last {
            Some(last) if last != first => format!("{what} rejected: {first}; latest: {last}"),
            _ => format!("{what} rejected: {first}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_and_names_first_and_latest() {
        let mut r = Rejects::default();
        assert_eq!(r.summary(), None);
        r.push(Reject::BadFingerprint);
        assert_eq!(
            r.summary().unwrap(),
            "1 reply rejected: FINGERPRINT does not match the message"
        );
        r.push(Reject::BadFingerprint);
        assert_eq!(
            r.summary().unwrap(),
            "2 replies rejected: FINGERPRINT does not match the message"
        );
        r.push(Reject::NotStun("wrong magic cookie 0x00000000".into()));
        let s = r.summary().unwrap();
        assert!(s.starts_with("3 replies rejected: FINGERPRINT"), "{s}");
        assert!(
            s.ends_with("latest: not STUN: wrong magic cookie 0x00000000"),
            "{s}"
        );
    }

    #[test]
    fn a_flood_stays_bounded() {
        let mut r = Rejects::default();
        for i in 0..100_000u32 {
            r.push(Reject::Malformed(format!("junk {i}")));
        }
        assert_eq!(r.count(), 100_000);
        assert_eq!(r.first(), Some(&Reject::Malformed("junk 0".into())));
        assert!(r.summary().unwrap().contains("junk 99999"));
    }
}
