//! Planner tests: the rules one by one, and properties over random estates (no unsafe action, whatever the
//! states, memories and budgets).

use super::*;
use autopilot_shared::policy::Policy;
use proptest::prelude::*;

const POLICY: &str = "version: 1
remediation:
  reboot_after: 15m
  max_reboots: 2
  reboot_window: 24h
  cooldown: 30m
  budget: { max_actions_per_hour: 3 }
  circuit_breaker: { max_unhealthy_share: 0.3, min_population: 5 }
  transient_grace: 30m
  selections:
    - { name: kiosks, select: { tag: { kind: kiosk } }, rebuild: true, skip_connected: false }
";

fn policy() -> RemediationPolicy {
    Policy::from_yaml(POLICY).map(|p| p.remediation.unwrap()).unwrap()
}

fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z").unwrap().with_timezone(&Utc) + Duration::minutes(minutes)
}

fn workspace(id: &str, directory: &str, state: &str) -> SeenWorkspace {
    SeenWorkspace {
        resource: ResourceRef::new("123456789012", "eu-central-1", ResourceKind::Workspace, id).unwrap(),
        id: id.into(),
        directory_id: directory.into(),
        user: format!("user-{id}"),
        state: state.into(),
        tags: BTreeMap::new(),
        connected: Some(false),
    }
}

/// A directory of `healthy` AVAILABLE WorkSpaces plus `sick`.
fn estate(sick: Vec<SeenWorkspace>, healthy: usize) -> Seen {
    let mut workspaces: Vec<SeenWorkspace> =
        (0..healthy).map(|i| workspace(&format!("ws-ok{i:06}"), "d-1", "AVAILABLE")).collect();
    workspaces.extend(sick);
    Seen { workspaces, ..Seen::default() }
}

fn run(
    seen: &Seen,
    episodes: &BTreeMap<String, Episode>,
    budgets: &BTreeMap<String, Budget>,
    now: DateTime<Utc>,
) -> Plan {
    let policy = policy();
    let request = Request::default();
    plan(
        seen,
        Inputs {
            policy: &policy,
            episodes,
            history: &BTreeMap::new(),
            budgets,
            tag_prefix: "autopilot/",
            now,
            request: &request,
            full_sweep: true,
        },
    )
}

fn decision<'a>(plan: &'a Plan, name: &str) -> &'a Decision {
    plan.decisions.iter().find(|d| d.name == name).unwrap_or_else(|| panic!("no decision for {name}: {plan:#?}"))
}

fn episodes_of(plan: &Plan) -> BTreeMap<String, Episode> {
    plan.decisions.iter().filter_map(|d| d.episode.clone().map(|e| (d.resource.key(), e))).collect()
}

#[test]
fn unhealthy_waits_reboot_after_then_reboots_then_escalates_without_rebuild() {
    let seen = estate(vec![workspace("ws-sick00001", "d-1", "UNHEALTHY")], 20);
    let none = BTreeMap::new();
    let first = run(&seen, &none, &BTreeMap::new(), at(0));
    let sick = decision(&first, "ws-sick00001");
    assert_eq!(sick.action, None);
    assert!(sick.reason.contains("reboot after"), "{}", sick.reason);
    let episodes = episodes_of(&first);
    let later = run(&seen, &episodes, &BTreeMap::new(), at(15));
    assert_eq!(decision(&later, "ws-sick00001").action, Some(Action::Reboot { attempt: 1 }));
    // after two reboots in the window: no rebuild for the default selection → one escalation
    let mut episode = episodes.values().next().cloned().unwrap();
    episode.reboots = vec![at(15), at(60)];
    episode.last_action_at = Some(at(60));
    episode.unhealthy_since = Some(at(70));
    let episodes = BTreeMap::from([(seen.workspaces[20].resource.key(), episode)]);
    let plan = run(&seen, &episodes, &BTreeMap::new(), at(120));
    let sick = decision(&plan, "ws-sick00001");
    assert_eq!(sick.action, Some(Action::Escalate { cause: "unremedied".into() }));
    assert!(sick.reason.contains("rebuild is not allowed"), "{}", sick.reason);
    // escalated once: the next sweeps are quiet, even after the reboot window (a person has it now)
    let again = run(&seen, &episodes_of(&plan), &BTreeMap::new(), at(125));
    assert_eq!(decision(&again, "ws-sick00001").action, None);
    let next_day = run(&seen, &episodes_of(&again), &BTreeMap::new(), at(125 + 25 * 60));
    assert_eq!(decision(&next_day, "ws-sick00001").action, None);
    // until a person asks again: a new round of reboots
    let request =
        Request { workspace: Some(("ws-sick00001".into(), "req-9".into())), at: Some(at(126 + 25 * 60)), why: None };
    let policy = policy();
    let episodes = episodes_of(&next_day);
    let budgets = BTreeMap::new();
    let retried = super::plan(
        &seen,
        Inputs {
            policy: &policy,
            episodes: &episodes,
            history: &BTreeMap::new(),
            budgets: &budgets,
            tag_prefix: "autopilot/",
            now: at(126 + 25 * 60),
            request: &request,
            full_sweep: true,
        },
    );
    assert_eq!(decision(&retried, "ws-sick00001").action, Some(Action::Reboot { attempt: 3 }));
}

/// The plan for `state` when a person asks for `ws-busy00001` and nothing is remembered.
fn requested(state: &str) -> Plan {
    let policy = policy();
    let request = Request {
        workspace: Some(("ws-busy00001".into(), "req-1".into())),
        at: Some(at(0)),
        why: Some("black screen".into()),
    };
    let seen = estate(vec![workspace("ws-busy00001", "d-1", state)], 20);
    let (none, no_budgets) = (BTreeMap::new(), BTreeMap::new());
    let inputs = Inputs {
        policy: &policy,
        episodes: &none,
        history: &BTreeMap::new(),
        budgets: &no_budgets,
        tag_prefix: "autopilot/",
        now: at(0),
        request: &request,
        full_sweep: false,
    };
    plan(&seen, inputs)
}

#[test]
fn a_request_never_reboots_a_workspace_in_transition() {
    // GIVEN a person's request for a WorkSpace that is REBOOTING (or rebuilding, starting, stopped), no memory
    for state in ["REBOOTING", "REBUILDING", "STARTING", "STOPPING", "STOPPED", "PENDING"] {
        // WHEN it is planned THEN nothing is done: it is left to settle
        let planned = requested(state);
        let busy = decision(&planned, "ws-busy00001");
        assert_eq!(busy.action, None, "{state}");
        assert!(busy.reason.contains("waiting for it to settle"), "{state}: {}", busy.reason);
        // AND the person is told why, once: the audit records the request declined
        assert_eq!(busy.note, Some(Note::Deferred), "{state}");
        assert!(busy.reason.starts_with("Remediation Requested, not acted on: "), "{}", busy.reason);
    }
    // a redelivery of the same request is not recorded again
    let first = requested("STOPPED");
    let policy = policy();
    let request = Request {
        workspace: Some(("ws-busy00001".into(), "req-1".into())),
        at: Some(at(0)),
        why: Some("black screen".into()),
    };
    let seen = estate(vec![workspace("ws-busy00001", "d-1", "STOPPED")], 20);
    let (episodes, budgets) = (episodes_of(&first), BTreeMap::new());
    let inputs = Inputs {
        policy: &policy,
        episodes: &episodes,
        history: &BTreeMap::new(),
        budgets: &budgets,
        tag_prefix: "autopilot/",
        now: at(1),
        request: &request,
        full_sweep: false,
    };
    assert_eq!(decision(&plan(&seen, inputs), "ws-busy00001").note, None);
    // AND an AVAILABLE one ("black screen") is still rebooted at once
    assert_eq!(decision(&requested("AVAILABLE"), "ws-busy00001").action, Some(Action::Reboot { attempt: 1 }));
    // AND what is decided carries the request and the person's words (into its audit record)
    let plan = requested("AVAILABLE");
    let details = &decision(&plan, "ws-busy00001").details;
    assert_eq!(
        (details["requestedBy"].as_str(), details["requestReason"].as_str()),
        (Some("req-1"), Some("black screen"))
    );
}

#[test]
fn a_kiosk_is_rebuilt_after_its_reboots_and_an_impaired_one_never_is() {
    let mut kiosk = workspace("ws-kiosk0001", "d-1", "UNHEALTHY");
    kiosk.tags.insert("kind".into(), "kiosk".into());
    kiosk.connected = Some(true); // kiosks do not skip connected users
    let mut impaired = workspace("ws-kiosk0002", "d-1", "IMPAIRED");
    impaired.tags.insert("kind".into(), "kiosk".into());
    let seen = estate(vec![kiosk, impaired], 20);
    let rebooted = Episode {
        since: at(0),
        state: "UNHEALTHY".into(),
        unhealthy_since: Some(at(40)),
        reboots: vec![at(15), at(45)],
        last_action_at: Some(at(45)),
        ..Episode::default()
    };
    let episodes: BTreeMap<String, Episode> =
        seen.workspaces[20..].iter().map(|w| (w.resource.key(), rebooted.clone())).collect();
    let plan = run(&seen, &episodes, &BTreeMap::new(), at(90));
    assert_eq!(decision(&plan, "ws-kiosk0001").action, Some(Action::Rebuild));
    let impaired = decision(&plan, "ws-kiosk0002");
    assert_eq!(impaired.action, Some(Action::Escalate { cause: "unremedied".into() }));
    assert!(impaired.reason.contains("no IMPAIRED WorkSpace"), "{}", impaired.reason);
}

#[test]
fn an_impaired_workspace_is_escalated_after_reboot_after_and_never_rebooted() {
    // GIVEN a WorkSpace IMPAIRED with no user connected (RebootWorkspaces would refuse it)
    let seen = estate(vec![workspace("ws-impair001", "d-1", "IMPAIRED")], 20);
    // WHEN it is first seen: it waits `reboot_after` like an UNHEALTHY one
    let first = run(&seen, &BTreeMap::new(), &BTreeMap::new(), at(0));
    assert_eq!(decision(&first, "ws-impair001").action, None);
    let episodes: BTreeMap<String, Episode> =
        [(seen.workspaces[20].resource.key(), decision(&first, "ws-impair001").episode.clone().unwrap())].into();
    // THEN once `reboot_after` has passed it is escalated, once, and no reboot is ever decided
    let later = run(&seen, &episodes, &BTreeMap::new(), at(20));
    let escalated = decision(&later, "ws-impair001");
    assert_eq!(escalated.action, Some(Action::Escalate { cause: "unremedied".into() }));
    let episodes: BTreeMap<String, Episode> =
        [(seen.workspaces[20].resource.key(), escalated.episode.clone().unwrap())].into();
    let after = run(&seen, &episodes, &BTreeMap::new(), at(200));
    assert_eq!(decision(&after, "ws-impair001").action, None);
}

#[test]
fn hands_off_connected_maintenance_skip_tag_and_error() {
    let mut connected = workspace("ws-conn00001", "d-1", "UNHEALTHY");
    connected.connected = Some(true);
    let mut tagged = workspace("ws-skip00001", "d-1", "UNHEALTHY");
    tagged.tags.insert("autopilot/skip".into(), "true".into());
    let seen = estate(
        vec![
            connected,
            tagged,
            workspace("ws-mnt000001", "d-1", "ADMIN_MAINTENANCE"),
            workspace("ws-err000001", "d-1", "ERROR"),
        ],
        40,
    );
    let old = Episode { since: at(0), state: "UNHEALTHY".into(), unhealthy_since: Some(at(0)), ..Episode::default() };
    let episodes: BTreeMap<String, Episode> =
        seen.workspaces[40..].iter().map(|w| (w.resource.key(), old.clone())).collect();
    let plan = run(&seen, &episodes, &BTreeMap::new(), at(60));
    let connected = decision(&plan, "ws-conn00001");
    assert_eq!((connected.action.clone(), connected.note), (None, Some(Note::Skipped)));
    assert!(connected.reason.contains("user is connected"));
    assert_eq!(decision(&plan, "ws-skip00001").note, Some(Note::Skipped));
    assert_eq!(decision(&plan, "ws-mnt000001").action, None);
    assert_eq!(decision(&plan, "ws-err000001").action, Some(Action::Escalate { cause: "error-state".into() }));
    // noted once: the same reasons are not recorded again
    let again = run(&seen, &episodes_of(&plan), &BTreeMap::new(), at(65));
    assert!(again.decisions.iter().all(|d| d.note.is_none() && d.action.is_none()), "{again:#?}");
}

#[test]
fn circuit_breaker_acts_on_none_and_escalates_once() {
    let sick: Vec<SeenWorkspace> = (0..4).map(|i| workspace(&format!("ws-sick{i:05}"), "d-1", "UNHEALTHY")).collect();
    let seen = estate(sick, 6); // 4 of 10 = 40% > 30%
    let old = Episode { since: at(0), state: "UNHEALTHY".into(), unhealthy_since: Some(at(0)), ..Episode::default() };
    let episodes: BTreeMap<String, Episode> =
        seen.workspaces[6..].iter().map(|w| (w.resource.key(), old.clone())).collect();
    let plan = run(&seen, &episodes, &BTreeMap::new(), at(60));
    let outage = decision(&plan, "d-1");
    assert_eq!(outage.action, Some(Action::Escalate { cause: "outage".into() }));
    assert_eq!(outage.details["unhealthy"], 4);
    for i in 0..4 {
        let d = decision(&plan, &format!("ws-sick{i:05}"));
        assert_eq!((d.action.clone(), d.note), (None, Some(Note::Deferred)), "{d:?}");
    }
    let again = run(&seen, &episodes_of(&plan), &BTreeMap::new(), at(65));
    assert_eq!(decision(&again, "d-1").action, None);
    // recovered: the outage episode closes
    let healthy = estate(vec![], 10);
    let closed = run(&healthy, &episodes_of(&again), &BTreeMap::new(), at(120));
    assert_eq!(decision(&closed, "d-1").episode, None);
    // stopped WorkSpaces show no health and do not dilute an outage: 4 of the 10 running, with 20 stopped
    let mut diluted = seen.clone();
    diluted.workspaces.extend((0..20).map(|i| workspace(&format!("ws-stop{i:05}"), "d-1", "STOPPED")));
    let plan = run(&diluted, &episodes, &BTreeMap::new(), at(60));
    let outage = decision(&plan, "d-1");
    assert_eq!(outage.action, Some(Action::Escalate { cause: "outage".into() }));
    assert_eq!((outage.details["unhealthy"].clone(), outage.details["population"].clone()), (4.into(), 10.into()));
    // WorkSpaces in ERROR during an outage are not escalated one by one: the outage's one Escalation speaks for them
    let errors: Vec<SeenWorkspace> = (0..4).map(|i| workspace(&format!("ws-err{i:06}"), "d-1", "ERROR")).collect();
    let plan = run(&estate(errors, 6), &BTreeMap::new(), &BTreeMap::new(), at(60));
    let escalations: Vec<&Decision> = plan.decisions.iter().filter(|d| d.action.is_some()).collect();
    assert_eq!(escalations.len(), 1, "{escalations:#?}");
    assert_eq!(escalations[0].action, Some(Action::Escalate { cause: "outage".into() }));
}

#[test]
fn budget_defers_the_rest_to_the_next_hour() {
    let sick: Vec<SeenWorkspace> = (0..5).map(|i| workspace(&format!("ws-sick{i:05}"), "d-1", "UNHEALTHY")).collect();
    let seen = estate(sick, 45);
    let old = Episode { since: at(0), state: "UNHEALTHY".into(), unhealthy_since: Some(at(0)), ..Episode::default() };
    let episodes: BTreeMap<String, Episode> =
        seen.workspaces[45..].iter().map(|w| (w.resource.key(), old.clone())).collect();
    let plan = run(&seen, &episodes, &BTreeMap::new(), at(20));
    let reboots = plan.decisions.iter().filter(|d| matches!(d.action, Some(Action::Reboot { .. }))).count();
    assert_eq!(reboots, 3);
    let deferred: Vec<&Decision> = plan.decisions.iter().filter(|d| d.note == Some(Note::Deferred)).collect();
    assert_eq!(deferred.len(), 2);
    assert!(deferred[0].reason.contains("waits for an hour with budget left"), "{}", deferred[0].reason);
    assert_eq!(plan.budgets.get("default"), Some(&Budget { window: at(0), used: 3 }));
    // next hour: the budget is fresh
    let next = run(&seen, &episodes_of(&plan), &plan.budgets, at(60));
    assert!(next.decisions.iter().filter(|d| matches!(d.action, Some(Action::Reboot { .. }))).count() >= 2);
    // eight waiting for a budget of three: those still waiting an hour later are not recorded again
    let sick: Vec<SeenWorkspace> = (0..8).map(|i| workspace(&format!("ws-many{i:05}"), "d-1", "UNHEALTHY")).collect();
    let many = estate(sick, 92);
    let episodes: BTreeMap<String, Episode> =
        many.workspaces[92..].iter().map(|w| (w.resource.key(), old.clone())).collect();
    let first = run(&many, &episodes, &BTreeMap::new(), at(20));
    assert_eq!(first.decisions.iter().filter(|d| d.note == Some(Note::Deferred)).count(), 5);
    let second = run(&many, &episodes_of(&first), &first.budgets, at(80));
    let still_waiting = second.decisions.iter().filter(|d| d.reason.contains("waits for an hour")).count();
    assert_eq!(still_waiting, 5, "the first three took the new hour's budget again (their second reboot)");
    assert_eq!(second.decisions.iter().filter(|d| d.note == Some(Note::Deferred)).count(), 0, "noted once");
}

#[test]
fn pool_and_fleet_errors_are_classified() {
    let pool = |errors: &[&str]| SeenResource {
        resource: ResourceRef::new("123456789012", "eu-central-1", ResourceKind::WorkspacesPool, "wspool-1").unwrap(),
        name: "wspool-1".into(),
        state: "RUNNING".into(),
        errors: errors.iter().map(|c| ((*c).to_owned(), "message".to_owned())).collect(),
        tags: BTreeMap::new(),
    };
    let none = BTreeMap::new();
    let config =
        Seen { pools: vec![pool(&["IAM_SERVICE_ROLE_IS_MISSING", "INTERNAL_SERVICE_ERROR"])], ..Seen::default() };
    let plan = run(&config, &none, &BTreeMap::new(), at(0));
    assert_eq!(
        decision(&plan, "wspool-1").action,
        Some(Action::Escalate { cause: "configuration:IAM_SERVICE_ROLE_IS_MISSING".into() })
    );
    assert_eq!(decision(&run(&config, &episodes_of(&plan), &BTreeMap::new(), at(5)), "wspool-1").action, None);
    let transient = Seen { pools: vec![pool(&["INTERNAL_SERVICE_ERROR"])], ..Seen::default() };
    let early = run(&transient, &none, &BTreeMap::new(), at(0));
    assert_eq!(
        (decision(&early, "wspool-1").action.clone(), decision(&early, "wspool-1").note),
        (None, Some(Note::Deferred))
    );
    let late = run(&transient, &episodes_of(&early), &BTreeMap::new(), at(30));
    assert_eq!(
        decision(&late, "wspool-1").action,
        Some(Action::Escalate { cause: "persistent:INTERNAL_SERVICE_ERROR".into() })
    );
    let stopped = Seen { pools: vec![pool(&["WORKSPACES_POOL_STOPPED"])], ..Seen::default() };
    assert!(run(&stopped, &none, &BTreeMap::new(), at(0)).decisions.is_empty());
    assert_eq!(classify_error("SOMETHING_NEW"), ErrorClass::Configuration);
}

fn any_state() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "AVAILABLE",
        "UNHEALTHY",
        "IMPAIRED",
        "ERROR",
        "REBOOTING",
        "REBUILDING",
        "ADMIN_MAINTENANCE",
        "MAINTENANCE",
        "STOPPED",
        "STARTING",
        "SUSPENDED",
        "TERMINATING",
        "SOMETHING_NEW",
    ])
    .prop_map(str::to_owned)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever the states, memories and budgets: reboots only from UNHEALTHY, rebuilds only from
    /// UNHEALTHY and only where allowed, nothing in maintenance, skipped or (default selection) connected,
    /// nothing in a directory over the breaker's threshold, and never more actions than the budget.
    #[test]
    fn no_unsafe_action(
        states in prop::collection::vec((any_state(), any::<bool>(), any::<bool>(), any::<bool>(), 0u32..4, 0i64..200), 1..30),
        used in 0u32..4,
        now in 0i64..300,
    ) {
        let mut workspaces = Vec::new();
        let mut episodes = BTreeMap::new();
        for (i, (state, connected, kiosk, skip, reboots, since)) in states.iter().enumerate() {
            let mut w = workspace(&format!("ws-p{i:08}"), if i % 2 == 0 { "d-1" } else { "d-2" }, state);
            w.connected = Some(*connected);
            if *kiosk { w.tags.insert("kind".into(), "kiosk".into()); }
            if *skip { w.tags.insert("autopilot/skip".into(), "yes".into()); }
            episodes.insert(w.resource.key(), Episode {
                since: at(-since),
                state: state.clone(),
                unhealthy_since: Some(at(-since)),
                reboots: (0..*reboots).map(|r| at(-since + i64::from(r))).collect(),
                ..Episode::default()
            });
            workspaces.push(w);
        }
        let seen = Seen { workspaces, ..Seen::default() };
        let budgets = BTreeMap::from([("default".to_owned(), Budget { window: at(now).duration_trunc(Duration::hours(1)).unwrap(), used })]);
        let plan = run(&seen, &episodes, &budgets, at(now));
        let health = directory_health(&seen.workspaces);
        let mut actions = 0;
        for d in &plan.decisions {
            let Some(action @ (Action::Reboot { .. } | Action::Rebuild)) = &d.action else { continue };
            actions += u32::from(d.selection.as_deref() == Some("default"));
            let w = seen.workspaces.iter().find(|w| w.id == d.name).unwrap();
            prop_assert!(w.state == "UNHEALTHY", "{action:?} on {}", w.state);
            prop_assert!(!w.tags.contains_key("autopilot/skip"));
            let kiosk = w.tags.contains_key("kind");
            prop_assert!(kiosk || !w.connected.unwrap_or(true), "connected user interrupted");
            if *action == Action::Rebuild { prop_assert!(kiosk && w.state == "UNHEALTHY"); }
            let (unhealthy, population) = health[w.directory_id.as_str()];
            prop_assert!(population < 5 || f64::from(unhealthy) / f64::from(population) <= 0.3, "acted during an outage");
        }
        prop_assert!(used + actions <= 3, "budget exceeded: {used} + {actions}");
    }
}

#[test]
fn a_workspace_that_flaps_keeps_its_reboots_cooldown_and_escalation_across_episodes() {
    let policy = policy();
    let seen = estate(vec![workspace("ws-flap00001", "d-1", "UNHEALTHY")], 20);
    let key = seen.workspaces[20].resource.key();
    let (none, budgets, request) = (BTreeMap::new(), BTreeMap::new(), Request::default());
    let sweep = |history: &BTreeMap<String, Episode>, now| {
        let inputs = Inputs {
            policy: &policy,
            episodes: &none,
            history,
            budgets: &budgets,
            tag_prefix: "autopilot/",
            now,
            request: &request,
            full_sweep: true,
        };
        decision(&super::plan(&seen, inputs), "ws-flap00001").clone()
    };
    // GIVEN an episode closed (AVAILABLE again) 10 minutes after our reboot at 0
    let closed = |reboots: Vec<DateTime<Utc>>, escalated: &[&str]| Episode {
        since: at(-20),
        state: "AVAILABLE".into(),
        last_action_at: reboots.last().copied(),
        reboots,
        escalated: escalated.iter().map(|c| (*c).to_owned()).collect(),
        closed: true,
        ..Episode::default()
    };
    // WHEN it is UNHEALTHY again 20 minutes after that reboot, past `reboot_after`
    let history = BTreeMap::from([(key.clone(), closed(vec![at(0)], &[]))]);
    let first = sweep(&history, at(20));
    let episode = first.episode.clone().unwrap();
    assert_eq!((episode.reboots.len(), episode.last_action_at), (1, Some(at(0))), "the last reboot is remembered");
    // THEN the cooldown (30m) still runs from that reboot
    let history = BTreeMap::from([(key.clone(), Episode { unhealthy_since: Some(at(0)), ..closed(vec![at(0)], &[]) })]);
    assert!(sweep(&history, at(20)).reason.contains("cooling down"), "{}", sweep(&history, at(20)).reason);
    // AND a second flap after two reboots within the window escalates instead of a third reboot
    let history = BTreeMap::from([(key.clone(), closed(vec![at(0), at(40)], &[]))]);
    let episode = Episode { unhealthy_since: Some(at(60)), ..sweep(&history, at(80)).episode.unwrap() };
    let flapped = BTreeMap::from([(key.clone(), episode)]);
    let third = decide_once(&policy, &seen, &flapped, at(100));
    assert_eq!(third.action, Some(Action::Escalate { cause: "unremedied".into() }), "{}", third.reason);
    // AND once escalated, the next flap is left to the person (no reboot, no second escalation)
    let history = BTreeMap::from([(key.clone(), closed(vec![at(0), at(40)], &["unremedied"]))]);
    let episode = Episode { unhealthy_since: Some(at(60)), ..sweep(&history, at(100)).episode.unwrap() };
    let held = decide_once(&policy, &seen, &BTreeMap::from([(key.clone(), episode)]), at(120));
    assert_eq!(held.action, None, "{}", held.reason);
    // AND a day later the old reboots no longer count: a fresh start
    let fresh = sweep(&BTreeMap::from([(key, closed(vec![at(0), at(40)], &["unremedied"]))]), at(40 + 25 * 60));
    let episode = fresh.episode.unwrap();
    assert!(episode.reboots.is_empty() && episode.escalated.is_empty() && episode.last_action_at.is_none());
}

/// One sweep's decision for `ws-flap00001` with `episodes` open.
fn decide_once(
    policy: &RemediationPolicy,
    seen: &Seen,
    episodes: &BTreeMap<String, Episode>,
    now: DateTime<Utc>,
) -> Decision {
    let (budgets, request) = (BTreeMap::new(), Request::default());
    let inputs = Inputs {
        policy,
        episodes,
        history: &BTreeMap::new(),
        budgets: &budgets,
        tag_prefix: "autopilot/",
        now,
        request: &request,
        full_sweep: true,
    };
    decision(&super::plan(seen, inputs), "ws-flap00001").clone()
}

#[test]
fn episodes_of_a_service_that_was_not_read_stay_open() {
    // GIVEN an open episode of a WorkSpace, and a full sweep that could not read the WorkSpaces
    let sick = workspace("ws-sick00001", "d-1", "UNHEALTHY");
    let episode = Episode { since: at(0), state: "UNHEALTHY".into(), ..Episode::default() };
    let episodes = BTreeMap::from([(sick.resource.key(), episode)]);
    let unread = Seen { unread: BTreeSet::from([ResourceKind::Workspace]), ..Seen::default() };
    // THEN its episode is not closed as gone
    let plan = run(&unread, &episodes, &BTreeMap::new(), at(30));
    assert!(plan.decisions.is_empty(), "{:#?}", plan.decisions);
    // WHILE a sweep that read them and did not find it closes it
    let plan = run(&Seen::default(), &episodes, &BTreeMap::new(), at(30));
    assert!(decision(&plan, "ws-sick00001").reason.contains("no longer seen"));
}
