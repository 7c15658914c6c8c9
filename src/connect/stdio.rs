//! `--signal stdio`: copy-paste signaling. This side prints its description (with every
//! candidate, after gathering completes) as one blob line on stderr and reads the peer's blob
//! from stdin. No trickle: one message each way.

use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

use super::signal::{decode_blob, encode_blob, Signal, SignalError, SignalMsg};

/// Copy-paste signaling on stdin / stderr.
pub struct StdioSignal {
    rx: mpsc::UnboundedReceiver<Result<SignalMsg, SignalError>>,
    done: bool,
}

impl StdioSignal {
    /// Start reading stdin; `offer`: this side offers (so it expects an answer).
    pub fn new(offer: bool) -> StdioSignal {
        let want = if offer { "answer" } else { "offer" };
        let (tx, rx) = mpsc::unbounded_channel();
        // A task owns stdin so that a cancelled `recv` never loses half a line.
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            loop {
                match lines.next_line().await {
                    Ok(Some(l)) if l.trim().is_empty() => continue,
                    Ok(Some(l)) => {
                        let _ = tx.send(decode_blob(&l, want));
                        return;
                    }
                    Ok(None) => {
                        let _ = tx.send(Err(SignalError::Vanished(format!(
                            "stdin ended before the peer's {want} blob was pasted"
                        ))));
                        return;
                    }
                    Err(e) => {
                        let _ =
                            tx.send(Err(SignalError::Garbage(format!("cannot read stdin: {e}"))));
                        return;
                    }
                }
            }
        });
        StdioSignal { rx, done: false }
    }
}

#[async_trait::async_trait]
impl Signal for StdioSignal {
    async fn send(&mut self, msg: SignalMsg) -> Result<(), SignalError> {
        if let SignalMsg::Description { sdp_type, .. } = &msg {
            eprintln!("iceprobe: paste this {sdp_type} on the other side:");
            eprintln!("{}", encode_blob(&msg));
        }
        Ok(())
    }
    async fn recv(&mut self) -> Result<Option<SignalMsg>, SignalError> {
        if self.done {
            return std::future::pending().await;
        }
        match self.rx.recv().await {
            Some(r) => {
                self.done = true;
                r.map(Some)
            }
            None => std::future::pending().await,
        }
    }
    fn trickle(&self) -> bool {
        false
    }
}
