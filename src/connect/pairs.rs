//! Every ICE connectivity check a side sent and received, seen on the wire (sans-IO).
//!
//! webrtc 0.21.1 reports statistics for the selected pair only; the agent that knows the
//! others is private. So the socket layer (`connect::tap`) shows each datagram to a
//! [`CheckObserver`], which recognises ICE checks (Binding requests with PRIORITY, RFC 8445
//! §7.1.1), their answers by transaction id, and nomination (USE-CANDIDATE, §7.1.2 / §8.1.1),
//! also when they travel through a TURN relay inside Send/Data indications or ChannelData
//! (RFC 8656 §11–§12). From that, [`pair_reports`] lists every candidate pair with what
//! happened to it.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use crate::candidate::CandidateType;
use crate::model::connect::{ConnectCandidate, PairReport};
use crate::proto::stun::{self, method, Class, TxId};

/// Which way a datagram went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Sent by this side.
    Out,
    /// Received by this side.
    In,
}

/// A pair as the wire shows it: the local endpoint (the socket's address, or the relayed
/// address for checks sent through a TURN allocation) and the remote one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WirePair {
    /// Local endpoint.
    pub local: SocketAddr,
    /// Remote endpoint.
    pub remote: SocketAddr,
    /// Whether `local` is a relayed address.
    pub relayed: bool,
}

/// What happened on one pair.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PairActivity {
    /// Checks we sent.
    pub requests_sent: u64,
    /// Success responses to them.
    pub responses_received: u64,
    /// Checks the peer sent us on this pair.
    pub requests_received: u64,
    /// USE-CANDIDATE was sent or received on this pair.
    pub nominated: bool,
    /// Round trip of the latest answered check, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// The latest error response code (e.g. 487 role conflict).
    pub error: Option<u16>,
    /// XOR-MAPPED-ADDRESS of the latest answered check: how the peer saw us. When it matches
    /// no local candidate it is a local peer-reflexive candidate (RFC 8445 §7.2.5.3.1).
    pub mapped: Option<SocketAddr>,
}

/// The observer of one side's datagrams.
#[derive(Debug, Default)]
pub struct CheckObserver {
    /// (socket, TURN server) → relayed address, from Allocate success responses.
    relays: HashMap<(SocketAddr, SocketAddr), SocketAddr>,
    /// (socket, TURN server, channel) → peer, from ChannelBind requests.
    channels: HashMap<(SocketAddr, SocketAddr, u16), SocketAddr>,
    /// Checks awaiting an answer: when they left, and on which pair.
    pending: HashMap<TxId, (WirePair, f64)>,
    pairs: BTreeMap<WirePair, PairActivity>,
    /// Mapped address → the STUN server that reported it (answers to plain Binding queries,
    /// i.e. srflx gathering), so a srflx candidate can name its server.
    mapped_by: HashMap<SocketAddr, SocketAddr>,
}

/// Most checks remembered while awaiting answers; ICE sends a few per pair and second, so this
/// only bounds a hostile flood.
const MAX_PENDING: usize = 4096;

impl CheckObserver {
    /// Show one datagram: `local` is this side's socket address, `remote` the other end of the
    /// datagram (a peer, or a STUN/TURN server), `now_ms` any monotonic millisecond clock.
    pub fn datagram(
        &mut self,
        dir: Dir,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
        now_ms: f64,
    ) {
        // ChannelData (RFC 8656 §12.4): relayed data on a bound channel.
        if bytes.len() >= 4 && (0x40..0x50).contains(&bytes[0]) {
            let channel = u16::from_be_bytes([bytes[0], bytes[1]]);
            let len = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
            let (Some(peer), Some(relay), Some(inner)) = (
                self.channels.get(&(local, remote, channel)).copied(),
                self.relays.get(&(local, remote)).copied(),
                bytes.get(4..4 + len),
            ) else {
                return;
            };
            return self.check(dir, relay, peer, true, inner, now_ms);
        }
        let Ok(d) = stun::decode(bytes) else { return };
        match (dir, d.method, d.class) {
            (Dir::In, method::ALLOCATE, Some(Class::Success)) => {
                if let Some(relayed) = d.relayed {
                    self.relays.insert((local, remote), relayed);
                }
            }
            (Dir::Out, method::CHANNEL_BIND, Some(Class::Request)) => {
                if let (Some(ch), Some(peer)) = (d.channel, d.peer) {
                    self.channels.insert((local, remote, ch), peer);
                }
            }
            (Dir::Out, method::SEND, Some(Class::Indication))
            | (Dir::In, method::DATA, Some(Class::Indication)) => {
                let relay = self.relays.get(&(local, remote)).copied();
                if let (Some(relay), Some(peer), Some(inner)) = (relay, d.peer, d.data.as_deref()) {
                    self.check(dir, relay, peer, true, inner, now_ms);
                }
            }
            (Dir::In, method::BINDING, Some(Class::Success))
                if !self.pending.contains_key(&d.txid) =>
            {
                if let Some(m) = d.xor_mapped.or(d.mapped) {
                    if self.mapped_by.len() < MAX_PENDING {
                        self.mapped_by.insert(m, remote);
                    }
                }
            }
            (_, method::BINDING, _) => self.check(dir, local, remote, false, bytes, now_ms),
            _ => {}
        }
    }

    /// An ICE connectivity check or its answer between `local` and `remote`.
    fn check(
        &mut self,
        dir: Dir,
        local: SocketAddr,
        remote: SocketAddr,
        relayed: bool,
        bytes: &[u8],
        now_ms: f64,
    ) {
        let Ok(d) = stun::decode(bytes) else { return };
        if d.method != method::BINDING {
            return;
        }
        let pair = WirePair {
            local,
            remote,
            relayed,
        };
        match (dir, d.class) {
            // A Binding request without PRIORITY is a plain STUN query (srflx gathering), not
            // a connectivity check.
            (Dir::Out, Some(Class::Request)) if d.priority.is_some() => {
                let a = self.pairs.entry(pair).or_default();
                a.requests_sent += 1;
                a.nominated |= d.use_candidate;
                if self.pending.len() < MAX_PENDING {
                    self.pending.insert(d.txid, (pair, now_ms));
                }
            }
            (Dir::In, Some(Class::Request)) if d.priority.is_some() => {
                let a = self.pairs.entry(pair).or_default();
                a.requests_received += 1;
                a.nominated |= d.use_candidate;
            }
            (Dir::In, Some(Class::Success | Class::Error)) => {
                let Some((sent_on, at)) = self.pending.remove(&d.txid) else {
                    return;
                };
                let a = self.pairs.entry(sent_on).or_default();
                match &d.error {
                    Some(e) => a.error = Some(e.code),
                    None => {
                        a.responses_received += 1;
                        a.rtt_ms = Some(((now_ms - at) * 1000.0).round() / 1000.0);
                        a.mapped = d.xor_mapped.or(a.mapped);
                    }
                }
            }
            _ => {}
        }
    }

    /// The STUN server whose Binding answer reported `mapped` (a srflx candidate's address).
    pub fn srflx_server(&self, mapped: SocketAddr) -> Option<SocketAddr> {
        self.mapped_by.get(&mapped).copied()
    }

    /// Every pair a check went out or came in on, in a stable order.
    pub fn pairs(&self) -> Vec<(WirePair, PairActivity)> {
        self.pairs.iter().map(|(p, a)| (*p, a.clone())).collect()
    }
}

/// The W3C `RTCStatsIceCandidatePairState` a finished run leaves a pair in: `succeeded` (a
/// check was answered), `failed` (checks went out, none was answered), `waiting` (only the
/// peer checked it), `frozen` (never checked).
pub fn final_state(a: &PairActivity) -> &'static str {
    match (a.requests_sent, a.responses_received, a.requests_received) {
        (_, r, _) if r > 0 => "succeeded",
        (s, 0, _) if s > 0 => "failed",
        (0, 0, r) if r > 0 => "waiting",
        _ => "frozen",
    }
}

/// A candidate's `address:port` as a socket address.
pub fn endpoint_of(c: &ConnectCandidate) -> Option<SocketAddr> {
    c.endpoint().parse().ok()
}

/// A candidate known only from the wire (no gathered or signaled one has its address).
fn wire_candidate(kind: CandidateType, at: SocketAddr) -> ConnectCandidate {
    ConnectCandidate {
        kind,
        transport: "udp".into(),
        address: at.ip().to_string(),
        port: at.port(),
        related_address: None,
        related_port: None,
        url: None,
    }
}

/// Local peer-reflexive candidates (pure): the addresses the peer saw our answered checks come
/// from that match no local candidate (RFC 8445 §7.2.5.3.1), with the candidate the check left
/// from as their base.
pub fn local_prflx(
    seen: &[(WirePair, PairActivity)],
    local: &[ConnectCandidate],
) -> Vec<ConnectCandidate> {
    let mut out: Vec<ConnectCandidate> = vec![];
    for (p, a) in seen {
        let Some(m) = a.mapped else { continue };
        let known = local
            .iter()
            .chain(out.iter())
            .any(|c| endpoint_of(c) == Some(m));
        if known {
            continue;
        }
        let base = local_candidate(p, local);
        out.push(ConnectCandidate {
            related_address: base.as_ref().map(|b| b.address.clone()),
            related_port: base.as_ref().map(|b| b.port),
            ..wire_candidate(CandidateType::Prflx, m)
        });
    }
    out
}

/// The local candidate of a wire pair: the relay candidate with the relayed address, or the
/// host candidate whose socket sent it (a socket bound to the any-address shows only its port:
/// then the host candidate of the remote's family and that port).
fn local_candidate(p: &WirePair, local: &[ConnectCandidate]) -> Option<ConnectCandidate> {
    let want = if p.relayed {
        CandidateType::Relay
    } else {
        CandidateType::Host
    };
    let of_kind = || local.iter().filter(|c| c.kind == want);
    let same_port_and_family = |c: &&ConnectCandidate| {
        endpoint_of(c)
            .is_some_and(|e| e.port() == p.local.port() && e.is_ipv4() == p.remote.is_ipv4())
    };
    let exact = of_kind().find(|c| endpoint_of(c) == Some(p.local));
    let by_port = || match p.local.ip().is_unspecified() {
        true => of_kind().find(same_port_and_family),
        false => None,
    };
    exact.or_else(by_port).cloned()
}

/// The remote candidate of a wire pair: a signaled or learnt one with that address, or else a
/// peer-reflexive one (RFC 8445 §7.3.1.3: a check came from an address never signaled).
fn remote_candidate(p: &WirePair, remote: &[ConnectCandidate]) -> ConnectCandidate {
    remote
        .iter()
        .find(|c| endpoint_of(c) == Some(p.remote))
        .cloned()
        .unwrap_or_else(|| wire_candidate(CandidateType::Prflx, p.remote))
}

/// Every candidate pair of a side (pure): the pairs checks were seen on, with their activity,
/// and the pairs ICE formed but never checked (`frozen`). Pairs are formed from host and relay
/// local candidates only: a srflx candidate shares its host base, and RFC 8445 §6.1.2.4 prunes
/// such pairs. Pairs whose local endpoint matches no candidate are kept with a host-typed
/// placeholder so that nothing seen on the wire is hidden.
pub fn pair_reports(
    seen: &[(WirePair, PairActivity)],
    local: &[ConnectCandidate],
    remote: &[ConnectCandidate],
) -> Vec<PairReport> {
    let mut out = vec![];
    let mut covered = vec![];
    for (p, a) in seen {
        let l = local_candidate(p, local).unwrap_or_else(|| {
            let kind = if p.relayed {
                CandidateType::Relay
            } else {
                CandidateType::Host
            };
            wire_candidate(kind, p.local)
        });
        let r = remote_candidate(p, remote);
        covered.push((l.endpoint(), l.kind, r.endpoint()));
        out.push(PairReport {
            state: final_state(a).into(),
            nominated: a.nominated,
            requests_sent: a.requests_sent,
            responses_received: a.responses_received,
            requests_received: a.requests_received,
            rtt_ms: a.rtt_ms,
            local: l,
            remote: r,
        });
    }
    for l in local
        .iter()
        .filter(|c| matches!(c.kind, CandidateType::Host | CandidateType::Relay))
    {
        for r in remote {
            let same_family = l.address.contains(':') == r.address.contains(':');
            let seen = covered.contains(&(l.endpoint(), l.kind, r.endpoint()));
            if same_family && l.transport == r.transport && !seen {
                out.push(PairReport {
                    local: l.clone(),
                    remote: r.clone(),
                    state: "frozen".into(),
                    nominated: false,
                    requests_sent: 0,
                    responses_received: 0,
                    requests_received: 0,
                    rtt_ms: None,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::stun::attributes::{ATTR_PRIORITY, ATTR_USE_CANDIDATE};
    use rtc::stun::message::{CLASS_REQUEST, CLASS_SUCCESS_RESPONSE, METHOD_BINDING};

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn check_req(txid: TxId, nominate: bool) -> Vec<u8> {
        let mut m = stun::start(METHOD_BINDING, CLASS_REQUEST, txid);
        stun::add_raw(&mut m, ATTR_PRIORITY, &1_853_824_767u32.to_be_bytes());
        if nominate {
            stun::add_raw(&mut m, ATTR_USE_CANDIDATE, &[]);
        }
        stun::finish(m)
    }

    fn success(txid: TxId) -> Vec<u8> {
        crate::proto::binding::tests::success(txid, a("198.18.0.254:5000"))
    }

    /// Send indication / Data indication / ChannelData with `inner` for `peer`.
    fn send_ind(peer: SocketAddr, inner: &[u8], data_ind: bool) -> Vec<u8> {
        use rtc::stun::message::{METHOD_DATA, METHOD_SEND};
        let method = if data_ind { METHOD_DATA } else { METHOD_SEND };
        crate::proto::turn::peer_data_indication(method, peer, inner).unwrap()
    }

    fn allocate_ok(relayed: SocketAddr) -> Vec<u8> {
        use rtc::stun::message::METHOD_ALLOCATE;
        use rtc::stun::xoraddr::XorMappedAddress;
        let mut m = stun::start(METHOD_ALLOCATE, CLASS_SUCCESS_RESPONSE, stun::new_txid());
        XorMappedAddress {
            ip: relayed.ip(),
            port: relayed.port(),
        }
        .add_to_as(&mut m, rtc::stun::attributes::ATTR_XOR_RELAYED_ADDRESS)
        .unwrap();
        m.write_length();
        stun::finish(m)
    }

    fn channel_bind(ch: u16, peer: SocketAddr) -> Vec<u8> {
        use rtc::stun::message::METHOD_CHANNEL_BIND;
        use rtc::turn::proto::{channum::ChannelNumber, peeraddr::PeerAddress};
        let mut m = stun::start(METHOD_CHANNEL_BIND, CLASS_REQUEST, stun::new_txid());
        stun::add(&mut m, &ChannelNumber(ch)).unwrap();
        stun::add(
            &mut m,
            &PeerAddress {
                ip: peer.ip(),
                port: peer.port(),
            },
        )
        .unwrap();
        stun::finish(m)
    }

    fn chandata(ch: u16, inner: &[u8]) -> Vec<u8> {
        let mut b = ch.to_be_bytes().to_vec();
        b.extend_from_slice(&(inner.len() as u16).to_be_bytes());
        b.extend_from_slice(inner);
        b
    }

    #[test]
    fn direct_checks_answers_and_nomination() {
        let sock = a("100.64.0.2:40000");
        let (peer1, peer2, stun_srv) = (
            a("198.18.0.253:50000"),
            a("100.64.1.2:50001"),
            a("198.18.0.1:3478"),
        );
        let mut o = CheckObserver::default();
        // A plain STUN query for srflx gathering is not a check.
        let q = stun::binding_request(stun::new_txid());
        o.datagram(Dir::Out, sock, stun_srv, &q, 0.0);
        // Two checks to peer1, the second nominating, answered after 20 ms.
        let (t1, t2) = (stun::new_txid(), stun::new_txid());
        o.datagram(Dir::Out, sock, peer1, &check_req(t1, false), 10.0);
        o.datagram(Dir::Out, sock, peer1, &check_req(t2, true), 20.0);
        o.datagram(Dir::In, sock, peer1, &success(t2), 40.0);
        // A check to peer2 never answered; the peer's own check on it arrives.
        o.datagram(
            Dir::Out,
            sock,
            peer2,
            &check_req(stun::new_txid(), false),
            10.0,
        );
        o.datagram(
            Dir::In,
            sock,
            peer2,
            &check_req(stun::new_txid(), false),
            12.0,
        );
        // An answer to nothing we sent changes nothing.
        o.datagram(Dir::In, sock, peer1, &success(stun::new_txid()), 50.0);
        let pairs = o.pairs();
        assert_eq!(pairs.len(), 2, "{pairs:#?}");
        let get = |r| &pairs.iter().find(|(p, _)| p.remote == r).unwrap().1;
        let p1 = get(peer1);
        assert_eq!((p1.requests_sent, p1.responses_received), (2, 1));
        assert!(p1.nominated);
        assert_eq!(p1.rtt_ms, Some(20.0));
        assert_eq!(final_state(p1), "succeeded");
        let p2 = get(peer2);
        assert_eq!(
            (
                p2.requests_sent,
                p2.responses_received,
                p2.requests_received
            ),
            (1, 0, 1)
        );
        assert_eq!(final_state(p2), "failed");
    }

    #[test]
    fn checks_through_a_relay_by_indication_and_channel() {
        let sock = a("100.64.0.2:40000");
        let turn = a("198.18.0.1:3478");
        let relayed = a("198.18.0.1:49160");
        let peer = a("198.18.0.1:49161");
        let mut o = CheckObserver::default();
        // Before the allocation is known, relayed checks cannot be placed.
        let early = stun::new_txid();
        o.datagram(
            Dir::Out,
            sock,
            turn,
            &send_ind(peer, &check_req(early, false), false),
            0.0,
        );
        assert!(o.pairs().is_empty());
        o.datagram(Dir::In, sock, turn, &allocate_ok(relayed), 1.0);
        let t1 = stun::new_txid();
        o.datagram(
            Dir::Out,
            sock,
            turn,
            &send_ind(peer, &check_req(t1, false), false),
            2.0,
        );
        o.datagram(
            Dir::In,
            sock,
            turn,
            &send_ind(peer, &success(t1), true),
            7.0,
        );
        // The same pair over a channel, nominating.
        o.datagram(Dir::Out, sock, turn, &channel_bind(0x4001, peer), 8.0);
        let t2 = stun::new_txid();
        o.datagram(
            Dir::Out,
            sock,
            turn,
            &chandata(0x4001, &check_req(t2, true)),
            9.0,
        );
        o.datagram(Dir::In, sock, turn, &chandata(0x4001, &success(t2)), 12.0);
        let pairs = o.pairs();
        assert_eq!(pairs.len(), 1, "{pairs:#?}");
        let (p, act) = &pairs[0];
        assert_eq!(
            *p,
            WirePair {
                local: relayed,
                remote: peer,
                relayed: true
            }
        );
        assert_eq!((act.requests_sent, act.responses_received), (2, 2));
        assert!(act.nominated);
        assert_eq!(act.rtt_ms, Some(3.0));
    }

    #[test]
    fn srflx_servers_and_local_prflx_are_learnt() {
        let sock = a("100.64.0.2:40000");
        let (stun_srv, peer) = (a("198.18.0.1:3478"), a("198.18.0.253:50000"));
        let mut o = CheckObserver::default();
        let q = stun::new_txid();
        o.datagram(Dir::Out, sock, stun_srv, &stun::binding_request(q), 0.0);
        o.datagram(Dir::In, sock, stun_srv, &success(q), 5.0); // maps to 198.18.0.254:5000
        assert_eq!(o.srflx_server(a("198.18.0.254:5000")), Some(stun_srv));
        // The peer saw our check come from another mapping (a symmetric NAT): local prflx.
        let t = stun::new_txid();
        o.datagram(Dir::Out, sock, peer, &check_req(t, false), 6.0);
        let answer = crate::proto::binding::tests::success(t, a("198.18.0.254:5001"));
        o.datagram(Dir::In, sock, peer, &answer, 9.0);
        let local = vec![
            cand(CandidateType::Host, "100.64.0.2", 40000),
            cand(CandidateType::Srflx, "198.18.0.254", 5000),
        ];
        let prflx = local_prflx(&o.pairs(), &local);
        assert_eq!(prflx.len(), 1, "{prflx:?}");
        assert_eq!(prflx[0].kind, CandidateType::Prflx);
        assert_eq!(prflx[0].endpoint(), "198.18.0.254:5001");
        assert_eq!(prflx[0].related_address.as_deref(), Some("100.64.0.2"));
        // A mapping equal to the srflx candidate (an endpoint-independent NAT) is not new.
        let mut eim = o.pairs();
        eim[0].1.mapped = Some(a("198.18.0.254:5000"));
        assert!(local_prflx(&eim, &local).is_empty());
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let mut o = CheckObserver::default();
        let (l, r) = (a("127.0.0.1:1"), a("127.0.0.1:2"));
        for b in [
            &b""[..],
            b"\x40\x00\xff\xff",
            b"\x40",
            b"\x00\x01\x00\x08\x21\x12\xa4\x42",
        ] {
            o.datagram(Dir::In, l, r, b, 0.0);
            o.datagram(Dir::Out, l, r, b, 0.0);
        }
        assert!(o.pairs().is_empty());
    }

    fn cand(kind: CandidateType, addr: &str, port: u16) -> ConnectCandidate {
        ConnectCandidate {
            kind,
            transport: "udp".into(),
            address: addr.into(),
            port,
            related_address: None,
            related_port: None,
            url: None,
        }
    }

    #[test]
    fn pair_reports_name_candidates_and_list_frozen_pairs() {
        use CandidateType::*;
        let local = vec![
            cand(Host, "100.64.0.2", 40000),
            cand(Srflx, "198.18.0.254", 61000),
            cand(Relay, "198.18.0.1", 49160),
        ];
        let remote = vec![
            cand(Host, "100.64.1.2", 50000),
            cand(Relay, "198.18.0.1", 49161),
        ];
        let act = |sent, resp, recv| PairActivity {
            requests_sent: sent,
            responses_received: resp,
            requests_received: recv,
            ..PairActivity::default()
        };
        let seen = vec![
            // Socket bound to 0.0.0.0: matched to the host candidate by port and family.
            (
                WirePair {
                    local: a("0.0.0.0:40000"),
                    remote: a("100.64.1.2:50000"),
                    relayed: false,
                },
                act(3, 0, 0),
            ),
            (
                WirePair {
                    local: a("198.18.0.1:49160"),
                    remote: a("198.18.0.1:49161"),
                    relayed: true,
                },
                act(2, 2, 1),
            ),
            // From an address never signaled: peer-reflexive.
            (
                WirePair {
                    local: a("0.0.0.0:40000"),
                    remote: a("198.18.0.253:7000"),
                    relayed: false,
                },
                act(0, 0, 2),
            ),
        ];
        let r = pair_reports(&seen, &local, &remote);
        let states: Vec<(CandidateType, CandidateType, &str)> = r
            .iter()
            .map(|p| (p.local.kind, p.remote.kind, p.state.as_str()))
            .collect();
        assert_eq!(
            states,
            vec![
                (Host, Host, "failed"),
                (Relay, Relay, "succeeded"),
                (Host, Prflx, "waiting"),
                (Host, Relay, "frozen"),
                (Relay, Host, "frozen"),
            ]
        );
        assert_eq!(r[0].local.address, "100.64.0.2");
        assert_eq!(r[2].remote.endpoint(), "198.18.0.253:7000");
    }
}
