//! TURN over DTLS (RFC 7350; `turns:` URLs with `?transport=udp`): a DTLS 1.2
//! client association on one UDP link, each STUN message or ChannelData in its own record
//! (RFC 7350 §4: DTLS carries the datagrams unchanged, so the UDP rules — retransmission,
//! one message per datagram — still apply).
//!
//! The association is rtc-dtls' sans-IO [`Endpoint`]; this module feeds it datagrams and the
//! clock. The server's chain is verified after the handshake and before any application data
//! is sent, with the same verifier, roots and structured reasons as TLS
//! ([`tls::verify_presented`]), so a DTLS row and a TLS row explain a bad certificate alike.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use rtc::dtls::config::ConfigBuilder;
use rtc::dtls::endpoint::{Endpoint, EndpointEvent};
use rtc::shared::TransportProtocol;
use rustls::pki_types::ServerName;

use super::tls::{self, TlsError, TlsInfo, TlsOptions};
use super::udp::UdpLink;

/// An established DTLS association to one server.
pub struct DtlsLink {
    udp: UdpLink,
    ep: Endpoint,
    remote: SocketAddr,
    /// Decrypted records not yet handed out.
    inbox: VecDeque<Vec<u8>>,
    /// The server sent close_notify.
    closed: bool,
}

impl DtlsLink {
    /// The server's address.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// Send one message in one record.
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.ep
            .write(Instant::now(), self.remote, bytes)
            .map_err(|e| io::Error::other(format!("DTLS: {e}")))?;
        self.flush().await
    }

    /// The next decrypted message, with the datagram's source; `None` once the server closed the
    /// association. Cancel-safe: what arrived is kept in the inbox, what is queued stays queued.
    pub async fn recv(&mut self) -> io::Result<Option<(SocketAddr, Vec<u8>)>> {
        loop {
            // Whatever the association queued (a repeated final flight) goes out first.
            self.flush().await?;
            if let Some(m) = self.inbox.pop_front() {
                return Ok(Some((self.remote, m)));
            }
            if self.closed {
                return Ok(None);
            }
            let Some((from, bytes)) = self.udp.recv().await else {
                return Ok(None);
            };
            if from != self.remote {
                // Not from our server, so not for our association: hand it on as it came, for
                // the driver to reject and log as from the wrong source (as on plain UDP).
                return Ok(Some((from, bytes)));
            }
            self.absorb(&bytes)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        }
    }

    /// Close politely (close_notify).
    pub async fn close(&mut self) {
        if !self.closed {
            let _ = self.ep.close(Instant::now());
            let _ = self.flush().await;
            self.closed = true;
        }
    }

    /// Feed one datagram; `true` when it completed the handshake.
    fn absorb(&mut self, bytes: &[u8]) -> Result<bool, TlsError> {
        let events = self
            .ep
            .read(Instant::now(), self.remote, None, BytesMut::from(bytes))
            .map_err(|e| TlsError::Dtls {
                detail: e.to_string(),
            })?;
        let mut complete = false;
        for ev in events {
            match ev {
                EndpointEvent::HandshakeComplete => complete = true,
                EndpointEvent::ApplicationData(d) => self.inbox.push_back(d.to_vec()),
                EndpointEvent::PeerClosed => self.closed = true,
                // A future event kind: nothing a STUN/TURN probe needs.
                _ => {}
            }
        }
        Ok(complete)
    }

    async fn flush(&mut self) -> io::Result<()> {
        while let Some(t) = self.ep.poll_transmit() {
            self.udp.send(&t.message).await?;
        }
        Ok(())
    }
}

/// Run the DTLS handshake with the server at the other end of `udp` until `deadline`, then
/// verify its chain. `local` is the socket's address (the association's 5-tuple).
pub async fn handshake(
    udp: UdpLink,
    local: SocketAddr,
    opts: &TlsOptions,
    name: ServerName<'static>,
    deadline: Instant,
) -> Result<(DtlsLink, TlsInfo), TlsError> {
    let remote = udp.remote();
    let sni = match &name {
        ServerName::DnsName(d) => Some(d.as_ref().to_owned()),
        _ => None,
    };
    let setup = |e: String| TlsError::Dtls {
        detail: format!("cannot set up DTLS: {e}"),
    };
    let provider = rtc::crypto::default_provider().map_err(|e| setup(e.to_string()))?;
    let config = ConfigBuilder::default()
        .with_crypto_provider(provider)
        // Verified below by net::tls, with structured reasons, before any data is sent.
        .with_insecure_skip_verify(true)
        .with_server_name(sni.clone().unwrap_or_default())
        .build(true, Some(remote))
        .map_err(|e| setup(e.to_string()))?;
    let mut link = DtlsLink {
        udp,
        ep: Endpoint::new(local, TransportProtocol::UDP, None),
        remote,
        inbox: VecDeque::new(),
        closed: false,
    };
    let started = Instant::now();
    link.ep
        .connect(started, remote, Arc::new(config), None)
        .map_err(|e| setup(e.to_string()))?;
    let mut complete = false;
    while !complete {
        link.flush().await.map_err(TlsError::Io)?;
        if link.closed {
            return Err(TlsError::Dtls {
                detail: "the server closed the association during the handshake".to_owned(),
            });
        }
        let wake = link
            .ep
            .poll_timeout(&remote)
            .map_or(deadline, |t| t.min(deadline));
        tokio::select! {
            got = link.udp.recv() => {
                let Some((from, bytes)) = got else {
                    return Err(TlsError::Io(io::ErrorKind::NotConnected.into()));
                };
                if from == remote {
                    complete = link.absorb(&bytes)?;
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(TlsError::DtlsTimeout);
                }
                // Retransmit the last flight (RFC 6347 §4.2.4).
                link.ep
                    .handle_timeout(remote, now)
                    .map_err(|e| TlsError::Dtls { detail: e.to_string() })?;
            }
        }
    }
    link.flush().await.map_err(TlsError::Io)?;
    let handshake_ms = crate::model::ms(started.elapsed());
    let Some(state) = link.ep.get_connection_state(remote) else {
        return Err(TlsError::Dtls {
            detail: "the association vanished after its handshake".to_owned(),
        });
    };
    let cipher = state
        .cipher_suite()
        .map(|c| c.to_string())
        .unwrap_or_default();
    let presented = state.peer_certificates.clone();
    let (chain, verification) = match tls::verify_presented(opts, &name, &presented) {
        Ok(v) => v,
        Err(e) => {
            link.close().await;
            return Err(e);
        }
    };
    let info = TlsInfo {
        version: "DTLSv1.2".to_owned(),
        cipher,
        alpn: None,
        sni,
        handshake_ms,
        chain,
        verification,
    };
    Ok((link, info))
}
