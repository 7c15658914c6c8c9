//! Parsers of untrusted input never panic and round-trip what they accept (STYLE habit 10):
//! server URLs, iceServers JSON, STUN messages and TURN stream framing, on arbitrary input.

use iceprobe::ice_url::{self, ServerUrl};
use iceprobe::proto::stun;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Any string: an error or a URL, never a panic; an accepted URL prints back to itself.
    #[test]
    fn url_parser_total_and_round_trips(s in ".{0,80}") {
        if let Ok(u) = ice_url::parse(&s) {
            let again: ServerUrl = u.to_string().parse().expect("a printed URL parses");
            prop_assert_eq!(again, u);
        }
    }

    /// URL-shaped strings exercise the deeper branches.
    #[test]
    fn url_shaped_strings(scheme in "(stun|stuns|turn|turns|http)", host in "[a-z0-9.\\[\\]:-]{0,40}",
                          port in proptest::option::of(0u32..70000), q in "(\\?transport=(udp|tcp|sctp))?") {
        let s = match port { Some(p) => format!("{scheme}:{host}:{p}{q}"), None => format!("{scheme}:{host}{q}") };
        if let Ok(u) = ice_url::parse(&s) {
            prop_assert!(u.port != 0);
            prop_assert_eq!(ice_url::parse(&u.to_string()).unwrap(), u);
        }
    }

    /// Arbitrary JSON-ish text never panics the iceServers parser, and its errors never echo a
    /// credential.
    #[test]
    fn ice_config_parser_total(s in ".{0,200}") {
        let _ = iceprobe::servers::parse_ice_config(&s, "prop");
    }

    #[test]
    fn ice_config_errors_keep_secrets(urls in "[a-z:.0-9?=]{0,30}", cred in "[A-Za-z0-9]{12}") {
        let text = format!(r#"{{"iceServers":[{{"urls":"{urls}","username":"u","credential":"SECRET{cred}"}}]}}"#);
        if let Err(e) = iceprobe::servers::parse_ice_config(&text, "prop") {
            let e = e.to_string();
            prop_assert!(!e.contains(&format!("SECRET{cred}")), "{}", e);
        }
    }

    /// Any bytes: STUN decode is total; a STUN header with any attribute bytes after it too.
    #[test]
    fn stun_decode_total(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = stun::decode(&bytes);
    }

    #[test]
    fn stun_decode_with_valid_header(len in 0u16..600, body in proptest::collection::vec(any::<u8>(), 0..600), class in 0u8..4) {
        // Message type: Binding with the class bits C1 (0x0100) and C0 (0x0010) from `class`.
        let mut m = vec![class & 1, if class & 2 != 0 { 0x11 } else { 0x01 }];
        m.extend_from_slice(&len.to_be_bytes());
        m.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&body);
        if let Ok(d) = stun::decode(&m) {
            prop_assert_eq!(d.txid, [7; 12]);
        }
    }

    /// The TURN stream splitter (RFC 8656 §12.5) returns whole messages or an error, never
    /// panics, whatever the bytes and however they are chunked.
    #[test]
    fn turn_stream_framing_total(bytes in proptest::collection::vec(any::<u8>(), 0..400), cut in 0usize..400) {
        let mut d = rtc::shared::turn_framing::TurnStreamDecoder::new();
        let cut = cut.min(bytes.len());
        d.extend_from_slice(&bytes[..cut]);
        while let Ok(Some(_)) = d.next_message() {}
        d.extend_from_slice(&bytes[cut..]);
        while let Ok(Some(m)) = d.next_message() {
            prop_assert!(m.len() >= 4);
        }
    }
}
