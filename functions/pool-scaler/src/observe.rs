//! The observe step: one paginated Describe pass per service (WorkSpaces Pools, AppStream fleets), one pass over
//! Application Auto Scaling's registered targets per namespace ([`list`]), and the tags of each resource
//! ([`tagged`]: neither service returns tags with its Describe: read through the ledger's tag cache, so a tick
//! asks only for what changed or is due). The tags come as a stream, so a reconcile decides and acts on a
//! resource as soon as its tags are known instead of after every tag has been read.

use crate::decide::{Kind, Observed};
use autopilot_shared::clients::AwsClients;
use autopilot_shared::error::ObserveError;
use autopilot_shared::ledger::Ledger;
use autopilot_shared::lookups::{self, Coverage, TagLookup, cached_tags_streamed};
use autopilot_shared::resource::{Place, ResourceKind, ResourceRef};
use aws_sdk_applicationautoscaling::types::ServiceNamespace;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};

/// The kinds whose tags the pool-scaler caches (its tag-change rules name their services).
pub const CACHED_TAGS: [ResourceKind; 2] = [ResourceKind::WorkspacesPool, ResourceKind::Fleet];

/// What one reconcile looks at: everything, or one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Pool(String),
    Fleet(String),
    /// Pools of one directory (WorkSpaces Access events name the directory).
    Directory(String),
}

/// Everything observed, and how many AWS calls it took.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub resources: Vec<Observed>,
    pub api_calls: u32,
}

/// The pools and fleets in scope as listed, before their tags are known (each an [`Observed`] with no tags yet).
#[derive(Debug, Clone)]
pub struct Listed {
    pub pools: Vec<TagLookup<Observed>>,
    pub fleets: Vec<TagLookup<Observed>>,
    /// Every pool and fleet ([`Scope::All`]), or those of one event: how their cached tags are read.
    pub coverage: Coverage,
}

impl Listed {
    /// Every listed resource's identity.
    pub fn resources(&self) -> Vec<ResourceRef> {
        self.pools.iter().chain(&self.fleets).map(|listed| listed.resource.clone()).collect()
    }

    /// Every listed resource (with no tags yet).
    pub fn iter(&self) -> impl Iterator<Item = &Observed> {
        self.pools.iter().chain(&self.fleets).map(|listed| &listed.item)
    }
}

/// The whole observe step at once: [`list`], then [`tagged`], collected and sorted by resource.
pub async fn observe(
    aws: &AwsClients,
    ledger: &Ledger,
    now: DateTime<Utc>,
    scope: &Scope,
    region: &str,
) -> Result<Observation, ObserveError> {
    let calls = AtomicU32::new(0);
    let listed = list(aws, scope, region, &calls).await?;
    let mut resources = Vec::new();
    let mut batches = std::pin::pin!(tagged(aws, ledger, now, listed, &calls));
    while let Some(batch) = batches.next().await {
        resources.extend(batch?);
    }
    resources.sort_by(|a, b| a.resource.cmp(&b.resource));
    Ok(Observation { resources, api_calls: calls.load(Ordering::Relaxed) })
}

/// The listing half of the observe step: Application Auto Scaling's registered targets (one pass per
/// namespace), then the pools and fleets in `scope` (one paginated Describe pass each, side by side: different
/// services, each at its own pace). Calls counted in `calls`.
pub async fn list(aws: &AwsClients, scope: &Scope, region: &str, calls: &AtomicU32) -> Result<Listed, ObserveError> {
    let count = || calls.fetch_add(1, Ordering::Relaxed);
    let want_pools = matches!(scope, Scope::All | Scope::Pool(_) | Scope::Directory(_));
    let want_fleets = matches!(scope, Scope::All | Scope::Fleet(_));
    let mut managed: BTreeSet<String> = BTreeSet::new();
    for (wanted, namespace) in [(want_pools, ServiceNamespace::Workspaces), (want_fleets, ServiceNamespace::Appstream)]
    {
        if !wanted {
            continue;
        }
        let mut token = None;
        loop {
            count();
            let page = aws
                .autoscaling
                .describe_scalable_targets()
                .service_namespace(namespace.clone())
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| ObserveError::sdk("Application Auto Scaling targets", &e))?;
            managed.extend(page.scalable_targets().iter().map(|t| t.resource_id().to_owned()));
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
    }
    let managed = &managed;

    let list_pools = async {
        if !want_pools {
            return Ok::<_, ObserveError>(Vec::new());
        }
        let pool_id = match scope {
            Scope::Pool(id) => Some(id.as_str()),
            _ => None,
        };
        let mut pools = lookups::workspaces_pools(aws, pool_id, calls).await?;
        if let Scope::Directory(directory) = scope {
            pools.retain(|p| p.directory_id() == directory);
        }
        Ok(pools
            .into_iter()
            .filter_map(|pool| {
                let resource = Place::of_arn(pool.pool_arn(), region)
                    .resource(ResourceKind::WorkspacesPool, pool.pool_id())
                    .ok()?;
                let capacity = pool.capacity_status();
                let observed = Observed {
                    resource: resource.clone(),
                    name: pool.pool_name().to_owned(),
                    kind: Kind::Pool,
                    state: pool.state().as_str().to_owned(),
                    stoppable: pool.running_mode().as_str() == "AUTO_STOP",
                    desired: capacity.map_or(0, |c| c.desired_user_sessions().max(0) as u32),
                    in_use: capacity.map_or(0, |c| c.active_user_sessions().max(0) as u32),
                    running: capacity.map_or(0, |c| c.actual_user_sessions().max(0) as u32),
                    managed_by_autoscaling: managed.contains(&format!("workspacespool/{}", pool.pool_id())),
                    tags: BTreeMap::new(),
                };
                Some(TagLookup { resource, target: pool.pool_id().to_owned(), item: observed })
            })
            .collect())
    };
    let list_fleets = async {
        if !want_fleets {
            return Ok::<_, ObserveError>(Vec::new());
        }
        let name = match scope {
            Scope::Fleet(name) => Some(name.as_str()),
            _ => None,
        };
        let fleets = lookups::fleets(aws, name, calls).await?;
        Ok(fleets
            .into_iter()
            .filter_map(|fleet| {
                let arn = fleet.arn().unwrap_or_default().to_owned();
                let name = fleet.name().unwrap_or_default().to_owned();
                let resource = Place::of_arn(&arn, region).resource(ResourceKind::Fleet, &name).ok()?;
                let multi = fleet.max_sessions_per_instance().is_some_and(|n| n > 1);
                let status = fleet.compute_capacity_status();
                let (desired, in_use, running) = match (multi, status) {
                    (_, None) => (0, 0, 0),
                    (true, Some(s)) => (
                        s.desired_user_sessions().unwrap_or_default(),
                        s.active_user_sessions().unwrap_or_default(),
                        s.actual_user_sessions().unwrap_or_default(),
                    ),
                    (false, Some(s)) => (
                        s.desired().unwrap_or_default(),
                        s.in_use().unwrap_or_default(),
                        s.running().unwrap_or_default(),
                    ),
                };
                let observed = Observed {
                    resource: resource.clone(),
                    kind: match (fleet.fleet_type().map(|t| t.as_str()), multi) {
                        (Some("ELASTIC"), _) => Kind::ElasticFleet,
                        (_, true) => Kind::MultiSessionFleet,
                        (_, false) => Kind::SingleSessionFleet,
                    },
                    state: fleet.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                    stoppable: fleet.fleet_type().is_none_or(|t| t.as_str() != "ELASTIC"),
                    desired: desired.max(0) as u32,
                    in_use: in_use.max(0) as u32,
                    running: running.max(0) as u32,
                    managed_by_autoscaling: managed.contains(&format!("fleet/{name}")),
                    name,
                    tags: BTreeMap::new(),
                };
                Some(TagLookup { resource, target: arn, item: observed })
            })
            .collect())
    };
    let (pools, fleets) = futures::try_join!(list_pools, list_fleets)?;
    let coverage = if *scope == Scope::All { Coverage::Kind } else { Coverage::Selected };
    Ok(Listed { pools, fleets, coverage })
}

/// The tagging half of the observe step: every listed resource with its tags, in batches as they become known
/// (`lookups::cached_tags_streamed`: first those cached, then the ones read, pools' and fleets' side by side),
/// in no particular order. Tag calls counted in `calls`; a failed one ends the stream with its error.
pub fn tagged<'a>(
    aws: &'a AwsClients,
    ledger: &'a Ledger,
    now: DateTime<Utc>,
    listed: Listed,
    calls: &'a AtomicU32,
) -> impl Stream<Item = Result<Vec<Observed>, ObserveError>> + 'a {
    let coverage = listed.coverage;
    let pools = cached_tags_streamed(aws, ledger, now, ResourceKind::WorkspacesPool, listed.pools, coverage, calls);
    let fleets = cached_tags_streamed(aws, ledger, now, ResourceKind::Fleet, listed.fleets, coverage, calls);
    futures::stream::select(pools, fleets).map(|batch| {
        batch.map(|batch| batch.into_iter().map(|(_, observed, tags)| Observed { tags, ..observed }).collect())
    })
}
