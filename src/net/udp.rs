//! One UDP socket shared by many probes, as a browser shares one socket per host candidate:
//! srflx bindings and TURN/UDP allocations all leave from the same port, so the srflx candidates'
//! base is the host candidate. A reader task routes each datagram to the probe that owns it: STUN
//! by transaction id (RFC 5389 §7.3), anything else (ChannelData, Data indications with fresh
//! ids, junk) to every probe talking to that remote, so that each can tell what it received.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::proto::stun::{txid_of, TxId};

/// Largest datagram we read; STUN over UDP stays well below it (RFC 8489 §6.1).
const MAX_DATAGRAM: usize = 65_536;

/// Datagrams queued per link before more are dropped. A probe reads its queue at once; only a
/// flood (a hostile or broken server) fills it, and dropping is what the kernel would do.
const LINK_QUEUE: usize = 256;

#[derive(Default)]
struct Routes {
    by_txid: HashMap<TxId, u64>,
    by_remote: HashMap<SocketAddr, Vec<u64>>,
    links: HashMap<u64, mpsc::Sender<(SocketAddr, Vec<u8>)>>,
    next_id: u64,
}

/// A shared UDP socket with its demultiplexing reader.
pub struct UdpMux {
    socket: Arc<UdpSocket>,
    routes: Arc<Mutex<Routes>>,
    reader: JoinHandle<()>,
}

impl Drop for UdpMux {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl UdpMux {
    /// Bind `addr` (usually `0.0.0.0:0` or `[::]:0`) and start routing.
    pub async fn bind(addr: SocketAddr) -> io::Result<UdpMux> {
        Self::start(UdpSocket::bind(addr).await?)
    }

    /// [`UdpMux::bind`] without awaiting (binding a UDP socket never blocks); needs a runtime.
    pub fn bind_now(addr: SocketAddr) -> io::Result<UdpMux> {
        let std = std::net::UdpSocket::bind(addr)?;
        std.set_nonblocking(true)?;
        Self::start(UdpSocket::from_std(std)?)
    }

    fn start(socket: UdpSocket) -> io::Result<UdpMux> {
        let socket = Arc::new(socket);
        let routes: Arc<Mutex<Routes>> = Arc::default();
        let reader = tokio::spawn(read_loop(socket.clone(), routes.clone()));
        Ok(UdpMux {
            socket,
            routes,
            reader,
        })
    }

    /// The bound local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// A link to `remote`: what it sends is routed back to this link.
    pub fn link(&self, remote: SocketAddr) -> UdpLink {
        let (tx, rx) = mpsc::channel(LINK_QUEUE);
        let id = {
            let mut r = lock(&self.routes);
            r.next_id += 1;
            let id = r.next_id;
            r.links.insert(id, tx);
            r.by_remote.entry(remote).or_default().push(id);
            id
        };
        UdpLink {
            socket: self.socket.clone(),
            routes: self.routes.clone(),
            remote,
            rx,
            id,
        }
    }
}

/// UDP sockets shared by many probes that each need their own 5-tuple: a TURN server keys
/// allocations by client address and port (RFC 8656 §2.2), so two links to one server must
/// leave from two sockets, while links to different servers can share one. The pool hands out
/// links from the first socket that has no link to that server and room left, and binds a new
/// socket otherwise; 1,000 servers then need a few dozen sockets and reader tasks, not 2,000.
#[derive(Default)]
pub struct MuxPool {
    muxes: Mutex<Vec<UdpMux>>,
}

/// Links per pooled socket: enough to share, few enough that a burst of answers fits in the
/// socket's receive buffer (each reply is one skb of ~1 KiB against a default of ~208 KiB).
const LINKS_PER_SOCKET: usize = 32;

impl std::fmt::Debug for MuxPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.muxes.lock().map(|m| m.len()).unwrap_or(0);
        write!(f, "MuxPool({n} sockets)")
    }
}

impl MuxPool {
    /// A link to `remote` on a socket of its address family that has no other link to it.
    /// Needs a Tokio runtime (a new socket starts its reader task).
    pub fn link(&self, remote: SocketAddr) -> io::Result<(UdpLink, SocketAddr)> {
        let mut muxes = self.muxes.lock().unwrap_or_else(|p| p.into_inner());
        let fits = |m: &UdpMux| {
            let same_family = m
                .local_addr()
                .is_ok_and(|l| l.is_ipv4() == remote.is_ipv4());
            let r = lock(&m.routes);
            same_family && r.links.len() < LINKS_PER_SOCKET && !r.by_remote.contains_key(&remote)
        };
        let i = match muxes.iter().position(fits) {
            Some(i) => i,
            None => {
                muxes.push(UdpMux::bind_now(super::any_addr(remote.ip()))?);
                muxes.len() - 1
            }
        };
        let local = muxes[i].local_addr()?;
        Ok((muxes[i].link(remote), local))
    }

    /// Sockets bound so far.
    pub fn sockets(&self) -> usize {
        self.muxes.lock().map(|m| m.len()).unwrap_or(0)
    }
}

fn lock(m: &Mutex<Routes>) -> std::sync::MutexGuard<'_, Routes> {
    // A poisoned lock only means another probe panicked; the routing table is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn read_loop(socket: Arc<UdpSocket>, routes: Arc<Mutex<Routes>>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            // ICMP errors surface as ECONNREFUSED on some platforms: keep reading.
            Err(_) => continue,
        };
        let bytes = buf[..n].to_vec();
        let r = lock(&routes);
        let by_txid = txid_of(&bytes).and_then(|id| r.by_txid.get(&id).copied());
        let owners: &[u64] = match &by_txid {
            Some(id) => std::slice::from_ref(id),
            None => r.by_remote.get(&from).map_or(&[], Vec::as_slice),
        };
        for tx in owners.iter().filter_map(|id| r.links.get(id)) {
            let _ = tx.try_send((from, bytes.clone()));
        }
    }
}

/// One probe's view of the shared socket.
pub struct UdpLink {
    socket: Arc<UdpSocket>,
    routes: Arc<Mutex<Routes>>,
    remote: SocketAddr,
    rx: mpsc::Receiver<(SocketAddr, Vec<u8>)>,
    id: u64,
}

impl UdpLink {
    /// The remote this link talks to.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// Send one datagram to the remote; a STUN request's transaction id is registered first so
    /// that its response finds its way back.
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.send_to(bytes, self.remote).await
    }

    /// Send to another address through the shared socket (e.g. hairpin or peer tests).
    pub async fn send_to(&mut self, bytes: &[u8], to: SocketAddr) -> io::Result<()> {
        if let Some(id) = txid_of(bytes) {
            lock(&self.routes).by_txid.insert(id, self.id);
        }
        self.socket.send_to(bytes, to).await.map(|_| ())
    }

    /// The next datagram routed to this link, with its source.
    pub async fn recv(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.rx.recv().await
    }
}

impl Drop for UdpLink {
    fn drop(&mut self) {
        let mut r = lock(&self.routes);
        r.links.remove(&self.id);
        let id = self.id;
        r.by_txid.retain(|_, v| *v != id);
        r.by_remote.retain(|_, v| {
            v.retain(|l| *l != id);
            !v.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::stun;
    use std::time::Duration;

    #[tokio::test]
    async fn pool_gives_each_server_distinct_sockets_and_shares_them_across_servers() {
        let pool = MuxPool::default();
        let a: SocketAddr = "127.0.0.1:3478".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:3479".parse().unwrap();
        let (a1, l1) = pool.link(a).unwrap();
        let (a2, l2) = pool.link(a).unwrap();
        let (b1, l3) = pool.link(b).unwrap();
        assert_ne!(l1, l2, "two links to one server need two 5-tuples");
        assert_eq!(l1, l3, "another server shares the first socket");
        assert_eq!(pool.sockets(), 2);
        // A closed link frees its place for the same server.
        drop(a1);
        let (_a3, l4) = pool.link(a).unwrap();
        assert_eq!(l4, l1);
        // A socket takes at most LINKS_PER_SOCKET links.
        let many: Vec<_> = (0..2 * LINKS_PER_SOCKET as u16)
            .map(|i| {
                pool.link(SocketAddr::from(([127, 0, 0, 1], 10_000 + i)))
                    .unwrap()
            })
            .collect();
        assert!(pool.sockets() >= 3, "{}", pool.sockets());
        drop((a2, b1, many));
    }

    #[tokio::test]
    async fn routes_by_transaction_id_then_by_remote() {
        let mux = UdpMux::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let srv = server.local_addr().unwrap();
        // Two links to the same server: only transaction ids can tell their answers apart.
        let mut a = mux.link(srv);
        let mut b = mux.link(srv);
        let ida = stun::new_txid();
        let idb = stun::new_txid();
        a.send(&stun::binding_request(ida)).await.unwrap();
        b.send(&stun::binding_request(idb)).await.unwrap();
        let mut buf = [0u8; 1500];
        for _ in 0..2 {
            let (n, from) = server.recv_from(&mut buf).await.unwrap();
            server.send_to(&buf[..n], from).await.unwrap();
        }
        let t = Duration::from_secs(2);
        let (_, got_a) = tokio::time::timeout(t, a.recv()).await.unwrap().unwrap();
        let (_, got_b) = tokio::time::timeout(t, b.recv()).await.unwrap().unwrap();
        assert_eq!(stun::txid_of(&got_a), Some(ida));
        assert_eq!(stun::txid_of(&got_b), Some(idb));
        // Non-STUN goes to every link of that remote.
        server
            .send_to(b"\x40\x00\x00\x00", mux.local_addr().unwrap())
            .await
            .unwrap();
        for link in [&mut a, &mut b] {
            let (from, bytes) = tokio::time::timeout(t, link.recv()).await.unwrap().unwrap();
            assert_eq!(from, srv);
            assert_eq!(bytes, b"\x40\x00\x00\x00");
        }
    }
}
