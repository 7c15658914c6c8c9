//! Parsers of untrusted input never panic and round-trip what they accept (STYLE habit 10):
//! server URLs, iceServers JSON, STUN messages, TURN stream framing, ChannelData and the TURN
//! client's inbound path, the `--expect` grammar and `connect` signaling, on arbitrary input.
//! The fuzz targets in fuzz/ drive the same entry points much longer (docs/fuzzing.md).

use std::time::{Duration, Instant};

use iceprobe::connect::signal::{self, SignalMsg};
use iceprobe::expect::{self, Scope};
use iceprobe::ice_url::{self, ServerUrl};
use iceprobe::proto::turn::{TurnClient, TurnConfig, TurnEvent};
use iceprobe::proto::{stun, SansIo};
use iceprobe::secret::Secret;
use proptest::prelude::*;

fn scope() -> impl Strategy<Value = Scope> {
    prop_oneof![Just(Scope::Gather), Just(Scope::Check), Just(Scope::Nat)]
}

/// The virtual clock's start: the machines only ever see times passed in.
#[allow(clippy::disallowed_methods)] // tests pick an arbitrary t0
fn t0() -> Instant {
    Instant::now()
}

/// A client that has sent its first Allocate; returns it with that request's transaction id.
fn allocating_client(reliable: bool) -> (TurnClient, stun::TxId) {
    let mut c = TurnClient::new(TurnConfig {
        username: Some("user".into()),
        password: Some(Secret::new("pass")),
        ipv6_relay: None,
        rto: Duration::from_millis(100),
        reliable,
    })
    .expect("a crypto provider");
    c.allocate(t0());
    let req = c.poll_transmit().expect("an Allocate request");
    let txid = stun::txid_of(&req).expect("a STUN request");
    (c, txid)
}

/// A signaling message with arbitrary text in every field.
fn signal_msg() -> impl Strategy<Value = SignalMsg> {
    prop_oneof![
        ("(offer|answer)", any::<String>())
            .prop_map(|(sdp_type, sdp)| SignalMsg::Description { sdp_type, sdp }),
        (
            any::<String>(),
            proptest::option::of(any::<String>()),
            proptest::option::of(any::<u16>())
        )
            .prop_map(
                |(candidate, sdp_mid, sdp_mline_index)| SignalMsg::Candidate {
                    candidate,
                    sdp_mid,
                    sdp_mline_index
                }
            ),
    ]
}

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

    /// Any bytes as a datagram (or one framed stream message) to a TURN client waiting for its
    /// Allocate answer: never a panic, whether or not the transaction id matches.
    #[test]
    fn turn_client_inbound_total(mut bytes in proptest::collection::vec(any::<u8>(), 0..300),
                                 answer in any::<bool>(), reliable in any::<bool>()) {
        let (mut c, txid) = allocating_client(reliable);
        if answer && bytes.len() >= 20 {
            bytes[8..20].copy_from_slice(&txid);
        }
        let now = t0();
        c.handle_input(now, &bytes);
        c.handle_timeout(now + Duration::from_secs(60));
        while c.poll_event().is_some() {}
        while c.poll_transmit().is_some() {}
    }

    /// ChannelData (RFC 8656 §12.4) with any header and body: the client reports at most one
    /// Data event, on the channel the header names, with no more bytes than the header says.
    #[test]
    fn channel_data_total(channel in 0x4000u16..0x5000, len in any::<u16>(),
                          body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let (mut c, _) = allocating_client(true);
        let mut m = channel.to_be_bytes().to_vec();
        m.extend_from_slice(&len.to_be_bytes());
        m.extend_from_slice(&body);
        c.handle_input(t0(), &m);
        match c.poll_event() {
            Some(TurnEvent::Data { channel: got, data, .. }) => {
                prop_assert_eq!(got, Some(channel));
                prop_assert_eq!(data.len(), usize::from(len));
                prop_assert_eq!(&data[..], &body[..usize::from(len)]);
            }
            None => prop_assert!(usize::from(len) > body.len()),
            Some(other) => prop_assert!(false, "unexpected event {:?}", other),
        }
    }

    /// What the client sends as ChannelData (padded for streams) comes back out of a client's
    /// inbound path as the same channel and payload.
    #[test]
    fn channel_data_round_trips(channel in 0x4000u16..0x5000,
                                data in proptest::collection::vec(any::<u8>(), 0..1500)) {
        let (mut tx, _) = allocating_client(true);
        tx.channel_data(channel, &data);
        let wire = tx.poll_transmit().expect("a ChannelData message");
        prop_assert_eq!(wire.len() % 4, 0);
        let (mut rx, _) = allocating_client(true);
        rx.handle_input(t0(), &wire);
        match rx.poll_event() {
            Some(TurnEvent::Data { channel: got, data: back, .. }) => {
                prop_assert_eq!(got, Some(channel));
                prop_assert_eq!(back, data);
            }
            other => prop_assert!(false, "expected data, got {:?}", other),
        }
    }

    /// Any string: the `--expect` parser returns an assertion or an error for every subcommand,
    /// and an accepted expression's canonical form parses to the same assertion.
    #[test]
    fn expect_parser_total_and_round_trips(s in ".{0,60}", scope in scope()) {
        if let Ok(a) = expect::parse(&s, scope) {
            prop_assert_eq!(expect::parse(&a.to_string(), scope), Ok(a));
        }
    }

    /// Grammar-shaped expressions reach the value parsers (counts, durations, NAT words).
    #[test]
    fn expect_shaped_round_trips(
        key in "(host|srflx|prflx|relay|relay:udp|relay:tcp|relay:tls|udp|tcp|tls|dns|connect|binding|challenge|allocate|permission|channel|echo|release|tls:cert-valid-days|rtt|rtt:binding|rtt:allocate|nat:mapping|nat:filtering|nat:type|nat:hairpin|nat)",
        colon_ok in any::<bool>(),
        op in "( ?(=|!=|<|<=|>|>=|==|=<|!) ?)?",
        value in "(-?[0-9]{1,20}|[0-9]{1,6}(ns|us|ms|s|m|h|d)([0-9]{1,3}ms)?|yes|no|endpoint-independent|address-dependent|address-and-port-dependent|full-cone|symmetric|open-internet|[a-z-]{0,12})",
        scope in scope(),
    ) {
        let s = if colon_ok { format!("{key}:ok") } else { format!("{key}{op}{value}") };
        if let Ok(a) = expect::parse(&s, scope) {
            let printed = a.to_string();
            prop_assert_eq!(expect::parse(&printed, scope), Ok(a), "{} -> {}", s, printed);
        }
    }

    /// Valid counts and round-trip limits are accepted and print back to themselves.
    #[test]
    fn expect_valid_expressions_round_trip(kind in "(srflx|relay|relay:udp|relay:tcp|relay:tls)",
                                           op in "(=|!=|<|<=|>|>=)", n in 0u32..10_000,
                                           ms in 1u64..100_000) {
        let count = format!("{kind}{op}{n}");
        let a = expect::parse(&count, Scope::Check).expect("a valid count");
        prop_assert_eq!(expect::parse(&a.to_string(), Scope::Check), Ok(a));
        let rtt = format!("rtt:allocate{op}{ms}ms");
        let a = expect::parse(&rtt, Scope::Check).expect("a valid round-trip limit");
        prop_assert_eq!(expect::parse(&a.to_string(), Scope::Check), Ok(a));
    }

    /// Signaling input from the peer (a pasted blob, HTTP bodies, SDP and candidate lines) is
    /// an error or a message, never a panic.
    #[test]
    fn signaling_decoders_total(s in ".{0,300}") {
        let _ = signal::decode_blob(&s, "offer");
        let _ = signal::decode_blob(&format!("{}{s}", signal::BLOB_PREFIX), "answer");
        let _ = signal::decode_message(&s);
        let _ = signal::decode_messages(&s);
        let _ = signal::sdp_candidates(&s);
        let _ = signal::parse_candidate(&s);
    }

    /// Candidate-shaped lines reach every field of the candidate parser.
    #[test]
    fn candidate_lines_total(f in proptest::collection::vec("(typ|raddr|rport|host|srflx|relay|udp|[0-9]{1,6}|[a-f0-9:.]{1,20}|\\PC{0,4})", 0..14),
                             prefix in "(a=)?(candidate:)?") {
        let line = format!("{prefix}{}", f.join(" "));
        let _ = signal::parse_candidate(&line);
        let _ = signal::sdp_candidates(&format!("a={line}\r\n"));
    }

    /// Every message survives the blob (stdio) and the JSON body (HTTP) unchanged.
    #[test]
    fn signaling_messages_round_trip(m in signal_msg()) {
        let json = serde_json::to_string(&m).expect("a message serializes");
        prop_assert_eq!(signal::decode_message(&json), Ok(m.clone()));
        prop_assert_eq!(signal::decode_messages(&format!("[{json},{json}]")), Ok(vec![m.clone(), m.clone()]));
        if let SignalMsg::Description { sdp_type, .. } = &m {
            prop_assert_eq!(signal::decode_blob(&signal::encode_blob(&m), sdp_type), Ok(m.clone()));
        }
    }

    /// A well-formed candidate line gives back its fields.
    #[test]
    fn candidate_lines_round_trip(kind in "(host|srflx|prflx|relay)", transport in "(udp|UDP|tcp)",
                                  addr in "([0-9]{1,3}\\.){3}[0-9]{1,3}", port in any::<u16>(),
                                  related in proptest::option::of(("([0-9]{1,3}\\.){3}[0-9]{1,3}", any::<u16>()))) {
        let mut line = format!("candidate:1 1 {transport} 2130706431 {addr} {port} typ {kind}");
        if let Some((ra, rp)) = &related {
            line.push_str(&format!(" raddr {ra} rport {rp}"));
        }
        let c = signal::parse_candidate(&line).expect("a well-formed candidate");
        prop_assert_eq!(c.kind.to_string(), kind);
        prop_assert_eq!(c.transport, transport.to_ascii_lowercase());
        prop_assert_eq!(c.address, addr);
        prop_assert_eq!(c.port, port);
        prop_assert_eq!(c.related_address, related.as_ref().map(|(a, _)| a.clone()));
        prop_assert_eq!(c.related_port, related.map(|(_, p)| p));
    }
}
