//! [`Testbed`]: ready-made topologies (direct, and behind the NATs of RFC 4787).
//!
//! ```text
//! public():          cli eth0 198.18.0.10 ──┐
//!                                            br0 in srv: 198.18.0.1, 198.18.0.2 (coturn here)
//! behind_nat(kind):  cli eth0 100.64.0.2 ── lan0 (bridge) 100.64.0.1 [rtr] wan0 198.18.0.254 ──┐
//!                                                                                       br0 in srv
//! ```
//! More public hosts (e.g. a `turnutils_peer`) join `br0` with [`Testbed::add_public_host`],
//! more LAN hosts join `lan0` with [`Testbed::add_lan_host`].

use super::netns::{veth_to_bridge, Netns};
use std::cell::Cell;
use std::net::Ipv4Addr;
use std::sync::{Condvar, Mutex};

/// The server's first address on `br0` (coturn's primary listener).
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The server's second address on `br0` (RFC 5780 alternate / OTHER-ADDRESS).
pub const SERVER_IP2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// The client's address in [`Testbed::public`].
pub const CLIENT_PUBLIC_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
/// The NAT router's public address: what servers see from a client behind the NAT.
pub const ROUTER_WAN_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);
/// The NAT router's LAN address (the client's default gateway).
pub const ROUTER_LAN_IP: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
/// The client's address behind the NAT.
pub const CLIENT_LAN_IP: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 2);

/// The second NAT router's public address in [`Testbed::two_clients`].
pub const ROUTER2_WAN_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 253);
/// The second NAT router's LAN address.
pub const ROUTER2_LAN_IP: Ipv4Addr = Ipv4Addr::new(100, 64, 1, 1);
/// The second client's address behind the second NAT.
pub const CLIENT2_LAN_IP: Ipv4Addr = Ipv4Addr::new(100, 64, 1, 2);

/// Prefix length of both the public (198.18.0.0/24) and the LAN (100.64.0.0/24) segment.
pub const PREFIX_LEN: u8 = 24;

/// nftables table name used in router namespaces.
pub const NAT_TABLE: &str = "iceprobe_nat";

/// NAT behaviour of the router in [`Testbed::behind_nat`] (RFC 4787 terms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatKind {
    /// Endpoint-independent mapping, address-and-port-dependent filtering ("port-restricted
    /// cone"): `masquerade`; port-preserving while the tuple is free.
    PortRestricted,
    /// Address-and-port-dependent mapping ("symmetric"): `masquerade random,fully-random`,
    /// a new random port per destination.
    Symmetric,
    /// Endpoint-independent mapping and filtering ("full cone"): masquerade, outbound UDP source
    /// ports recorded in a dynamic set (300 s timeout), inbound UDP to a recorded port DNATed to
    /// the client. Assumes one client (port preservation).
    FullCone,
    /// Masquerade, but all UDP from the LAN is dropped: only TURN over TCP/TLS can work.
    UdpBlocked,
}

/// A topology of namespaces; everything is torn down on drop (after any process guard that
/// holds a clone of a namespace). At most `ICEPROBE_TESTBED_JOBS` (default 2) testbeds exist
/// at once per test binary; further ones wait (nested ones on the same thread do not).
pub struct Testbed {
    /// The public server host: bridge `br0` with [`SERVER_IP`] and [`SERVER_IP2`]; run coturn here.
    pub srv: Netns,
    /// The client host: [`CLIENT_PUBLIC_IP`] in `public()`, [`CLIENT_LAN_IP`] behind a NAT.
    pub cli: Netns,
    /// The NAT router (`lan0` bridge 100.64.0.1, `wan0` 198.18.0.254), only behind a NAT.
    pub rtr: Option<Netns>,
    /// The NAT behaviour, `None` for `public()`.
    pub nat: Option<NatKind>,
    /// The second client of [`Testbed::two_clients`] ([`CLIENT2_LAN_IP`]), behind its own
    /// router `rtr2` ([`ROUTER2_WAN_IP`]).
    pub cli2: Option<Netns>,
    extra_hosts: Vec<Netns>,
    _slot: Slot,
}

impl Testbed {
    /// Client and server on one public segment, no NAT: the server sees [`CLIENT_PUBLIC_IP`].
    pub fn public() -> Testbed {
        let slot = Slot::acquire();
        let srv = public_server();
        let cli = Netns::new("cli");
        veth_to_bridge(
            &cli,
            "eth0",
            &format!("{CLIENT_PUBLIC_IP}/{PREFIX_LEN}"),
            &srv,
            "br0",
            "p-cli",
        );
        Testbed {
            srv,
            cli,
            rtr: None,
            nat: None,
            cli2: None,
            extra_hosts: Vec::new(),
            _slot: slot,
        }
    }

    /// The client behind a NAT router of the given kind: the server sees [`ROUTER_WAN_IP`].
    pub fn behind_nat(kind: NatKind) -> Testbed {
        let slot = Slot::acquire();
        let srv = public_server();
        let rtr = Netns::new("rtr");
        let cli = Netns::new("cli");
        veth_to_bridge(
            &rtr,
            "wan0",
            &format!("{ROUTER_WAN_IP}/{PREFIX_LEN}"),
            &srv,
            "br0",
            "p-rtr",
        );
        rtr.bridge("lan0", &[&format!("{ROUTER_LAN_IP}/{PREFIX_LEN}")]);
        veth_to_bridge(
            &cli,
            "eth0",
            &format!("{CLIENT_LAN_IP}/{PREFIX_LEN}"),
            &rtr,
            "lan0",
            "l-cli",
        );
        cli.default_route(&ROUTER_LAN_IP.to_string());
        rtr.set_ip_forward(true);
        rtr.nft(&nat_ruleset(kind, CLIENT_LAN_IP));
        Testbed {
            srv,
            cli,
            rtr: Some(rtr),
            nat: Some(kind),
            cli2: None,
            extra_hosts: Vec::new(),
            _slot: slot,
        }
    }

    /// Two clients, each behind its own NAT router, both routers on the public segment:
    ///
    /// ```text
    /// cli  100.64.0.2 ── [rtr  kind_a] 198.18.0.254 ──┐
    ///                                                  br0 in srv (198.18.0.1, .2)
    /// cli2 100.64.1.2 ── [rtr2 kind_b] 198.18.0.253 ──┘
    /// ```
    pub fn two_clients(kind_a: NatKind, kind_b: NatKind) -> Testbed {
        let mut tb = Testbed::behind_nat(kind_a);
        let rtr2 = Netns::new("rtr2");
        veth_to_bridge(
            &rtr2,
            "wan0",
            &format!("{ROUTER2_WAN_IP}/{PREFIX_LEN}"),
            &tb.srv,
            "br0",
            "p-rtr2",
        );
        rtr2.bridge("lan0", &[&format!("{ROUTER2_LAN_IP}/{PREFIX_LEN}")]);
        let cli2 = Netns::new("cli2");
        veth_to_bridge(
            &cli2,
            "eth0",
            &format!("{CLIENT2_LAN_IP}/{PREFIX_LEN}"),
            &rtr2,
            "lan0",
            "l-cli2",
        );
        cli2.default_route(&ROUTER2_LAN_IP.to_string());
        rtr2.set_ip_forward(true);
        rtr2.nft(&nat_ruleset(kind_b, CLIENT2_LAN_IP));
        tb.extra_hosts.push(rtr2);
        tb.cli2 = Some(cli2);
        tb
    }

    /// The router namespace; panics for `public()`.
    pub fn router(&self) -> &Netns {
        self.rtr.as_ref().expect("this testbed has no NAT router")
    }

    /// The second client's router (`rtr2`); panics unless made by [`Testbed::two_clients`].
    pub fn router2(&self) -> &Netns {
        assert!(self.cli2.is_some(), "this testbed has no second client");
        // two_clients() pushes rtr2 first; hosts added later come after it.
        &self.extra_hosts[0]
    }

    /// The client's own interface address.
    pub fn client_ip(&self) -> Ipv4Addr {
        if self.nat.is_some() {
            CLIENT_LAN_IP
        } else {
            CLIENT_PUBLIC_IP
        }
    }

    /// The address a public server sees the client as (its mapped / server-reflexive IP).
    pub fn client_mapped_ip(&self) -> Ipv4Addr {
        if self.nat.is_some() {
            ROUTER_WAN_IP
        } else {
            CLIENT_PUBLIC_IP
        }
    }

    /// Adds a host on the public segment (e.g. a relay peer) with `ip` in 198.18.0.0/24 (not
    /// .1, .2, .10 or .254). Its interface is `eth0`; the testbed keeps a clone.
    pub fn add_public_host(&mut self, tag: &str, ip: Ipv4Addr) -> Netns {
        assert!(
            ip.octets()[..3] == [198, 18, 0],
            "public hosts live in 198.18.0.0/24, got {ip}"
        );
        let host = Netns::new(tag);
        let port = format!("p-{}", self.extra_hosts.len());
        veth_to_bridge(
            &host,
            "eth0",
            &format!("{ip}/{PREFIX_LEN}"),
            &self.srv,
            "br0",
            &port,
        );
        self.extra_hosts.push(host.clone());
        host
    }

    /// Adds a second host behind the NAT with `ip` in 100.64.0.0/24 (default route via the
    /// router). [`NatKind::FullCone`] still forwards unsolicited packets to [`CLIENT_LAN_IP`]
    /// only.
    pub fn add_lan_host(&mut self, tag: &str, ip: Ipv4Addr) -> Netns {
        assert!(
            ip.octets()[..3] == [100, 64, 0],
            "LAN hosts live in 100.64.0.0/24, got {ip}"
        );
        let rtr = self.router().clone();
        let host = Netns::new(tag);
        let port = format!("l-{}", self.extra_hosts.len());
        veth_to_bridge(
            &host,
            "eth0",
            &format!("{ip}/{PREFIX_LEN}"),
            &rtr,
            "lan0",
            &port,
        );
        host.default_route(&ROUTER_LAN_IP.to_string());
        self.extra_hosts.push(host.clone());
        host
    }
}

fn public_server() -> Netns {
    let srv = Netns::new("srv");
    srv.bridge(
        "br0",
        &[
            &format!("{SERVER_IP}/{PREFIX_LEN}"),
            &format!("{SERVER_IP2}/{PREFIX_LEN}"),
        ],
    );
    srv
}

/// The nftables ruleset (one table) for a router of `kind` with WAN `wan0` and LAN `lan0`.
pub fn nat_ruleset(kind: NatKind, client: Ipv4Addr) -> String {
    let masquerade = match kind {
        NatKind::Symmetric => "masquerade random,fully-random",
        _ => "masquerade",
    };
    let mut rules = format!(
        "table ip {NAT_TABLE} {{\n\
         \tchain postrouting {{\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\toifname \"wan0\" {masquerade}\n\
         \t}}\n"
    );
    match kind {
        NatKind::FullCone => rules.push_str(&format!(
            "\tset fullcone_ports {{\n\
             \t\ttype inet_service; flags dynamic,timeout; timeout 300s;\n\
             \t}}\n\
             \t# after SNAT: the source port as the outside sees it\n\
             \tchain record {{\n\
             \t\ttype filter hook postrouting priority srcnat + 10; policy accept;\n\
             \t\toifname \"wan0\" meta l4proto udp update @fullcone_ports {{ udp sport timeout 300s }}\n\
             \t}}\n\
             \tchain prerouting {{\n\
             \t\ttype nat hook prerouting priority dstnat; policy accept;\n\
             \t\tiifname \"wan0\" udp dport @fullcone_ports dnat to {client}\n\
             \t}}\n"
        )),
        NatKind::UdpBlocked => rules.push_str(
            "\tchain forward {\n\
             \t\ttype filter hook forward priority filter; policy accept;\n\
             \t\tiifname \"lan0\" meta l4proto udp drop\n\
             \t}\n",
        ),
        NatKind::PortRestricted | NatKind::Symmetric => {}
    }
    rules.push_str("}\n");
    rules
}

/// A permit to hold a testbed; limits concurrent testbeds to keep a 2-core CI machine light.
struct Slot {
    counted: bool,
}

static SLOTS: Mutex<usize> = Mutex::new(0);
static SLOT_FREED: Condvar = Condvar::new();

thread_local! {
    static HELD_HERE: Cell<usize> = const { Cell::new(0) };
}

impl Slot {
    fn acquire() -> Slot {
        if HELD_HERE.with(Cell::get) > 0 {
            // Nested testbed on the same thread: never wait for ourselves.
            HELD_HERE.with(|h| h.set(h.get() + 1));
            return Slot { counted: false };
        }
        let max: usize = std::env::var("ICEPROBE_TESTBED_JOBS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(2);
        let mut used = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        while *used >= max {
            used = SLOT_FREED.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += 1;
        HELD_HERE.with(|h| h.set(1));
        Slot { counted: true }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        HELD_HERE.with(|h| h.set(h.get().saturating_sub(1)));
        if self.counted {
            let mut used = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
            *used = used.saturating_sub(1);
            SLOT_FREED.notify_one();
        }
    }
}
