//! IAM enforced in the local estate: every function signs its requests as its own role, and the simulator and the
//! embedded DynamoDB authorise each request against that role's policy in `template.yaml`, as AWS would. Together
//! with the least-privilege test (`template.rs`) this proves the roles are exactly wide enough; and an
//! independent evaluator (`@cloud-copilot/iam-simulate`, `scripts/iam/agree.mjs`) must agree with ours on every
//! decision, allowed and refused alike.

use crate::workspace::root;
use autopilot_functions::Function;
use autopilot_lab::chaos::scenario::{Deliveries, Run};
use autopilot_lab::simulate::{Options, simulate};
use chrono::{DateTime, Duration, Utc};
use std::path::PathBuf;
use std::process::Command;

/// The scratch folder of this test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("autopilot-iam-{}", std::process::id())).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `node scripts/iam/agree.mjs` on `matrices` (the tooling `scripts/ci.sh` installs with `npm ci`).
fn independent_evaluator_agrees(matrices: &[PathBuf]) {
    let tools = root().join("scripts/iam");
    assert!(
        tools.join("node_modules/@cloud-copilot/iam-simulate").exists(),
        "the independent IAM evaluator is not installed: run `npm ci --prefix scripts/iam` (scripts/ci.sh does)"
    );
    let output = Command::new("node")
        .arg(tools.join("agree.mjs"))
        .args(matrices)
        .output()
        .expect("node runs (Node.js is part of the check command's set-up)");
    let report = String::from_utf8_lossy(&output.stdout);
    eprintln!("{report}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "our IAM evaluator and iam-simulate disagree:\n{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_function_is_allowed_what_it_does_and_an_independent_evaluator_agrees() {
    let mut matrices = Vec::new();
    let mut refused = Vec::new();

    // GIVEN each function's sample scenario (every input it takes, then settling ticks), signed as its role
    for function in Function::ALL {
        let mut run = Run::start(function, None).await.unwrap();
        // WHEN it runs with IAM enforced
        let outcome = run.scenario(Deliveries::ONCE).await;
        let authorizer = run.local.simulator.authorizer();
        refused.extend(authorizer.refusals().into_iter().map(|r| format!("{} samples: {r}", function.name())));
        assert!(outcome.is_ok() || !authorizer.refusals().is_empty(), "{}: {outcome:?}", function.name());
        let file = scratch(function.name()).join("authorizations.json");
        std::fs::write(&file, authorizer.matrix().to_string()).unwrap();
        matrices.push(file);
    }

    // AND a simulated week of the demo estate under all five functions (30-minute ticks keep it short; every
    // schedule transition, rollout ring, builder run, export and repair of the week still happens)
    let from: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z").unwrap().with_timezone(&Utc);
    let out = scratch("week");
    let summary = simulate(&Options {
        estate: root().join("sim/estates/demo.yaml"),
        policy: root().join("sim/estates/demo-policy.yaml"),
        from,
        to: from + Duration::days(7),
        tick: Duration::minutes(30),
        events: None,
        seed: 1,
        out: out.clone(),
        progress: false,
        learn: chrono::Duration::zero(),
        redeliver: 0.0,
    })
    .await
    .unwrap();
    refused.extend(summary.iam.refused.iter().map(|r| format!("week: {r}")));
    matrices.push(out.join("authorizations.json"));

    // THEN no request any function made was refused: the roles are wide enough
    assert!(refused.is_empty(), "requests the template's roles do not allow:\n{}", refused.join("\n"));
    assert!(summary.iam.authorizations > 100, "{:?}", summary.iam);
    assert!(summary.failed_invocations.is_empty(), "{:?}", summary.failed_invocations);

    // AND iam-simulate decides every (identity, action, resource, context) of these runs as we do
    independent_evaluator_agrees(&matrices);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_the_role_does_not_allow_is_refused_as_aws_refuses_it() {
    use autopilot_sim::{Identity, LocalEstate, estate::Estate};
    // GIVEN the samples' estate and the remediator's clients
    let estate = Estate::from_yaml(autopilot_lab::samples::ESTATE).unwrap();
    let local = LocalEstate::start(&estate, 1, 0).await.unwrap();
    let remediator = local.clients_as(Identity::Function(Function::Remediator.name()));

    // WHEN the remediator tries to scale a fleet and write to another table
    let fleet = remediator
        .appstream
        .update_fleet()
        .name("sales-fleet")
        .compute_capacity(aws_sdk_appstream::types::ComputeCapacity::builder().desired_instances(1).build())
        .send()
        .await;
    let table = remediator
        .dynamodb
        .get_item()
        .table_name("another-table")
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("x".into()))
        .send()
        .await;

    // THEN both are AccessDeniedException with AWS's message, and nothing changed
    use aws_sdk_dynamodb::error::ProvideErrorMetadata;
    let fleet = fleet.unwrap_err();
    let fleet = fleet.as_service_error().unwrap();
    assert_eq!(fleet.code(), Some("AccessDeniedException"));
    assert!(
        fleet.message().unwrap().contains(
            "is not authorized to perform: appstream:UpdateFleet on resource: arn:aws:appstream:eu-central-1:123456789012:fleet/sales-fleet because no identity-based policy allows the appstream:UpdateFleet action"
        ),
        "{fleet:?}"
    );
    let table = table.unwrap_err();
    assert_eq!(table.as_service_error().and_then(|e| e.code()), Some("AccessDeniedException"));
    assert_eq!(local.simulator.with_world(|w| w.fleets["sales-fleet"].capacity.desired), 10);
    let refused = local.simulator.calls().into_iter().find(|c| c.operation == "UpdateFleet").unwrap();
    assert_eq!((refused.outcome.as_str(), refused.caller.as_deref()), ("AccessDeniedException", Some("remediator")));

    // AND an unknown access key is refused as AWS refuses an invalid one
    let stranger = {
        let mut env_clients = local.clients();
        env_clients.workspaces = aws_sdk_workspaces::Client::from_conf(
            env_clients
                .workspaces
                .config()
                .to_builder()
                .credentials_provider(aws_sdk_workspaces::config::Credentials::new("nobody", "x", None, None, "t"))
                .build(),
        );
        env_clients
    };
    let error = stranger.workspaces.describe_workspaces_pools().send().await.unwrap_err();
    assert_eq!(error.as_service_error().and_then(|e| e.code()), Some("UnrecognizedClientException"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_may_store_policy_versions_and_write_nothing_else_of_the_ledger() {
    use autopilot_sim::{Identity, LocalEstate, estate::Estate};
    use aws_sdk_dynamodb::error::ProvideErrorMetadata;
    use aws_sdk_dynamodb::types::AttributeValue;
    // GIVEN the operator's clients (OperatorPolicy)
    let estate = Estate::from_yaml(autopilot_lab::samples::ESTATE).unwrap();
    let local = LocalEstate::start(&estate, 1, 0).await.unwrap();
    let operator = local.clients_as(Identity::Operator);
    let table = local.simulator.authorizer().names.table.clone();
    let put = |pk: &str| {
        operator
            .dynamodb
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S(pk.into()))
            .item("sk", AttributeValue::S("v999999".into()))
            .send()
    };
    // WHEN it stores a policy version, then writes into a function's bookkeeping
    let config = put("CONFIG").await;
    let lease = put("LEASE#pool-scaler").await;
    // THEN the first is allowed (dynamodb:LeadingKeys is CONFIG) and the second refused as AWS refuses it
    assert!(config.is_ok(), "{config:?}");
    let lease = lease.unwrap_err();
    let lease = lease.as_service_error().unwrap();
    assert_eq!(lease.code(), Some("AccessDeniedException"));
    assert!(lease.message().unwrap().contains("dynamodb:PutItem"), "{lease:?}");
    // AND iam-simulate decides both (and every function's request seen here) as we do
    let file = scratch("operator").join("authorizations.json");
    std::fs::write(&file, local.simulator.authorizer().matrix().to_string()).unwrap();
    independent_evaluator_agrees(&[file]);
}
