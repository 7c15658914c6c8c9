//! `iceprobe demo`: start the in-process server on loopback and build the gather plan a newcomer
//! should see: srflx over UDP, and relays over UDP, TCP and TLS.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use super::DemoServer;
use crate::gather::GatherConfig;
use crate::ice_url::{self, ServerUrl};
use crate::net::dns::Families;
use crate::net::ifaces::HostFilter;
use crate::net::tls::TlsOptions;
use crate::servers::IceServer;

/// The demo CA written to a temporary file for `--ca`; removed on drop.
#[derive(Debug)]
pub struct TempCa(pub PathBuf);

impl Drop for TempCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The server URLs the demo gathers from.
pub fn demo_urls(s: &DemoServer) -> Result<Vec<ServerUrl>, ice_url::UrlError> {
    [
        format!("stun:{}", s.udp),
        format!("turn:{}?transport=udp", s.udp),
        format!("turn:{}?transport=tcp", s.tcp),
        format!("turns:{}", s.tls),
    ]
    .iter()
    .map(|u| ice_url::parse(u))
    .collect()
}

/// Start the server on 127.0.0.1 and return it with a ready gather config.
pub async fn demo_gather(timeout: Duration) -> std::io::Result<(DemoServer, GatherConfig, TempCa)> {
    let server = DemoServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST)).await?;
    // Unique per server: two demos in one process (tests) must not share a CA file.
    let ca = TempCa(std::env::temp_dir().join(format!(
        "iceprobe-demo-ca-{}-{}.pem",
        std::process::id(),
        server.tls.port()
    )));
    std::fs::write(&ca.0, &server.ca_pem)?;
    let urls = demo_urls(&server).map_err(|e| std::io::Error::other(e.to_string()))?;
    let servers = urls
        .into_iter()
        .map(|url| {
            let turn = url.is_turn();
            IceServer {
                url,
                username: turn.then(|| server.username.clone()),
                credential: turn.then(|| server.password.clone()),
            }
        })
        .collect();
    let families = Families {
        v4: true,
        v6: false,
    };
    let cfg = GatherConfig {
        servers,
        relay_only: false,
        families,
        timeout,
        rto: Duration::from_millis(500),
        now_unix: 0, // the demo server mints no REST usernames
        hosts: HostFilter {
            families,
            loopback: true,
            link_local: false,
        },
        tls: TlsOptions {
            ca_file: Some(ca.0.clone()),
            server_name: None,
            insecure: false,
        },
        rest_credentials: false,
    };
    Ok((server, cfg, ca))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::candidate::CandidateType;
    use crate::ice_url::Protocol;
    use crate::model::gather::GatherEvent as Event;
    use crate::model::Outcome;
    use tokio::sync::{mpsc, watch};

    /// The demo's promise, end to end on loopback: host, srflx and three relays (udp, tcp, tls),
    /// each attributed to its URL, trickled before the summary, and every allocation released.
    #[tokio::test]
    async fn demo_gathers_host_srflx_and_three_relays() {
        let (server, cfg, _ca) = demo_gather(Duration::from_secs(5)).await.unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (_c, cancel) = watch::channel(false);
        let report = crate::gather::gather(cfg, tx, cancel).await;
        let mut events = vec![];
        while let Ok(e) = rx.try_recv() {
            events.push(e);
        }
        assert!(report.verdict.ok, "{:#?}", report);
        let relays: Vec<_> = report
            .candidates
            .iter()
            .filter(|c| c.kind == CandidateType::Relay)
            .collect();
        let mut protos: Vec<_> = relays.iter().map(|c| c.relay_protocol.unwrap()).collect();
        protos.sort();
        assert_eq!(protos, vec![Protocol::Udp, Protocol::Tcp, Protocol::Tls]);
        for r in &relays {
            assert!(r.url.as_deref().unwrap().starts_with("turn"), "{r:?}");
            assert_eq!(r.address, IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        let srflx = report
            .candidates
            .iter()
            .filter(|c| c.kind == CandidateType::Srflx)
            .count();
        assert_eq!(srflx, 2, "stun: and the UDP turn: both give srflx");
        assert!(report
            .candidates
            .iter()
            .any(|c| c.kind == CandidateType::Host && c.address.is_loopback()));
        // Trickle: candidates were streamed before the summary, which comes last.
        assert!(matches!(events.first(), Some(Event::Start(_))));
        assert!(matches!(events.last(), Some(Event::Summary(_))));
        let streamed = events
            .iter()
            .filter(|e| matches!(e, Event::Candidate(_)))
            .count();
        assert_eq!(streamed, report.candidates.len());
        // Every allocation released.
        let released = events
            .iter()
            .filter(|e| matches!(e, Event::Released(_)))
            .count();
        assert_eq!(released, 3);
        for s in &report.servers {
            if s.url.is_turn() {
                assert_eq!(s.released, Some(true), "{s:?}");
                assert!(matches!(s.relay, Outcome::Ok(_)));
            }
        }
        server.shutdown().await;
    }

    #[tokio::test]
    async fn wrong_password_is_a_401_turn_auth_error() {
        let (server, mut cfg, _ca) = demo_gather(Duration::from_secs(5)).await.unwrap();
        for s in cfg.servers.iter_mut().filter(|s| s.url.is_turn()) {
            s.credential = Some(crate::secret::Secret::new("not-the-password"));
        }
        let (tx, _rx) = mpsc::unbounded_channel();
        let (_c, cancel) = watch::channel(false);
        let report = crate::gather::gather(cfg, tx, cancel).await;
        assert_eq!(report.verdict.exit_code, 1);
        assert_eq!(report.errors.len(), 3, "{:#?}", report.errors);
        for e in &report.errors {
            assert_eq!(e.failure.code, Some(401), "{e:?}");
            assert_eq!(e.failure.phase, crate::model::Phase::TurnAuth);
            assert!(
                e.failure.cause.contains("wrong TURN credentials"),
                "{}",
                e.failure.cause
            );
        }
        server.shutdown().await;
    }
}
