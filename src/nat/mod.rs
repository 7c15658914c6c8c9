//! `iceprobe nat`: NAT behaviour discovery (RFC 5780, RFC 4787 terms) that says how sure it is.

pub mod classify;
pub mod observe;
