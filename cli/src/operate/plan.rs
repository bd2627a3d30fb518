//! `autopilot plan`: what every function would do now, and why, without changing anything.
//!
//! Each function's real tick handler runs once, forced dry-run, with:
//! - the EUC service clients of the default AWS configuration (or the `AWS_ENDPOINT_URL_*` variables), wrapped
//!   so that every operation that is not a read is refused before it is sent ([`AwsClients::read_only`]);
//! - a scratch ledger (embedded DynamoDB) holding a copy of the deployed ledger's memory — policy versions,
//!   resource state, work items, budgets; not the audit, idempotency records or leases — so decisions continue
//!   from what the deployed functions remember, and the real ledger is only read;
//! - a scratch EventBridge that captures the events the functions would send.
//!
//! The plan is each function's dry-run audit records (would / skipped / deferred, with the reason) and
//! captured events, plus the end-of-support warnings.

use super::scratch::{Scratch, TABLE as DEFAULT_TABLE};
use crate::error::CliError;
use autopilot_functions::Function;
use autopilot_shared::clients::AwsClients;
use autopilot_shared::error::message_chain;
use autopilot_shared::ledger::audit::{AuditRecord, Outcome};
use autopilot_shared::ledger::keys;
use autopilot_shared::runtime::{Config, Deps};
use autopilot_shared::support::{SoftwareSetInUse, SupportWarning};
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::AtomicU32;

/// Characters of an event's detail the text output shows.
const EVENT_TEXT: usize = 160;
/// The time each function's tick gets.
const REMAINING: std::time::Duration = std::time::Duration::from_secs(300);
/// Ledger partitions not copied into the scratch ledger: history and coordination, not memory.
const NOT_COPIED: [&str; 3] = ["AUDIT#", "IDEMP#", "LEASE#"];

/// What to plan with.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The deployed ledger: its current policy (unless `policy` is given) and its memory are used.
    pub table: Option<String>,
    /// A policy document to plan with instead of the stored one: `(file name, document)`.
    pub policy: Option<(String, String)>,
    pub tag_prefix: String,
    /// Role-name prefix of the deployment (CloudTrail calls by it are the functions' own).
    pub own_role_name: String,
    /// The account the resources are in; found from their ARNs when not given. With `targets`: only the shards
    /// of this account.
    pub account: Option<String>,
    /// With `targets`: only the shards of this region.
    pub region: Option<String>,
    /// The stack's `RemediationAlarmPrefix`: only alarms named with it reach the remediator.
    pub alarm_prefix: String,
}

/// One function's plan.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionPlan {
    pub function: String,
    /// The handler's status word (`reconciled`, `swept`, `busy`, …), or `error`.
    pub status: String,
    /// The error type and message when the function could not plan.
    pub error: Option<String>,
    pub api_calls: u64,
    /// Its decisions as audit records: `dry-run` (would act), `skipped`, `deferred`, with reasons.
    pub decisions: Vec<AuditRecord>,
    /// The events it would send (`detail-type`, `detail`).
    pub events: Vec<Value>,
    /// Work in flight and its next step: export and import jobs, rollouts (`job-1: chase (next look at …)`).
    pub in_flight: Vec<String>,
    /// With `targets`: each shard's tick, looked at through the spoke's read-only role.
    pub shards: Vec<ShardPlan>,
}

/// One shard's part of a function's plan (its decisions are among the function's).
#[derive(Debug, Clone, Serialize)]
pub struct ShardPlan {
    pub account: String,
    pub region: String,
    pub status: String,
    pub error: Option<String>,
    pub api_calls: u64,
}

/// The work in flight a tick's answer lists: each export or import job with its step, each rollout with its
/// status and transition.
fn in_flight(report: &Value) -> Vec<String> {
    let items = report["actions"].as_array().map(Vec::as_slice).unwrap_or_default();
    items
        .iter()
        .filter_map(|item| {
            if let Some(job) = item["job"].as_str() {
                return Some(format!("{job}: {}", item["step"].as_str().unwrap_or_default()));
            }
            let rollout = item["rollout"].as_str()?;
            let status = item["status"].as_str().unwrap_or_default();
            Some(match item["transition"].as_str() {
                Some(transition) => format!("rollout {rollout} ({status}): {transition}"),
                None => format!("rollout {rollout} ({status})"),
            })
        })
        .collect()
}

/// The whole plan.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub at: DateTime<Utc>,
    pub account: String,
    pub region: String,
    /// Where the policy came from.
    pub policy: String,
    /// What memory the functions started from.
    pub memory: String,
    pub functions: Vec<FunctionPlan>,
    pub warnings: Vec<SupportWarning>,
    /// Anything that could not be looked at (e.g. a service not offered in the region).
    pub notes: Vec<String>,
}

impl Plan {
    /// Functions (and shards: `<function> in <account> <region>`) that could not plan; the plan itself says why.
    pub fn failures(&self) -> Vec<String> {
        let functions = self.functions.iter().filter(|f| f.error.is_some()).map(|f| f.function.clone());
        let shards = self.functions.iter().flat_map(|f| {
            f.shards
                .iter()
                .filter(|s| s.error.is_some())
                .map(|s| format!("{} in {} {}", f.function, s.account, s.region))
        });
        functions.chain(shards).collect()
    }
}

/// Runs every function's observe + decide in dry-run (see the module documentation).
pub async fn plan(options: &Options) -> Result<Plan, CliError> {
    let sdk = autopilot_shared::clients::load_sdk_config().await;
    let region = sdk
        .region()
        .map(ToString::to_string)
        .ok_or(CliError::Missing("no AWS region: set AWS_REGION or a profile with a region"))?;
    let real = AwsClients::from_sdk_config(&sdk);
    let guarded = real.read_only();
    let clock = super::clock().await?;
    let now = clock.now();

    let scratch = Scratch::new(&region).await?;
    let scratch_ledger = scratch.ledger.clone();

    let memory = match &options.table {
        Some(table) => {
            let copied = copy_memory(&real.dynamodb, table, &scratch.dynamodb).await?;
            format!("{copied} item(s) of resource state, work items and policy versions copied from {table}")
        }
        None => "none (no --table): every resource is seen for the first time".to_owned(),
    };
    let policy = match (&options.policy, &options.table) {
        (Some((name, document)), _) => {
            super::validate::validate(name, document)?;
            scratch_ledger.put_policy(document, now).await?;
            format!("{name} (not stored)")
        }
        (None, Some(table)) => match scratch_ledger.current_policy_document().await? {
            Some((version, _)) => format!("version {version} stored in {table}"),
            None => return Err(CliError::NoPolicy { table: table.clone(), hint: ": pass --policy <file>" }),
        },
        (None, None) => return Err(CliError::Missing("give --table <ledger table> or --policy <file> (or both)")),
    };

    let mut notes = Vec::new();
    if let Some(stored) = scratch_ledger.current_policy().await? {
        notes.extend(undeliverable_alarms(&stored.policy, &options.alarm_prefix));
    }
    let (warnings, found_account) = support_warnings(&guarded, now, &mut notes).await;
    let account = found_account.clone().or(options.account.clone()).unwrap_or_else(|| "000000000000".to_owned());
    // With targets, `--account` picks shards; the hub's own account is the one its resources name.
    let has_targets = scratch_ledger.current_policy().await?.is_some_and(|p| p.policy.targets.is_some());
    if !has_targets {
        // Without targets the functions work the account of the credentials and their region only.
        if let (Some(given), Some(found)) = (&options.account, &found_account)
            && given != found
        {
            notes.push(format!(
                "--account {given}: the resources read are in {found} (the credentials' account); without targets \
                 the plan covers that account only"
            ));
        }
        if let Some(given) = options.region.as_ref().filter(|given| **given != region) {
            notes.push(format!(
                "--region {given} picks shards of a policy with targets and has no effect here; the plan covers \
                 {region} (set AWS_REGION to plan another region)"
            ));
        }
    }
    let hub_account = match (has_targets, &found_account) {
        (true, Some(found)) => found.clone(),
        (true, None) => caller_account(&sdk).await.unwrap_or_else(|| account.clone()),
        (false, _) => account.clone(),
    };

    let mut aws = guarded;
    aws.dynamodb = scratch.dynamodb.clone();
    aws.eventbridge = scratch.eventbridge.clone();
    let deps = Deps {
        // With targets, each shard tick the hub tick publishes on the scratch bus is delivered here: through each
        // spoke's read-only role, with clients that refuse every operation that is not a read.
        shards: autopilot_shared::shard::Shards::new(&sdk, autopilot_shared::clients::base_http_client(&sdk))
            .read_only(),
        aws,
        ledger: scratch_ledger.clone(),
        clock: clock.clone(),
        config: Config {
            table: DEFAULT_TABLE.into(),
            tag_prefix: options.tag_prefix.clone(),
            force_dry_run: true,
            event_bus: Some("euc-autopilot-plan".into()),
            own_role_name: options.own_role_name.clone(),
            region: region.clone(),
            account: Some(hub_account.clone()),
        },
    };
    let mut functions = Vec::new();
    for function in Function::ALL {
        let events_before = scratch.event_count();
        let tick = tick_event(function.name(), &hub_account, &region, now);
        let result = function.invoke(&deps, tick, REMAINING).await;
        let published = scratch.events_since(events_before);
        let (shard_ticks, events): (Vec<Value>, Vec<Value>) =
            published.into_iter().partition(|e| e["detail-type"] == autopilot_shared::events::SHARD_TICK_DETAIL_TYPE);
        let mut shards = Vec::new();
        let mut events = events;
        for shard_tick in shard_ticks {
            let (shard_account, shard_region) = (
                shard_tick["detail"]["account"].as_str().unwrap_or_default().to_owned(),
                shard_tick["detail"]["region"].as_str().unwrap_or_default().to_owned(),
            );
            if options.account.as_ref().is_some_and(|a| *a != shard_account)
                || options.region.as_ref().is_some_and(|r| *r != shard_region)
            {
                continue;
            }
            // As EventBridge delivers it from the hub's bus.
            let delivered = json!({
                "version": "0", "id": format!("plan-{}-{shard_account}-{shard_region}", function.name()),
                "detail-type": autopilot_shared::events::SHARD_TICK_DETAIL_TYPE, "source": "euc.autopilot",
                "account": hub_account, "time": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "region": region, "resources": [], "detail": shard_tick["detail"],
            });
            let before = scratch.event_count();
            let worked = function.invoke(&deps, delivered, REMAINING).await;
            events.extend(scratch.events_since(before));
            shards.push(match worked {
                Ok(report) => ShardPlan {
                    account: shard_account,
                    region: shard_region,
                    status: report["status"].as_str().unwrap_or_default().to_owned(),
                    error: None,
                    api_calls: report["api_calls"].as_u64().unwrap_or_default(),
                },
                Err(error) => ShardPlan {
                    account: shard_account,
                    region: shard_region,
                    status: "error".to_owned(),
                    error: Some(format!("{}: {}", error.class.as_str(), error.message)),
                    api_calls: 0,
                },
            });
        }
        let mut decisions = Vec::new();
        let mut day = now.date_naive();
        while day <= clock.now().date_naive() {
            decisions.extend(scratch_ledger.audit_by_day(day).await?);
            day = day.succ_opt().ok_or(CliError::Missing("a day after the last one (date out of range)"))?;
        }
        decisions.retain(|r| r.function == function.name());
        // Nothing applies in a plan: what reached the scratch ledger (an announcement is `applied` even in
        // dry-run) is what would happen.
        for decision in &mut decisions {
            if decision.outcome == Outcome::Applied {
                decision.outcome = Outcome::DryRun;
            }
        }
        let (status, error, api_calls, in_flight) = match result {
            Ok(report) => (
                report["status"].as_str().unwrap_or_default().to_owned(),
                None,
                report["api_calls"].as_u64().unwrap_or_default(),
                in_flight(&report),
            ),
            Err(error) => {
                ("error".to_owned(), Some(format!("{}: {}", error.class.as_str(), error.message)), 0, Vec::new())
            }
        };
        functions.push(FunctionPlan {
            function: function.name().into(),
            status,
            error,
            api_calls,
            decisions,
            events,
            in_flight,
            shards,
        });
    }
    Ok(Plan { at: now, account: hub_account, region, policy, memory, functions, warnings, notes })
}

/// The account of the credentials in use (STS `GetCallerIdentity`): the hub's, when the plan runs there.
async fn caller_account(sdk: &aws_config::SdkConfig) -> Option<String> {
    let identity = aws_sdk_sts::Client::new(sdk).get_caller_identity().send().await.ok()?;
    identity.account().map(str::to_owned)
}

/// A note for each alarm `remediation.alarms` names that the stack's alarm rule never delivers (its name does
/// not start with the stack's `RemediationAlarmPrefix`).
fn undeliverable_alarms(policy: &autopilot_shared::policy::Policy, prefix: &str) -> Vec<String> {
    let alarms = policy.remediation.iter().flat_map(|r| r.alarms.keys());
    alarms
        .filter(|name| !name.starts_with(prefix))
        .map(|name| {
            format!(
                "remediation.alarms.{name}: the stack delivers only alarms whose name starts with {prefix:?} (its RemediationAlarmPrefix); rename the alarm or redeploy with another prefix"
            )
        })
        .collect()
}

/// A schedule tick for `function` as EventBridge Scheduler delivers it.
fn tick_event(function: &str, account: &str, region: &str, now: DateTime<Utc>) -> Value {
    json!({
        "version": "0",
        "id": format!("plan-{function}-{}", now.timestamp_millis()),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": account,
        "time": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": region,
        "resources": [],
        "detail": {}
    })
}

/// Copies the deployed ledger's memory (everything but audit, idempotency records and leases) into the
/// scratch ledger; the number of items copied. Only reads `table`.
async fn copy_memory(
    from: &aws_sdk_dynamodb::Client,
    table: &str,
    to: &aws_sdk_dynamodb::Client,
) -> Result<usize, CliError> {
    let mut filter = Vec::new();
    let mut values = HashMap::new();
    for (i, prefix) in NOT_COPIED.iter().enumerate() {
        filter.push(format!("begins_with({}, :p{i})", keys::PK));
        values.insert(format!(":p{i}"), AttributeValue::S((*prefix).into()));
    }
    let mut pages = from
        .scan()
        .table_name(table)
        .filter_expression(format!("NOT ({})", filter.join(" OR ")))
        .set_expression_attribute_values(Some(values))
        .consistent_read(true)
        .into_paginator()
        .items()
        .send();
    let mut items = Vec::new();
    while let Some(item) = pages.next().await {
        let mut item = item.map_err(|e| CliError::ReadLedger {
            table: table.to_owned(),
            source: autopilot_shared::ledger::LedgerError::from_sdk("Scan", &e),
        })?;
        // What the deployed functions last recorded (a hold, a would-act) is forgotten, so that the plan records
        // and shows every hold and would-act as it stands now.
        if let Some(AttributeValue::M(state)) = item.get_mut("state") {
            state.remove("note");
        }
        items.push(item);
    }
    let copied = items.len();
    for chunk in items.chunks(25) {
        let mut requests: Vec<WriteRequest> = chunk
            .iter()
            .map(|item| {
                PutRequest::builder()
                    .set_item(Some(item.clone()))
                    .build()
                    .map(|put| WriteRequest::builder().put_request(put).build())
                    .map_err(|e| CliError::Scratch(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        for _ in 0..10 {
            if requests.is_empty() {
                break;
            }
            let output = to
                .batch_write_item()
                .request_items(DEFAULT_TABLE, requests)
                .send()
                .await
                .map_err(|e| CliError::Scratch(message_chain(&e)))?;
            requests = output.unprocessed_items.and_then(|mut u| u.remove(DEFAULT_TABLE)).unwrap_or_default();
        }
        if !requests.is_empty() {
            return Err(CliError::Scratch("items left unprocessed after 10 attempts".into()));
        }
    }
    Ok(copied)
}

/// End-of-support warnings from a read-only look at pools, Thin Client environments and software sets, and
/// the account their ARNs name.
async fn support_warnings(
    aws: &AwsClients,
    now: DateTime<Utc>,
    notes: &mut Vec<String>,
) -> (Vec<SupportWarning>, Option<String>) {
    let pages = AtomicU32::new(0);
    let mut arns: Vec<String> = Vec::new();
    let pools = match autopilot_shared::lookups::workspaces_pools(aws, None, &pages).await {
        Ok(pools) => {
            arns.extend(pools.iter().map(|p| p.pool_arn().to_owned()));
            pools.len()
        }
        Err(error) => {
            notes.push(format!("WorkSpaces Pools not read: {error}"));
            0
        }
    };
    match autopilot_shared::lookups::fleets(aws, None, &pages).await {
        Ok(fleets) => arns.extend(fleets.iter().filter_map(|f| f.arn().map(str::to_owned))),
        Err(error) => notes.push(format!("AppStream fleets not read: {error}")),
    }
    let environments = autopilot_functions::softwareset_roller::observe::list_environments(aws).await;
    let sets = autopilot_functions::softwareset_roller::observe::software_sets(aws).await;
    let (environments, sets) = match (environments, sets) {
        (Ok((environments, _)), Ok((sets, _))) => (environments, sets),
        (Err(error), _) | (_, Err(error)) => {
            notes.push(format!("WorkSpaces Thin Client not read: {error}"));
            (Vec::new(), Vec::new())
        }
    };
    arns.extend(environments.iter().filter_map(|e| e.arn().map(str::to_owned)));
    let in_use: Vec<SoftwareSetInUse> = sets
        .iter()
        .map(|set| SoftwareSetInUse {
            id: set.id.clone(),
            version: set.version.clone(),
            supported_until: set.supported_until,
            environments: environments
                .iter()
                .filter(|e| e.desired_software_set_id() == Some(set.id.as_str()))
                .map(|e| e.name().unwrap_or_default().to_owned())
                .collect(),
        })
        .collect();
    let account = arns.iter().find_map(|arn| arn.split(':').nth(4).filter(|a| !a.is_empty()).map(str::to_owned));
    (autopilot_shared::support::warnings(now, pools, environments.len(), &in_use), account)
}

/// The plan as text for a terminal (`width`: see [`super::show::width`]).
pub fn render(plan: &Plan, width: Option<usize>) -> String {
    // The header names the hub's account and region: a resource elsewhere says where it is.
    let usual = Some((plan.account.clone(), plan.region.clone()));
    let mut out = format!(
        "autopilot plan at {} (account {}, region {})\npolicy: {}\nmemory: {}\nnothing was changed: the functions ran in dry-run with clients that refuse every write; the ledger was only read\n",
        plan.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        plan.account,
        plan.region,
        plan.policy,
        plan.memory
    );
    for f in &plan.functions {
        out.push_str(&format!("\n{} ({}, {} API calls)\n", f.function, f.status, f.api_calls));
        if let Some(error) = &f.error {
            out.push_str(&format!("  could not plan: {error}\n"));
        }
        for shard in &f.shards {
            let head = format!("  shard    {} {:<14}", shard.account, shard.region);
            let what = match &shard.error {
                Some(error) => format!("could not plan: {error}"),
                None => format!("{}, {} API calls", shard.status, shard.api_calls),
            };
            out.push_str(&super::show::line(&head, &what, width));
        }
        let failed = f.error.is_some() || f.shards.iter().any(|s| s.error.is_some());
        if f.decisions.is_empty() && f.events.is_empty() && f.in_flight.is_empty() && !failed {
            out.push_str("  nothing to do\n");
        }
        for work in &f.in_flight {
            out.push_str(&format!("  in flight {work}\n"));
        }
        for d in &f.decisions {
            let word = super::audit::outcome_word(d.outcome);
            let resource = super::show::resource(&d.resource, super::show::record_name(d), usual.as_ref());
            let head = format!("  {word:<8} {:<20} {resource}", d.action);
            out.push_str(&super::show::line(&head, &d.reason, width));
        }
        for e in &f.events {
            let mut detail = e["detail"].to_string();
            if detail.len() > EVENT_TEXT {
                let cut = (0..=EVENT_TEXT).rev().find(|i| detail.is_char_boundary(*i)).unwrap_or_default();
                detail.truncate(cut);
                detail.push_str("… (--json shows all)");
            }
            out.push_str(&format!("  event    {:<26} {detail}\n", e["detail-type"].as_str().unwrap_or_default()));
        }
    }
    if !plan.warnings.is_empty() {
        out.push_str("\nend of support\n");
        for w in &plan.warnings {
            out.push_str(&format!("  ! {}\n", w.message));
        }
    }
    for note in &plan.notes {
        out.push_str(&format!("\nnote: {note}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_in_flight_is_read_from_the_answers_of_the_export_chaser_and_the_roller() {
        let chaser = serde_json::json!({ "actions": [
            { "job": "req-1", "step": "chase (next look at 2026-11-23T06:30:00Z)", "result": "unchanged" }
        ] });
        assert_eq!(in_flight(&chaser), ["req-1: chase (next look at 2026-11-23T06:30:00Z)"]);
        let roller = serde_json::json!({ "actions": [
            { "rollout": "auto-101", "status": "APPLYING", "transition": "ring canary applying 101" },
            { "rollout": "r-2", "status": "BAKING", "transition": null }
        ] });
        assert_eq!(
            in_flight(&roller),
            ["rollout auto-101 (APPLYING): ring canary applying 101", "rollout r-2 (BAKING)"]
        );
        let scaler = serde_json::json!({ "actions": [{ "resource": "k", "result": "applied" }] });
        assert!(in_flight(&scaler).is_empty());
    }
}
