//! The I/O edge of [`super::checks`]: a webrtc [`Runtime`] that is Tokio's in every respect
//! but one — the UDP sockets it hands the peer connection show every datagram, both ways, to
//! a [`CheckObserver`] before passing it on untouched.
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

use super::checks::{CheckObserver, Dir};

/// Shared between the sockets of one peer connection and whoever reads the result.
pub type SharedObserver = Arc<Mutex<CheckObserver>>;

/// Tokio's runtime with observed UDP sockets.
#[derive(Debug)]
pub struct TapRuntime {
    inner: Arc<dyn Runtime>,
    observer: SharedObserver,
    t0: Instant,
}

impl TapRuntime {
    /// Wrap `inner` (Tokio's, or another wrapper around it).
    pub fn wrap(inner: Arc<dyn Runtime>, observer: SharedObserver) -> Arc<TapRuntime> {
        Arc::new(TapRuntime {
            inner,
            observer,
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
            observer: self.observer.clone(),
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

/// A UDP socket that shows what it carries to the observer.
#[derive(Debug)]
struct TapSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    local: SocketAddr,
    observer: SharedObserver,
    t0: Instant,
}

impl TapSocket {
    fn see(&self, dir: Dir, remote: SocketAddr, datagram: &[u8]) {
        let now_ms = self.t0.elapsed().as_secs_f64() * 1000.0;
        // A poisoned lock means an observer panicked once; its table is still readable.
        let mut o = self.observer.lock().unwrap_or_else(|p| p.into_inner());
        o.datagram(dir, self.local, remote, datagram, now_ms);
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
