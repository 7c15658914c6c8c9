//! STUN/TURN over a TCP or TLS byte stream: messages are self-delimiting (RFC 8656 §12.5), split
//! with `rtc::shared::turn_framing::TurnStreamDecoder`.

use std::io;
use std::net::SocketAddr;

use rtc::shared::turn_framing::TurnStreamDecoder;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Any async byte stream (plain TCP or TLS).
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Open a TCP connection before `deadline`. A timeout is reported as `io::ErrorKind::TimedOut`.
pub async fn connect(addr: SocketAddr, deadline: Instant) -> io::Result<TcpStream> {
    match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
        Ok(r) => {
            let s = r?;
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "TCP connect timed out",
        )),
    }
}

/// A framed STUN/TURN stream.
pub struct StreamLink {
    stream: Box<dyn Stream>,
    decoder: TurnStreamDecoder,
    remote: SocketAddr,
    closed: bool,
    /// Whole messages received so far.
    received: u64,
}

impl StreamLink {
    /// Wrap a connected stream.
    pub fn new(stream: Box<dyn Stream>, remote: SocketAddr) -> Self {
        StreamLink {
            stream,
            decoder: TurnStreamDecoder::new(),
            remote,
            closed: false,
            received: 0,
        }
    }

    /// The server address.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// Bytes received that do not yet make a whole message.
    pub fn buffered(&self) -> usize {
        self.decoder.buffered_len()
    }

    /// Write one message.
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// The next whole message; `None` when the server closed the stream; an error when the
    /// stream carries something that is not STUN/TURN.
    pub async fn recv(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut buf = [0u8; 4096];
        loop {
            match self.decoder.next_message() {
                Ok(Some(m)) => {
                    self.received += 1;
                    return Ok(Some(m));
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("the server sent bytes that are not STUN/TURN: {e}"),
                    ))
                }
            }
            if self.closed {
                return Ok(None);
            }
            let n = self.stream.read(&mut buf).await?;
            if n == 0 {
                self.closed = true;
                continue;
            }
            // A chunk that starts a new message shows at once whether the peer speaks STUN/TURN
            // at all; otherwise the decoder would wait for a "length" read from, say, an HTTP
            // status line.
            if self.decoder.buffered_len() == 0 {
                if let Err(why) = check_start(&buf[..n], self.received == 0) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("the server sent bytes that are not STUN/TURN: {why}"),
                    ));
                }
            }
            self.decoder.extend_from_slice(&buf[..n]);
        }
    }

    /// Close the write side politely (TLS close_notify, TCP FIN).
    pub async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}

/// Whether `b` can begin a STUN message (top bits 00, magic cookie) or ChannelData (top bits 01,
/// channel 0x4000–0x4FFF: RFC 8656 §12 reserves 0x5000–0x7FFF). The `first` message on a
/// stream must be STUN: ChannelData only flows after a ChannelBind was answered.
fn check_start(b: &[u8], first: bool) -> Result<(), String> {
    let ok = match b.first().map(|b0| b0 >> 6) {
        None => true,
        Some(0) => b.len() < 8 || b[4..8] == [0x21, 0x12, 0xA4, 0x42],
        Some(1) => !first && b[0] <= 0x4F,
        Some(_) => false,
    };
    if ok {
        return Ok(());
    }
    let shown: String = b
        .iter()
        .take(16)
        .map(|&c| {
            if c.is_ascii_graphic() || c == b' ' {
                char::from(c).to_string()
            } else {
                format!("\\x{c:02x}")
            }
        })
        .collect();
    Err(format!("the stream starts with \"{shown}\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::stun;
    use std::time::Duration;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn splits_messages_written_in_odd_pieces() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let a = stun::binding_request(stun::new_txid());
        let b = stun::binding_request(stun::new_txid());
        let (a2, b2) = (a.clone(), b.clone());
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut all = a2.clone();
            all.extend_from_slice(&b2);
            // One byte, then the rest: framing must not depend on read boundaries.
            s.write_all(&all[..1]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            s.write_all(&all[1..]).await.unwrap();
            s.write_all(b"\xff\xff\xff\xff").await.unwrap();
        });
        let deadline = Instant::now() + Duration::from_secs(2);
        let tcp = connect(addr, deadline).await.unwrap();
        let mut link = StreamLink::new(Box::new(tcp), addr);
        assert_eq!(link.recv().await.unwrap(), Some(a));
        assert_eq!(link.recv().await.unwrap(), Some(b));
        assert_eq!(
            link.recv().await.unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn message_starts_are_recognised() {
        let stun = stun::binding_request(stun::new_txid());
        // (bytes, ok as the first message, ok later)
        let cases: &[(&[u8], bool, bool)] = &[
            (&stun, true, true),
            (&stun[..3], true, true), // too short to judge yet
            (b"\x40\x00\x00\x04abcd", false, true),
            (b"\x4f\xff\x00\x00", false, true),
            (b"\x50\x00\x00\x00", false, false), // reserved channel
            // 'H' = 0x48 would be channel 0x4854: valid only once channels are bound.
            (b"HTTP/1.1 400 Bad Request", false, true),
            (b"\x00\x01\x00\x00\xde\xad\xbe\xef", false, false), // wrong magic cookie
            (b"\x16\x03\x01\x02\x00\x01\x00\x01", false, false), // a TLS handshake record
            (b"\xff\xff", false, false),
        ];
        for (bytes, first, later) in cases {
            assert_eq!(check_start(bytes, true).is_ok(), *first, "{bytes:?}");
            assert_eq!(check_start(bytes, false).is_ok(), *later, "{bytes:?}");
        }
        let e = check_start(b"HTTP/1.1 400 Bad Request", true).unwrap_err();
        assert_eq!(e, "the stream starts with \"HTTP/1.1 400 Bad\"");
    }

    #[tokio::test]
    async fn refused_connect_is_an_io_error() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let err = connect(addr, Instant::now() + Duration::from_secs(2))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    }
}
