//! A STUN/TURN server that misbehaves on command, for what a real coturn will never do:
//! truncated and overrunning messages, wrong cookies and transaction ids, forged FINGERPRINT
//! and MESSAGE-INTEGRITY, out-of-range error codes, nonce loops, redirect loops, floods, and
//! streams that stall. It listens on loopback; every thread stops when its guard drops.
//!
//! Replies are built with iceprobe's own STUN builders (`proto::stun`, over the `rtc` codec),
//! then mangled byte by byte: the point is what the *client* does with them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use iceprobe::proto::stun::{self, method, Class, Decoded};
use rtc::stun::attributes::{
    AttrType, ATTR_ALTERNATE_SERVER, ATTR_ERROR_CODE, ATTR_NONCE, ATTR_REALM,
};
use rtc::stun::error_code::{ErrorCode, ErrorCodeAttribute};
use rtc::stun::integrity::MessageIntegrity;
use rtc::stun::message::{Message, Method, CLASS_ERROR_RESPONSE, CLASS_SUCCESS_RESPONSE};
use rtc::stun::xoraddr::XorMappedAddress;

/// The credentials the fake accepts (when it accepts any).
pub const USER: &str = "hostile";
/// The password (not a secret: a test fixture).
pub const PASS: &str = "hostile-pass";
const REALM: &str = "hostile.test";

/// How the UDP fake misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every reply cut 8 bytes short (the header still announces the full length).
    Truncated,
    /// Every reply's length field 400 bytes larger than what is sent.
    LengthOverrun,
    /// The first attribute claims far more bytes than the message holds.
    AttrOverrun,
    /// 3,000 attributes in every reply.
    ManyAttributes,
    /// Magic cookie zeroed.
    WrongCookie,
    /// A transaction id the client never used.
    WrongTxid,
    /// Honest replies, sent from another port.
    WrongSource,
    /// Honest replies, sent from another address (127.0.0.2).
    WrongSourceAddress,
    /// Honest replies without FINGERPRINT (legal: RFC 8489 makes it optional).
    NoFingerprint,
    /// FINGERPRINT present but wrong.
    BadFingerprint,
    /// Authenticated replies signed with another key.
    BadIntegrity,
    /// Error responses with ERROR-CODE class 7 (valid: 3–6).
    ErrorClassOutOfRange,
    /// Every Allocate gets 401 with a fresh nonce, authenticated or not.
    Endless401,
    /// Every authenticated request gets 438 Stale Nonce with a fresh nonce.
    StaleNonceLoop,
    /// Every Allocate gets 300 Try Alternate naming the fake itself.
    AlternateSelf,
    /// Each request is answered by 2,000 junk datagrams and nothing else.
    Flood,
    /// Replies carry an unknown comprehension-required attribute (0x7FFF).
    UnknownRequired,
    /// An honest TURN server, but ChannelData from the client is answered with a frame whose
    /// length field (1,000) exceeds its data.
    BadChannelData,
}

/// The UDP fake: a guard that stops its thread on drop.
pub struct HostileUdp {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HostileUdp {
    /// Start on 127.0.0.1.
    pub fn start(mode: Mode) -> HostileUdp {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind the hostile UDP server");
        let other = UdpSocket::bind(if mode == Mode::WrongSourceAddress {
            "127.0.0.2:0"
        } else {
            "127.0.0.1:0"
        })
        .expect("bind its second socket");
        let addr = sock.local_addr().unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut server = Fake::new(mode, addr);
            let mut buf = vec![0u8; 65_536];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                for reply in server.answer(&buf[..n], from) {
                    let spoof = matches!(mode, Mode::WrongSource | Mode::WrongSourceAddress);
                    let via = if spoof { &other } else { &sock };
                    let _ = via.send_to(&reply, from);
                }
            }
        });
        HostileUdp {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for HostileUdp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The protocol side of the fake: request in, replies out.
struct Fake {
    mode: Mode,
    me: SocketAddr,
    nonce: u64,
    relays: u16,
    key: Vec<u8>,
}

impl Fake {
    fn new(mode: Mode, me: SocketAddr) -> Fake {
        let provider = rtc::crypto::default_provider().expect("crypto provider");
        let key = MessageIntegrity::long_term_integrity_key(
            USER.into(),
            REALM.into(),
            PASS.into(),
            provider.crypto(),
        )
        .expect("long-term key");
        Fake {
            mode,
            me,
            nonce: 0,
            relays: 0,
            key,
        }
    }

    fn answer(&mut self, bytes: &[u8], from: SocketAddr) -> Vec<Vec<u8>> {
        if !bytes.is_empty() && (0x40..0x50).contains(&bytes[0]) {
            // ChannelData from the client (RFC 8656 §12.4).
            if self.mode == Mode::BadChannelData {
                let mut frame = vec![bytes[0], bytes[1]];
                frame.extend_from_slice(&1000u16.to_be_bytes());
                frame.extend_from_slice(b"8 bytes!");
                return vec![frame];
            }
            return vec![];
        }
        let Ok(req) = stun::decode(bytes) else {
            return vec![];
        };
        if req.class != Some(Class::Request) {
            return vec![]; // Send indications: no relaying here
        }
        if self.mode == Mode::Flood {
            return flood(&req);
        }
        let Some(reply) = self.honest(&req, from) else {
            return vec![];
        };
        vec![self.mangle(reply)]
    }

    fn fresh_nonce(&mut self) -> String {
        self.nonce += 1;
        format!("nonce-{}", self.nonce)
    }

    /// What the server sends before the mode's byte-level mangling.
    fn honest(&mut self, req: &Decoded, from: SocketAddr) -> Option<Vec<u8>> {
        let m = method_of(req.method)?;
        // A well-formed reply (FINGERPRINT and all) to a transaction the client never started.
        let txid = if self.mode == Mode::WrongTxid {
            stun::new_txid()
        } else {
            req.txid
        };
        let authed = req.has_integrity;
        if self.mode == Mode::ErrorClassOutOfRange {
            let mut r = stun::start(m, CLASS_ERROR_RESPONSE, txid);
            stun::add_raw(&mut r, ATTR_ERROR_CODE, &[0, 0, 7, 1, b'?', 0, 0, 0]);
            return Some(stun::finish(r));
        }
        if req.method == method::BINDING {
            let mut r = stun::start(m, CLASS_SUCCESS_RESPONSE, txid);
            add_xor(&mut r, rtc::stun::attributes::ATTR_XORMAPPED_ADDRESS, from);
            return Some(self.seal(r, false));
        }
        if req.method == method::ALLOCATE && self.mode == Mode::AlternateSelf {
            let mut r = error(m, txid, 300, "Try Alternate");
            rtc::stun::addr::MappedAddress {
                ip: self.me.ip(),
                port: self.me.port(),
            }
            .add_to_as(&mut r, ATTR_ALTERNATE_SERVER)
            .expect("ALTERNATE-SERVER");
            r.write_length();
            return Some(stun::finish(r));
        }
        if !authed || (self.mode == Mode::Endless401 && req.method == method::ALLOCATE) {
            let nonce = self.fresh_nonce();
            let mut r = error(m, txid, 401, "Unauthorized");
            stun::add_raw(&mut r, ATTR_REALM, REALM.as_bytes());
            stun::add_raw(&mut r, ATTR_NONCE, nonce.as_bytes());
            return Some(stun::finish(r));
        }
        if self.mode == Mode::StaleNonceLoop {
            let nonce = self.fresh_nonce();
            let mut r = error(m, txid, 438, "Stale Nonce");
            stun::add_raw(&mut r, ATTR_REALM, REALM.as_bytes());
            stun::add_raw(&mut r, ATTR_NONCE, nonce.as_bytes());
            return Some(stun::finish(r));
        }
        let mut r = stun::start(m, CLASS_SUCCESS_RESPONSE, txid);
        if req.method == method::ALLOCATE {
            self.relays += 1;
            let relayed = SocketAddr::from(([127, 0, 0, 1], 40_000 + self.relays));
            add_xor(
                &mut r,
                rtc::stun::attributes::ATTR_XOR_RELAYED_ADDRESS,
                relayed,
            );
            add_xor(&mut r, rtc::stun::attributes::ATTR_XORMAPPED_ADDRESS, from);
            stun::add_raw(
                &mut r,
                rtc::stun::attributes::ATTR_LIFETIME,
                &600u32.to_be_bytes(),
            );
        }
        Some(self.seal(r, true))
    }

    /// Extra attributes, MESSAGE-INTEGRITY (authenticated replies) and FINGERPRINT, as the
    /// mode dictates.
    fn seal(&self, mut r: Message, authed: bool) -> Vec<u8> {
        match self.mode {
            Mode::ManyAttributes => {
                for _ in 0..3000 {
                    stun::add_raw(&mut r, AttrType(0x8099), &[1, 2, 3, 4]);
                }
            }
            Mode::UnknownRequired => stun::add_raw(&mut r, AttrType(0x7FFF), &[0; 4]),
            _ => {}
        }
        if authed {
            let key = if self.mode == Mode::BadIntegrity {
                b"another-servers-key-0".to_vec()
            } else {
                self.key.clone()
            };
            let provider = rtc::crypto::default_provider().expect("crypto provider");
            let mi = MessageIntegrity::new_raw_integrity_with_provider(key, provider.crypto());
            stun::add(&mut r, &mi).expect("MESSAGE-INTEGRITY");
        }
        if self.mode == Mode::NoFingerprint {
            r.write_length();
            return r.raw;
        }
        stun::finish(r)
    }

    /// Byte-level damage to an otherwise honest reply.
    fn mangle(&self, mut b: Vec<u8>) -> Vec<u8> {
        let n = b.len();
        match self.mode {
            Mode::Truncated => b.truncate(n - 8),
            Mode::LengthOverrun => {
                let len = u16::from_be_bytes([b[2], b[3]]) + 400;
                b[2..4].copy_from_slice(&len.to_be_bytes());
            }
            Mode::AttrOverrun => b[22..24].copy_from_slice(&0x0FF0u16.to_be_bytes()),
            Mode::WrongCookie => b[4..8].copy_from_slice(&[0xDE, 0xAD, 0xBE, 0xEF]),
            Mode::BadFingerprint => b[n - 1] ^= 0xFF,
            _ => {}
        }
        b
    }
}

fn method_of(m: u16) -> Option<Method> {
    use rtc::stun::message::*;
    Some(match m {
        method::BINDING => METHOD_BINDING,
        method::ALLOCATE => METHOD_ALLOCATE,
        method::REFRESH => METHOD_REFRESH,
        method::CREATE_PERMISSION => METHOD_CREATE_PERMISSION,
        method::CHANNEL_BIND => METHOD_CHANNEL_BIND,
        _ => return None,
    })
}

fn error(m: Method, txid: stun::TxId, code: u16, reason: &str) -> Message {
    let mut r = stun::start(m, CLASS_ERROR_RESPONSE, txid);
    stun::add(
        &mut r,
        &ErrorCodeAttribute {
            code: ErrorCode(code),
            reason: reason.as_bytes().to_vec(),
        },
    )
    .expect("ERROR-CODE");
    r
}

fn add_xor(r: &mut Message, t: AttrType, a: SocketAddr) {
    // The XOR is keyed on the message's transaction id, already set by `stun::start`.
    XorMappedAddress {
        ip: a.ip(),
        port: a.port(),
    }
    .add_to_as(r, t)
    .expect("XOR address");
    r.write_length();
}

/// 2,000 datagrams of junk for one request: random bytes, STUN with foreign transaction ids,
/// cut headers. Never the answer.
fn flood(req: &Decoded) -> Vec<Vec<u8>> {
    (0..2000u32)
        .map(|i| match i % 3 {
            0 => (0..(i % 200) as usize)
                .map(|_| rand::random::<u8>())
                .collect(),
            1 => stun::binding_request(stun::new_txid()),
            _ => req.raw[..12.min(req.raw.len())].to_vec(),
        })
        .collect()
}

/// How a TCP or TLS fake misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamMode {
    /// Accepts and never says a word (slowloris).
    Mute,
    /// Answers a Binding honestly, one byte per second.
    OneBytePerSecond,
    /// TLS: reads the ClientHello and never answers it.
    StallHandshake,
    /// TLS: completes the handshake, then sends an HTTP error page.
    GarbageAfterHandshake,
}

/// The TCP/TLS fake: a guard that stops its threads on drop.
pub struct HostileStream {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HostileStream {
    /// Start on 127.0.0.1; `tls` is the (certificate, key) PEM pair for the TLS modes.
    pub fn start(mode: StreamMode, tls: Option<(&std::path::Path, &std::path::Path)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the hostile TCP server");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let tls_config = tls.map(|(cert, key)| server_config(cert, key));
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut conns = vec![];
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let flag = flag.clone();
                        let cfg = tls_config.clone();
                        conns.push(std::thread::spawn(move || serve(mode, s, cfg, &flag)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
            for c in conns {
                let _ = c.join();
            }
        });
        HostileStream {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for HostileStream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn server_config(cert: &std::path::Path, key: &std::path::Path) -> Arc<rustls::ServerConfig> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(cert).unwrap(),
    ))
    .collect::<Result<_, _>>()
    .unwrap();
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key).unwrap(),
    ))
    .unwrap()
    .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    )
}

/// Sleep in small steps so the guard's stop flag ends the connection thread promptly.
fn nap(total: Duration, stop: &AtomicBool) -> bool {
    let step = Duration::from_millis(20);
    let mut slept = Duration::ZERO;
    while slept < total {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(step);
        slept += step;
    }
    true
}

fn serve(
    mode: StreamMode,
    mut s: TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: &AtomicBool,
) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
    match mode {
        StreamMode::Mute | StreamMode::StallHandshake => {
            // Read (and drop) whatever comes, never answer.
            let mut buf = [0u8; 4096];
            while !stop.load(Ordering::Relaxed) {
                if let Ok(0) = s.read(&mut buf) {
                    return;
                }
            }
        }
        StreamMode::OneBytePerSecond => {
            let mut buf = [0u8; 4096];
            let mut got = vec![];
            while got.len() < 20 && !stop.load(Ordering::Relaxed) {
                match s.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(_) => {}
                }
            }
            let Ok(req) = stun::decode(&got[..got.len().min(20 + stun_len(&got))]) else {
                return;
            };
            let mut r = stun::start(
                rtc::stun::message::METHOD_BINDING,
                CLASS_SUCCESS_RESPONSE,
                req.txid,
            );
            add_xor(
                &mut r,
                rtc::stun::attributes::ATTR_XORMAPPED_ADDRESS,
                s.peer_addr().unwrap(),
            );
            for byte in stun::finish(r) {
                if s.write_all(&[byte]).is_err() || !nap(Duration::from_secs(1), stop) {
                    return;
                }
            }
        }
        StreamMode::GarbageAfterHandshake => {
            let Some(cfg) = tls else { return };
            let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                return;
            };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut tls = rustls::StreamOwned::new(conn, s);
            let mut buf = [0u8; 4096];
            // The first read drives the handshake and returns the client's first request.
            if tls.read(&mut buf).is_err() {
                return;
            }
            let _ = tls.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            let _ = tls.flush();
            nap(Duration::from_secs(30), stop);
        }
    }
}

fn stun_len(b: &[u8]) -> usize {
    if b.len() < 4 {
        return 0;
    }
    usize::from(u16::from_be_bytes([b[2], b[3]]))
}
