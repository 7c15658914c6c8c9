//! `--throughput`: bulk transfer over a second, reliable and ordered data channel. The offerer
//! sends 16 KiB chunks for the asked duration (send back-pressure keeps at most the
//! peer connection's send-buffer limit queued), then `E`; the receiver counts and answers
//! `C` + the byte count (u64, big endian). Each side reports what it measured: the sender the
//! confirmed bytes over the time until the confirmation, the receiver the bytes over the time
//! from the first byte to `E`.
#![allow(clippy::disallowed_methods)] // the I/O edge: reads the clock

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::sync::mpsc;
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelState};

use crate::model::connect::ThroughputReport;

/// The bulk channel's label.
pub const BULK_LABEL: &str = "iceprobe-bulk";
const CHUNK: usize = 16 * 1024;
const END: u8 = b'E';
const CONFIRM: u8 = b'C';
const DATA: u8 = b'B';

/// Bytes over time (pure).
pub fn throughput(bytes: u64, took: Duration) -> ThroughputReport {
    let ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
    let secs = took.as_secs_f64();
    ThroughputReport {
        bytes,
        duration_ms: ms,
        bytes_per_second: if secs > 0.0 {
            (bytes as f64 / secs).round()
        } else {
            0.0
        },
    }
}

enum In {
    Open,
    Data(usize, Instant),
    End(Instant),
    Confirm(u64),
}

fn reader(dc: Arc<dyn DataChannel>) -> (mpsc::UnboundedReceiver<In>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let h = tokio::spawn(async move {
        while let Some(ev) = dc.poll().await {
            let msg = match ev {
                DataChannelEvent::OnOpen => In::Open,
                DataChannelEvent::OnMessage(m) => match m.data.first() {
                    Some(&DATA) => In::Data(m.data.len(), Instant::now()),
                    Some(&END) => In::End(Instant::now()),
                    Some(&CONFIRM) if m.data.len() >= 9 => {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(&m.data[1..9]);
                        In::Confirm(u64::from_be_bytes(b))
                    }
                    _ => continue,
                },
                DataChannelEvent::OnClose => break,
                _ => continue,
            };
            if tx.send(msg).is_err() {
                break;
            }
        }
    });
    (rx, h)
}

async fn wait_open(
    dc: &Arc<dyn DataChannel>,
    rx: &mut mpsc::UnboundedReceiver<In>,
    deadline: Instant,
) -> bool {
    if matches!(dc.ready_state().await, Ok(RTCDataChannelState::Open)) {
        return true;
    }
    loop {
        match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
            Ok(Some(In::Open)) => return true,
            Ok(Some(_)) => continue,
            _ => return false,
        }
    }
}

/// Send for `duration` (cut to leave time for the confirmation before `deadline`).
pub async fn send_bulk(
    dc: Arc<dyn DataChannel>,
    duration: Duration,
    deadline: Instant,
) -> Option<ThroughputReport> {
    let (mut rx, h) = reader(dc.clone());
    let r = async {
        if !wait_open(&dc, &mut rx, deadline).await {
            return None;
        }
        let t0 = Instant::now();
        let stop = (t0 + duration).min(deadline.checked_sub(Duration::from_secs(2))?);
        let mut chunk = BytesMut::zeroed(CHUNK);
        chunk[0] = DATA;
        while Instant::now() < stop {
            let send = dc.send(chunk.clone());
            match tokio::time::timeout_at(stop.into(), send).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return None,
                Err(_) => break,
            }
        }
        dc.send(BytesMut::from(&[END][..])).await.ok()?;
        loop {
            match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
                Ok(Some(In::Confirm(n))) => return Some(throughput(n, t0.elapsed())),
                Ok(Some(_)) => continue,
                _ => return None,
            }
        }
    }
    .await;
    h.abort();
    r
}

/// Count what arrives until `E`, confirm it, and report the receiver's view.
pub async fn receive_bulk(dc: Arc<dyn DataChannel>, deadline: Instant) -> Option<ThroughputReport> {
    let (mut rx, h) = reader(dc.clone());
    let r = async {
        let mut bytes: u64 = 0;
        let mut first: Option<Instant> = None;
        loop {
            match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
                Ok(Some(In::Data(n, at))) => {
                    first.get_or_insert(at);
                    bytes += n as u64;
                }
                Ok(Some(In::End(at))) => {
                    let mut c = BytesMut::zeroed(9);
                    c[0] = CONFIRM;
                    c[1..9].copy_from_slice(&bytes.to_be_bytes());
                    let _ = dc.send(c).await;
                    let took = at.duration_since(first.unwrap_or(at));
                    return Some(throughput(bytes, took));
                }
                Ok(Some(_)) => continue,
                _ => return None,
            }
        }
    }
    .await;
    // Let the confirmation leave before the peer connection closes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    h.abort();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_per_second() {
        let t = throughput(5_000_000, Duration::from_millis(2000));
        assert_eq!(t.bytes_per_second, 2_500_000.0);
        assert_eq!(t.duration_ms, 2000);
        assert_eq!(throughput(10, Duration::ZERO).bytes_per_second, 0.0);
    }
}
