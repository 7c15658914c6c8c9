//! The loop that feeds a sans-IO machine from real links, keeps its timers and the run's
//! deadline, and stops on cancellation (Ctrl-C). One loop for every machine: one link (a STUN
//! transaction, a TURN allocation) or several (a check row's two allocations).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use tokio::sync::watch;

use super::dtls::DtlsLink;
use super::stream::StreamLink;
use super::udp::UdpLink;
use crate::proto::reject::Reject;
use crate::proto::SansIo;

/// A link to one server: a routed view of a shared UDP socket, or a framed stream.
pub enum Link {
    /// UDP.
    Udp(UdpLink),
    /// TCP or TLS.
    Stream(StreamLink),
    /// DTLS over UDP (RFC 7350).
    Dtls(Box<DtlsLink>),
    /// Moved out or gone down: sends fail, nothing is ever received.
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
            // A link that went down delivers nothing more (and never ends a multi-link wait).
            Link::Closed => std::future::pending().await,
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

/// A machine the driver can run over one or more links, addressed by their index in the slice
/// given to [`drive_links`]. Machines that talk over one link implement [`OneLink`] instead.
pub trait Machine {
    /// What it reports.
    type Event;
    /// One received message on `link`.
    fn input(&mut self, now: Instant, link: usize, bytes: &[u8]);
    /// Timers.
    fn timeout(&mut self, now: Instant);
    /// Bytes to send, and on which link.
    fn transmit(&mut self) -> Option<(usize, Vec<u8>)>;
    /// Next timer.
    fn next_timeout(&self) -> Option<Instant>;
    /// Next event.
    fn event(&mut self) -> Option<Self::Event>;
    /// Something arrived on `link` that the machine must not see (wrong source, unfinished
    /// message).
    fn reject(&mut self, link: usize, r: Reject);
    /// When the machine stops waiting for what it asked (its own deadline, before the
    /// driver's): a stream message still unfinished then is a reject worth naming. `None`: the
    /// driver's deadline is the machine's.
    fn gives_up_at(&self) -> Option<Instant> {
        None
    }
}

impl<M: SansIo> Machine for M {
    type Event = M::Event;
    fn input(&mut self, now: Instant, _link: usize, bytes: &[u8]) {
        self.handle_input(now, bytes)
    }
    fn timeout(&mut self, now: Instant) {
        self.handle_timeout(now)
    }
    fn transmit(&mut self) -> Option<(usize, Vec<u8>)> {
        self.poll_transmit().map(|b| (0, b))
    }
    fn next_timeout(&self) -> Option<Instant> {
        self.poll_timeout()
    }
    fn event(&mut self) -> Option<M::Event> {
        self.poll_event()
    }
    fn reject(&mut self, _link: usize, r: Reject) {
        SansIo::reject(self, r)
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
    /// A link failed or was closed by the server.
    Link {
        /// Its index in the slice given to [`drive_links`] (0 for [`drive`]).
        link: usize,
        /// How it went down.
        down: LinkDown,
    },
}

/// How a link went down.
#[derive(Debug)]
pub enum LinkDown {
    /// The server closed the stream.
    Closed,
    /// Sending or receiving failed.
    Io(io::Error),
}

impl Clone for LinkDown {
    /// The same error again: the OS error number when there is one (a cause may depend on it,
    /// e.g. EMFILE), else its kind and text.
    fn clone(&self) -> Self {
        match self {
            LinkDown::Closed => LinkDown::Closed,
            LinkDown::Io(e) => LinkDown::Io(match e.raw_os_error() {
                Some(n) => io::Error::from_raw_os_error(n),
                None => io::Error::new(e.kind(), e.to_string()),
            }),
        }
    }
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

/// A cancel signal that never fires: for waits that must not be cut short (a release after
/// Ctrl-C). Keep the sender alive as long as the receiver is used.
pub fn never_cancelled() -> (watch::Sender<bool>, watch::Receiver<bool>) {
    watch::channel(false)
}

/// Run `m` over `link` until `on_event` returns `true`, the deadline, cancellation or a link
/// failure. `on_event` may call into the machine (e.g. start the next request).
pub async fn drive<M: Machine>(
    link: &mut Link,
    m: &mut M,
    deadline: Instant,
    cancel: &mut watch::Receiver<bool>,
    on_event: impl FnMut(&mut M, M::Event, Instant) -> bool,
) -> Stop {
    drive_links(std::slice::from_mut(link), m, deadline, cancel, on_event).await
}

/// Send whatever the machine has queued, best effort: what must go out even when nothing more
/// will be waited for (a release at the deadline).
pub async fn flush<M: Machine>(links: &mut [Link], m: &mut M) {
    while let Some((i, t)) = m.transmit() {
        if let Some(link) = links.get_mut(i) {
            let _ = link.send(&t).await;
        }
    }
}

/// [`drive`] over several links: `m` addresses them by index. Returns at the first stop; on
/// [`Stop::Link`] the caller tells the machine and may drive on (replace the link with
/// [`Link::Closed`], which never delivers anything).
pub async fn drive_links<M: Machine>(
    links: &mut [Link],
    m: &mut M,
    deadline: Instant,
    cancel: &mut watch::Receiver<bool>,
    mut on_event: impl FnMut(&mut M, M::Event, Instant) -> bool,
) -> Stop {
    loop {
        if let Err(stop) = send_all(links, m).await {
            return stop;
        }
        let mut had_event = false;
        while let Some(ev) = m.event() {
            had_event = true;
            if on_event(m, ev, Instant::now()) {
                // Whatever the handler queued (e.g. a release) still goes out.
                return send_all(links, m).await.err().unwrap_or(Stop::Done);
            }
        }
        if had_event {
            // Flush whatever the handler queued before waiting.
            continue;
        }
        let wake = m.next_timeout().map_or(deadline, |t| t.min(deadline));
        tokio::select! {
            (i, r) = recv_any(links) => match r {
                // Everything a STUN/TURN server sends us, relayed data included, comes from
                // its own address; anything else is spoofed or rewritten.
                Ok(Some((from, bytes))) => match (from, links[i].remote()) {
                    (Some(from), Some(expected)) if !same_endpoint(expected, from) => {
                        m.reject(i, Reject::WrongSource { from, expected })
                    }
                    _ => m.input(Instant::now(), i, &bytes),
                },
                Ok(None) => return Stop::Link { link: i, down: LinkDown::Closed },
                Err(e) => return Stop::Link { link: i, down: LinkDown::Io(e) },
            },
            _ = tokio::time::sleep_until(wake.into()) => {
                let now = Instant::now();
                let giving_up = now >= deadline || m.gives_up_at().is_some_and(|t| now >= t);
                if giving_up {
                    for (i, link) in links.iter().enumerate() {
                        let buffered = link.buffered();
                        if buffered > 0 {
                            m.reject(i, Reject::Incomplete { buffered });
                        }
                    }
                }
                if now >= deadline {
                    return Stop::Deadline;
                }
                m.timeout(now);
            }
            _ = cancelled(cancel) => return Stop::Cancelled,
        }
    }
}

/// Send every queued transmit on its link.
async fn send_all<M: Machine>(links: &mut [Link], m: &mut M) -> Result<(), Stop> {
    while let Some((i, t)) = m.transmit() {
        let Some(link) = links.get_mut(i) else {
            continue;
        };
        if let Err(e) = link.send(&t).await {
            return Err(Stop::Link {
                link: i,
                down: LinkDown::Io(e),
            });
        }
    }
    Ok(())
}

/// The next message on any link, with the link's index. Each link's receive is cancel-safe,
/// so the ones that lose the race lose nothing.
async fn recv_any(
    links: &mut [Link],
) -> (usize, io::Result<Option<(Option<SocketAddr>, Vec<u8>)>>) {
    if let [only] = links {
        return (0, only.recv().await);
    }
    let mut waits: Vec<_> = links
        .iter_mut()
        .enumerate()
        .map(|(i, l)| Box::pin(async move { (i, l.recv().await) }))
        .collect();
    std::future::poll_fn(|cx| {
        for w in waits.iter_mut() {
            if let std::task::Poll::Ready(r) = w.as_mut().poll(cx) {
                return std::task::Poll::Ready(r);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// Same IP and port; IPv6 flow info and scope ids are not part of who answered.
fn same_endpoint(a: SocketAddr, b: SocketAddr) -> bool {
    a.ip() == b.ip() && a.port() == b.port()
}
