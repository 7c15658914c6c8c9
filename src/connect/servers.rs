//! Which configured servers webrtc 0.21.1 can use, converted to its `RTCIceServer` (pure).
//!
//! webrtc 0.21.1 gathers srflx over UDP and relays over UDP only: `turn:…?transport=tcp`,
//! `turns:`, `stuns:` and STUN over TCP are skipped and reported. `stun:host?transport=udp`
//! makes its `build()` fail, so the query is stripped from STUN URLs.

use webrtc::peer_connection::RTCIceServer;

use crate::ice_url::{Protocol, Scheme};
use crate::model::connect::SkippedServer;
use crate::servers::IceServer;

/// The servers handed to webrtc, their URLs for the report, and the skipped ones. `Debug`
/// leaves out `ice_servers`, whose credentials are plain strings.
#[derive(Default)]
pub struct WebrtcServers {
    /// For `RTCConfiguration::ice_servers` (credentials included: never print these).
    pub ice_servers: Vec<RTCIceServer>,
    /// The URLs used, as given, without credentials.
    pub used: Vec<String>,
    /// The URLs skipped, and why.
    pub skipped: Vec<SkippedServer>,
    /// At least one TURN server is used.
    pub has_relay: bool,
    /// (URL given to webrtc, URL as the user gave it): candidates name the latter.
    pub names: Vec<(String, String)>,
}

impl std::fmt::Debug for WebrtcServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebrtcServers")
            .field(
                "ice_servers",
                &format_args!("[{} servers, credentials redacted]", self.ice_servers.len()),
            )
            .field("used", &self.used)
            .field("skipped", &self.skipped)
            .field("has_relay", &self.has_relay)
            .field("names", &self.names)
            .finish()
    }
}

/// Split and convert `servers`.
pub fn webrtc_servers(servers: &[IceServer]) -> WebrtcServers {
    let mut out = WebrtcServers::default();
    for s in servers {
        let url = &s.url;
        let skip = |why: &str| SkippedServer {
            url: url.to_string(),
            why: why.to_string(),
        };
        let webrtc_url = match (url.scheme, url.protocol()) {
            (Scheme::Stun, Protocol::Udp) => format!("stun:{}", url.host_port()),
            (Scheme::Turn, Protocol::Udp) => format!("turn:{}?transport=udp", url.host_port()),
            (Scheme::Stun, _) | (Scheme::Stuns, _) => {
                out.skipped.push(skip(
                    "webrtc 0.21.1 asks STUN servers over UDP only (no STUN over TCP or TLS)",
                ));
                continue;
            }
            (Scheme::Turn, _) | (Scheme::Turns, _) => {
                out.skipped.push(skip(
                    "webrtc 0.21.1 gathers relays over UDP only (no TURN over TCP, TLS or DTLS); test it with `iceprobe check`",
                ));
                continue;
            }
        };
        out.has_relay |= url.is_turn();
        out.used.push(url.to_string());
        out.names.push((webrtc_url.clone(), url.to_string()));
        out.ice_servers.push(RTCIceServer {
            urls: vec![webrtc_url],
            username: s.username.clone().unwrap_or_default(),
            credential: s
                .credential
                .as_ref()
                .map(|c| c.expose().to_string())
                .unwrap_or_default(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ice_url::parse;
    use crate::secret::Secret;

    fn server(u: &str) -> IceServer {
        IceServer {
            url: parse(u).unwrap(),
            username: Some("alice".into()),
            credential: Some(Secret::new("pw")),
        }
    }

    #[test]
    fn udp_servers_go_to_webrtc_and_the_rest_are_skipped_with_a_reason() {
        let got = webrtc_servers(&[
            server("stun:198.18.0.1?transport=udp"),
            server("turn:198.18.0.1:3479"),
            server("turn:198.18.0.1?transport=tcp"),
            server("turns:198.18.0.1"),
            server("stuns:198.18.0.1"),
        ]);
        let urls: Vec<&str> = got.ice_servers.iter().map(|s| s.urls[0].as_str()).collect();
        assert_eq!(
            urls,
            ["stun:198.18.0.1:3478", "turn:198.18.0.1:3479?transport=udp"]
        );
        assert_eq!(
            got.used,
            ["stun:198.18.0.1?transport=udp", "turn:198.18.0.1:3479"]
        );
        assert_eq!(got.skipped.len(), 3);
        assert!(got.skipped[0].why.contains("UDP only"));
        assert!(got.has_relay);
        assert_eq!(got.ice_servers[1].credential, "pw");
        assert!(!format!("{:?}", got.skipped).contains("pw"));
    }

    #[test]
    fn stun_only_has_no_relay() {
        assert!(!webrtc_servers(&[server("stun:198.18.0.1")]).has_relay);
    }
}

#[cfg(test)]
mod debug_tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn debug_never_shows_credentials() {
        let s = IceServer {
            url: "turn:198.18.0.1".parse().unwrap(),
            username: Some("alice".into()),
            credential: Some(Secret::new("hunter2")),
        };
        let w = webrtc_servers(&[s]);
        assert!(!w.ice_servers.is_empty());
        assert!(!format!("{w:?}").contains("hunter2"));
    }
}
