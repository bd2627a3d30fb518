//! The tick: step every open rollout with what was just observed, warn once per environment and set of ending
//! support, announce a new software set once and start its rollout unless approval is required.

use crate::act::{self, ActContext, Look, StepReport, notify};
use crate::observe::{EnvironmentView, Seen, SoftwareSetView, observe_ring, open_rollouts};
use crate::plan;
use crate::request::{self, Start};
use autopilot_shared::cpu::{self, Step};
use autopilot_shared::error::AutopilotError;
use autopilot_shared::invocation::Worked;
use autopilot_shared::policy::RolloutPolicy;
use autopilot_shared::report::Status as Answer;
use autopilot_shared::resource::{Place, ResourceKind, ResourceRef};
use autopilot_shared::runtime::classified;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};

/// Runs the tick over what `seen` observed.
pub async fn tick(
    ctx: &ActContext<'_>,
    policy: &RolloutPolicy,
    seen: &Seen,
    worked: &mut Worked<StepReport>,
) -> Result<(), AutopilotError> {
    let (envs, sets) = (seen.envs.as_slice(), seen.sets.as_slice());

    // Step every open rollout first, with what was just observed (a rollout started below waits for the next
    // tick's observation of the environments it set).
    let by_id: BTreeMap<String, EnvironmentView> = envs.iter().map(|e| (e.id.clone(), e.clone())).collect();
    let supported = seen.supported_lookup(ctx.now);
    let tags = plan::Tags { prefix: ctx.tag_prefix, now: ctx.now };
    let hands_off = tags.hands_off_by_id(&seen.envs);
    for (rollout, version) in open_rollouts(ctx.ledger).await? {
        // A ring whose devices cannot be read is that rollout's trouble: the other rollouts and notices go on.
        let observed = observe_ring(ctx.aws, &rollout, policy, &by_id, ctx.now).await;
        let look = match &observed {
            Ok((observation, calls)) => {
                worked.api_calls += calls;
                Look::Seen(observation.as_ref())
            }
            Err(error) => Look::Unread(error),
        };
        let estate = act::Estate { supported: &supported, hands_off: &hands_off, environments: &by_id };
        let step = act::step(ctx, rollout, version, policy, look, &estate);
        let done = cpu::metered(Step::Act, step).await?;
        worked.api_calls += done.api_calls;
        worked.items.push(done);
    }

    for notice in support_ending(policy, envs, sets, &seen.origin.region, ctx.now)? {
        cpu::metered(Step::Act, notice_once(ctx, notice)).await?;
    }

    // A new software set: announce once; start its rollout unless approval is required.
    let candidate = cpu::measure(Step::Decide, || plan::candidate(sets, &plan::rings(policy, envs, tags), ctx.now));
    if let Some(set) = candidate {
        let notice = available(policy, set, &seen.origin.region)?;
        let reason = notice.reason.clone();
        cpu::metered(Step::Act, notice_once(ctx, notice)).await?;
        let busy = open_rollouts(ctx.ledger).await?.iter().any(|(r, _)| !r.status.is_final());
        if !policy.require_approval && !busy {
            let id = format!("auto-{}", set.id);
            let start = Start { id: &id, target: &set.id, why: &reason };
            let started = Box::pin(request::start(ctx, policy, start, seen, worked));
            if let Err(error) = cpu::metered(Step::Act, started).await {
                tracing::warn!(%error, "automatic rollout not started");
            }
        }
    }
    worked.status = Answer::Stepped;
    Ok(())
}

/// An event sent about a resource once ever.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub resource: ResourceRef,
    /// What it is about; sent once per resource and `about`.
    pub about: String,
    pub detail_type: &'static str,
    pub detail: serde_json::Value,
    pub reason: String,
}

/// Support ending: a notice per environment whose set's support ends within the policy's warning (pure).
pub fn support_ending(
    policy: &RolloutPolicy,
    envs: &[EnvironmentView],
    sets: &[SoftwareSetView],
    region: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Notice>, AutopilotError> {
    let mut notices = Vec::new();
    for env in envs {
        let Some(set) = env.desired_software_set_id.as_ref().and_then(|id| sets.iter().find(|s| &s.id == id)) else {
            continue;
        };
        if let Some(until) = set.supported_until.filter(|until| *until - policy.warn_support_ending <= now) {
            notices.push(Notice {
                resource: Place::of_arn(&env.arn, region)
                    .resource(ResourceKind::Environment, &env.id)
                    .map_err(AutopilotError::invalid_input)?,
                about: format!("support-ending#{}", set.id),
                detail_type: "Software Set Support Ending",
                detail: serde_json::json!({ "environment": env.id, "softwareSet": set.id, "version": set.version,
                    "supportedUntil": until }),
                reason: format!("environment {} runs software set {} supported until {until}", env.id, set.id),
            });
        }
    }
    Ok(notices)
}

/// A new software set's announcement (pure).
pub fn available(policy: &RolloutPolicy, set: &SoftwareSetView, region: &str) -> Result<Notice, AutopilotError> {
    Ok(Notice {
        resource: Place::of_arn(&set.arn, region)
            .resource(ResourceKind::SoftwareSet, &set.id)
            .map_err(AutopilotError::invalid_input)?,
        about: "available".into(),
        detail_type: "Software Set Available",
        detail: serde_json::json!({ "softwareSet": set.id, "version": set.version, "releasedAt": set.released_at,
            "supportedUntil": set.supported_until, "approvalRequired": policy.require_approval }),
        reason: format!("software set {} ({}) is newer than what the rings run", set.id, set.version),
    })
}

/// Notices already sent about one resource (kept in its ledger state, so each is sent once ever, not once per
/// idempotency window).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Notices {
    sent: BTreeSet<String>,
}

/// Sends a notice unless it was sent before, and remembers it.
async fn notice_once(ctx: &ActContext<'_>, notice: Notice) -> Result<(), AutopilotError> {
    let resource = &notice.resource;
    let stored = ctx.ledger.get_state::<Notices>(resource).await.map_err(classified)?;
    let mut notices = stored.as_ref().map(|s| s.state.clone()).unwrap_or_default();
    if notices.sent.contains(&notice.about) {
        return Ok(());
    }
    let key = format!("{}#{}", resource.key(), notice.about);
    let sent =
        notify(ctx, resource.key(), key, notice.detail_type, notice.detail, notice.reason).await.map_err(classified)?;
    if !sent.done() {
        return Ok(()); // not sent (EventBridge failed): sent at the next tick
    }
    notices.sent.insert(notice.about);
    ctx.ledger
        .put_state(resource, &notices, stored.map(|s| s.version), ctx.fence, ctx.now)
        .await
        .map_err(classified)?;
    Ok(())
}
