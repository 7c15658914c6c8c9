//! Pure decisions over finished `check` rows: warnings, row verdicts, cross-row warnings, the
//! "what to fix" list and the run's verdict. The driver fills the stages; everything here only
//! reads them, so it is table-tested without a network.
//!
//! Unknown is not false: a `not-checked` stage never counts as a failure, and a warning is only
//! raised from something that was measured.

use std::net::{IpAddr, SocketAddr};

use crate::ice_url::{Protocol, ServerUrl};
use crate::model::check::{
    failed_stages, row_failed, row_label, CheckRow, RowVerdict, StageStatus, Warning,
};
use crate::model::tls::Verification;
use crate::model::Verdict;

pub use crate::model::check::CERT_EXPIRY_WARN_DAYS;

/// The stable `kind` of each [`Warning`].
pub mod kind {
    /// The relayed address is private, loopback, link-local, CGNAT or ULA.
    pub const PRIVATE_RELAY_ADDRESS: &str = "private-relay-address";
    /// The leaf certificate expires within [`super::CERT_EXPIRY_WARN_DAYS`].
    pub const CERTIFICATE_EXPIRING: &str = "certificate-expiring";
    /// The Binding response had no (valid) FINGERPRINT.
    pub const NO_FINGERPRINT: &str = "no-fingerprint";
    /// The Allocate success response had no MESSAGE-INTEGRITY.
    pub const NO_MESSAGE_INTEGRITY: &str = "no-message-integrity";
    /// The Allocate success response had an invalid MESSAGE-INTEGRITY.
    pub const BAD_MESSAGE_INTEGRITY: &str = "bad-message-integrity";
    /// STUN Binding works on a TURN URL, TURN does not.
    pub const STUN_OK_TURN_FAILED: &str = "stun-ok-turn-failed";
    /// `--insecure`: the certificate was not verified.
    pub const TLS_NOT_VERIFIED: &str = "tls-not-verified";
    /// UDP works on a host, TCP or TLS does not.
    pub const UDP_ONLY: &str = "udp-only";
    /// TCP or TLS works on a host, UDP does not.
    pub const UDP_BLOCKED: &str = "udp-blocked";
    /// The server answered Allocate with 300 Try Alternate (followed in the next row).
    pub const REDIRECTED: &str = "redirected";
    /// Every kind, in schema order (the schema test compares against this list).
    pub const ALL: &[&str] = &[
        PRIVATE_RELAY_ADDRESS,
        CERTIFICATE_EXPIRING,
        NO_FINGERPRINT,
        NO_MESSAGE_INTEGRITY,
        BAD_MESSAGE_INTEGRITY,
        STUN_OK_TURN_FAILED,
        TLS_NOT_VERIFIED,
        UDP_ONLY,
        UDP_BLOCKED,
        REDIRECTED,
    ];
}

fn warning(kind: &str, message: String) -> Warning {
    Warning {
        kind: kind.to_string(),
        message,
    }
}

use crate::ip_class::non_public;

/// The IP of `ip` or `ip:port` text.
fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse::<SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| s.parse::<IpAddr>())
        .ok()
}

/// Warnings about one finished row (pure). `expiry_threshold_days` is normally
/// [`CERT_EXPIRY_WARN_DAYS`].
///
/// Raised only from what was measured: a private relayed address, a leaf certificate expiring
/// within the threshold (not yet expired: that is a TLS failure), a Binding response without
/// FINGERPRINT, an Allocate response without or with a bad MESSAGE-INTEGRITY, STUN answering on
/// a TURN URL whose TURN stages failed, and a certificate not verified (`--insecure`).
pub fn row_warnings(row: &CheckRow, expiry_threshold_days: i64) -> Vec<Warning> {
    let mut out = Vec::new();
    if let Some(tls) = row.tls.info() {
        if let Verification::Skipped { would_fail } = &tls.verification {
            let why = match would_fail {
                Some(p) => format!("it would have failed: {}", p.describe()),
                None => "it would have verified".to_string(),
            };
            out.push(warning(
                kind::TLS_NOT_VERIFIED,
                format!(
                    "TLS certificate not verified (--insecure); {why}: browsers verify it, so drop --insecure to test what they see"
                ),
            ));
        }
        if let Some(leaf) = tls.chain.first() {
            if (0..expiry_threshold_days).contains(&leaf.days_left) {
                let days = match leaf.days_left {
                    0 => "today".to_string(),
                    1 => "in 1 day".to_string(),
                    n => format!("in {n} days"),
                };
                out.push(warning(
                    kind::CERTIFICATE_EXPIRING,
                    format!(
                        "TLS certificate {} expires {days} (not after {}): renew it before clients start failing",
                        leaf.subject, leaf.not_after
                    ),
                ));
            }
        }
    }
    if let Some(b) = row.binding.info() {
        if !b.fingerprint {
            out.push(warning(
                kind::NO_FINGERPRINT,
                "the server answers STUN Binding without FINGERPRINT (RFC 8489 §14.7): clients that demultiplex STUN by FINGERPRINT may drop its answers; enable fingerprint in coturn".to_string(),
            ));
        }
    }
    if let Some(a) = row.allocate.info() {
        if let Some(ip) = parse_ip(&a.relayed) {
            if let Some(what) = non_public(ip) {
                out.push(warning(
                    kind::PRIVATE_RELAY_ADDRESS,
                    format!(
                        "relayed address {ip} is {what}: peers outside the server's network cannot reach it; set external-ip / relay-ip in coturn to the public address"
                    ),
                ));
            }
        }
        match a.integrity {
            None => out.push(warning(
                kind::NO_MESSAGE_INTEGRITY,
                "the Allocate success response has no MESSAGE-INTEGRITY: the answer is not authenticated (RFC 8656 §7.3); check the server or a middlebox rewriting TURN".to_string(),
            )),
            Some(false) => out.push(warning(
                kind::BAD_MESSAGE_INTEGRITY,
                "the Allocate success response has an invalid MESSAGE-INTEGRITY: the server signs with a different key than our credentials (realm or password mismatch) or a middlebox rewrote it".to_string(),
            )),
            Some(true) => {}
        }
    }
    let redirect_failed = [row.challenge.code(), row.allocate.code()].contains(&Some(300));
    if let (Some(alt), false) = (&row.alternate_server, redirect_failed) {
        out.push(warning(
            kind::REDIRECTED,
            format!(
                "the server redirects Allocate to ALTERNATE-SERVER {alt} (300 Try Alternate, RFC 8489 §10): clients must follow it; the alternate is checked in the next row"
            ),
        ));
    }
    if row.turn && row.binding.is_ok() && (row.challenge.is_failed() || row.allocate.is_failed()) {
        out.push(warning(
            kind::STUN_OK_TURN_FAILED,
            "the server answers STUN but TURN fails: it is reachable, so look at TURN's own configuration (credentials, realm, relay ports, quotas) rather than the network".to_string(),
        ));
    }
    out
}

/// The row's verdict (pure): `fail` if any stage failed, `warn` if it has warnings (set
/// `row.warnings` first), else `pass`. Not-checked stages never count as failures.
pub fn row_verdict(row: &CheckRow) -> RowVerdict {
    if row_failed(row) {
        RowVerdict::Fail
    } else if !row.warnings.is_empty() {
        RowVerdict::Warn
    } else {
        RowVerdict::Pass
    }
}

/// Fill a finished row's warnings ([`row_warnings`], appended to any the driver set) and verdict.
pub fn finish_row(row: &mut CheckRow, expiry_threshold_days: i64) {
    for w in row_warnings(row, expiry_threshold_days) {
        if !row.warnings.contains(&w) {
            row.warnings.push(w);
        }
    }
    row.verdict = row_verdict(row);
}

/// The host of a row's probed URL (falls back to the URL as given, then to the raw text).
fn row_host(row: &CheckRow) -> String {
    [&row.probed_url, &row.url]
        .iter()
        .find_map(|s| s.parse::<ServerUrl>().ok())
        .map(|u| u.host.to_string())
        .unwrap_or_else(|| row.probed_url.clone())
}

/// Warnings across rows (pure), per host and address family, in first-seen order:
/// `udp-only` when a UDP row passed but a TCP or TLS row failed (users behind firewalls that
/// block UDP will fail), `udp-blocked` when a TCP or TLS row passed but a UDP row failed.
pub fn cross_warnings(rows: &[CheckRow]) -> Vec<Warning> {
    let mut groups: Vec<((String, &str), Vec<&CheckRow>)> = Vec::new();
    for row in rows {
        let key = (row_host(row), row.family.as_str());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, g)) => g.push(row),
            None => groups.push((key, vec![row])),
        }
    }
    let mut out = Vec::new();
    for ((host, family), group) in groups {
        // UDP against TCP/TLS: DTLS rows take no side (UDP-borne, but a separate service that
        // browsers do not use).
        let any = |udp: bool, failed: bool| {
            group.iter().any(|r| {
                let side = if udp {
                    r.transport == Protocol::Udp
                } else {
                    r.transport.is_stream()
                };
                side && row_failed(r) == failed
            })
        };
        let failed_streams = || {
            let mut t: Vec<&str> = group
                .iter()
                .filter(|r| r.transport.is_stream() && row_failed(r))
                .map(|r| r.transport.as_str())
                .collect();
            t.dedup();
            t.join("/").to_uppercase()
        };
        if any(true, false) && any(false, true) {
            out.push(warning(
                kind::UDP_ONLY,
                format!(
                    "{host} ({family}): UDP works but {} fails: enterprise users behind firewalls that block UDP will fail: fix TURN over TCP/TLS",
                    failed_streams()
                ),
            ));
        }
        if any(false, false) && any(true, true) {
            out.push(warning(
                kind::UDP_BLOCKED,
                format!(
                    "{host} ({family}): TCP/TLS works but UDP fails: UDP is blocked on this path or the server does not listen on UDP; clients fall back to TCP/TLS with more latency"
                ),
            ));
        }
    }
    out
}

/// Group `(text, row label)` pairs by text in first-seen order, each label once per text.
fn group(items: impl IntoIterator<Item = (String, Option<String>)>) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (text, label) in items {
        let i = match out.iter().position(|(t, _)| *t == text) {
            Some(i) => i,
            None => {
                out.push((text, Vec::new()));
                out.len() - 1
            }
        };
        if let Some(l) = label {
            if !out[i].1.contains(&l) {
                out[i].1.push(l);
            }
        }
    }
    out
}

/// At most three labels joined by `sep`, then how many more.
fn list(labels: &[String], sep: &str) -> String {
    const SHOWN: usize = 3;
    let mut s = labels
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(sep);
    if labels.len() > SHOWN {
        s.push_str(&format!(" and {} more", labels.len() - SHOWN));
    }
    s
}

fn with_rows(text: String, labels: &[String]) -> String {
    match labels.len() {
        0 => text,
        1 => format!("{text} [{}]", labels[0]),
        n => format!("{text} [{n} rows: {}]", list(labels, ", ")),
    }
}

/// "What to fix" (pure), most important first: each distinct failure cause once with the rows
/// that have it, then each distinct warning message once: `warnings` (the report-level ones from
/// [`cross_warnings`]) before the rows' own, which name their rows.
pub fn fix_list(rows: &[CheckRow], warnings: &[Warning]) -> Vec<String> {
    let causes = group(rows.iter().flat_map(|r| {
        failed_stages(r)
            .into_iter()
            .filter_map(move |s| match s.status {
                StageStatus::Failed { cause, .. } => Some((cause.to_string(), Some(row_label(r)))),
                _ => None,
            })
    }));
    let cross = group(warnings.iter().map(|w| (w.message.clone(), None)));
    let own = group(rows.iter().flat_map(|r| {
        r.warnings
            .iter()
            .map(|w| (w.message.clone(), Some(row_label(r))))
    }));
    let mut out: Vec<String> = Vec::new();
    for (text, labels) in causes.into_iter().chain(cross).chain(own) {
        let line = with_rows(text, &labels);
        if !out.contains(&line) {
            out.push(line);
        }
    }
    out
}

/// The run's verdict (pure): exit 0 when no row failed (warnings do not fail a check), else 1.
/// The summary names the failed rows with their first failed stage and its cause.
pub fn check_verdict(rows: &[CheckRow]) -> Verdict {
    let failed: Vec<&CheckRow> = rows.iter().filter(|r| row_failed(r)).collect();
    if failed.is_empty() {
        let warned = rows.iter().filter(|r| !r.warnings.is_empty()).count();
        let n = rows.len();
        let mut summary = format!("ok: {n} row{} passed", if n == 1 { "" } else { "s" });
        if warned > 0 {
            summary.push_str(&format!(" ({warned} with warnings)"));
        }
        return Verdict {
            ok: true,
            exit_code: 0,
            summary,
        };
    }
    let why: Vec<String> = failed
        .iter()
        .map(|r| {
            let stage = failed_stages(r)
                .first()
                .map(|s| match s.status {
                    StageStatus::Failed { cause, .. } => format!("{}: {cause}", s.name),
                    _ => String::new(),
                })
                .unwrap_or_default();
            format!("{} {}: {stage}", row_label(r), r.transport)
        })
        .collect();
    Verdict {
        ok: false,
        exit_code: 1,
        summary: format!(
            "FAILED: {} of {} rows ({})",
            failed.len(),
            rows.len(),
            list(&why, "; ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::check::{
        AllocationInfo, BindingInfo, ChallengeInfo, DnsInfo, EchoInfo, Nothing, Stage,
    };
    use crate::model::tls::{CertInfo, CertProblem, TlsInfo};
    use crate::model::Phase;

    /// A row builder: every stage not checked, then the case sets what it needs.
    #[derive(Clone)]
    struct B(CheckRow);

    fn nc<T>() -> Stage<T> {
        Stage::not_checked("not applicable")
    }

    fn row(probed: &str, transport: Protocol) -> B {
        B(CheckRow {
            url: probed.into(),
            probed_url: probed.into(),
            family: "ipv4".into(),
            address: "198.18.0.1:3478".into(),
            transport,
            turn: probed.starts_with("turn"),
            dns: nc(),
            connect: nc(),
            tls: nc(),
            binding: nc(),
            challenge: nc(),
            allocate: nc(),
            permission: nc(),
            channel: nc(),
            send_echo: nc(),
            channel_echo: nc(),
            release: nc(),
            alternate_server: None,
            warnings: vec![],
            verdict: RowVerdict::Pass,
        })
    }

    fn ok<T>(info: T) -> Stage<T> {
        Stage::Ok { ms: 1.0, info }
    }

    fn failed<T>(phase: Phase, code: Option<u16>, cause: &str) -> Stage<T> {
        Stage::Failed {
            ms: Some(2.0),
            phase,
            code,
            reason: None,
            cause: cause.into(),
        }
    }

    fn binding(fingerprint: bool) -> BindingInfo {
        BindingInfo {
            mapped: "198.18.0.254:40000".into(),
            software: None,
            fingerprint,
            sends: 1,
        }
    }

    fn alloc(relayed: &str, integrity: Option<bool>) -> AllocationInfo {
        AllocationInfo {
            relayed: relayed.into(),
            mapped: None,
            lifetime_s: 600,
            integrity,
            software: None,
        }
    }

    fn tls(days_left: i64, verification: Verification) -> TlsInfo {
        TlsInfo {
            version: "TLSv1.3".into(),
            cipher: "TLS13_AES_256_GCM_SHA384".into(),
            alpn: None,
            sni: Some("turn.example.org".into()),
            handshake_ms: 3.0,
            chain: vec![CertInfo {
                subject: "CN=turn.example.org".into(),
                issuer: "CN=CA".into(),
                sans: vec!["turn.example.org".into()],
                not_before: "2026-01-01T00:00:00Z".into(),
                not_after: "2026-04-01T00:00:00Z".into(),
                days_left,
            }],
            verification,
        }
    }

    impl B {
        fn dns(mut self) -> Self {
            self.0.dns = ok(DnsInfo {
                addresses: vec!["198.18.0.1".into()],
                srv: vec![],
            });
            self
        }
        fn binding(mut self, s: Stage<BindingInfo>) -> Self {
            self.0.binding = s;
            self
        }
        fn challenge(mut self, s: Stage<ChallengeInfo>) -> Self {
            self.0.challenge = s;
            self
        }
        fn allocate(mut self, s: Stage<AllocationInfo>) -> Self {
            self.0.allocate = s;
            self
        }
        fn tls(mut self, s: Stage<TlsInfo>) -> Self {
            self.0.tls = s;
            self
        }
        fn echo(mut self, s: Stage<EchoInfo>) -> Self {
            self.0.send_echo = s;
            self
        }
        fn release(mut self, s: Stage<Nothing>) -> Self {
            self.0.release = s;
            self
        }
        fn family(mut self, f: &str) -> Self {
            self.0.family = f.into();
            self
        }
        fn url(mut self, u: &str) -> Self {
            self.0.url = u.into();
            self
        }
        fn address(mut self, a: &str) -> Self {
            self.0.address = a.into();
            self
        }
        fn warn(mut self, kind: &str, message: &str) -> Self {
            self.0.warnings.push(warning(kind, message.into()));
            self
        }
        /// A healthy TURN row: binding, 401, allocate with a public relay, echo, release.
        fn healthy(self) -> Self {
            self.binding(ok(binding(true)))
                .challenge(ok(ChallengeInfo {
                    realm: "example.org".into(),
                }))
                .allocate(ok(alloc("198.18.0.1:49152", Some(true))))
                .echo(ok(EchoInfo {
                    peer: "198.18.0.254:40001".into(),
                    bytes: 100,
                }))
                .release(ok(Nothing {}))
        }
        fn done(self) -> CheckRow {
            self.0
        }
    }

    const TURN_UDP: &str = "turn:198.18.0.1?transport=udp";
    const TURN_TCP: &str = "turn:198.18.0.1?transport=tcp";
    const TURNS: &str = "turns:198.18.0.1";

    fn kinds(w: &[Warning]) -> Vec<&str> {
        w.iter().map(|w| w.kind.as_str()).collect()
    }

    #[test]
    fn row_warnings_table() {
        use kind::*;
        let udp = || row(TURN_UDP, Protocol::Udp);
        let relay = |a: &str| udp().healthy().allocate(ok(alloc(a, Some(true))));
        let skipped = |would_fail| Verification::Skipped { would_fail };
        let cases: Vec<(&str, B, Vec<&str>)> = vec![
            ("nothing measured", udp(), vec![]),
            ("healthy", udp().healthy(), vec![]),
            (
                "public test range 198.18/15",
                relay("198.19.255.1:50000"),
                vec![],
            ),
            (
                "RFC 1918 10/8",
                relay("10.1.2.3:49152"),
                vec![PRIVATE_RELAY_ADDRESS],
            ),
            (
                "RFC 1918 172.16/12",
                relay("172.31.0.1:49152"),
                vec![PRIVATE_RELAY_ADDRESS],
            ),
            ("172.32 is public", relay("172.32.0.1:49152"), vec![]),
            (
                "RFC 1918 192.168/16",
                relay("192.168.1.1:49152"),
                vec![PRIVATE_RELAY_ADDRESS],
            ),
            (
                "CGNAT 100.64/10",
                relay("100.64.0.7:49152"),
                vec![PRIVATE_RELAY_ADDRESS],
            ),
            (
                "CGNAT upper end",
                relay("100.127.255.1:49152"),
                vec![PRIVATE_RELAY_ADDRESS],
            ),
            ("100.128 is public", relay("100.128.0.1:49152"), vec![]),
            (
                "loopback",
                relay("127.0.0.1:49152"),
                vec![PRIVATE_RELAY_ADDRESS],
            ),
            (
                "link-local",
                relay("169.254.3.4:49152"),
                vec![PRIVATE_RELAY_ADDRESS],
            ),
            (
                "IPv6 ULA",
                relay("[fd00::5]:49152"),
                vec![PRIVATE_RELAY_ADDRESS],
            ),
            (
                "IPv6 link-local",
                relay("[fe80::1]:49152"),
                vec![PRIVATE_RELAY_ADDRESS],
            ),
            (
                "IPv6 loopback",
                relay("[::1]:49152"),
                vec![PRIVATE_RELAY_ADDRESS],
            ),
            ("IPv6 global", relay("[2001:db8::1]:49152"), vec![]),
            (
                "v4-mapped private",
                relay("[::ffff:10.0.0.1]:1"),
                vec![PRIVATE_RELAY_ADDRESS],
            ),
            (
                "unparseable relay: unknown, no warning",
                relay("garbage"),
                vec![],
            ),
            (
                "no FINGERPRINT",
                udp().binding(ok(binding(false))),
                vec![NO_FINGERPRINT],
            ),
            (
                "binding failed: FINGERPRINT unknown, not absent",
                udp().binding(failed(Phase::Stun, None, "silent")),
                vec![],
            ),
            (
                "no MESSAGE-INTEGRITY",
                udp().healthy().allocate(ok(alloc("198.18.0.1:1", None))),
                vec![NO_MESSAGE_INTEGRITY],
            ),
            (
                "bad MESSAGE-INTEGRITY",
                udp()
                    .healthy()
                    .allocate(ok(alloc("198.18.0.1:1", Some(false)))),
                vec![BAD_MESSAGE_INTEGRITY],
            ),
            (
                "STUN ok, allocate failed",
                udp()
                    .binding(ok(binding(true)))
                    .challenge(ok(ChallengeInfo { realm: "r".into() }))
                    .allocate(failed(Phase::TurnAuth, Some(401), "wrong TURN credentials")),
                vec![STUN_OK_TURN_FAILED],
            ),
            (
                "STUN ok, no 401 challenge",
                udp().binding(ok(binding(true))).challenge(failed(
                    Phase::TurnAuth,
                    None,
                    "no challenge",
                )),
                vec![STUN_OK_TURN_FAILED],
            ),
            (
                "STUN URL: TURN stages do not apply",
                row("stun:198.18.0.1", Protocol::Udp)
                    .binding(ok(binding(true)))
                    .allocate(failed(Phase::TurnAuth, None, "x")),
                vec![],
            ),
            (
                "STUN failed too: not a TURN-only problem",
                udp()
                    .binding(failed(Phase::Stun, None, "silent"))
                    .allocate(failed(Phase::TurnAuth, None, "x")),
                vec![],
            ),
            (
                "certificate expires in 5 days",
                row(TURNS, Protocol::Tls).tls(ok(tls(5, Verification::Verified))),
                vec![CERTIFICATE_EXPIRING],
            ),
            (
                "certificate expires today",
                row(TURNS, Protocol::Tls).tls(ok(tls(0, Verification::Verified))),
                vec![CERTIFICATE_EXPIRING],
            ),
            (
                "13 days warns, 14 does not",
                row(TURNS, Protocol::Tls).tls(ok(tls(13, Verification::Verified))),
                vec![CERTIFICATE_EXPIRING],
            ),
            (
                "14 days",
                row(TURNS, Protocol::Tls).tls(ok(tls(14, Verification::Verified))),
                vec![],
            ),
            (
                "expired under --insecure: not 'expiring'; not verified",
                row(TURNS, Protocol::Tls).tls(ok(tls(
                    -3,
                    skipped(Some(CertProblem::Expired {
                        days_ago: Some(3),
                        not_after: None,
                    })),
                ))),
                vec![TLS_NOT_VERIFIED],
            ),
            (
                "--insecure and it would verify",
                row(TURNS, Protocol::Tls).tls(ok(tls(90, skipped(None)))),
                vec![TLS_NOT_VERIFIED],
            ),
            (
                "several at once, in a stable order",
                row(TURNS, Protocol::Tls)
                    .tls(ok(tls(2, skipped(None))))
                    .healthy()
                    .binding(ok(binding(false)))
                    .allocate(ok(alloc("100.100.0.1:5", None))),
                vec![
                    TLS_NOT_VERIFIED,
                    CERTIFICATE_EXPIRING,
                    NO_FINGERPRINT,
                    PRIVATE_RELAY_ADDRESS,
                    NO_MESSAGE_INTEGRITY,
                ],
            ),
        ];
        for (name, b, want) in cases {
            let got = row_warnings(&b.done(), CERT_EXPIRY_WARN_DAYS);
            assert_eq!(kinds(&got), want, "{name}: {got:?}");
        }
    }

    #[test]
    fn warning_messages_say_what_to_do() {
        let r = row(TURN_UDP, Protocol::Udp)
            .healthy()
            .allocate(ok(alloc("100.64.0.7:49152", Some(true))))
            .done();
        let w = row_warnings(&r, CERT_EXPIRY_WARN_DAYS);
        assert!(w[0].message.contains("100.64.0.7"), "{w:?}");
        assert!(w[0]
            .message
            .contains("set external-ip / relay-ip in coturn"));
        let r = row(TURNS, Protocol::Tls)
            .tls(ok(tls(5, Verification::Verified)))
            .done();
        let w = row_warnings(&r, CERT_EXPIRY_WARN_DAYS);
        assert!(w[0].message.contains("expires in 5 days"), "{w:?}");
        let r = row(TURNS, Protocol::Tls)
            .tls(ok(tls(1, Verification::Verified)))
            .done();
        assert!(row_warnings(&r, CERT_EXPIRY_WARN_DAYS)[0]
            .message
            .contains("expires in 1 day "));
    }

    #[test]
    fn row_verdict_table() {
        let udp = || row(TURN_UDP, Protocol::Udp);
        let cases: Vec<(&str, B, RowVerdict)> = vec![
            ("nothing checked is not a failure", udp(), RowVerdict::Pass),
            ("healthy", udp().healthy(), RowVerdict::Pass),
            ("warned", udp().healthy().warn("x", "y"), RowVerdict::Warn),
            (
                "a failed stage wins over warnings",
                udp()
                    .healthy()
                    .warn("x", "y")
                    .release(failed(Phase::Release, None, "z")),
                RowVerdict::Fail,
            ),
            (
                "dns failure",
                udp()
                    .binding(Stage::not_checked("dns failed"))
                    .dns()
                    .tls(failed(Phase::Tls, None, "expired")),
                RowVerdict::Fail,
            ),
        ];
        for (name, b, want) in cases {
            assert_eq!(row_verdict(&b.done()), want, "{name}");
        }
    }

    #[test]
    fn finish_row_sets_warnings_and_verdict_once() {
        let mut r = row(TURN_UDP, Protocol::Udp)
            .healthy()
            .allocate(ok(alloc("10.0.0.1:1", Some(true))))
            .done();
        finish_row(&mut r, CERT_EXPIRY_WARN_DAYS);
        finish_row(&mut r, CERT_EXPIRY_WARN_DAYS);
        assert_eq!(kinds(&r.warnings), vec![kind::PRIVATE_RELAY_ADDRESS]);
        assert_eq!(r.verdict, RowVerdict::Warn);
    }

    #[test]
    fn cross_warnings_table() {
        use kind::*;
        let pass = |u: &str, t| row(u, t).healthy();
        let fail = |u: &str, t| {
            row(u, t).allocate(failed(Phase::TurnAuth, Some(401), "wrong TURN credentials"))
        };
        let cases: Vec<(&str, Vec<B>, Vec<&str>)> = vec![
            ("empty", vec![], vec![]),
            (
                "all pass",
                vec![pass(TURN_UDP, Protocol::Udp), pass(TURN_TCP, Protocol::Tcp)],
                vec![],
            ),
            (
                "all fail",
                vec![fail(TURN_UDP, Protocol::Udp), fail(TURNS, Protocol::Tls)],
                vec![],
            ),
            (
                "UDP passes, TCP fails",
                vec![pass(TURN_UDP, Protocol::Udp), fail(TURN_TCP, Protocol::Tcp)],
                vec![UDP_ONLY],
            ),
            (
                "UDP passes, TLS fails (a warned UDP row still passes)",
                vec![
                    pass(TURN_UDP, Protocol::Udp).warn("x", "y"),
                    pass(TURN_TCP, Protocol::Tcp),
                    fail(TURNS, Protocol::Tls),
                ],
                vec![UDP_ONLY],
            ),
            (
                "UDP fails, TLS passes",
                vec![fail(TURN_UDP, Protocol::Udp), pass(TURNS, Protocol::Tls)],
                vec![UDP_BLOCKED],
            ),
            (
                "different hosts are not compared",
                vec![
                    pass(TURN_UDP, Protocol::Udp),
                    fail("turn:198.18.0.2?transport=tcp", Protocol::Tcp),
                ],
                vec![],
            ),
            (
                "different families are not compared",
                vec![
                    pass(TURN_UDP, Protocol::Udp),
                    fail(TURN_TCP, Protocol::Tcp).family("ipv6"),
                ],
                vec![],
            ),
            (
                "host names group by the probed URL, not the URL as given",
                vec![
                    pass("turn:turn.example.org", Protocol::Udp).url("turn:turn.example.org"),
                    fail("turns:turn.example.org", Protocol::Tls).url("turn:turn.example.org"),
                    fail("turns:other.example.org", Protocol::Tls).url("turn:turn.example.org"),
                ],
                vec![UDP_ONLY],
            ),
            (
                "not-checked UDP is not 'passing'",
                vec![row(TURN_UDP, Protocol::Udp), fail(TURN_TCP, Protocol::Tcp)],
                vec![UDP_ONLY],
            ),
        ];
        for (name, rows, want) in cases {
            let rows: Vec<CheckRow> = rows.into_iter().map(B::done).collect();
            let got = cross_warnings(&rows);
            assert_eq!(kinds(&got), want, "{name}: {got:?}");
        }
    }

    #[test]
    fn cross_warning_messages() {
        let rows = [
            row(TURN_UDP, Protocol::Udp).healthy().done(),
            row(TURN_TCP, Protocol::Tcp)
                .allocate(failed(Phase::TurnAuth, None, "x"))
                .done(),
            row(TURNS, Protocol::Tls)
                .tls(failed(Phase::Tls, None, "x"))
                .done(),
        ];
        let w = cross_warnings(&rows);
        assert_eq!(
            w[0].message,
            "198.18.0.1 (ipv4): UDP works but TCP/TLS fails: enterprise users behind firewalls \
             that block UDP will fail: fix TURN over TCP/TLS"
        );
    }

    #[test]
    fn fix_list_causes_first_each_once() {
        let bad = "wrong TURN credentials: the server rejected the username or password";
        let rows = [
            row(TURN_UDP, Protocol::Udp)
                .healthy()
                .warn(kind::NO_FINGERPRINT, "add FINGERPRINT")
                .done(),
            row(TURN_TCP, Protocol::Tcp)
                .allocate(failed(Phase::TurnAuth, Some(401), bad))
                .warn(kind::STUN_OK_TURN_FAILED, "stun ok turn not")
                .done(),
            row(TURNS, Protocol::Tls)
                .address("198.18.0.1:5349")
                .allocate(failed(Phase::TurnAuth, Some(401), bad))
                .warn(kind::NO_FINGERPRINT, "add FINGERPRINT")
                .done(),
            row("turn:198.18.0.9", Protocol::Udp)
                .address("198.18.0.9:3478")
                .release(failed(
                    Phase::Release,
                    None,
                    "allocation left on the server",
                ))
                .done(),
        ];
        let cross = [
            warning(kind::UDP_ONLY, "udp only".into()),
            warning(kind::UDP_ONLY, "udp only".into()),
        ];
        let got = fix_list(&rows, &cross);
        assert_eq!(
            got,
            vec![
                format!(
                    "{bad} [2 rows: turn:198.18.0.1?transport=tcp 198.18.0.1:3478, turns:198.18.0.1 198.18.0.1:5349]"
                ),
                "allocation left on the server [turn:198.18.0.9 198.18.0.9:3478]".to_string(),
                "udp only".to_string(),
                "add FINGERPRINT [2 rows: turn:198.18.0.1?transport=udp 198.18.0.1:3478, turns:198.18.0.1 198.18.0.1:5349]".to_string(),
                "stun ok turn not [turn:198.18.0.1?transport=tcp 198.18.0.1:3478]".to_string(),
            ]
        );
        assert!(fix_list(&[row(TURN_UDP, Protocol::Udp).healthy().done()], &[]).is_empty());
    }

    #[test]
    fn fix_list_shortens_long_row_lists() {
        let rows: Vec<CheckRow> = (1..=5)
            .map(|i| {
                row(&format!("turn:198.18.0.{i}"), Protocol::Udp)
                    .binding(failed(Phase::Stun, None, "silent"))
                    .done()
            })
            .collect();
        let got = fix_list(&rows, &[]);
        assert_eq!(got.len(), 1);
        assert!(
            got[0].starts_with("silent [5 rows: turn:198.18.0.1 "),
            "{got:?}"
        );
        assert!(got[0].ends_with(" and 2 more]"), "{got:?}");
    }

    #[test]
    fn check_verdict_table() {
        let bad = "wrong TURN credentials: the server rejected the username or password";
        let pass = || row(TURN_UDP, Protocol::Udp).healthy();
        let fail401 = || {
            row(TURN_TCP, Protocol::Tcp)
                .dns()
                .allocate(failed(Phase::TurnAuth, Some(401), bad))
        };
        let cases: Vec<(&str, Vec<B>, i32, &str)> = vec![
            ("no rows", vec![], 0, "ok: 0 rows passed"),
            ("one", vec![pass()], 0, "ok: 1 row passed"),
            (
                "warnings do not fail",
                vec![pass(), pass().warn("x", "y"), pass(), pass().warn("x", "z")],
                0,
                "ok: 4 rows passed (2 with warnings)",
            ),
            (
                "not checked does not fail",
                vec![row(TURN_UDP, Protocol::Udp)],
                0,
                "ok: 1 row passed",
            ),
            (
                "a failure",
                vec![pass(), fail401(), pass()],
                1,
                "FAILED: 1 of 3 rows (turn:198.18.0.1?transport=tcp 198.18.0.1:3478 tcp: allocate: wrong TURN credentials: the server rejected the username or password)",
            ),
            (
                "the first failed stage is named",
                vec![row(TURNS, Protocol::Tls)
                    .tls(failed(Phase::Tls, None, "certificate expired"))
                    .release(failed(Phase::Release, None, "later"))],
                1,
                "FAILED: 1 of 1 rows (turns:198.18.0.1 198.18.0.1:3478 tls: tls: certificate expired)",
            ),
        ];
        for (name, rows, code, summary) in cases {
            let rows: Vec<CheckRow> = rows.into_iter().map(B::done).collect();
            let v = check_verdict(&rows);
            assert_eq!(v.exit_code, code, "{name}");
            assert_eq!(v.ok, code == 0, "{name}");
            assert_eq!(v.summary, summary, "{name}");
        }
    }
}
