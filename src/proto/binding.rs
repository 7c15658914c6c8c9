//! One STUN Binding transaction (RFC 5389 §7), sans-IO.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::reject::{Reject, Rejects};
use super::stun::{self, Class, DecodeError, Decoded, ErrorCode, TxId};
use super::txn::{Fire, Retransmit};
use super::SansIo;

/// How a Binding transaction ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindingOutcome {
    /// A success response.
    Success {
        /// XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS from an RFC 3489 server.
        mapped: SocketAddr,
        /// MAPPED-ADDRESS when the server also sent it (RFC 5780 §9 compatibility).
        plain_mapped: Option<SocketAddr>,
        /// Time from the first transmission to the response.
        rtt: Duration,
        /// Transmissions made, 1 when the first one was answered.
        sends: u32,
        /// SOFTWARE.
        software: Option<String>,
        /// FINGERPRINT state (None: absent).
        fingerprint: Option<bool>,
        /// OTHER-ADDRESS (RFC 5780).
        other_address: Option<SocketAddr>,
        /// RESPONSE-ORIGIN (RFC 5780).
        response_origin: Option<SocketAddr>,
    },
    /// A success response without any mapped address: a broken server.
    NoMappedAddress,
    /// An error response.
    Error(ErrorCode),
    /// No response after every transmission (or the caller's deadline).
    Timeout {
        /// Transmissions made.
        sends: u32,
    },
}

/// A Binding request awaiting its response.
#[derive(Debug)]
pub struct Binding {
    txid: TxId,
    request: Vec<u8>,
    started: Instant,
    timer: Retransmit,
    outbox: Option<Vec<u8>>,
    outcome: Option<BindingOutcome>,
    reported: bool,
    rejects: Rejects,
}

impl Binding {
    /// Start a Binding transaction at `now`; the first transmission is ready at once.
    pub fn new(now: Instant, rto: Duration, reliable: bool) -> Self {
        Self::with_request(now, rto, reliable, stun::new_txid(), None)
    }

    /// Start a transaction with a caller-built request (e.g. with CHANGE-REQUEST for RFC 5780).
    pub fn with_request(
        now: Instant,
        rto: Duration,
        reliable: bool,
        txid: TxId,
        request: Option<Vec<u8>>,
    ) -> Self {
        let request = request.unwrap_or_else(|| stun::binding_request(txid));
        Binding {
            txid,
            outbox: Some(request.clone()),
            request,
            started: now,
            timer: Retransmit::new(now, rto, reliable),
            outcome: None,
            reported: false,
            rejects: Rejects::default(),
        }
    }

    /// The transaction id, for demultiplexing a shared socket.
    pub fn txid(&self) -> TxId {
        self.txid
    }

    /// The result, once there is one.
    pub fn outcome(&self) -> Option<&BindingOutcome> {
        self.outcome.as_ref()
    }

    /// The caller's deadline passed: end as a timeout unless already done.
    pub fn abandon(&mut self) {
        if self.outcome.is_none() {
            self.outcome = Some(BindingOutcome::Timeout {
                sends: self.timer.sends(),
            });
        }
    }

    /// What was discarded while waiting (see [`Rejects`]).
    pub fn rejects(&self) -> &Rejects {
        &self.rejects
    }

    /// Offer received bytes: decoded here, and what cannot be read is logged as a reject.
    pub fn handle_bytes(&mut self, now: Instant, bytes: &[u8]) -> bool {
        match stun::decode(bytes) {
            Ok(d) => self.handle_decoded(now, &d),
            Err(DecodeError::NotStun(why)) => {
                self.reject(Reject::NotStun(why));
                false
            }
            Err(DecodeError::Malformed(why)) => {
                self.reject(Reject::Malformed(why));
                false
            }
        }
    }

    /// Offer a received message. Returns `true` if it belonged to this transaction. A response
    /// that fails FINGERPRINT or carries an unknown comprehension-required attribute is
    /// discarded (RFC 8489 §7.3) and logged.
    pub fn handle_decoded(&mut self, now: Instant, msg: &Decoded) -> bool {
        let response = matches!(msg.class, Some(Class::Success | Class::Error));
        if self.outcome.is_some() || !response {
            return false;
        }
        if msg.txid != self.txid {
            self.rejects.push(Reject::UnknownTransaction);
            return false;
        }
        if msg.method != stun::method::BINDING {
            self.rejects.push(Reject::Malformed(format!(
                "a response of method 0x{:03X} to a Binding request",
                msg.method
            )));
            return false;
        }
        if msg.fingerprint == Some(false) {
            self.rejects.push(Reject::BadFingerprint);
            return false;
        }
        if !msg.unknown_required.is_empty() {
            self.rejects
                .push(Reject::UnknownRequired(msg.unknown_required.clone()));
            return false;
        }
        self.outcome = Some(match msg.class {
            Some(Class::Success) => match msg.xor_mapped.or(msg.mapped) {
                Some(mapped) => BindingOutcome::Success {
                    mapped,
                    plain_mapped: msg.mapped,
                    rtt: now.saturating_duration_since(self.started),
                    sends: self.timer.sends(),
                    software: msg.software.clone(),
                    fingerprint: msg.fingerprint,
                    other_address: msg.other_address,
                    response_origin: msg.response_origin,
                },
                None => BindingOutcome::NoMappedAddress,
            },
            // Only responses get this far: this is the error class.
            _ => BindingOutcome::Error(msg.error.clone().unwrap_or(ErrorCode {
                code: 0,
                reason: "error response without ERROR-CODE".into(),
                alternate_server: None,
            })),
        });
        true
    }
}

impl SansIo for Binding {
    type Event = BindingOutcome;

    /// Offer one received datagram or stream message (see [`Binding::handle_bytes`]).
    fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        self.handle_bytes(now, bytes);
    }

    /// Bytes to send now.
    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.outbox.take()
    }

    /// When `handle_timeout` must next be called; `None` once finished.
    fn poll_timeout(&self) -> Option<Instant> {
        self.outcome.is_none().then(|| self.timer.due())
    }

    /// The outcome, returned once (for event-driven callers).
    fn poll_event(&mut self) -> Option<BindingOutcome> {
        if self.reported {
            return None;
        }
        let o = self.outcome.clone()?;
        self.reported = true;
        Some(o)
    }

    /// Advance the retransmission timer.
    fn handle_timeout(&mut self, now: Instant) {
        if self.outcome.is_some() {
            return;
        }
        match self.timer.fire(now) {
            Fire::Wait => {}
            Fire::Resend => self.outbox = Some(self.request.clone()),
            Fire::GiveUp => {
                self.outcome = Some(BindingOutcome::Timeout {
                    sends: self.timer.sends(),
                })
            }
        }
    }

    /// Record something discarded outside the machine (e.g. a datagram from the wrong source).
    fn reject(&mut self, r: Reject) {
        if self.outcome.is_none() {
            self.rejects.push(r);
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests pick an arbitrary t0
pub(crate) mod tests {
    use super::*;
    use rtc::stun::message::{CLASS_ERROR_RESPONSE, CLASS_SUCCESS_RESPONSE, METHOD_BINDING};
    use rtc::stun::xoraddr::XorMappedAddress;

    /// A Binding success response for `txid` carrying `mapped`.
    pub(crate) fn success(txid: TxId, mapped: SocketAddr) -> Vec<u8> {
        let mut m = stun::start(METHOD_BINDING, CLASS_SUCCESS_RESPONSE, txid);
        stun::add(
            &mut m,
            &XorMappedAddress {
                ip: mapped.ip(),
                port: mapped.port(),
            },
        )
        .unwrap();
        stun::finish(m)
    }

    #[test]
    fn answered_after_one_retransmit() {
        let t0 = Instant::now();
        let mut b = Binding::new(t0, Duration::from_millis(500), false);
        assert!(b.poll_transmit().is_some());
        assert!(b.poll_transmit().is_none());
        b.handle_timeout(t0 + Duration::from_millis(500));
        assert!(b.poll_transmit().is_some(), "retransmitted at RTO");
        let mapped: SocketAddr = "198.18.0.10:40000".parse().unwrap();
        let reply = stun::decode(&success(b.txid(), mapped)).unwrap();
        assert!(b.handle_decoded(t0 + Duration::from_millis(620), &reply));
        match b.outcome().unwrap() {
            BindingOutcome::Success {
                mapped: m,
                rtt,
                sends,
                fingerprint,
                ..
            } => {
                assert_eq!(*m, mapped);
                assert_eq!(*rtt, Duration::from_millis(620));
                assert_eq!(*sends, 2);
                assert_eq!(*fingerprint, Some(true));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn foreign_transaction_is_ignored() {
        let t0 = Instant::now();
        let mut b = Binding::new(t0, Duration::from_millis(500), false);
        let reply =
            stun::decode(&success(stun::new_txid(), "198.18.0.1:1".parse().unwrap())).unwrap();
        assert!(!b.handle_decoded(t0, &reply));
        assert!(b.outcome().is_none());
    }

    #[test]
    fn error_response_carries_code() {
        let t0 = Instant::now();
        let mut b = Binding::new(t0, Duration::from_millis(500), false);
        let mut m = stun::start(METHOD_BINDING, CLASS_ERROR_RESPONSE, b.txid());
        stun::add(
            &mut m,
            &rtc::stun::error_code::ErrorCodeAttribute {
                code: rtc::stun::error_code::ErrorCode(420),
                reason: b"Unknown Attribute".to_vec(),
            },
        )
        .unwrap();
        let reply = stun::decode(&stun::finish(m)).unwrap();
        assert!(b.handle_decoded(t0, &reply));
        assert_eq!(
            b.outcome(),
            Some(&BindingOutcome::Error(ErrorCode {
                code: 420,
                reason: "Unknown Attribute".into(),
                alternate_server: None,
            }))
        );
    }

    #[test]
    fn silence_times_out_after_seven_sends() {
        let t0 = Instant::now();
        let mut b = Binding::new(t0, Duration::from_millis(100), false);
        let mut sends = 0;
        while let Some(due) = b.poll_timeout() {
            while b.poll_transmit().is_some() {
                sends += 1;
            }
            b.handle_timeout(due);
        }
        assert_eq!(sends, 7);
        assert_eq!(b.outcome(), Some(&BindingOutcome::Timeout { sends: 7 }));
    }
}
