//! The echo over the data channel. Both sides ping and both answer, so each side measures its own
//! round trips: `P seq` (ping), `R seq` (reply), `D` (this side is done pinging). The channel is
//! unordered with no retransmissions, so a lost message is a real loss.
#![allow(clippy::disallowed_methods)] // the I/O edge: reads the clock

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::sync::{mpsc, watch};
use webrtc::data_channel::{DataChannel, DataChannelEvent};

use crate::model::connect::EchoReport;

const PING: u8 = b'P';
const REPLY: u8 = b'R';
const DONE: u8 = b'D';
/// Pings are padded to this many bytes.
const PING_SIZE: usize = 64;

/// Summarise round trips (pure): min, median, p95 (nearest rank), max and loss.
pub fn echo_stats(sent: u32, rtts_ms: &[f64]) -> EchoReport {
    let mut v: Vec<f64> = rtts_ms.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = |p: f64| -> Option<f64> {
        if v.is_empty() {
            return None;
        }
        let idx = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        Some(round(v[idx]))
    };
    let received = u32::try_from(v.len()).unwrap_or(u32::MAX).min(sent);
    EchoReport {
        sent,
        received,
        loss: if sent == 0 {
            0.0
        } else {
            round(f64::from(sent - received) / f64::from(sent))
        },
        rtt_min_ms: v.first().copied().map(round),
        rtt_median_ms: rank(0.5),
        rtt_p95_ms: rank(0.95),
        rtt_max_ms: v.last().copied().map(round),
    }
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Waits for the channel to open, answers the peer's pings, sends `count` pings of its own and
/// reports. Returns `None` when the channel never opened before `deadline`.
pub async fn run_echo(
    dc: Arc<dyn DataChannel>,
    count: u32,
    deadline: Instant,
    opened: mpsc::UnboundedSender<()>,
) -> Option<EchoReport> {
    let (reply_tx, mut reply_rx) = mpsc::unbounded_channel::<u32>();
    let (open_tx, mut open_rx) = watch::channel(false);
    let (peer_done_tx, mut peer_done_rx) = watch::channel(false);
    let reader_dc = dc.clone();
    let reader = tokio::spawn(async move {
        while let Some(ev) = reader_dc.poll().await {
            match ev {
                DataChannelEvent::OnOpen => {
                    let _ = open_tx.send(true);
                }
                DataChannelEvent::OnMessage(m) => match m.data.first() {
                    Some(&PING) => {
                        let mut r = m.data.clone();
                        r[0] = REPLY;
                        let _ = reader_dc.send(r).await;
                    }
                    Some(&REPLY) if m.data.len() >= 5 => {
                        let seq = u32::from_be_bytes([m.data[1], m.data[2], m.data[3], m.data[4]]);
                        let _ = reply_tx.send(seq);
                    }
                    Some(&DONE) => {
                        let _ = peer_done_tx.send(true);
                    }
                    _ => {}
                },
                DataChannelEvent::OnClose => break,
                _ => {}
            }
        }
    });
    let is_open = matches!(
        dc.ready_state().await,
        Ok(webrtc::data_channel::RTCDataChannelState::Open)
    );
    if !is_open {
        let wait = open_rx.wait_for(|o| *o);
        if tokio::time::timeout_at(deadline.into(), wait)
            .await
            .is_err()
        {
            reader.abort();
            return None;
        }
    }
    let _ = opened.send(());
    let per_message = Duration::from_millis(1000);
    let mut rtts = Vec::new();
    for seq in 0..count {
        if Instant::now() >= deadline {
            break;
        }
        let mut msg = BytesMut::zeroed(PING_SIZE);
        msg[0] = PING;
        msg[1..5].copy_from_slice(&seq.to_be_bytes());
        let t0 = Instant::now();
        if dc.send(msg).await.is_err() {
            break;
        }
        let until = (t0 + per_message).min(deadline);
        loop {
            match tokio::time::timeout_at(until.into(), reply_rx.recv()).await {
                Ok(Some(s)) if s == seq => {
                    rtts.push(t0.elapsed().as_secs_f64() * 1000.0);
                    break;
                }
                Ok(Some(_)) => continue, // a late reply to an earlier ping
                _ => break,
            }
        }
    }
    // Tell the peer, three times (the channel does not retransmit), then keep answering its
    // pings until it is done too.
    for _ in 0..3 {
        let _ = dc.send(BytesMut::from(&[DONE][..])).await;
    }
    let grace = (Instant::now() + Duration::from_secs(3)).min(deadline);
    let _ = tokio::time::timeout_at(grace.into(), peer_done_rx.wait_for(|d| *d)).await;
    reader.abort();
    Some(echo_stats(count, &rtts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_of_round_trips() {
        let rtts: Vec<f64> = (1..=20).map(f64::from).collect();
        let r = echo_stats(20, &rtts);
        assert_eq!(r.received, 20);
        assert_eq!(r.loss, 0.0);
        assert_eq!(r.rtt_min_ms, Some(1.0));
        assert_eq!(r.rtt_median_ms, Some(10.0));
        assert_eq!(r.rtt_p95_ms, Some(19.0));
        assert_eq!(r.rtt_max_ms, Some(20.0));
        let r = echo_stats(4, &[3.0, 1.0]);
        assert_eq!(r.loss, 0.5);
        assert_eq!(r.rtt_median_ms, Some(1.0));
        assert_eq!(r.rtt_p95_ms, Some(3.0));
        let r = echo_stats(5, &[]);
        assert_eq!((r.received, r.loss, r.rtt_min_ms), (0, 1.0, None));
    }
}
