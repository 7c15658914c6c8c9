//! Sans-IO protocol machines: no sockets, no clock. Time is passed in as `now`.
//!
//! Each machine exposes `handle_input(now, bytes)`, `handle_timeout(now)`, `poll_transmit()`,
//! `poll_timeout()` and `poll_event()`; `net::driver` feeds them from real sockets and tests feed
//! them from a virtual clock.

use std::time::Instant;

use reject::Reject;

pub mod binding;
pub mod reject;
pub mod stun;
pub mod turn;
pub mod txn;

/// The interface of iceprobe's single-link sans-IO machines (a STUN transaction, a TURN
/// allocation): what `net::driver` feeds from a real link and tests feed on a virtual clock.
/// Nothing here reads the clock or touches a socket: `now` is always passed in.
pub trait SansIo {
    /// What the machine reports.
    type Event;
    /// One received message: a datagram, or one framed message from a stream.
    fn handle_input(&mut self, now: Instant, bytes: &[u8]);
    /// Advance timers (retransmissions, give-up) to `now`.
    fn handle_timeout(&mut self, now: Instant);
    /// Bytes to send now.
    fn poll_transmit(&mut self) -> Option<Vec<u8>>;
    /// When [`SansIo::handle_timeout`] must next run; `None` when nothing is pending.
    fn poll_timeout(&self) -> Option<Instant>;
    /// The next event.
    fn poll_event(&mut self) -> Option<Self::Event>;
    /// Something arrived outside the machine's view that it must not see (a datagram from
    /// the wrong source, an unfinished stream message): recorded, so "silent" and "answered
    /// garbage" differ.
    fn reject(&mut self, r: Reject);
}
