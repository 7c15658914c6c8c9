//! Reading one side's ICE state from webrtc's stats API (`getStats`): candidates (including the
//! remote prflx ones created from inbound checks), candidate pairs with state and nomination,
//! and the selected pair.
#![allow(clippy::disallowed_methods)] // the I/O edge: get_stats wants `now`

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use webrtc::peer_connection::{PeerConnection, RTCStatsReportEntry, StatsSelector};

use super::cause::describe_pair;
use super::peer::{candidate_from_ice, candidate_type};
use crate::model::connect::{ConnectCandidate, PairReport, SelectedPair};

/// What the stats showed.
#[derive(Debug, Default)]
pub struct IceStats {
    /// Remote candidates the stats know (signaled and peer-reflexive).
    pub remote: Vec<ConnectCandidate>,
    /// Local candidates the stats know.
    pub local: Vec<ConnectCandidate>,
    /// The pairs the stats API knows (webrtc 0.21.1: the selected one only; every pair comes
    /// from `connect::pairs`).
    pub pairs: Vec<PairReport>,
    /// The selected pair.
    pub selected: Option<SelectedPair>,
}

fn from_stats(
    c: &rtc::statistics::stats::ice_candidate::RTCIceCandidateStats,
) -> Option<ConnectCandidate> {
    Some(ConnectCandidate {
        kind: candidate_type(c.candidate_type)?,
        transport: c.protocol.clone(),
        address: c.address.clone().unwrap_or_default(),
        port: c.port,
        related_address: (!c.related_address.is_empty()).then(|| c.related_address.clone()),
        related_port: (!c.related_address.is_empty()).then_some(c.related_port),
        url: (!c.url.is_empty()).then(|| c.url.clone()),
    })
}

/// Take a snapshot of `pc`'s ICE state. Candidates (including remote prflx, which the ICE agent
/// creates from inbound checks) and the selected pair come from the ICE transport; the pair's
/// state, nomination and check counters from `getStats`. webrtc 0.21.1's stats hold only the
/// selected pair: the other pairs the agent tried are not exposed by its API.
pub async fn ice_stats(pc: &Arc<dyn PeerConnection>) -> IceStats {
    let mut out = IceStats::default();
    let mut by_id: HashMap<String, ConnectCandidate> = HashMap::new();
    let mut selected_ids = None;
    if let Some(sctp) = pc.sctp().await {
        let ice = sctp.transport().ice_transport();
        for (list, cands) in [
            (
                &mut out.local,
                ice.get_local_candidates().await.unwrap_or_default(),
            ),
            (
                &mut out.remote,
                ice.get_remote_candidates().await.unwrap_or_default(),
            ),
        ] {
            for c in cands {
                if let Some(cc) = candidate_from_ice(&c, None) {
                    by_id.insert(c.id.clone(), cc.clone());
                    list.push(cc);
                }
            }
        }
        if let Ok(Some(pair)) = ice.get_selected_candidate_pair().await {
            let (l, r) = (pair.local(), pair.remote());
            if let (Some(lc), Some(rc)) = (candidate_from_ice(l, None), candidate_from_ice(r, None))
            {
                by_id.insert(l.id.clone(), lc.clone());
                by_id.insert(r.id.clone(), rc.clone());
                out.selected = Some(SelectedPair {
                    description: describe_pair(&lc, &rc),
                    local: lc,
                    remote: rc,
                });
                selected_ids = Some((l.id.clone(), r.id.clone()));
            }
        }
    }
    let report = pc.get_stats(Instant::now(), StatsSelector::None).await;
    for e in report.iter() {
        match e {
            RTCStatsReportEntry::LocalCandidate(c) | RTCStatsReportEntry::RemoteCandidate(c) => {
                let id = c
                    .stats
                    .id
                    .trim_start_matches("RTCLocalIceCandidate_")
                    .trim_start_matches("RTCRemoteIceCandidate_")
                    .to_string();
                if let Some(cc) = from_stats(c) {
                    by_id.entry(id).or_insert(cc);
                }
            }
            _ => {}
        }
    }
    for p in report.candidate_pairs() {
        let (Some(l), Some(r)) = (
            by_id.get(&p.local_candidate_id),
            by_id.get(&p.remote_candidate_id),
        ) else {
            continue;
        };
        let state = serde_json::to_value(p.state)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_else(|| "unspecified".into());
        out.pairs.push(PairReport {
            local: l.clone(),
            remote: r.clone(),
            state,
            nominated: p.nominated,
            requests_sent: p.requests_sent,
            responses_received: p.responses_received,
            requests_received: 0,
            rtt_ms: (p.current_round_trip_time > 0.0)
                .then(|| (p.current_round_trip_time * 1_000_000.0).round() / 1000.0),
        });
    }
    if out.pairs.is_empty() {
        // No stats entry (e.g. never connected): still list the selected pair if there is one.
        if let (Some(sel), Some(_)) = (&out.selected, &selected_ids) {
            out.pairs.push(PairReport {
                local: sel.local.clone(),
                remote: sel.remote.clone(),
                state: "succeeded".into(),
                nominated: true,
                requests_sent: 0,
                responses_received: 0,
                requests_received: 0,
                rtt_ms: None,
            });
        }
    }
    out
}
