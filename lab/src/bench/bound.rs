//! The lower bound of a tick's calls: the pages needed to list what the function must see at the services'
//! largest page sizes, the per-item reads the APIs force (each item once), the mutations actually made and the
//! outcome-event batches (10 entries per `PutEvents` within one announcement). What a tick made above it is waste.
//!
//! Per function, what it must see (selection is by tag and state, so every candidate is listed):
//! - pool-scaler: every pool (`DescribeWorkspacesPools`, 10 per page) and fleet (`DescribeFleets`, 25), and
//!   the Application Auto Scaling targets of both namespaces (`DescribeScalableTargets`, 50);
//! - builder-scheduler: every image builder (`DescribeImageBuilders`, 25);
//! - export-chaser: every export task (`ListExportImageTasks`, 500);
//! - softwareset-roller: every environment (`ListEnvironments`, 50) and software set (`ListSoftwareSets`, 50);
//!   while a ring is being gated every device (`ListDevices`, 50), and each gated device's status (`GetDevice`:
//!   the list does not carry it) when the summaries show the details can change the gate's verdict;
//! - remediator: every WorkSpace (`DescribeWorkspaces`, 25), pool, fleet and image builder; for those in
//!   trouble their tags and (WorkSpaces) connection status (`DescribeWorkspacesConnectionStatus`, 25 ids).
//!
//! Tags: no service returns them with its list, so a resource's tags are one forced read the first time it is
//! seen (`first`); on later ticks they are known (the ledger's tag cache) and a tag read is waste unless an
//! event said they changed or the cached copy reached its maximum age.

use autopilot_functions::Function;
use autopilot_sim::calllog::CallRecord;
use autopilot_sim::world::World;
use serde::Serialize;
use std::collections::BTreeSet;

/// The lower bound of one tick, by kind of call.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Bound {
    pub pages: u64,
    pub reads: u64,
    pub mutations: u64,
    pub event_batches: u64,
}

impl Bound {
    pub fn total(&self) -> u64 {
        self.pages + self.reads + self.mutations + self.event_batches
    }
}

fn pages(items: usize, page: usize) -> u64 {
    items.div_ceil(page).max(1) as u64
}

/// Distinct resources a per-item read operation named in the tick.
fn distinct(calls: &[CallRecord], operations: &[&str]) -> u64 {
    calls
        .iter()
        .filter(|c| operations.contains(&c.operation.as_str()) && !super::tick::is_throttle(&c.outcome))
        .filter_map(|c| c.resource.clone())
        .collect::<BTreeSet<_>>()
        .len() as u64
}

const TAG_READS: [&str; 2] = ["DescribeTags", "ListTagsForResource"];

/// Which tick of a function a bound is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// Nothing known yet: every resource's tags are read once.
    First,
    /// A later tick: tags come from the ledger's tag cache.
    Steady,
}

/// The bound of a tick of `function` that made `calls` on `world` (as it was during the tick); `tick` says whether
/// the function had not seen the estate before.
pub fn of(function: Function, world: &World, calls: &[CallRecord], tick: Tick) -> Bound {
    let tags = |n: usize| match tick {
        Tick::First => n as u64,
        Tick::Steady => 0,
    };
    let (pools, fleets, builders) = (world.pools.len(), world.fleets.len(), world.builders.len());
    let mut bound = match function {
        Function::PoolScaler => Bound {
            pages: pages(pools, 10)
                + pages(fleets, 25)
                + pages(world.fleets.values().filter(|f| f.application_autoscaling).count(), 50)
                + pages(world.pools.values().filter(|p| p.application_autoscaling).count(), 50),
            reads: tags(pools + fleets),
            ..Bound::default()
        },
        Function::BuilderScheduler => Bound { pages: pages(builders, 25), reads: tags(builders), ..Bound::default() },
        Function::ExportChaser => Bound { pages: pages(world.exports.len(), 500), ..Bound::default() },
        Function::SoftwareSetRoller => {
            let gated = distinct(calls, &["GetDevice"]);
            let listed = calls.iter().any(|c| c.operation == "ListDevices");
            Bound {
                pages: pages(world.environments.len(), 50)
                    + pages(world.software_sets.len(), 50)
                    + if listed { pages(world.devices.len(), 50) } else { 0 },
                reads: tags(world.environments.len()) + gated,
                ..Bound::default()
            }
        }
        Function::Remediator => {
            let troubled = distinct(calls, &TAG_READS);
            let connection = calls
                .iter()
                .filter(|c| c.operation == "DescribeWorkspacesConnectionStatus")
                .filter_map(|c| c.parameters.get("WorkspaceIds").and_then(|ids| ids.as_array()).map(Vec::len))
                .sum::<usize>();
            Bound {
                pages: pages(world.workspaces.len(), 25) + pages(pools, 10) + pages(fleets, 25) + pages(builders, 25),
                reads: troubled + if connection > 0 { pages(connection, 25) } else { 0 },
                ..Bound::default()
            }
        }
    };
    bound.mutations = super::tick::mutations(calls);
    // Each announcement is its own exactly-once effect (its own claim), so it cannot share a `PutEvents` with
    // another; the entries of one effect (`announce_each`) go 10 to a call.
    bound.event_batches = calls
        .iter()
        .filter(|c| c.operation == "PutEvents" && c.ok())
        .filter_map(|c| c.parameters.get("Entries").and_then(|e| e.as_array()).map(|e| e.len().div_ceil(10) as u64))
        .sum();
    bound
}
