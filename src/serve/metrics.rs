//! A `check` report as Prometheus metrics (pure: report in, text out).
//!
//! Names follow Prometheus conventions: an `iceprobe_` prefix, base units (`_seconds`),
//! `_success` gauges of 0/1, and labels for the dimensions (`transport`, `address`, `stage`).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::model::check::{stages as model_stages, CheckReport, CheckRow};
use crate::model::Outcome;

type Labels = Vec<(String, String)>;
type FGauge = Family<Labels, Gauge<f64, AtomicU64>>;

/// What metrics need from a stage.
struct StageView {
    /// `Some(true)` passed, `Some(false)` failed, `None` not checked (no sample emitted).
    success: Option<bool>,
    seconds: Option<f64>,
    code: Option<u16>,
}

/// Every stage of a row, by the name used in the `stage` label (the report's field name).
fn stages(row: &CheckRow) -> Vec<(&'static str, StageView)> {
    model_stages(row)
        .into_iter()
        .map(|v| {
            let view = match &v.status {
                Outcome::Ok(ms) => StageView {
                    success: Some(true),
                    seconds: Some(ms / 1000.0),
                    code: None,
                },
                Outcome::Failed(f) => StageView {
                    success: Some(false),
                    seconds: f.ms.map(|m| m / 1000.0),
                    code: f.failure.code,
                },
                Outcome::NotChecked { .. } => StageView {
                    success: None,
                    seconds: None,
                    code: None,
                },
            };
            (v.name.field(), view)
        })
        .collect()
}

fn labels(row: &CheckRow, extra: &[(&str, &str)]) -> Labels {
    let mut l: Labels = vec![
        ("url".into(), row.probed_url.to_string()),
        (
            "address".into(),
            row.address.map(|a| a.to_string()).unwrap_or_default(),
        ),
        ("transport".into(), row.transport.to_string()),
    ];
    l.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    l
}

/// Render `report` (and the probe's wall time) in the Prometheus text format.
pub fn encode_check(report: &CheckReport, probe_seconds: f64) -> String {
    let mut reg = Registry::with_prefix("iceprobe");
    let success = Gauge::<f64, AtomicU64>::default();
    success.set(if report.verdict.ok { 1.0 } else { 0.0 });
    reg.register(
        "probe_success",
        "Whether every row of the check passed (1) or not (0)",
        success,
    );
    let duration = Gauge::<f64, AtomicU64>::default();
    duration.set(probe_seconds);
    reg.register_with_unit(
        "probe_duration",
        "Wall time of the whole probe",
        Unit::Seconds,
        duration,
    );

    let row_success = FGauge::default();
    let stage_success = FGauge::default();
    let stage_seconds = FGauge::default();
    let relay_rtt = FGauge::default();
    let cert_not_after = FGauge::default();
    let alloc_success = FGauge::default();
    let error_code = FGauge::default();
    let warnings = FGauge::default();
    for row in &report.rows {
        row_success.get_or_create(&labels(row, &[])).set(
            if row.verdict == crate::model::check::RowVerdict::Fail {
                0.0
            } else {
                1.0
            },
        );
        for (name, s) in stages(row) {
            let l = labels(row, &[("stage", name)]);
            if let Some(ok) = s.success {
                stage_success
                    .get_or_create(&l)
                    .set(if ok { 1.0 } else { 0.0 });
            }
            if let (Some(true), Some(secs)) = (s.success, s.seconds) {
                stage_seconds.get_or_create(&l).set(secs);
            }
            if let Some(code) = s.code {
                error_code
                    .get_or_create(&labels(
                        row,
                        &[("stage", name), ("code", &code.to_string())],
                    ))
                    .set(1.0);
            }
        }
        if row.turn {
            if let Some(ok) =
                (!matches!(row.allocate, Outcome::NotChecked { .. })).then(|| row.allocate.is_ok())
            {
                alloc_success
                    .get_or_create(&labels(row, &[]))
                    .set(if ok { 1.0 } else { 0.0 });
            }
        }
        for (method, stage) in [("send", &row.send_echo), ("channel", &row.channel_echo)] {
            if let Some(ms) = stage.passed().map(|p| p.ms) {
                relay_rtt
                    .get_or_create(&labels(row, &[("method", method)]))
                    .set(ms / 1000.0);
            }
        }
        if let Some(leaf) = row.tls.info().and_then(|t| t.chain.first()) {
            if let Some(ts) = crate::serve::metrics::rfc3339_to_unix(&leaf.not_after) {
                cert_not_after
                    .get_or_create(&labels(row, &[]))
                    .set(ts as f64);
            }
        }
        for w in &row.warnings {
            warnings
                .get_or_create(&labels(row, &[("kind", w.kind.as_str())]))
                .set(1.0);
        }
    }
    reg.register(
        "row_success",
        "Whether a server x address x transport row passed (warnings allowed)",
        row_success,
    );
    reg.register(
        "stage_success",
        "Whether a stage passed (1) or failed (0); absent when not checked",
        stage_success,
    );
    reg.register_with_unit(
        "stage_duration",
        "Time a passed stage took",
        Unit::Seconds,
        stage_seconds,
    );
    reg.register_with_unit(
        "relay_rtt",
        "Round trip of data echoed through the relay",
        Unit::Seconds,
        relay_rtt,
    );
    reg.register(
        "allocation_success",
        "Whether the TURN Allocate succeeded",
        alloc_success,
    );
    reg.register(
        "tls_cert_not_after_timestamp_seconds",
        "notAfter of the server's leaf certificate, as a Unix timestamp",
        cert_not_after,
    );
    reg.register(
        "error_code",
        "A STUN/TURN ERROR-CODE a stage failed with (value 1)",
        error_code,
    );
    reg.register(
        "warning",
        "An operator warning raised for a row (value 1)",
        warnings,
    );
    let expectations = FGauge::default();
    for e in &report.expectations {
        expectations
            .get_or_create(&vec![("expression".to_string(), e.expression.clone())])
            .set(if e.passed { 1.0 } else { 0.0 });
    }
    reg.register(
        "expectation_success",
        "Whether a module expectation held (1) or not (0)",
        expectations,
    );
    let mut out = String::new();
    // Encoding into a String cannot fail.
    let _ = encode(&mut out, &reg);
    out
}

/// Parse `YYYY-MM-DDTHH:MM:SSZ` (what the TLS module writes) to Unix seconds.
pub fn rfc3339_to_unix(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days from civil (Howard Hinnant's algorithm), proleptic Gregorian.
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_conversion() {
        assert_eq!(rfc3339_to_unix("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_to_unix("2026-11-22T01:00:00Z"), Some(1_795_309_200));
        assert_eq!(rfc3339_to_unix("2000-02-29T12:34:56Z"), Some(951_827_696));
        assert_eq!(rfc3339_to_unix("garbage"), None);
    }

    #[test]
    fn golden_check_report_as_metrics() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/golden/check.json"
        ))
        .unwrap();
        let report: CheckReport = serde_json::from_str(&text).unwrap();
        let m = encode_check(&report, 0.5);
        for want in [
            "# TYPE iceprobe_probe_success gauge",
            "iceprobe_probe_duration_seconds 0.5",
            "iceprobe_stage_success{url=",
            "stage=\"allocate\"",
            "iceprobe_tls_cert_not_after_timestamp_seconds{",
            "iceprobe_error_code{",
            "code=\"401\"",
            "iceprobe_relay_rtt_seconds{",
            "# EOF",
        ] {
            assert!(m.contains(want), "missing {want:?} in:\n{m}");
        }
        // Not-checked stages emit no sample: unknown is not 0.
        assert!(
            !m.contains("stage=\"tls\"")
                || report
                    .rows
                    .iter()
                    .any(|r| !matches!(r.tls, Outcome::NotChecked { .. }))
        );
    }
}
