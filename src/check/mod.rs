//! `iceprobe check`: the TURN/STUN deployment doctor.

pub mod probe;
