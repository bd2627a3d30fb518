//! Starting a rollout: `Rollout Requested`, and the tick's automatic start of a new software set. Observe: a
//! rollout with this id, and the open rollouts. Decide (pure): a duplicate, already rolling (another rollout
//! covers every environment the rings hold), refused (with the reason), a dry run, or a rollout to start. Act:
//! audit it; a started rollout is saved and takes its first step.

use crate::act::{self, ActContext, Look, StepReport};
use crate::machine::{self, RingObservation, Rollout, Status, Transition};
use crate::observe::{Seen, open_rollouts};
use crate::plan::{self, Held, Tags};
use autopilot_shared::effect::{Effect, perform_once};
use autopilot_shared::error::AutopilotError;
use autopilot_shared::invocation::Worked;
use autopilot_shared::ledger::LedgerError;
use autopilot_shared::ledger::audit::Outcome as AuditOutcome;
use autopilot_shared::ledger::idempotency::IdempotencyKey;
use autopilot_shared::ledger::state::{WorkItemListing, WorkItemWrite};
use autopilot_shared::policy::RolloutPolicy;
use autopilot_shared::report::Status as Answer;
use autopilot_shared::resource::ResourceKind;
use autopilot_shared::runtime::classified;

/// A rollout to start: its id (the request's event id, or `auto-<set>`), the set and why.
#[derive(Debug, Clone, Copy)]
pub struct Start<'a> {
    pub id: &'a str,
    pub target: &'a str,
    pub why: &'a str,
}

/// What to do about a start.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// A rollout with this id exists (a redelivery).
    Duplicate,
    /// Another rollout of the set covers every environment the rings hold: answered by it.
    AlreadyRolling { covering: String, reason: String },
    /// Not started; the reason says why.
    Refuse(String),
    /// Dry-run: would have started; recorded with the reason.
    DryRun(String),
    /// The rollout to save and take the first step of, and the environments its rings select that their tags
    /// keep out of it (each recorded as held).
    Begin { rollout: Box<Rollout>, held: Vec<Held> },
}

/// What the ledger holds that a start depends on.
#[derive(Debug, Clone, Copy)]
pub struct Known<'a> {
    /// A rollout with the start's id is stored.
    pub exists: bool,
    /// The open rollouts (not read for a duplicate).
    pub active: &'a [Rollout],
}

/// Decides a start (pure). `resource` is the key its audit records are filed under; `tags` how and when the
/// environments' tags are read.
pub fn decide(
    start: Start<'_>,
    resource: &str,
    policy: &RolloutPolicy,
    seen: &Seen,
    known: Known<'_>,
    tags: Tags<'_>,
    dry_run: bool,
) -> Decision {
    let (active, now) = (known.active, tags.now);
    if known.exists {
        return Decision::Duplicate;
    }
    let (target, sets) = (start.target, seen.sets.as_slice());
    let (planned, held) = plan::plan(policy, &seen.envs, tags);
    if let Some(covering) = plan::covering(target, &planned, active) {
        // The set is already rolling to every environment the rings hold (a rollout started automatically
        // while this request waited for a retry, or an earlier request): nothing to start, nothing refused.
        let reason = format!("software set {target} is already rolling out in rollout {covering}");
        return Decision::AlreadyRolling { covering: covering.to_owned(), reason };
    }
    if let Some(reason) = plan::refusal(target, sets, &planned, active, now) {
        return Decision::Refuse(reason);
    }
    if dry_run {
        return Decision::DryRun(format!("{} (dry-run: no rollout started)", start.why));
    }
    let rollout = Box::new(Rollout {
        id: start.id.to_owned(),
        resource: resource.to_owned(),
        target_set: target.to_owned(),
        target_supported_until: sets.iter().find(|s| s.id == target).and_then(|s| s.supported_until),
        requested_at: now,
        status: Status::Pending,
        paused: false,
        paused_at: None,
        current: 0,
        rings: planned,
        validated: sets.iter().any(|s| s.id == target && s.validation_status == "VALIDATED"),
        history: vec![Transition {
            at: now,
            ring: None,
            from: Status::Pending,
            to: Status::Pending,
            reason: start.why.to_owned(),
        }],
        commands: Default::default(),
        failed_steps: 0,
        unannounced: Vec::new(),
    });
    Decision::Begin { rollout, held }
}

/// Observes, decides and carries out a start.
pub async fn start(
    ctx: &ActContext<'_>,
    policy: &RolloutPolicy,
    start: Start<'_>,
    seen: &Seen,
    worked: &mut Worked<StepReport>,
) -> Result<(), AutopilotError> {
    let exists = ctx.ledger.get_work_item::<Rollout>(machine::KIND, start.id).await.map_err(classified)?.is_some();
    let active: Vec<Rollout> =
        if exists { Vec::new() } else { open_rollouts(ctx.ledger).await?.into_iter().map(|(r, _)| r).collect() };
    let resource = seen.origin.resource(ResourceKind::Rollout, start.id).map_err(AutopilotError::invalid_input)?.key();
    let audit = async |outcome, reason: String| {
        let record = act::audit(ctx, resource.clone(), "Rollout Requested", outcome, reason);
        ctx.ledger.append_audit(&record).await.map_err(classified)
    };
    let tags = Tags { prefix: ctx.tag_prefix, now: ctx.now };
    match decide(start, &resource, policy, seen, Known { exists, active: &active }, tags, ctx.dry_run) {
        Decision::Duplicate => worked.status = Answer::Duplicate,
        Decision::AlreadyRolling { covering, reason } => {
            let alias = WorkItemWrite {
                kind: machine::ALIAS_KIND,
                id: start.id,
                state: &covering,
                expected: None,
                listing: WorkItemListing::Closed { expires_at: None },
            };
            match ctx.ledger.put_work_item(alias, ctx.fence, ctx.now).await {
                Ok(_) | Err(LedgerError::VersionConflict { .. }) => {}
                Err(error) => return Err(classified(error)),
            }
            audit(AuditOutcome::Skipped, reason).await?;
            worked.status = Answer::AlreadyRolling;
        }
        Decision::Refuse(reason) => {
            audit(AuditOutcome::Failed, reason.clone()).await?;
            return Err(AutopilotError::non_retryable(format!("rollout of {} refused: {reason}", start.target)));
        }
        Decision::DryRun(reason) => {
            // Recorded once per rollout (a tick's automatic start is the same rollout at every tick), not per tick.
            let effect = Effect {
                ledger: ctx.ledger,
                key: IdempotencyKey::new(ctx.function, format!("dry-run#{}", start.id)),
                payload: &start.target,
                audit: act::audit(ctx, resource.clone(), "Rollout Requested", AuditOutcome::DryRun, reason),
                dry_run: true,
                now: ctx.now,
                remaining: ctx.remaining,
                fence: ctx.fence,
                recorded_failure: None,
            };
            perform_once(effect, async || Ok(()), async || Ok(())).await.map_err(classified)?;
            worked.status = Answer::DryRun;
        }
        Decision::Begin { rollout, held } => {
            // Recorded before the rollout is saved: a crash in between records them again rather than never.
            for held in held {
                let environment = seen
                    .origin
                    .resource(ResourceKind::Environment, &held.environment)
                    .map_err(AutopilotError::invalid_input)?
                    .key();
                let reason = format!("{}: left out of rollout {} (ring {})", held.reason, rollout.id, held.ring);
                let record = act::audit(ctx, environment, "Hold", AuditOutcome::Skipped, reason);
                ctx.ledger.append_audit(&record).await.map_err(classified)?;
            }
            let version = match act::save(ctx, &rollout, None).await {
                Ok(version) => version,
                Err(LedgerError::VersionConflict { .. }) => {
                    worked.status = Answer::Duplicate;
                    return Ok(());
                }
                Err(error) => return Err(classified(error)),
            };
            // Why it was started (the request's own reason, or the new set's), beside the transitions that follow.
            let why = format!(
                "{}: rollout {} of software set {} created",
                start_why(&rollout),
                rollout.id,
                rollout.target_set
            );
            audit(AuditOutcome::Applied, why).await?;
            let supported = seen.supported_lookup(ctx.now);
            let hands_off = tags.hands_off_by_id(&seen.envs);
            // What the environments were just seen to run: one already on the target is not set again.
            let first = rollout.rings.first().map(|ring| &ring.environments[..]).unwrap_or_default();
            let desired = first
                .iter()
                .map(|e| {
                    let now = seen.envs.iter().find(|seen| seen.id == e.id);
                    (e.id.clone(), now.and_then(|seen| seen.desired_software_set_id.clone()))
                })
                .collect();
            let observation = RingObservation { desired, figures: Default::default() };
            let environments = seen.envs.iter().map(|e| (e.id.clone(), e.clone())).collect();
            let estate = act::Estate { supported: &supported, hands_off: &hands_off, environments: &environments };
            let done = act::step(ctx, *rollout, version, policy, Look::Seen(Some(&observation)), &estate).await?;
            worked.api_calls += done.api_calls;
            worked.items.push(done);
            worked.status = Answer::Requested;
        }
    }
    Ok(())
}

/// The reason a rollout was created with (its first transition's, else its id).
fn start_why(rollout: &Rollout) -> &str {
    rollout.history.first().map_or(rollout.id.as_str(), |t| t.reason.as_str())
}
