//! Every sample in `events/` parses into the input its name says; malformed events are rejected with the path
//! of the offending field.

use super::*;
use crate::resource::{ResourceKind, ResourceRef};
use std::path::PathBuf;

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

fn kind(input: &Input) -> &'static str {
    match input {
        Input::Tick(_) => "scheduled-tick",
        Input::CloudTrail(_) => "cloudtrail",
        Input::AppStreamSession(_) => "appstream-session-notification",
        Input::WorkSpacesAccess(_) => "workspaces-access",
        Input::Alarm(_) => "cloudwatch-alarm-state-change",
        Input::Command(_) => "command",
        Input::ShardTick(_) => "shard-tick",
    }
}

#[test]
fn every_sample_event_parses_into_the_kind_its_name_says() {
    let mut seen = 0;
    let entries = std::fs::read_dir(events_dir()).map(|d| d.flatten().collect::<Vec<_>>()).unwrap_or_default();
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".json") {
            continue;
        }
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        let parsed = parse_slice(&bytes);
        assert!(parsed.is_ok(), "{name}: {:?}", parsed.err());
        let Ok(input) = parsed else { continue };
        assert!(name.starts_with(kind(&input)), "{name} parsed as {}", kind(&input));
        assert!(!input.id().is_empty(), "{name} has no id");
        if let Input::CloudTrail(event) = &input {
            assert!(event.detail.api_call().is_ok(), "{name}");
        }
        seen += 1;
    }
    assert!(seen >= 20, "only {seen} sample events found");
}

fn sample(name: &str) -> serde_json::Value {
    let bytes = std::fs::read(events_dir().join(name)).unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or_default()
}

fn rejected(value: serde_json::Value) -> String {
    match parse(value) {
        Ok(input) => format!("accepted: {input:?}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn typed_details_carry_what_the_functions_need() {
    let Ok(Input::CloudTrail(event)) = parse(sample("cloudtrail-create-export-image-task.json")) else {
        panic!("not cloudtrail")
    };
    assert_eq!(
        event.detail.api_call(),
        Ok(ApiCall::CreateExportImageTask {
            image_name: "golden-2026-11".into(),
            ami_name: "golden-2026-11-ami".into(),
            task_id: Some("a1b2c3d4-5678-90ab-cdef-EXAMPLE11111".into())
        })
    );
    let Ok(Input::CloudTrail(event)) = parse(sample("cloudtrail-update-workspaces-pool.json")) else {
        panic!("not cloudtrail")
    };
    assert_eq!(
        event.detail.api_call(),
        Ok(ApiCall::UpdateWorkspacesPool { pool_id: "wspool-1a2b3c4d5".into(), desired_user_sessions: Some(40) })
    );
    let Ok(Input::Command(command)) = parse(sample("command-export-requested.json")) else { panic!("not a command") };
    let Command::ExportRequested(export) = command.command else { panic!("not an export") };
    assert_eq!(export.retry.map(|r| r.max_attempts), Some(2));
    let Ok(Input::Tick(tick)) = parse(sample("scheduled-tick-scheduler.json")) else { panic!("not a tick") };
    assert_eq!(
        Input::tick_key(&tick),
        "arn:aws:scheduler:eu-central-1:123456789012:schedule/default/euc-autopilot-pool-scaler@2026-11-23T06:00:00+00:00"
    );
}

#[test]
fn malformed_events_name_the_wrong_field() {
    let mut export = sample("command-export-requested.json");
    export["detail"].as_object_mut().map(|d| d.remove("amiName"));
    assert_eq!(rejected(export), "invalid event: detail: missing field `amiName`");

    let mut typo = sample("command-rollout-requested.json");
    typo["detail"]["sofwareSetId"] = serde_json::json!("1");
    let typo = rejected(typo);
    assert!(typo.starts_with("invalid event: detail.sofwareSetId: unknown field `sofwareSetId`"), "{typo}");

    let mut builder = sample("cloudtrail-start-image-builder.json");
    builder["detail"]["requestParameters"] = serde_json::json!({ "nam": "x" });
    assert_eq!(rejected(builder), "invalid event: detail.requestParameters: missing field `name`");

    let mut pool = sample("cloudtrail-update-workspaces-pool.json");
    pool["detail"]["requestParameters"]["capacity"]["desiredUserSessions"] = serde_json::json!("forty");
    assert!(
        rejected(pool)
            .starts_with("invalid event: detail.requestParameters.capacity.desiredUserSessions: invalid type")
    );

    let mut alarm = sample("cloudwatch-alarm-state-change.json");
    alarm["detail"]["state"].as_object_mut().map(|s| s.remove("value"));
    assert!(rejected(alarm).starts_with("invalid event: detail.state: missing field `value`"));

    let mut access = sample("workspaces-access.json");
    access["detail"]["loginTime"] = serde_json::json!("yesterday");
    assert!(rejected(access).starts_with("invalid event: detail.loginTime:"));

    let mut tick = sample("scheduled-tick-rule.json");
    tick.as_object_mut().map(|t| t.remove("time"));
    assert_eq!(rejected(tick), "invalid event: time: a schedule tick needs its scheduled time");

    let mut failed_call = sample("cloudtrail-stop-fleet.json");
    failed_call["detail"]["errorCode"] = serde_json::json!("ConcurrentModificationException");
    assert!(rejected(failed_call).starts_with("invalid event: detail.errorCode: StopFleet failed"));

    let mut unknown_call = sample("cloudtrail-stop-fleet.json");
    unknown_call["detail"]["eventName"] = serde_json::json!("DeleteFleet");
    assert_eq!(
        rejected(unknown_call),
        "invalid event: detail.eventName: DeleteFleet from appstream.amazonaws.com is not a call EUC Autopilot handles"
    );

    assert_eq!(
        rejected(serde_json::json!({ "hello": "world" })),
        "invalid event: source: missing or not a string (is this an EventBridge event?)"
    );
    let mut other = sample("scheduled-tick-rule.json");
    other["detail-type"] = serde_json::json!("EC2 Instance State-change Notification");
    assert!(rejected(other).starts_with("invalid event: detail-type:"));
    assert!(parse_slice(b"{not json").is_err());
}

#[test]
fn aws_details_tolerate_new_fields_but_commands_do_not() {
    let mut access = sample("workspaces-access.json");
    access["detail"]["newFieldFromAws"] = serde_json::json!(true);
    assert!(parse(access).is_ok());
    let mut command = sample("command-remediation-requested.json");
    command["detail"]["force"] = serde_json::json!(true);
    assert!(parse(command).is_err());
}

#[test]
fn cloudtrail_rules_take_successful_calls_only() {
    let rule = Rule {
        name: "FleetChanges",
        source: "aws.appstream",
        detail_type: CLOUDTRAIL_DETAIL_TYPE,
        event_names: &["StopFleet"],
        detail: &[],
    };
    let mut event = sample("cloudtrail-stop-fleet.json");
    assert!(rule.matches(&event), "the successful call is delivered");
    // A person's attempt that AWS refused: EventBridge (errorCode exists: false) never delivers it, so it cannot
    // end in the dead-letter queue as bad input.
    event["detail"]["errorCode"] = "AccessDenied".into();
    event["detail"]["errorMessage"] = "User is not authorized to perform: appstream:StopFleet".into();
    assert!(!rule.matches(&event));
    // Were it delivered anyway (an older deployment's rule), it is refused by name, not misread.
    let refused = rejected(event);
    assert!(refused.contains("detail.errorCode") && refused.contains("AccessDenied"), "{refused}");
}

#[test]
fn detail_conditions_match_as_eventbridge_patterns_do() {
    use crate::events::{DetailMatch, Matcher};
    let rule = Rule {
        name: "Alarms",
        source: "aws.cloudwatch",
        detail_type: "CloudWatch Alarm State Change",
        event_names: &[],
        detail: &[
            DetailMatch { path: "state.value", is: Matcher::AnyOf(&["ALARM"]) },
            DetailMatch { path: "alarmName", is: Matcher::Prefix("euc-") },
            DetailMatch {
                path: "configuration.metrics.metricStat.metric.namespace",
                is: Matcher::AnyOf(&["AWS/AppStream"]),
            },
        ],
    };
    let mut event = sample("cloudwatch-alarm-state-change.json");
    assert!(rule.matches(&event), "through the metrics list, any item may match");
    event["detail"]["alarmName"] = "billing-alarm".into();
    assert!(!rule.matches(&event), "another prefix");
    event["detail"]["alarmName"] = "euc-x".into();
    event["detail"]["state"]["value"] = "OK".into();
    assert!(!rule.matches(&event), "another state");
    event["detail"] = serde_json::Value::Null;
    assert!(!rule.matches(&event), "no detail");
}

#[test]
fn tag_changes_name_the_resource_whose_tags_changed() {
    let call = |event: serde_json::Value| match parse(event) {
        Ok(Input::CloudTrail(event)) => event.detail.api_call().map_err(|e| e.to_string()),
        other => Err(format!("not a CloudTrail call: {other:?}")),
    };
    let resource = |kind, id: &str| ResourceRef::new("123456789012", "eu-central-1", kind, id).ok();
    let fleet_arn = "arn:aws:appstream:eu-central-1:123456789012:fleet/sales-fleet";
    assert_eq!(
        call(sample("cloudtrail-tag-resource-fleet.json")),
        Ok(ApiCall::TagsChanged { named: fleet_arn.into(), resource: resource(ResourceKind::Fleet, "sales-fleet") })
    );
    assert_eq!(
        call(sample("cloudtrail-create-tags-pool.json")),
        Ok(ApiCall::TagsChanged {
            named: "wspool-1a2b3c4d5".into(),
            resource: resource(ResourceKind::WorkspacesPool, "wspool-1a2b3c4d5")
        })
    );
    assert_eq!(
        call(sample("cloudtrail-tag-resource-environment.json")),
        Ok(ApiCall::TagsChanged {
            named: "arn:aws:thinclient:eu-central-1:123456789012:environment/envcanary01".into(),
            resource: resource(ResourceKind::Environment, "envcanary01")
        })
    );
    // an UntagResource of a builder; of a stack (no kind of ours); DeleteTags of a WorkSpace; an id of no known kind
    let mut untag = sample("cloudtrail-tag-resource-fleet.json");
    untag["detail"]["eventName"] = serde_json::json!("UntagResource");
    untag["detail"]["requestParameters"] = serde_json::json!({
        "resourceArn": "arn:aws:appstream:eu-central-1:123456789012:image-builder/golden-builder",
        "tagKeys": ["autopilot/skip"]
    });
    let builder = resource(ResourceKind::ImageBuilder, "golden-builder");
    assert!(matches!(call(untag.clone()), Ok(ApiCall::TagsChanged { resource, .. }) if resource == builder));
    untag["detail"]["requestParameters"]["resourceArn"] =
        serde_json::json!("arn:aws:appstream:eu-central-1:123456789012:stack/sales");
    assert!(matches!(call(untag.clone()), Ok(ApiCall::TagsChanged { resource: None, .. })));
    let mut delete = sample("cloudtrail-create-tags-pool.json");
    delete["detail"]["eventName"] = serde_json::json!("DeleteTags");
    delete["detail"]["requestParameters"] = serde_json::json!({ "resourceId": "ws-a1b2c3d4e", "tagKeys": ["owner"] });
    let workspace = resource(ResourceKind::Workspace, "ws-a1b2c3d4e");
    assert!(matches!(call(delete.clone()), Ok(ApiCall::TagsChanged { resource, .. }) if resource == workspace));
    delete["detail"]["requestParameters"]["resourceId"] = serde_json::json!("wsb-0123456");
    assert!(matches!(call(delete), Ok(ApiCall::TagsChanged { resource: None, .. })));
    // the ARN is required, and bounded like every name
    untag["detail"]["requestParameters"] = serde_json::json!({ "tagKeys": ["x"] });
    assert_eq!(rejected(untag.clone()), "invalid event: detail.requestParameters: missing field `resourceArn`");
    untag["detail"]["requestParameters"] = serde_json::json!({ "resourceArn": format!("arn:{}", "x".repeat(2000)) });
    assert!(rejected(untag).starts_with("invalid event: detail.requestParameters.resourceArn:"));
}

#[test]
fn cloudtrail_shapes_are_strict_an_object_where_aws_sends_an_object() {
    // `["sales-fleet"]` must not read as `{"name": "sales-fleet"}`: a person's change of that fleet.
    let samples = std::fs::read_dir(events_dir()).map(|dir| dir.flatten().collect::<Vec<_>>()).unwrap_or_default();
    let calls: Vec<String> = samples
        .iter()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("cloudtrail-"))
        .collect();
    assert!(calls.len() >= 16, "{calls:?}");
    for name in &calls {
        let original = sample(name);
        assert!(parse(original.clone()).is_ok(), "{name}");
        let parameters = original["detail"]["requestParameters"].clone();
        let first = parameters.as_object().and_then(|p| p.values().next().cloned()).unwrap_or_default();
        for (field, bad) in [
            ("requestParameters", serde_json::json!([first.clone()])),
            ("requestParameters", serde_json::json!("sales-fleet")),
            ("requestParameters", serde_json::json!(7)),
            ("responseElements", serde_json::json!(["task-1"])),
            ("responseElements", serde_json::json!(true)),
            ("userIdentity", serde_json::json!(["arn:aws:iam::123456789012:user/alice"])),
            ("userIdentity", serde_json::json!(null)),
            ("userIdentity", serde_json::json!("alice")),
        ] {
            let mut event = original.clone();
            event["detail"][field] = bad.clone();
            let error = rejected(event);
            assert!(
                error.starts_with(&format!("invalid event: detail.{field}: invalid type")),
                "{name} {field}={bad}: {error}"
            );
        }
        // A nested struct the call reads, given positionally, is refused too.
        if let Some(key) = ["capacity", "computeCapacity"].into_iter().find(|key| parameters[*key].is_object()) {
            let mut event = original.clone();
            event["detail"]["requestParameters"][key] = serde_json::json!([12]);
            let error = rejected(event);
            assert!(error.contains(&format!("detail.requestParameters.{key}")), "{name}: {error}");
        }
    }
    // `null` request parameters are a call without any: refused only where the call needs them.
    let mut fleet = sample("cloudtrail-update-fleet.json");
    fleet["detail"]["requestParameters"] = serde_json::Value::Null;
    assert_eq!(rejected(fleet), "invalid event: detail.requestParameters: missing");
}

#[test]
fn eventbridge_schedulers_default_event_is_a_tick() {
    // A schedule with no input (template.yaml's): Scheduler's default event, whose detail is the string "{}".
    let default = sample("scheduled-tick-scheduler.json");
    assert_eq!(default["detail"], serde_json::json!("{}"));
    assert!(matches!(parse(default.clone()), Ok(Input::Tick(_))));
    // any other string is still refused, and so is the string from a rule (rules send the object)
    let mut other = default.clone();
    other["detail"] = serde_json::json!("{\"scale\": 1}");
    assert!(rejected(other).starts_with("invalid event: detail: invalid type: string"));
    let mut rule = sample("scheduled-tick-rule.json");
    rule["detail"] = serde_json::json!("{}");
    assert!(rejected(rule).starts_with("invalid event: detail: invalid type: string"));
}

#[test]
fn a_calls_account_is_the_account_its_record_was_delivered_to() {
    let Ok(Input::CloudTrail(event)) = parse(sample("cloudtrail-create-export-image-task.json")) else {
        panic!("not cloudtrail")
    };
    let mut call = event.detail;
    assert_eq!(call.account(), "123456789012");
    // a call by an AWS service has no caller account; the record's recipient names the resources' account
    call.user_identity = serde_json::json!({ "type": "AWSService", "invokedBy": "appstream.amazonaws.com" })
        .as_object()
        .cloned()
        .unwrap();
    call.recipient_account_id = Some("222233334444".into());
    assert_eq!(call.account(), "222233334444");
    // a person of another account acting here: the resources' account, not the caller's
    call.user_identity =
        serde_json::json!({ "type": "AssumedRole", "accountId": "999988887777" }).as_object().cloned().unwrap();
    assert_eq!(call.place().account, "222233334444");
    // neither: unknown
    call.recipient_account_id = None;
    call.user_identity = serde_json::Map::new();
    assert_eq!(call.account(), "000000000000");
}

#[test]
fn a_create_image_names_its_builder_by_image_builder_name_else_by_name() {
    let Ok(Input::CloudTrail(event)) = parse(sample("builder-scheduler/create-image.json")) else {
        panic!("not cloudtrail")
    };
    let mut call = event.detail;
    let with = |call: &mut CloudTrailCall, parameters: serde_json::Value| {
        call.request_parameters = parameters.as_object().cloned();
        call.api_call()
    };
    let create = |builder: &str, image: Option<&str>| {
        Ok(ApiCall::CreateImage { image_builder_name: builder.into(), image_name: image.map(str::to_owned) })
    };
    assert_eq!(
        with(&mut call, serde_json::json!({ "imageBuilderName": "b", "imageName": "i" })),
        create("b", Some("i"))
    );
    // beside the builder's name, `name` is the image's (it was a duplicate field, and the event refused)
    assert_eq!(with(&mut call, serde_json::json!({ "imageBuilderName": "b", "name": "i" })), create("b", Some("i")));
    assert_eq!(with(&mut call, serde_json::json!({ "name": "b" })), create("b", None));
    let missing = with(&mut call, serde_json::json!({ "imageName": "i" })).unwrap_err();
    assert_eq!(missing.path, "detail.requestParameters.imageBuilderName");
}
