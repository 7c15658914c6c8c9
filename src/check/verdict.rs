//! Pure decisions over finished `check` rows: warnings, row verdicts, cross-row warnings, the
//! "what to fix" list and the run's verdict. The driver fills the stages; everything here only
//! reads them, so it is table-tested without a network.
//!
//! Unknown is not false: a `not-checked` stage never counts as a failure, and a warning is only
//! raised from something that was measured.

use crate::ice_url::Protocol;
use crate::ip_class::non_public;
use crate::model::check::{
    failed_stages, row_failed, row_label, CheckRow, RowVerdict, Warning, WarningKind,
};
use crate::model::tls::Verification;
use crate::model::{Family, Outcome, Verdict};

pub use crate::model::check::CERT_EXPIRY_WARN_DAYS;

fn warning(kind: WarningKind, message: String) -> Warning {
    Warning { kind, message }
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
                WarningKind::TlsNotVerified,
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
                    WarningKind::CertificateExpiring,
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
                WarningKind::NoFingerprint,
                "the server answers STUN Binding without FINGERPRINT (RFC 8489 §14.7): clients that demultiplex STUN by FINGERPRINT may drop its answers; enable fingerprint in coturn".to_string(),
            ));
        }
    }
    if let Some(a) = row.allocate.info() {
        {
            let ip = a.relayed.ip();
            if let Some(what) = non_public(ip) {
                out.push(warning(
                    WarningKind::PrivateRelayAddress,
                    format!(
                        "relayed address {ip} is {what}: peers outside the server's network cannot reach it; set external-ip / relay-ip in coturn to the public address"
                    ),
                ));
            }
        }
        match a.integrity {
            None => out.push(warning(
                WarningKind::NoMessageIntegrity,
                "the Allocate success response has no MESSAGE-INTEGRITY: the answer is not authenticated (RFC 8656 §7.3); check the server or a middlebox rewriting TURN".to_string(),
            )),
            Some(false) => out.push(warning(
                WarningKind::BadMessageIntegrity,
                "the Allocate success response has an invalid MESSAGE-INTEGRITY: the server signs with a different key than our credentials (realm or password mismatch) or a middlebox rewrote it".to_string(),
            )),
            Some(true) => {}
        }
    }
    let redirect_failed = [row.challenge.code(), row.allocate.code()].contains(&Some(300));
    if let (Some(alt), false) = (&row.alternate_server, redirect_failed) {
        out.push(warning(
            WarningKind::Redirected,
            format!(
                "the server redirects Allocate to ALTERNATE-SERVER {alt} (300 Try Alternate, RFC 8489 §10): clients must follow it; the alternate is checked in the next row"
            ),
        ));
    }
    if row.turn && row.binding.is_ok() && (row.challenge.is_failed() || row.allocate.is_failed()) {
        out.push(warning(
            WarningKind::StunOkTurnFailed,
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

/// The host of a row's probed URL.
fn row_host(row: &CheckRow) -> String {
    row.probed_url.host.to_string()
}

/// Warnings across rows (pure), per host and address family, in first-seen order:
/// `udp-only` when a UDP row passed but a TCP or TLS row failed (users behind firewalls that
/// block UDP will fail), `udp-blocked` when a TCP or TLS row passed but a UDP row failed.
pub fn cross_warnings(rows: &[CheckRow]) -> Vec<Warning> {
    let mut groups: Vec<((String, &str), Vec<&CheckRow>)> = Vec::new();
    for row in rows {
        let key = (row_host(row), row.family.map_or("", Family::as_str));
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
                WarningKind::UdpOnly,
                format!(
                    "{host} ({family}): UDP works but {} fails: enterprise users behind firewalls that block UDP will fail: fix TURN over TCP/TLS",
                    failed_streams()
                ),
            ));
        }
        if any(false, false) && any(true, true) {
            out.push(warning(
                WarningKind::UdpBlocked,
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
                Outcome::Failed(f) => Some((f.failure.cause.clone(), Some(row_label(r)))),
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
                    Outcome::Failed(f) => format!("{}: {}", s.name.column(), f.failure.cause),
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
    use crate::model::{Failure, Phase};

    /// A row builder: every stage not checked, then the case sets what it needs.
    #[derive(Clone)]
    struct B(CheckRow);

    fn nc<T>() -> Stage<T> {
        Stage::not_checked("not applicable")
    }

    fn row(probed: &str, transport: Protocol) -> B {
        B(CheckRow {
            url: probed.parse().unwrap(),
            probed_url: probed.parse().unwrap(),
            family: Some(crate::model::Family::Ipv4),
            address: Some("198.18.0.1:3478".parse().unwrap()),
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
        Stage::ok(1.0, info)
    }

    fn failed<T>(phase: Phase, code: Option<u16>, cause: &str) -> Stage<T> {
        Stage::fail(Some(2.0), Failure::new(phase, None, cause).with_code(code))
    }

    fn binding(fingerprint: bool) -> BindingInfo {
        BindingInfo {
            mapped: "198.18.0.254:40000".parse().unwrap(),
            software: None,
            fingerprint,
            sends: 1,
        }
    }

    fn alloc(relayed: &str, integrity: Option<bool>) -> AllocationInfo {
        AllocationInfo {
            relayed: relayed.parse().unwrap(),
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
                addresses: vec!["198.18.0.1".parse().unwrap()],
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
            self.0.family = (!f.is_empty()).then(|| f.parse().unwrap());
            self
        }
        fn url(mut self, u: &str) -> Self {
            self.0.url = u.parse().unwrap();
            self
        }
        fn address(mut self, a: &str) -> Self {
            self.0.address = (!a.is_empty()).then(|| a.parse().unwrap());
            self
        }
        fn warn(mut self, kind: WarningKind, message: &str) -> Self {
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
                    peer: "198.18.0.254:40001".parse().unwrap(),
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

    fn kinds(w: &[Warning]) -> Vec<WarningKind> {
        w.iter().map(|w| w.kind).collect()
    }

    #[test]
    fn row_warnings_table() {
        let udp = || row(TURN_UDP, Protocol::Udp);
        let relay = |a: &str| udp().healthy().allocate(ok(alloc(a, Some(true))));
        let skipped = |would_fail| Verification::Skipped { would_fail };
        let cases: Vec<(&str, B, Vec<WarningKind>)> = vec![
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
                vec![WarningKind::PrivateRelayAddress],
            ),
            (
                "RFC 1918 172.16/12",
                relay("172.31.0.1:49152"),
                vec![WarningKind::PrivateRelayAddress],
            ),
            ("172.32 is public", relay("172.32.0.1:49152"), vec![]),
            (
                "RFC 1918 192.168/16",
                relay("192.168.1.1:49152"),
                vec![WarningKind::PrivateRelayAddress],
            ),
            (
                "CGNAT 100.64/10",
                relay("100.64.0.7:49152"),
                vec![WarningKind::PrivateRelayAddress],
            ),
            (
                "CGNAT upper end",
                relay("100.127.255.1:49152"),
                vec![WarningKind::PrivateRelayAddress],
            ),
            ("100.128 is public", relay("100.128.0.1:49152"), vec![]),
            (
                "loopback",
                relay("127.0.0.1:49152"),
                vec![WarningKind::PrivateRelayAddress],
            ),
            (
                "link-local",
                relay("169.254.3.4:49152"),
                vec![WarningKind::PrivateRelayAddress],
            ),
            (
                "IPv6 ULA",
                relay("[fd00::5]:49152"),
                vec![WarningKind::PrivateRelayAddress],
            ),
            (
                "IPv6 link-local",
                relay("[fe80::1]:49152"),
                vec![WarningKind::PrivateRelayAddress],
            ),
            (
                "IPv6 loopback",
                relay("[::1]:49152"),
                vec![WarningKind::PrivateRelayAddress],
            ),
            ("IPv6 global", relay("[2001:db8::1]:49152"), vec![]),
            (
                "v4-mapped private",
                relay("[::ffff:10.0.0.1]:1"),
                vec![WarningKind::PrivateRelayAddress],
            ),
            (
                "no FINGERPRINT",
                udp().binding(ok(binding(false))),
                vec![WarningKind::NoFingerprint],
            ),
            (
                "binding failed: FINGERPRINT unknown, not absent",
                udp().binding(failed(Phase::Stun, None, "silent")),
                vec![],
            ),
            (
                "no MESSAGE-INTEGRITY",
                udp().healthy().allocate(ok(alloc("198.18.0.1:1", None))),
                vec![WarningKind::NoMessageIntegrity],
            ),
            (
                "bad MESSAGE-INTEGRITY",
                udp()
                    .healthy()
                    .allocate(ok(alloc("198.18.0.1:1", Some(false)))),
                vec![WarningKind::BadMessageIntegrity],
            ),
            (
                "STUN ok, allocate failed",
                udp()
                    .binding(ok(binding(true)))
                    .challenge(ok(ChallengeInfo { realm: "r".into() }))
                    .allocate(failed(Phase::TurnAuth, Some(401), "wrong TURN credentials")),
                vec![WarningKind::StunOkTurnFailed],
            ),
            (
                "STUN ok, no 401 challenge",
                udp().binding(ok(binding(true))).challenge(failed(
                    Phase::TurnAuth,
                    None,
                    "no challenge",
                )),
                vec![WarningKind::StunOkTurnFailed],
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
                vec![WarningKind::CertificateExpiring],
            ),
            (
                "certificate expires today",
                row(TURNS, Protocol::Tls).tls(ok(tls(0, Verification::Verified))),
                vec![WarningKind::CertificateExpiring],
            ),
            (
                "13 days warns, 14 does not",
                row(TURNS, Protocol::Tls).tls(ok(tls(13, Verification::Verified))),
                vec![WarningKind::CertificateExpiring],
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
                vec![WarningKind::TlsNotVerified],
            ),
            (
                "--insecure and it would verify",
                row(TURNS, Protocol::Tls).tls(ok(tls(90, skipped(None)))),
                vec![WarningKind::TlsNotVerified],
            ),
            (
                "several at once, in a stable order",
                row(TURNS, Protocol::Tls)
                    .tls(ok(tls(2, skipped(None))))
                    .healthy()
                    .binding(ok(binding(false)))
                    .allocate(ok(alloc("100.100.0.1:5", None))),
                vec![
                    WarningKind::TlsNotVerified,
                    WarningKind::CertificateExpiring,
                    WarningKind::NoFingerprint,
                    WarningKind::PrivateRelayAddress,
                    WarningKind::NoMessageIntegrity,
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
            (
                "warned",
                udp().healthy().warn(WarningKind::Redirected, "y"),
                RowVerdict::Warn,
            ),
            (
                "a failed stage wins over warnings",
                udp()
                    .healthy()
                    .warn(WarningKind::Redirected, "y")
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
        assert_eq!(kinds(&r.warnings), vec![WarningKind::PrivateRelayAddress]);
        assert_eq!(r.verdict, RowVerdict::Warn);
    }

    #[test]
    fn cross_warnings_table() {
        let pass = |u: &str, t| row(u, t).healthy();
        let fail = |u: &str, t| {
            row(u, t).allocate(failed(Phase::TurnAuth, Some(401), "wrong TURN credentials"))
        };
        let cases: Vec<(&str, Vec<B>, Vec<WarningKind>)> = vec![
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
                vec![WarningKind::UdpOnly],
            ),
            (
                "UDP passes, TLS fails (a warned UDP row still passes)",
                vec![
                    pass(TURN_UDP, Protocol::Udp).warn(WarningKind::Redirected, "y"),
                    pass(TURN_TCP, Protocol::Tcp),
                    fail(TURNS, Protocol::Tls),
                ],
                vec![WarningKind::UdpOnly],
            ),
            (
                "UDP fails, TLS passes",
                vec![fail(TURN_UDP, Protocol::Udp), pass(TURNS, Protocol::Tls)],
                vec![WarningKind::UdpBlocked],
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
                vec![WarningKind::UdpOnly],
            ),
            (
                "not-checked UDP is not 'passing'",
                vec![row(TURN_UDP, Protocol::Udp), fail(TURN_TCP, Protocol::Tcp)],
                vec![WarningKind::UdpOnly],
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
                .warn(WarningKind::NoFingerprint, "add FINGERPRINT")
                .done(),
            row(TURN_TCP, Protocol::Tcp)
                .allocate(failed(Phase::TurnAuth, Some(401), bad))
                .warn(WarningKind::StunOkTurnFailed, "stun ok turn not")
                .done(),
            row(TURNS, Protocol::Tls)
                .address("198.18.0.1:5349")
                .allocate(failed(Phase::TurnAuth, Some(401), bad))
                .warn(WarningKind::NoFingerprint, "add FINGERPRINT")
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
            warning(WarningKind::UdpOnly, "udp only".into()),
            warning(WarningKind::UdpOnly, "udp only".into()),
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
                vec![pass(), pass().warn(WarningKind::Redirected, "y"), pass(), pass().warn(WarningKind::Redirected, "z")],
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
