//! Request retransmission timing (RFC 5389 §7.2.1), as a pure timer.
//!
//! Over UDP a request is sent up to Rc = 7 times, the interval doubling from RTO, and the client
//! then waits Rm × RTO (Rm = 16) for a last answer. Over TCP/TLS it is sent once and the client
//! waits Ti = 39.5 s (§7.2.2). Callers bound both with their own deadline.

use std::time::{Duration, Instant};

/// Default initial retransmission timeout (RFC 5389 §7.2.1 recommends 500 ms).
pub const DEFAULT_RTO: Duration = Duration::from_millis(500);
/// Rc: total transmissions over UDP.
pub const RC: u32 = 7;
/// Rm: the final wait, in units of RTO.
pub const RM: u32 = 16;
/// Ti: the single wait over a reliable transport.
pub const TI: Duration = Duration::from_millis(39_500);

/// What to do when the timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fire {
    /// Not yet due.
    Wait,
    /// Send the request again.
    Resend,
    /// Give up: no answer after every transmission.
    GiveUp,
}

/// The retransmission timer of one request.
#[derive(Debug, Clone)]
pub struct Retransmit {
    interval: Duration,
    rto: Duration,
    sends: u32,
    reliable: bool,
    due: Instant,
}

impl Retransmit {
    /// A timer for a request first sent at `now`.
    pub fn new(now: Instant, rto: Duration, reliable: bool) -> Self {
        let due = if reliable { now + TI } else { now + rto };
        Retransmit {
            interval: rto,
            rto,
            sends: 1,
            reliable,
            due,
        }
    }

    /// When the timer next needs attention.
    pub fn due(&self) -> Instant {
        self.due
    }

    /// How many times the request has been sent.
    pub fn sends(&self) -> u32 {
        self.sends
    }

    /// Advance the timer to `now`.
    pub fn fire(&mut self, now: Instant) -> Fire {
        if now < self.due {
            return Fire::Wait;
        }
        if self.reliable || self.sends >= RC {
            return Fire::GiveUp;
        }
        self.sends += 1;
        if self.sends == RC {
            self.due = now + self.rto * RM;
        } else {
            self.interval *= 2;
            self.due = now + self.interval;
        }
        Fire::Resend
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests pick an arbitrary t0
mod tests {
    use super::*;

    /// RFC 5389 §7.2.1's example: with RTO 500 ms, sends at 0, 500, 1500, 3500, 7500, 15500
    /// and 31500 ms, failure at 39500 ms.
    #[test]
    fn udp_schedule_matches_rfc_example() {
        let t0 = Instant::now();
        let mut r = Retransmit::new(t0, DEFAULT_RTO, false);
        let mut sends = vec![0u64];
        loop {
            let now = r.due();
            match r.fire(now) {
                Fire::Resend => sends.push((now - t0).as_millis() as u64),
                Fire::GiveUp => {
                    assert_eq!((now - t0).as_millis(), 39_500);
                    break;
                }
                Fire::Wait => unreachable!("fired at its due time"),
            }
        }
        assert_eq!(sends, vec![0, 500, 1500, 3500, 7500, 15500, 31500]);
    }

    #[test]
    fn reliable_sends_once() {
        let t0 = Instant::now();
        let mut r = Retransmit::new(t0, DEFAULT_RTO, true);
        assert_eq!(r.fire(t0 + Duration::from_secs(1)), Fire::Wait);
        assert_eq!(r.fire(t0 + TI), Fire::GiveUp);
        assert_eq!(r.sends(), 1);
    }
}
