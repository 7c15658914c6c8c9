//! One side of a connect run: builds its peer connection, offers or answers over a [`Signal`],
//! trickles candidates, runs the echo, keeps the deadline, and always closes the peer connection
//! (which releases its TURN allocations) before reporting.
#![allow(clippy::disallowed_methods)] // the I/O edge: reads the clock

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use webrtc::data_channel::{DataChannel, RTCDataChannelInit};
use webrtc::peer_connection::{
    PeerConnection, RTCIceCandidateInit, RTCIceConnectionState, RTCIceGatheringState,
    RTCPeerConnectionState, RTCSessionDescription,
};

use super::bulk::{receive_bulk, send_bulk, BULK_LABEL};
use super::echo::run_echo;
use super::pairs;
use super::peer::{self, PeerEv, PeerSetup};
use super::signal::{parse_candidate, sdp_candidates, Signal, SignalError, SignalMsg};
use super::stats::ice_stats;
use crate::model::connect::{
    CandidateEvent, ConnectCandidate, ConnectEvent, EchoReport, Origin, SideReport, StateEvent,
    StateMachine, ThroughputReport, Timeline,
};

/// The data channel's label.
pub const CHANNEL_LABEL: &str = "iceprobe-echo";
/// How long closing a peer connection may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// What one side needs besides its peer setup.
pub struct SideRun {
    /// Peer connection settings.
    pub setup: PeerSetup,
    /// When the run started (all `elapsed_ms` count from here).
    pub start: Instant,
    /// Nothing runs past this.
    pub deadline: Instant,
    /// Echo messages to send.
    pub count: u32,
    /// `--throughput`: bulk-send for this long after the echo (offerer only).
    pub throughput: Option<Duration>,
    /// Streamed events go here.
    pub events: mpsc::UnboundedSender<ConnectEvent>,
    /// Ctrl-C.
    pub cancel: watch::Receiver<bool>,
}

/// How a side ended.
pub struct SideOutcome {
    /// The report.
    pub report: SideReport,
    /// A signaling failure, if that is what ended it.
    pub signal_error: Option<SignalError>,
    /// The peer connection could not be built (e.g. no such local address).
    pub build_error: Option<String>,
}

struct State {
    run: SideRun,
    timeline: Timeline,
    local: Vec<ConnectCandidate>,
    remote: Vec<ConnectCandidate>,
    echo: Option<EchoReport>,
    throughput: Option<ThroughputReport>,
}

impl State {
    fn ms(&self) -> u64 {
        u64::try_from(self.run.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
    fn state(&self, machine: StateMachine, state: String) {
        let _ = self.run.events.send(ConnectEvent::State(StateEvent {
            side: self.run.setup.side,
            machine,
            state,
            elapsed_ms: self.ms(),
        }));
    }
    fn candidate(&mut self, origin: Origin, c: ConnectCandidate) {
        let list = match origin {
            Origin::Local => &mut self.local,
            Origin::Remote => &mut self.remote,
        };
        if list.contains(&c) {
            return;
        }
        list.push(c.clone());
        let _ = self
            .run
            .events
            .send(ConnectEvent::Candidate(CandidateEvent {
                side: self.run.setup.side,
                origin,
                elapsed_ms: self.ms(),
                candidate: c,
            }));
    }
}

fn description(d: &RTCSessionDescription) -> SignalMsg {
    SignalMsg::Description {
        sdp_type: d.sdp_type.to_string(),
        sdp: d.sdp.clone(),
    }
}

/// Run one side to the end. `offer`: this side creates the offer and the data channel.
pub async fn run_side(run: SideRun, offer: bool, mut signal: Box<dyn Signal>) -> SideOutcome {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let observer = super::tap::SharedObserver::default();
    let (pc, ledger) = match peer::build(&run.setup, tx, observer.clone()).await {
        Ok(built) => built,
        Err(e) => {
            let report = empty_report(&run, Timeline::default());
            return SideOutcome {
                report,
                signal_error: None,
                build_error: Some(format!(
                    "side {}: cannot build the peer connection: {e}",
                    run.setup.side
                )),
            };
        }
    };
    let mut st = State {
        run,
        timeline: Timeline::default(),
        local: Vec::new(),
        remote: Vec::new(),
        echo: None,
        throughput: None,
    };
    let signal_error = drive(&pc, offer, signal.as_mut(), &mut rx, &mut st)
        .await
        .err();
    // Stats before closing; then close on every path (TURN allocations are released on close).
    let stats = ice_stats(&pc).await;
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, pc.close()).await;
    drop(pc);
    // webrtc released what it knew of; an allocation whose answer never reached it (lost, or
    // in flight at the deadline or a signal) is released here, from the same address.
    super::sweep::sweep(&ledger, &st.run.setup.servers, super::sweep::SWEEP_GRACE).await;
    for c in stats.remote {
        if c.kind == crate::candidate::CandidateType::Prflx {
            st.candidate(Origin::Remote, c);
        }
    }
    for c in stats.local {
        if c.kind == crate::candidate::CandidateType::Prflx {
            st.candidate(Origin::Local, c);
        }
    }
    let obs = observer.lock().unwrap_or_else(|p| p.into_inner());
    let seen = obs.pairs();
    // webrtc names no server for srflx candidates: the wire shows which one answered.
    for c in st.local.iter_mut() {
        if c.kind == crate::candidate::CandidateType::Srflx && c.url.is_none() {
            if let Some(server) = pairs::endpoint_of(c).and_then(|e| obs.srflx_server(e)) {
                c.url = Some(server_name(&st.run.setup.names, server));
            }
        }
    }
    drop(obs);
    // Local prflx: how the peer saw our checks, when that is no candidate we gathered.
    for c in pairs::local_prflx(&seen, &st.local) {
        st.candidate(Origin::Local, c);
    }
    // The ICE transport's candidates carry no server URL: take it from the gathered ones.
    let with_url = |c: &mut ConnectCandidate| {
        if c.url.is_none() {
            c.url = st
                .local
                .iter()
                .find(|l| l.kind == c.kind && l.address == c.address && l.port == c.port)
                .and_then(|l| l.url.clone());
        }
    };
    let mut selected = stats.selected;
    if let Some(sel) = selected.as_mut() {
        with_url(&mut sel.local);
        sel.description = super::cause::describe_pair(&sel.local, &sel.remote);
    }
    // Every pair from the checks seen on the wire; the stats API alone knows only the selected
    // pair (the fallback when nothing was seen, e.g. the run ended before any check).
    let mut pairs = if seen.is_empty() {
        stats.pairs
    } else {
        pairs::pair_reports(&seen, &st.local, &st.remote)
    };
    for p in &mut pairs {
        with_url(&mut p.local);
        let is_selected = selected.as_ref().is_some_and(|s| {
            s.local.endpoint() == p.local.endpoint() && s.remote.endpoint() == p.remote.endpoint()
        });
        // The agent nominated the pair it selected (RFC 8445 §8.1.1), whichever side sent
        // USE-CANDIDATE.
        p.nominated |= is_selected;
    }
    let mut report = empty_report(&st.run, st.timeline.clone());
    report.local_candidates = st.local;
    report.remote_candidates = st.remote;
    report.pairs = pairs;
    report.selected = selected;
    report.echo = st.echo;
    report.throughput = st.throughput;
    SideOutcome {
        report,
        signal_error,
        build_error: None,
    }
}

/// The configured URL whose host is `server`'s IP literal and port, or `stun:ADDR:PORT` (a
/// name would need the lookup webrtc made; the address is what answered).
fn server_name(names: &[(String, String)], server: std::net::SocketAddr) -> String {
    names
        .iter()
        .find(|(_, user)| {
            crate::ice_url::parse(user).is_ok_and(|u| {
                u.port == server.port()
                    && matches!(u.host, crate::ice_url::Host::Ip(ip) if ip == server.ip())
            })
        })
        .map(|(_, user)| user.clone())
        .unwrap_or_else(|| format!("stun:{server}"))
}

fn empty_report(run: &SideRun, timeline: Timeline) -> SideReport {
    SideReport {
        side: run.setup.side,
        policy: run.setup.policy,
        timeline,
        local_candidates: Vec::new(),
        remote_candidates: Vec::new(),
        pairs: Vec::new(),
        selected: None,
        echo: None,
        throughput: None,
    }
}

fn failed(e: impl std::fmt::Display) -> SignalError {
    SignalError::Garbage(e.to_string())
}

/// The event loop of one side; returns when the echo is done, ICE failed, the deadline passed,
/// Ctrl-C, or signaling failed.
async fn drive(
    pc: &Arc<dyn PeerConnection>,
    offer: bool,
    signal: &mut dyn Signal,
    rx: &mut mpsc::UnboundedReceiver<PeerEv>,
    st: &mut State,
) -> Result<(), SignalError> {
    let trickle = signal.trickle();
    let deadline = st.run.deadline;
    let count = st.run.count;
    let (opened_tx, mut opened_rx) = mpsc::unbounded_channel::<()>();
    type Results = (Option<EchoReport>, Option<ThroughputReport>);
    let mut echo_task: Option<tokio::task::JoinHandle<Results>> = None;
    let mut bulk_rx_task: Option<tokio::task::JoinHandle<Option<ThroughputReport>>> = None;
    let mut bulk_tx: Option<Arc<dyn DataChannel>> = None;
    let bulk_for = st.run.throughput;
    let start_echo = |dc: Arc<dyn DataChannel>, bulk: Option<Arc<dyn DataChannel>>| {
        let opened = opened_tx.clone();
        tokio::spawn(async move {
            let echo = run_echo(dc, count, deadline, opened).await;
            let tp = match (bulk, bulk_for) {
                (Some(b), Some(d)) if echo.is_some() => send_bulk(b, d, deadline).await,
                _ => None,
            };
            (echo, tp)
        })
    };
    let mut description_sent = false;
    let mut have_remote = false;
    let mut connected = false;
    if offer {
        let init = RTCDataChannelInit {
            ordered: false,
            max_retransmits: Some(0),
            ..RTCDataChannelInit::default()
        };
        let dc = pc
            .create_data_channel(CHANNEL_LABEL, Some(init))
            .await
            .map_err(failed)?;
        if st.run.throughput.is_some() {
            bulk_tx = Some(
                pc.create_data_channel(BULK_LABEL, Some(RTCDataChannelInit::default()))
                    .await
                    .map_err(failed)?,
            );
        }
        echo_task = Some(start_echo(dc, bulk_tx.take()));
        let o = pc.create_offer(None).await.map_err(failed)?;
        pc.set_local_description(o.clone()).await.map_err(failed)?;
        if trickle {
            signal.send(description(&o)).await?;
            description_sent = true;
        }
    }
    let mut cancel = st.run.cancel.clone();
    let mut signal_open = true;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline.into()) => {
                st.state(StateMachine::Peer, "deadline".into());
                if !have_remote {
                    return Err(SignalError::Vanished(
                        "no description from the peer before the deadline".into(),
                    ));
                }
                return Ok(());
            }
            _ = cancel.changed() => return Ok(()),
            Some(()) = opened_rx.recv() => {
                st.timeline.data_channel_open_ms.get_or_insert(st.ms());
                st.state(StateMachine::DataChannel, "open".into());
            }
            done = async { echo_task.as_mut().expect("guarded").await }, if echo_task.is_some() => {
                let (echo, tp) = done.unwrap_or((None, None));
                st.echo = echo;
                st.throughput = tp;
                if let Some(rx_task) = bulk_rx_task.take() {
                    // The answerer stays until the offerer's bulk transfer is confirmed.
                    st.throughput = rx_task.await.ok().flatten();
                }
                return Ok(());
            }
            ev = rx.recv() => {
                let Some(ev) = ev else { return Ok(()) };
                match ev {
                    PeerEv::Candidate { candidate, init, .. } => {
                        st.candidate(Origin::Local, candidate);
                        if trickle {
                            signal.send(SignalMsg::Candidate {
                                candidate: init.candidate,
                                sdp_mid: init.sdp_mid,
                                sdp_mline_index: init.sdp_mline_index,
                            }).await?;
                        }
                    }
                    PeerEv::Gathering(_, s) => {
                        if s == RTCIceGatheringState::Complete {
                            st.timeline.gathering_done_ms.get_or_insert(st.ms());
                        }
                        st.state(StateMachine::Gathering, s.to_string());
                        if s == RTCIceGatheringState::Complete && !trickle && !description_sent
                            && (offer || have_remote)
                        {
                            if let Some(d) = pc.local_description().await {
                                signal.send(description(&d)).await?;
                                description_sent = true;
                            }
                        }
                    }
                    PeerEv::Ice(_, s) => {
                        match s {
                            RTCIceConnectionState::Checking => {
                                st.timeline.checking_ms.get_or_insert(st.ms());
                            }
                            RTCIceConnectionState::Connected | RTCIceConnectionState::Completed => {
                                connected = true;
                                st.timeline.connected_ms.get_or_insert(st.ms());
                            }
                            RTCIceConnectionState::Failed => {
                                st.timeline.failed_ms.get_or_insert(st.ms());
                            }
                            _ => {}
                        }
                        st.state(StateMachine::Ice, s.to_string());
                        if s == RTCIceConnectionState::Failed {
                            return Ok(());
                        }
                    }
                    PeerEv::Peer(_, s) => {
                        st.state(StateMachine::Peer, s.to_string());
                        if s == RTCPeerConnectionState::Failed {
                            st.timeline.failed_ms.get_or_insert(st.ms());
                            return Ok(());
                        }
                    }
                    PeerEv::DataChannel(_, dc) => {
                        let label = dc.label().await.unwrap_or_default();
                        if label == BULK_LABEL && !offer && bulk_rx_task.is_none() {
                            bulk_rx_task = Some(tokio::spawn(receive_bulk(dc, deadline)));
                        } else if label == CHANNEL_LABEL && echo_task.is_none() && !offer {
                            echo_task = Some(start_echo(dc, None));
                        }
                    }
                }
            }
            msg = signal.recv(), if signal_open => {
                match msg {
                    Err(e) => {
                        if connected { signal_open = false; continue; }
                        return Err(e);
                    }
                    Ok(None) => {
                        signal_open = false;
                        if !have_remote {
                            return Err(SignalError::Vanished(
                                "the signaling channel closed before the peer's description arrived".into(),
                            ));
                        }
                    }
                    Ok(Some(SignalMsg::Description { sdp_type, sdp })) => {
                        if have_remote {
                            return Err(SignalError::Garbage("a second description arrived".into()));
                        }
                        let want = if offer { "answer" } else { "offer" };
                        if sdp_type != want {
                            return Err(SignalError::Garbage(format!(
                                "expected an {want} from the peer, got {sdp_type:?}"
                            )));
                        }
                        for c in sdp_candidates(&sdp) {
                            st.candidate(Origin::Remote, c);
                        }
                        let desc = if offer {
                            RTCSessionDescription::answer(sdp)
                        } else {
                            RTCSessionDescription::offer(sdp)
                        }
                        .map_err(|e| SignalError::Garbage(format!("the peer's {want} is not valid SDP: {e}")))?;
                        pc.set_remote_description(desc).await.map_err(|e| {
                            SignalError::Garbage(format!("the peer's {want} was refused: {e}"))
                        })?;
                        have_remote = true;
                        if !offer {
                            let a = pc.create_answer(None).await.map_err(failed)?;
                            pc.set_local_description(a.clone()).await.map_err(failed)?;
                            if trickle {
                                signal.send(description(&a)).await?;
                                description_sent = true;
                            }
                        }
                    }
                    Ok(Some(SignalMsg::Candidate { candidate, sdp_mid, sdp_mline_index })) => {
                        if !have_remote {
                            return Err(SignalError::Garbage(
                                "a candidate arrived before the description".into(),
                            ));
                        }
                        let Some(c) = parse_candidate(&candidate) else {
                            return Err(SignalError::Garbage(format!(
                                "not an ICE candidate: {:?}",
                                candidate.chars().take(80).collect::<String>()
                            )));
                        };
                        st.candidate(Origin::Remote, c);
                        let init = RTCIceCandidateInit {
                            candidate,
                            sdp_mid,
                            sdp_mline_index,
                            ..RTCIceCandidateInit::default()
                        };
                        pc.add_ice_candidate(init).await.map_err(|e| {
                            SignalError::Garbage(format!("the peer's candidate was refused: {e}"))
                        })?;
                    }
                }
            }
        }
    }
}
