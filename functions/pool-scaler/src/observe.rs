//! The observe step: one paginated Describe pass per service (WorkSpaces Pools, AppStream fleets), the tags of
//! each resource (neither service returns tags with its Describe: read through the ledger's tag cache, so a
//! tick asks only for what changed or is due), and one pass over Application Auto Scaling's registered targets
//! per namespace.

use crate::decide::{Kind, Observed};
use autopilot_shared::clients::AwsClients;
use autopilot_shared::error::ObserveError;
use autopilot_shared::ledger::Ledger;
use autopilot_shared::lookups::{self, TagLookup, cached_tags};
use autopilot_shared::resource::{ResourceKind, ResourceRef, account_region};
use aws_sdk_applicationautoscaling::types::ServiceNamespace;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
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

pub async fn observe(
    aws: &AwsClients,
    ledger: &Ledger,
    now: DateTime<Utc>,
    scope: &Scope,
    region: &str,
) -> Result<Observation, ObserveError> {
    let calls = AtomicU32::new(0);
    let count = || calls.fetch_add(1, Ordering::Relaxed);
    let mut resources = Vec::new();

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

    // Pools and fleets are listed side by side (different services, each at its own pace).
    let observe_pools = async {
        let mut pools_seen: Vec<Observed> = Vec::new();
        if !want_pools {
            return Ok::<_, ObserveError>(pools_seen);
        }
        let pool_id = match scope {
            Scope::Pool(id) => Some(id.as_str()),
            _ => None,
        };
        let mut pools = lookups::workspaces_pools(aws, pool_id, &calls).await?;
        if let Scope::Directory(directory) = scope {
            pools.retain(|p| p.directory_id() == directory);
        }
        let wanted = pools
            .into_iter()
            .filter_map(|pool| {
                let (account, pool_region) = account_region(pool.pool_arn(), region);
                let resource =
                    ResourceRef::new(account, pool_region, ResourceKind::WorkspacesPool, pool.pool_id()).ok()?;
                Some(TagLookup { resource, target: pool.pool_id().to_owned(), item: pool })
            })
            .collect();
        let tagged = cached_tags(aws, ledger, now, ResourceKind::WorkspacesPool, wanted, &calls).await?;
        for (resource, pool, tags) in tagged {
            let capacity = pool.capacity_status();
            pools_seen.push(Observed {
                resource,
                name: pool.pool_name().to_owned(),
                kind: Kind::Pool,
                state: pool.state().as_str().to_owned(),
                stoppable: pool.running_mode().as_str() == "AUTO_STOP",
                desired: capacity.map_or(0, |c| c.desired_user_sessions().max(0) as u32),
                in_use: capacity.map_or(0, |c| c.active_user_sessions().max(0) as u32),
                managed_by_autoscaling: managed.contains(&format!("workspacespool/{}", pool.pool_id())),
                tags,
            });
        }

        Ok(pools_seen)
    };
    let observe_fleets = async {
        let mut fleets_seen: Vec<Observed> = Vec::new();
        if !want_fleets {
            return Ok::<_, ObserveError>(fleets_seen);
        }
        let name = match scope {
            Scope::Fleet(name) => Some(name.as_str()),
            _ => None,
        };
        let fleets = lookups::fleets(aws, name, &calls).await?;
        let wanted = fleets
            .into_iter()
            .filter_map(|fleet| {
                let arn = fleet.arn().unwrap_or_default().to_owned();
                let (account, fleet_region) = account_region(&arn, region);
                let name = fleet.name().unwrap_or_default();
                let resource = ResourceRef::new(account, fleet_region, ResourceKind::Fleet, name).ok()?;
                Some(TagLookup { resource, target: arn, item: fleet })
            })
            .collect();
        let tagged = cached_tags(aws, ledger, now, ResourceKind::Fleet, wanted, &calls).await?;
        for (resource, fleet, tags) in tagged {
            let name = fleet.name().unwrap_or_default().to_owned();
            let multi = fleet.max_sessions_per_instance().is_some_and(|n| n > 1);
            let status = fleet.compute_capacity_status();
            let (desired, in_use) = match (multi, status) {
                (_, None) => (0, 0),
                (true, Some(s)) => {
                    (s.desired_user_sessions().unwrap_or_default(), s.active_user_sessions().unwrap_or_default())
                }
                (false, Some(s)) => (s.desired().unwrap_or_default(), s.in_use().unwrap_or_default()),
            };
            fleets_seen.push(Observed {
                resource,
                kind: if multi { Kind::MultiSessionFleet } else { Kind::SingleSessionFleet },
                state: fleet.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                stoppable: fleet.fleet_type().is_none_or(|t| t.as_str() != "ELASTIC"),
                desired: desired.max(0) as u32,
                in_use: in_use.max(0) as u32,
                managed_by_autoscaling: managed.contains(&format!("fleet/{name}")),
                name,
                tags,
            });
        }

        Ok(fleets_seen)
    };
    let (pools_seen, fleets_seen) = futures::try_join!(observe_pools, observe_fleets)?;
    resources.extend(pools_seen);
    resources.extend(fleets_seen);
    resources.sort_by(|a, b| a.resource.cmp(&b.resource));
    Ok(Observation { resources, api_calls: calls.into_inner() })
}
