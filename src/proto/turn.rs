//! A TURN client allocation (RFC 8656), sans-IO: Allocate with the 401 challenge, long-term
//! credentials (RFC 8489 §9.2), 438 stale-nonce retry, CreatePermission, ChannelBind, Send
//! indications, ChannelData and Refresh with LIFETIME 0 to release.
//!
//! Unlike `rtc::turn::client`, every step reports its own timing and its structured ERROR-CODE,
//! which is what a diagnostic tool exists to show.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::crypto::RTCCryptoProvider;
use rtc::stun::attributes::{ATTR_NONCE, ATTR_REALM, ATTR_USERNAME};
use rtc::stun::integrity::MessageIntegrity;
use rtc::stun::message::{Message, Method, CLASS_INDICATION, CLASS_REQUEST};
use rtc::stun::message::{
    METHOD_ALLOCATE, METHOD_CHANNEL_BIND, METHOD_CREATE_PERMISSION, METHOD_REFRESH, METHOD_SEND,
};
use rtc::turn::proto::channum::ChannelNumber;
use rtc::turn::proto::data::Data;
use rtc::turn::proto::lifetime::Lifetime;
use rtc::turn::proto::peeraddr::PeerAddress;
use rtc::turn::proto::reqfamily::{REQUESTED_FAMILY_IPV4, REQUESTED_FAMILY_IPV6};
use rtc::turn::proto::reqtrans::RequestedTransport;
use rtc::turn::proto::PROTO_UDP;

use super::reject::{Reject, Rejects};
use super::stun::{self, method, Class, DecodeError, Decoded, ErrorCode, TxId};
use super::txn::{Fire, Retransmit};
use super::SansIo;
use crate::secret::Secret;

/// The TURN operation a result belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TurnOp {
    /// Allocate (RFC 8656 §7).
    Allocate,
    /// CreatePermission (RFC 8656 §9).
    CreatePermission,
    /// ChannelBind (RFC 8656 §12).
    ChannelBind,
    /// Refresh with LIFETIME 0: release (RFC 8656 §8).
    Release,
    /// A plain Binding on the same transport (a TURN server is a STUN server too).
    Binding,
}

/// Why a TURN operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnFailure {
    /// The server answered with ERROR-CODE.
    Rejected(ErrorCode),
    /// No answer in time; `rejected` summarises replies that arrived but had to be discarded
    /// (see [`Rejects::summary`]), `None` when the server was plainly silent.
    Timeout {
        /// What was discarded while waiting.
        rejected: Option<String>,
    },
    /// The server asked for credentials we do not have.
    NoCredentials {
        /// REALM from the challenge.
        realm: Option<String>,
    },
    /// The server's reply made no sense (e.g. 401 without NONCE, success without relayed address).
    Protocol(String),
}

/// What the allocation reports, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnEvent {
    /// The server challenged the unauthenticated Allocate with 401 (RFC 8656 §7.2 step 1).
    Challenged {
        /// REALM.
        realm: String,
        /// Round trip of the unauthenticated request.
        rtt: Duration,
    },
    /// The allocation exists.
    Allocated {
        /// XOR-RELAYED-ADDRESS.
        relayed: SocketAddr,
        /// XOR-MAPPED-ADDRESS: our address as the server saw it.
        mapped: Option<SocketAddr>,
        /// LIFETIME in seconds.
        lifetime: u32,
        /// Round trip of the authenticated Allocate.
        rtt: Duration,
        /// SOFTWARE.
        software: Option<String>,
        /// `Some(true)`: the success response carried a valid MESSAGE-INTEGRITY; `None`: it
        /// carried none. Never `Some(false)` from this client: a response whose
        /// MESSAGE-INTEGRITY does not verify is discarded as a reject (RFC 8489 §9.2.5); the
        /// field stays three-valued so that the report schema did not change.
        integrity: Option<bool>,
    },
    /// A permission for `peer`'s IP exists.
    PermissionCreated {
        /// The peer.
        peer: SocketAddr,
        /// Round trip.
        rtt: Duration,
    },
    /// `channel` is bound to `peer`.
    ChannelBound {
        /// The peer.
        peer: SocketAddr,
        /// Channel number 0x4000–0x4FFF.
        channel: u16,
        /// Round trip.
        rtt: Duration,
    },
    /// A Binding request was answered.
    Bound {
        /// XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS).
        mapped: SocketAddr,
        /// Round trip.
        rtt: Duration,
        /// SOFTWARE.
        software: Option<String>,
        /// FINGERPRINT: None absent, Some(valid).
        fingerprint: Option<bool>,
        /// Transmissions made.
        sends: u32,
    },
    /// The allocation was released (Refresh LIFETIME 0 answered, or 437: already gone).
    Released {
        /// Round trip.
        rtt: Duration,
    },
    /// Data from a peer, by Data indication or ChannelData.
    Data {
        /// The peer, when the Data indication named it or the channel is known.
        peer: Option<SocketAddr>,
        /// The channel number when it came as ChannelData.
        channel: Option<u16>,
        /// Payload.
        data: Vec<u8>,
    },
    /// An operation failed.
    Failed {
        /// Which operation.
        op: TurnOp,
        /// Why.
        failure: TurnFailure,
    },
}

/// Client configuration.
#[derive(Debug, Clone)]
pub struct TurnConfig {
    /// USERNAME.
    pub username: Option<String>,
    /// Password (long-term credential).
    pub password: Option<Secret>,
    /// Ask for an IPv6 relay (REQUESTED-ADDRESS-FAMILY, RFC 8656 §18.8); `None` leaves the
    /// server's default (IPv4).
    pub ipv6_relay: Option<bool>,
    /// Initial RTO for UDP.
    pub rto: Duration,
    /// Whether the transport is reliable (TCP/TLS): no retransmissions.
    pub reliable: bool,
}

#[derive(Debug)]
struct Pending {
    op: TurnOp,
    bytes: Vec<u8>,
    timer: Retransmit,
    first_sent: Instant,
    peer: Option<SocketAddr>,
    channel: Option<u16>,
    stale_retried: bool,
    authenticated: bool,
}

#[derive(Debug)]
struct Auth {
    realm: String,
    nonce: String,
    key: Vec<u8>,
}

/// One TURN allocation's client state.
pub struct TurnClient {
    cfg: TurnConfig,
    crypto: Arc<dyn RTCCryptoProvider>,
    auth: Option<Auth>,
    pending: HashMap<TxId, Pending>,
    outbox: VecDeque<Vec<u8>>,
    events: VecDeque<TurnEvent>,
    channels: HashMap<u16, SocketAddr>,
    allocated: bool,
    /// An authenticated Allocate went out: the server may hold an allocation even if its answer
    /// never reached us, so a release is worth sending.
    maybe_allocated: bool,
    released: bool,
    /// Transactions already answered: a duplicate answer (to a retransmission) is benign and
    /// must not count as a reject. Bounded: only the latest few are kept.
    finished: VecDeque<TxId>,
    rejects: Rejects,
}

/// How many answered transaction ids [`TurnClient`] remembers to recognise duplicates.
const FINISHED_KEPT: usize = 32;

impl std::fmt::Debug for TurnClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnClient")
            .field("allocated", &self.allocated)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl TurnClient {
    /// A client; nothing is sent until [`TurnClient::allocate`].
    pub fn new(cfg: TurnConfig) -> Result<Self, String> {
        let crypto = rtc::crypto::default_provider().map_err(|e| e.to_string())?;
        Ok(TurnClient {
            cfg,
            crypto,
            auth: None,
            pending: HashMap::new(),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            channels: HashMap::new(),
            allocated: false,
            maybe_allocated: false,
            released: false,
            finished: VecDeque::new(),
            rejects: Rejects::default(),
        })
    }

    /// Whether an allocation currently exists on the server (so it must be released).
    pub fn is_allocated(&self) -> bool {
        self.allocated && !self.released
    }

    /// What was discarded so far (see [`Rejects`]).
    pub fn rejects(&self) -> &Rejects {
        &self.rejects
    }

    /// Whether any request awaits an answer.
    pub fn is_busy(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Send the first, unauthenticated Allocate (RFC 8656 §7.1).
    pub fn allocate(&mut self, now: Instant) {
        self.request(now, TurnOp::Allocate, None, None);
    }

    /// Send a Binding request on this transport (RFC 5389 §7), unauthenticated.
    pub fn binding(&mut self, now: Instant) {
        self.request(now, TurnOp::Binding, None, None);
    }

    /// Ask for a permission for `peer` (RFC 8656 §9.1).
    pub fn create_permission(&mut self, now: Instant, peer: SocketAddr) {
        self.request(now, TurnOp::CreatePermission, Some(peer), None);
    }

    /// Bind `channel` (0x4000–0x4FFF) to `peer` (RFC 8656 §12.1).
    pub fn channel_bind(&mut self, now: Instant, peer: SocketAddr, channel: u16) {
        self.request(now, TurnOp::ChannelBind, Some(peer), Some(channel));
    }

    /// Release the allocation: Refresh with LIFETIME 0 (RFC 8656 §8). Also sent when an
    /// authenticated Allocate is unanswered (the server may have created it; it answers 437 if
    /// not). A no-op when nothing can be allocated.
    pub fn release(&mut self, now: Instant) {
        let could_exist = self.allocated || self.maybe_allocated;
        if could_exist && !self.released && !self.pending.values().any(|p| p.op == TurnOp::Release)
        {
            self.request(now, TurnOp::Release, None, None);
        }
    }

    /// Release an allocation this client did not make: one another client (e.g. webrtc's) may
    /// have left on this same 5-tuple. Refresh LIFETIME 0 goes out unauthenticated, is
    /// challenged (401), and is repeated with credentials; [`TurnEvent::Released`] follows the
    /// success, or 437 when the server holds nothing for the 5-tuple.
    pub fn release_unseen(&mut self, now: Instant) {
        self.maybe_allocated = true;
        self.release(now);
    }

    /// Queue a Send indication carrying `data` to `peer` (RFC 8656 §11.1). Nothing is queued
    /// when the message would exceed the 65535 bytes its 16-bit length can say.
    pub fn send_indication(&mut self, peer: SocketAddr, data: &[u8]) {
        if let Some(bytes) = peer_data_indication(METHOD_SEND, peer, data) {
            self.outbox.push_back(bytes);
        }
    }

    /// Queue a ChannelData message (RFC 8656 §12.4), padded to 4 bytes as streams require.
    /// Nothing is queued for more than 65535 bytes, which the 16-bit length cannot say.
    pub fn channel_data(&mut self, channel: u16, data: &[u8]) {
        // rtc's encoder would truncate the length field and send a frame that desynchronises a
        // TCP/TLS stream; dropped, like a Send indication too long for its length field.
        if u16::try_from(data.len()).is_err() {
            return;
        }
        let mut cd = rtc::turn::proto::chandata::ChannelData {
            data: data.to_vec(),
            number: ChannelNumber(channel),
            raw: vec![],
        };
        cd.encode();
        self.outbox.push_back(cd.raw);
    }

    /// The caller's deadline passed: every pending request fails as a timeout.
    pub fn abandon(&mut self) {
        let ops: Vec<TurnOp> = self.pending.drain().map(|(_, p)| p.op).collect();
        for op in ops {
            self.fail(op, self.timeout_failure());
        }
    }

    fn timeout_failure(&self) -> TurnFailure {
        TurnFailure::Timeout {
            rejected: self.rejects.summary(),
        }
    }

    fn handle_channel_data(&mut self, bytes: &[u8]) {
        let mut cd = rtc::turn::proto::chandata::ChannelData {
            raw: bytes.to_vec(),
            ..Default::default()
        };
        if let Err(e) = cd.decode() {
            let len = u16::from_be_bytes([bytes[2], bytes[3]]);
            return self.rejects.push(Reject::BadChannelData(format!(
                "{e} (length field {len}, {} bytes of data)",
                bytes.len() - 4
            )));
        }
        let channel = cd.number.0;
        self.events.push_back(TurnEvent::Data {
            peer: self.channels.get(&channel).copied(),
            channel: Some(channel),
            data: cd.data,
        });
    }

    fn on_success(&mut self, p: Pending, msg: &Decoded, rtt: Duration) {
        match p.op {
            TurnOp::Allocate => match msg.relayed {
                Some(relayed) => {
                    self.allocated = true;
                    let integrity = self.verify_integrity(msg);
                    self.events.push_back(TurnEvent::Allocated {
                        relayed,
                        mapped: msg.xor_mapped,
                        lifetime: msg.lifetime.unwrap_or(0),
                        rtt,
                        software: msg.software.clone(),
                        integrity,
                    });
                }
                None => self.fail(
                    TurnOp::Allocate,
                    TurnFailure::Protocol("Allocate success without XOR-RELAYED-ADDRESS".into()),
                ),
            },
            TurnOp::CreatePermission => {
                let peer = p.peer.unwrap_or_else(unreachable_peer);
                self.events
                    .push_back(TurnEvent::PermissionCreated { peer, rtt });
            }
            TurnOp::ChannelBind => {
                let peer = p.peer.unwrap_or_else(unreachable_peer);
                let channel = p.channel.unwrap_or(0);
                self.channels.insert(channel, peer);
                self.events
                    .push_back(TurnEvent::ChannelBound { peer, channel, rtt });
            }
            TurnOp::Release => {
                self.released = true;
                self.events.push_back(TurnEvent::Released { rtt });
            }
            TurnOp::Binding => {}
        }
    }

    fn on_error(&mut self, now: Instant, p: Pending, msg: &Decoded, rtt: Duration) {
        let Some(err) = msg.error.clone() else {
            self.fail(
                p.op,
                TurnFailure::Protocol("error response without ERROR-CODE".into()),
            );
            return;
        };
        match err.code {
            // 401 on the first, unauthenticated request: learn realm and nonce and retry with
            // credentials (RFC 8489 §9.2.3). A 401 on an authenticated one means wrong credentials.
            401 if !p.authenticated => {
                let (Some(realm), Some(nonce)) = (msg.realm.clone(), msg.nonce.clone()) else {
                    self.fail(
                        p.op,
                        TurnFailure::Protocol("401 without REALM or NONCE".into()),
                    );
                    return;
                };
                let (Some(user), Some(pass)) =
                    (self.cfg.username.clone(), self.cfg.password.clone())
                else {
                    self.fail(p.op, TurnFailure::NoCredentials { realm: Some(realm) });
                    return;
                };
                if p.op == TurnOp::Allocate {
                    self.events.push_back(TurnEvent::Challenged {
                        realm: realm.clone(),
                        rtt,
                    });
                }
                match MessageIntegrity::long_term_integrity_key(
                    user,
                    realm.clone(),
                    pass.expose().to_string(),
                    self.crypto.crypto(),
                ) {
                    Ok(key) => self.auth = Some(Auth { realm, nonce, key }),
                    Err(e) => {
                        self.fail(p.op, TurnFailure::Protocol(format!("key derivation: {e}")));
                        return;
                    }
                }
                self.request(now, p.op, p.peer, p.channel);
            }
            // 438 Stale Nonce: take the new nonce and retry once (RFC 8489 §9.2.5).
            438 if !p.stale_retried && msg.nonce.is_some() => {
                if let (Some(auth), Some(nonce)) = (self.auth.as_mut(), msg.nonce.clone()) {
                    auth.nonce = nonce;
                }
                if let Some(realm) = msg.realm.clone() {
                    if let Some(auth) = self.auth.as_mut() {
                        auth.realm = realm;
                    }
                }
                let txid = self.request(now, p.op, p.peer, p.channel);
                if let Some(np) = self.pending.get_mut(&txid) {
                    np.stale_retried = true;
                }
            }
            // 437 Allocation Mismatch on release: the allocation is already gone.
            437 if p.op == TurnOp::Release => {
                self.released = true;
                self.events.push_back(TurnEvent::Released { rtt });
            }
            _ => self.fail(p.op, TurnFailure::Rejected(err)),
        }
    }

    fn fail(&mut self, op: TurnOp, failure: TurnFailure) {
        self.events.push_back(TurnEvent::Failed { op, failure });
    }

    fn verify_integrity(&self, msg: &Decoded) -> Option<bool> {
        if !msg.has_integrity {
            return None;
        }
        let auth = self.auth.as_ref()?;
        let mut m = Message::new();
        m.raw = msg.raw.clone();
        m.decode().ok()?;
        Some(MessageIntegrity::check(&mut m, &auth.key, self.crypto.crypto()).is_ok())
    }

    fn request(
        &mut self,
        now: Instant,
        op: TurnOp,
        peer: Option<SocketAddr>,
        channel: Option<u16>,
    ) -> TxId {
        let txid = stun::new_txid();
        let method: Method = match op {
            TurnOp::Allocate => METHOD_ALLOCATE,
            TurnOp::CreatePermission => METHOD_CREATE_PERMISSION,
            TurnOp::ChannelBind => METHOD_CHANNEL_BIND,
            TurnOp::Release => METHOD_REFRESH,
            TurnOp::Binding => rtc::stun::message::METHOD_BINDING,
        };
        let mut m = stun::start(method, CLASS_REQUEST, txid);
        let mut r = Ok(());
        match op {
            TurnOp::Allocate => {
                r = r.and_then(|_| {
                    stun::add(
                        &mut m,
                        &RequestedTransport {
                            protocol: PROTO_UDP,
                        },
                    )
                });
                if let Some(v6) = self.cfg.ipv6_relay {
                    let fam = if v6 {
                        REQUESTED_FAMILY_IPV6
                    } else {
                        REQUESTED_FAMILY_IPV4
                    };
                    r = r.and_then(|_| stun::add(&mut m, &fam));
                }
            }
            TurnOp::CreatePermission | TurnOp::ChannelBind => {
                if let Some(ch) = channel {
                    r = r.and_then(|_| stun::add(&mut m, &ChannelNumber(ch)));
                }
                if let Some(peer) = peer {
                    r = r.and_then(|_| {
                        stun::add(
                            &mut m,
                            &PeerAddress {
                                ip: peer.ip(),
                                port: peer.port(),
                            },
                        )
                    });
                }
            }
            TurnOp::Release => {
                r = r.and_then(|_| stun::add(&mut m, &Lifetime(Duration::ZERO)));
            }
            TurnOp::Binding => {}
        }
        // Binding requests stay unauthenticated, as a browser sends them (RFC 8489 §9).
        let authenticated = self.auth.is_some() && op != TurnOp::Binding;
        if let (true, Some(auth), Some(user)) = (authenticated, &self.auth, &self.cfg.username) {
            stun::add_raw(&mut m, ATTR_USERNAME, user.as_bytes());
            stun::add_raw(&mut m, ATTR_REALM, auth.realm.as_bytes());
            stun::add_raw(&mut m, ATTR_NONCE, auth.nonce.as_bytes());
            let mi = MessageIntegrity::new_raw_integrity_with_provider(
                auth.key.clone(),
                self.crypto.crypto(),
            );
            r = r.and_then(|_| stun::add(&mut m, &mi));
        }
        if let Err(e) = r {
            self.fail(op, TurnFailure::Protocol(format!("building request: {e}")));
            return txid;
        }
        if op == TurnOp::Allocate && authenticated {
            self.maybe_allocated = true;
        }
        let bytes = stun::finish(m);
        self.outbox.push_back(bytes.clone());
        self.pending.insert(
            txid,
            Pending {
                op,
                bytes,
                timer: Retransmit::new(now, self.cfg.rto, self.cfg.reliable),
                first_sent: now,
                peer,
                channel,
                stale_retried: false,
                authenticated,
            },
        );
        txid
    }
}

impl SansIo for TurnClient {
    type Event = TurnEvent;

    /// Bytes to send now.
    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.outbox.pop_front()
    }

    /// The next event.
    fn poll_event(&mut self) -> Option<TurnEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must next run.
    fn poll_timeout(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.timer.due()).min()
    }

    /// Advance retransmission timers.
    fn handle_timeout(&mut self, now: Instant) {
        let mut failed = vec![];
        for (id, p) in self.pending.iter_mut() {
            match p.timer.fire(now) {
                Fire::Wait => {}
                Fire::Resend => self.outbox.push_back(p.bytes.clone()),
                Fire::GiveUp => failed.push(*id),
            }
        }
        for id in failed {
            if let Some(p) = self.pending.remove(&id) {
                self.fail(p.op, self.timeout_failure());
            }
        }
    }

    /// Offer one received message (a datagram, or one framed message from a stream).
    fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        if bytes.len() >= 4 && (0x40..0x50).contains(&bytes[0]) {
            self.handle_channel_data(bytes);
            return;
        }
        let msg = match stun::decode(bytes) {
            Ok(m) => m,
            Err(DecodeError::NotStun(why)) => return self.rejects.push(Reject::NotStun(why)),
            Err(DecodeError::Malformed(why)) => return self.rejects.push(Reject::Malformed(why)),
        };
        // RFC 8489 §7.3: a wrong FINGERPRINT means the bytes are not the server's message.
        if msg.fingerprint == Some(false) {
            return self.rejects.push(Reject::BadFingerprint);
        }
        if msg.method == method::DATA && msg.class == Some(Class::Indication) {
            if let Some(data) = msg.data {
                self.events.push_back(TurnEvent::Data {
                    peer: msg.peer,
                    channel: None,
                    data,
                });
            }
            return;
        }
        if !matches!(msg.class, Some(Class::Success | Class::Error)) {
            return;
        }
        let Some(p) = self.pending.remove(&msg.txid) else {
            if !self.finished.contains(&msg.txid) {
                self.rejects.push(Reject::UnknownTransaction);
            }
            return;
        };
        // RFC 8489 §7.3.3/§7.3.4: an unknown comprehension-required attribute voids a response.
        // RFC 8489 §9.2.5: a MESSAGE-INTEGRITY that does not verify with our key means the
        // response is not from the server we authenticated with. Either way: discard, keep
        // waiting (a retransmission may still get the real answer).
        let reject = if !msg.unknown_required.is_empty() {
            Some(Reject::UnknownRequired(msg.unknown_required.clone()))
        } else if p.authenticated && self.verify_integrity(&msg) == Some(false) {
            Some(Reject::BadIntegrity)
        } else {
            None
        };
        if let Some(r) = reject {
            self.rejects.push(r);
            self.pending.insert(msg.txid, p);
            return;
        }
        if self.finished.len() == FINISHED_KEPT {
            self.finished.pop_front();
        }
        self.finished.push_back(msg.txid);
        let rtt = now.saturating_duration_since(p.first_sent);
        let sends = p.timer.sends();
        match msg.class {
            Some(Class::Success) if p.op == TurnOp::Binding => {
                match msg.xor_mapped.or(msg.mapped) {
                    Some(mapped) => self.events.push_back(TurnEvent::Bound {
                        mapped,
                        rtt,
                        software: msg.software.clone(),
                        fingerprint: msg.fingerprint,
                        sends,
                    }),
                    None => self.fail(
                        TurnOp::Binding,
                        TurnFailure::Protocol("Binding success without a mapped address".into()),
                    ),
                }
            }
            Some(Class::Success) => self.on_success(p, &msg, rtt),
            _ => self.on_error(now, p, &msg, rtt),
        }
    }

    /// Record something discarded outside the machine (a datagram from the wrong source, an
    /// unfinished stream message).
    fn reject(&mut self, r: Reject) {
        self.rejects.push(r);
    }
}

/// An indication that carries data for or from a peer: XOR-PEER-ADDRESS and DATA (a Send
/// indication from a client, RFC 8656 §11.1, or a Data indication from a server, §11.4).
/// `None` when the message would exceed the 65535 bytes its 16-bit length can say: rtc's
/// encoder truncates the length instead of failing, and such a message would be garbage to the
/// server, and over TCP/TLS would desynchronise the stream.
pub fn peer_data_indication(method: Method, peer: SocketAddr, data: &[u8]) -> Option<Vec<u8>> {
    let mut m = stun::start(method, CLASS_INDICATION, stun::new_txid());
    stun::add(
        &mut m,
        &PeerAddress {
            ip: peer.ip(),
            port: peer.port(),
        },
    )
    .and_then(|_| stun::add(&mut m, &Data(data.to_vec())))
    .ok()?;
    let bytes = stun::finish(m);
    stun_length_fits(&bytes).then_some(bytes)
}

/// Whether a STUN message's 16-bit length field (RFC 8489 §5) gives its real length.
fn stun_length_fits(msg: &[u8]) -> bool {
    msg.len() >= 20 && usize::from(u16::from_be_bytes([msg[2], msg[3]])) == msg.len() - 20
}

fn unreachable_peer() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 0))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests pick an arbitrary t0
pub(crate) mod tests;
