//! A whole `check` row, every stage, against the demo server over UDP, TCP and TLS on
//! loopback: the row's machine driven over real links, with no testbed.
#![allow(clippy::disallowed_methods)] // tests set their own deadline

use std::net::SocketAddr;
use std::time::Duration;
use std::time::Instant;

use tokio::sync::watch;

use super::DemoServer;
use crate::check::plan::{ProbeConfig, RowInput};
use crate::check::probe::probe_row;
use crate::ice_url::ServerUrl;
use crate::model::check::{CheckRow, Stage};
use crate::model::{Outcome, Phase};
use crate::net::tls::TlsOptions;
use crate::probe::Budget;
use crate::secret::Secret;

async fn row_for(
    server: &DemoServer,
    url: &str,
    addr: SocketAddr,
    ca: &std::path::Path,
    password: &str,
) -> CheckRow {
    let cfg = ProbeConfig {
        rto: Duration::from_millis(200),
        tls: TlsOptions {
            ca_file: Some(ca.to_path_buf()),
            server_name: None,
            insecure: false,
        },
        ipv6_relay: false,
        rest_credentials: false,
        now_unix: 0,
        echo_timeout: Duration::from_secs(2),
        udp: Default::default(),
    };
    let url: ServerUrl = url.parse().unwrap();
    let input = RowInput {
        url: url.clone(),
        probed: url,
        addr,
        dns: Stage::not_checked("IP literal"),
        username: Some(server.username.clone()),
        password: Some(Secret::new(password)),
    };
    let (_tx, rx) = watch::channel(false);
    let budget = Budget::new(Instant::now(), Duration::from_secs(5));
    probe_row(&cfg, input, budget, rx).await
}

/// Every stage against the in-process server, over each transport.
#[tokio::test]
async fn every_stage_passes_against_the_demo_server() {
    let server = DemoServer::start("127.0.0.1".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &server.ca_pem).unwrap();
    let pw = server.password.expose().to_string();
    for (url, addr) in [
        (format!("turn:{}?transport=udp", server.udp), server.udp),
        (format!("turn:{}?transport=tcp", server.tcp), server.tcp),
        (format!("turns:{}", server.tls), server.tls),
    ] {
        let row = row_for(&server, &url, addr, &ca, &pw).await;
        for (name, ok) in [
            ("binding", row.binding.is_ok()),
            ("challenge", row.challenge.is_ok()),
            ("allocate", row.allocate.is_ok()),
            ("permission", row.permission.is_ok()),
            ("channel", row.channel.is_ok()),
            ("send_echo", row.send_echo.is_ok()),
            ("channel_echo", row.channel_echo.is_ok()),
            ("release", row.release.is_ok()),
        ] {
            assert!(ok, "{url}: {name} failed: {row:#?}");
        }
        assert_eq!(row.tls.is_ok(), url.starts_with("turns:"), "{row:#?}");
        assert_eq!(row.connect.is_ok(), !url.ends_with("udp"), "{row:#?}");
    }
    let bad = row_for(
        &server,
        &format!("turn:{}", server.udp),
        server.udp,
        &ca,
        "wrong",
    )
    .await;
    assert!(bad.challenge.is_ok());
    match &bad.allocate {
        Outcome::Failed(f) if f.failure.code == Some(401) => {
            assert_eq!(f.failure.phase, Phase::TurnAuth)
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(bad.permission, Outcome::NotChecked { .. }));
    server.shutdown().await;
}
