//! The real Rust SDK clients (the product's own, from `autopilot_shared::clients`) against the simulator:
//! every operation, typed errors, pagination, CBOR for AppStream, restJson1 for Thin Client.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use autopilot_sim::estate::Estate;
use autopilot_sim::generate::{Sizes, generate};
use aws_sdk_appstream::error::ProvideErrorMetadata;
use aws_sdk_appstream::types::{ComputeCapacity, Filter};
use aws_sdk_workspaces::types::{Capacity, RebootRequest, RebuildRequest, StartRequest};
use chrono::Duration;
use common::{demo, no_retry, start};

#[tokio::test]
async fn workspaces_pools_describe_update_start_stop_with_state_guards() {
    let (local, aws) = start(&demo(), 1).await;
    let pools = aws.workspaces.describe_workspaces_pools().send().await.expect("describe");
    assert_eq!(pools.workspaces_pools().len(), 3);
    let sales = aws.workspaces.describe_workspaces_pools().pool_ids("wspool-sales0001").send().await.expect("by id");
    let pool = &sales.workspaces_pools()[0];
    assert_eq!(pool.pool_name(), "sales");
    assert_eq!(pool.capacity_status().map(|c| c.desired_user_sessions()), Some(20));
    assert!(pool.created_at().secs() > 0, "timestamps parse");

    let updated = aws
        .workspaces
        .update_workspaces_pool()
        .pool_id("wspool-sales0001")
        .capacity(Capacity::builder().desired_user_sessions(30).build().unwrap())
        .send()
        .await
        .expect("update");
    assert_eq!(updated.workspaces_pool().map(|p| p.state().as_str()), Some("UPDATING"));

    // state guards arrive as typed errors
    let running = aws.workspaces.start_workspaces_pool().pool_id("wspool-finance01").send().await.unwrap_err();
    assert!(running.as_service_error().is_some_and(|e| e.is_operation_not_supported_exception()), "{running:?}");
    let not_stopped = aws.workspaces.start_workspaces_pool().pool_id("wspool-sales0001").send().await.unwrap_err();
    assert!(not_stopped.as_service_error().is_some_and(|e| e.is_invalid_resource_state_exception()), "{not_stopped:?}");
    let missing = aws.workspaces.describe_workspaces_pools().pool_ids("wspool-nope").send().await.unwrap_err();
    assert!(missing.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()), "{missing:?}");

    // a stopped AUTO_STOP pool starts and becomes RUNNING after its start-up time
    aws.workspaces.start_workspaces_pool().pool_id("wspool-support01").send().await.expect("start");
    let state = |aws: &autopilot_shared::clients::AwsClients| {
        let aws = aws.clone();
        async move {
            let out = aws.workspaces.describe_workspaces_pools().pool_ids("wspool-support01").send().await.unwrap();
            out.workspaces_pools()[0].state().as_str().to_owned()
        }
    };
    assert_eq!(state(&aws).await, "STARTING");
    local.simulator.advance(Duration::minutes(11));
    assert_eq!(state(&aws).await, "STARTING");
    local.simulator.advance(Duration::minutes(1));
    assert_eq!(state(&aws).await, "RUNNING");
}

#[tokio::test]
async fn pagination_matches_the_real_page_sizes() {
    let estate =
        generate(Sizes { pools: 23, workspaces: 60, fleets: 30, builders: 30, environments: 2, devices: 120 }, 9);
    let (_local, aws) = start(&estate, 1).await;
    // DescribeWorkspacesPools has no SDK paginator: follow NextToken by hand
    let (mut pages, mut pools, mut token) = (0, 0, None);
    loop {
        let page = aws.workspaces.describe_workspaces_pools().set_next_token(token).send().await.unwrap();
        pages += 1;
        pools += page.workspaces_pools().len();
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!((pages, pools), (3, 23), "23 pools in pages of 10");
    let workspaces: Vec<_> =
        aws.workspaces.describe_workspaces().into_paginator().items().send().collect::<Vec<_>>().await;
    assert_eq!(workspaces.len(), 60);
    let first = aws.appstream.describe_fleets().send().await.unwrap();
    let second =
        aws.appstream.describe_fleets().set_next_token(first.next_token().map(str::to_owned)).send().await.unwrap();
    assert_eq!((first.fleets().len(), second.fleets().len(), second.next_token()), (25, 5, None));
    let builders = aws.appstream.describe_image_builders().max_results(7).send().await.unwrap();
    assert_eq!(builders.image_builders().len(), 7);
    assert!(builders.next_token().is_some());
    let devices: Vec<_> =
        aws.thinclient.list_devices().max_results(25).into_paginator().items().send().collect::<Vec<_>>().await;
    assert_eq!(devices.len(), 120);
    let bad = aws.workspaces.describe_workspaces().next_token("garbage").send().await.unwrap_err();
    assert!(bad.as_service_error().is_some_and(|e| e.is_invalid_parameter_values_exception()), "{bad:?}");
}

#[tokio::test]
async fn personal_workspaces_batches_report_failures_per_item() {
    let (local, aws) = start(&demo(), 3).await;
    let too_many: Vec<RebootRequest> =
        (0..26).map(|n| RebootRequest::builder().workspace_id(format!("ws-{n}")).build().unwrap()).collect();
    let rejected =
        aws.workspaces.reboot_workspaces().set_reboot_workspace_requests(Some(too_many)).send().await.unwrap_err();
    assert_eq!(rejected.code(), Some("ValidationException"), "{rejected:?}");

    // carol becomes UNHEALTHY after 2 h and a reboot does not cure her; bob recovers
    local.simulator.advance(Duration::minutes(121));
    let described = aws
        .workspaces
        .describe_workspaces()
        .workspace_ids("ws-a1b2c3d4e")
        .workspace_ids("ws-q9w8e7r6t")
        .send()
        .await
        .unwrap();
    assert!(described.workspaces().iter().all(|w| w.state().map(|s| s.as_str()) == Some("UNHEALTHY")));
    let out = aws
        .workspaces
        .start_workspaces()
        .start_workspace_requests(StartRequest::builder().workspace_id("ws-z1x2c3v4b").build())
        .start_workspace_requests(StartRequest::builder().workspace_id("ws-f8h2k9m1p").build())
        .start_workspace_requests(StartRequest::builder().workspace_id("ws-missing").build())
        .send()
        .await
        .expect("HTTP 200 with per-item failures");
    let failed: Vec<_> = out
        .failed_requests()
        .iter()
        .map(|f| (f.workspace_id().unwrap_or_default(), f.error_code().unwrap_or_default()))
        .collect();
    assert_eq!(
        failed,
        [("ws-f8h2k9m1p", "InvalidResourceState.Workspace"), ("ws-missing", "ResourceNotFound.Workspace")]
    );

    let rebuild = aws
        .workspaces
        .rebuild_workspaces()
        .rebuild_workspace_requests(RebuildRequest::builder().workspace_id("ws-q9w8e7r6t").build().unwrap())
        .send()
        .await
        .unwrap();
    assert!(rebuild.failed_requests().is_empty());
    let status =
        aws.workspaces.describe_workspaces_connection_status().workspace_ids("ws-f8h2k9m1p").send().await.unwrap();
    assert_eq!(status.workspaces_connection_status()[0].connection_state().map(|s| s.as_str()), Some("CONNECTED"));
    let tags = aws.workspaces.describe_tags().resource_id("wspool-sales0001").send().await.unwrap();
    assert!(tags.tag_list().iter().any(|t| t.key() == "autopilot/capacity" && t.value() == Some("sales")));
    aws.workspaces
        .modify_workspace_state()
        .workspace_id("ws-f8h2k9m1p")
        .workspace_state(aws_sdk_workspaces::types::TargetWorkspaceState::AdminMaintenance)
        .send()
        .await
        .unwrap();
    let sessions = aws.workspaces.describe_workspaces_pool_sessions().pool_id("wspool-sales0001").send().await.unwrap();
    assert!(sessions.sessions().is_empty(), "no demand at midnight");
}

#[tokio::test]
async fn appstream_over_cbor_fleets_builders_and_typed_errors() {
    let (local, aws) = start(&demo(), 1).await;
    let fleets = aws.appstream.describe_fleets().send().await.expect("DescribeFleets over RPC v2 CBOR");
    assert_eq!(fleets.fleets().len(), 3);
    let engineering = fleets.fleets().iter().find(|f| f.name() == Some("engineering-fleet")).unwrap();
    assert_eq!(engineering.compute_capacity_status().map(|c| c.desired()), Some(Some(8)));
    assert!(engineering.created_time().is_some(), "CBOR timestamps (tag 1) decode");
    let broken = fleets.fleets().iter().find(|f| f.name() == Some("broken-fleet")).unwrap();
    assert_eq!(broken.fleet_errors()[0].error_code().map(|c| c.as_str()), Some("IAM_SERVICE_ROLE_IS_MISSING"));

    let updated = aws
        .appstream
        .update_fleet()
        .name("engineering-fleet")
        .compute_capacity(ComputeCapacity::builder().desired_instances(12).build())
        .send()
        .await
        .expect("update single-session fleet");
    assert_eq!(updated.fleet().and_then(|f| f.compute_capacity_status()).and_then(|c| c.desired()), Some(12));
    let wrong = aws
        .appstream
        .update_fleet()
        .name("callcenter-multi")
        .compute_capacity(ComputeCapacity::builder().desired_instances(3).build())
        .send()
        .await
        .unwrap_err();
    assert!(wrong.as_service_error().is_some_and(|e| e.is_invalid_parameter_combination_exception()), "{wrong:?}");
    let multi = aws
        .appstream
        .update_fleet()
        .name("callcenter-multi")
        .compute_capacity(ComputeCapacity::builder().desired_sessions(60).build())
        .send()
        .await
        .unwrap();
    assert_eq!(
        multi.fleet().and_then(|f| f.compute_capacity_status()).and_then(|c| c.desired_user_sessions()),
        Some(60)
    );
    let missing = aws.appstream.describe_fleets().names("nope").send().await.unwrap_err();
    assert!(missing.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()), "{missing:?}");
    let running = aws.appstream.start_fleet().name("engineering-fleet").send().await.unwrap_err();
    assert!(running.as_service_error().is_some_and(|e| e.is_operation_not_permitted_exception()), "{running:?}");

    // builders: start only from STOPPED, stop only from RUNNING
    let started = aws.appstream.start_image_builder().name("golden-builder").send().await.unwrap();
    assert_eq!(started.image_builder().and_then(|b| b.state()).map(|s| s.as_str()), Some("PENDING"));
    let busy = aws.appstream.stop_image_builder().name("snapshotting-builder").send().await.unwrap_err();
    assert!(busy.as_service_error().is_some_and(|e| e.is_operation_not_permitted_exception()), "{busy:?}");
    local.simulator.advance(Duration::minutes(10));
    let builders = aws.appstream.describe_image_builders().names("golden-builder").send().await.unwrap();
    assert_eq!(builders.image_builders()[0].state().map(|s| s.as_str()), Some("RUNNING"));
    aws.appstream.stop_image_builder().name("forgotten-builder").send().await.unwrap();
    let tags = aws
        .appstream
        .list_tags_for_resource()
        .resource_arn("arn:aws:appstream:eu-central-1:123456789012:fleet/engineering-fleet")
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags().and_then(|t| t.get("autopilot/capacity")).map(String::as_str), Some("engineering"));
}

#[tokio::test]
async fn export_tasks_and_imported_images_run_to_a_terminal_state() {
    let mut estate = demo();
    estate.faults.exports.fail_rate = 0.0;
    estate.faults.exports.time_out_rate = 0.0;
    let (local, aws) = start(&estate, 1).await;
    let created = aws
        .appstream
        .create_export_image_task()
        .image_name("golden-2026-11")
        .ami_name("golden-2026-11-ami")
        .iam_role_arn("arn:aws:iam::123456789012:role/AppStreamExportRole")
        .send()
        .await
        .expect("create export");
    let task = created.export_image_task().unwrap();
    assert_eq!(task.state().map(|s| s.as_str()), Some("EXPORTING"));
    let task_id = task.task_id().unwrap().to_owned();
    let missing = aws
        .appstream
        .create_export_image_task()
        .image_name("nope")
        .ami_name("x")
        .iam_role_arn("arn:aws:iam::1:role/r")
        .send()
        .await
        .unwrap_err();
    assert!(missing.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()), "{missing:?}");

    local.simulator.advance(Duration::minutes(44));
    let got = aws.appstream.get_export_image_task().task_id(&task_id).send().await.unwrap();
    assert_eq!(got.export_image_task().and_then(|t| t.state()).map(|s| s.as_str()), Some("EXPORTING"));
    local.simulator.advance(Duration::minutes(1));
    let listed = aws
        .appstream
        .list_export_image_tasks()
        .filters(Filter::builder().name("ImageName").values("golden-2026-11").build())
        .send()
        .await
        .unwrap();
    let done = &listed.export_image_tasks()[0];
    assert_eq!(done.state().map(|s| s.as_str()), Some("COMPLETED"));
    assert!(done.ami_id().is_some_and(|a| a.starts_with("ami-")));
    assert!(done.created_date().is_some());

    let imported = aws
        .appstream
        .create_imported_image()
        .name("imported-win2022")
        .source_ami_id("ami-0abc")
        .iam_role_arn("arn:aws:iam::123456789012:role/r")
        .send()
        .await
        .unwrap();
    assert_eq!(imported.image().and_then(|i| i.state()).map(|s| s.as_str()), Some("IMPORTING"));
    let state = |minutes: i64| {
        local.simulator.advance(Duration::minutes(minutes));
        let aws = aws.clone();
        async move {
            aws.appstream.describe_images().names("imported-win2022").send().await.unwrap().images()[0]
                .state()
                .map(|s| s.as_str().to_owned())
        }
    };
    assert_eq!(state(30).await.as_deref(), Some("VALIDATING"));
    assert_eq!(state(30).await.as_deref(), Some("AVAILABLE"));
}

#[tokio::test]
async fn thin_client_over_rest_json_with_the_api_prefix_fix() {
    let (local, aws) = start(&demo(), 1).await;
    let environments = aws.thinclient.list_environments().send().await.expect("list environments");
    assert_eq!(environments.environments().len(), 2);
    let sets = aws.thinclient.list_software_sets().send().await.unwrap();
    assert_eq!(sets.software_sets().len(), 2);
    let set = aws.thinclient.get_software_set().id("101").send().await.unwrap();
    assert!(set.software_set().and_then(|s| s.supported_until()).is_some());
    let missing = aws.thinclient.get_environment().id("nope").send().await.unwrap_err();
    assert!(missing.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()), "{missing:?}");

    // a new desired set is applied only inside the maintenance window (01:00–03:00 UTC on weekdays)
    aws.thinclient.update_environment().id("envcanary01").desired_software_set_id("101").send().await.unwrap();
    let canary_current = |aws: &autopilot_shared::clients::AwsClients| {
        let aws = aws.clone();
        async move {
            let devices: Vec<_> =
                aws.thinclient.list_devices().into_paginator().items().send().collect::<Vec<_>>().await;
            devices
                .into_iter()
                .map(|d| d.unwrap())
                .filter(|d| d.environment_id() == Some("envcanary01"))
                .filter(|d| d.current_software_set_id() == Some("101"))
                .count()
        }
    };
    local.simulator.advance(Duration::minutes(59));
    assert_eq!(canary_current(&aws).await, 0, "before the window");
    local.simulator.advance(Duration::minutes(30));
    assert_eq!(canary_current(&aws).await, 5, "applied within the window");
    let device = aws.thinclient.get_device().id("envcanary01-dev0000").send().await.unwrap();
    assert_eq!(device.device().and_then(|d| d.software_set_update_status()).map(|s| s.as_str()), Some("UP_TO_DATE"));
    aws.thinclient
        .update_software_set()
        .id("100")
        .validation_status(aws_sdk_workspacesthinclient::types::SoftwareSetValidationStatus::NotValidated)
        .send()
        .await
        .unwrap();
    aws.thinclient.update_device().id("envcanary01-dev0001").name("front-desk").send().await.unwrap();
    let tags = aws
        .thinclient
        .list_tags_for_resource()
        .resource_arn("arn:aws:thinclient:eu-central-1:123456789012:environment/envcanary01")
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags().and_then(|t| t.get("autopilot/ring")).map(String::as_str), Some("canary"));
}

#[tokio::test]
async fn throttling_arrives_as_each_services_own_typed_error() {
    let mut estate: Estate = demo();
    for op in ["DescribeFleets", "ListEnvironments", "DescribeWorkspacesPools"] {
        estate.faults.throttle_per_second.insert(op.into(), 0.001);
    }
    let (_local, aws) = start(&estate, 1).await;
    // the first request takes the bucket's only token
    aws.appstream.describe_fleets().send().await.unwrap();
    let throttled = aws
        .appstream
        .describe_fleets()
        .customize()
        .config_override(aws_sdk_appstream::config::Builder::default().retry_config(no_retry()))
        .send()
        .await
        .unwrap_err();
    // not a modeled error of DescribeFleets: it arrives unhandled with the service's code
    assert_eq!(throttled.code(), Some("RequestLimitExceededException"), "{throttled:?}");

    aws.thinclient.list_environments().send().await.unwrap();
    let throttled = aws
        .thinclient
        .list_environments()
        .customize()
        .config_override(aws_sdk_workspacesthinclient::config::Builder::default().retry_config(no_retry()))
        .send()
        .await
        .unwrap_err();
    match throttled.as_service_error() {
        Some(
            aws_sdk_workspacesthinclient::operation::list_environments::ListEnvironmentsError::ThrottlingException(e),
        ) => assert_eq!(e.retry_after_seconds(), Some(1)),
        other => panic!("expected ThrottlingException, got {other:?}"),
    }
    aws.workspaces.describe_workspaces_pools().send().await.unwrap();
    let throttled = aws
        .workspaces
        .describe_workspaces_pools()
        .customize()
        .config_override(aws_sdk_workspaces::config::Builder::default().retry_config(no_retry()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(throttled.code(), Some("ThrottlingException"), "{throttled:?}");
}

#[tokio::test]
async fn outcome_events_are_captured_and_the_call_log_records_everything() {
    let (local, aws) = start(&demo(), 1).await;
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .source("euc.autopilot")
        .detail_type("Export Completed")
        .detail(r#"{"taskId":"t-1","amiId":"ami-1"}"#)
        .event_bus_name("euc-autopilot")
        .build();
    let out = aws.eventbridge.put_events().entries(entry).send().await.expect("PutEvents");
    assert_eq!(out.failed_entry_count(), 0);
    let events = local.simulator.with_world(|w| w.events.clone());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].detail["amiId"], "ami-1");
    let _ = aws.workspaces.start_workspaces_pool().pool_id("wspool-finance01").send().await;
    let calls = local.simulator.calls();
    assert_eq!(
        calls.iter().map(|c| (c.service.as_str(), c.operation.as_str(), c.outcome.as_str())).collect::<Vec<_>>(),
        [("eventbridge", "PutEvents", "ok"), ("workspaces", "StartWorkspacesPool", "OperationNotSupportedException")]
    );
    assert_eq!(calls[1].resource.as_deref(), Some("wspool-finance01"));
}

#[tokio::test]
async fn appstream_throttles_are_retried_by_the_products_clients() {
    let mut estate: Estate = demo();
    estate.faults.throttle_per_second.insert("DescribeFleets".into(), 5.0);
    let (local, aws) = start(&estate, 1).await;
    for _ in 0..10 {
        aws.appstream.describe_fleets().send().await.expect("retried until the bucket refills");
    }
    let calls = local.simulator.calls();
    let throttled = calls.iter().filter(|c| c.outcome == "RequestLimitExceededException").count();
    let ok = calls.iter().filter(|c| c.ok()).count();
    assert_eq!(ok, 10);
    assert!(throttled > 0, "the bucket of 5 must have throttled some of 10 back-to-back calls");

    // the SDK alone does not retry this code: a plain client fails on the first throttle
    let plain = aws_sdk_appstream::Client::from_conf(aws.appstream.config().to_builder().build());
    let plain = aws_sdk_appstream::Client::from_conf(
        aws_sdk_appstream::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(plain.config().region().cloned())
            .endpoint_url(&local.endpoint)
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("admin", "local", None, None, "test"))
            .retry_config(autopilot_shared::clients::retry_config())
            .http_client(autopilot_shared::clients::loopback_http_client())
            .build(),
    );
    let mut failures = 0;
    for _ in 0..10 {
        if let Err(error) = plain.describe_fleets().send().await {
            assert_eq!(error.code(), Some("RequestLimitExceededException"));
            failures += 1;
        }
    }
    assert!(failures > 0, "without the classifier a throttle surfaces as an error");
}

#[tokio::test]
async fn application_auto_scaling_reports_the_targets_another_owner_scales() {
    let (_local, aws) = start(&demo(), 1).await;
    use aws_sdk_applicationautoscaling::types::ServiceNamespace;
    let pools = aws
        .autoscaling
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Workspaces)
        .send()
        .await
        .expect("describe");
    let ids: Vec<_> = pools.scalable_targets().iter().map(|t| t.resource_id()).collect();
    assert_eq!(ids, ["workspacespool/wspool-finance01"]);
    let fleets = aws
        .autoscaling
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Appstream)
        .send()
        .await
        .expect("describe");
    assert!(fleets.scalable_targets().is_empty());
}

#[tokio::test]
async fn tags_are_written_and_removed_with_each_services_own_calls() {
    let (local, aws) = start(&demo(), 1).await;
    // WorkSpaces: CreateTags / DeleteTags by id
    let tag = |key: &str, value: &str| aws_sdk_workspaces::types::Tag::builder().key(key).value(value).build().unwrap();
    aws.workspaces
        .create_tags()
        .resource_id("wspool-sales0001")
        .tags(tag("autopilot/skip", "true"))
        .send()
        .await
        .unwrap();
    aws.workspaces.delete_tags().resource_id("wspool-sales0001").tag_keys("autopilot/capacity").send().await.unwrap();
    let pool = local.simulator.with_world(|w| w.pools["wspool-sales0001"].tags.clone());
    assert_eq!(pool.get("autopilot/skip").map(String::as_str), Some("true"));
    assert!(!pool.contains_key("autopilot/capacity"), "{pool:?}");
    let missing = aws.workspaces.create_tags().resource_id("wspool-nope").tags(tag("a", "b")).send().await.unwrap_err();
    assert!(missing.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()), "{missing:?}");

    // AppStream (CBOR): TagResource / UntagResource by ARN
    let fleet = "arn:aws:appstream:eu-central-1:123456789012:fleet/engineering-fleet";
    aws.appstream.tag_resource().resource_arn(fleet).tags("autopilot/skip", "true").send().await.unwrap();
    aws.appstream.untag_resource().resource_arn(fleet).tag_keys("autopilot/capacity").send().await.unwrap();
    let tags = aws.appstream.list_tags_for_resource().resource_arn(fleet).send().await.unwrap();
    assert_eq!(tags.tags().cloned().unwrap_or_default(), [("autopilot/skip".to_owned(), "true".to_owned())].into());

    // Thin Client (restJson1): POST and DELETE /tags/{resourceArn}
    let environment = "arn:aws:thinclient:eu-central-1:123456789012:environment/envcanary01";
    aws.thinclient.tag_resource().resource_arn(environment).tags("site", "hq").send().await.unwrap();
    aws.thinclient.untag_resource().resource_arn(environment).tag_keys("autopilot/ring").send().await.unwrap();
    let tags = aws.thinclient.list_tags_for_resource().resource_arn(environment).send().await.unwrap();
    assert_eq!(tags.tags().cloned().unwrap_or_default(), [("site".to_owned(), "hq".to_owned())].into());

    let logged: Vec<String> = local.simulator.calls().iter().filter(|c| c.ok()).map(|c| c.operation.clone()).collect();
    for operation in ["CreateTags", "DeleteTags", "TagResource", "UntagResource"] {
        assert!(logged.iter().any(|o| o == operation), "{operation} in the call log: {logged:?}");
    }
}

#[tokio::test]
async fn read_only_clients_refuse_writes_before_sending_them() {
    let (local, clients) = common::start(&common::demo(), 1).await;
    let guarded = clients.read_only();
    assert!(guarded.appstream.describe_fleets().send().await.is_ok());
    let refused = guarded.appstream.stop_fleet().name("engineering-fleet").send().await.unwrap_err();
    assert!(format!("{refused:?}").contains("StopFleet refused"), "{refused:?}");
    let refused = guarded.workspaces.reboot_workspaces().send().await.unwrap_err();
    assert!(format!("{refused:?}").contains("RebootWorkspaces refused"));
    let operations: Vec<String> = local.simulator.calls().iter().map(|c| c.operation.clone()).collect();
    assert_eq!(operations, ["DescribeFleets"]);
}
