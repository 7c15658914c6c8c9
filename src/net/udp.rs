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
        let socket = Arc::new(UdpSocket::bind(addr).await?);
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
