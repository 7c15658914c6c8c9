//! TURN over TCP/TLS: the server's byte stream is split into STUN and ChannelData messages
//! (RFC 8656 §12.5) by `net::stream::StreamLink`, whatever the read boundaries; each message then
//! goes to the TURN client, whose ChannelData decode is the other half of this surface.
//!
//! The first input byte picks how the stream is cut into reads (1 to 256 bytes each), the rest is
//! the stream. Checks: no panic; every message is exactly as long as its header says; the
//! messages do not depend on the read boundaries (compared with one-shot decoding).
#![no_main]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use iceprobe::net::stream::StreamLink;
use iceprobe::proto::stun;
use iceprobe::proto::turn::{TurnClient, TurnConfig};
use iceprobe::proto::SansIo;
use libfuzzer_sys::fuzz_target;
use rtc::shared::turn_framing::TurnStreamDecoder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// An in-memory server stream that hands out its bytes in reads of varying size and never
/// blocks, so the link's futures complete on the first poll with no runtime.
struct Chunked {
    data: Vec<u8>,
    pos: usize,
    seed: u8,
}

impl AsyncRead for Chunked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // A cheap varying sequence of read sizes from the seed.
        self.seed = self.seed.wrapping_mul(37).wrapping_add(11);
        let want = usize::from(self.seed) + 1;
        let n = want.min(buf.remaining()).min(self.data.len() - self.pos);
        buf.put_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Chunked {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Run a future that cannot wait (its only I/O is [`Chunked`]) to completion.
fn ready<T>(f: impl Future<Output = T>) -> T {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("an in-memory stream read must not wait"),
    }
}

/// The length a message's own header gives it.
fn framed_len(m: &[u8]) -> usize {
    let len = usize::from(u16::from_be_bytes([m[2], m[3]]));
    if m[0] >> 6 == 0 {
        20 + len
    } else {
        4 + len.next_multiple_of(4)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let remote: SocketAddr = ([192, 0, 2, 1], 3478).into();
    let mut link = StreamLink::new(
        Box::new(Chunked {
            data: stream.to_vec(),
            pos: 0,
            seed,
        }),
        remote,
    );
    let mut oneshot = TurnStreamDecoder::new();
    oneshot.extend_from_slice(stream);
    let mut client = TurnClient::new(TurnConfig {
        username: None,
        password: None,
        ipv6_relay: None,
        rto: Duration::from_millis(100),
        reliable: true,
    })
    .expect("a crypto provider");
    #[allow(clippy::disallowed_methods)] // an arbitrary t0: the machine only sees `now` passed in
    let now = Instant::now();
    loop {
        let got = ready(link.recv());
        let want = oneshot.next_message();
        match got {
            Ok(Some(m)) => {
                assert!(m.len() >= 4);
                assert_eq!(m.len(), framed_len(&m));
                assert_eq!(want.ok().flatten().as_deref(), Some(&m[..]));
                // What a stream carries goes on to the machines.
                let _ = stun::decode(&m);
                client.handle_input(now, &m);
                while client.poll_event().is_some() {}
            }
            Ok(None) => {
                // The stream ended: only an incomplete message may be left over.
                assert_eq!(want.ok(), Some(None));
                break;
            }
            Err(e) => {
                assert_eq!(e.kind(), io::ErrorKind::InvalidData);
                // Either the framing itself broke, or the start check refused bytes that
                // cannot begin a message there (a first message that is not STUN, a wrong
                // magic cookie, a reserved channel) before the framing would have noticed.
                assert!(
                    want.is_err() || e.to_string().contains("the stream starts with"),
                    "{e}"
                );
                break;
            }
        }
    }
});
