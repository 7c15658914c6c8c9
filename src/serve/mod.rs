//! `iceprobe serve`: a Prometheus exporter in the style of blackbox_exporter. Prometheus
//! schedules, stores and alerts; iceprobe runs a `check` per scrape of `/probe`.

pub mod config;
pub mod http;
pub mod metrics;
