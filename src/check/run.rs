//! Running a whole `check`: plan, resolve, probe every row concurrently (bounded), then the
//! pure verdicts. Rows stream out as they finish; the report keeps plan order.
#![allow(clippy::disallowed_methods)] // the I/O edge: reads the clock

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;

use super::config::CheckConfig;
use super::plan::{plan, ProbeConfig, RowInput, Target};
use super::probe::probe_row;
use super::stages::{no_address_of_family, not_started, redirect_not_followed};
use super::verdict::{check_verdict, cross_warnings, finish_row, fix_list, CERT_EXPIRY_WARN_DAYS};
use crate::ice_url::{Host, ServerUrl};
use crate::model::check::*;
use crate::model::{ms, Outcome};
use crate::net::dns::{self, Families};
use crate::probe::failure::dns_failure;
use crate::probe::Budget;
use crate::servers::IceServer;

/// A host's DNS stage and the addresses it found.
type Resolved = (Stage<DnsInfo>, Vec<SocketAddr>);

/// Resolve one host (both families; the caller filters), timed, as a DNS stage.
async fn resolve(url: &ServerUrl, deadline: Instant) -> Resolved {
    if let Host::Ip(ip) = url.host {
        return (
            Stage::not_checked("IP literal: no DNS"),
            vec![SocketAddr::new(ip, url.port)],
        );
    }
    let started = Instant::now();
    let both = Families { v4: true, v6: true };
    match dns::resolve(url, both, deadline.into()).await {
        Ok(addrs) => (
            Stage::ok(
                ms(started.elapsed()),
                DnsInfo {
                    addresses: addrs.iter().map(|a| a.ip()).collect(),
                    srv: vec![],
                },
            ),
            addrs,
        ),
        Err(e) => (
            Stage::fail(Some(ms(started.elapsed())), dns_failure(&e)),
            vec![],
        ),
    }
}

/// Replace each host-name target by its SRV targets, when it has any (RFC 2782: otherwise the
/// name itself is used). `srv_of` collects `target:port` per given URL for the report.
async fn expand_srv(
    targets: Vec<Target>,
    deadline: Instant,
    srv_of: &mut HashMap<ServerUrl, Vec<String>>,
) -> Vec<Target> {
    let mut lookups = JoinSet::new();
    for (i, t) in targets.iter().enumerate() {
        let probed = t.probed.clone();
        lookups.spawn(async move { (i, dns::srv_lookup(&probed, deadline.into()).await) });
    }
    let mut found: HashMap<usize, Vec<dns::SrvTarget>> = HashMap::new();
    while let Some(Ok((i, r))) = lookups.join_next().await {
        // No SRV records, or the lookup failed: fall back to the name itself; the A/AAAA
        // lookup that follows reports DNS trouble in the row.
        if let Ok(list) = r {
            found.insert(i, list);
        }
    }
    let mut out = vec![];
    for (i, t) in targets.into_iter().enumerate() {
        match found.remove(&i).filter(|l| !l.is_empty()) {
            None => out.push(t),
            Some(list) => {
                for s in list {
                    let mut probed = t.probed.clone();
                    probed.host = Host::Name(s.host.clone());
                    probed.port = s.port;
                    srv_of
                        .entry(t.url.clone())
                        .or_default()
                        .push(format!("{}:{}", s.host, s.port));
                    out.push(Target {
                        url: t.url.clone(),
                        probed,
                        transport: t.transport,
                    });
                }
            }
        }
    }
    out
}

/// The row to probe for a 300's ALTERNATE-SERVER: same scheme, transport and credentials, at
/// the alternate address.
fn redirect(row: &CheckRow, input: &RowInput) -> Option<RowInput> {
    let alt = row.alternate_server?;
    let mut probed = input.probed.clone();
    probed.host = Host::Ip(alt.ip());
    probed.port = alt.port();
    Some(RowInput {
        probed,
        addr: alt,
        dns: Stage::not_checked(format!("ALTERNATE-SERVER of {}", input.addr)),
        ..input.clone()
    })
}

/// A row for a target that never got an address (DNS failed, or no address of the family).
fn unreachable_row(t: &Target, dns: Stage<DnsInfo>, why: &str) -> CheckRow {
    fn skipped<T>(why: &str) -> Stage<T> {
        Stage::not_checked(crate::model::Reason::skipped(why))
    }
    let mut row = CheckRow {
        url: t.url.clone(),
        probed_url: t.probed.clone(),
        family: None,
        address: None,
        transport: t.transport,
        turn: t.probed.is_turn(),
        dns,
        connect: skipped(why),
        tls: skipped(why),
        binding: skipped(why),
        challenge: skipped(why),
        allocate: skipped(why),
        permission: skipped(why),
        channel: skipped(why),
        send_echo: skipped(why),
        channel_echo: skipped(why),
        release: skipped(why),
        alternate_server: None,
        warnings: vec![],
        verdict: RowVerdict::Fail,
    };
    finish_row(&mut row, CERT_EXPIRY_WARN_DAYS);
    row
}

/// Run a check. Events stream to `events`; the report is returned and sent as `summary`.
pub async fn check(
    cfg: CheckConfig,
    events: mpsc::UnboundedSender<CheckEvent>,
    cancel: watch::Receiver<bool>,
) -> CheckReport {
    let t0 = Instant::now();
    let budget = Budget::new(t0, cfg.timeout);
    // Lookups and the wait for a slot end where the probes do; the rest is the releases'.
    let deadline = budget.probe_deadline();
    let urls: Vec<ServerUrl> = cfg.servers.iter().map(|s| s.url.clone()).collect();
    let _ = events.send(CheckEvent::Start(CheckStart {
        servers: urls.iter().map(|u| u.to_string()).collect(),
        timeout_ms: cfg.timeout.as_millis() as u64,
        all_transports: cfg.all_transports,
        insecure_tls: cfg.probe.tls.insecure,
    }));
    let mut targets = plan(&urls, cfg.all_transports);
    let mut srv_of: HashMap<ServerUrl, Vec<String>> = HashMap::new();
    if cfg.srv {
        targets = expand_srv(targets, deadline, &mut srv_of).await;
    }
    let creds: HashMap<ServerUrl, &IceServer> =
        cfg.servers.iter().map(|s| (s.url.clone(), s)).collect();

    // Resolve each distinct host:port once, concurrently.
    let mut lookups: JoinSet<(ServerUrl, Resolved)> = JoinSet::new();
    let mut seen = std::collections::HashSet::new();
    for t in &targets {
        let key = (t.probed.host.clone(), t.probed.port);
        if seen.insert(key) {
            let u = t.probed.clone();
            lookups.spawn(async move {
                let r = resolve(&u, deadline).await;
                (u, r)
            });
        }
    }
    let mut resolved: HashMap<(Host, u16), Resolved> = HashMap::new();
    while let Some(Ok((u, r))) = lookups.join_next().await {
        resolved.insert((u.host.clone(), u.port), r);
    }
    // Name the SRV targets in each row's DNS stage.
    let with_srv = |t: &Target, dns: Stage<DnsInfo>| match (dns, srv_of.get(&t.url)) {
        (Outcome::Ok(mut p), Some(srv)) => {
            p.info.srv = srv.clone();
            Outcome::Ok(p)
        }
        (dns, _) => dns,
    };

    // Rows: target × address of an allowed family.
    // One slot per planned row; a slot holds two rows when a 300 redirect was followed.
    let mut slots: Vec<Vec<CheckRow>> = vec![];
    let mut inputs: Vec<(usize, RowInput)> = vec![];
    for t in &targets {
        let (dns, addrs) = resolved
            .get(&(t.probed.host.clone(), t.probed.port))
            .cloned()
            .unwrap_or_else(|| (Stage::not_checked("lookup did not finish"), vec![]));
        let dns = with_srv(t, dns);
        let addrs: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| cfg.families.allows(a.ip()))
            .collect();
        if addrs.is_empty() {
            let why = if dns.is_failed() {
                "DNS failed"
            } else {
                "no address of the requested family"
            };
            let dns = no_address_of_family(&t.probed.host, dns, cfg.families);
            slots.push(vec![unreachable_row(t, dns, why)]);
            continue;
        }
        let server = creds.get(&t.url);
        for addr in addrs {
            inputs.push((
                slots.len(),
                RowInput {
                    url: t.url.clone(),
                    probed: t.probed.clone(),
                    addr,
                    dns: dns.clone(),
                    username: server.and_then(|s| s.username.clone()),
                    password: server.and_then(|s| s.credential.clone()),
                },
            ));
            slots.push(vec![]);
        }
    }

    // A zero would never let a row run: it counts as 1, here and in the report.
    let concurrency = cfg.concurrency.max(1);
    let sem = Arc::new(Semaphore::new(concurrency));
    // A fresh socket pool per run: its sockets close when the run's rows are done.
    let probe_cfg = Arc::new(ProbeConfig {
        udp: Arc::default(),
        ..cfg.probe.clone()
    });
    let mut tasks = JoinSet::new();
    for (i, input) in inputs {
        let sem = sem.clone();
        let pc = probe_cfg.clone();
        let cancel = cancel.clone();
        let timeout = cfg.timeout;
        tasks.spawn(async move {
            // Wait for a slot, but not past the deadline: a row still queued then was never
            // tried, and says so (`not_started`) instead of timing out against its server.
            let permit = tokio::time::timeout_at(deadline.into(), sem.acquire_owned()).await;
            // The semaphore is never closed; a failed acquire would only mean shutdown.
            let _permit = match permit {
                Ok(p) if Instant::now() < deadline => p.ok(),
                _ => {
                    let mut row = not_started(&input, concurrency, timeout);
                    finish_row(&mut row, CERT_EXPIRY_WARN_DAYS);
                    return (i, vec![row]);
                }
            };
            let mut rows = vec![probe_row(&pc, input.clone(), budget, cancel.clone()).await];
            // 300 Try Alternate: follow it once, and report both (never a chain of redirects).
            match redirect(&rows[0], &input) {
                Some(alt) if alt.addr == input.addr => redirect_not_followed(
                    &mut rows[0],
                    format!("300 Try Alternate names this same server ({}) as ALTERNATE-SERVER: a redirect loop, clients that follow it never get an allocation", input.addr),
                ),
                Some(alt) => {
                    let mut second = probe_row(&pc, alt, budget, cancel).await;
                    if let Some(again) = second.alternate_server {
                        redirect_not_followed(
                            &mut second,
                            format!("redirected again, to {again}: a chain or loop of 300 redirects; iceprobe follows one, as clients should not follow more"),
                        );
                    }
                    rows.push(second);
                }
                None => {}
            }
            for row in rows.iter_mut() {
                finish_row(row, CERT_EXPIRY_WARN_DAYS);
            }
            (i, rows)
        });
    }
    while let Some(r) = tasks.join_next().await {
        if let Ok((i, rows)) = r {
            for row in &rows {
                let _ = events.send(CheckEvent::Row(Box::new(row.clone())));
            }
            slots[i] = rows;
        }
    }
    let rows: Vec<CheckRow> = slots.into_iter().flatten().collect();
    let warnings = cross_warnings(&rows);
    let fix = fix_list(&rows, &warnings);
    let verdict = check_verdict(&rows);
    let report = CheckReport::new(
        CheckBody {
            timeout_ms: cfg.timeout.as_millis() as u64,
            concurrency,
            insecure_tls: cfg.probe.tls.insecure,
            duration_ms: ms(t0.elapsed()),
            rows,
            warnings,
            fix,
        },
        verdict,
    );
    let _ = events.send(CheckEvent::Summary(Box::new(report.clone())));
    report
}
