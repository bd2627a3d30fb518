//! The observe step: one paginated Describe per service for the scope swept, then — only for the resources in
//! trouble (or named by a request) — their tags and, for WorkSpaces, whether a user is connected
//! (`DescribeWorkspacesConnectionStatus`, 25 ids per call). A WorkSpace is always observed with its whole
//! directory, because the circuit breaker needs the directory's population.

use crate::decide::{Seen, SeenResource, SeenWorkspace};
use autopilot_shared::clients::AwsClients;
use autopilot_shared::error::{ErrorClass, ObserveError};
use autopilot_shared::lookups::{self, CONCURRENCY, appstream_tags, workspaces_tags};
use autopilot_shared::resource::{Place, ResourceKind, ResourceRef};
use futures::{StreamExt, TryStreamExt};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};

/// The largest page `DescribeWorkspaces` serves, and the most ids the batch calls take.
pub const BATCH: usize = 25;

/// What a sweep looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything (a tick).
    All,
    /// One directory's WorkSpaces.
    Directory(String),
    /// One WorkSpace (observed with its directory).
    Workspace(String),
    Pool(String),
    Fleet(String),
    Builder(String),
}

impl Scope {
    fn wants_workspaces(&self) -> bool {
        matches!(self, Scope::All | Scope::Directory(_) | Scope::Workspace(_))
    }
}

/// Everything observed and how many AWS calls it took.
#[derive(Debug, Default)]
pub struct Observation {
    pub seen: Seen,
    pub api_calls: u32,
    /// The services that could not be read (their kinds are in `seen.unread`).
    pub failures: Vec<ObserveError>,
}

/// WorkSpace states whose tags and connection state are read.
fn in_trouble(state: &str) -> bool {
    matches!(state, "UNHEALTHY" | "IMPAIRED" | "ERROR")
}

/// Observes `scope`. `DescribeWorkspaces` returns no ARN: WorkSpaces are placed in `account` (the account the
/// event came from) and `region`. A scope that names something not there fails with the class `missing` (a
/// person's request names it wrongly: `InvalidInput`; an alarm the policy maps to it: `NonRetryable`).
pub async fn observe(
    aws: &AwsClients,
    scope: &Scope,
    place: (&str, &str),
    left_to_a_person: &BTreeSet<String>,
    missing: ErrorClass,
) -> Result<Observation, ObserveError> {
    let (account, region) = place;
    let calls = AtomicU32::new(0);
    let count = || calls.fetch_add(1, Ordering::Relaxed);
    let mut seen = Seen::default();

    // The four services are listed side by side (each at its own pace).
    let observe_workspaces = async {
        let mut workspaces_seen: Vec<_> = Vec::new();
        if !scope.wants_workspaces() {
            return Ok::<_, ObserveError>(workspaces_seen);
        }
        let directory = match scope {
            Scope::Directory(directory) => Some(directory.clone()),
            Scope::Workspace(id) => {
                count();
                let found = aws
                    .workspaces
                    .describe_workspaces()
                    .workspace_ids(id)
                    .send()
                    .await
                    .map_err(|e| ObserveError::sdk("WorkSpace", &e))?;
                let directory = found.workspaces().first().and_then(|w| w.directory_id()).map(str::to_owned);
                if directory.is_none() {
                    return Err(ObserveError {
                        what: format!("WorkSpace {id}"),
                        message: format!("not found in account {account}, region {region}"),
                        class: missing,
                        throttled: false,
                    });
                }
                directory
            }
            _ => None,
        };
        let mut workspaces = Vec::new();
        let mut token = None;
        loop {
            count();
            let page = aws
                .workspaces
                .describe_workspaces()
                .set_directory_id(directory.clone())
                .limit(BATCH as i32)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| ObserveError::sdk("WorkSpaces", &e))?;
            workspaces.extend(page.workspaces().iter().cloned());
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        let requested = match scope {
            Scope::Workspace(id) => Some(id.as_str()),
            _ => None,
        };
        for workspace in &workspaces {
            let id = workspace.workspace_id().unwrap_or_default();
            let Ok(resource) = ResourceRef::new(account, region, ResourceKind::Workspace, id) else {
                tracing::warn!(%id, "WorkSpace with an unusable id: not touched");
                continue;
            };
            workspaces_seen.push(SeenWorkspace {
                resource,
                id: id.to_owned(),
                directory_id: workspace.directory_id().unwrap_or_default().to_owned(),
                user: workspace.user_name().unwrap_or_default().to_owned(),
                state: workspace.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                tags: BTreeMap::new(),
                connected: None,
            });
        }
        // Tags and connection state of what is in trouble, but not of what is left to a person (escalated: nothing
        // is done to it whatever its tags say) unless a person asks about it again.
        let look_up: Vec<usize> = (0..workspaces_seen.len())
            .filter(|&i| {
                let (workspace, asked) = (&workspaces_seen[i], requested == Some(workspaces_seen[i].id.as_str()));
                asked || in_trouble(&workspace.state) && !left_to_a_person.contains(&workspace.resource.key())
            })
            .collect();
        let tags: Vec<(usize, BTreeMap<String, String>)> = futures::stream::iter(look_up.iter().copied())
            .map(|index| {
                count();
                let id = workspaces_seen[index].id.clone();
                async move { Ok::<_, ObserveError>((index, workspaces_tags(aws, &id, "WorkSpace tags").await?)) }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        for (index, tags) in tags {
            workspaces_seen[index].tags = tags;
        }
        let ids: Vec<String> = look_up.iter().map(|&i| workspaces_seen[i].id.clone()).collect();
        let mut connected = BTreeMap::new();
        for chunk in ids.chunks(BATCH) {
            count();
            let status = aws
                .workspaces
                .describe_workspaces_connection_status()
                .set_workspace_ids(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| ObserveError::sdk("WorkSpaces connection status", &e))?;
            for entry in status.workspaces_connection_status() {
                if let (Some(id), Some(state)) = (entry.workspace_id(), entry.connection_state()) {
                    // UNKNOWN stays unknown: treated as possibly connected.
                    let known = match state.as_str() {
                        "CONNECTED" => Some(true),
                        "DISCONNECTED" => Some(false),
                        _ => None,
                    };
                    connected.insert(id.to_owned(), known);
                }
            }
        }
        for workspace in &mut workspaces_seen {
            workspace.connected = connected.get(&workspace.id).copied().flatten();
        }

        Ok(workspaces_seen)
    };
    let observe_pools = async {
        let mut pools_seen: Vec<_> = Vec::new();
        if !matches!(scope, Scope::All | Scope::Pool(_)) {
            return Ok::<_, ObserveError>(pools_seen);
        }
        let pool_id = match scope {
            Scope::Pool(id) => Some(id.as_str()),
            _ => None,
        };
        for pool in lookups::workspaces_pools(aws, pool_id, &calls).await? {
            let Ok(resource) =
                Place::of_arn(pool.pool_arn(), region).resource(ResourceKind::WorkspacesPool, pool.pool_id())
            else {
                continue;
            };
            let errors = pool
                .errors()
                .iter()
                .map(|e| {
                    (
                        e.error_code().map_or("UNKNOWN", |c| c.as_str()).to_owned(),
                        e.error_message().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            pools_seen.push(SeenResource {
                resource,
                name: pool.pool_id().to_owned(),
                state: pool.state().as_str().to_owned(),
                errors,
                tags: BTreeMap::new(),
            });
        }
        let troubled: Vec<usize> = (0..pools_seen.len()).filter(|&i| !pools_seen[i].errors.is_empty()).collect();
        let tags: Vec<(usize, BTreeMap<String, String>)> = futures::stream::iter(troubled)
            .map(|index| {
                count();
                let id = pools_seen[index].name.clone();
                async move { Ok::<_, ObserveError>((index, workspaces_tags(aws, &id, "pool tags").await?)) }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        for (index, tags) in tags {
            pools_seen[index].tags = tags;
        }

        Ok(pools_seen)
    };
    let observe_fleets = async {
        let mut fleets_seen: Vec<_> = Vec::new();
        if !matches!(scope, Scope::All | Scope::Fleet(_)) {
            return Ok::<_, ObserveError>(fleets_seen);
        }
        let name = match scope {
            Scope::Fleet(name) => Some(name.as_str()),
            _ => None,
        };
        let mut arns = Vec::new();
        for fleet in lookups::fleets(aws, name, &calls).await? {
            let name = fleet.name().unwrap_or_default().to_owned();
            let Ok(resource) =
                Place::of_arn(fleet.arn().unwrap_or_default(), region).resource(ResourceKind::Fleet, &name)
            else {
                continue;
            };
            let errors = fleet
                .fleet_errors()
                .iter()
                .map(|e| {
                    (
                        e.error_code().map_or("UNKNOWN", |c| c.as_str()).to_owned(),
                        e.error_message().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            arns.push(fleet.arn().unwrap_or_default().to_owned());
            fleets_seen.push(SeenResource {
                resource,
                name,
                state: fleet.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                errors,
                tags: BTreeMap::new(),
            });
        }
        let troubled: Vec<usize> = (0..fleets_seen.len()).filter(|&i| !fleets_seen[i].errors.is_empty()).collect();
        fleets_seen = with_appstream_tags(aws, fleets_seen, &arns, &troubled, &count, "fleet tags").await?;

        Ok(fleets_seen)
    };
    let observe_builders = async {
        let mut builders_seen: Vec<_> = Vec::new();
        if !matches!(scope, Scope::All | Scope::Builder(_)) {
            return Ok::<_, ObserveError>(builders_seen);
        }
        let name = match scope {
            Scope::Builder(name) => Some(name.as_str()),
            _ => None,
        };
        let mut arns = Vec::new();
        for builder in lookups::image_builders(aws, name, &calls).await? {
            let name = builder.name().unwrap_or_default().to_owned();
            let Ok(resource) =
                Place::of_arn(builder.arn().unwrap_or_default(), region).resource(ResourceKind::ImageBuilder, &name)
            else {
                continue;
            };
            arns.push(builder.arn().unwrap_or_default().to_owned());
            builders_seen.push(SeenResource {
                resource,
                name,
                state: builder.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                errors: autopilot_shared::error::appstream_resource_errors(builder.image_builder_errors())
                    .into_iter()
                    .map(|line| match line.split_once(": ") {
                        Some((code, message)) => (code.to_owned(), message.to_owned()),
                        None => (line, String::new()),
                    })
                    .collect(),
                tags: BTreeMap::new(),
            });
        }
        let troubled: Vec<usize> = (0..builders_seen.len()).filter(|&i| builders_seen[i].state == "FAILED").collect();
        builders_seen = with_appstream_tags(aws, builders_seen, &arns, &troubled, &count, "image builder tags").await?;

        Ok(builders_seen)
    };
    // Each service on its own: one that cannot be read (an outage, a region or SCP without AppStream) leaves the
    // others to be remediated, and its resources' episodes open.
    let (workspaces, pools, fleets, builders) =
        futures::join!(observe_workspaces, observe_pools, observe_fleets, observe_builders);
    let mut failures = Vec::new();
    seen.workspaces = read_or_note(workspaces, ResourceKind::Workspace, &mut seen.unread, &mut failures);
    seen.pools = read_or_note(pools, ResourceKind::WorkspacesPool, &mut seen.unread, &mut failures);
    seen.fleets = read_or_note(fleets, ResourceKind::Fleet, &mut seen.unread, &mut failures);
    seen.builders = read_or_note(builders, ResourceKind::ImageBuilder, &mut seen.unread, &mut failures);
    // Asked for by a person: nothing there is the request's mistake. (An alarm's directory may be empty for good
    // reasons — its WorkSpaces terminated, a pools directory that DescribeWorkspaces does not list — and is swept.)
    if failures.is_empty() && missing == ErrorClass::InvalidInput {
        failures.extend(nothing_found(scope, &seen, place, missing));
    }

    Ok(Observation { seen, api_calls: calls.into_inner(), failures })
}

/// A scope that names a directory, pool, fleet or builder in which nothing was found: a wrong id, account or
/// region, said as such rather than answered `swept`. (A missing WorkSpace is found out by its own lookup.)
fn nothing_found(
    scope: &Scope,
    seen: &Seen,
    (account, region): (&str, &str),
    class: ErrorClass,
) -> Option<ObserveError> {
    let (what, empty) = match scope {
        Scope::All | Scope::Workspace(_) => return None,
        Scope::Directory(id) => (format!("directory {id}"), seen.workspaces.is_empty()),
        Scope::Pool(id) => (format!("WorkSpaces pool {id}"), seen.pools.is_empty()),
        Scope::Fleet(name) => (format!("fleet {name}"), seen.fleets.is_empty()),
        Scope::Builder(name) => (format!("image builder {name}"), seen.builders.is_empty()),
    };
    let message = match scope {
        Scope::Directory(_) => "has no WorkSpaces",
        _ => "not found",
    };
    empty.then(|| ObserveError {
        what,
        message: format!(
            "{message} in account {account}, region {region} (check the id, and the account and region the event \
             was sent to)"
        ),
        class,
        throttled: false,
    })
}

/// What one service's read gave, or nothing, with `kind` noted unread and the error kept.
fn read_or_note<T>(
    read: Result<Vec<T>, ObserveError>,
    kind: ResourceKind,
    unread: &mut BTreeSet<ResourceKind>,
    failures: &mut Vec<ObserveError>,
) -> Vec<T> {
    read.unwrap_or_else(|error| {
        unread.insert(kind);
        failures.push(error);
        Vec::new()
    })
}

/// Reads the tags of the AppStream resources at `indices` (by ARN, bounded concurrency).
async fn with_appstream_tags(
    aws: &AwsClients,
    mut resources: Vec<SeenResource>,
    arns: &[String],
    indices: &[usize],
    count: &impl Fn() -> u32,
    what: &str,
) -> Result<Vec<SeenResource>, ObserveError> {
    let tags: Vec<(usize, BTreeMap<String, String>)> = futures::stream::iter(indices.iter().copied())
        .map(|index| {
            count();
            let arn = arns[index].clone();
            async move { Ok::<_, ObserveError>((index, appstream_tags(aws, &arn, what).await?)) }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    for (index, tags) in tags {
        resources[index].tags = tags;
    }
    Ok(resources)
}
