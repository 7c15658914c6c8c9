//! Decoding STUN messages into a plain view, and the request builders our machines share.
//!
//! The codec is `rtc::stun` (RFC 5389/8489) plus `rtc::turn::proto` attributes (RFC 8656). We
//! always decode with `raw = bytes; decode()` — never `read_from`, whose fixed 120-byte buffer
//! drops longer replies (see DEPENDENCIES.md).

use std::net::SocketAddr;

use rtc::stun::addr::MappedAddress;
use rtc::stun::attributes::*;
use rtc::stun::error_code::ErrorCodeAttribute;
use rtc::stun::fingerprint::FINGERPRINT;
use rtc::stun::message::{
    Getter, Message, MessageClass, Method, Setter, TransactionId, CLASS_ERROR_RESPONSE,
    CLASS_INDICATION, CLASS_REQUEST, CLASS_SUCCESS_RESPONSE,
};
use rtc::stun::textattrs::TextAttribute;
use rtc::stun::xoraddr::XorMappedAddress;

/// A STUN transaction id (RFC 5389 §6: 96 random bits).
pub type TxId = [u8; 12];

/// The class of a STUN message (RFC 5389 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A request.
    Request,
    /// An indication.
    Indication,
    /// A success response.
    Success,
    /// An error response.
    Error,
}

/// STUN/TURN ERROR-CODE (RFC 5389 §15.6): a number 300–699 and the server's reason phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorCode {
    /// The numeric code, e.g. 401.
    pub code: u16,
    /// The reason phrase as the server sent it.
    pub reason: String,
    /// ALTERNATE-SERVER, carried with 300 Try Alternate (RFC 8489 §10).
    pub alternate_server: Option<SocketAddr>,
}

/// A decoded STUN message with the attributes iceprobe reads, each `None` when absent.
#[derive(Debug, Clone, Default)]
pub struct Decoded {
    /// Method number (0x001 Binding, 0x003 Allocate, ...).
    pub method: u16,
    /// Message class.
    pub class: Option<Class>,
    /// Transaction id.
    pub txid: TxId,
    /// XOR-MAPPED-ADDRESS (RFC 5389 §15.2).
    pub xor_mapped: Option<SocketAddr>,
    /// MAPPED-ADDRESS (RFC 5389 §15.1), kept separately to spot ALGs that rewrite one.
    pub mapped: Option<SocketAddr>,
    /// XOR-RELAYED-ADDRESS (RFC 8656 §18.5).
    pub relayed: Option<SocketAddr>,
    /// XOR-PEER-ADDRESS (RFC 8656 §18.3), on Data indications.
    pub peer: Option<SocketAddr>,
    /// DATA (RFC 8656 §18.4), on Data indications.
    pub data: Option<Vec<u8>>,
    /// LIFETIME in seconds (RFC 8656 §18.2).
    pub lifetime: Option<u32>,
    /// ERROR-CODE.
    pub error: Option<ErrorCode>,
    /// REALM (RFC 5389 §15.7).
    pub realm: Option<String>,
    /// NONCE (RFC 5389 §15.8).
    pub nonce: Option<String>,
    /// SOFTWARE (RFC 5389 §15.10): the server's name and version.
    pub software: Option<String>,
    /// ALTERNATE-SERVER (RFC 5389 §15.11), with 300 Try Alternate.
    pub alternate_server: Option<SocketAddr>,
    /// OTHER-ADDRESS (RFC 5780 §7.4).
    pub other_address: Option<SocketAddr>,
    /// RESPONSE-ORIGIN (RFC 5780 §7.3).
    pub response_origin: Option<SocketAddr>,
    /// Whether MESSAGE-INTEGRITY is present.
    pub has_integrity: bool,
    /// FINGERPRINT: `None` absent, `Some(true)` valid, `Some(false)` present but wrong.
    pub fingerprint: Option<bool>,
    /// CHANNEL-NUMBER (RFC 8656 §18.1), on ChannelBind.
    pub channel: Option<u16>,
    /// PRIORITY (RFC 8445 §7.1.1): present on ICE connectivity checks only.
    pub priority: Option<u32>,
    /// USE-CANDIDATE (RFC 8445 §7.1.2): the controlling agent nominates this pair.
    pub use_candidate: bool,
    /// Comprehension-required attributes (0x0000–0x7FFF) that no STUN/TURN RFC defines: a
    /// response carrying one must be discarded (RFC 8489 §7.3.3, §7.3.4).
    pub unknown_required: Vec<u16>,
    /// The undecoded message, for MESSAGE-INTEGRITY checks.
    pub raw: Vec<u8>,
}

/// Most attributes a message may carry before we call it hostile. Real servers send fewer than
/// twenty; a reply with thousands is an attack on the parser, not a STUN message.
pub const MAX_ATTRIBUTES: usize = 128;

/// Comprehension-required attribute types registered with IANA ("STUN Attributes"): RFC 3489
/// (0x0002–0x0005, 0x0007, 0x000B), RFC 8489, RFC 8656 (TURN), RFC 6156, RFC 5780, RFC 8445,
/// RFC 6062, RFC 7635 (ACCESS-TOKEN) and the reserved TURN-draft numbers.
const KNOWN_REQUIRED: &[u16] = &[
    0x0001, 0x0002, 0x0003, 0x0004, 0x0005, 0x0006, 0x0007, 0x0008, 0x0009, 0x000A, 0x000B, 0x000C,
    0x000D, 0x0010, 0x0012, 0x0013, 0x0014, 0x0015, 0x0016, 0x0017, 0x0018, 0x0019, 0x001A, 0x001B,
    0x001C, 0x001D, 0x001E, 0x0020, 0x0021, 0x0022, 0x0024, 0x0025, 0x0026, 0x0027, 0x002A,
];

/// Why bytes could not be read as STUN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not a STUN message at all (too short, wrong first bits, no magic cookie, a length
    /// field that disagrees with the bytes): the reason says which.
    #[error("not a STUN message: {0}")]
    NotStun(String),
    /// Looks like STUN but the attributes do not parse.
    #[error("malformed STUN message: {0}")]
    Malformed(String),
}

/// Whether `b` starts like a STUN message: top two bits zero and the magic cookie
/// (RFC 5389 §6).
pub fn looks_like_stun(b: &[u8]) -> bool {
    b.len() >= 20 && b[0] & 0xC0 == 0 && b[4..8] == [0x21, 0x12, 0xA4, 0x42]
}

/// The transaction id of something that looks like STUN.
pub fn txid_of(b: &[u8]) -> Option<TxId> {
    if !looks_like_stun(b) {
        return None;
    }
    let mut id = [0u8; 12];
    id.copy_from_slice(&b[8..20]);
    Some(id)
}

/// Decode one STUN message. Never panics, whatever the bytes.
pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let attrs = check_framing(bytes)?;
    let mut m = Message::new();
    m.raw = bytes.to_vec();
    m.decode()
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let class = match m.typ.class {
        c if c == CLASS_REQUEST => Some(Class::Request),
        c if c == CLASS_INDICATION => Some(Class::Indication),
        c if c == CLASS_SUCCESS_RESPONSE => Some(Class::Success),
        c if c == CLASS_ERROR_RESPONSE => Some(Class::Error),
        _ => None,
    };
    let mut d = Decoded {
        method: m.typ.method_value(),
        class,
        txid: m.transaction_id.0,
        raw: m.raw.clone(),
        ..Decoded::default()
    };
    d.xor_mapped = xor_addr(&m, ATTR_XORMAPPED_ADDRESS);
    d.relayed = xor_addr(&m, ATTR_XOR_RELAYED_ADDRESS);
    d.peer = xor_addr(&m, ATTR_XOR_PEER_ADDRESS);
    d.mapped = plain_addr(&m, ATTR_MAPPED_ADDRESS);
    d.alternate_server = plain_addr(&m, ATTR_ALTERNATE_SERVER);

    d.other_address = plain_addr(&m, ATTR_OTHER_ADDRESS);
    d.response_origin = plain_addr(&m, ATTR_RESPONSE_ORIGIN);
    d.data = m.get(ATTR_DATA).ok();
    d.lifetime = m
        .get(ATTR_LIFETIME)
        .ok()
        .and_then(|v| <[u8; 4]>::try_from(v.as_slice()).ok())
        .map(u32::from_be_bytes);
    let mut ec = ErrorCodeAttribute::default();
    if m.contains(ATTR_ERROR_CODE) {
        // RFC 8489 §14.8: class (3 bits) 3–6, number 0–99; `rtc` multiplies whatever arrives.
        let raw = m.get(ATTR_ERROR_CODE).unwrap_or_default();
        let (class, number) = match raw.as_slice() {
            [_, _, c, n, ..] => (c & 0x07, *n),
            _ => return Err(DecodeError::Malformed("ERROR-CODE too short".into())),
        };
        if !(3..=6).contains(&class) || number > 99 {
            return Err(DecodeError::Malformed(format!(
                "ERROR-CODE class {class} number {number} is out of range (class 3-6, number 0-99)"
            )));
        }
        d.error = Some(match ec.get_from(&m) {
            Ok(()) => ErrorCode {
                code: u16::from(class) * 100 + u16::from(number),
                reason: String::from_utf8_lossy(&ec.reason).into_owned(),
                alternate_server: d.alternate_server,
            },
            Err(_) => return Err(DecodeError::Malformed("ERROR-CODE too short".into())),
        });
    }
    d.unknown_required = attrs
        .into_iter()
        .filter(|t| *t < 0x8000 && !KNOWN_REQUIRED.contains(t))
        .collect();
    d.channel = m
        .get(ATTR_CHANNEL_NUMBER)
        .ok()
        .and_then(|v| v.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])));
    d.priority = m
        .get(ATTR_PRIORITY)
        .ok()
        .and_then(|v| <[u8; 4]>::try_from(v.as_slice()).ok())
        .map(u32::from_be_bytes);
    d.use_candidate = m.contains(ATTR_USE_CANDIDATE);
    d.realm = text(&m, ATTR_REALM);
    d.nonce = text(&m, ATTR_NONCE);
    d.software = text(&m, ATTR_SOFTWARE);
    d.has_integrity = m.contains(ATTR_MESSAGE_INTEGRITY);
    if m.contains(ATTR_FINGERPRINT) {
        d.fingerprint = Some(FINGERPRINT.check(&m).is_ok());
    }
    Ok(d)
}

/// The header and attribute framing (RFC 8489 §5, §14), checked before the codec sees the bytes
/// so that a reject can say exactly what was wrong. Returns the attribute types in order.
fn check_framing(b: &[u8]) -> Result<Vec<u16>, DecodeError> {
    let not = |s: String| Err(DecodeError::NotStun(s));
    if b.len() < 20 {
        return not(format!(
            "{} bytes, shorter than a STUN header (20)",
            b.len()
        ));
    }
    if b[0] & 0xC0 != 0 {
        return not(format!(
            "first byte 0x{:02X} has its top two bits set",
            b[0]
        ));
    }
    if b[4..8] != [0x21, 0x12, 0xA4, 0x42] {
        let cookie = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        return not(format!(
            "wrong magic cookie 0x{cookie:08X} (want 0x2112A442)"
        ));
    }
    let len = usize::from(u16::from_be_bytes([b[2], b[3]]));
    let body = b.len() - 20;
    if len > body {
        return not(format!(
            "truncated: the header announces {len} bytes of attributes, {body} arrived"
        ));
    }
    if len < body {
        return not(format!(
            "{} bytes after the {len} the header announces",
            body - len
        ));
    }
    if len % 4 != 0 {
        return Err(DecodeError::Malformed(format!(
            "length {len} is not a multiple of 4"
        )));
    }
    let mut types = vec![];
    let mut at = 20;
    while at < b.len() {
        if types.len() == MAX_ATTRIBUTES {
            return Err(DecodeError::Malformed(format!(
                "more than {MAX_ATTRIBUTES} attributes"
            )));
        }
        let Some(h) = b.get(at..at + 4) else {
            return Err(DecodeError::Malformed(format!(
                "{} stray bytes where an attribute header should be",
                b.len() - at
            )));
        };
        let t = u16::from_be_bytes([h[0], h[1]]);
        let alen = usize::from(u16::from_be_bytes([h[2], h[3]]));
        let padded = alen.div_ceil(4) * 4;
        if at + 4 + padded > b.len() {
            return Err(DecodeError::Malformed(format!(
                "attribute 0x{t:04X} claims {alen} bytes, only {} remain",
                b.len() - at - 4
            )));
        }
        types.push(t);
        at += 4 + padded;
    }
    Ok(types)
}

fn xor_addr(m: &Message, t: AttrType) -> Option<SocketAddr> {
    if !m.contains(t) {
        return None;
    }
    let mut a = XorMappedAddress::default();
    a.get_from_as(m, t).ok()?;
    Some(SocketAddr::new(a.ip, a.port))
}

fn plain_addr(m: &Message, t: AttrType) -> Option<SocketAddr> {
    if !m.contains(t) {
        return None;
    }
    let mut a = MappedAddress::default();
    a.get_from_as(m, t).ok()?;
    Some(SocketAddr::new(a.ip, a.port))
}

fn text(m: &Message, t: AttrType) -> Option<String> {
    TextAttribute::get_from_as(m, t).ok().map(|a| a.text)
}

/// A fresh random transaction id.
pub fn new_txid() -> TxId {
    TransactionId::new().0
}

/// Start a message of `method`/`class` with transaction id `txid`.
pub fn start(method: Method, class: MessageClass, txid: TxId) -> Message {
    let mut m = Message::new();
    m.typ = rtc::stun::message::MessageType::new(method, class);
    m.transaction_id = TransactionId(txid);
    m.write_header();
    m
}

/// Append a raw attribute and keep the header length right.
pub fn add_raw(m: &mut Message, t: AttrType, v: &[u8]) {
    m.add(t, v);
    m.write_length();
}

/// Append any `rtc` attribute setter; setters of fixed-size values cannot fail in practice, but
/// an error is returned rather than hidden.
pub fn add(m: &mut Message, s: &dyn Setter) -> Result<(), String> {
    s.add_to(m).map_err(|e| e.to_string())?;
    m.write_length();
    Ok(())
}

/// Append FINGERPRINT (RFC 5389 §15.5) and return the wire bytes.
pub fn finish(mut m: Message) -> Vec<u8> {
    // FINGERPRINT over a well-formed message cannot fail.
    let _ = FINGERPRINT.add_to(&mut m);
    m.write_length();
    m.raw
}

/// A Binding request (RFC 5389 §7.1), with FINGERPRINT.
pub fn binding_request(txid: TxId) -> Vec<u8> {
    finish(start(
        rtc::stun::message::METHOD_BINDING,
        CLASS_REQUEST,
        txid,
    ))
}

/// CHANGE-REQUEST flag: change IP (RFC 5780 §7.2).
pub const CHANGE_IP: u8 = 0x04;
/// CHANGE-REQUEST flag: change port (RFC 5780 §7.2).
pub const CHANGE_PORT: u8 = 0x02;

/// A Binding request with CHANGE-REQUEST `flags` (RFC 5780 §7.2; `rtc` has only the attribute
/// number, so the 4-byte value is written raw), and RESPONSE-PORT when given (§7.5).
pub fn binding_request_with(txid: TxId, change: u8, response_port: Option<u16>) -> Vec<u8> {
    let mut m = start(rtc::stun::message::METHOD_BINDING, CLASS_REQUEST, txid);
    if change != 0 {
        add_raw(&mut m, ATTR_CHANGE_REQUEST, &[0, 0, 0, change]);
    }
    if let Some(port) = response_port {
        // RESPONSE-PORT: the port, then two bytes of padding (RFC 5780 §7.5).
        let p = port.to_be_bytes();
        add_raw(&mut m, ATTR_RESPONSE_PORT, &[p[0], p[1], 0, 0]);
    }
    finish(m)
}

/// Method numbers (RFC 5389 §18.1, RFC 8656 §17).
pub mod method {
    /// Binding.
    pub const BINDING: u16 = 0x001;
    /// Allocate.
    pub const ALLOCATE: u16 = 0x003;
    /// Refresh.
    pub const REFRESH: u16 = 0x004;
    /// Send (indication).
    pub const SEND: u16 = 0x006;
    /// Data (indication).
    pub const DATA: u16 = 0x007;
    /// CreatePermission.
    pub const CREATE_PERMISSION: u16 = 0x008;
    /// ChannelBind.
    pub const CHANNEL_BIND: u16 = 0x009;
}

trait MethodValue {
    fn method_value(&self) -> u16;
}

impl MethodValue for rtc::stun::message::MessageType {
    fn method_value(&self) -> u16 {
        // MessageType::value() interleaves class bits (RFC 5389 §6); undo that to get the method.
        let v = self.value();
        (v & 0x000F) | ((v & 0x00E0) >> 1) | ((v & 0x3E00) >> 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5769 §2.1 sample request (long-term-free, short-term credentials).
    const RFC5769_REQUEST: &str = "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74002400046e0001ff80290008932ff9b151263b36000600096576746a3a68367659202020000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf";
    /// RFC 5769 §2.2 sample IPv4 response.
    const RFC5769_RESPONSE_V4: &str = "0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000080001a147e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d780280004c07d4c96";
    /// RFC 5769 §2.3 sample IPv6 response.
    const RFC5769_RESPONSE_V6: &str = "010100482112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d900080014a382954e4be67bf11784c97c8292c275bfe3ed4180280004c8fb0b4c";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc5769_request_decodes() {
        let d = decode(&hex(RFC5769_REQUEST)).unwrap();
        assert_eq!(d.method, method::BINDING);
        assert_eq!(d.class, Some(Class::Request));
        assert_eq!(d.software.as_deref(), Some("STUN test client"));
        assert!(d.has_integrity);
        assert_eq!(d.fingerprint, Some(true));
    }

    #[test]
    fn rfc5769_v4_response_decodes() {
        let d = decode(&hex(RFC5769_RESPONSE_V4)).unwrap();
        assert_eq!(d.class, Some(Class::Success));
        assert_eq!(d.xor_mapped, Some("192.0.2.1:32853".parse().unwrap()));
        assert_eq!(d.software.as_deref(), Some("test vector"));
        assert_eq!(d.fingerprint, Some(true));
        assert_eq!(d.txid, hex("b7e7a701bc34d686fa87dfae")[..]);
    }

    #[test]
    fn rfc5769_v6_response_decodes() {
        let d = decode(&hex(RFC5769_RESPONSE_V6)).unwrap();
        assert_eq!(
            d.xor_mapped,
            Some(
                "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
                    .parse()
                    .unwrap()
            )
        );
        assert_eq!(d.fingerprint, Some(true));
    }

    #[test]
    fn corrupted_fingerprint_is_reported_not_trusted() {
        let mut b = hex(RFC5769_RESPONSE_V4);
        let n = b.len();
        b[n - 1] ^= 0xff;
        assert_eq!(decode(&b).unwrap().fingerprint, Some(false));
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let base = hex(RFC5769_RESPONSE_V6);
        for cut in 0..base.len() {
            let _ = decode(&base[..cut]);
        }
        for i in 20..base.len() {
            for v in [0u8, 0xff, 0x80] {
                let mut b = base.clone();
                b[i] = v;
                let _ = decode(&b);
            }
        }
        assert!(matches!(
            decode(b"hello world, not stun at all").unwrap_err(),
            DecodeError::NotStun(_)
        ));
    }

    /// Every way a hostile reply can break the framing gets its own reason.
    #[test]
    fn framing_rejects_name_what_is_wrong() {
        let good = hex(RFC5769_RESPONSE_V4);
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = good.clone();
            f(&mut b);
            b
        };
        let set_len = |b: &mut Vec<u8>, n: u16| b[2..4].copy_from_slice(&n.to_be_bytes());
        let many = {
            // 200 comprehension-optional attributes of 4 bytes each.
            let mut b = good[..20].to_vec();
            for _ in 0..200 {
                b.extend_from_slice(&[0x80, 0x99, 0, 4, 1, 2, 3, 4]);
            }
            let n = (b.len() - 20) as u16;
            set_len(&mut b, n);
            b
        };
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("short", good[..12].to_vec(), "shorter than a STUN header"),
            ("top bits", with(&|b| b[0] = 0xC1), "top two bits"),
            (
                "cookie",
                with(&|b| b[4] = 0),
                "wrong magic cookie 0x0012A442",
            ),
            (
                "truncated",
                good[..40].to_vec(),
                "truncated: the header announces 60 bytes of attributes, 20 arrived",
            ),
            (
                "trailing",
                with(&|b| b.extend_from_slice(&[0; 8])),
                "8 bytes after the 60",
            ),
            (
                "overrun",
                with(&|b| b[22..24].copy_from_slice(&200u16.to_be_bytes())),
                "claims 200 bytes",
            ),
            ("too many", many, "more than 128 attributes"),
            (
                "odd length",
                with(&|b| {
                    b.push(0);
                    set_len(b, 61)
                }),
                "not a multiple of 4",
            ),
        ];
        for (name, bytes, want) in cases {
            let e = decode(&bytes).unwrap_err().to_string();
            assert!(e.contains(want), "{name}: {e:?} lacks {want:?}");
        }
    }

    #[test]
    fn error_code_out_of_range_and_unknown_required_attributes() {
        let id = new_txid();
        let error_with = |class: u8, number: u8| {
            let mut m = start(rtc::stun::message::METHOD_BINDING, CLASS_ERROR_RESPONSE, id);
            add_raw(&mut m, ATTR_ERROR_CODE, &[0, 0, class, number, b'x']);
            finish(m)
        };
        assert_eq!(decode(&error_with(4, 1)).unwrap().error.unwrap().code, 401);
        // Reserved bits above the class are ignored (RFC 8489 §14.8).
        assert_eq!(
            decode(&error_with(0xF4, 1)).unwrap().error.unwrap().code,
            401
        );
        for (class, number) in [(7, 0), (2, 99), (0, 0), (4, 100)] {
            let e = decode(&error_with(class, number)).unwrap_err().to_string();
            assert!(e.contains("out of range"), "{class} {number}: {e}");
        }
        let mut m = start(
            rtc::stun::message::METHOD_BINDING,
            CLASS_SUCCESS_RESPONSE,
            id,
        );
        add_raw(&mut m, AttrType(0x7FFF), &[0; 4]);
        add_raw(&mut m, AttrType(0x8123), &[0; 4]); // optional: fine
        add_raw(&mut m, ATTR_SOFTWARE, b"ok");
        let d = decode(&finish(m)).unwrap();
        assert_eq!(d.unknown_required, vec![0x7FFF]);
        assert!(decode(&hex(RFC5769_RESPONSE_V6))
            .unwrap()
            .unknown_required
            .is_empty());
    }

    #[test]
    fn binding_request_round_trips() {
        let id = new_txid();
        let d = decode(&binding_request(id)).unwrap();
        assert_eq!(d.method, method::BINDING);
        assert_eq!(d.class, Some(Class::Request));
        assert_eq!(d.txid, id);
        assert_eq!(d.fingerprint, Some(true));
    }
}

#[cfg(test)]
mod change_request_tests {
    use super::*;

    #[test]
    fn change_request_and_response_port_are_encoded() {
        let id = new_txid();
        let raw = binding_request_with(id, CHANGE_IP | CHANGE_PORT, Some(40000));
        let mut m = Message::new();
        m.raw = raw.clone();
        m.decode().unwrap();
        assert_eq!(m.get(ATTR_CHANGE_REQUEST).unwrap(), vec![0, 0, 0, 6]);
        assert_eq!(m.get(ATTR_RESPONSE_PORT).unwrap(), vec![0x9c, 0x40, 0, 0]);
        assert_eq!(decode(&raw).unwrap().fingerprint, Some(true));
        let plain = binding_request_with(id, 0, None);
        assert_eq!(plain, binding_request(id));
    }
}
