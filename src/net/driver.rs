//! The loop that feeds a sans-IO machine from a real link, keeps its timers and the run's
//! deadline, and stops on cancellation (Ctrl-C).

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use tokio::sync::watch;

use super::dtls::DtlsLink;
use super::stream::StreamLink;
use super::udp::UdpLink;
use crate::proto::binding::{Binding, BindingOutcome};
use crate::proto::reject::Reject;
use crate::proto::turn::{TurnClient, TurnEvent};

/// A link to one server: a routed view of a shared UDP socket, or a framed stream.
pub enum Link {
    /// UDP.
    Udp(UdpLink),
    /// TCP or TLS.
    Stream(StreamLink),
    /// DTLS over UDP (RFC 7350).
    Dtls(Box<DtlsLink>),
    /// Moved out or closed: sends fail, receives never arrive.
    Closed,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Link::Udp(l) => write!(f, "Link::Udp({})", l.remote()),
            Link::Stream(l) => write!(f, "Link::Stream({})", l.remote()),
            Link::Dtls(l) => write!(f, "Link::Dtls({})", l.remote()),
            Link::Closed => f.write_str("Link::Closed"),
        }
    }
}

impl Link {
    /// The server's address.
    pub fn remote(&self) -> Option<SocketAddr> {
        match self {
            Link::Udp(l) => Some(l.remote()),
            Link::Stream(l) => Some(l.remote()),
            Link::Dtls(l) => Some(l.remote()),
            Link::Closed => None,
        }
    }

    async fn send(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Link::Udp(l) => l.send(b).await,
            Link::Stream(l) => l.send(b).await,
            Link::Dtls(l) => l.send(b).await,
            Link::Closed => Err(io::Error::new(io::ErrorKind::NotConnected, "link closed")),
        }
    }

    /// The next message, with its source for UDP (streams have only one).
    async fn recv(&mut self) -> io::Result<Option<(Option<SocketAddr>, Vec<u8>)>> {
        match self {
            Link::Udp(l) => Ok(l.recv().await.map(|(from, b)| (Some(from), b))),
            Link::Stream(l) => Ok(l.recv().await?.map(|b| (None, b))),
            Link::Dtls(l) => l.recv().await.map(|r| r.map(|(from, b)| (Some(from), b))),
            Link::Closed => Ok(None),
        }
    }

    /// Bytes of an unfinished stream message held when the wait ended.
    fn buffered(&self) -> usize {
        match self {
            Link::Stream(l) => l.buffered(),
            _ => 0,
        }
    }

    /// Close politely (streams and DTLS; plain UDP has nothing to close).
    pub async fn close(&mut self) {
        match self {
            Link::Stream(l) => l.shutdown().await,
            Link::Dtls(l) => l.close().await,
            _ => {}
        }
    }
}

/// A machine the driver can run.
pub trait Machine {
    /// What it reports.
    type Event;
    /// One received message.
    fn input(&mut self, now: Instant, bytes: &[u8]);
    /// Timers.
    fn timeout(&mut self, now: Instant);
    /// Bytes to send.
    fn transmit(&mut self) -> Option<Vec<u8>>;
    /// Next timer.
    fn next_timeout(&self) -> Option<Instant>;
    /// Next event.
    fn event(&mut self) -> Option<Self::Event>;
    /// Something arrived that the machine must not see (wrong source, unfinished message).
    fn reject(&mut self, r: Reject);
}

impl Machine for Binding {
    type Event = BindingOutcome;
    fn input(&mut self, now: Instant, bytes: &[u8]) {
        self.handle_bytes(now, bytes);
    }
    fn timeout(&mut self, now: Instant) {
        self.handle_timeout(now)
    }
    fn transmit(&mut self) -> Option<Vec<u8>> {
        self.poll_transmit()
    }
    fn next_timeout(&self) -> Option<Instant> {
        self.poll_timeout()
    }
    fn event(&mut self) -> Option<BindingOutcome> {
        self.poll_outcome()
    }
    fn reject(&mut self, r: Reject) {
        Binding::reject(self, r)
    }
}

impl Machine for TurnClient {
    type Event = TurnEvent;
    fn input(&mut self, now: Instant, bytes: &[u8]) {
        self.handle_input(now, bytes)
    }
    fn timeout(&mut self, now: Instant) {
        self.handle_timeout(now)
    }
    fn transmit(&mut self) -> Option<Vec<u8>> {
        self.poll_transmit()
    }
    fn next_timeout(&self) -> Option<Instant> {
        self.poll_timeout()
    }
    fn event(&mut self) -> Option<TurnEvent> {
        self.poll_event()
    }
    fn reject(&mut self, r: Reject) {
        TurnClient::reject(self, r)
    }
}

/// Why [`drive`] returned.
#[derive(Debug)]
pub enum Stop {
    /// The event handler said it is done.
    Done,
    /// The deadline passed.
    Deadline,
    /// Ctrl-C (or the caller) cancelled the run.
    Cancelled,
    /// The link failed.
    Io(io::Error),
    /// The server closed the stream.
    Closed,
}

/// Resolves when `cancel` becomes true; never if its sender is gone.
pub async fn cancelled(cancel: &mut watch::Receiver<bool>) {
    loop {
        if *cancel.borrow_and_update() {
            return;
        }
        if cancel.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Run `m` over `link` until `on_event` returns `true`, the deadline, cancellation or a link
/// failure. `on_event` may call into the machine (e.g. start the next request).
pub async fn drive<M: Machine>(
    link: &mut Link,
    m: &mut M,
    deadline: Instant,
    cancel: &mut watch::Receiver<bool>,
    mut on_event: impl FnMut(&mut M, M::Event, Instant) -> bool,
) -> Stop {
    loop {
        while let Some(t) = m.transmit() {
            if let Err(e) = link.send(&t).await {
                return Stop::Io(e);
            }
        }
        let mut had_event = false;
        while let Some(ev) = m.event() {
            had_event = true;
            if on_event(m, ev, Instant::now()) {
                // Whatever the handler queued (e.g. a release) still goes out.
                while let Some(t) = m.transmit() {
                    if let Err(e) = link.send(&t).await {
                        return Stop::Io(e);
                    }
                }
                return Stop::Done;
            }
        }
        if had_event {
            // Flush whatever the handler queued before waiting.
            continue;
        }
        let wake = m.next_timeout().map_or(deadline, |t| t.min(deadline));
        let expected = link.remote();
        tokio::select! {
            r = link.recv() => match r {
                // Everything a STUN/TURN server sends us, relayed data included, comes from
                // its own address; anything else is spoofed or rewritten.
                Ok(Some((from, bytes))) => match (from, expected) {
                    (Some(from), Some(expected)) if !same_endpoint(expected, from) => {
                        m.reject(Reject::WrongSource { from, expected })
                    }
                    _ => m.input(Instant::now(), &bytes),
                },
                Ok(None) => return Stop::Closed,
                Err(e) => return Stop::Io(e),
            },
            _ = tokio::time::sleep_until(wake.into()) => {
                let now = Instant::now();
                if now >= deadline {
                    let buffered = link.buffered();
                    if buffered > 0 {
                        m.reject(Reject::Incomplete { buffered });
                    }
                    return Stop::Deadline;
                }
                m.timeout(now);
            }
            _ = cancelled(cancel) => return Stop::Cancelled,
        }
    }
}

/// Same IP and port; IPv6 flow info and scope ids are not part of who answered.
fn same_endpoint(a: SocketAddr, b: SocketAddr) -> bool {
    a.ip() == b.ip() && a.port() == b.port()
}
