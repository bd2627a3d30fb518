//! The tick: every open job's next step (the listing read once serves every task in flight), adoption of tasks in
//! flight that no job knows, and every due import with one `DescribeImages` per 25 names.

use crate::act::{self, ActContext, StepReport};
use crate::adopt::{adopted_job, claimed_by, keep, open_jobs};
use crate::decide::{Job, TaskView, decide};
use crate::imports::{self, ImportJob, decide_import};
use crate::observe::{get_task, list_tasks};
use autopilot_shared::cpu::{self, Step};
use autopilot_shared::error::AutopilotError;
use autopilot_shared::invocation::Worked;
use autopilot_shared::policy::ExportPolicy;
use autopilot_shared::report::ActionResult;
use autopilot_shared::resource::Place;
use autopilot_shared::runtime::classified;
use std::collections::{BTreeMap, BTreeSet};

/// The tick: every open job's next step, then adoption of tasks in flight that no job knows.
pub async fn chase_all(
    ctx: &ActContext<'_>,
    exports: &ExportPolicy,
    origin: &Place,
    report: &mut Worked<StepReport>,
) -> Result<(), AutopilotError> {
    let (listed, calls) = list_tasks(ctx.aws, Vec::new()).await.map_err(classified)?;
    report.api_calls += calls;
    let by_id: BTreeMap<&str, &TaskView> = listed.iter().map(|t| (t.task_id.as_str(), t)).collect();
    // The open jobs from the index (eventually consistent), then each read fresh: one BatchGetItem per 100.
    let ids: Vec<String> =
        ctx.ledger.open_work_items::<Job>(act::KIND).await.map_err(classified)?.into_iter().map(|(id, _)| id).collect();
    let mut fresh = ctx.ledger.get_work_items::<Job>(act::KIND, &ids).await.map_err(classified)?;
    let mut known: BTreeSet<String> = BTreeSet::new();
    for id in &ids {
        let Some(fresh) = fresh.remove(id) else { continue };
        let (job, version) = (fresh.state, fresh.version);
        if !job.is_open() || job.next_check_at > ctx.now && job.current().is_some_and(|a| a.task_id.is_some()) {
            known.extend(job.attempts.iter().filter_map(|a| a.task_id.clone()));
            continue;
        }
        let task_id = job.current().and_then(|a| a.task_id.clone());
        let (task, listed) = match task_id.as_deref() {
            Some(id) => match by_id.get(id) {
                Some(task) => (Some((*task).clone()), true),
                None => {
                    report.api_calls += 1;
                    match get_task(ctx.aws, id).await {
                        Ok(task) => (task, false),
                        Err(error) => {
                            // This job's trouble, not the other jobs': looked at again at the next tick.
                            tracing::warn!(job = %job.id, %error, "export task not read");
                            known.insert(id.to_owned());
                            report.items.push(StepReport {
                                job: job.id.clone(),
                                step: "Look".into(),
                                result: ActionResult::Deferred,
                                detail: Some(error.to_string()),
                                api_calls: 0,
                            });
                            continue;
                        }
                    }
                }
            },
            None => (None, false),
        };
        let step = cpu::measure(Step::Decide, || decide(&job, task.as_ref(), ctx.now));
        let done = match task.as_ref().filter(|task| listed && act::changes_nothing(&job, task, &step, ctx.now)) {
            // The listing is read every tick: a task it shows where the job last saw it needs no write.
            Some(_) => act::unchanged(&job, &step),
            None => cpu::metered(Step::Act, act::step(ctx, job, version, task.as_ref(), step)).await?,
        };
        report.api_calls += done.api_calls;
        if let Some(id) =
            done.detail.as_ref().filter(|_| matches!(done.result, ActionResult::Adopted | ActionResult::Applied))
        {
            known.insert(id.clone());
        }
        report.items.push(done);
        if let Some(id) = task_id {
            known.insert(id);
        }
    }
    let unknown: Vec<&TaskView> =
        listed.iter().filter(|t| t.state == "EXPORTING" && !known.contains(&t.task_id)).collect();
    if unknown.is_empty() {
        return Ok(());
    }
    // The open jobs as they are now (the steps above may have recovered tasks), read once for every candidate.
    let open = open_jobs(ctx.ledger).await?;
    for task in unknown {
        let job = adopted_job(task, exports, origin, ctx.now)?;
        if !claimed_by(&open, task) && act::load(ctx.ledger, &job.id).await?.is_none() {
            cpu::metered(Step::Act, keep(ctx, &job)).await?;
            report.items.push(StepReport {
                job: job.id.clone(),
                step: "Adopt".into(),
                result: ActionResult::Adopted,
                detail: Some(task.task_id.clone()),
                api_calls: 0,
            });
        }
    }
    Ok(())
}

/// The tick's imports: every open import that is due, with one `DescribeImages` per 25 names.
pub async fn chase_imports(ctx: &ActContext<'_>, report: &mut Worked<StepReport>) -> Result<(), AutopilotError> {
    let open = ctx.ledger.open_work_items::<ImportJob>(imports::KIND).await.map_err(classified)?;
    let due: Vec<_> = open.into_iter().filter(|(_, job)| job.state.next_check_at <= ctx.now).collect();
    if due.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = due.iter().map(|(_, job)| job.state.image_name.clone()).collect();
    let (images, calls) = imports::describe(ctx.aws, &names).await.map_err(classified)?;
    report.api_calls += calls;
    for (_, job) in due {
        let image = images.get(&job.state.image_name);
        let step = cpu::measure(Step::Decide, || decide_import(&job.state, image, ctx.now));
        let name = job.state.image_name.clone();
        let acted = imports::act(ctx, job.state, job.version, image, step.clone());
        let result = cpu::metered(Step::Act, acted).await.map_err(classified)?;
        report.items.push(StepReport {
            job: format!("import-{name}"),
            step: step.to_string(),
            result,
            detail: None,
            api_calls: 0,
        });
    }
    Ok(())
}
