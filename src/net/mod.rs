//! The only place that touches the OS: sockets, DNS, interfaces, clocks and deadlines.
#![allow(clippy::disallowed_methods)] // the I/O edge: reads the clock

pub mod dns;
pub mod driver;
pub mod dtls;
pub mod ifaces;
pub mod open;
pub mod stream;
pub mod tls;
pub mod udp;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

/// The any-address of `ip`'s family, port 0: where a socket binds to reach `ip`.
pub fn any_addr(ip: IpAddr) -> SocketAddr {
    match ip {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

/// Wall-clock Unix seconds (0 if the clock is before 1970): REST credential expiry, the
/// certificate day counts.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
