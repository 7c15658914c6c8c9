//! A simulated NAT and RFC 5780 server, test-only: the classifier's tables (here and in
//! `report::render_nat`) take their observation sets from it, so each row is what a real driver
//! would have recorded behind that NAT.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::{Determination, FilteringBehavior, MappingBehavior};
use crate::model::nat::{Answer, Change, Exchange, Observations, Rfc5780};
use FilteringBehavior as F;
use MappingBehavior as M;

pub(crate) fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The RFC 5780 server's primary address.
pub(crate) const PRIMARY: &str = "198.51.100.1:3478";
/// Its OTHER-ADDRESS.
pub(crate) const OTHER: &str = "198.51.100.2:3479";
/// A plain STUN server on another IP.
pub(crate) const PLAIN: &str = "192.0.2.50:19302";
const PUBLIC_IP: &str = "203.0.113.7";
const LOCAL_IP: &str = "192.168.1.10";
const RANDOM: [u16; 8] = [51234, 33001, 60210, 41877, 38455, 57002, 44120, 62011];

/// How the simulated RFC 5780 server behaves.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Server {
    /// As RFC 5780 says (coturn: OTHER-ADDRESS from the alternate names the primary).
    Honest,
    /// Answers CHANGE-REQUEST from the address the request went to.
    AnswersFromPrimary,
    /// Advertises its own primary address as OTHER-ADDRESS.
    SelfAsOther,
    /// Advertises an OTHER-ADDRESS with its own IP (another port).
    SameIpOther,
    /// Answers from the right address but with RESPONSE-ORIGIN = the primary.
    OriginMismatch,
    /// Plain STUN: no OTHER-ADDRESS.
    NoOther,
    /// Rejects CHANGE-REQUEST with 420.
    Rejects420,
    /// Advertises an alternate that never answers.
    DeadAlternate,
}

/// How new mappings get their external port.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Ports {
    Sequential,
    Random,
    Preserved,
}

/// A NAT mapping's key: local port, and the destination parts the mapping depends on.
type MapKey = (u16, Option<IpAddr>, Option<u16>);

/// A simulated NAT (`mapping: None` = no NAT, only a firewall with `filtering`).
pub(crate) struct Sim {
    mapping: Option<MappingBehavior>,
    filtering: FilteringBehavior,
    ports: Ports,
    server: Server,
    pub(crate) blocked: bool,
    pub(crate) alg: bool,
    public_ip: IpAddr,
    table: Vec<(MapKey, u16)>,
    sent: Vec<(u16, SocketAddr)>,
}

impl Sim {
    pub(crate) fn new(mapping: Option<MappingBehavior>, filtering: FilteringBehavior) -> Sim {
        Sim {
            mapping,
            filtering,
            ports: Ports::Sequential,
            server: Server::Honest,
            blocked: false,
            alg: false,
            public_ip: PUBLIC_IP.parse().unwrap(),
            table: vec![],
            sent: vec![],
        }
    }
    pub(crate) fn server(mut self, s: Server) -> Sim {
        self.server = s;
        self
    }
    pub(crate) fn ports(mut self, p: Ports) -> Sim {
        self.ports = p;
        self
    }
    pub(crate) fn public(mut self, ip: &str) -> Sim {
        self.public_ip = ip.parse().unwrap();
        self
    }

    fn map(&mut self, local: SocketAddr, to: SocketAddr) -> SocketAddr {
        let Some(m) = self.mapping else {
            return local;
        };
        let key = match m {
            M::EndpointIndependent => (local.port(), None, None),
            M::AddressDependent | M::DestinationDependent => (local.port(), Some(to.ip()), None),
            M::AddressAndPortDependent => (local.port(), Some(to.ip()), Some(to.port())),
        };
        if let Some((_, p)) = self.table.iter().find(|(k, _)| *k == key) {
            return SocketAddr::new(self.public_ip, *p);
        }
        let n = self.table.len();
        let port = match self.ports {
            Ports::Sequential => 40000 + n as u16,
            Ports::Random => RANDOM[n % RANDOM.len()],
            Ports::Preserved if !self.table.iter().any(|(_, p)| *p == local.port()) => local.port(),
            Ports::Preserved => 40000 + n as u16,
        };
        self.table.push((key, port));
        SocketAddr::new(self.public_ip, port)
    }

    fn passes(&self, local: SocketAddr, src: SocketAddr) -> bool {
        let mine = self.sent.iter().filter(|(l, _)| *l == local.port());
        match self.filtering {
            F::EndpointIndependent => true,
            F::AddressDependent => mine.clone().any(|(_, d)| d.ip() == src.ip()),
            F::AddressAndPortDependent => mine.clone().any(|(_, d)| *d == src),
        }
    }

    /// One Binding exchange through the NAT to the server at `to`.
    pub(crate) fn send(&mut self, local: &str, to: &str, change: Change) -> Exchange {
        let (local, to) = (sa(local), sa(to));
        self.sent.push((local.port(), to));
        let mapped = self.map(local, to);
        let answer = self.answer(local, to, change, mapped);
        Exchange {
            local,
            to,
            change,
            answer,
        }
    }

    fn answer(
        &self,
        local: SocketAddr,
        to: SocketAddr,
        change: Change,
        mapped: SocketAddr,
    ) -> Answer {
        let (p, o) = (sa(PRIMARY), sa(OTHER));
        let flip_ip = |a: SocketAddr| if a.ip() == p.ip() { o.ip() } else { p.ip() };
        let flip_port = |a: SocketAddr| {
            if a.port() == p.port() {
                o.port()
            } else {
                p.port()
            }
        };
        let ours = to.ip() == p.ip() || to.ip() == o.ip();
        if self.blocked || (self.server == Server::DeadAlternate && to.ip() == o.ip()) {
            return Answer::Timeout;
        }
        if ours && change != Change::None && self.server == Server::Rejects420 {
            return Answer::Error {
                code: 420,
                reason: "Unknown Attribute".into(),
            };
        }
        let honest = match change {
            Change::None => to,
            Change::IpAndPort => SocketAddr::new(flip_ip(to), flip_port(to)),
            Change::Port => SocketAddr::new(to.ip(), flip_port(to)),
        };
        let (from, origin, other) = if !ours {
            (to, None, None)
        } else {
            let other = if to.ip() == p.ip() { o } else { p };
            match self.server {
                Server::Honest | Server::Rejects420 | Server::DeadAlternate => {
                    (honest, Some(honest), Some(other))
                }
                Server::AnswersFromPrimary => (to, Some(to), Some(other)),
                Server::SelfAsOther => (to, Some(to), Some(p)),
                Server::SameIpOther => (to, Some(to), Some(SocketAddr::new(p.ip(), 3479))),
                Server::OriginMismatch => (honest, Some(to), Some(other)),
                Server::NoOther => (to, None, None),
            }
        };
        if (self.server == Server::DeadAlternate && from.ip() == o.ip())
            || !self.passes(local, from)
        {
            return Answer::Timeout;
        }
        Answer::Reply {
            from,
            mapped: Some(mapped),
            plain_mapped: Some(if self.alg { local } else { mapped }),
            response_origin: origin,
            other_address: other,
            rtt_ms: 20.0,
        }
    }

    /// What a driver records: RFC 5780 filtering tests on a fresh socket, mapping tests on
    /// another, then one Binding per server in `multi` from a third.
    pub(crate) fn observe(&mut self, multi: &[&str]) -> Observations {
        let l = |port: u16| format!("{LOCAL_IP}:{port}");
        let o = sa(OTHER);
        let alt_ip = SocketAddr::new(o.ip(), sa(PRIMARY).port()).to_string();
        let rfc = if self.server == Server::NoOther {
            Rfc5780 {
                url: "stun:stun.example.net".into(),
                primary: sa(PRIMARY),
                filtering: None,
                mapping: None,
            }
        } else {
            Rfc5780 {
                url: "stun:stun.example.net".into(),
                primary: sa(PRIMARY),
                filtering: Some(vec![
                    self.send(&l(5000), PRIMARY, Change::None),
                    self.send(&l(5000), PRIMARY, Change::IpAndPort),
                    self.send(&l(5000), PRIMARY, Change::Port),
                ]),
                mapping: Some(vec![
                    self.send(&l(5001), PRIMARY, Change::None),
                    self.send(&l(5001), &alt_ip, Change::None),
                    self.send(&l(5001), OTHER, Change::None),
                ]),
            }
        };
        let multi = multi
            .iter()
            .map(|to| self.send(&l(5002), to, Change::None))
            .collect();
        Observations {
            family: "ipv4".into(),
            local_addresses: vec![LOCAL_IP.parse().unwrap()],
            rfc5780: vec![rfc],
            multi,
            hairpin: None,
            lifetime: None,
            tcp_fallback: None,
        }
    }
}

/// `want`: a known value's Debug form, or `inconclusive: <part of reason>`, or
/// `not-checked: <part of reason>`.
pub(crate) fn is<T: fmt::Debug>(d: &Determination<T>, want: &str) -> bool {
    let (status, text) = want.split_once(": ").unwrap_or((want, ""));
    match d {
        Determination::Known { value, .. } => format!("{value:?}") == want,
        Determination::Inconclusive { reason } => status == "inconclusive" && reason.contains(text),
        Determination::NotChecked { reason } => status == "not-checked" && reason.contains(text),
    }
}

pub(crate) const TWO: &[&str] = &[PRIMARY, PLAIN];
