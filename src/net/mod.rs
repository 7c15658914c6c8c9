//! The only place that touches the OS: sockets, DNS, interfaces, clocks and deadlines.
#![allow(clippy::disallowed_methods)] // the I/O edge: reads the clock

pub mod connect;
pub mod dns;
pub mod driver;
pub mod dtls;
pub mod ifaces;
pub mod stream;
pub mod tls;
pub mod udp;
