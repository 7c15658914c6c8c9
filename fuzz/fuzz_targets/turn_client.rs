//! The TURN client machine on whatever a server (or anyone who can reach our socket) sends:
//! `TurnClient::handle_input` must never panic, whatever the bytes and in whatever state.
//!
//! The input is a little script. Each step is one opcode byte and its operands; `Input` steps
//! carry a message whose transaction id is overwritten with that of a request the client really
//! sent, so that answers reach the 401 challenge, the authenticated retry, the stale-nonce
//! retry and the success paths instead of being dropped as unsolicited.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use iceprobe::proto::stun;
use iceprobe::proto::turn::{TurnClient, TurnConfig};
use iceprobe::proto::SansIo;
use iceprobe::secret::Secret;
use libfuzzer_sys::fuzz_target;

/// Takes bytes off the front of the script; runs dry as zeros.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte().unwrap_or(0), self.byte().unwrap_or(0)])
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        b
    }
    fn peer(&mut self) -> SocketAddr {
        let ip = if self.byte().unwrap_or(0) & 1 == 0 {
            IpAddr::V4(Ipv4Addr::from(
                u32::from(self.u16()) << 16 | u32::from(self.u16()),
            ))
        } else {
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, self.u16()))
        };
        SocketAddr::new(ip, self.u16())
    }
}

fuzz_target!(|data: &[u8]| {
    let mut s = Script(data);
    let flags = s.byte().unwrap_or(0);
    let cfg = TurnConfig {
        username: (flags & 1 == 0).then(|| "user".to_string()),
        password: (flags & 2 == 0).then(|| Secret::new("pass")),
        ipv6_relay: [None, Some(false), Some(true)]
            .get(usize::from(flags >> 2 & 3))
            .copied()
            .flatten(),
        rto: Duration::from_millis(100),
        reliable: flags & 16 != 0,
    };
    let Ok(mut client) = TurnClient::new(cfg) else {
        return;
    };
    #[allow(clippy::disallowed_methods)] // an arbitrary t0: the machine only sees `now` passed in
    let mut now = Instant::now();
    // Transaction ids of the requests the client sent, newest last.
    let mut sent: Vec<stun::TxId> = Vec::new();
    client.allocate(now);
    // A bound on steps keeps one input from running for long.
    for _ in 0..64 {
        while let Some(out) = client.poll_transmit() {
            if let Ok(m) = stun::decode(&out) {
                if m.class == Some(stun::Class::Request) {
                    sent.push(m.txid);
                }
            }
        }
        while client.poll_event().is_some() {}
        let Some(op) = s.byte() else { break };
        match op % 9 {
            0..=3 => {
                // A message from the server, answering the request `pick` back from the newest.
                let pick = usize::from(op / 9);
                let len = usize::from(s.u16() % 1024);
                let mut msg = s.bytes(len).to_vec();
                if msg.len() >= 20 && !sent.is_empty() {
                    let id = sent[sent.len() - 1 - pick % sent.len()];
                    msg[8..20].copy_from_slice(&id);
                }
                client.handle_input(now, &msg);
            }
            4 => {
                now += Duration::from_millis(u64::from(s.u16()));
                client.handle_timeout(now);
            }
            5 => {
                let peer = s.peer();
                client.create_permission(now, peer);
            }
            6 => {
                let peer = s.peer();
                let channel = s.u16();
                client.channel_bind(now, peer, channel);
            }
            7 => client.release(now),
            _ => match s.byte().unwrap_or(0) % 3 {
                0 => client.abandon(),
                1 => client.binding(now),
                _ => {
                    let peer = s.peer();
                    let n = usize::from(s.byte().unwrap_or(0));
                    let payload = s.bytes(n).to_vec();
                    client.send_indication(peer, &payload);
                    client.channel_data(0x4000 | (s.u16() & 0x0fff), &payload);
                }
            },
        }
    }
});
