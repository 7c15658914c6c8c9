//! STUN and TURN server URLs: `stun:`, `stuns:` (RFC 7064) and `turn:`, `turns:` (RFC 7065).
//!
//! Grammar (RFC 7064 §3.1, RFC 7065 §3.1):
//! `scheme ":" host [ ":" port ] [ "?transport=" ("udp" / "tcp") ]`, where `host` is an IPv4
//! address, a bracketed IPv6 literal or a registered name. The `?transport=` query exists only for
//! `turn:`/`turns:`. A `stuns:` URL runs over TLS on TCP; `turns:` too, except with
//! `?transport=udp`, which RFC 7350 §4.1 gives to TURN over DTLS.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// Default port for `stun:` and `turn:` (RFC 5389 §18.6, RFC 5766 §17).
pub const DEFAULT_PORT: u16 = 3478;
/// Default port for `stuns:` and `turns:` (RFC 5389 §18.6, RFC 5766 §17).
pub const DEFAULT_TLS_PORT: u16 = 5349;

/// The URL scheme, as spelled on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    /// `stun:` — STUN Binding over UDP (or TCP).
    Stun,
    /// `stuns:` — STUN Binding over TLS.
    Stuns,
    /// `turn:` — TURN over UDP or TCP.
    Turn,
    /// `turns:` — TURN over TLS.
    Turns,
}

impl Scheme {
    /// Whether this scheme names a TURN server (which can also answer Binding requests).
    pub fn is_turn(self) -> bool {
        matches!(self, Scheme::Turn | Scheme::Turns)
    }

    /// Whether the scheme implies TLS.
    pub fn is_secure(self) -> bool {
        matches!(self, Scheme::Stuns | Scheme::Turns)
    }

    /// The scheme as written before the colon.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Stun => "stun",
            Scheme::Stuns => "stuns",
            Scheme::Turn => "turn",
            Scheme::Turns => "turns",
        }
    }
}

/// How bytes reach the server: the relay protocol of a TURN candidate (udp, tcp, tls).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Plain UDP datagrams.
    Udp,
    /// A TCP stream with RFC 4571-style STUN/ChannelData framing (RFC 8656 §12.5).
    Tcp,
    /// TLS over TCP.
    Tls,
    /// DTLS over UDP (RFC 7350): `turns:` with `?transport=udp`.
    Dtls,
}

impl Protocol {
    /// Lower-case wire word.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
            Protocol::Tls => "tls",
            Protocol::Dtls => "dtls",
        }
    }

    /// Whether this is a stream transport (TCP or TLS).
    pub fn is_stream(self) -> bool {
        matches!(self, Protocol::Tcp | Protocol::Tls)
    }

    /// Whether the transport is secured (TLS or DTLS): the row has a handshake and a chain.
    pub fn is_secure(self) -> bool {
        matches!(self, Protocol::Tls | Protocol::Dtls)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The host part of a URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Host {
    /// An IPv4 or IPv6 literal.
    Ip(IpAddr),
    /// A registered name, to be resolved with DNS.
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]"),
            Host::Ip(IpAddr::V4(v4)) => write!(f, "{v4}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

/// A parsed, validated STUN or TURN server URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerUrl {
    /// The scheme.
    pub scheme: Scheme,
    /// Host name or address literal.
    pub host: Host,
    /// Port (the scheme's default when the URL has none).
    pub port: u16,
    /// The `?transport=` value when the URL had one.
    pub transport_param: Option<Protocol>,
}

impl ServerUrl {
    /// The wire protocol used to reach the server.
    pub fn protocol(&self) -> Protocol {
        if self.scheme.is_secure() {
            match self.transport_param {
                Some(Protocol::Udp) => Protocol::Dtls,
                _ => Protocol::Tls,
            }
        } else {
            self.transport_param.unwrap_or(Protocol::Udp)
        }
    }

    /// Whether this URL names a TURN server.
    pub fn is_turn(&self) -> bool {
        self.scheme.is_turn()
    }

    /// The same server reached as `stun:`-style binding target (used for srflx from TURN URLs).
    pub fn host_port(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.scheme.as_str(), self.host)?;
        let default = if self.scheme.is_secure() {
            DEFAULT_TLS_PORT
        } else {
            DEFAULT_PORT
        };
        if self.port != default {
            write!(f, ":{}", self.port)?;
        }
        if let Some(t) = self.transport_param {
            write!(f, "?transport={t}")?;
        }
        Ok(())
    }
}

impl Serialize for ServerUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Reports carry URLs as their text; reading one back parses it again.
impl<'de> serde::Deserialize<'de> for ServerUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ServerUrl, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a server URL was rejected. Every variant carries the offending input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// No `scheme:` prefix or an unknown one.
    #[error("{url:?}: unknown scheme {scheme:?}: use stun:, stuns:, turn: or turns:")]
    UnknownScheme {
        /// The input URL.
        url: String,
        /// What stood before the colon.
        scheme: String,
    },
    /// The URL has no host.
    #[error("{url:?}: missing host: write e.g. turn:turn.example.org:3478")]
    MissingHost {
        /// The input URL.
        url: String,
    },
    /// The host is not a valid name or literal.
    #[error("{url:?}: invalid host {host:?}: {why}")]
    BadHost {
        /// The input URL.
        url: String,
        /// The host as written.
        host: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The port is not a number in 1..=65535.
    #[error("{url:?}: bad port {port:?}: the port must be a number from 1 to 65535")]
    BadPort {
        /// The input URL.
        url: String,
        /// The port as written.
        port: String,
    },
    /// A query other than `transport=udp|tcp`, or one on a scheme that does not take it.
    #[error("{url:?}: {why}")]
    BadQuery {
        /// The input URL.
        url: String,
        /// What is wrong with the query.
        why: String,
    },
}

impl FromStr for ServerUrl {
    type Err = UrlError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        parse(input)
    }
}

/// Parse a server URL per RFC 7064/7065. Tolerates `//` after the colon, as some providers write
/// it, and upper-case schemes (RFC 3986 §3.1: schemes are case-insensitive).
pub fn parse(input: &str) -> Result<ServerUrl, UrlError> {
    let url = input.trim();
    // Never echo user info: `turn:user:password@host` would print a password in the error.
    let shown = redact_userinfo(url);
    let err_url = || shown.clone();
    let Some((scheme_raw, rest)) = url.split_once(':') else {
        return Err(UrlError::UnknownScheme {
            url: err_url(),
            scheme: String::new(),
        });
    };
    let scheme = match scheme_raw.to_ascii_lowercase().as_str() {
        "stun" => Scheme::Stun,
        "stuns" => Scheme::Stuns,
        "turn" => Scheme::Turn,
        "turns" => Scheme::Turns,
        _ => {
            return Err(UrlError::UnknownScheme {
                url: err_url(),
                scheme: scheme_raw.to_string(),
            })
        }
    };
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (authority, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    if authority.contains('@') {
        return Err(UrlError::BadHost {
            url: err_url(),
            host: redact_userinfo(&format!("x:{authority}"))[2..].to_string(),
            why: "user info is not allowed in STUN/TURN URLs: pass --username/--credential",
        });
    }
    let authority = authority.strip_suffix('/').unwrap_or(authority);
    let (host_str, port_str) = split_host_port(authority).map_err(|why| UrlError::BadHost {
        url: err_url(),
        host: authority.to_string(),
        why,
    })?;
    if host_str.is_empty() {
        return Err(UrlError::MissingHost { url: err_url() });
    }
    let host = parse_host(host_str).map_err(|why| UrlError::BadHost {
        url: err_url(),
        host: host_str.to_string(),
        why,
    })?;
    let port = match port_str {
        None => {
            if scheme.is_secure() {
                DEFAULT_TLS_PORT
            } else {
                DEFAULT_PORT
            }
        }
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n != 0 && p.chars().all(|c| c.is_ascii_digit()) => n,
            _ => {
                return Err(UrlError::BadPort {
                    url: err_url(),
                    port: p.to_string(),
                })
            }
        },
    };
    let transport_param = match query {
        None => None,
        Some(q) => Some(parse_query(scheme, q).map_err(|why| UrlError::BadQuery {
            url: err_url(),
            why,
        })?),
    };
    Ok(ServerUrl {
        scheme,
        host,
        port,
        transport_param,
    })
}

/// The URL with anything before an `@` in the authority replaced by `***`.
fn redact_userinfo(url: &str) -> String {
    match (url.split_once(':'), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}:***{}", &url[at..]),
        _ => url.to_string(),
    }
}

fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), &'static str> {
    if let Some(rest) = authority.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return Err("unclosed '[' in IPv6 literal");
        };
        return match after {
            "" => Ok((authority, None)),
            _ => match after.strip_prefix(':') {
                Some(p) => Ok((authority.get(..v6.len() + 2).unwrap_or(v6), Some(p))),
                None => Err("unexpected text after ']'"),
            },
        };
    }
    match authority.matches(':').count() {
        0 => Ok((authority, None)),
        1 => {
            let (h, p) = authority.split_once(':').unwrap_or((authority, ""));
            Ok((h, Some(p)))
        }
        _ => Err("IPv6 literals must be in brackets, e.g. turn:[2001:db8::1]:3478"),
    }
}

fn parse_host(host: &str) -> Result<Host, &'static str> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner
            .parse::<std::net::Ipv6Addr>()
            .map(|a| Host::Ip(IpAddr::V6(a)))
            .map_err(|_| "not a valid IPv6 address");
    }
    if let Ok(v6) = host.parse::<std::net::Ipv6Addr>() {
        return Ok(Host::Ip(IpAddr::V6(v6)));
    }
    if let Ok(v4) = host.parse::<std::net::Ipv4Addr>() {
        return Ok(Host::Ip(IpAddr::V4(v4)));
    }
    if host.len() > 253 {
        return Err("host name longer than 253 characters");
    }
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let name = host.strip_suffix('.').unwrap_or(host);
    if !name.split('.').all(valid_label) {
        return Err("host names may contain only letters, digits, '-' and '.'");
    }
    if name
        .split('.')
        .all(|l| l.chars().all(|c| c.is_ascii_digit()))
    {
        return Err("not a valid IPv4 address");
    }
    Ok(Host::Name(name.to_ascii_lowercase()))
}

fn parse_query(scheme: Scheme, query: &str) -> Result<Protocol, String> {
    let Some(value) = query.strip_prefix("transport=") else {
        return Err(format!(
            "unknown query {query:?}: the only parameter is ?transport=udp or ?transport=tcp"
        ));
    };
    let proto = match value.to_ascii_lowercase().as_str() {
        "udp" => Protocol::Udp,
        "tcp" => Protocol::Tcp,
        other => {
            return Err(format!(
                "unknown transport {other:?}: use ?transport=udp or ?transport=tcp"
            ))
        }
    };
    match scheme {
        Scheme::Turn => Ok(proto),
        // RFC 7064 §3.1 defines no query for stun:/stuns:, but browsers and providers write
        // `stun:host?transport=udp`; accept it when it matches what STUN would use anyway.
        Scheme::Stun => Ok(proto),
        Scheme::Stuns | Scheme::Turns if proto == Protocol::Tcp => Ok(proto),
        // RFC 7350 §4.1: TURN over DTLS.
        Scheme::Turns => Ok(proto),
        Scheme::Stuns => Err(
            "?transport=udp on a stuns: URL: stuns: always runs over TLS/TCP (RFC 7064 defines no DTLS form; iceprobe checks DTLS with turns:HOST?transport=udp); drop the query"
                .to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str, scheme: Scheme, host: &str, port: u16, proto: Protocol) {
        let u = parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(u.scheme, scheme, "{input}");
        assert_eq!(u.host.to_string(), host, "{input}");
        assert_eq!(u.port, port, "{input}");
        assert_eq!(u.protocol(), proto, "{input}");
    }

    #[test]
    fn valid_urls() {
        use Protocol::*;
        use Scheme::*;
        let cases: &[(&str, Scheme, &str, u16, Protocol)] = &[
            ("stun:stun.example.org", Stun, "stun.example.org", 3478, Udp),
            (
                "stun:stun.example.org:19302",
                Stun,
                "stun.example.org",
                19302,
                Udp,
            ),
            (
                "stuns:stun.example.org",
                Stuns,
                "stun.example.org",
                5349,
                Tls,
            ),
            ("turn:198.18.0.1", Turn, "198.18.0.1", 3478, Udp),
            (
                "turn:198.18.0.1?transport=tcp",
                Turn,
                "198.18.0.1",
                3478,
                Tcp,
            ),
            (
                "turn:198.18.0.1:80?transport=udp",
                Turn,
                "198.18.0.1",
                80,
                Udp,
            ),
            (
                "turns:turn.example.org",
                Turns,
                "turn.example.org",
                5349,
                Tls,
            ),
            (
                "turns:turn.example.org:443?transport=tcp",
                Turns,
                "turn.example.org",
                443,
                Tls,
            ),
            // RFC 7350 §4.1: TURN over DTLS, on the TLS port by default.
            (
                "turns:turn.example.org?transport=udp",
                Turns,
                "turn.example.org",
                5349,
                Dtls,
            ),
            ("turn:[fd00::1]", Turn, "[fd00::1]", 3478, Udp),
            (
                "turn:[fd00::1]:3479?transport=tcp",
                Turn,
                "[fd00::1]",
                3479,
                Tcp,
            ),
            ("TURN:Turn.Example.ORG", Turn, "turn.example.org", 3478, Udp),
            (
                "stun://stun.example.org:3478",
                Stun,
                "stun.example.org",
                3478,
                Udp,
            ),
            (
                "stun:stun.example.org?transport=udp",
                Stun,
                "stun.example.org",
                3478,
                Udp,
            ),
        ];
        for (i, s, h, p, t) in cases {
            ok(i, *s, h, *p, *t);
        }
    }

    #[test]
    fn invalid_urls_name_the_problem() {
        let cases: &[(&str, &str)] = &[
            ("http://x", "unknown scheme"),
            ("example.org", "unknown scheme"),
            ("turn:", "missing host"),
            ("turn::3478", "missing host"),
            ("turn:host:0", "bad port"),
            ("turn:host:65536", "bad port"),
            ("turn:host:abc", "bad port"),
            ("turn:host:+1", "bad port"),
            ("turn:host?transport=sctp", "unknown transport"),
            ("turn:host?foo=bar", "unknown query"),
            (
                "stuns:host?transport=udp",
                "stuns: always runs over TLS/TCP",
            ),
            ("turn:fd00::1", "brackets"),
            ("turn:[fd00::1", "unclosed"),
            ("turn:[not-v6]", "not a valid IPv6"),
            ("turn:ho st", "may contain only"),
            ("turn:999.1.1.1", "not a valid IPv4"),
        ];
        for (input, want) in cases {
            let err = parse(input).expect_err(input).to_string();
            assert!(err.contains(want), "{input}: {err:?} lacks {want:?}");
            assert!(
                err.contains(input.trim()),
                "{input}: error must name the URL: {err}"
            );
        }
    }

    #[test]
    fn user_info_is_rejected_without_echoing_the_password() {
        let err = parse("turn:alice:hunter2@turn.example.org")
            .unwrap_err()
            .to_string();
        assert!(err.contains("user info"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "stun:h",
            "turn:h:80?transport=tcp",
            "turns:[fd00::1]",
            "turn:198.18.0.1:3479",
        ] {
            let u = parse(s).unwrap();
            assert_eq!(parse(&u.to_string()).unwrap(), u);
            assert_eq!(u.to_string(), s);
        }
    }
}
