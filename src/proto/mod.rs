//! Sans-IO protocol machines: no sockets, no clock. Time is passed in as `now`.
//!
//! Each machine exposes `handle_input(now, bytes)`, `handle_timeout(now)`, `poll_transmit()`,
//! `poll_timeout()` and `poll_event()`; `net::driver` feeds them from real sockets and tests feed
//! them from a virtual clock.

pub mod binding;
pub mod reject;
pub mod stun;
pub mod turn;
pub mod txn;
