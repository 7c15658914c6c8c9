//! A whole `nat` run: discovery per family, streamed exchanges, then the pure classifier.
#![allow(clippy::disallowed_methods)] // the I/O edge: reads the clock

use std::time::Instant;

use tokio::sync::{mpsc, watch};

use super::classify::classify;
use super::discover::{discover, NatConfig, Progress};
use crate::model::nat::{
    family_summary, FamilyResult, NatBody, NatEvent, NatReport, NatStart, Observations,
};
use crate::model::Verdict;

/// Run NAT discovery. Exchanges stream to `events` as they happen; the report is returned and
/// sent as `summary`.
pub async fn run(
    cfg: NatConfig,
    events: mpsc::UnboundedSender<NatEvent>,
    cancel: watch::Receiver<bool>,
) -> NatReport {
    let t0 = Instant::now();
    let _ = events.send(NatEvent::Start(NatStart {
        servers: cfg.servers.iter().map(|s| s.to_string()).collect(),
        families: cfg.families.list(),
        timeout_ms: cfg.timeout.as_millis() as u64,
        lifetime: cfg.lifetime.is_some(),
    }));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let progress = Progress { tx, t0 };
    let forward = async {
        while let Some(x) = rx.recv().await {
            let _ = events.send(NatEvent::Exchange(Box::new(x)));
        }
    };
    // `discover` owns the progress sender and drops it when done, which ends `forward`.
    let (observations, ()) = tokio::join!(discover(&cfg, progress, cancel), forward);
    let families = results(observations);
    let verdict = nat_verdict(&families);
    let report = NatReport::new(
        NatBody {
            duration_ms: crate::model::ms(t0.elapsed()),
            families,
        },
        verdict,
    );
    let _ = events.send(NatEvent::Summary(Box::new(report.clone())));
    report
}

/// Each family's observations with the classifier's verdict on them (pure).
pub fn results(observations: Vec<Observations>) -> Vec<FamilyResult> {
    observations
        .into_iter()
        .map(|o| FamilyResult {
            verdict: classify(&o),
            observations: o,
        })
        .collect()
}

/// The run's verdict (pure): exit 0 only when discovery completed for every family probed
/// ([`NatVerdict::exit_code`]); 1 when some family could not be determined or nothing was probed.
pub fn nat_verdict(families: &[FamilyResult]) -> Verdict {
    if families.is_empty() {
        return Verdict {
            ok: false,
            exit_code: 1,
            summary: "could not determine: no address family was probed".into(),
        };
    }
    let code = families
        .iter()
        .map(|f| f.verdict.exit_code())
        .max()
        .unwrap_or(1);
    let parts: Vec<String> = families
        .iter()
        .map(|f| family_summary(&f.verdict))
        .collect();
    Verdict {
        ok: code == 0,
        exit_code: code,
        summary: if code == 0 {
            parts.join("; ")
        } else {
            format!("could not determine: {}", parts.join("; "))
        },
    }
}
