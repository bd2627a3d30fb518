//! Planning a rollout, pure: which environments each ring holds, which software set is new enough to roll, and
//! whether a request may start (one active rollout per environment).

use crate::machine::{EnvironmentRecord, RingProgress, Rollout};
use crate::observe::{EnvironmentView, SoftwareSetView};
use autopilot_shared::policy::RolloutPolicy;
use autopilot_shared::policy::tags::hands_off_reason;
use chrono::{DateTime, Utc};

/// Whose tags are read, and when: the deployment's tag prefix (`autopilot/`) at the instant of the decision.
#[derive(Debug, Clone, Copy)]
pub struct Tags<'a> {
    pub prefix: &'a str,
    pub now: DateTime<Utc>,
}

impl Tags<'_> {
    /// Why `environment`'s tags keep the roller's hands off it (`skip`, an override `hold`, malformed override
    /// tags), if they do.
    pub fn hands_off(&self, environment: &EnvironmentView) -> Option<String> {
        hands_off_reason(&environment.tags, self.prefix, self.now)
    }
}

impl<'a> Tags<'a> {
    /// Why an environment of `environments` (by id) may not be touched now, by its tags ([`Tags::hands_off`]).
    pub fn hands_off_by_id(self, environments: &'a [EnvironmentView]) -> impl Fn(&str) -> Option<String> + 'a {
        move |id: &str| environments.iter().find(|e| e.id == id).and_then(|e| self.hands_off(e))
    }
}

/// An environment a ring selects that its tags keep out of the rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub environment: String,
    pub ring: String,
    pub reason: String,
}

/// The rings with their environments: each environment belongs to the first ring whose selector matches it;
/// USE_LATEST environments are left out unless the policy includes them (the service updates them itself).
pub fn rings(policy: &RolloutPolicy, environments: &[EnvironmentView], tags: Tags<'_>) -> Vec<RingProgress> {
    plan(policy, environments, tags).0
}

/// [`rings`], and the environments left out of them because their tags hold them (`autopilot/skip`, an override
/// `hold`): an environment a ring selects but holds is in no ring (it does not fall through to the next one).
pub fn plan(
    policy: &RolloutPolicy,
    environments: &[EnvironmentView],
    tags: Tags<'_>,
) -> (Vec<RingProgress>, Vec<Held>) {
    let mut taken = std::collections::BTreeSet::new();
    let mut held = Vec::new();
    let rings = policy
        .rings
        .iter()
        .map(|ring| {
            let members = environments
                .iter()
                .filter(|e| ring.select.matches(*e))
                .filter(|e| policy.include_use_latest || e.update_mode != "USE_LATEST")
                .filter(|e| taken.insert(e.id.clone()))
                .filter(|e| match tags.hands_off(e) {
                    Some(reason) => {
                        held.push(Held { environment: e.id.clone(), ring: ring.name.clone(), reason });
                        false
                    }
                    None => true,
                })
                .map(|e| EnvironmentRecord {
                    id: e.id.clone(),
                    previous_desired: e.desired_software_set_id.clone(),
                    previous_mode: e.update_mode.clone(),
                    window: e.window.clone(),
                })
                .collect();
            RingProgress {
                name: ring.name.clone(),
                environments: members,
                applied_at: None,
                opens_at: None,
                updated_at: None,
                passed_at: None,
                figures: None,
            }
        })
        .collect();
    (rings, held)
}

/// The set a new rollout would roll: the newest (by release) set still supported at `now` that is newer than
/// every set the rings' environments are asked to run. `None` when there is nothing newer.
pub fn candidate<'a>(
    sets: &'a [SoftwareSetView],
    rings: &[RingProgress],
    now: DateTime<Utc>,
) -> Option<&'a SoftwareSetView> {
    let released = |id: &str| sets.iter().find(|s| s.id == id).and_then(|s| s.released_at);
    let newest_in_use = rings
        .iter()
        .flat_map(|r| &r.environments)
        .filter_map(|e| e.previous_desired.as_deref().and_then(released))
        .max();
    sets.iter()
        .filter(|s| crate::machine::supported(s.supported_until, now))
        .filter(|s| s.released_at.is_some_and(|at| newest_in_use.is_none_or(|used| at > used)))
        .max_by_key(|s| s.released_at)
}

/// The active rollout that already rolls `target` to every environment the rings hold, if one does: a request
/// for the same set is then answered by it (`already-rolling`), not refused.
pub fn covering<'a>(target: &str, planned: &[RingProgress], active: &'a [Rollout]) -> Option<&'a str> {
    active
        .iter()
        .filter(|r| !r.status.is_final() && r.target_set == target)
        .find(|r| {
            planned
                .iter()
                .flat_map(|ring| &ring.environments)
                .all(|e| r.rings.iter().flat_map(|ring| &ring.environments).any(|o| o.id == e.id))
        })
        .map(|r| r.id.as_str())
}

/// Why a rollout of `target` cannot start now, if it cannot: the set is unknown or past its support, the rings
/// hold no environment, or an environment is in another active rollout.
pub fn refusal(
    target: &str,
    sets: &[SoftwareSetView],
    planned: &[RingProgress],
    active: &[Rollout],
    now: DateTime<Utc>,
) -> Option<String> {
    let Some(set) = sets.iter().find(|s| s.id == target) else {
        return Some(format!("software set {target} does not exist"));
    };
    if !crate::machine::supported(set.supported_until, now) {
        return Some(format!("software set {target} is past its end of support"));
    }
    if planned.iter().all(|r| r.environments.is_empty()) {
        return Some("no environment is selected by any ring".into());
    }
    if let Some(first) = planned.first().filter(|r| r.environments.is_empty()) {
        // The first ring is the one that proves the set on devices before any other ring gets it.
        return Some(format!(
            "ring {} has no environment (none selected, or all held by their tags): nothing would prove the set \
             before the rings after it",
            first.name
        ));
    }
    for rollout in active.iter().filter(|r| !r.status.is_final()) {
        let busy: Vec<&str> = planned
            .iter()
            .flat_map(|r| &r.environments)
            .filter(|e| rollout.rings.iter().flat_map(|r| &r.environments).any(|o| o.id == e.id))
            .map(|e| e.id.as_str())
            .collect();
        if !busy.is_empty() {
            return Some(format!(
                "environments {} are in rollout {} of {} ({}): one active rollout per environment",
                busy.join(", "),
                rollout.id,
                rollout.target_set,
                rollout.status.as_str()
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::Status;
    use autopilot_shared::policy::Policy;
    use chrono::{Duration, TimeZone};

    fn policy(include_use_latest: bool) -> RolloutPolicy {
        Policy::from_yaml(&format!(
            "version: 1\nrollouts:\n  include_use_latest: {include_use_latest}\n  rings:\n    - {{ name: canary, select: {{ tag: {{ ring: canary }} }} }}\n    - {{ name: broad, select: {{ tag: {{ fleet: all }} }} }}\n"
        ))
        .unwrap()
        .rollouts
        .unwrap()
    }

    fn env(id: &str, tags: &[(&str, &str)], mode: &str, desired: &str) -> EnvironmentView {
        EnvironmentView {
            id: id.into(),
            name: id.into(),
            arn: format!("arn:aws:thinclient:eu-central-1:123456789012:environment/{id}"),
            desired_software_set_id: Some(desired.into()),
            update_mode: mode.into(),
            window: Default::default(),
            tags: tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        }
    }

    fn untagged() -> Tags<'static> {
        Tags { prefix: autopilot_shared::policy::tags::DEFAULT_TAG_PREFIX, now: t(0) }
    }

    fn t(days: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap() + Duration::days(days)
    }

    fn set(id: &str, released: i64, until: Option<i64>) -> SoftwareSetView {
        SoftwareSetView {
            id: id.into(),
            arn: format!("arn:aws:thinclient:eu-central-1:123456789012:softwareset/{id}"),
            version: id.into(),
            released_at: Some(t(released)),
            supported_until: until.map(t),
            validation_status: "NOT_VALIDATED".into(),
        }
    }

    #[test]
    fn environments_go_to_the_first_matching_ring_and_use_latest_is_left_alone() {
        let envs = [
            env("e1", &[("ring", "canary"), ("fleet", "all")], "USE_DESIRED", "100"),
            env("e2", &[("fleet", "all")], "USE_DESIRED", "100"),
            env("e3", &[("fleet", "all")], "USE_LATEST", "100"),
        ];
        let ids =
            |rings: &[RingProgress], i: usize| rings[i].environments.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
        let planned = rings(&policy(false), &envs, untagged());
        assert_eq!((ids(&planned, 0), ids(&planned, 1)), (vec!["e1".to_owned()], vec!["e2".to_owned()]));
        let with_latest = rings(&policy(true), &envs, untagged());
        assert_eq!(ids(&with_latest, 1), ["e2", "e3"]);
        assert_eq!(planned[0].environments[0].previous_desired.as_deref(), Some("100"));
    }

    #[test]
    fn environments_whose_tags_hold_them_are_in_no_ring_and_say_why() {
        let until = "2026-11-02T00:00:00Z";
        let envs = [
            env("skipped", &[("ring", "canary"), ("fleet", "all"), ("autopilot/skip", "true")], "USE_DESIRED", "100"),
            env(
                "held",
                &[("fleet", "all"), ("autopilot/override", "hold"), ("autopilot/override-until", until)],
                "USE_DESIRED",
                "100",
            ),
            env("bad", &[("fleet", "all"), ("autopilot/override", "hold")], "USE_DESIRED", "100"),
            env("free", &[("fleet", "all"), ("autopilot/skip", "false")], "USE_DESIRED", "100"),
            env(
                "expired",
                &[
                    ("fleet", "all"),
                    ("autopilot/override", "hold"),
                    ("autopilot/override-until", "2026-10-01T00:00:00Z"),
                ],
                "USE_DESIRED",
                "100",
            ),
        ];
        let (rings, held) = plan(&policy(false), &envs, untagged());
        let ids = |i: usize| rings[i].environments.iter().map(|e| e.id.as_str()).collect::<Vec<_>>();
        // held by the first ring that selects it, not passed on to the next
        assert_eq!((ids(0), ids(1)), (vec![], vec!["free", "expired"]));
        let why: Vec<(&str, &str, &str)> =
            held.iter().map(|h| (h.environment.as_str(), h.ring.as_str(), h.reason.as_str())).collect();
        assert_eq!(why[0], ("skipped", "canary", "tagged autopilot/skip"));
        assert_eq!(why[1], ("held", "broad", "autopilot/override holds it"));
        assert_eq!(why[2].0, "bad");
        assert!(why[2].2.contains("override-until is missing"), "{}", why[2].2);
        assert_eq!(why.len(), 3);
    }

    #[test]
    fn the_candidate_is_the_newest_supported_set_newer_than_what_runs() {
        let planned = rings(&policy(false), &[env("e1", &[("ring", "canary")], "USE_DESIRED", "100")], untagged());
        let sets = [set("100", 0, None), set("101", 10, Some(200)), set("102", 20, Some(25)), set("099", -5, None)];
        // 102 is newest but past support on day 30
        assert_eq!(candidate(&sets, &planned, t(30)).map(|s| s.id.as_str()), Some("101"));
        assert_eq!(candidate(&sets, &planned, t(21)).map(|s| s.id.as_str()), Some("102"));
        let current = rings(&policy(false), &[env("e1", &[("ring", "canary")], "USE_DESIRED", "101")], untagged());
        assert_eq!(candidate(&sets, &current, t(30)), None);
    }

    #[test]
    fn refusals_name_the_reason() {
        let planned = rings(&policy(false), &[env("e1", &[("ring", "canary")], "USE_DESIRED", "100")], untagged());
        let sets = [set("100", 0, None), set("101", 10, Some(20))];
        assert!(refusal("nope", &sets, &planned, &[], t(1)).unwrap().contains("does not exist"));
        assert!(refusal("101", &sets, &planned, &[], t(21)).unwrap().contains("end of support"));
        assert_eq!(refusal("101", &sets, &planned, &[], t(11)), None);
        // the first ring empty (its environment held): nothing would prove the set before the broad ring
        let held = [
            env("e1", &[("ring", "canary"), ("autopilot/skip", "true")], "USE_DESIRED", "100"),
            env("e2", &[("fleet", "all")], "USE_DESIRED", "100"),
        ];
        let planned_held = rings(&policy(false), &held, untagged());
        assert_eq!(planned_held.iter().map(|r| r.environments.len()).collect::<Vec<_>>(), [0, 1]);
        let reason = refusal("101", &sets, &planned_held, &[], t(11)).unwrap();
        assert!(
            reason.contains("ring canary has no environment") && reason.contains("nothing would prove"),
            "{reason}"
        );
        let active = Rollout {
            id: "r0".into(),
            resource: "thinclient#123456789012#eu-central-1#rollout#r0".into(),
            target_set: "101".into(),
            target_supported_until: None,
            requested_at: t(11),
            status: Status::Baking,
            paused: false,
            paused_at: None,
            current: 0,
            rings: planned.clone(),
            validated: false,
            history: Vec::new(),
            commands: Default::default(),
            failed_steps: 0,
            unannounced: Vec::new(),
        };
        let reason = refusal("101", &sets, &planned, std::slice::from_ref(&active), t(12)).unwrap();
        // the same set over the same environments is covered by the active rollout, another set is refused
        assert_eq!(covering("101", &planned, std::slice::from_ref(&active)), Some("r0"));
        assert_eq!(covering("100", &planned, std::slice::from_ref(&active)), None);
        assert!(reason.contains("one active rollout per environment") && reason.contains("e1"), "{reason}");
        let mut done = active;
        done.status = Status::Completed;
        assert_eq!(refusal("101", &sets, &planned, &[done], t(12)), None);
    }
}
