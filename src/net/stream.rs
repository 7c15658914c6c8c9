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
}

impl StreamLink {
    /// Wrap a connected stream.
    pub fn new(stream: Box<dyn Stream>, remote: SocketAddr) -> Self {
        StreamLink {
            stream,
            decoder: TurnStreamDecoder::new(),
            remote,
            closed: false,
        }
    }

    /// The server address.
    pub fn remote(&self) -> SocketAddr {
        self.remote
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
                Ok(Some(m)) => return Ok(Some(m)),
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
            self.decoder.extend_from_slice(&buf[..n]);
        }
    }

    /// Close the write side politely (TLS close_notify, TCP FIN).
    pub async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }
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
