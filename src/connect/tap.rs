//! A webrtc [`Runtime`] that is Tokio's in every respect but one: the UDP sockets it hands the
//! peer connection show every datagram, both ways, to [`Watcher`]s, and pass it on untouched.
//! The watchers are the [`CheckObserver`] (every candidate pair's checks, `connect::pairs`)
//! and the TURN ledger (allocations to release, `connect::sweep`).
#![allow(clippy::disallowed_methods)] // the I/O edge: stamps datagrams with the clock

use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, RecvMeta, Runtime,
    Transmit,
};

use super::pairs::{CheckObserver, Dir};

/// Shared between the sockets of one peer connection and whoever reads the result.
pub type SharedObserver = Arc<Mutex<CheckObserver>>;

/// Something that reads the datagrams a peer connection's sockets carry. Called right after a
/// datagram went out (the kernel took it) or came in; must be quick and never block.
pub trait Watcher: Send + Sync + 'static {
    /// One datagram: this side's socket address, the other end, the bytes, a millisecond clock.
    fn datagram(&self, dir: Dir, local: SocketAddr, remote: SocketAddr, bytes: &[u8], now_ms: f64);
}

impl Watcher for Mutex<CheckObserver> {
    fn datagram(&self, dir: Dir, local: SocketAddr, remote: SocketAddr, bytes: &[u8], now_ms: f64) {
        // A poisoned lock means an observer panicked once; its table is still readable.
        let mut o = self.lock().unwrap_or_else(|p| p.into_inner());
        o.datagram(dir, local, remote, bytes, now_ms);
    }
}

/// Tokio's runtime with watched UDP sockets.
pub struct TapRuntime {
    inner: Arc<dyn Runtime>,
    watchers: Arc<[Arc<dyn Watcher>]>,
    t0: Instant,
}

impl std::fmt::Debug for TapRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapRuntime")
            .field("inner", &self.inner)
            .field("watchers", &self.watchers.len())
            .finish()
    }
}

impl TapRuntime {
    /// Wrap `inner` (Tokio's); every socket shows its datagrams to `watchers`.
    pub fn wrap(inner: Arc<dyn Runtime>, watchers: Vec<Arc<dyn Watcher>>) -> Arc<TapRuntime> {
        Arc::new(TapRuntime {
            inner,
            watchers: watchers.into(),
            t0: Instant::now(),
        })
    }
}

impl Runtime for TapRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        self.inner.spawn(future)
    }

    fn spawn_reactor(
        &self,
        reactor_pool_size: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn JoinHandle> {
        self.inner.spawn_reactor(reactor_pool_size, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let inner = self.inner.wrap_udp_socket(socket)?;
        let local = inner.local_addr()?;
        Ok(Arc::new(TapSocket {
            inner,
            local,
            watchers: self.watchers.clone(),
            t0: self.t0,
        }))
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.inner.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        self.inner.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        self.inner.resolve_host(host)
    }

    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        self.inner.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.inner.block_on(future)
    }

    fn yield_now(&self) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.yield_now()
    }

    fn name(&self) -> &'static str {
        "iceprobe-tap"
    }
}

/// A UDP socket that shows what it carries to the watchers.
struct TapSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    local: SocketAddr,
    watchers: Arc<[Arc<dyn Watcher>]>,
    t0: Instant,
}

impl std::fmt::Debug for TapSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapSocket")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl TapSocket {
    fn see(&self, dir: Dir, remote: SocketAddr, datagram: &[u8]) {
        let now_ms = self.t0.elapsed().as_secs_f64() * 1000.0;
        for w in self.watchers.iter() {
            w.datagram(dir, self.local, remote, datagram, now_ms);
        }
    }
}

impl AsyncUdpSocket for TapSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        let r = self.inner.poll_send(cx, transmit);
        if let Poll::Ready(Ok(_)) = &r {
            // With GSO one transmit carries several datagrams of `segment_size` bytes.
            let seg = transmit
                .segment_size
                .unwrap_or(transmit.contents.len())
                .max(1);
            for d in transmit.contents.chunks(seg) {
                self.see(Dir::Out, transmit.destination, d);
            }
        }
        r
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let r = self.inner.poll_recv(cx, bufs, meta);
        if let Poll::Ready(Ok(n)) = &r {
            for (buf, m) in bufs.iter().zip(meta.iter()).take(*n) {
                let len = m.len.min(buf.len());
                // With GRO one buffer holds several datagrams of `stride` bytes.
                for d in buf[..len].chunks(m.stride.max(1)) {
                    self.see(Dir::In, m.addr, d);
                }
            }
        }
        r
    }

    fn max_gso_segments(&self) -> usize {
        self.inner.max_gso_segments()
    }

    fn max_gro_segments(&self) -> usize {
        self.inner.max_gro_segments()
    }
}
