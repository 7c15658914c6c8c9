//! A tiny reference STUN Binding client (RFC 8489) for harness self-checks and readiness
//! probes. Deliberately independent of iceprobe's own code so it can judge it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const MAGIC_COOKIE: u32 = 0x2112_A442;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const XOR_MAPPED_ADDRESS: u16 = 0x0020;

/// Sends a Binding request from `sock` to `server` (three tries within `timeout`) and returns
/// the XOR-MAPPED-ADDRESS of the success response, or `None` on timeout.
/// Must be called from inside the namespace (see [`Netns::in_ns`](super::Netns::in_ns)).
pub fn stun_binding(sock: &UdpSocket, server: SocketAddr, timeout: Duration) -> Option<SocketAddr> {
    let txid: [u8; 12] = rand::random();
    let mut req = Vec::with_capacity(20);
    req.extend_from_slice(&BINDING_REQUEST.to_be_bytes());
    req.extend_from_slice(&0u16.to_be_bytes());
    req.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    req.extend_from_slice(&txid);

    let deadline = Instant::now() + timeout;
    let per_try = timeout / 3;
    let mut buf = [0u8; 1500];
    while Instant::now() < deadline {
        sock.send_to(&req, server).ok()?;
        let try_end = (Instant::now() + per_try).min(deadline);
        loop {
            let left = try_end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            sock.set_read_timeout(Some(left)).ok()?;
            match sock.recv_from(&mut buf) {
                Ok((n, _)) => {
                    if let Some(mapped) = parse_binding_success(&buf[..n], &txid) {
                        return Some(mapped);
                    }
                }
                Err(_) => break,
            }
        }
    }
    None
}

/// Parses a Binding success response for `txid`; returns its IPv4 XOR-MAPPED-ADDRESS.
pub fn parse_binding_success(msg: &[u8], txid: &[u8; 12]) -> Option<SocketAddr> {
    if msg.len() < 20
        || u16::from_be_bytes([msg[0], msg[1]]) != BINDING_SUCCESS
        || u32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]) != MAGIC_COOKIE
        || &msg[8..20] != txid
    {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([msg[2], msg[3]]));
    let body = msg.get(20..20 + len)?;
    let mut at = 0;
    while at + 4 <= body.len() {
        let kind = u16::from_be_bytes([body[at], body[at + 1]]);
        let alen = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
        let value = body.get(at + 4..at + 4 + alen)?;
        if kind == XOR_MAPPED_ADDRESS && alen == 8 && value[1] == 0x01 {
            let port = u16::from_be_bytes([value[2], value[3]]) ^ (MAGIC_COOKIE >> 16) as u16;
            let raw = u32::from_be_bytes([value[4], value[5], value[6], value[7]]) ^ MAGIC_COOKIE;
            return Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(raw)), port));
        }
        at += 4 + alen.div_ceil(4) * 4;
    }
    None
}
