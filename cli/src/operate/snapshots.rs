//! Snapshots of what an operator reads: `plan`, `audit` and `validate` as text, from fixed inputs, compared with
//! `cli/tests/snapshots/<name>.txt` (`AUTOPILOT_BLESS=1` rewrites them after a deliberate change; the diff is
//! then reviewed like code).

use super::audit::render as render_audit;
use super::plan::{FunctionPlan, Plan, ShardPlan, render as render_plan};
use autopilot_shared::ledger::audit::{AuditRecord, Outcome};
use chrono::{DateTime, TimeZone, Utc};
use std::path::PathBuf;

fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, hour, minute, 0).single().unwrap_or_default()
}

fn record(minute: u32, function: &str, resource: &str, action: &str, outcome: Outcome, reason: &str) -> AuditRecord {
    let name = resource.rsplit('#').next().unwrap_or_default();
    let name = if name == "wspool-sales0001" { "sales" } else { name };
    AuditRecord {
        at: at(8, minute),
        function: function.into(),
        resource: resource.into(),
        action: action.into(),
        outcome,
        reason: reason.into(),
        correlation_id: format!("tick-{minute}"),
        details: serde_json::json!({ "name": name }),
    }
}

fn records() -> Vec<AuditRecord> {
    let pool = "workspaces#123456789012#eu-central-1#workspaces-pool#wspool-sales0001";
    let fleet = "appstream#123456789012#eu-central-1#fleet#callcenter-multi";
    let builder = "appstream#210987654321#us-east-1#image-builder#golden-b";
    vec![
        record(
            0,
            "pool-scaler",
            pool,
            "UpdateWorkspacesPool",
            Outcome::Applied,
            "in-hours (in a schedule period): saturated (40 of 40 in use): 40 → 60 sessions",
        ),
        record(0, "pool-scaler", fleet, "Hold", Outcome::Skipped, "tagged autopilot/skip"),
        record(
            5,
            "builder-scheduler",
            builder,
            "StopImageBuilder",
            Outcome::Deferred,
            "max-runtime 13h reached while SNAPSHOTTING: the stop waits for the snapshot",
        ),
        record(10, "pool-scaler", fleet, "Hold", Outcome::Released, "no longer held (was: tagged autopilot/skip)"),
        record(
            15,
            "remediator",
            "workspaces#123456789012#eu-central-1#workspace#ws-a1b2c3d4e",
            "RebootWorkspaces",
            Outcome::Failed,
            "UNHEALTHY since 2026-11-23 07:45:00 UTC (more than 15m); reboot 1 of at most 2 per 1d",
        ),
    ]
}

fn plan() -> Plan {
    let function = |name: &str, status: &str, decisions: Vec<AuditRecord>, in_flight: Vec<String>| FunctionPlan {
        function: name.into(),
        status: status.into(),
        error: None,
        api_calls: 7,
        decisions,
        events: Vec::new(),
        in_flight,
        shards: Vec::new(),
    };
    // As the plan keeps them: what would act is `dry-run`.
    let records: Vec<AuditRecord> = records()
        .into_iter()
        .map(|mut r| {
            if r.outcome == autopilot_shared::ledger::audit::Outcome::Applied {
                r.outcome = autopilot_shared::ledger::audit::Outcome::DryRun;
            }
            r
        })
        .collect();
    Plan {
        at: at(8, 0),
        account: "123456789012".into(),
        region: "eu-central-1".into(),
        policy: "version 3 stored in euc-autopilot-ledger".into(),
        memory: "42 items copied from euc-autopilot-ledger".into(),
        functions: vec![
            function("pool-scaler", "reconciled", records[..2].to_vec(), Vec::new()),
            function("builder-scheduler", "reconciled", records[2..3].to_vec(), Vec::new()),
            function(
                "export-chaser",
                "chased",
                Vec::new(),
                vec!["req-1: chase (next look at 2026-11-23T08:05:00Z)".into()],
            ),
            function("softwareset-roller", "stepped", Vec::new(), Vec::new()),
            // a policy with targets: the hub tick dispatched, each shard looked at through its reader role
            FunctionPlan {
                shards: vec![
                    ShardPlan {
                        account: "111111111111".into(),
                        region: "eu-central-1".into(),
                        status: "swept".into(),
                        error: None,
                        api_calls: 5,
                    },
                    ShardPlan {
                        account: "222222222222".into(),
                        region: "eu-west-1".into(),
                        status: "error".into(),
                        error: Some("NonRetryable: cannot assume arn:aws:iam::222222222222:role/EUCAutopilotSpokeReader for 222222222222 in eu-west-1: … (AccessDenied)".into()),
                        api_calls: 0,
                    },
                ],
                ..function("remediator", "dispatched", Vec::new(), Vec::new())
            },
        ],
        warnings: Vec::new(),
        notes: vec!["alarm euc-desk-health is not named with the prefix euc- … (example)".into()],
    }
}

/// Compares `text` with the snapshot `name`, or writes it under `AUTOPILOT_BLESS=1`.
fn snapshot(name: &str, text: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(format!("{name}.txt"));
    if std::env::var("AUTOPILOT_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (AUTOPILOT_BLESS=1 writes it)", path.display()));
    assert_eq!(text, expected, "{name} changed (AUTOPILOT_BLESS=1 rewrites {})", path.display());
}

#[test]
fn audit_as_an_operator_reads_it() {
    snapshot("audit-wide", &render_audit(&records(), None));
    snapshot("audit-80-columns", &render_audit(&records(), Some(80)));
}

#[test]
fn plan_as_an_operator_reads_it() {
    snapshot("plan-80-columns", &render_plan(&plan(), Some(80)));
}

#[test]
fn validate_as_an_operator_reads_it() {
    let broken = "version: 1\nschedules:\n  office:\n    timezone: Europe/Nowhere\n    periods: [{ days: [mon-fri], start: \"25:00\", end: \"19:00\" }]\ncapacity:\n  - select: { ids: [a] }\n    in_hours: 5\n";
    let text = super::validate::validate("autopilot.yaml", broken).unwrap_or_else(|problems| problems.to_string());
    snapshot("validate-broken", &format!("{text}\n"));
}
