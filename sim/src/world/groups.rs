//! Generated WorkSpace groups (`workspace_groups`): many WorkSpaces from one entry, with random connections,
//! Poisson-distributed health faults and shared outages, deterministic for the world's seed.

use super::workspace::{Workspace, WorkspaceFault};
use crate::estate::{self, Cure, FaultState};
use crate::rng::Rng;
use chrono::{DateTime, Utc};

/// Minutes over which a group's `failures_per_week` are placed.
const FAULT_HORIZON_MINUTES: f64 = 7.0 * 1440.0;

/// The random stream of one WorkSpace group: derived from the world's seed and the group's position, so a
/// group's WorkSpaces depend on nothing else in the estate and the world's own stream (demand noise, batch
/// faults, ids) is the same with or without groups.
fn group_rng(seed: u64, index: usize) -> Rng {
    let mut mix = Rng::new(seed ^ 0x5753_4752_4f55_5053);
    for _ in 0..=index {
        mix.next_u64();
    }
    Rng::new(mix.next_u64())
}

/// Exactly `round(share × count)` of `count` members, chosen at random.
fn pick(rng: &mut Rng, count: u32, share: f64) -> Vec<bool> {
    let mut order: Vec<usize> = (0..count as usize).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    let chosen = (share * f64::from(count)).round() as usize;
    let mut picked = vec![false; count as usize];
    for &i in order.iter().take(chosen) {
        picked[i] = true;
    }
    picked
}

/// Fault start times of one WorkSpace: a Poisson process of `per_week` over the horizon, in minutes.
fn fault_minutes(rng: &mut Rng, per_week: f64) -> Vec<u32> {
    let mut minutes = Vec::new();
    if per_week <= 0.0 {
        return minutes;
    }
    let rate = per_week / FAULT_HORIZON_MINUTES;
    let mut t = 0.0;
    loop {
        t += -(1.0 - rng.unit()).ln() / rate;
        if t >= FAULT_HORIZON_MINUTES {
            return minutes;
        }
        minutes.push(t as u32);
    }
}

/// The WorkSpaces of one `workspace_groups` entry (validated), deterministic for the seed.
pub(super) fn workspace_group(
    group: &estate::WorkspaceGroupSpec,
    seed: u64,
    index: usize,
    start: DateTime<Utc>,
    account: &str,
    region: &str,
) -> Vec<Workspace> {
    let mut rng = group_rng(seed, index);
    let connected = pick(&mut rng, group.count, group.connected_share);
    let outages: Vec<Vec<bool>> = group.outages.iter().map(|o| pick(&mut rng, group.count, o.share)).collect();
    (0..group.count)
        .map(|n| {
            let (id, user) = group.member(n);
            let connected = connected[n as usize];
            let mut workspace = Workspace {
                id,
                account: account.to_owned(),
                region: region.to_owned(),
                directory_id: group.directory_id.clone(),
                user,
                bundle_id: group.bundle_id.clone(),
                state: "AVAILABLE".into(),
                connected,
                last_connected: connected.then_some(start),
                tags: group.tags.clone(),
                pending: None,
                faults: Vec::new(),
                fault: None,
                unhealthy_minutes: 0,
                repair_minutes: 0,
                faults_started: 0,
            };
            for after_minutes in fault_minutes(&mut rng, group.failures_per_week) {
                let spec = estate::WorkspaceFaultSpec {
                    after_minutes,
                    cure: if rng.chance(group.reboot_cures) { Cure::Reboot } else { Cure::Rebuild },
                    minutes: None,
                    state: if rng.chance(group.impaired_share) { FaultState::Impaired } else { FaultState::Unhealthy },
                };
                workspace.schedule(WorkspaceFault::from_spec(&spec, start));
            }
            for (outage, hit) in group.outages.iter().zip(&outages) {
                if hit[n as usize] {
                    let spec = estate::WorkspaceFaultSpec {
                        after_minutes: outage.at_minutes,
                        cure: Cure::Itself,
                        minutes: Some(outage.minutes),
                        state: FaultState::Unhealthy,
                    };
                    workspace.schedule(WorkspaceFault::from_spec(&spec, start));
                }
            }
            workspace
        })
        .collect()
}
