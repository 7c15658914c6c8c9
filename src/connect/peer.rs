//! One webrtc 0.21.1 peer connection, set up the way iceprobe needs it: mDNS off (it fails
//! inside network namespaces), sockets bound to one chosen address or every interface, the
//! ICE transport policy, and every callback forwarded as a [`PeerEv`] on a channel.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rtc::ice::mdns::MulticastDnsMode;
use tokio::sync::mpsc;
use webrtc::data_channel::DataChannel;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceCandidateInit, RTCIceCandidateType, RTCIceConnectionState, RTCIceGatheringState,
    RTCIceServer, RTCIceTransportPolicy, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
    SettingEngineBuilder,
};

use super::sweep::TurnLedger;
use crate::candidate::CandidateType;
use crate::model::connect::{ConnectCandidate, Policy, Side};

/// What a peer connection reported, tagged with its side.
pub enum PeerEv {
    /// A local candidate was gathered; `init` is what to signal to the peer.
    Candidate {
        /// The side.
        side: Side,
        /// The candidate as reported.
        candidate: ConnectCandidate,
        /// The candidate as signaled (`a=candidate` line, mid).
        init: RTCIceCandidateInit,
    },
    /// Gathering state changed.
    Gathering(Side, RTCIceGatheringState),
    /// ICE connection state changed.
    Ice(Side, RTCIceConnectionState),
    /// Peer connection state changed.
    Peer(Side, RTCPeerConnectionState),
    /// The remote side opened a data channel.
    DataChannel(Side, Arc<dyn DataChannel>),
}

/// How to build one side.
#[derive(Clone)]
pub struct PeerSetup {
    /// Which side.
    pub side: Side,
    /// Its ICE transport policy.
    pub policy: Policy,
    /// Bind its sockets to this address (`None`: every non-loopback interface).
    pub bind: Option<IpAddr>,
    /// The servers, already converted (UDP only, `?transport` stripped from STUN URLs).
    pub servers: Vec<RTCIceServer>,
    /// (URL given to webrtc, URL as the user gave it), to name candidates' servers.
    pub names: Vec<(String, String)>,
}

struct Handler {
    side: Side,
    names: Vec<(String, String)>,
    tx: mpsc::UnboundedSender<PeerEv>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        let url = (!event.url.is_empty()).then(|| {
            self.names
                .iter()
                .find(|(w, _)| *w == event.url)
                .map_or_else(|| event.url.clone(), |(_, u)| u.clone())
        });
        let Some(candidate) = candidate_from_ice(&event.candidate, url) else {
            return;
        };
        let Ok(init) = event.candidate.to_json() else {
            return;
        };
        let _ = self.tx.send(PeerEv::Candidate {
            side: self.side,
            candidate,
            init,
        });
    }
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        let _ = self.tx.send(PeerEv::Gathering(self.side, state));
    }
    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        let _ = self.tx.send(PeerEv::Ice(self.side, state));
    }
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.tx.send(PeerEv::Peer(self.side, state));
    }
    async fn on_data_channel(&self, dc: Arc<dyn DataChannel>) {
        let _ = self.tx.send(PeerEv::DataChannel(self.side, dc));
    }
}

/// The report's candidate type for webrtc's.
pub fn candidate_type(t: RTCIceCandidateType) -> Option<CandidateType> {
    match t {
        RTCIceCandidateType::Host => Some(CandidateType::Host),
        RTCIceCandidateType::Srflx => Some(CandidateType::Srflx),
        RTCIceCandidateType::Prflx => Some(CandidateType::Prflx),
        RTCIceCandidateType::Relay => Some(CandidateType::Relay),
        _ => None,
    }
}

/// A gathered candidate as reported (fields formatted one by one: webrtc's `Display` glues the
/// related address on without a separator).
pub(super) fn candidate_from_ice(
    c: &webrtc::peer_connection::RTCIceCandidate,
    url: Option<String>,
) -> Option<ConnectCandidate> {
    Some(ConnectCandidate {
        kind: candidate_type(c.typ)?,
        transport: c.protocol.to_string(),
        address: c.address.clone(),
        port: c.port,
        related_address: (!c.related_address.is_empty()).then(|| c.related_address.clone()),
        related_port: (!c.related_address.is_empty()).then_some(c.related_port),
        url: url.or_else(|| c.url.clone()).filter(|u| !u.is_empty()),
    })
}

/// ICE timers: the defaults take 30 s to call a connection failed; our own deadline rules.
const ICE_DISCONNECTED: Duration = Duration::from_secs(4);
const ICE_FAILED: Duration = Duration::from_secs(6);
const ICE_KEEPALIVE: Duration = Duration::from_secs(1);

/// Per data channel: `send` waits while this much is queued (`--throughput` back-pressure).
const SEND_BUFFER_LIMIT: usize = 1024 * 1024;

/// Build one peer connection; its events go to `tx`. Its UDP sockets note their TURN
/// allocations and releases in the returned ledger (see [`super::sweep`]), and show every
/// datagram to `observer` (the candidate pairs' connectivity checks, see `connect::pairs`).
pub async fn build(
    setup: &PeerSetup,
    tx: mpsc::UnboundedSender<PeerEv>,
    observer: super::tap::SharedObserver,
) -> Result<(Arc<dyn PeerConnection>, Arc<TurnLedger>), webrtc::error::Error> {
    let mut engine = SettingEngineBuilder::new()
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .with_ice_timeouts(
            Some(ICE_DISCONNECTED),
            Some(ICE_FAILED),
            Some(ICE_KEEPALIVE),
        );
    if setup.bind.is_some_and(|ip| ip.is_loopback()) {
        engine = engine.with_include_loopback_candidate(true);
    }
    let config = RTCConfigurationBuilder::new()
        .with_ice_servers(setup.servers.clone())
        .with_ice_transport_policy(match setup.policy {
            Policy::All => RTCIceTransportPolicy::All,
            Policy::Relay => RTCIceTransportPolicy::Relay,
        })
        .build();
    let bind = match setup.bind {
        Some(ip) => std::net::SocketAddr::new(ip, 0).to_string(),
        None => "0.0.0.0:0".to_string(),
    };
    let ledger = Arc::new(TurnLedger::default());
    let mut builder = PeerConnectionBuilder::new();
    if let Some(rt) = webrtc::runtime::default_runtime() {
        // Both watchers only read the datagrams: the ledger's allocations, the checks.
        let watchers: Vec<Arc<dyn super::tap::Watcher>> = vec![ledger.clone(), observer];
        builder = builder.with_runtime(super::tap::TapRuntime::wrap(rt, watchers));
    }
    let pc = builder
        .with_configuration(config)
        .with_setting_engine(engine.build())
        .with_handler(Arc::new(Handler {
            side: setup.side,
            names: setup.names.clone(),
            tx,
        }))
        .with_udp_addrs(vec![bind])
        .with_data_channel_send_buffer_limit(SEND_BUFFER_LIMIT)
        .build()
        .await?;
    Ok((Arc::new(pc), ledger))
}
