//! `iceprobe connect`: end-to-end ICE (RFC 8445), DTLS and an SCTP data channel with the
//! `webrtc` crate (0.21.1), between two peer connections in this process (loopback self-test)
//! or between two hosts (HTTP or copy-paste signaling).
//!
//! - [`servers`]: which configured servers webrtc can use (UDP only), converted;
//! - [`peer`]: one peer connection (mDNS off, bind address, policy), callbacks as events;
//! - [`signal`], [`stdio`], [`http`]: signaling messages and channels;
//! - [`side`]: one side's event loop, deadline and close; [`echo`]: the data channel echo;
//!   [`sweep`]: releases the TURN allocations webrtc does not know it has;
//!   [`bulk`]: `--throughput`;
//! - [`stats`]: candidates and the selected pair from the stats API; [`pairs`]: every
//!   candidate pair from the connectivity checks seen on the wire, by way of [`tap`];
//! - [`cause`]: pure judgements (pair sentence, likely cause, verdict); [`run`]: orchestration.

pub mod bulk;
pub mod cause;
pub mod echo;
pub mod http;
pub mod pairs;
pub mod peer;
pub mod run;
pub mod servers;
pub mod side;
pub mod signal;
pub mod stats;
pub mod stdio;
pub mod sweep;
pub mod tap;
