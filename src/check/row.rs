//! One `check` row as a sans-IO machine: a server address over one transport, stage by stage —
//! the STUN Binding, the 401 challenge, Allocate, CreatePermission, ChannelBind, real data
//! through the relay (a Send indication and ChannelData, echoed by a second allocation we own)
//! and the release. Two TURN clients: A carries the row's stages, B is the echo peer.
//!
//! The machine never touches a socket or the clock: [`Row::handle_input`] takes `now`, the
//! side (the link: 0 is A's, 1 is B's) and the bytes; [`Row::poll_transmit`] says what to send
//! on which side; timers come from [`Row::poll_timeout`]; [`Row::poll_event`] reports each
//! phase entered and the end. `check::probe` drives it over real links (`net::driver`);
//! `check/critical_path.rs` drives it on a virtual clock and counts its round trips.
//!
//! The critical path is kept at the protocol minimum: the Binding runs beside A's Allocate, B's
//! Allocate at the same time, permission beside channel bind, both echoes at once, both
//! releases at once — 6 round trips for TURN over UDP (see BENCHMARKS.md).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::stages::{peer_allocation_failure, skip_rest};
use crate::model::check::{
    AllocationInfo, BindingInfo, ChallengeInfo, CheckRow, EchoInfo, Nothing, Stage,
};
use crate::model::{ms, Failure, Phase, Reason};
use crate::net::driver::{LinkDown, Stop};
use crate::probe::explain::ErrorContext;
use crate::probe::failure::{stop_failure, turn_failure};
use crate::probe::session::Release;
use crate::probe::Budget;
use crate::proto::reject::Reject;
use crate::proto::turn::{TurnClient, TurnEvent, TurnFailure, TurnOp};
use crate::proto::SansIo;

/// Channel number used for the ChannelData echo (RFC 8656 §12: 0x4000–0x4FFF).
pub const CHANNEL: u16 = 0x4000;

/// What a row needs besides its clients.
#[derive(Debug, Clone)]
pub struct RowSettings {
    /// What refines the causes of 401s (REST credentials, an expired REST username).
    pub err_ctx: ErrorContext,
    /// Longest wait for the echoes, within the budget.
    pub echo_timeout: Duration,
    /// The run's deadline and the release reserve inside it.
    pub budget: Budget,
    /// Makes the echo payloads of this row unique (random in a real run).
    pub nonce: u64,
}

/// The phases of a row, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowPhase {
    /// Binding ∥ A: 401 + Allocate ∥ B: 401 + Allocate.
    Allocate,
    /// A: CreatePermission(B) ∥ A: ChannelBind(B) ∥ B: CreatePermission(A).
    Permission,
    /// A → relay A → relay B → B and back, by Send indication and by ChannelData.
    Echo,
    /// Refresh LIFETIME 0 on both.
    Release,
}

/// What the row reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowEvent {
    /// A phase began.
    Entered(RowPhase),
    /// The row is finished: [`Row::into_row`] has every stage.
    Finished,
}

/// One allocation of the row and its link's state.
struct Side {
    client: TurnClient,
    /// How its link went down (it sends and receives nothing more), if it did.
    down: Option<LinkDown>,
    /// Why this side's wait in the current phase ended before its answers.
    stopped: Option<Stop>,
    /// The events of the current phase.
    events: Vec<TurnEvent>,
    /// Its release, once the row releases.
    release: Option<Release>,
}

impl Side {
    fn new(client: TurnClient) -> Side {
        Side {
            client,
            down: None,
            stopped: None,
            events: Vec::new(),
            release: None,
        }
    }
}

/// Where the row is.
#[derive(Debug)]
enum State {
    Allocate {
        until: Instant,
    },
    Permission {
        until: Instant,
        a_relayed: SocketAddr,
        b_relayed: SocketAddr,
    },
    Echo {
        until: Instant,
        started: Instant,
        peer: SocketAddr,
        send_payload: Vec<u8>,
        chan_payload: Vec<u8>,
        want_chan: bool,
        rejected_before: u64,
        got_send: Option<Duration>,
        got_chan: Option<Duration>,
        echoed: u32,
    },
    Release {
        /// Per side: whether its release result goes into the row.
        record: [bool; 2],
    },
    Done,
}

/// A check row in progress.
pub struct Row {
    row: CheckRow,
    settings: RowSettings,
    sides: Vec<Side>,
    /// Which side plays A (the sides swap when only B's Allocate won the race for a quota).
    a: usize,
    /// Why the echo peer's link could not be opened (TURN rows only).
    peer_unopened: Option<Failure>,
    state: State,
    cancelled: bool,
    events: VecDeque<RowEvent>,
}

impl std::fmt::Debug for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Row")
            .field("state", &self.state)
            .field("a", &self.a)
            .finish_non_exhaustive()
    }
}

impl Row {
    /// Start a row at `now`: `row` has its DNS, connect and TLS stages filled; `a` is the
    /// client on link 0; `b` the echo peer's on link 1, or why its link could not be opened
    /// (`None` for a STUN-only row). The Binding, A's Allocate and B's Allocate go out at once.
    pub fn new(
        now: Instant,
        row: CheckRow,
        settings: RowSettings,
        a: TurnClient,
        b: Option<Result<TurnClient, Failure>>,
    ) -> Row {
        let mut sides = vec![Side::new(a)];
        let mut peer_unopened = None;
        match b {
            Some(Ok(client)) => sides.push(Side::new(client)),
            Some(Err(f)) => peer_unopened = Some(f),
            None => {}
        }
        let until = settings.budget.probe_deadline();
        let mut r = Row {
            row,
            settings,
            sides,
            a: 0,
            peer_unopened,
            state: State::Allocate { until },
            cancelled: false,
            events: VecDeque::new(),
        };
        r.sides[0].client.binding(now);
        if r.row.turn {
            r.sides[0].client.allocate(now);
        }
        if let Some(b) = r.sides.get_mut(1) {
            b.client.allocate(now);
        }
        r.events.push_back(RowEvent::Entered(RowPhase::Allocate));
        r.pump(now);
        r
    }

    /// The row with every stage, once [`RowEvent::Finished`] was reported (before that, the
    /// stages not yet reached say so).
    pub fn into_row(self) -> CheckRow {
        self.row
    }

    /// Whether the row is finished.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The index of B's side, when there is one.
    fn b(&self) -> Option<usize> {
        (self.sides.len() == 2).then_some(1 - self.a)
    }

    /// One message from the server on `side`'s link.
    pub fn handle_input(&mut self, now: Instant, side: usize, bytes: &[u8]) {
        if let Some(s) = self.sides.get_mut(side) {
            s.client.handle_input(now, bytes);
        }
        self.pump(now);
    }

    /// Something arrived on `side`'s link that the client must not see.
    pub fn reject(&mut self, side: usize, r: Reject) {
        if let Some(s) = self.sides.get_mut(side) {
            s.client.reject(r);
        }
    }

    /// Timers: retransmissions, the phase's end, the release's wait.
    pub fn handle_timeout(&mut self, now: Instant) {
        for s in self.sides.iter_mut().filter(|s| s.down.is_none()) {
            s.client.handle_timeout(now);
        }
        match &self.state {
            State::Allocate { until }
            | State::Permission { until, .. }
            | State::Echo { until, .. }
                if now >= *until =>
            {
                self.stop_waiting(|| Stop::Deadline)
            }
            State::Release { .. } => {
                for s in &mut self.sides {
                    if let Some(r) = s.release.as_mut() {
                        r.on_timeout(now);
                    }
                }
            }
            _ => {}
        }
        self.pump(now);
    }

    /// Ctrl-C or SIGTERM: the probe stops waiting at once; the release still runs.
    pub fn handle_cancel(&mut self, now: Instant) {
        self.cancelled = true;
        self.stop_waiting(|| Stop::Cancelled);
        self.pump(now);
    }

    /// `side`'s link went down: it sends and receives nothing more.
    pub fn handle_link_down(&mut self, now: Instant, side: usize, down: LinkDown) {
        if side >= self.sides.len() {
            return;
        }
        let waiting = !self.answered(side);
        let s = &mut self.sides[side];
        if let Some(r) = s.release.as_mut() {
            r.on_link_down();
        } else if waiting && s.stopped.is_none() {
            s.stopped = Some(Stop::Link {
                link: side,
                down: down.clone(),
            });
        }
        s.down = Some(down);
        self.pump(now);
    }

    /// The next message to send, and on which side's link.
    pub fn poll_transmit(&mut self) -> Option<(usize, Vec<u8>)> {
        for (i, s) in self.sides.iter_mut().enumerate() {
            while let Some(b) = s.client.poll_transmit() {
                if s.down.is_none() {
                    return Some((i, b));
                }
            }
        }
        None
    }

    /// When [`Row::handle_timeout`] must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let clients = self
            .sides
            .iter()
            .filter(|s| s.down.is_none())
            .filter_map(|s| s.client.poll_timeout());
        let releases = self
            .sides
            .iter()
            .filter_map(|s| s.release.as_ref().and_then(Release::until));
        let phase = match &self.state {
            State::Allocate { until }
            | State::Permission { until, .. }
            | State::Echo { until, .. } => Some(*until),
            State::Release { .. } | State::Done => None,
        };
        clients.chain(releases).chain(phase).min()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<RowEvent> {
        self.events.pop_front()
    }

    /// Every side still waiting for answers in a probe phase stops, for `why`; a side that has
    /// all of its answers keeps them as they are.
    fn stop_waiting(&mut self, why: impl Fn() -> Stop) {
        if matches!(self.state, State::Release { .. } | State::Done) {
            return;
        }
        for i in 0..self.sides.len() {
            if !self.answered(i) && self.sides[i].stopped.is_none() {
                self.sides[i].stopped = Some(why());
            }
        }
    }

    /// Hand every client event to the phase, and move on while phases end.
    fn pump(&mut self, now: Instant) {
        loop {
            for i in 0..self.sides.len() {
                while let Some(ev) = self.sides[i].client.poll_event() {
                    self.on_event(i, ev, now);
                }
            }
            if !self.phase_over() {
                return;
            }
            self.advance(now);
        }
    }

    fn on_event(&mut self, i: usize, ev: TurnEvent, now: Instant) {
        let is_a = i == self.a;
        match &mut self.state {
            State::Echo {
                started,
                send_payload,
                chan_payload,
                got_send,
                got_chan,
                echoed,
                ..
            } => {
                if let TurnEvent::Data {
                    data, peer: from, ..
                } = &ev
                {
                    if is_a {
                        // Once a channel is bound to B, the server returns both echoes as
                        // ChannelData (RFC 8656 §12.6): tell them apart by payload, not framing.
                        if data == send_payload {
                            got_send.get_or_insert(now - *started);
                        } else if data == chan_payload {
                            got_chan.get_or_insert(now - *started);
                        }
                    } else if let Some(from) = from {
                        // B echoes what it receives back to where it came from.
                        self.sides[i].client.send_indication(*from, data);
                        *echoed += 1;
                    }
                }
            }
            State::Release { .. } => {
                if let Some(r) = self.sides[i].release.as_mut() {
                    r.on_event(&ev);
                }
            }
            State::Done => {}
            State::Allocate { .. } | State::Permission { .. } => self.sides[i].events.push(ev),
        }
    }

    /// Whether side `i` is through with the current phase: all its answers are in, or it
    /// stopped waiting; a release waits for its own answer, Ctrl-C or not.
    fn side_done(&self, i: usize) -> bool {
        match &self.state {
            State::Release { .. } => self.sides[i].release.as_ref().is_none_or(Release::is_done),
            State::Done => true,
            _ => self.sides[i].stopped.is_some() || self.answered(i),
        }
    }

    /// Whether side `i` has every answer the current probe phase waits for.
    fn answered(&self, i: usize) -> bool {
        let s = &self.sides[i];
        let is_a = i == self.a;
        let has = |f: &dyn Fn(&TurnEvent) -> bool| s.events.iter().any(f);
        match &self.state {
            State::Allocate { .. } if is_a => {
                let bound = has(&|e| {
                    matches!(
                        e,
                        TurnEvent::Bound { .. }
                            | TurnEvent::Failed {
                                op: TurnOp::Binding,
                                ..
                            }
                    )
                });
                let allocated = has(&|e| {
                    matches!(
                        e,
                        TurnEvent::Allocated { .. }
                            | TurnEvent::Failed {
                                op: TurnOp::Allocate,
                                ..
                            }
                    )
                });
                bound && (!self.row.turn || allocated)
            }
            State::Allocate { .. } => {
                has(&|e| matches!(e, TurnEvent::Allocated { .. } | TurnEvent::Failed { .. }))
            }
            State::Permission { .. } if is_a => {
                has(&|e| {
                    matches!(
                        e,
                        TurnEvent::PermissionCreated { .. }
                            | TurnEvent::Failed {
                                op: TurnOp::CreatePermission,
                                ..
                            }
                    )
                }) && has(&|e| {
                    matches!(
                        e,
                        TurnEvent::ChannelBound { .. }
                            | TurnEvent::Failed {
                                op: TurnOp::ChannelBind,
                                ..
                            }
                    )
                })
            }
            State::Permission { .. } => has(&|e| {
                matches!(
                    e,
                    TurnEvent::PermissionCreated { .. } | TurnEvent::Failed { .. }
                )
            }),
            State::Echo {
                want_chan,
                got_send,
                got_chan,
                ..
            } if is_a => got_send.is_some() && (!want_chan || got_chan.is_some()),
            State::Echo {
                want_chan, echoed, ..
            } => *echoed >= if *want_chan { 2 } else { 1 },
            State::Release { .. } | State::Done => true,
        }
    }

    fn phase_over(&self) -> bool {
        !self.is_done() && (0..self.sides.len()).all(|i| self.side_done(i))
    }

    fn advance(&mut self, now: Instant) {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Allocate { .. } => self.allocated(now),
            State::Permission {
                a_relayed,
                b_relayed,
                ..
            } => self.permitted(now, a_relayed, b_relayed),
            State::Echo {
                peer,
                send_payload,
                want_chan,
                rejected_before,
                got_send,
                got_chan,
                ..
            } => {
                self.echoed(
                    peer,
                    send_payload.len(),
                    want_chan,
                    rejected_before,
                    got_send,
                    got_chan,
                );
                self.release(now, [true, true]);
            }
            State::Release { record } => {
                self.released(record);
                self.events.push_back(RowEvent::Finished);
            }
            State::Done => {}
        }
    }

    /// Enter a phase: the sides' answers of the last one are forgotten. A side whose link is
    /// down is through with it at once; after Ctrl-C every side is, as soon as its requests
    /// are out.
    fn enter(&mut self, phase: RowPhase, state: State) {
        self.state = state;
        for (i, s) in self.sides.iter_mut().enumerate() {
            s.events.clear();
            s.stopped = match (&s.down, self.cancelled) {
                (Some(down), _) => Some(Stop::Link {
                    link: i,
                    down: down.clone(),
                }),
                (None, true) => Some(Stop::Cancelled),
                (None, false) => None,
            };
        }
        self.events.push_back(RowEvent::Entered(phase));
    }

    /// Why side `i` stopped waiting (the deadline when it was not told otherwise).
    fn stop_of(&self, i: usize) -> &Stop {
        self.sides[i].stopped.as_ref().unwrap_or(&Stop::Deadline)
    }

    /// The failure of side `i`'s operation in phase `op` that got no answer.
    fn unanswered(&self, i: usize, op: Phase) -> Failure {
        let rejected = self.sides[i].client.rejects().summary();
        stop_failure(
            self.stop_of(i),
            op,
            self.row.transport,
            self.port(),
            rejected.as_deref(),
        )
    }

    fn port(&self) -> u16 {
        self.row.address.map_or(0, |a| a.port())
    }

    fn turn_stage<T>(&self, op: TurnOp, failure: &TurnFailure) -> Stage<T> {
        Stage::fail(
            None,
            turn_failure(
                op,
                failure,
                self.row.transport,
                self.port(),
                &self.settings.err_ctx,
            ),
        )
    }

    /// The Allocate phase ended: record the Binding, the challenge and the Allocate, and go on
    /// to the permissions — or release, when there is nothing to relay between.
    fn allocated(&mut self, now: Instant) {
        let turn = self.row.turn;
        let relayed = |s: &Side| {
            s.events.iter().find_map(|e| match e {
                TurnEvent::Allocated { relayed, .. } => Some(*relayed),
                _ => None,
            })
        };
        // Both allocations raced: under a quota (486) or a full port range (508) only one of
        // them may win. If B won, it carries the row and A's refusal becomes the peer's
        // failure, so the row reads as it would had A been allocated first.
        if let Some(b) = self.b() {
            let a = self.a;
            let refused = self.sides[a].events.iter().position(|e| {
                matches!(e, TurnEvent::Failed {
                    op: TurnOp::Allocate,
                    failure: TurnFailure::Rejected(err),
                } if matches!(err.code, 486 | 508))
            });
            let won = self.sides[b]
                .events
                .iter()
                .position(|e| matches!(e, TurnEvent::Allocated { .. }));
            if let (Some(i), Some(j)) = (refused, won) {
                // B's client carries the row from now on; the row's record keeps A's Binding
                // and challenge with B's Allocate, and B's record A's refusal.
                let won = self.sides[b].events[j].clone();
                let lost = std::mem::replace(&mut self.sides[a].events[i], won);
                self.sides[b].events[j] = lost;
                let (x, y) = self.sides.split_at_mut(1);
                std::mem::swap(&mut x[0].events, &mut y[0].events);
                self.a = b;
            }
        }
        let a = self.a;
        for ev in self.sides[a].events.clone() {
            self.record_allocate_event(&ev);
        }
        if self.sides[a].stopped.is_some() {
            if !self.row.binding.is_ok() && !self.row.binding.is_failed() {
                self.row.binding = Stage::fail(None, self.unanswered(a, Phase::Stun));
            }
            let unanswered = self.unanswered(a, Phase::TurnAllocate);
            if turn && !self.row.challenge.is_ok() && !self.row.challenge.is_failed() {
                self.row.challenge = Stage::fail(None, unanswered);
            } else if turn
                && self.row.challenge.is_ok()
                && !self.row.allocate.is_ok()
                && !self.row.allocate.is_failed()
            {
                self.row.allocate = Stage::fail(None, unanswered);
            }
        }
        let Some(a_relayed) = relayed(&self.sides[a]) else {
            skip_rest(
                &mut self.row,
                if turn { "no allocation" } else { "STUN only" },
            );
            return self.release(now, [false, false]);
        };
        if let Some(f) = self.peer_unopened.take() {
            let why = format!("could not open the peer connection: {}", f.cause);
            self.row.permission = Stage::fail(None, Failure::new(Phase::Relay, f.reason, why));
            skip_rest(&mut self.row, "no peer allocation");
            return self.release(now, [true, true]);
        }
        let Some(b) = self.b() else {
            return self.release(now, [true, true]);
        };
        let Some(b_relayed) = relayed(&self.sides[b]) else {
            let refused = self.sides[b].events.iter().find_map(|e| match e {
                TurnEvent::Failed { failure, .. } => Some(failure.clone()),
                _ => None,
            });
            self.row.permission = peer_allocation_failure(match refused {
                Some(f) => self.turn_stage(TurnOp::Allocate, &f),
                None => Stage::fail(None, self.unanswered(b, Phase::TurnAllocate)),
            });
            skip_rest(&mut self.row, "no peer allocation");
            return self.release(now, [true, true]);
        };
        let until = self.settings.budget.probe_deadline();
        self.enter(
            RowPhase::Permission,
            State::Permission {
                until,
                a_relayed,
                b_relayed,
            },
        );
        self.sides[a].client.create_permission(now, b_relayed);
        self.sides[a].client.channel_bind(now, b_relayed, CHANNEL);
        self.sides[b].client.create_permission(now, a_relayed);
    }

    /// One event of A's Allocate phase into its stage.
    fn record_allocate_event(&mut self, ev: &TurnEvent) {
        match ev {
            TurnEvent::Bound {
                mapped,
                rtt,
                software,
                fingerprint,
                sends,
            } => {
                self.row.binding = Stage::ok(
                    ms(*rtt),
                    BindingInfo {
                        mapped: *mapped,
                        software: software.clone(),
                        fingerprint: *fingerprint == Some(true),
                        sends: *sends,
                    },
                )
            }
            TurnEvent::Challenged { realm, rtt } => {
                self.row.challenge = Stage::ok(
                    ms(*rtt),
                    ChallengeInfo {
                        realm: realm.clone(),
                    },
                )
            }
            TurnEvent::Allocated {
                relayed,
                mapped,
                lifetime,
                rtt,
                software,
                integrity,
            } => {
                self.row.allocate = Stage::ok(
                    ms(*rtt),
                    AllocationInfo {
                        relayed: *relayed,
                        mapped: *mapped,
                        lifetime_s: *lifetime,
                        integrity: *integrity,
                        software: software.clone(),
                    },
                );
                if !self.row.challenge.is_ok() {
                    self.row.challenge =
                        Stage::not_checked("the server allocated without asking for credentials");
                }
            }
            TurnEvent::Failed { op, failure } => {
                // 300 with ALTERNATE-SERVER is not a failure of the deployment: a client
                // follows it, and so do we (in the next row). Without the attribute it is one.
                if let (TurnOp::Allocate, TurnFailure::Rejected(e)) = (op, failure) {
                    if let (300, Some(alt)) = (e.code, e.alternate_server) {
                        self.row.alternate_server = Some(alt);
                        if self.row.challenge.is_ok() {
                            self.row.allocate = Stage::not_checked(Reason::Redirected(alt));
                        } else {
                            self.row.challenge = Stage::not_checked(Reason::Redirected(alt));
                        }
                        return;
                    }
                }
                match op {
                    TurnOp::Binding => self.row.binding = self.turn_stage(*op, failure),
                    // A failure after the 401 is the authenticated Allocate's; before it, the
                    // challenge itself failed.
                    TurnOp::Allocate if self.row.challenge.is_ok() => {
                        self.row.allocate = self.turn_stage(*op, failure)
                    }
                    TurnOp::Allocate => self.row.challenge = self.turn_stage(*op, failure),
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// The Permission phase ended: record the permission and the channel, then echo through
    /// the relay when a permission exists.
    fn permitted(&mut self, now: Instant, _a_relayed: SocketAddr, b_relayed: SocketAddr) {
        let a = self.a;
        let find = |op: TurnOp| {
            self.sides[a].events.iter().find(|e| match e {
                TurnEvent::PermissionCreated { .. } => op == TurnOp::CreatePermission,
                TurnEvent::ChannelBound { .. } => op == TurnOp::ChannelBind,
                TurnEvent::Failed { op: o, .. } => *o == op,
                _ => false,
            })
        };
        let stage = |op: TurnOp, phase: Phase| match find(op) {
            Some(
                TurnEvent::PermissionCreated { rtt, .. } | TurnEvent::ChannelBound { rtt, .. },
            ) => Stage::ok(ms(*rtt), Nothing {}),
            Some(TurnEvent::Failed { op, failure }) => self.turn_stage(*op, failure),
            _ => Stage::fail(None, self.unanswered(a, phase)),
        };
        let permission = stage(TurnOp::CreatePermission, Phase::Permission);
        let channel = stage(TurnOp::ChannelBind, Phase::Channel);
        self.row.permission = permission;
        self.row.channel = channel;
        if !self.row.permission.is_ok() {
            self.row.send_echo = Stage::not_checked(Reason::skipped("no permission"));
            self.row.channel_echo = Stage::not_checked(Reason::skipped("no permission"));
            return self.release(now, [true, true]);
        }
        let nonce = self.settings.nonce;
        let send_payload = format!("iceprobe-echo-send-{nonce:016x}").into_bytes();
        let chan_payload = format!("iceprobe-echo-chan-{nonce:016x}").into_bytes();
        let want_chan = self.row.channel.is_ok();
        let until = self
            .settings
            .budget
            .probe_deadline()
            .min(now + self.settings.echo_timeout);
        let rejected_before = self.rejected();
        self.enter(
            RowPhase::Echo,
            State::Echo {
                until,
                started: now,
                peer: b_relayed,
                send_payload: send_payload.clone(),
                chan_payload: chan_payload.clone(),
                want_chan,
                rejected_before,
                got_send: None,
                got_chan: None,
                echoed: 0,
            },
        );
        let client = &mut self.sides[a].client;
        client.send_indication(b_relayed, &send_payload);
        if want_chan {
            client.channel_data(CHANNEL, &chan_payload);
        }
    }

    /// Replies discarded so far, on both sides.
    fn rejected(&self) -> u64 {
        self.sides.iter().map(|s| s.client.rejects().count()).sum()
    }

    /// The Echo phase ended: record both echoes.
    fn echoed(
        &mut self,
        peer: SocketAddr,
        bytes: usize,
        want_chan: bool,
        rejected_before: u64,
        got_send: Option<Duration>,
        got_chan: Option<Duration>,
    ) {
        // What the relay sent instead of the echo, when it sent something unusable.
        let garbled = (self.rejected() > rejected_before)
            .then(|| {
                let a = &self.sides[self.a].client;
                let b = self.b().map(|b| &self.sides[b].client);
                a.rejects()
                    .summary()
                    .or_else(|| b.and_then(|b| b.rejects().summary()))
            })
            .flatten();
        let silent = |what: &str| {
            Stage::fail(
                None,
                match &garbled {
                    Some(r) => Failure::new(
                        Phase::Relay,
                        Some("replies rejected".into()),
                        format!("data sent by {what} did not come back intact through the relay: {r}"),
                    ),
                    None => Failure::new(
                        Phase::Relay,
                        Some("no echo".into()),
                        format!("data sent by {what} did not come back through the relay: the server does not relay between allocations (check denied-peer-ip / allowed-peer-ip) or drops relayed UDP"),
                    ),
                },
            )
        };
        let echo = |rtt: Duration| Stage::ok(ms(rtt), EchoInfo { peer, bytes });
        self.row.send_echo = match got_send {
            Some(rtt) => echo(rtt),
            None => silent("Send indication"),
        };
        self.row.channel_echo = match (want_chan, got_chan) {
            (false, _) => Stage::not_checked(Reason::skipped("ChannelBind failed")),
            (true, Some(rtt)) => echo(rtt),
            (true, None) => silent("ChannelData"),
        };
    }

    /// Release both sides (`record`: whose result goes into the row, by role A, B).
    fn release(&mut self, now: Instant, record: [bool; 2]) {
        let budget = self.settings.budget;
        for s in &mut self.sides {
            let mut r = Release::start(&mut s.client, now, &budget);
            if s.down.is_some() {
                r.on_link_down();
            }
            s.release = Some(r);
        }
        let mut by_side = [false; 2];
        by_side[self.a] = record[0];
        if let Some(b) = self.b() {
            by_side[b] = record[1];
        }
        self.enter(RowPhase::Release, State::Release { record: by_side });
    }

    /// The releases ended: record A's, and B's when it failed and A's did not.
    fn released(&mut self, record: [bool; 2]) {
        let stage = |s: &Side| {
            s.release
                .as_ref()
                .and_then(Release::outcome)
                .and_then(|o| o.stage())
                .map(|r| match r {
                    Ok(rtt) => Stage::ok(ms(rtt), Nothing {}),
                    Err(f) => Stage::fail(None, f),
                })
        };
        if record[self.a] {
            if let Some(s) = stage(&self.sides[self.a]) {
                self.row.release = s;
            }
        }
        if let Some(b) = self.b().filter(|b| record[*b]) {
            if let Some(s) = stage(&self.sides[b]).filter(|s| !s.is_ok()) {
                if self.row.release.is_ok() {
                    self.row.release = s;
                }
            }
        }
    }
}

impl crate::net::driver::Machine for Row {
    type Event = RowEvent;
    fn input(&mut self, now: Instant, link: usize, bytes: &[u8]) {
        self.handle_input(now, link, bytes)
    }
    fn timeout(&mut self, now: Instant) {
        self.handle_timeout(now)
    }
    fn transmit(&mut self) -> Option<(usize, Vec<u8>)> {
        self.poll_transmit()
    }
    fn next_timeout(&self) -> Option<Instant> {
        self.poll_timeout()
    }
    fn event(&mut self) -> Option<RowEvent> {
        self.poll_event()
    }
    fn reject(&mut self, link: usize, r: Reject) {
        Row::reject(self, link, r)
    }
    fn gives_up_at(&self) -> Option<Instant> {
        match &self.state {
            State::Allocate { until }
            | State::Permission { until, .. }
            | State::Echo { until, .. } => Some(*until),
            State::Release { .. } | State::Done => None,
        }
    }
}
