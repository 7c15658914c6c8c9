//! The only place that touches the OS: sockets, DNS, interfaces, clocks and deadlines.

pub mod dns;
pub mod driver;
pub mod ifaces;
pub mod stream;
pub mod tls;
pub mod udp;
