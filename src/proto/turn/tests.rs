//! Virtual-clock tests of the TURN client against an in-memory server that can misbehave.

use super::*;
use rtc::stun::error_code::{ErrorCode as EcNum, ErrorCodeAttribute};
use rtc::stun::message::{MessageClass, CLASS_ERROR_RESPONSE, CLASS_SUCCESS_RESPONSE};
use rtc::stun::xoraddr::XorMappedAddress;
use rtc::turn::proto::relayaddr::RelayedAddress;

const REALM: &str = "iceprobe.test";
/// Where the fake server sees every client (XOR-MAPPED-ADDRESS).
pub(crate) const CLIENT: &str = "198.18.0.10:50000";
const RELAY: &str = "198.18.0.1:49160";

/// How the fake server behaves.
#[derive(Default)]
pub(crate) struct Fake {
    password: String,
    nonce: String,
    /// Sign every authenticated answer with another key: the client must discard them all
    /// (RFC 8489 §9.2.5), as it would answers a middlebox rewrote.
    pub(crate) wrong_key: bool,
    /// Answer the next authenticated request with 438 and rotate the nonce.
    stale_once: bool,
    /// Answer Allocate success without MESSAGE-INTEGRITY.
    no_integrity: bool,
    /// Error code for CreatePermission (e.g. 403).
    permission_error: Option<u16>,
    /// XOR-RELAYED-ADDRESS to hand out (default [`RELAY`]).
    pub(crate) relay: Option<SocketAddr>,
    seen_methods: Vec<u16>,
}

impl Fake {
    /// A server whose one user has `password`.
    pub(crate) fn new(password: &str) -> Self {
        Fake {
            password: password.into(),
            nonce: "n1".into(),
            ..Default::default()
        }
    }

    fn key(&self, user: &str) -> Vec<u8> {
        let crypto = rtc::crypto::default_provider().unwrap();
        MessageIntegrity::long_term_integrity_key(
            user.into(),
            REALM.into(),
            self.password.clone(),
            crypto.crypto(),
        )
        .unwrap()
    }

    /// The answer to `req`, if it gets one.
    pub(crate) fn reply(&mut self, req: &[u8]) -> Option<Vec<u8>> {
        let d = stun::decode(req).ok()?;
        if d.class != Some(Class::Request) {
            return None;
        }
        self.seen_methods.push(d.method);
        let method = match d.method {
            method::ALLOCATE => METHOD_ALLOCATE,
            method::CREATE_PERMISSION => METHOD_CREATE_PERMISSION,
            method::CHANNEL_BIND => METHOD_CHANNEL_BIND,
            method::REFRESH => METHOD_REFRESH,
            _ => return None,
        };
        if !d.has_integrity {
            return Some(self.error(method, d.txid, 401, true, None));
        }
        let mut m = Message::new();
        m.raw = d.raw.clone();
        m.decode().unwrap();
        let user = rtc::stun::textattrs::TextAttribute::get_from_as(&m, ATTR_USERNAME)
            .unwrap()
            .text;
        let key = if self.wrong_key {
            self.key("somebody-else")
        } else {
            self.key(&user)
        };
        if !self.wrong_key
            && MessageIntegrity::check(
                &mut m,
                &key,
                rtc::crypto::default_provider().unwrap().crypto(),
            )
            .is_err()
        {
            return Some(self.error(method, d.txid, 401, true, None));
        }
        if self.stale_once {
            self.stale_once = false;
            self.nonce = "n2".into();
            return Some(self.error(method, d.txid, 438, true, None));
        }
        if d.nonce.as_deref() != Some(&self.nonce) {
            return Some(self.error(method, d.txid, 438, true, None));
        }
        if d.method == method::CREATE_PERMISSION {
            if let Some(code) = self.permission_error {
                return Some(self.error(method, d.txid, code, false, Some(&key)));
            }
        }
        let mut r = stun::start(method, CLASS_SUCCESS_RESPONSE, d.txid);
        if d.method == method::ALLOCATE {
            let relay: SocketAddr = self.relay.unwrap_or_else(|| RELAY.parse().unwrap());
            let client: SocketAddr = CLIENT.parse().unwrap();
            stun::add(
                &mut r,
                &RelayedAddress {
                    ip: relay.ip(),
                    port: relay.port(),
                },
            )
            .unwrap();
            stun::add(
                &mut r,
                &XorMappedAddress {
                    ip: client.ip(),
                    port: client.port(),
                },
            )
            .unwrap();
            stun::add(&mut r, &Lifetime(Duration::from_secs(600))).unwrap();
        }
        if !(self.no_integrity && d.method == method::ALLOCATE) {
            let crypto = rtc::crypto::default_provider().unwrap();
            stun::add(
                &mut r,
                &MessageIntegrity::new_raw_integrity_with_provider(key, crypto.crypto()),
            )
            .unwrap();
        }
        Some(stun::finish(r))
    }

    fn error(
        &self,
        method: Method,
        txid: TxId,
        code: u16,
        challenge: bool,
        key: Option<&[u8]>,
    ) -> Vec<u8> {
        let mut r = stun::start(method, CLASS_ERROR_RESPONSE, txid);
        stun::add(
            &mut r,
            &ErrorCodeAttribute {
                code: EcNum(code),
                reason: b"fake".to_vec(),
            },
        )
        .unwrap();
        if challenge {
            stun::add_raw(&mut r, ATTR_REALM, REALM.as_bytes());
            stun::add_raw(&mut r, ATTR_NONCE, self.nonce.as_bytes());
        }
        if let Some(key) = key {
            let crypto = rtc::crypto::default_provider().unwrap();
            stun::add(
                &mut r,
                &MessageIntegrity::new_raw_integrity_with_provider(key.to_vec(), crypto.crypto()),
            )
            .unwrap();
        }
        let _: MessageClass = CLASS_ERROR_RESPONSE;
        stun::finish(r)
    }
}

/// A client with these credentials (UDP, RTO 500 ms).
pub(crate) fn client(user: Option<&str>, pass: Option<&str>) -> TurnClient {
    TurnClient::new(TurnConfig {
        username: user.map(str::to_string),
        password: pass.map(Secret::new),
        ipv6_relay: None,
        rto: Duration::from_millis(500),
        reliable: false,
    })
    .unwrap()
}

/// Run the client against the fake with a one-way delay of `owd`, counting round trips, until
/// nothing is pending. Returns events and the virtual time taken.
fn drive(
    c: &mut TurnClient,
    fake: &mut Fake,
    t0: Instant,
    owd: Duration,
) -> (Vec<TurnEvent>, Duration) {
    let mut now = t0;
    let mut events = vec![];
    for _ in 0..64 {
        let mut replies = vec![];
        while let Some(tx) = c.poll_transmit() {
            if let Some(r) = fake.reply(&tx) {
                replies.push(r);
            }
        }
        if replies.is_empty() {
            match c.poll_timeout() {
                Some(due) => {
                    now = due;
                    c.handle_timeout(now);
                }
                None => break,
            }
        } else {
            now += owd * 2;
            for r in replies {
                c.handle_input(now, &r);
            }
        }
        while let Some(e) = c.poll_event() {
            events.push(e);
        }
    }
    (events, now - t0)
}

#[test]
fn allocate_takes_two_round_trips_and_reports_each() {
    let t0 = Instant::now();
    let mut fake = Fake::new("pw");
    let mut c = client(Some("alice"), Some("pw"));
    c.allocate(t0);
    let (ev, took) = drive(&mut c, &mut fake, t0, Duration::from_millis(25));
    assert_eq!(
        took,
        Duration::from_millis(100),
        "401 round trip + authenticated round trip"
    );
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!(
        ev[0],
        TurnEvent::Challenged {
            realm: REALM.into(),
            rtt: Duration::from_millis(50)
        }
    );
    match &ev[1] {
        TurnEvent::Allocated {
            relayed,
            mapped,
            lifetime,
            rtt,
            integrity,
            ..
        } => {
            assert_eq!(relayed.to_string(), RELAY);
            assert_eq!(mapped.unwrap().to_string(), CLIENT);
            assert_eq!(*lifetime, 600);
            assert_eq!(*rtt, Duration::from_millis(50));
            assert_eq!(*integrity, Some(true));
        }
        other => panic!("{other:?}"),
    }
    assert!(c.is_allocated());
}

#[test]
fn full_chain_permission_channel_release() {
    let t0 = Instant::now();
    let mut fake = Fake::new("pw");
    let mut c = client(Some("alice"), Some("pw"));
    c.allocate(t0);
    drive(&mut c, &mut fake, t0, Duration::from_millis(25));
    let peer: SocketAddr = "198.18.0.20:4000".parse().unwrap();
    c.create_permission(t0, peer);
    c.channel_bind(t0, peer, 0x4000);
    let (ev, took) = drive(&mut c, &mut fake, t0, Duration::from_millis(25));
    assert_eq!(
        took,
        Duration::from_millis(50),
        "both requests in one round trip"
    );
    assert!(
        ev.iter()
            .any(|e| matches!(e, TurnEvent::PermissionCreated { .. })),
        "{ev:?}"
    );
    assert!(ev.iter().any(|e| matches!(
        e,
        TurnEvent::ChannelBound {
            channel: 0x4000,
            ..
        }
    )));
    c.release(t0);
    let (ev, _) = drive(&mut c, &mut fake, t0, Duration::from_millis(25));
    assert!(matches!(ev[..], [TurnEvent::Released { .. }]), "{ev:?}");
    assert!(!c.is_allocated());
    assert_eq!(*fake.seen_methods.last().unwrap(), method::REFRESH);
}

#[test]
fn wrong_password_is_401_after_challenge() {
    let t0 = Instant::now();
    let mut fake = Fake::new("right");
    let mut c = client(Some("alice"), Some("wrong"));
    c.allocate(t0);
    let (ev, _) = drive(&mut c, &mut fake, t0, Duration::from_millis(5));
    assert!(matches!(ev[0], TurnEvent::Challenged { .. }));
    match &ev[1] {
        TurnEvent::Failed {
            op: TurnOp::Allocate,
            failure: TurnFailure::Rejected(e),
        } => {
            assert_eq!(e.code, 401)
        }
        other => panic!("{other:?}"),
    }
    assert!(!c.is_allocated());
}

#[test]
fn no_credentials_is_named() {
    let t0 = Instant::now();
    let mut fake = Fake::new("pw");
    let mut c = client(None, None);
    c.allocate(t0);
    let (ev, _) = drive(&mut c, &mut fake, t0, Duration::from_millis(5));
    assert_eq!(
        ev,
        vec![TurnEvent::Failed {
            op: TurnOp::Allocate,
            failure: TurnFailure::NoCredentials {
                realm: Some(REALM.into())
            }
        }]
    );
}

#[test]
fn stale_nonce_is_retried_once() {
    let t0 = Instant::now();
    let mut fake = Fake::new("pw");
    fake.stale_once = true;
    let mut c = client(Some("alice"), Some("pw"));
    c.allocate(t0);
    let (ev, took) = drive(&mut c, &mut fake, t0, Duration::from_millis(10));
    assert!(
        matches!(ev.last(), Some(TurnEvent::Allocated { .. })),
        "{ev:?}"
    );
    assert_eq!(took, Duration::from_millis(60), "three round trips");
}

#[test]
fn missing_integrity_is_reported_as_unknown_not_valid() {
    let t0 = Instant::now();
    let mut fake = Fake::new("pw");
    fake.no_integrity = true;
    let mut c = client(Some("alice"), Some("pw"));
    c.allocate(t0);
    let (ev, _) = drive(&mut c, &mut fake, t0, Duration::from_millis(5));
    assert!(
        matches!(
            ev.last(),
            Some(TurnEvent::Allocated {
                integrity: None,
                ..
            })
        ),
        "{ev:?}"
    );
}

#[test]
fn permission_403_is_structured() {
    let t0 = Instant::now();
    let mut fake = Fake::new("pw");
    fake.permission_error = Some(403);
    let mut c = client(Some("alice"), Some("pw"));
    c.allocate(t0);
    drive(&mut c, &mut fake, t0, Duration::from_millis(5));
    c.create_permission(t0, "198.18.0.20:4000".parse().unwrap());
    let (ev, _) = drive(&mut c, &mut fake, t0, Duration::from_millis(5));
    match &ev[..] {
        [TurnEvent::Failed {
            op: TurnOp::CreatePermission,
            failure: TurnFailure::Rejected(e),
        }] => {
            assert_eq!(e.code, 403)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn silent_server_times_out_after_retransmits() {
    let t0 = Instant::now();
    let mut c = client(Some("alice"), Some("pw"));
    c.allocate(t0);
    let mut sends = 0;
    let mut events = vec![];
    while let Some(due) = c.poll_timeout() {
        while c.poll_transmit().is_some() {
            sends += 1;
        }
        c.handle_timeout(due);
        while let Some(e) = c.poll_event() {
            events.push(e);
        }
    }
    assert_eq!(sends, 7);
    assert_eq!(
        events,
        vec![TurnEvent::Failed {
            op: TurnOp::Allocate,
            failure: TurnFailure::Timeout { rejected: None }
        }]
    );
}

#[test]
fn channel_data_too_long_for_its_length_field_is_not_sent() {
    let mut c = client(Some("alice"), Some("pw"));
    c.channel_data(0x4001, &vec![7; 65_536]);
    assert_eq!(c.poll_transmit(), None, "a 16-bit length cannot say 65536");
    c.channel_data(0x4001, &vec![7; 65_535]);
    let cd = c.poll_transmit().unwrap();
    assert_eq!(cd[2..4], [0xff, 0xff]);
    assert_eq!(cd.len(), 4 + 65_536, "65535 bytes padded to 4");
}

#[test]
fn send_indication_too_long_for_its_length_field_is_not_sent() {
    let mut c = client(Some("alice"), Some("pw"));
    let peer: SocketAddr = "198.18.0.20:4000".parse().unwrap();
    c.send_indication(peer, &vec![7; 65_535]);
    assert_eq!(
        c.poll_transmit(),
        None,
        "header, attributes and DATA exceed 65535"
    );
    c.send_indication(peer, &vec![7; 60_000]);
    let m = stun::decode(&c.poll_transmit().unwrap()).unwrap();
    assert_eq!(m.data.map(|d| d.len()), Some(60_000));
}

#[test]
fn channel_data_and_data_indications_surface_as_data() {
    let mut c = client(Some("alice"), Some("pw"));
    c.channel_data(0x4001, b"abc");
    let cd = c.poll_transmit().unwrap();
    assert_eq!(cd.len(), 8, "padded to 4 bytes");
    c.handle_input(Instant::now(), &cd);
    assert_eq!(
        c.poll_event(),
        Some(TurnEvent::Data {
            peer: None,
            channel: Some(0x4001),
            data: b"abc".to_vec()
        })
    );
    // A Data indication (RFC 8656 §11.4) built from a Send indication's attributes.
    let peer: SocketAddr = "198.18.0.20:4000".parse().unwrap();
    let data = peer_data_indication(rtc::stun::message::METHOD_DATA, peer, b"xyz").unwrap();
    c.handle_input(Instant::now(), &data);
    assert_eq!(
        c.poll_event(),
        Some(TurnEvent::Data {
            peer: Some(peer),
            channel: None,
            data: b"xyz".to_vec()
        })
    );
}

#[test]
fn release_is_sent_for_an_unanswered_authenticated_allocate() {
    let t0 = Instant::now();
    let mut fake = Fake::new("pw");
    let mut c = client(Some("alice"), Some("pw"));
    c.allocate(t0);
    // Answer the 401 challenge only; the authenticated Allocate is lost.
    let first = c.poll_transmit().unwrap();
    c.handle_input(t0, &fake.reply(&first).unwrap());
    assert!(c.poll_transmit().is_some(), "authenticated Allocate sent");
    c.abandon();
    c.release(t0);
    let refresh = stun::decode(&c.poll_transmit().expect("Refresh sent")).unwrap();
    assert_eq!(refresh.method, method::REFRESH);
    assert!(refresh.has_integrity);
}

#[test]
fn nothing_to_release_before_authentication() {
    let t0 = Instant::now();
    let mut c = client(Some("alice"), Some("pw"));
    c.allocate(t0);
    c.poll_transmit();
    c.abandon();
    c.release(t0);
    assert!(c.poll_transmit().is_none());
}

#[test]
fn try_alternate_carries_the_alternate_server() {
    let t0 = Instant::now();
    let mut c = client(Some("alice"), Some("pw"));
    c.allocate(t0);
    let req = stun::decode(&c.poll_transmit().unwrap()).unwrap();
    let alt: SocketAddr = "198.18.0.2:3478".parse().unwrap();
    let mut r = stun::start(METHOD_ALLOCATE, CLASS_ERROR_RESPONSE, req.txid);
    stun::add(
        &mut r,
        &ErrorCodeAttribute {
            code: EcNum(300),
            reason: b"Try Alternate".to_vec(),
        },
    )
    .unwrap();
    rtc::stun::addr::MappedAddress {
        ip: alt.ip(),
        port: alt.port(),
    }
    .add_to_as(&mut r, rtc::stun::attributes::ATTR_ALTERNATE_SERVER)
    .unwrap();
    r.write_length();
    c.handle_input(t0, &stun::finish(r));
    match c.poll_event() {
        Some(TurnEvent::Failed {
            failure: TurnFailure::Rejected(e),
            ..
        }) => {
            assert_eq!(e.code, 300);
            assert_eq!(e.alternate_server, Some(alt));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn binding_runs_beside_allocate_on_one_client() {
    let t0 = Instant::now();
    let mut fake = Fake::new("pw");
    let mut c = client(Some("alice"), Some("pw"));
    c.allocate(t0);
    c.binding(t0);
    // The fake answers Binding like any unauthenticated request: with 401. A real server
    // answers Binding with success; check that a success is reported as Bound.
    let first = c.poll_transmit().unwrap();
    let bind = stun::decode(&c.poll_transmit().unwrap()).unwrap();
    assert_eq!(bind.method, method::BINDING);
    assert!(!bind.has_integrity, "Binding is never authenticated");
    let mapped: SocketAddr = CLIENT.parse().unwrap();
    let ok = crate::proto::binding::tests::success(bind.txid, mapped);
    c.handle_input(t0 + Duration::from_millis(10), &ok);
    c.handle_input(t0 + Duration::from_millis(10), &fake.reply(&first).unwrap());
    let ev: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(
        matches!(ev[0], TurnEvent::Bound { mapped: m, sends: 1, fingerprint: Some(true), .. } if m == mapped),
        "{ev:?}"
    );
    assert!(matches!(ev[1], TurnEvent::Challenged { .. }), "{ev:?}");
}
