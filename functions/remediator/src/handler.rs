//! The handler: a tick sweeps everything; a `CloudWatch Alarm State Change` into `ALARM` for an alarm the
//! policy maps sweeps just that directory, pool or fleet now; `Remediation Requested` sweeps one resource or
//! scope (a WorkSpace named by a person skips the `reboot_after` wait, nothing else); every sweep runs under
//! the function lease. A person's `ModifyWorkspaceState` to admin maintenance (CloudTrail) puts the WorkSpace
//! hands off until they take it out again.

use crate::act::{self, ActContext, ActionReport, Stored};
use crate::decide::{self, Budget, Episode, Inputs, Request};
use crate::observe::{Scope, observe};
use autopilot_shared::cpu::{self, Step};
use autopilot_shared::error::{AutopilotError, ErrorClass};
use autopilot_shared::events::{ApiCall, CloudTrailCall, Command, Input};
use autopilot_shared::invocation::{self, Call, PolicyCell, Route, Steps, Worked};
use autopilot_shared::ledger::state::{WorkItemListing, WorkItemWrite};
use autopilot_shared::policy::{AlarmScope, RemediationPolicy};
use autopilot_shared::report::Status;
use autopilot_shared::resource::ResourceKind;
use autopilot_shared::runtime::{ActivePolicy, classified, is_own_call};
pub use autopilot_shared::runtime::{Config, Deps};
use std::collections::BTreeMap;

/// The function's name: its service name in logs, metrics and ledger keys.
pub const FUNCTION: &str = "remediator";

/// What one invocation did; `status` is `swept`, `busy`, `ignored` (an alarm that is not `ALARM` or not
/// mapped), `recorded` / `ours` (a `ModifyWorkspaceState` call), or `no-remediation` (no policy section).
pub type Report = autopilot_shared::report::Report<ActionReport>;

/// Handles one event. `remaining` is the invocation's remaining time.
pub async fn handle(
    deps: &Deps,
    payload: serde_json::Value,
    remaining: std::time::Duration,
) -> Result<Report, AutopilotError> {
    invocation::invoke(&Remediator, deps, payload, remaining).await
}

/// A sweep: what to look at, what a person asked for, in which account.
#[derive(Debug)]
pub struct Sweep {
    scope: Scope,
    request: Request,
    account: String,
    /// A person's `Remediation Requested` (not a tick or an alarm): naming something that is not there is the
    /// request's fault.
    requested: bool,
}

struct Remediator;

impl Steps for Remediator {
    const FUNCTION: &'static str = FUNCTION;
    type Work = Sweep;
    type Item = ActionReport;

    async fn route(
        &self,
        call: &Call<'_>,
        input: Input,
        policy: &mut PolicyCell<'_>,
    ) -> Result<Route<Sweep>, AutopilotError> {
        if let Input::CloudTrail(event) = &input {
            return record_call(call, &event.detail).await.map(Route::Done);
        }
        let active = policy.get().await?;
        let Some((scope, request)) = scope_of(&input, active.policy.remediation.as_ref())? else {
            return Ok(Route::Done(Status::Ignored));
        };
        if active.policy.remediation.is_none() {
            if scope != Scope::All {
                return Err(AutopilotError::invalid_input(
                    "the policy has no `remediation` section: nothing is remediated",
                ));
            }
            return Ok(Route::Done(Status::NoRemediation));
        }
        let account = input.origin(&call.deps.config.region).account;
        // An alarm or a request that meets a running sweep fails retryably: EventBridge delivers it again.
        let must_not_be_lost = scope != Scope::All;
        let requested = matches!(input, Input::Command(_));
        Ok(Route::Work { work: Sweep { scope, request, account, requested }, must_not_be_lost })
    }

    async fn work(
        &self,
        ctx: &ActContext<'_>,
        policy: &ActivePolicy,
        sweep: Sweep,
    ) -> Result<Worked<ActionReport>, AutopilotError> {
        let Some(remediation) = policy.policy.remediation.as_ref() else {
            return Ok(Worked { status: Status::NoRemediation, api_calls: 0, items: Vec::new() });
        };
        let (api_calls, items) = self::sweep(ctx, remediation, &sweep).await?;
        Ok(Worked { status: Status::Swept, api_calls, items })
    }
}

/// What an input asks to sweep; `None` when it asks for nothing (an alarm leaving `ALARM`, or one the policy
/// does not map).
fn scope_of(input: &Input, policy: Option<&RemediationPolicy>) -> Result<Option<(Scope, Request)>, AutopilotError> {
    Ok(Some(match input {
        Input::Tick(_) => (Scope::All, Request::default()),
        Input::Alarm(event) => {
            let alarm = &event.detail;
            let mapped = policy.and_then(|p| p.alarms.get(&alarm.alarm_name));
            let Some(scope) = mapped.filter(|_| alarm.state.value == "ALARM") else {
                tracing::info!(alarm = %alarm.alarm_name, state = %alarm.state.value, mapped = mapped.is_some(), "alarm ignored");
                return Ok(None);
            };
            let scope = match scope {
                AlarmScope::Directory(id) => Scope::Directory(id.clone()),
                AlarmScope::Pool(id) => Scope::Pool(id.clone()),
                AlarmScope::Fleet(name) => Scope::Fleet(name.clone()),
            };
            (scope, Request::default())
        }
        Input::Command(command) => {
            let Command::RemediationRequested(requested) = &command.command else {
                return Err(AutopilotError::invalid_input(format!(
                    "{FUNCTION} does not handle this command ({}); check the EventBridge rules",
                    command.envelope.id.as_deref().unwrap_or_default()
                )));
            };
            let id = requested.resource_id.trim().to_owned();
            if id.is_empty() || id.contains('#') {
                return Err(AutopilotError::invalid_input(format!(
                    "detail.resourceId: {:?} is not a resource id",
                    requested.resource_id
                )));
            }
            if let Some(expected) = id_format_problem(&requested.resource_type, &id) {
                return Err(AutopilotError::invalid_input(format!(
                    "detail.resourceId: {:?} is not a {} id ({expected})",
                    requested.resource_id, requested.resource_type
                )));
            }
            let mut request = Request { workspace: None, at: command.envelope.time, why: requested.reason.clone() };
            let scope = match requested.resource_type.as_str() {
                "workspace" => {
                    request.workspace = Some((id.clone(), input.id().to_owned()));
                    Scope::Workspace(id)
                }
                "directory" => Scope::Directory(id),
                "workspaces-pool" => Scope::Pool(id),
                "fleet" => Scope::Fleet(id),
                "image-builder" => Scope::Builder(id),
                other => {
                    return Err(AutopilotError::invalid_input(format!(
                        "detail.resourceType: {other:?} is not one of workspace, directory, workspaces-pool, fleet, image-builder"
                    )));
                }
            };
            (scope, request)
        }
        Input::CloudTrail(_) | Input::AppStreamSession(_) | Input::WorkSpacesAccess(_) | Input::ShardTick(_) => {
            return Err(AutopilotError::invalid_input(format!(
                "{FUNCTION} does not handle this input (event {}); check the EventBridge rules",
                input.id()
            )));
        }
    }))
}

/// What a resource id of `resource_type` must look like, when `id` does not (the services' own patterns):
/// `None` when it does, or when the type is unknown (reported on its own).
fn id_format_problem(resource_type: &str, id: &str) -> Option<&'static str> {
    let lower_alnum = |s: &str| s.chars().all(|c| c.is_ascii_digit() || c.is_ascii_lowercase());
    let (ok, expected) = match resource_type {
        "workspace" => (
            id.strip_prefix("ws-").is_some_and(|r| (8..=63).contains(&r.len()) && lower_alnum(r)),
            "ws- and 8 to 63 lowercase letters or digits",
        ),
        "directory" => (
            id.strip_prefix("d-").is_some_and(|r| {
                (8..=63).contains(&r.len()) && r.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            }) || id.strip_prefix("wsd-").is_some_and(|r| (8..=63).contains(&r.len()) && lower_alnum(r)),
            "d- and 8 to 63 lowercase hex digits, or wsd- and 8 to 63 lowercase letters or digits",
        ),
        "workspaces-pool" => (
            id.strip_prefix("wspool-").is_some_and(|r| r.len() == 9 && lower_alnum(r)),
            "wspool- and 9 lowercase letters or digits",
        ),
        "fleet" | "image-builder" => (
            id.len() <= 100
                && id.starts_with(|c: char| c.is_ascii_alphanumeric())
                && id.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
            "up to 100 letters, digits, _ . or -, starting with a letter or digit",
        ),
        _ => (true, ""),
    };
    (!ok).then_some(expected)
}

/// Observe, decide, act for one scope.
async fn sweep(
    ctx: &ActContext<'_>,
    policy: &RemediationPolicy,
    sweep: &Sweep,
) -> Result<(u32, Vec<ActionReport>), AutopilotError> {
    let Sweep { scope, request, account, requested } = sweep;
    let stored = read_books(ctx, policy).await?;
    let left_to_a_person = stored
        .episodes
        .iter()
        .filter(|(_, episode)| episode.state.left_to_a_person())
        .map(|(key, _)| key.clone())
        .collect();
    let missing = if *requested { ErrorClass::InvalidInput } else { ErrorClass::NonRetryable };
    let observation =
        observe(ctx.aws, scope, (account, ctx.region), &left_to_a_person, missing).await.map_err(classified)?;
    let episodes: BTreeMap<String, Episode> =
        stored.episodes.iter().map(|(k, v)| (k.clone(), v.state.clone())).collect();
    let budgets: BTreeMap<String, Budget> = stored.budgets.iter().map(|(k, v)| (k.clone(), v.state)).collect();
    let history = history(ctx, &observation.seen, &episodes).await?;
    let inputs = Inputs {
        policy,
        episodes: &episodes,
        history: &history,
        budgets: &budgets,
        tag_prefix: ctx.tag_prefix,
        now: ctx.now,
        request,
        full_sweep: *scope == Scope::All,
    };
    let plan = cpu::measure(Step::Decide, || decide::plan(&observation.seen, inputs));
    // The gauge counts the whole estate: only a full sweep that read the WorkSpaces sets it.
    if *scope == Scope::All && !observation.seen.unread.contains(&ResourceKind::Workspace) {
        let unhealthy =
            observation.seen.workspaces.iter().filter(|w| matches!(w.state.as_str(), "UNHEALTHY" | "IMPAIRED")).count();
        metrics::gauge!("workspaces_unhealthy").set(unhealthy as f64);
    }
    for decision in &plan.decisions {
        tracing::debug!(resource = %decision.resource, action = ?decision.action, reason = %decision.reason, "decided");
    }
    let (actions, act_calls) =
        cpu::metered(Step::Act, act::act(ctx, &plan, &stored)).await.map_err(|e| classified(e.0))?;
    // What could be read was remediated; a service that could not be read still fails the sweep, to be seen.
    if let Some(unread) = observation.failures.first() {
        return Err(AutopilotError::from_classified(unread));
    }
    Ok((observation.api_calls + act_calls, actions))
}

/// Open episodes of the account and region worked (listed from the ledger's scope — a shard sees only its own,
/// it would otherwise close another shard's episodes as gone — then read consistently) and the budgets of every
/// selection (per account × region as well: one shard's failures cannot spend another's budget).
async fn read_books(ctx: &ActContext<'_>, policy: &RemediationPolicy) -> Result<Stored, AutopilotError> {
    let mut stored = Stored::default();
    for (id, _) in ctx.ledger.open_work_items::<Episode>(act::KIND).await.map_err(classified)? {
        if let Some(fresh) = ctx.ledger.get_work_item::<Episode>(act::KIND, &id).await.map_err(classified)? {
            stored.episodes.insert(id, fresh);
        }
    }
    for selection in std::iter::once(&policy.default).chain(&policy.selections) {
        if let Some(budget) =
            ctx.ledger.get_work_item::<Budget>(act::BUDGET_KIND, &selection.name).await.map_err(classified)?
        {
            stored.budgets.insert(selection.name.clone(), budget);
        }
    }
    Ok(stored)
}

/// The closed episodes of the WorkSpaces troubled again (no open episode): one batched read, only when there are
/// any. A new episode remembers what the last one did ([`Episode::following`]).
async fn history(
    ctx: &ActContext<'_>,
    seen: &decide::Seen,
    episodes: &BTreeMap<String, Episode>,
) -> Result<BTreeMap<String, Episode>, AutopilotError> {
    let troubled: Vec<String> = seen
        .workspaces
        .iter()
        .filter(|w| matches!(w.state.as_str(), "UNHEALTHY" | "IMPAIRED" | "ERROR"))
        .map(|w| w.resource.key())
        .filter(|key| !episodes.contains_key(key))
        .collect();
    if troubled.is_empty() {
        return Ok(BTreeMap::new());
    }
    let read = ctx.ledger.get_work_items::<Episode>(act::KIND, &troubled).await.map_err(classified)?;
    Ok(read.into_iter().filter(|(_, v)| v.state.closed).map(|(key, v)| (key, v.state)).collect())
}

/// A person's `ModifyWorkspaceState`: into admin maintenance → hands off; back to AVAILABLE → the WorkSpace
/// is watched again from scratch (the `reboot_after` wait starts anew). Our own calls and stale events
/// change nothing.
async fn record_call(invocation: &Call<'_>, call: &CloudTrailCall) -> Result<Status, AutopilotError> {
    let (deps, now) = (invocation.deps, invocation.now);
    let ApiCall::ModifyWorkspaceState { workspace_id, workspace_state } = call.api_call().map_err(classified)? else {
        return Ok(Status::Ignored);
    };
    if is_own_call(call, &deps.config.own_role_name) {
        return Ok(Status::Ours);
    }
    let resource =
        call.place().resource(ResourceKind::Workspace, &workspace_id).map_err(AutopilotError::invalid_input)?;
    let key = resource.key();
    let at = call.event_time.min(now);
    let stored = invocation.ledger.get_work_item::<Episode>(act::KIND, &key).await.map_err(classified)?;
    // A closed episode is history: a new one starts.
    let mut episode = stored.as_ref().map(|s| s.state.clone()).filter(|e| !e.closed).unwrap_or_else(|| Episode {
        since: at,
        state: workspace_state.clone(),
        ..Episode::default()
    });
    let before = episode.clone();
    match workspace_state.as_str() {
        "ADMIN_MAINTENANCE" if episode.hands_off_since.is_none_or(|since| at > since) => {
            episode.hands_off_since = Some(at);
            episode.state = workspace_state.clone();
        }
        "AVAILABLE" if episode.hands_off_since.is_some_and(|since| at >= since) => {
            episode.hands_off_since = None;
            episode.unhealthy_since = None;
            episode.noted = None;
        }
        _ => {}
    }
    let fresh = stored.as_ref().is_none_or(|s| s.state.closed);
    if episode == before || (fresh && episode.hands_off_since.is_none()) {
        return Ok(Status::Recorded);
    }
    invocation
        .ledger
        .put_work_item(
            WorkItemWrite {
                kind: act::KIND,
                id: &key,
                state: &episode,
                expected: stored.map(|s| s.version),
                listing: WorkItemListing::Open,
            },
            None,
            now,
        )
        .await
        .map_err(classified)?;
    tracing::info!(resource = %resource, state = %workspace_state, at = %at, "maintenance change recorded");
    Ok(Status::Recorded)
}
