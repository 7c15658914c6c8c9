//! Signaling: the messages two peers exchange (description, trickled candidates), the
//! [`Signal`] seam, the in-memory pair used by the loopback self-test, and the copy-paste blob
//! of `--signal stdio` (base64 of the JSON description with every candidate in it).

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::candidate::CandidateType;
use crate::model::connect::ConnectCandidate;

/// One signaling message (JSON on the wire, `{"kind": ...}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SignalMsg {
    /// The SDP offer or answer.
    Description {
        /// `offer` or `answer`.
        sdp_type: String,
        /// The SDP text.
        sdp: String,
    },
    /// A trickled candidate (RFC 8838).
    Candidate {
        /// The `candidate:...` attribute value.
        candidate: String,
        /// The media stream id it belongs to.
        sdp_mid: Option<String>,
        /// The m-line index it belongs to.
        sdp_mline_index: Option<u16>,
    },
}

/// Why signaling failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    /// The peer sent (or the user pasted) something that is not a signaling message.
    #[error("bad signaling input: {0}")]
    Garbage(String),
    /// The signaling server refused us (wrong token, session taken).
    #[error("the signaling server refused: {0}")]
    Rejected(String),
    /// The signaling server or the peer cannot be reached.
    #[error("cannot reach the signaling peer: {0}")]
    Unreachable(String),
    /// The peer went away before the connection was up.
    #[error("the peer went away: {0}")]
    Vanished(String),
}

impl SignalError {
    /// Exit code: bad input the user gave (garbage, wrong token) is a usage error (2); a
    /// peer that vanished or cannot be reached is a failed run (1).
    pub fn exit_code(&self) -> i32 {
        match self {
            SignalError::Garbage(_) | SignalError::Rejected(_) => 2,
            SignalError::Unreachable(_) | SignalError::Vanished(_) => 1,
        }
    }
}

/// A signaling channel to the peer.
#[async_trait::async_trait]
pub trait Signal: Send {
    /// Send a message to the peer.
    async fn send(&mut self, msg: SignalMsg) -> Result<(), SignalError>;
    /// The next message from the peer (waits); `Ok(None)`: the peer has nothing more to say.
    async fn recv(&mut self) -> Result<Option<SignalMsg>, SignalError>;
    /// Whether this channel carries trickled candidates (else: one description with all).
    fn trickle(&self) -> bool;
}

/// In-memory signaling between two peer connections of one process.
pub struct MemorySignal {
    tx: mpsc::UnboundedSender<SignalMsg>,
    rx: mpsc::UnboundedReceiver<SignalMsg>,
}

/// Two connected in-memory channels.
pub fn memory_pair() -> (MemorySignal, MemorySignal) {
    let (atx, brx) = mpsc::unbounded_channel();
    let (btx, arx) = mpsc::unbounded_channel();
    (
        MemorySignal { tx: atx, rx: arx },
        MemorySignal { tx: btx, rx: brx },
    )
}

#[async_trait::async_trait]
impl Signal for MemorySignal {
    async fn send(&mut self, msg: SignalMsg) -> Result<(), SignalError> {
        // The peer may already have finished; that is not an error of ours.
        let _ = self.tx.send(msg);
        Ok(())
    }
    async fn recv(&mut self) -> Result<Option<SignalMsg>, SignalError> {
        Ok(self.rx.recv().await)
    }
    fn trickle(&self) -> bool {
        true
    }
}

/// Prefix of a copy-paste blob, so a stray line is recognisably not one.
pub const BLOB_PREFIX: &str = "iceprobe1:";

/// Encode a description for copy-paste.
pub fn encode_blob(msg: &SignalMsg) -> String {
    let json = serde_json::to_vec(msg).unwrap_or_default();
    format!(
        "{BLOB_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(json)
    )
}

/// Decode a pasted blob; `want` is the description type expected (`offer` or `answer`).
pub fn decode_blob(text: &str, want: &str) -> Result<SignalMsg, SignalError> {
    let t = text.trim();
    let Some(b64) = t.strip_prefix(BLOB_PREFIX) else {
        return Err(SignalError::Garbage(format!(
            "expected a line starting with {BLOB_PREFIX:?} (the blob the other side printed), got {:?}",
            t.chars().take(40).collect::<String>()
        )));
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| SignalError::Garbage(format!("the blob is not base64: {e}")))?;
    let msg: SignalMsg = serde_json::from_slice(&raw)
        .map_err(|e| SignalError::Garbage(format!("the blob is not a signaling message: {e}")))?;
    match &msg {
        SignalMsg::Description { sdp_type, .. } if sdp_type == want => Ok(msg),
        SignalMsg::Description { sdp_type, .. } => Err(SignalError::Garbage(format!(
            "expected an {want}, got an {sdp_type} (did both sides offer?)"
        ))),
        SignalMsg::Candidate { .. } => Err(SignalError::Garbage(format!(
            "expected an {want}, got a single candidate"
        ))),
    }
}

/// Decode one signaling message as the HTTP endpoint receives it (the body of a `POST`). The
/// body comes from the network, so this is one of the parsers that must be total.
pub fn decode_message(body: &str) -> Result<SignalMsg, SignalError> {
    serde_json::from_str(body)
        .map_err(|e| SignalError::Garbage(format!("not a signaling message: {e}")))
}

/// Decode the answer to a long poll: a JSON array of signaling messages, possibly empty.
pub fn decode_messages(body: &str) -> Result<Vec<SignalMsg>, SignalError> {
    serde_json::from_str(body).map_err(|e| {
        SignalError::Garbage(format!(
            "the listening side sent something that is not signaling messages: {e}"
        ))
    })
}

/// Parse an SDP candidate attribute value (`candidate:F C udp P ADDR PORT typ T [raddr A rport
/// P]`, RFC 8839 §5.1) into a report candidate. `None` for anything else.
pub fn parse_candidate(line: &str) -> Option<ConnectCandidate> {
    let line = line.trim().trim_start_matches("a=");
    let rest = line.strip_prefix("candidate:")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    if f.len() < 8 || f[6] != "typ" {
        return None;
    }
    let kind = match f[7] {
        "host" => CandidateType::Host,
        "srflx" => CandidateType::Srflx,
        "prflx" => CandidateType::Prflx,
        "relay" => CandidateType::Relay,
        _ => return None,
    };
    let mut related_address = None;
    let mut related_port = None;
    let mut i = 8;
    while i + 1 < f.len() {
        match f[i] {
            "raddr" => related_address = Some(f[i + 1].to_string()),
            "rport" => related_port = f[i + 1].parse().ok(),
            _ => {}
        }
        i += 2;
    }
    Some(ConnectCandidate {
        kind,
        transport: f[2].to_ascii_lowercase(),
        address: f[4].to_string(),
        port: f[5].parse().ok()?,
        related_address,
        related_port,
        url: None,
    })
}

/// Every candidate in an SDP (non-trickle descriptions carry them all).
pub fn sdp_candidates(sdp: &str) -> Vec<ConnectCandidate> {
    sdp.lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .filter_map(parse_candidate)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_lines() {
        let c = parse_candidate(
            "candidate:1 1 udp 1694498815 198.18.0.254 40000 typ srflx raddr 100.64.0.2 rport 5000",
        )
        .unwrap();
        assert_eq!(c.kind, CandidateType::Srflx);
        assert_eq!(c.endpoint(), "198.18.0.254:40000");
        assert_eq!(c.related_address.as_deref(), Some("100.64.0.2"));
        assert_eq!(c.related_port, Some(5000));
        assert_eq!(
            parse_candidate("a=candidate:2 1 UDP 2130706431 100.64.0.2 5000 typ host")
                .unwrap()
                .transport,
            "udp"
        );
        for bad in [
            "",
            "candidate:",
            "candidate:1 1 udp 1 x 5 typ weird",
            "hello",
        ] {
            assert_eq!(parse_candidate(bad), None, "{bad}");
        }
        let sdp = "v=0\r\na=candidate:2 1 udp 1 1.2.3.4 5 typ host\r\na=mid:0\r\n";
        assert_eq!(sdp_candidates(sdp).len(), 1);
    }

    #[test]
    fn blobs_round_trip_and_garbage_is_named() {
        let offer = SignalMsg::Description {
            sdp_type: "offer".into(),
            sdp: "v=0".into(),
        };
        let blob = encode_blob(&offer);
        assert_eq!(decode_blob(&format!("  {blob}\n"), "offer"), Ok(offer));
        for (input, want) in [
            ("hello", "expected a line starting with"),
            ("iceprobe1:!!!", "not base64"),
            ("iceprobe1:aGVsbG8=", "not a signaling message"),
        ] {
            let e = decode_blob(input, "offer").unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        let e = decode_blob(&blob, "answer").unwrap_err();
        assert!(e.to_string().contains("did both sides offer"), "{e}");
        assert_eq!(e.exit_code(), 2);
    }
}
