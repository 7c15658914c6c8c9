//! Opening the link a probe talks over: UDP from a socket of the server's family (one shared
//! socket, as a browser's host candidate base, or a pool that gives every probe its own
//! 5-tuple), TCP, TLS, or DTLS, with one mapping of what went wrong to a failure.

use std::net::SocketAddr;
use std::time::Instant;

use super::failure::{open_failure, OpenStage};
use crate::ice_url::ServerUrl;
use crate::model::Failure;
use crate::net::open::{self, OpenError, OpenFailure, Opened};
use crate::net::tls::TlsOptions;
use crate::net::udp::{MuxPool, UdpMux};

/// Where a UDP (or DTLS) link comes from.
#[derive(Clone, Copy)]
pub enum Udp<'a> {
    /// One socket for every server (`gather`: the host candidates' base, as in a browser);
    /// `None` when there is no socket of the server's family.
    Shared(Option<&'a UdpMux>),
    /// A socket of the pool that has no other link to this server (`check`: each row needs
    /// its own 5-tuple, RFC 8656 §2.2).
    Pool(&'a MuxPool),
}

/// Why a link could not be opened: the stage that failed, the failure, and the time spent.
#[derive(Debug, Clone)]
pub struct NotOpened {
    /// Which stage failed.
    pub stage: OpenStage,
    /// Why.
    pub failure: Failure,
    /// Milliseconds spent before failing.
    pub ms: f64,
}

/// Open a link to `addr` for `url`'s transport, bounded by `deadline`.
pub async fn open(
    url: &ServerUrl,
    addr: SocketAddr,
    udp: Udp<'_>,
    tls: &TlsOptions,
    deadline: Instant,
) -> Result<Opened, NotOpened> {
    let socket = if url.protocol().is_stream() {
        None
    } else {
        match udp {
            Udp::Shared(mux) => match mux.map(|m| m.local_addr().map(|l| (m.link(addr), l))) {
                Some(Ok(s)) => Some(s),
                Some(Err(e)) => return Err(not_opened(OpenFailure::Socket(e), addr)),
                None => None,
            },
            Udp::Pool(pool) => match pool.link(addr) {
                Ok(s) => Some(s),
                Err(e) => return Err(not_opened(OpenFailure::Socket(e), addr)),
            },
        }
    };
    open::open(url, addr, socket, tls, deadline)
        .await
        .map_err(|e| explain(&e, addr))
}

fn not_opened(failure: OpenFailure, addr: SocketAddr) -> NotOpened {
    explain(
        &OpenError {
            failure,
            elapsed: std::time::Duration::ZERO,
        },
        addr,
    )
}

fn explain(e: &OpenError, addr: SocketAddr) -> NotOpened {
    let (stage, failure) = open_failure(e, addr.port());
    NotOpened {
        stage,
        failure,
        ms: crate::model::ms(e.elapsed),
    }
}
