//! Releasing the TURN allocations webrtc 0.21.1 does not know it has.
//!
//! On close, webrtc sends Refresh LIFETIME 0 only for allocations whose Allocate success
//! response it received (`RTCTurnRelayer::remove_client` needs the relayed address). When that
//! answer is lost, or still in flight when the run stops (deadline, Ctrl-C, SIGTERM), the server
//! keeps the allocation for its whole lifetime (coturn: 600 s) and it counts against the user's
//! quota. iceprobe closes that gap from the outside:
//!
//! - [`TurnLedger`] watches what webrtc's UDP sockets send (by way of [`super::tap`], read,
//!   never changed): an authenticated Allocate opens an entry for its 5-tuple (our address, the
//!   server's), a Refresh with LIFETIME 0 closes it.
//! - After the peer connection is closed (its sockets are gone), [`sweep`] binds each open
//!   entry's local address again and sends the release itself, as a fresh client: Refresh
//!   LIFETIME 0, 401, the same with credentials; the server answers success (released) or 437
//!   (nothing there). Ctrl-C does not stop it; a short grace bounds it.
#![allow(clippy::disallowed_methods)] // the I/O edge: reads the clock

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rtc::stun::attributes::ATTR_USERNAME;
use rtc::stun::message::{Message, CLASS_REQUEST, METHOD_ALLOCATE, METHOD_REFRESH};
use webrtc::peer_connection::RTCIceServer;

use crate::net::driver::{drive, Link};
use crate::net::udp::UdpMux;
use crate::proto::turn::{TurnClient, TurnConfig, TurnEvent};
use crate::secret::Secret;
use tokio::sync::watch;

/// What a datagram sent to a TURN server means for the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// An Allocate request with MESSAGE-INTEGRITY (the server may allocate on it), and its
    /// USERNAME.
    AuthenticatedAllocate(String),
    /// A Refresh request with LIFETIME 0: the release.
    Release,
}

/// Read one datagram (pure). Anything else — data, ChannelData, other requests — is `None`.
pub fn classify(datagram: &[u8]) -> Option<Sent> {
    // STUN request types: 0x0003 Allocate, 0x0004 Refresh (RFC 8656 §17); cheap pre-check
    // before decoding, as every media packet passes here.
    if datagram.len() < 20 || datagram[0] != 0 || !matches!(datagram[1], 0x03 | 0x04) {
        return None;
    }
    let mut m = Message::new();
    m.raw = datagram.to_vec();
    m.decode().ok()?;
    if m.typ.class != CLASS_REQUEST {
        return None;
    }
    let d = crate::proto::stun::decode(datagram).ok()?;
    if m.typ.method == METHOD_ALLOCATE && d.has_integrity {
        let user = m.get(ATTR_USERNAME).ok()?;
        return Some(Sent::AuthenticatedAllocate(
            String::from_utf8_lossy(&user).into_owned(),
        ));
    }
    if m.typ.method == METHOD_REFRESH && d.lifetime == Some(0) {
        return Some(Sent::Release);
    }
    None
}

/// Per 5-tuple (our address, the server's): the USERNAME of its authenticated Allocate, and
/// whether a release followed.
#[derive(Default)]
pub struct TurnLedger {
    entries: Mutex<BTreeMap<(SocketAddr, SocketAddr), (String, bool)>>,
}

impl TurnLedger {
    fn observe(&self, local: SocketAddr, to: SocketAddr, datagram: &[u8]) {
        let Some(sent) = classify(datagram) else {
            return;
        };
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match sent {
            Sent::AuthenticatedAllocate(user) => {
                e.insert((local, to), (user, false));
            }
            Sent::Release => {
                if let Some(entry) = e.get_mut(&(local, to)) {
                    entry.1 = true;
                }
            }
        }
    }

    /// (our address, server, username) of every allocation that may exist and was not released.
    pub fn unreleased(&self) -> Vec<(SocketAddr, SocketAddr, String)> {
        let e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        e.iter()
            .filter(|(_, (_, released))| !released)
            .map(|((local, server), (user, _))| (*local, *server, user.clone()))
            .collect()
    }
}

/// The ledger reads what webrtc's sockets send (see [`super::tap`]); received data is not its
/// business.
impl super::tap::Watcher for TurnLedger {
    fn datagram(
        &self,
        dir: super::pairs::Dir,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
        _now_ms: f64,
    ) {
        if dir == super::pairs::Dir::Out {
            self.observe(local, remote, bytes);
        }
    }
}

/// How long the sweep may take after the peer connection closed.
pub const SWEEP_GRACE: Duration = Duration::from_secs(2);

/// Release every allocation in `ledger` that webrtc did not release, with the credential of
/// the server whose USERNAME it used; returns how many the servers confirmed (success or 437).
/// Run only after the peer connection is closed: it binds the same local addresses.
pub async fn sweep(ledger: &TurnLedger, servers: &[RTCIceServer], grace: Duration) -> usize {
    let deadline = Instant::now() + grace;
    let mut tasks = tokio::task::JoinSet::new();
    for (local, server, user) in ledger.unreleased() {
        let Some(pass) = servers
            .iter()
            .find(|s| s.username == user)
            .map(|s| Secret::new(s.credential.clone()))
        else {
            continue;
        };
        tasks.spawn(release_one(local, server, user, pass, deadline));
    }
    let mut released = 0;
    while let Some(r) = tasks.join_next().await {
        if matches!(r, Ok(true)) {
            released += 1;
        }
    }
    released
}

async fn release_one(
    local: SocketAddr,
    server: SocketAddr,
    user: String,
    pass: Secret,
    deadline: Instant,
) -> bool {
    // webrtc's socket is closed by now; should its driver still hold it, try again briefly.
    let mux = loop {
        match UdpMux::bind(local).await {
            Ok(m) => break m,
            Err(_) if Instant::now() + Duration::from_millis(50) < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(_) => return false,
        }
    };
    let Ok(mut c) = TurnClient::new(TurnConfig {
        username: Some(user),
        password: Some(pass),
        ipv6_relay: None,
        rto: Duration::from_millis(250),
        reliable: false,
    }) else {
        return false;
    };
    c.release_unseen(Instant::now());
    let mut link = Link::Udp(mux.link(server));
    // Ctrl-C must not stop the release itself; the deadline bounds it.
    let (_keep, mut never) = watch::channel(false);
    let mut released = false;
    drive(
        &mut link,
        &mut c,
        deadline,
        &mut never,
        |_, ev, _| match ev {
            TurnEvent::Released { .. } => {
                released = true;
                true
            }
            TurnEvent::Failed { .. } => true,
            _ => false,
        },
    )
    .await;
    released
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::stun;
    use crate::proto::SansIo;
    use rtc::stun::attributes::{ATTR_NONCE, ATTR_REALM};
    use rtc::stun::error_code::{ErrorCode, ErrorCodeAttribute};
    use rtc::stun::message::{
        Method, CLASS_ERROR_RESPONSE, CLASS_SUCCESS_RESPONSE, METHOD_BINDING,
    };

    fn client() -> TurnClient {
        TurnClient::new(TurnConfig {
            username: Some("alice".into()),
            password: Some(Secret::new("pw")),
            ipv6_relay: None,
            rto: Duration::from_millis(250),
            reliable: false,
        })
        .unwrap()
    }

    /// The 401 a server answers `request` with.
    fn challenge(request: &[u8], method: Method) -> Vec<u8> {
        let d = stun::decode(request).unwrap();
        let mut r = stun::start(method, CLASS_ERROR_RESPONSE, d.txid);
        stun::add(
            &mut r,
            &ErrorCodeAttribute {
                code: ErrorCode(401),
                reason: b"Unauthorized".to_vec(),
            },
        )
        .unwrap();
        stun::add_raw(&mut r, ATTR_REALM, b"sweep.test");
        stun::add_raw(&mut r, ATTR_NONCE, b"n0nce");
        stun::finish(r)
    }

    #[test]
    fn classifies_authenticated_allocates_and_releases_only() {
        let now = Instant::now();
        let mut c = client();
        c.allocate(now);
        let first = c.poll_transmit().unwrap();
        // Unauthenticated: the server allocates nothing on it.
        assert_eq!(classify(&first), None);
        c.handle_input(now, &challenge(&first, METHOD_ALLOCATE));
        let signed = c.poll_transmit().unwrap();
        assert_eq!(
            classify(&signed),
            Some(Sent::AuthenticatedAllocate("alice".into()))
        );

        let mut r = client();
        r.release_unseen(now);
        let release = r.poll_transmit().unwrap();
        assert_eq!(classify(&release), Some(Sent::Release));
        r.handle_input(now, &challenge(&release, METHOD_REFRESH));
        assert_eq!(classify(&r.poll_transmit().unwrap()), Some(Sent::Release));

        let ok = stun::finish(stun::start(
            METHOD_BINDING,
            CLASS_SUCCESS_RESPONSE,
            stun::new_txid(),
        ));
        for junk in [
            &ok[..],
            &[0x40, 0, 0, 4, 1, 2, 3, 4][..],
            &[][..],
            &[0, 3][..],
        ] {
            assert_eq!(classify(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn the_ledger_keeps_what_was_allocated_and_not_released() {
        let now = Instant::now();
        let mut c = client();
        c.allocate(now);
        let first = c.poll_transmit().unwrap();
        c.handle_input(now, &challenge(&first, METHOD_ALLOCATE));
        let signed = c.poll_transmit().unwrap();
        let mut r = client();
        r.release_unseen(now);
        let release = r.poll_transmit().unwrap();

        let l = TurnLedger::default();
        let a: SocketAddr = "198.18.0.10:5000".parse().unwrap();
        let b: SocketAddr = "198.18.0.10:5001".parse().unwrap();
        let s: SocketAddr = "198.18.0.1:3478".parse().unwrap();
        l.observe(a, s, &first);
        assert!(l.unreleased().is_empty(), "unauthenticated: nothing held");
        l.observe(a, s, &signed);
        l.observe(b, s, &signed);
        l.observe(b, s, &release);
        // A release for a 5-tuple with no Allocate changes nothing.
        l.observe(a, "198.18.0.2:3478".parse().unwrap(), &release);
        assert_eq!(l.unreleased(), vec![(a, s, "alice".to_string())]);
    }
}
