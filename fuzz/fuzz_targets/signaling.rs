//! `iceprobe connect` signaling input: the copy-paste blob of `--signal stdio`, the JSON bodies
//! of the HTTP signaling endpoint (POSTed messages, long-poll arrays), and the SDP and candidate
//! lines inside them, which we read ourselves (for the report) and hand to webrtc.
//!
//! The input is used as the raw text of each of those, and also wrapped as a well-formed blob
//! so that the JSON decoder behind the base64 is reached. Checks: no panic, and every accepted
//! message survives encode → decode unchanged.
#![no_main]

use base64::Engine as _;
use iceprobe::connect::signal::{self, SignalMsg};
use libfuzzer_sys::fuzz_target;

/// Everything connect does with a message from the peer before the ICE agent takes over.
fn take(msg: &SignalMsg) {
    match msg {
        SignalMsg::Description { sdp, .. } => {
            for c in signal::sdp_candidates(sdp) {
                // A candidate we report must name an endpoint.
                let _ = c.endpoint();
            }
            // connect passes the peer's SDP to webrtc, which parses it eagerly.
            let _ = rtc::peer_connection::sdp::RTCSessionDescription::offer(sdp.clone());
        }
        SignalMsg::Candidate { candidate, .. } => {
            if signal::parse_candidate(candidate).is_some() {
                let _ = rtc::ice::candidate::unmarshal_candidate(candidate);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for want in ["offer", "answer"] {
        if let Ok(m) = signal::decode_blob(&text, want) {
            take(&m);
        }
    }
    let blob = format!(
        "{}{}",
        signal::BLOB_PREFIX,
        base64::engine::general_purpose::STANDARD.encode(data)
    );
    if let Ok(m) = signal::decode_blob(&blob, "offer") {
        assert_eq!(
            signal::decode_blob(&signal::encode_blob(&m), "offer"),
            Ok(m.clone())
        );
        take(&m);
    }
    if let Ok(m) = signal::decode_message(&text) {
        let again = serde_json::to_string(&m).expect("a message serializes");
        assert_eq!(signal::decode_message(&again), Ok(m.clone()));
        take(&m);
    }
    if let Ok(msgs) = signal::decode_messages(&text) {
        msgs.iter().for_each(take);
    }
    // A description's SDP is also read line by line, as is a trickled candidate.
    let _ = signal::sdp_candidates(&text);
    for line in text.lines() {
        let _ = signal::parse_candidate(line);
    }
    take(&SignalMsg::Candidate {
        candidate: text.to_string(),
        sdp_mid: None,
        sdp_mline_index: None,
    });
});
