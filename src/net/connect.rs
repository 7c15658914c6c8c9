//! Opening a link to a server over its transport: a routed view of a shared UDP socket, or TCP
//! (and TLS) with connect and handshake timings. Shared by `gather` and `check`.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::driver::Link;
use super::dtls;
use super::stream::{self, StreamLink};
use super::tls::{self, TlsInfo, TlsOptions};
use super::udp::{UdpLink, UdpMux};
use crate::failure::explain_connect;
use crate::ice_url::{Host, Protocol, ServerUrl};
use crate::model::Phase;

/// What opening the link established.
#[derive(Debug)]
pub struct Opened {
    /// The link.
    pub link: Link,
    /// Our local address on it.
    pub local: SocketAddr,
    /// TCP connect time (streams only).
    pub connect: Option<Duration>,
    /// TLS handshake details (TLS only).
    pub tls: Option<TlsInfo>,
}

/// Why the link could not be opened.
#[derive(Debug)]
pub struct OpenError {
    /// `connect`, `tls` or `timeout`.
    pub phase: Phase,
    /// Technical reason.
    pub reason: String,
    /// Plain-language cause.
    pub cause: String,
    /// Time spent before failing.
    pub elapsed: Duration,
    /// For TLS failures: the stage that failed (connect passed).
    pub connect: Option<Duration>,
}

impl OpenError {
    fn since(
        started: Instant,
        phase: Phase,
        reason: String,
        cause: String,
        connect: Option<Duration>,
    ) -> Self {
        OpenError {
            phase,
            reason,
            cause,
            elapsed: started.elapsed(),
            connect,
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

/// Open a link to `addr` for `url`'s transport. UDP links come from `mux` (which must be of
/// `addr`'s family); TCP/TLS open a new connection. `deadline` bounds connect and handshake.
pub async fn open(
    url: &ServerUrl,
    addr: SocketAddr,
    mux: Option<&UdpMux>,
    tls_opts: &TlsOptions,
    deadline: Instant,
) -> Result<Opened, OpenError> {
    let started = Instant::now();
    let err =
        |phase, reason, cause, connect| OpenError::since(started, phase, reason, cause, connect);
    let proto = url.protocol();
    if proto.is_stream() {
        return open_stream(url, addr, tls_opts, deadline).await;
    }
    let Some(mux) = mux else {
        return Err(err(
            Phase::Connect,
            "no UDP socket".into(),
            "no local UDP socket of the server's address family".into(),
            None,
        ));
    };
    let local = mux
        .local_addr()
        .map_err(|e| err(Phase::Connect, e.to_string(), e.to_string(), None))?;
    if proto == Protocol::Dtls {
        return open_dtls(url, mux.link(addr), local, tls_opts, deadline).await;
    }
    Ok(Opened {
        link: Link::Udp(mux.link(addr)),
        local,
        connect: None,
        tls: None,
    })
}

/// DTLS (RFC 7350) over `udp`, a link to the server from a socket bound at `local`.
pub async fn open_dtls(
    url: &ServerUrl,
    udp: UdpLink,
    local: SocketAddr,
    tls_opts: &TlsOptions,
    deadline: Instant,
) -> Result<Opened, OpenError> {
    let started = Instant::now();
    let fail = |e: tls::TlsError| {
        let phase = if matches!(e, tls::TlsError::DtlsTimeout) {
            Phase::Timeout
        } else {
            Phase::Tls
        };
        OpenError::since(started, phase, e.to_string(), e.cause(), None)
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
    let err =
        |phase, reason, cause, connect| OpenError::since(started, phase, reason, cause, connect);
    let proto = url.protocol();
    let tcp = match stream::connect(addr, deadline.into()).await {
        Ok(s) => s,
        Err(e) => {
            let phase = if e.kind() == io::ErrorKind::TimedOut {
                Phase::Timeout
            } else {
                Phase::Connect
            };
            return Err(err(
                phase,
                e.to_string(),
                explain_connect(&e, addr.port()),
                None,
            ));
        }
    };
    let connect = started.elapsed();
    let local = tcp.local_addr().unwrap_or(addr);
    if proto == Protocol::Tcp {
        return Ok(Opened {
            link: Link::Stream(StreamLink::new(Box::new(tcp), addr)),
            local,
            connect: Some(connect),
            tls: None,
        });
    }
    let tls_fail = |e: tls::TlsError| {
        let phase = if matches!(e, tls::TlsError::Timeout) {
            Phase::Timeout
        } else {
            Phase::Tls
        };
        err(phase, e.to_string(), e.cause(), Some(connect))
    };
    let config = tls::client_config(tls_opts, &[]).map_err(tls_fail)?;
    let name = tls::server_name(tls_opts, &tls_host(url)).map_err(tls_fail)?;
    let (s, info) = tls::handshake(tcp, config, name, deadline.into())
        .await
        .map_err(tls_fail)?;
    Ok(Opened {
        link: Link::Stream(StreamLink::new(Box::new(s), addr)),
        local,
        connect: Some(connect),
        tls: Some(info),
    })
}
