//! Opening a link to a server over its transport: a routed view of a shared UDP socket, TCP,
//! TLS over TCP, or DTLS over UDP, with connect and handshake timings. What a failure means to
//! a user (its phase and cause) is the probing layer's (`probe::link`); here it stays an error.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::driver::Link;
use super::dtls;
use super::stream::{self, StreamLink};
use super::tls::{self, TlsError, TlsInfo, TlsOptions};
use super::udp::UdpLink;
use crate::ice_url::{Host, Protocol, ServerUrl};

/// What opening the link established.
#[derive(Debug)]
pub struct Opened {
    /// The link.
    pub link: Link,
    /// Our local address on it.
    pub local: SocketAddr,
    /// TCP connect time (streams only).
    pub connect: Option<Duration>,
    /// TLS or DTLS handshake details.
    pub tls: Option<TlsInfo>,
}

/// Why the link could not be opened, and how long trying took.
#[derive(Debug)]
pub struct OpenError {
    /// What failed.
    pub failure: OpenFailure,
    /// Time spent before failing.
    pub elapsed: Duration,
}

/// What failed while opening a link.
#[derive(Debug)]
pub enum OpenFailure {
    /// No local UDP socket of the server's address family.
    NoSocket,
    /// A local socket could not be made or asked its address.
    Socket(io::Error),
    /// The TCP connect failed (`TimedOut` when the deadline passed).
    Connect(io::Error),
    /// The TLS (after a TCP connect taking `connect`) or DTLS handshake failed.
    Handshake {
        /// Why.
        error: TlsError,
        /// The TCP connect time; `None` for DTLS, which has no connect.
        connect: Option<Duration>,
    },
}

impl OpenError {
    fn since(started: Instant, failure: OpenFailure) -> OpenError {
        OpenError {
            failure,
            elapsed: started.elapsed(),
        }
    }
}

/// The name to verify a TLS certificate against: the URL host without IPv6 brackets.
pub fn tls_host(url: &ServerUrl) -> String {
    match &url.host {
        Host::Ip(ip) => ip.to_string(),
        Host::Name(n) => n.clone(),
    }
}

/// Open a link to `addr` for `url`'s transport. UDP and DTLS ride on `udp`, a link from a
/// local socket of `addr`'s family bound at its local address (`None`: no such socket); TCP
/// and TLS open a new connection. `deadline` bounds the connect and the handshake.
pub async fn open(
    url: &ServerUrl,
    addr: SocketAddr,
    udp: Option<(UdpLink, SocketAddr)>,
    tls_opts: &TlsOptions,
    deadline: Instant,
) -> Result<Opened, OpenError> {
    let proto = url.protocol();
    if proto.is_stream() {
        return open_stream(url, addr, tls_opts, deadline).await;
    }
    let Some((link, local)) = udp else {
        return Err(OpenError::since(Instant::now(), OpenFailure::NoSocket));
    };
    if proto == Protocol::Dtls {
        return open_dtls(url, link, local, tls_opts, deadline).await;
    }
    Ok(Opened {
        link: Link::Udp(link),
        local,
        connect: None,
        tls: None,
    })
}

/// DTLS (RFC 7350) over `udp`, a link to the server from a socket bound at `local`.
async fn open_dtls(
    url: &ServerUrl,
    udp: UdpLink,
    local: SocketAddr,
    tls_opts: &TlsOptions,
    deadline: Instant,
) -> Result<Opened, OpenError> {
    let started = Instant::now();
    let fail = |error| {
        OpenError::since(
            started,
            OpenFailure::Handshake {
                error,
                connect: None,
            },
        )
    };
    let name = tls::server_name(tls_opts, &tls_host(url)).map_err(fail)?;
    let (link, info) = dtls::handshake(udp, local, tls_opts, name, deadline)
        .await
        .map_err(fail)?;
    Ok(Opened {
        link: Link::Dtls(Box::new(link)),
        local,
        connect: None,
        tls: Some(info),
    })
}

/// TCP, and TLS over it, with connect and handshake timings.
async fn open_stream(
    url: &ServerUrl,
    addr: SocketAddr,
    tls_opts: &TlsOptions,
    deadline: Instant,
) -> Result<Opened, OpenError> {
    let started = Instant::now();
    let tcp = stream::connect(addr, deadline.into())
        .await
        .map_err(|e| OpenError::since(started, OpenFailure::Connect(e)))?;
    let connect = started.elapsed();
    let local = tcp.local_addr().unwrap_or(addr);
    if url.protocol() == Protocol::Tcp {
        return Ok(Opened {
            link: Link::Stream(StreamLink::new(Box::new(tcp), addr)),
            local,
            connect: Some(connect),
            tls: None,
        });
    }
    let fail = |error| {
        OpenError::since(
            started,
            OpenFailure::Handshake {
                error,
                connect: Some(connect),
            },
        )
    };
    let config = tls::client_config(tls_opts, &[]).map_err(fail)?;
    let name = tls::server_name(tls_opts, &tls_host(url)).map_err(fail)?;
    let (s, info) = tls::handshake(tcp, config, name, deadline.into())
        .await
        .map_err(fail)?;
    Ok(Opened {
        link: Link::Stream(StreamLink::new(Box::new(s), addr)),
        local,
        connect: Some(connect),
        tls: Some(info),
    })
}
