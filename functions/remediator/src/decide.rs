//! The pure planner: what is wrong with each resource seen, and what (if anything) to do about it now, with
//! a reason an operator understands. No IO; time comes in as `now`.
//!
//! WorkSpaces (personal):
//! - UNHEALTHY for `reboot_after` → reboot; still unhealthy after `max_reboots` reboots within `reboot_window` →
//!   rebuild, only where the WorkSpace's selection allows it, else escalate; IMPAIRED for `reboot_after` or
//!   ERROR → escalate (the API reboots and rebuilds no IMPAIRED WorkSpace, and no reboot cures ERROR);
//! - hands off: ADMIN_MAINTENANCE / MAINTENANCE, a person's `ModifyWorkspaceState` to admin maintenance,
//!   the `skip`/`override: hold` tags, a user connected (unless the selection says otherwise);
//! - guard rails: a cooldown per WorkSpace, a budget per selection and clock hour, and a circuit breaker per
//!   directory (more than `max_unhealthy_share` of a directory unhealthy is an outage: act on none of it,
//!   escalate once);
//! - an action that keeps failing ([`MAX_FAILED_ATTEMPTS`] times) is escalated instead of retried.
//!
//! Pools and fleets: configuration errors (IAM role, subnet, security group, domain join, image, ...) are
//! escalated once with the errors, never retried; transient ones (internal or provisioning failures) are left
//! to the service, which retries by itself, and escalated if they persist past `transient_grace`. Schedules
//! belong to the pool-scaler: the remediator never starts or stops anything.
//!
//! Image builders: FAILED → escalate once.
//!
//! Each problem is an *episode* (a ledger work item, open while the problem lasts): it remembers when the
//! problem began, the actions taken, the escalations sent and the last reason recorded, so every escalation
//! and every deferral is recorded once per episode, and every action is keyed by episode and attempt.

use autopilot_shared::policy::tags::hands_off_reason;
use autopilot_shared::policy::{RemediationPolicy, RemediationSelection, ResourceView};
use autopilot_shared::resource::{ResourceKind, ResourceRef};
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

mod episode;
pub use episode::Episode;

/// Consecutive failed attempts of one action before it is escalated instead of retried.
pub const MAX_FAILED_ATTEMPTS: u32 = 3;

/// What was seen of one WorkSpace. Tags and the connection state are read only for WorkSpaces in trouble
/// (or named by a request); for the others they are empty / `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenWorkspace {
    pub resource: ResourceRef,
    pub id: String,
    pub directory_id: String,
    pub user: String,
    pub state: String,
    pub tags: BTreeMap<String, String>,
    /// `Some(true)` when a user is connected; `None` when not looked up or not reported.
    pub connected: Option<bool>,
}

impl ResourceView for SeenWorkspace {
    fn id(&self) -> &str {
        &self.id
    }
    /// A WorkSpace is named by its user.
    fn name(&self) -> Option<&str> {
        Some(&self.user)
    }
    fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
}

/// What was seen of a pool, fleet or image builder: its state and the errors it reports.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenResource {
    pub resource: ResourceRef,
    /// The pool id, fleet name or builder name.
    pub name: String,
    pub state: String,
    /// `(code, message)` as the service reports them (`Errors`, `FleetErrors`, `ImageBuilderErrors`).
    pub errors: Vec<(String, String)>,
    /// Read only for resources in trouble.
    pub tags: BTreeMap<String, String>,
}

/// Everything observed in the scope swept.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub workspaces: Vec<SeenWorkspace>,
    pub pools: Vec<SeenResource>,
    pub fleets: Vec<SeenResource>,
    pub builders: Vec<SeenResource>,
    /// Kinds whose service could not be read: none of them was seen, and none is gone.
    pub unread: BTreeSet<ResourceKind>,
}

/// Actions taken in one selection's current clock hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    pub window: DateTime<Utc>,
    pub used: u32,
}

/// What the remediator does about one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Action {
    /// `RebootWorkspaces`; `attempt` counts the episode's reboots from 1.
    Reboot { attempt: u32 },
    /// `RebuildWorkspaces` (can lose user data: only where the policy allows it).
    Rebuild,
    /// An `Escalation` event: a person must look. `cause` keys it within the episode.
    Escalate { cause: String },
}

impl Action {
    /// The API call or event this action makes (the audit's action name).
    pub fn name(&self) -> &'static str {
        match self {
            Action::Reboot { .. } => "RebootWorkspaces",
            Action::Rebuild => "RebuildWorkspaces",
            Action::Escalate { .. } => "Escalation",
        }
    }

    /// The idempotency key: resource, episode (or a person's round of it) and attempt (or cause), never the tick.
    pub fn business_key(&self, resource: &ResourceRef, episode_since: DateTime<Utc>) -> String {
        let since = episode_since.timestamp();
        match self {
            Action::Reboot { attempt } => format!("reboot#{}#{since}#{attempt}", resource.key()),
            Action::Rebuild => format!("rebuild#{}#{since}", resource.key()),
            Action::Escalate { cause } => format!("escalate#{}#{since}#{cause}", resource.key()),
        }
    }
}

/// A decision not to act that is worth one audit record per episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Note {
    Skipped,
    Deferred,
}

/// The decision for one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub resource: ResourceRef,
    /// WorkSpace id, directory id, pool id, fleet name or builder name.
    pub name: String,
    pub state: String,
    /// The WorkSpace's selection (budget, rebuild, skip_connected).
    pub selection: Option<String>,
    pub action: Option<Action>,
    /// A skip or deferral to audit (once per episode and reason).
    pub note: Option<Note>,
    pub reason: String,
    /// Error codes and messages (pools, fleets, builders) or the outage figures (directories).
    pub details: serde_json::Value,
    /// The episode after this decision; `None` closes it (nothing is wrong any more).
    pub episode: Option<Episode>,
}

impl Decision {
    /// A decision about `resource` that does nothing yet (the rules fill it in).
    fn about(resource: &ResourceRef, name: &str, state: &str) -> Self {
        Decision {
            resource: resource.clone(),
            name: name.to_owned(),
            state: state.to_owned(),
            selection: None,
            action: None,
            note: None,
            reason: String::new(),
            details: serde_json::Value::Null,
            episode: None,
        }
    }
}

/// The plan of one sweep: decisions in act order, and each selection's budget after them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub decisions: Vec<Decision>,
    pub budgets: BTreeMap<String, Budget>,
}

/// What the sweep was asked to look at (from the input).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// A `Remediation Requested` for one WorkSpace: its id and the event id.
    pub workspace: Option<(String, String)>,
    /// The event's time (a requested episode starts then, so a redelivery finds the same episode).
    pub at: Option<DateTime<Utc>>,
    /// The person's words (`reason`): kept in the details of what is decided about the WorkSpace.
    pub why: Option<String>,
}

/// Everything the planner needs besides what was seen.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub policy: &'a RemediationPolicy,
    pub episodes: &'a BTreeMap<String, Episode>,
    /// Closed episodes of WorkSpaces troubled again (by resource key): a new episode remembers their recent
    /// reboots, rebuild, last action and escalations ([`Episode::following`]).
    pub history: &'a BTreeMap<String, Episode>,
    pub budgets: &'a BTreeMap<String, Budget>,
    pub tag_prefix: &'a str,
    pub now: DateTime<Utc>,
    pub request: &'a Request,
    /// Whether resources that are no longer seen close their episodes (a full sweep; not a scoped one).
    pub full_sweep: bool,
}

/// States in which a WorkSpace needs remediation.
fn is_unhealthy(state: &str) -> bool {
    matches!(state, "UNHEALTHY" | "IMPAIRED")
}

/// States in which a WorkSpace is counted unhealthy by the circuit breaker.
fn counts_unhealthy(state: &str) -> bool {
    matches!(state, "UNHEALTHY" | "IMPAIRED" | "ERROR")
}

/// States in which the WorkSpace is fine (an open episode closes).
fn is_settled(state: &str) -> bool {
    matches!(state, "AVAILABLE" | "STOPPED" | "SUSPENDED")
}

/// States that belong to people (maintenance): never touched.
fn is_maintenance(state: &str) -> bool {
    matches!(state, "ADMIN_MAINTENANCE" | "MAINTENANCE")
}

/// How an error a pool or fleet reports is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Needs a person to fix configuration (IAM, network, directory, image, quotas): escalate, never retry.
    Configuration,
    /// The service retries by itself; escalate only if it persists.
    Transient,
    /// Not a fault (the resource is stopped).
    Informational,
}

/// Classifies a `WorkspacesPoolErrorCode` / `FleetErrorCode`. Unknown codes are configuration errors: a
/// person looks, nothing is retried blindly.
pub fn classify_error(code: &str) -> ErrorClass {
    match code {
        "FLEET_STOPPED" | "WORKSPACES_POOL_STOPPED" => ErrorClass::Informational,
        "INTERNAL_SERVICE_ERROR"
        | "DOMAIN_JOIN_INTERNAL_SERVICE_ERROR"
        | "FLEET_INSTANCE_PROVISIONING_FAILURE"
        | "WORKSPACES_POOL_INSTANCE_PROVISIONING_FAILURE"
        | "DOMAIN_JOIN_NERR_WORKSTATION_NOT_STARTED" => ErrorClass::Transient,
        _ => ErrorClass::Configuration,
    }
}

/// States in which a WorkSpace can show whether it is healthy (it runs, or is being repaired): the circuit
/// breaker's population. A stopped, suspended, hibernated, starting or maintained WorkSpace says nothing of an
/// outage, and counting it would dilute one (16 of 40 running unhealthy is an outage, 16 of 100 with 60
/// stopped is not).
fn shows_health(state: &str) -> bool {
    !matches!(
        state,
        "STOPPED"
            | "STOPPING"
            | "STARTING"
            | "SUSPENDED"
            | "HIBERNATED"
            | "PENDING"
            | "TERMINATING"
            | "TERMINATED"
            | "ADMIN_MAINTENANCE"
            | "MAINTENANCE"
    )
}

/// Per directory: (unhealthy, population) over the WorkSpaces seen that can show their health.
fn directory_health(workspaces: &[SeenWorkspace]) -> BTreeMap<&str, (u32, u32)> {
    let mut health: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    for workspace in workspaces.iter().filter(|w| shows_health(&w.state)) {
        let entry = health.entry(workspace.directory_id.as_str()).or_default();
        entry.1 += 1;
        if counts_unhealthy(&workspace.state) {
            entry.0 += 1;
        }
    }
    health
}

/// Plans one sweep.
pub fn plan(seen: &Seen, inputs: Inputs<'_>) -> Plan {
    let Inputs { policy, episodes, now, .. } = inputs;
    let mut plan = Plan::default();
    let mut seen_keys = BTreeSet::new();

    // Circuit breaker per directory.
    let mut outages = BTreeSet::new();
    for (directory, (unhealthy, population)) in directory_health(&seen.workspaces) {
        let Some(sample) = seen.workspaces.iter().find(|w| w.directory_id == directory) else { continue };
        let Ok(resource) =
            ResourceRef::new(sample.resource.account(), sample.resource.region(), ResourceKind::Directory, directory)
        else {
            continue;
        };
        seen_keys.insert(resource.key());
        let share = f64::from(unhealthy) / f64::from(population.max(1));
        let open = population >= policy.circuit_min_population && share > policy.max_unhealthy_share.get();
        if open {
            outages.insert(directory.to_owned());
        }
        let stored = episodes.get(&resource.key());
        let health = DirectoryHealth { directory, open, unhealthy, population, share };
        if let Some(decision) = circuit(resource, &health, stored, inputs) {
            plan.decisions.push(decision);
        }
    }

    // WorkSpaces, longest unhealthy first (they get the budget first).
    let mut workspaces: Vec<&SeenWorkspace> = seen.workspaces.iter().collect();
    workspaces.sort_by_key(|w| {
        let episode = episodes.get(&w.resource.key());
        (episode.and_then(|e| e.unhealthy_since.or(Some(e.since))).unwrap_or(now), w.resource.clone())
    });
    let mut budgets = inputs.budgets.clone();
    for workspace in workspaces {
        seen_keys.insert(workspace.resource.key());
        let outage = outages.contains(&workspace.directory_id);
        let new_request = inputs.request.workspace.as_ref().is_some_and(|(id, event)| {
            *id == workspace.id
                && episodes.get(&workspace.resource.key()).and_then(|e| e.requested_by.as_deref()) != Some(event)
        });
        if let Some(mut decision) = decide_workspace(workspace, outage, &mut budgets, inputs) {
            if new_request {
                answer_request(&mut decision);
            }
            plan.decisions.push(decision);
        }
    }

    for (kind, resources) in [("pool", &seen.pools), ("fleet", &seen.fleets)] {
        for resource in resources {
            seen_keys.insert(resource.resource.key());
            if let Some(decision) = decide_service_errors(kind, resource, inputs) {
                plan.decisions.push(decision);
            }
        }
    }
    for builder in &seen.builders {
        seen_keys.insert(builder.resource.key());
        if let Some(decision) = decide_builder(builder, inputs) {
            plan.decisions.push(decision);
        }
    }

    // A full sweep closes the episodes of resources that are gone (not of those whose service was not read).
    if inputs.full_sweep {
        for (key, episode) in episodes {
            if !seen_keys.contains(key)
                && let Ok(resource) = ResourceRef::from_key(key)
                && !seen.unread.contains(&read_with(resource.kind()))
            {
                let mut decision = Decision::about(&resource, resource.id(), "GONE");
                decision.reason = format!("no longer seen (last {}): the episode is closed", episode.state);
                plan.decisions.push(decision);
            }
        }
    }
    plan.budgets = budgets.into_iter().filter(|(name, budget)| inputs.budgets.get(name) != Some(budget)).collect();
    plan
}

/// The kind whose listing shows a resource of `kind` (a directory's health is its WorkSpaces').
fn read_with(kind: ResourceKind) -> ResourceKind {
    if kind == ResourceKind::Directory { ResourceKind::Workspace } else { kind }
}

/// A directory's WorkSpaces health, as the circuit breaker sees it.
struct DirectoryHealth<'a> {
    directory: &'a str,
    /// More unhealthy than the policy allows: an outage (the circuit is open).
    open: bool,
    unhealthy: u32,
    population: u32,
    share: f64,
}

fn circuit(
    resource: ResourceRef,
    health: &DirectoryHealth<'_>,
    stored: Option<&Episode>,
    inputs: Inputs<'_>,
) -> Option<Decision> {
    let DirectoryHealth { directory, open, unhealthy, population, share } = *health;
    let figures = serde_json::json!({ "unhealthy": unhealthy, "population": population, "share": share });
    let decision = |action, reason: String, episode| Decision {
        action,
        reason,
        details: figures.clone(),
        episode,
        ..Decision::about(&resource, directory, if open { "OUTAGE" } else { "OK" })
    };
    if !open {
        // The outage is over: close its episode.
        return stored.map(|_| {
            decision(
                None,
                format!("{unhealthy} of {population} WorkSpaces unhealthy: the circuit breaker closes"),
                None,
            )
        });
    }
    let mut episode = stored.cloned().unwrap_or_else(|| Episode::new(inputs.now, "OUTAGE"));
    let reason = format!(
        "{unhealthy} of {population} WorkSpaces in directory {directory} are unhealthy ({:.0}% > {:.0}%): an outage, \
         not a WorkSpace problem; no WorkSpace in it is acted on",
        share * 100.0,
        inputs.policy.max_unhealthy_share.get() * 100.0
    );
    let action = escalate_once(&mut episode, "outage");
    Some(decision(action, reason, Some(episode)))
}

/// A person's `Remediation Requested` that is not acted on says why in the audit, once per request (a
/// decision that would otherwise leave no record: waiting for a state, cooling down, a reason already noted).
fn answer_request(decision: &mut Decision) {
    if decision.action.is_none() && decision.note.is_none() {
        decision.note = Some(Note::Deferred);
        decision.reason = format!("Remediation Requested, not acted on: {}", decision.reason);
    }
}

/// An escalation for `cause`, unless this episode already sent it.
fn escalate_once(episode: &mut Episode, cause: &str) -> Option<Action> {
    episode.escalated.insert(cause.to_owned()).then(|| Action::Escalate { cause: cause.to_owned() })
}

/// Records a note in the episode; the decision carries it only when the reason is new.
fn note_once(episode: &mut Episode, note: Note, reason: &str) -> Option<Note> {
    (episode.noted.as_deref() != Some(reason)).then(|| {
        episode.noted = Some(reason.to_owned());
        note
    })
}

fn decide_workspace(
    workspace: &SeenWorkspace,
    outage: bool,
    budgets: &mut BTreeMap<String, Budget>,
    inputs: Inputs<'_>,
) -> Option<Decision> {
    let Inputs { policy, now, .. } = inputs;
    let stored = inputs.episodes.get(&workspace.resource.key());
    let requested = inputs.request.workspace.as_ref().filter(|(id, _)| *id == workspace.id);
    let state = workspace.state.as_str();
    let selection = policy.selection_for(workspace);
    let mut decision = Decision::about(&workspace.resource, &workspace.id, state);
    decision.selection = Some(selection.name.clone());
    if let Some((_, event_id)) = requested {
        decision.details = serde_json::json!({ "requestedBy": event_id, "requestReason": inputs.request.why });
    }

    // Nothing wrong and nothing asked: an open episode closes (unless a person holds it).
    let troubled = is_unhealthy(state) || state == "ERROR";
    if !troubled && requested.is_none() {
        let episode = stored?;
        if let Some(since) = episode.hands_off_since
            && !(is_settled(state) && now - since >= policy.cooldown)
        {
            let mut episode = episode.clone();
            episode.state = state.to_owned();
            decision.reason = "a person put it into admin maintenance: hands off".into();
            decision.episode = Some(episode);
            return Some(decision);
        }
        if is_settled(state) {
            decision.reason = format!(
                "{state} again after {} reboot(s){}: the episode is closed",
                episode.reboots.len(),
                if episode.rebuilt_at.is_some() { " and a rebuild" } else { "" }
            );
            return Some(decision);
        }
        // In transition (REBOOTING, REBUILDING, STARTING, maintenance, ...): keep watching.
        let mut episode = episode.clone();
        episode.state = state.to_owned();
        decision.reason = format!("{state}: waiting for it to settle");
        decision.episode = Some(episode);
        return Some(decision);
    }

    let mut episode = stored.cloned().unwrap_or_else(|| {
        let since = if requested.is_some() { inputs.request.at.unwrap_or(now) } else { now };
        let previous = inputs.history.get(&workspace.resource.key());
        Episode::following(previous, since, state, policy.reboot_window)
    });
    episode.state = state.to_owned();
    if let Some((_, event_id)) = requested
        && episode.requested_by.as_deref() != Some(event_id)
    {
        episode.requested_by = Some(event_id.clone());
        // A person has confirmed the problem: no need to wait `reboot_after`, and a new round begins.
        episode.unhealthy_since = Some(episode.unhealthy_since.unwrap_or(now) - policy.reboot_after);
        episode.round_since = Some(now);
        episode.failures = 0;
        episode.escalated.retain(|cause| cause != "unremedied" && cause != "action-failing");
    }
    if is_unhealthy(state) && episode.unhealthy_since.is_none() {
        episode.unhealthy_since = Some(now);
    }

    let hold = |decision: &mut Decision, mut episode: Episode, note: Note, reason: String| {
        decision.note = note_once(&mut episode, note, &reason);
        decision.reason = reason;
        decision.episode = Some(episode);
    };

    if is_maintenance(state) || episode.hands_off_since.is_some() {
        hold(&mut decision, episode, Note::Skipped, format!("{state}: in maintenance, hands off"));
        return Some(decision);
    }
    if let Some(reason) = hands_off_reason(&workspace.tags, inputs.tag_prefix, now) {
        hold(&mut decision, episode, Note::Skipped, reason);
        return Some(decision);
    }
    if !troubled && state != "AVAILABLE" {
        // A person's request for a WorkSpace that is not unhealthy acts on an AVAILABLE one only ("black
        // screen"); one in transition (REBOOTING, REBUILDING, STARTING, …) — e.g. rebooted by this very
        // request's first delivery, which crashed before it was recorded — is left to settle.
        decision.reason = format!("{state}: waiting for it to settle before acting on the request");
        decision.episode = Some(episode);
        return Some(decision);
    }
    // An outage is escalated once for its directory: none of its WorkSpaces is acted on or escalated on its own.
    if outage {
        hold(
            &mut decision,
            episode,
            Note::Deferred,
            format!("directory {} has an outage (circuit breaker open): not acted on", workspace.directory_id),
        );
        return Some(decision);
    }
    if state == "ERROR" {
        decision.action = escalate_once(&mut episode, "error-state");
        decision.reason = "ERROR: the WorkSpace cannot be repaired by a reboot; a person must look".into();
        decision.episode = Some(episode);
        return Some(decision);
    }
    if episode.escalated.contains("unremedied") || episode.escalated.contains("action-failing") {
        // Escalated: a person has it now. A `Remediation Requested` for the WorkSpace starts a new round.
        hold(
            &mut decision,
            episode,
            Note::Skipped,
            "escalated: left to a person (a Remediation Requested for it starts a new round)".into(),
        );
        return Some(decision);
    }
    if episode.failures >= MAX_FAILED_ATTEMPTS {
        decision.action = escalate_once(&mut episode, "action-failing");
        decision.reason = format!("the last {} remediation attempts failed or were refused", episode.failures);
        decision.episode = Some(episode);
        return Some(decision);
    }
    if let Some(last) = episode.last_action_at
        && now < last + policy.cooldown
    {
        decision.reason = format!("cooling down until {} after the last action", last + policy.cooldown);
        decision.episode = Some(episode);
        return Some(decision);
    }
    let waiting_since = episode.unhealthy_since.unwrap_or(now);
    if is_unhealthy(state) && now < waiting_since + policy.reboot_after {
        decision.reason =
            format!("{state} since {waiting_since}; reboot after {}", waiting_since + policy.reboot_after);
        decision.episode = Some(episode);
        return Some(decision);
    }

    if state == "IMPAIRED" {
        // RebootWorkspaces takes an AVAILABLE or UNHEALTHY WorkSpace only, RebuildWorkspaces no IMPAIRED one:
        // a call would be refused at every sweep. A person decides (a stop and start, or AWS Support).
        decision.action = escalate_once(&mut episode, "unremedied");
        decision.reason = format!(
            "IMPAIRED since {waiting_since}: AWS reboots or rebuilds no IMPAIRED WorkSpace; a person must look"
        );
        decision.episode = Some(episode);
        return Some(decision);
    }
    let round = episode.round_since;
    let recent_reboots = episode
        .reboots
        .iter()
        .filter(|at| now - **at < policy.reboot_window && round.is_none_or(|since| **at >= since))
        .count() as u32;
    let action = if recent_reboots < policy.max_reboots {
        Action::Reboot { attempt: episode.reboots.len() as u32 + 1 }
    } else if selection.rebuild
        && state == "UNHEALTHY"
        && episode.rebuilt_at.is_none_or(|at| round.is_some_and(|r| at < r))
    {
        Action::Rebuild
    } else {
        let why = if episode.rebuilt_at.is_some() {
            "a rebuild did not help".to_owned()
        } else if !selection.rebuild {
            format!("rebuild is not allowed for selection {:?}", selection.name)
        } else {
            format!("an {state} WorkSpace cannot be rebuilt")
        };
        decision.action = escalate_once(&mut episode, "unremedied");
        decision.reason = format!("still {state} after {recent_reboots} reboot(s) within the window; {why}");
        decision.episode = Some(episode);
        return Some(decision);
    };

    if selection.skip_connected && workspace.connected != Some(false) {
        let reason = match workspace.connected {
            Some(_) => "a user is connected: not interrupted".to_owned(),
            None => "the connection state is unknown: not interrupted".to_owned(),
        };
        hold(&mut decision, episode, Note::Skipped, reason);
        return Some(decision);
    }
    if !take_budget(budgets, selection, now) {
        // The same words every hour it waits: recorded once, not once an hour (the budget's hour is in the audit
        // record's time).
        hold(
            &mut decision,
            episode,
            Note::Deferred,
            format!(
                "budget of {} actions per hour for selection {:?} used: waits for an hour with budget left",
                selection.max_actions_per_hour, selection.name
            ),
        );
        return Some(decision);
    }
    decision.reason = match &action {
        // Counted as `max_reboots` counts them: within the window and the person's round, if any (the action's
        // `attempt` counts the episode's, for its key).
        Action::Reboot { .. } => format!(
            "{state} since {waiting_since} (more than {}); reboot {} of at most {} per {}",
            autopilot_shared::policy::values::format_duration(policy.reboot_after),
            recent_reboots + 1,
            policy.max_reboots,
            autopilot_shared::policy::values::format_duration(policy.reboot_window)
        ),
        _ => format!(
            "still {state} after {recent_reboots} reboot(s); rebuild allowed for selection {:?}",
            selection.name
        ),
    };
    decision.action = Some(action);
    decision.episode = Some(episode);
    Some(decision)
}

/// The start of the clock hour `now` falls in (budgets count per clock hour).
fn window(now: DateTime<Utc>) -> DateTime<Utc> {
    now.duration_trunc(Duration::hours(1)).unwrap_or(now)
}

/// Takes one action from the selection's budget for the current hour, if any is left.
fn take_budget(budgets: &mut BTreeMap<String, Budget>, selection: &RemediationSelection, now: DateTime<Utc>) -> bool {
    let current = window(now);
    let budget = budgets.entry(selection.name.clone()).or_insert(Budget { window: current, used: 0 });
    if budget.window != current {
        *budget = Budget { window: current, used: 0 };
    }
    if budget.used >= selection.max_actions_per_hour {
        return false;
    }
    budget.used += 1;
    true
}

fn decide_service_errors(kind: &str, seen: &SeenResource, inputs: Inputs<'_>) -> Option<Decision> {
    let stored = inputs.episodes.get(&seen.resource.key());
    let faults: Vec<&(String, String)> =
        seen.errors.iter().filter(|(code, _)| classify_error(code) != ErrorClass::Informational).collect();
    let mut decision = Decision::about(&seen.resource, &seen.name, &seen.state);
    decision.details = serde_json::json!(faults.iter().map(|(c, m)| format!("{c}: {m}")).collect::<Vec<_>>());
    if faults.is_empty() {
        stored?;
        decision.reason = format!("the {kind} reports no errors any more: the episode is closed");
        return Some(decision);
    }
    let mut episode = stored.cloned().unwrap_or_else(|| Episode::new(inputs.now, &seen.state));
    episode.state = seen.state.clone();
    if let Some(reason) = hands_off_reason(&seen.tags, inputs.tag_prefix, inputs.now) {
        decision.note = note_once(&mut episode, Note::Skipped, &reason);
        decision.reason = reason;
        decision.episode = Some(episode);
        return Some(decision);
    }
    let codes = |class: ErrorClass| -> Vec<&str> {
        let mut codes: Vec<&str> =
            faults.iter().filter(|(code, _)| classify_error(code) == class).map(|(code, _)| code.as_str()).collect();
        codes.sort_unstable();
        codes.dedup();
        codes
    };
    let configuration = codes(ErrorClass::Configuration);
    if !configuration.is_empty() {
        decision.action = escalate_once(&mut episode, &format!("configuration:{}", configuration.join(",")));
        decision.reason = format!(
            "the {kind} reports configuration errors ({}): a person must fix them; nothing is retried",
            configuration.join(", ")
        );
        decision.episode = Some(episode);
        return Some(decision);
    }
    let transient = codes(ErrorClass::Transient);
    let since = *episode.unhealthy_since.get_or_insert(inputs.now);
    if inputs.now < since + inputs.policy.transient_grace {
        let reason = format!(
            "the {kind} reports {} (transient: the service retries by itself); escalated if still reported at {}",
            transient.join(", "),
            since + inputs.policy.transient_grace
        );
        decision.note = note_once(&mut episode, Note::Deferred, &reason);
        decision.reason = reason;
    } else {
        decision.action = escalate_once(&mut episode, &format!("persistent:{}", transient.join(",")));
        decision.reason = format!("the {kind} has reported {} since {since}", transient.join(", "));
    }
    decision.episode = Some(episode);
    Some(decision)
}

fn decide_builder(seen: &SeenResource, inputs: Inputs<'_>) -> Option<Decision> {
    let stored = inputs.episodes.get(&seen.resource.key());
    let mut decision = Decision::about(&seen.resource, &seen.name, &seen.state);
    decision.details = serde_json::json!(seen.errors.iter().map(|(c, m)| format!("{c}: {m}")).collect::<Vec<_>>());
    if seen.state != "FAILED" {
        stored?;
        decision.reason = format!("{}: no longer FAILED, the episode is closed", seen.state);
        return Some(decision);
    }
    let mut episode = stored.cloned().unwrap_or_else(|| Episode::new(inputs.now, &seen.state));
    if let Some(reason) = hands_off_reason(&seen.tags, inputs.tag_prefix, inputs.now) {
        decision.note = note_once(&mut episode, Note::Skipped, &reason);
        decision.reason = reason;
    } else {
        decision.action = escalate_once(&mut episode, "failed");
        decision.reason = "the image builder is FAILED: a person must look (it cannot be started or stopped)".into();
    }
    decision.episode = Some(episode);
    Some(decision)
}

#[cfg(test)]
mod tests;
