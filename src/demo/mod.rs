//! `iceprobe demo`: an in-process STUN/TURN server on one IP (usually loopback), so a newcomer
//! sees real host, srflx and relay candidates without any network or server of their own.
//!
//! The protocol is entirely `turn-server-proto`'s (a sans-IO TURN server: STUN Binding, long-term
//! credentials, Allocate, Refresh, CreatePermission, ChannelBind, Send/Data, RFC 6062 stream
//! framing). This module is only the tokio I/O around three instances of it:
//!
//! - UDP on [`DemoServer::udp`] (`stun:` / `turn:?transport=udp`),
//! - TCP on [`DemoServer::tcp`] (`turn:?transport=tcp`, RFC 8656 §12.5 framing),
//! - TLS on [`DemoServer::tls`] (`turns:`): a tokio-rustls acceptor in front of a TCP instance.
//!
//! Relays are UDP only (REQUESTED-TRANSPORT 17); TCP allocations (RFC 6062) are refused with
//! 508 Insufficient Capacity.
#![allow(clippy::disallowed_methods)] // the I/O edge: reads the clock

mod certs;
mod driver;
pub mod run;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rand::distr::{Alphanumeric, SampleString};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use turn_server_proto::api::TurnServerApi;
use turn_server_proto::server::TurnServer;
use turn_server_proto::types::TransportType;

use crate::secret::Secret;
use driver::{AbortOnDrop, Driver, Input};

/// The demo's long-term-credential username.
pub const DEMO_USERNAME: &str = "demo";
/// The demo's REALM (RFC 8489 §14.9).
pub const DEMO_REALM: &str = "iceprobe.demo";
/// Length of the random per-run password.
const PASSWORD_LEN: usize = 20;
/// How long a TLS client may take to finish its handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A running in-process STUN/TURN server. Stops when [`shutdown`](DemoServer::shutdown) is
/// called or when it is dropped (every task is aborted, every socket closed).
#[derive(Debug)]
pub struct DemoServer {
    /// STUN and TURN over UDP.
    pub udp: SocketAddr,
    /// STUN and TURN over TCP.
    pub tcp: SocketAddr,
    /// TURN (and STUN) over TLS.
    pub tls: SocketAddr,
    /// Long-term-credential username.
    pub username: String,
    /// Long-term-credential password (random per run).
    pub password: Secret,
    /// The REALM the server announces.
    pub realm: String,
    /// PEM of the demo CA that signed the TLS certificate (SANs: the listening IP and
    /// `localhost`); give it to the client to verify the `turns:` server.
    pub ca_pem: String,
    tasks: Vec<AbortOnDrop>,
}

impl DemoServer {
    /// Bind UDP, TCP and TLS listeners on `ip` (ephemeral ports) and start serving.
    ///
    /// # Errors
    ///
    /// Fails if a socket cannot be bound or the demo certificate cannot be made.
    pub async fn start(ip: IpAddr) -> std::io::Result<DemoServer> {
        let tls = certs::demo_tls(ip)?;
        let password = Secret::new(Alphanumeric.sample_string(&mut rand::rng(), PASSWORD_LEN));

        let udp_socket = Arc::new(UdpSocket::bind(SocketAddr::new(ip, 0)).await?);
        let udp = udp_socket.local_addr()?;
        let tcp_listener = TcpListener::bind(SocketAddr::new(ip, 0)).await?;
        let tcp = tcp_listener.local_addr()?;
        let tls_listener = TcpListener::bind(SocketAddr::new(ip, 0)).await?;
        let tls_addr = tls_listener.local_addr()?;

        let new_server = |transport, listen| {
            let mut server = TurnServer::new(transport, listen, DEMO_REALM.to_owned());
            server.add_user(DEMO_USERNAME.to_owned(), password.expose().to_owned());
            server
        };

        let mut tasks = Vec::new();

        let udp_driver = Driver::new(
            new_server(TransportType::Udp, udp),
            Some(udp_socket.clone()),
        );
        let udp_inputs = udp_driver.inputs();
        spawn(
            &mut tasks,
            driver::read_udp_listener(udp_socket, udp_inputs),
        );
        spawn(&mut tasks, udp_driver.run());

        let tcp_driver = Driver::new(new_server(TransportType::Tcp, tcp), None);
        let inputs = tcp_driver.inputs();
        let serve_tcp = move |stream, client| driver::serve_stream(stream, client, inputs.clone());
        spawn(&mut tasks, accept(tcp_listener, serve_tcp));
        spawn(&mut tasks, tcp_driver.run());

        let tls_driver = Driver::new(new_server(TransportType::Tcp, tls_addr), None);
        let acceptor = TlsAcceptor::from(tls.config);
        let inputs = tls_driver.inputs();
        let serve =
            move |stream, client| serve_tls(acceptor.clone(), stream, client, inputs.clone());
        spawn(&mut tasks, accept(tls_listener, serve));
        spawn(&mut tasks, tls_driver.run());

        Ok(DemoServer {
            udp,
            tcp,
            tls: tls_addr,
            username: DEMO_USERNAME.to_owned(),
            password,
            realm: DEMO_REALM.to_owned(),
            ca_pem: tls.ca_pem,
            tasks,
        })
    }

    /// Stop every listener, relay and connection, and wait for the top-level tasks to end.
    pub async fn shutdown(mut self) {
        for task in &self.tasks {
            task.0.abort();
        }
        for task in &mut self.tasks {
            let _ = (&mut task.0).await;
        }
    }
}

/// Spawn `task`, keeping a handle that aborts it when the server stops or is dropped.
fn spawn(tasks: &mut Vec<AbortOnDrop>, task: impl Future<Output = ()> + Send + 'static) {
    tasks.push(AbortOnDrop(tokio::spawn(task)));
}

/// Accept clients and serve each connection (`serve`, given the stream and the client's
/// address) until it closes or we stop. Dropping this future (task abort) drops the
/// `JoinSet`, which aborts every connection.
async fn accept<F>(listener: TcpListener, serve: impl Fn(TcpStream, SocketAddr) -> F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let Ok((stream, client)) = listener.accept().await else {
            tokio::time::sleep(ACCEPT_BACKOFF).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        connections.spawn(serve(stream, client));
    }
}

/// TLS clients: finish the handshake (bounded in time), then serve the decrypted stream exactly
/// like a TCP one.
async fn serve_tls(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    client: SocketAddr,
    inputs: mpsc::Sender<Input>,
) {
    let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
    if let Ok(Ok(tls)) = handshake.await {
        driver::serve_stream(tls, client, inputs).await;
    }
}

#[cfg(test)]
mod check_tests;
#[cfg(test)]
mod tests;
