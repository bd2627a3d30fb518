//! The observe step: one paginated Describe pass per service (WorkSpaces Pools, AppStream fleets), the tags of
//! each resource (neither service returns tags with its Describe), and one pass over Application Auto Scaling's
//! registered targets per namespace.

use crate::decide::{Kind, Observed};
use autopilot_shared::clients::AwsClients;
use autopilot_shared::error::ObserveError;
use autopilot_shared::lookups::{self, CONCURRENCY, appstream_tags, workspaces_tags};
use autopilot_shared::resource::{ResourceKind, ResourceRef, account_region};
use aws_sdk_applicationautoscaling::types::ServiceNamespace;
use futures::{StreamExt, TryStreamExt};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};

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

pub async fn observe(aws: &AwsClients, scope: &Scope, region: &str) -> Result<Observation, ObserveError> {
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

    if want_pools {
        let pool_id = match scope {
            Scope::Pool(id) => Some(id.as_str()),
            _ => None,
        };
        let mut pools = lookups::workspaces_pools(aws, pool_id, &calls).await?;
        if let Scope::Directory(directory) = scope {
            pools.retain(|p| p.directory_id() == directory);
        }
        let tagged: Vec<(aws_sdk_workspaces::types::WorkspacesPool, BTreeMap<String, String>)> =
            futures::stream::iter(pools)
                .map(|pool| {
                    count();
                    async move {
                        let tags = workspaces_tags(aws, pool.pool_id(), "pool tags").await?;
                        Ok::<_, ObserveError>((pool, tags))
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .try_collect()
                .await?;
        for (pool, tags) in tagged {
            let (account, pool_region) = account_region(pool.pool_arn(), region);
            let Ok(resource) = ResourceRef::new(account, pool_region, ResourceKind::WorkspacesPool, pool.pool_id())
            else {
                continue;
            };
            let capacity = pool.capacity_status();
            resources.push(Observed {
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
    }

    if want_fleets {
        let name = match scope {
            Scope::Fleet(name) => Some(name.as_str()),
            _ => None,
        };
        let fleets = lookups::fleets(aws, name, &calls).await?;
        let tagged: Vec<(aws_sdk_appstream::types::Fleet, BTreeMap<String, String>)> = futures::stream::iter(fleets)
            .map(|fleet| {
                count();
                async move {
                    let tags = appstream_tags(aws, fleet.arn().unwrap_or_default(), "fleet tags").await?;
                    Ok::<_, ObserveError>((fleet, tags))
                }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        for (fleet, tags) in tagged {
            let name = fleet.name().unwrap_or_default().to_owned();
            let (account, fleet_region) = account_region(fleet.arn().unwrap_or_default(), region);
            let Ok(resource) = ResourceRef::new(account, fleet_region, ResourceKind::Fleet, &name) else { continue };
            let multi = fleet.max_sessions_per_instance().is_some_and(|n| n > 1);
            let status = fleet.compute_capacity_status();
            let (desired, in_use) = match (multi, status) {
                (_, None) => (0, 0),
                (true, Some(s)) => {
                    (s.desired_user_sessions().unwrap_or_default(), s.active_user_sessions().unwrap_or_default())
                }
                (false, Some(s)) => (s.desired().unwrap_or_default(), s.in_use().unwrap_or_default()),
            };
            resources.push(Observed {
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
    }
    resources.sort_by(|a, b| a.resource.cmp(&b.resource));
    Ok(Observation { resources, api_calls: calls.into_inner() })
}
