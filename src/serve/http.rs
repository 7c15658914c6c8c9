//! The exporter's HTTP endpoints (axum): `/probe?target=URL&module=NAME` runs a check and
//! answers with its metrics, `/metrics` has the exporter's own, `/` says how to use it.
#![allow(clippy::disallowed_methods)] // the I/O edge: reads the clock

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::{mpsc, watch, Semaphore};

use super::config::Module;
use super::metrics::encode_check;
use crate::check::config::CheckSettings;
use crate::check::run::check;

/// OpenMetrics text, as prometheus-client writes it.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Seconds subtracted from Prometheus' scrape timeout so the answer arrives in time
/// (blackbox_exporter's `timeout_offset`).
const TIMEOUT_OFFSET: Duration = Duration::from_millis(500);

/// Shared exporter state.
pub struct Exporter {
    modules: BTreeMap<String, Module>,
    slots: Semaphore,
    max_concurrent: usize,
    in_flight: AtomicU64,
    /// (module, result) → count.
    probes: Mutex<HashMap<(String, &'static str), u64>>,
    /// SIGINT / SIGTERM: probes in flight stop at once and release their allocations, so the
    /// graceful shutdown (which waits for open requests) does not wait out their deadlines.
    stop: watch::Receiver<bool>,
}

impl Exporter {
    /// An exporter running at most `max_concurrent` probes at once; `stop` turning `true`
    /// cancels the probes in flight (each still releases its allocations).
    pub fn new(
        modules: BTreeMap<String, Module>,
        max_concurrent: usize,
        stop: watch::Receiver<bool>,
    ) -> Arc<Exporter> {
        Arc::new(Exporter {
            modules,
            slots: Semaphore::new(max_concurrent.max(1)),
            max_concurrent: max_concurrent.max(1),
            in_flight: AtomicU64::new(0),
            probes: Mutex::new(HashMap::new()),
            stop,
        })
    }

    fn count(&self, module: &str, result: &'static str) {
        let mut p = self.probes.lock().unwrap_or_else(|e| e.into_inner());
        *p.entry((module.to_string(), result)).or_default() += 1;
    }
}

/// The router.
pub fn router(state: Arc<Exporter>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/probe", get(probe))
        .route("/metrics", get(own_metrics))
        .with_state(state)
}

/// Serve until `shutdown` resolves.
pub async fn serve(
    listen: SocketAddr,
    state: Arc<Exporter>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn index(State(s): State<Arc<Exporter>>) -> impl IntoResponse {
    let modules: Vec<&str> = s.modules.keys().map(String::as_str).collect();
    format!(
        "iceprobe exporter\n\n  /probe?target=turns:turn.example.org&module=NAME   run a check, get its metrics\n  /metrics                                          the exporter's own metrics\n\nmodules: {}\n",
        modules.join(", ")
    )
}

fn bad(why: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        why + "\n",
    )
        .into_response()
}

/// Probe deadline: the module's timeout, shortened to fit Prometheus' scrape timeout.
pub fn probe_timeout(module: Duration, scrape_header: Option<&str>) -> Duration {
    let scrape = scrape_header
        .and_then(|h| h.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| Duration::from_secs_f64(s.min(3600.0)).saturating_sub(TIMEOUT_OFFSET));
    match scrape {
        Some(s) if !s.is_zero() => module.min(s),
        Some(_) => Duration::from_millis(100),
        None => module,
    }
}

async fn probe(
    State(s): State<Arc<Exporter>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(k) = q.keys().find(|k| *k != "target" && *k != "module") {
        return bad(format!("unknown parameter {k:?}: only target and module are accepted; credentials belong in the module file"));
    }
    let Some(target) = q.get("target") else {
        return bad("missing ?target= (e.g. ?target=turns:turn.example.org&module=default)".into());
    };
    let name = q.get("module").map(String::as_str).unwrap_or("default");
    let Some(module) = s.modules.get(name) else {
        let known: Vec<&str> = s.modules.keys().map(String::as_str).collect();
        return bad(format!(
            "unknown module {name:?}; configured: {}",
            known.join(", ")
        ));
    };
    let started = Instant::now();
    let timeout = probe_timeout(
        module.check.timeout,
        headers
            .get("x-prometheus-scrape-timeout-seconds")
            .and_then(|v| v.to_str().ok()),
    );
    let settings = match module.settings(target, timeout) {
        Ok(c) => c,
        Err(e) => return bad(e.to_string()),
    };
    // Bounded concurrency: wait for a slot, but never past this probe's own deadline.
    let permit = match tokio::time::timeout(timeout, s.slots.acquire()).await {
        Ok(Ok(p)) => p,
        _ => {
            s.count(name, "busy");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("all {} probe slots busy\n", s.max_concurrent),
            )
                .into_response();
        }
    };
    s.in_flight.fetch_add(1, Ordering::Relaxed);
    let remaining = timeout
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(100));
    // Built once the slot is ours: what is derived from the deadline (the echo wait) is
    // derived from what is left of it, and REST credentials are minted for this probe.
    let cfg = CheckSettings {
        timeout: remaining,
        ..settings
    }
    .config(crate::net::unix_now());
    let (tx, _rx) = mpsc::unbounded_channel();
    let mut report = check(cfg, tx, s.stop.clone()).await;
    crate::expect::apply_expectations(&mut report, &module.expect);
    drop(permit);
    s.in_flight.fetch_sub(1, Ordering::Relaxed);
    s.count(
        name,
        if report.verdict.ok {
            "success"
        } else {
            "failure"
        },
    );
    let body = encode_check(&report, started.elapsed().as_secs_f64());
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

async fn own_metrics(State(s): State<Arc<Exporter>>) -> Response {
    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::registry::Registry;
    let mut reg = Registry::with_prefix("iceprobe_exporter");
    let probes = Family::<Vec<(String, String)>, Counter>::default();
    for ((module, result), n) in s.probes.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        probes
            .get_or_create(&vec![
                ("module".into(), module.clone()),
                ("result".into(), result.to_string()),
            ])
            .inc_by(*n);
    }
    reg.register(
        "probes",
        "Probes run, by module and result (success, failure, busy)",
        probes,
    );
    let in_flight = Gauge::<i64>::default();
    in_flight.set(s.in_flight.load(Ordering::Relaxed) as i64);
    reg.register("probes_in_flight", "Probes running now", in_flight);
    let slots = Gauge::<i64>::default();
    slots.set(s.max_concurrent as i64);
    reg.register("probe_slots", "Probes allowed at once", slots);
    let info = prometheus_client::metrics::info::Info::new(vec![(
        "version".to_string(),
        env!("CARGO_PKG_VERSION").to_string(),
    )]);
    reg.register("build", "iceprobe's version", info);
    let mut out = String::new();
    let _ = encode(&mut out, &reg);
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], out).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrape_timeout_shortens_the_probe() {
        let m = Duration::from_secs(10);
        assert_eq!(probe_timeout(m, None), m);
        assert_eq!(probe_timeout(m, Some("4")), Duration::from_millis(3500));
        assert_eq!(probe_timeout(m, Some("30")), m);
        assert_eq!(probe_timeout(m, Some("0.2")), Duration::from_millis(100));
        assert_eq!(probe_timeout(m, Some("nonsense")), m);
        assert_eq!(probe_timeout(m, Some("-3")), m);
    }
}
