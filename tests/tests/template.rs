//! `template.yaml` agrees with the code: each function's EventBridge rules are exactly those in its
//! `routing.rs`, and the ledger table has the key schema, index and TTL of `shared/src/ledger/keys.rs`.
//! It is also operable and least-privilege: one alarmed dead-letter queue per function, an Errors and a Throttles
//! alarm per function, and `violations` finds every policy statement that grants more than it must (the crafted
//! templates at the end show that it reports each kind of violation).

use autopilot_shared::events::Rule;
use autopilot_shared::ledger::keys;
use serde_yaml_ng::Value;

/// A template of the repository's root as text.
fn text_of(file: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(file)).unwrap()
}

/// The hub: `template.yaml`.
fn template() -> Value {
    serde_yaml_ng::from_str(&text_of("template.yaml"))
        .expect("template.yaml parses (long-form intrinsic functions only)")
}

/// The spoke every target account gets: `spoke.yaml`.
fn spoke() -> Value {
    serde_yaml_ng::from_str(&text_of("spoke.yaml")).expect("spoke.yaml parses (long-form intrinsic functions only)")
}

fn strings(value: &Value) -> Vec<String> {
    value.as_sequence().map(|s| s.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

/// Every function resource with the rules its code routes.
const FUNCTIONS: [(&str, &[Rule]); 5] = [
    ("PoolScalerFunction", &pool_scaler::routing::EVENT_RULES),
    ("BuilderSchedulerFunction", &builder_scheduler::routing::EVENT_RULES),
    ("ExportChaserFunction", &export_chaser::routing::EVENT_RULES),
    ("SoftwareSetRollerFunction", &softwareset_roller::routing::EVENT_RULES),
    ("RemediatorFunction", &remediator::routing::EVENT_RULES),
];

#[test]
fn every_functions_rules_match_its_routing_table() {
    let template = template();
    for (function, code_rules) in FUNCTIONS {
        let events = template["Resources"][function]["Properties"]["Events"].as_mapping().unwrap();
        let rules: Vec<(&str, &Value)> = events
            .iter()
            .filter(|(_, v)| v["Type"] == "EventBridgeRule")
            .map(|(k, v)| (k.as_str().unwrap(), v))
            .collect();
        assert_eq!(rules.len(), code_rules.len(), "{function}");
        for rule in code_rules {
            let (_, declared) = rules
                .iter()
                .find(|(name, _)| *name == rule.name)
                .unwrap_or_else(|| panic!("{} missing from template.yaml", rule.name));
            let pattern = &declared["Properties"]["Pattern"];
            assert_eq!(strings(&pattern["source"]), [rule.source], "{}", rule.name);
            assert_eq!(strings(&pattern["detail-type"]), [rule.detail_type], "{}", rule.name);
            assert_eq!(strings(&pattern["detail"]["eventName"]), rule.event_names, "{}", rule.name);
            assert_detail_conditions(&template, rule, pattern, rule.name);
            // our own commands arrive on the project bus, AWS events on the default bus
            let on_project_bus = declared["Properties"]["EventBusName"]["Ref"].as_str() == Some("EventBus");
            assert_eq!(on_project_bus, rule.source == autopilot_shared::events::AUTOPILOT_SOURCE, "{}", rule.name);
            assert!(declared["Properties"]["DeadLetterConfig"].is_mapping(), "{} needs a dead-letter queue", rule.name);
            assert!(declared["Properties"]["RetryPolicy"].is_mapping(), "{} needs an explicit retry policy", rule.name);
        }
        let tick = &events.get("Tick").unwrap_or_else(|| panic!("{function} has no schedule"))["Properties"];
        assert!(tick["RetryPolicy"].is_mapping() && tick["DeadLetterConfig"].is_mapping(), "{function} tick");
    }
}

/// `pattern`'s `detail` (in `template`) holds exactly the conditions of `rule` besides its event names, and a
/// CloudTrail pattern only successful calls.
#[track_caller]
fn assert_detail_conditions(template: &Value, rule: &Rule, pattern: &Value, place: &str) {
    for condition in rule.detail {
        let mut declared_value = &pattern["detail"];
        for segment in condition.path.split('.') {
            declared_value = &declared_value[segment];
        }
        match condition.is {
            autopilot_shared::events::Matcher::AnyOf(values) => {
                assert_eq!(strings(declared_value), values, "{place}: detail.{}", condition.path);
            }
            autopilot_shared::events::Matcher::Prefix(prefix) => {
                // the template takes the prefix from a parameter whose default is the code's
                let parameter = declared_value[0]["prefix"]["Ref"].as_str().unwrap_or_default();
                let default = template["Parameters"][parameter]["Default"].as_str();
                assert_eq!(default, Some(prefix), "{place}: detail.{} prefix", condition.path);
            }
        }
    }
    let declared_fields = pattern["detail"].as_mapping().map_or(0, |m| m.len());
    let code_fields = rule.detail.len()
        + usize::from(!rule.event_names.is_empty())
        + usize::from(rule.detail_type == autopilot_shared::events::CLOUDTRAIL_DETAIL_TYPE);
    assert_eq!(declared_fields, code_fields, "{place}: detail conditions in the template and the code");
    if rule.detail_type == autopilot_shared::events::CLOUDTRAIL_DETAIL_TYPE {
        // successful calls only, as `Rule::matches` says: a failed call is not bad input for the DLQ
        let only_successes: Value = serde_yaml_ng::from_str("[{ exists: false }]").unwrap();
        assert_eq!(pattern["detail"]["errorCode"], only_successes, "{place}: errorCode filter");
    }
}

#[test]
fn the_ledger_table_matches_the_key_schema_in_code() {
    let template = template();
    let table = &template["Resources"]["LedgerTable"]["Properties"];
    let key = |schema: &Value, kind: &str| {
        schema
            .as_sequence()
            .unwrap()
            .iter()
            .find(|k| k["KeyType"] == kind)
            .map(|k| k["AttributeName"].as_str().unwrap().to_owned())
    };
    assert_eq!(key(&table["KeySchema"], "HASH").as_deref(), Some(keys::PK));
    assert_eq!(key(&table["KeySchema"], "RANGE").as_deref(), Some(keys::SK));
    let gsi = &table["GlobalSecondaryIndexes"][0];
    assert_eq!(gsi["IndexName"].as_str(), Some(keys::GSI1));
    assert_eq!(key(&gsi["KeySchema"], "HASH").as_deref(), Some(keys::GSI1_PK));
    assert_eq!(key(&gsi["KeySchema"], "RANGE").as_deref(), Some(keys::GSI1_SK));
    assert_eq!(table["TimeToLiveSpecification"]["AttributeName"].as_str(), Some(keys::TTL));
    assert_eq!(table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(), Some(true));
    assert_eq!(table["SSESpecification"]["SSEEnabled"].as_bool(), Some(true));
}

// ---------------------------------------------------------------------------------------------------------------
// Dead-letter queues and alarms
// ---------------------------------------------------------------------------------------------------------------

fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap()
}

fn resources_of_type<'a>(template: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, resource)| resource["Type"] == kind)
        .map(|(name, resource)| (name.as_str().unwrap(), resource))
        .collect()
}

#[test]
fn each_function_has_one_dead_letter_queue_for_its_schedule_rules_and_failures() {
    let template = template();
    for (function, code_rules) in FUNCTIONS {
        let queue = format!("{}DeadLetterQueue", function.trim_end_matches("Function"));
        assert_eq!(template["Resources"][&queue]["Type"], "AWS::SQS::Queue", "{queue}");
        let queue_arn = yaml(&format!("{{ Fn::GetAtt: [{queue}, Arn] }}"));
        let properties = &template["Resources"][function]["Properties"];
        assert_eq!(
            properties["EventInvokeConfig"]["DestinationConfig"]["OnFailure"],
            yaml(&format!("{{ Type: SQS, Destination: {{ Fn::GetAtt: [{queue}, Arn] }} }}")),
            "{function}: on-failure destination"
        );
        // no event may fall back to a queue SAM would generate (unalarmed, 4 days' retention)
        for (event, declared) in properties["Events"].as_mapping().unwrap() {
            assert_eq!(
                declared["Properties"]["DeadLetterConfig"],
                yaml(&format!("{{ Arn: {{ Fn::GetAtt: [{queue}, Arn] }} }}")),
                "{function} {event:?}"
            );
        }
        // EventBridge sends with its service principal: the queue policy must name exactly this function's rules,
        // by the logical ids SAM gives them (<function><event>)
        let policies: Vec<&Value> = resources_of_type(&template, "AWS::SQS::QueuePolicy")
            .into_iter()
            .filter(|(_, policy)| policy["Properties"]["Queues"] == yaml(&format!("[{{ Ref: {queue} }}]")))
            .map(|(_, policy)| policy)
            .collect();
        assert_eq!(policies.len(), 1, "{queue}: one queue policy");
        let statement = &policies[0]["Properties"]["PolicyDocument"]["Statement"][0];
        assert_eq!(statement["Principal"]["Service"], "events.amazonaws.com", "{queue}");
        assert_eq!(statement["Action"], "sqs:SendMessage", "{queue}");
        assert_eq!(statement["Resource"], queue_arn, "{queue}");
        let mut allowed: Vec<String> =
            each(&statement["Condition"]["ArnEquals"]["aws:SourceArn"]).into_iter().map(resource_text).collect();
        let mut rules: Vec<String> =
            code_rules.iter().map(|rule| format!("GetAtt:{function}{}.Arn", rule.name)).collect();
        allowed.sort();
        rules.sort();
        assert_eq!(allowed, rules, "{queue}: the rules that may send");
    }
}

#[test]
fn every_queue_and_function_is_alarmed_and_alarms_notify_only_when_an_email_is_given() {
    let template = template();
    let alarms = resources_of_type(&template, "AWS::CloudWatch::Alarm");
    let alarmed = |namespace: &str, metric: &str, dimension: &Value| {
        alarms.iter().any(|(_, alarm)| {
            let properties = &alarm["Properties"];
            properties["Namespace"] == namespace
                && properties["MetricName"] == metric
                && properties["Dimensions"][0]["Value"] == *dimension
        })
    };
    for (queue, _) in resources_of_type(&template, "AWS::SQS::Queue") {
        let name = yaml(&format!("{{ Fn::GetAtt: [{queue}, QueueName] }}"));
        assert!(alarmed("AWS/SQS", "ApproximateNumberOfMessagesVisible", &name), "{queue} has no alarm");
    }
    for (function, _) in FUNCTIONS {
        let name = yaml(&format!("{{ Ref: {function} }}"));
        assert!(alarmed("AWS/Lambda", "Errors", &name), "{function} has no Errors alarm");
        assert!(alarmed("AWS/Lambda", "Throttles", &name), "{function} has no Throttles alarm");
    }
    assert_eq!(alarms.len(), 3 * FUNCTIONS.len());
    let notify = yaml("{ Fn::If: [HasAlarmEmail, [{ Ref: AlarmTopic }], { Ref: AWS::NoValue }] }");
    for (name, alarm) in &alarms {
        let properties = &alarm["Properties"];
        assert_eq!(properties["AlarmActions"], notify, "{name}");
        assert_eq!(properties["OKActions"], notify, "{name}");
        assert_eq!(properties["ComparisonOperator"], "GreaterThanThreshold", "{name}");
        assert_eq!(properties["Threshold"].as_f64(), Some(0.0), "{name}");
        assert_eq!(properties["TreatMissingData"], "notBreaching", "{name}");
        assert!(properties["AlarmName"]["Fn::Sub"].as_str().unwrap().starts_with("${AWS::StackName} "), "{name}");
        assert!(properties["AlarmDescription"]["Fn::Sub"].as_str().unwrap().len() > 100, "{name}: say what to do");
    }
    assert_eq!(template["Parameters"]["AlarmEmail"]["Default"], "");
    for topic_resource in ["AlarmTopic", "AlarmTopicPolicy", "AlarmEmailSubscription"] {
        assert_eq!(template["Resources"][topic_resource]["Condition"], "HasAlarmEmail", "{topic_resource}");
    }
    assert_eq!(template["Outputs"]["AlarmTopicArn"]["Condition"], "HasAlarmEmail");
}

// ---------------------------------------------------------------------------------------------------------------
// Least privilege: every policy statement in the template
// ---------------------------------------------------------------------------------------------------------------

/// What a mutating action (or a read of our own data, or of the organization) may be granted on.
#[derive(Clone, Copy)]
enum Scope {
    /// ARNs of one resource type: `arn:${AWS::Partition}:<service>:…:<type>/…`.
    Arn(&'static str, &'static str),
    /// The ledger table (`GetAtt LedgerTable.Arn`) or its indexes (`${LedgerTable.Arn}/index/…`).
    Ledger,
    /// The project event bus: `GetAtt EventBus.Arn` in the hub, the hub's (`Ref HubEventBusArn`) in a spoke.
    Bus,
    /// The spoke role of any account, by its name: `arn:${AWS::Partition}:iam::*:role/${SpokeRoleName}`, or its
    /// read-only twin (`${SpokeRoleName}Reader`, which the operator policy may assume).
    SpokeRole,
    /// The organization's resources of these types: `arn:${AWS::Partition}:organizations::*:<type>/${OrganizationId}/…`.
    Organization(&'static [&'static str]),
}

/// Every mutating action the functions are granted, with the only resources it may be granted on (and the reads
/// of the organization, which can be scoped to it). An action that is neither here, nor a read (`Describe*`,
/// `List*`, `Get*`), nor one without resource types is a violation.
const SCOPES: [(&str, Scope); 27] = [
    ("workspaces:UpdateWorkspacesPool", Scope::Arn("workspaces", "workspacespool")),
    ("workspaces:StartWorkspacesPool", Scope::Arn("workspaces", "workspacespool")),
    ("workspaces:StopWorkspacesPool", Scope::Arn("workspaces", "workspacespool")),
    ("workspaces:RebootWorkspaces", Scope::Arn("workspaces", "workspace")),
    ("workspaces:RebuildWorkspaces", Scope::Arn("workspaces", "workspace")),
    ("appstream:UpdateFleet", Scope::Arn("appstream", "fleet")),
    ("appstream:StartFleet", Scope::Arn("appstream", "fleet")),
    ("appstream:StopFleet", Scope::Arn("appstream", "fleet")),
    ("appstream:StartImageBuilder", Scope::Arn("appstream", "image-builder")),
    ("appstream:StopImageBuilder", Scope::Arn("appstream", "image-builder")),
    ("thinclient:UpdateEnvironment", Scope::Arn("thinclient", "environment")),
    ("thinclient:UpdateSoftwareSet", Scope::Arn("thinclient", "softwareset")),
    ("thinclient:GetDevice", Scope::Arn("thinclient", "device")),
    ("dynamodb:GetItem", Scope::Ledger),
    ("dynamodb:BatchGetItem", Scope::Ledger),
    ("dynamodb:Scan", Scope::Ledger),
    ("dynamodb:PutItem", Scope::Ledger),
    ("dynamodb:UpdateItem", Scope::Ledger),
    ("dynamodb:DeleteItem", Scope::Ledger),
    ("dynamodb:BatchWriteItem", Scope::Ledger),
    ("dynamodb:Query", Scope::Ledger),
    ("dynamodb:ConditionCheckItem", Scope::Ledger),
    ("events:PutEvents", Scope::Bus),
    ("sts:AssumeRole", Scope::SpokeRole),
    // the Service Authorization Reference: a parent (an OU or the root) for these two, an account for DescribeAccount
    ("organizations:ListAccountsForParent", Scope::Organization(&["ou", "root"])),
    ("organizations:ListChildren", Scope::Organization(&["ou", "root"])),
    ("organizations:DescribeAccount", Scope::Organization(&["account"])),
];

/// The action's resource types in AWS's Service Authorization Reference (`sim/src/iam/sar.json`), spelt as AWS
/// spells the action; `None` when the reference has no such action.
fn resource_types(action: &str) -> Option<(String, Vec<String>)> {
    let reference = autopilot_sim::iam::request::reference().unwrap();
    let (service, name) = action.split_once(':')?;
    reference.action(service, name).map(|(spelt, types)| (spelt.to_owned(), types.to_vec()))
}

/// Services whose resources must never be terminated or deleted by this project.
const EUC_SERVICES: [&str; 3] = ["workspaces", "appstream", "thinclient"];

#[derive(Clone, Copy, PartialEq)]
enum PolicyKind {
    /// Grants a principal (a role): every statement's resources are checked.
    Identity,
    /// Attached to a resource (queue, topic, key, bus): actions and principals are checked.
    Resource,
}

/// The values of a field that may be one value or a list of them, with `Fn::If` branches expanded and
/// `Ref: AWS::NoValue` dropped.
fn each(value: &Value) -> Vec<&Value> {
    match value {
        Value::Null => Vec::new(),
        Value::Sequence(items) => items.iter().flat_map(each).collect(),
        Value::Mapping(_) if value["Ref"] == "AWS::NoValue" => Vec::new(),
        Value::Mapping(_) if value["Fn::If"].is_sequence() => {
            value["Fn::If"].as_sequence().unwrap().iter().skip(1).flat_map(each).collect()
        }
        other => vec![other],
    }
}

/// A policy resource as text: a literal ARN, the template of a `Fn::Sub`, `GetAtt:<id>.<attribute>`,
/// `Ref:<id>`, or `?` for anything this checker cannot read.
fn resource_text(value: &Value) -> String {
    if let Some(text) = value.as_str() {
        return text.to_owned();
    }
    let sub = &value["Fn::Sub"];
    if let Some(text) = sub.as_str().or_else(|| sub[0].as_str()) {
        return text.to_owned();
    }
    let get_att = &value["Fn::GetAtt"];
    if let (Some(id), Some(attribute)) = (get_att[0].as_str(), get_att[1].as_str()) {
        return format!("GetAtt:{id}.{attribute}");
    }
    if let Some(text) = get_att.as_str() {
        return format!("GetAtt:{text}");
    }
    if let Some(id) = value["Ref"].as_str() {
        return format!("Ref:{id}");
    }
    "?".to_owned()
}

fn in_scope(scope: Scope, resource: &str) -> bool {
    match scope {
        Scope::Arn(service, kind) => {
            resource.starts_with(&format!("arn:${{AWS::Partition}}:{service}:"))
                && resource.contains(&format!(":{kind}/"))
        }
        Scope::Ledger => resource == "GetAtt:LedgerTable.Arn" || resource.starts_with("${LedgerTable.Arn}/index/"),
        Scope::Bus => resource == "GetAtt:EventBus.Arn" || resource == "Ref:HubEventBusArn",
        Scope::SpokeRole => {
            resource == "arn:${AWS::Partition}:iam::*:role/${SpokeRoleName}"
                || resource == "arn:${AWS::Partition}:iam::*:role/${SpokeRoleName}Reader"
        }
        Scope::Organization(kinds) => kinds.iter().any(|kind| {
            resource.starts_with(&format!("arn:${{AWS::Partition}}:organizations::*:{kind}/${{OrganizationId}}/"))
        }),
    }
}

/// A resource policy statement open to every principal is bounded by `aws:PrincipalOrgID` (one organization).
fn bounded_to_an_organization(statement: &Value) -> bool {
    let organization = &statement["Condition"]["StringEquals"]["aws:PrincipalOrgID"];
    organization.as_str().is_some_and(|id| id.starts_with("o-") && !id.contains('*')) || organization["Ref"].is_string()
}

fn is_read(operation: &str) -> bool {
    ["describe", "list", "get"].iter().any(|prefix| operation.to_ascii_lowercase().starts_with(prefix))
}

/// Every violation of least privilege in one statement (`Fn::If` already expanded).
fn statement_violations(kind: PolicyKind, statement: &Value) -> Vec<String> {
    let mut found = Vec::new();
    match statement["Effect"].as_str() {
        // a Deny only takes away; wildcards are welcome there
        Some("Deny") => return found,
        Some("Allow") => {}
        other => return vec![format!("Effect must be Allow or Deny, not {other:?}")],
    }
    for field in ["NotAction", "NotResource", "NotPrincipal"] {
        if !statement[field].is_null() {
            found.push(format!("{field} in an Allow grants everything else"));
        }
    }
    if kind == PolicyKind::Resource {
        let principal = &statement["Principal"];
        if (principal == "*"
            || principal["AWS"] == "*"
            || principal["AWS"].as_sequence().is_some_and(|p| p.contains(&"*".into())))
            && !bounded_to_an_organization(statement)
        {
            found.push("Principal * grants everyone".to_owned());
        }
    }
    let resources: Vec<String> = each(&statement["Resource"]).into_iter().map(resource_text).collect();
    for action in each(&statement["Action"]) {
        let Some(action) = action.as_str() else {
            found.push(format!("action {action:?} is not a plain string"));
            continue;
        };
        let (service, operation) = action.split_once(':').unwrap_or(("", action));
        if action.contains('*') {
            found.push(format!("wildcard action {action}"));
            continue;
        }
        let lowercase = operation.to_ascii_lowercase();
        if EUC_SERVICES.iter().any(|euc| service.eq_ignore_ascii_case(euc))
            && (lowercase.starts_with("terminate") || lowercase.starts_with("delete"))
        {
            found.push(format!("{action} destroys end-user computing resources"));
        }
        if kind == PolicyKind::Resource {
            continue;
        }
        if action.eq_ignore_ascii_case("iam:PassRole") {
            let scoped = statement["Resource"] == yaml("{ Ref: ExportRoleArns }");
            let condition = &statement["Condition"]["StringEquals"]["iam:PassedToService"];
            if !scoped || condition.as_str().is_none_or(|service| service.contains('*')) {
                found.push(format!(
                    "{action} must be granted on Ref ExportRoleArns only, with an iam:PassedToService condition"
                ));
            }
            continue;
        }
        if resources.is_empty() {
            found.push(format!("{action} has no Resource"));
        }
        let Some((spelt, types)) = resource_types(action) else {
            found.push(format!("{action} is not an action of AWS's Service Authorization Reference"));
            continue;
        };
        if spelt != action {
            found.push(format!("{action} is spelt {spelt} by AWS"));
        }
        // An action without resource types is authorised on "*" only: a statement scoped to ARNs never allows it.
        if types.is_empty() {
            for resource in resources.iter().filter(|resource| resource.as_str() != "*") {
                found.push(format!("{action} on {resource}: AWS authorises it on \"*\" only, so this never allows it"));
            }
            continue;
        }
        if let Some((_, scope)) = SCOPES.iter().find(|(scoped, _)| scoped.eq_ignore_ascii_case(action)) {
            for resource in resources.iter().filter(|resource| !in_scope(*scope, resource)) {
                found.push(format!("{action} on {resource}: not a resource of its type"));
            }
        } else if is_read(operation) {
            // `Resource: "*"` is allowed (AWS defines no resource type, or it only reads)
        } else {
            found.push(format!("{action} mutates but is not in the test's table of scoped actions"));
        }
    }
    found
}

/// Every violation of least privilege in every policy of `template`: SAM function policies (`Globals` too),
/// IAM roles (their trust policies too), policies and managed policies, and the resource policies of queues, topics, keys, buses, buckets and
/// Lambda permissions. Each entry names where it is.
fn violations(template: &Value) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut documents: Vec<(String, PolicyKind, &Value)> = Vec::new();
    let globals = &template["Globals"]["Function"]["Policies"];
    documents.extend(sam_policy_documents("Globals.Function", globals, &mut found));
    for (name, resource) in template["Resources"].as_mapping().into_iter().flatten() {
        let name = name.as_str().unwrap_or("?");
        let kind = resource["Type"].as_str().unwrap_or_default();
        let properties = &resource["Properties"];
        if kind.starts_with("AWS::Serverless::") {
            documents.extend(sam_policy_documents(name, &properties["Policies"], &mut found));
        }
        match kind {
            "AWS::IAM::Role" | "AWS::IAM::User" | "AWS::IAM::Group" => {
                // a role's trust policy is a resource policy: who may assume it
                if !properties["AssumeRolePolicyDocument"].is_null() {
                    documents.push((
                        format!("{name}.AssumeRolePolicyDocument"),
                        PolicyKind::Resource,
                        &properties["AssumeRolePolicyDocument"],
                    ));
                }
                for (index, policy) in each(&properties["Policies"]).into_iter().enumerate() {
                    documents.push((
                        format!("{name}.Policies[{index}]"),
                        PolicyKind::Identity,
                        &policy["PolicyDocument"],
                    ));
                }
                if !properties["ManagedPolicyArns"].is_null() {
                    found.push(format!("{name}: managed policies cannot be checked"));
                }
            }
            "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" | "AWS::IAM::RolePolicy" => {
                documents.push((name.to_owned(), PolicyKind::Identity, &properties["PolicyDocument"]));
            }
            "AWS::SQS::QueuePolicy" | "AWS::SNS::TopicPolicy" | "AWS::S3::BucketPolicy" => {
                documents.push((name.to_owned(), PolicyKind::Resource, &properties["PolicyDocument"]));
            }
            "AWS::KMS::Key" => documents.push((name.to_owned(), PolicyKind::Resource, &properties["KeyPolicy"])),
            // one statement each; a Lambda permission spells its fields as properties
            "AWS::Events::EventBusPolicy" => {
                for violation in statement_violations(PolicyKind::Resource, &properties["Statement"]) {
                    found.push(format!("{name}: {violation}"));
                }
            }
            "AWS::Lambda::Permission" => {
                let mut statement = serde_yaml_ng::Mapping::new();
                statement.insert("Effect".into(), "Allow".into());
                statement.insert("Action".into(), properties["Action"].clone());
                statement.insert("Principal".into(), properties["Principal"].clone());
                for violation in statement_violations(PolicyKind::Resource, &Value::Mapping(statement)) {
                    found.push(format!("{name}: {violation}"));
                }
            }
            _ => {}
        }
    }
    for (place, kind, document) in documents {
        for (index, statement) in each(&document["Statement"]).into_iter().enumerate() {
            let sid = statement["Sid"].as_str().map_or_else(|| format!("#{index}"), str::to_owned);
            for violation in statement_violations(kind, statement) {
                found.push(format!("{place} {sid}: {violation}"));
            }
        }
    }
    found
}

/// The inline policy documents of a SAM resource's `Policies`; a managed policy or a SAM policy template cannot be
/// read here and is reported.
fn sam_policy_documents<'a>(
    place: &str,
    policies: &'a Value,
    found: &mut Vec<String>,
) -> Vec<(String, PolicyKind, &'a Value)> {
    let mut documents = Vec::new();
    for (index, policy) in each(policies).into_iter().enumerate() {
        if policy["Statement"].is_null() {
            found.push(format!("{place}.Policies[{index}]: only inline statements can be checked, not {policy:?}"));
        } else {
            documents.push((format!("{place}.Policies[{index}]"), PolicyKind::Identity, policy));
        }
    }
    documents
}

#[test]
fn every_policy_in_the_template_is_least_privilege() {
    let template = template();
    let found = violations(&template);
    assert!(found.is_empty(), "least-privilege violations in template.yaml:\n{}", found.join("\n"));
    // the dry-run switch defaults to on for a first install
    assert_eq!(template["Parameters"]["DryRun"]["Default"].as_str(), Some("true"));
}

#[test]
fn every_policy_in_the_spoke_is_least_privilege() {
    let found = violations(&spoke());
    assert!(found.is_empty(), "least-privilege violations in spoke.yaml:\n{}", found.join("\n"));
}

// Each crafted template below holds one violation; the checker must report it.

/// A template with one resource (`properties` is a YAML flow mapping).
fn template_with(name: &str, kind: &str, properties: &str) -> Value {
    yaml(&format!("{{ Resources: {{ {name}: {{ Type: {kind}, Properties: {properties} }} }} }}"))
}

/// A template with one SAM function whose policy holds `statement` (a YAML flow mapping).
fn function_with(statement: &str) -> Value {
    template_with("F", "AWS::Serverless::Function", &format!("{{ Policies: [{{ Statement: [{statement}] }}] }}"))
}

#[track_caller]
fn assert_reported(template: &Value, expected: &str) {
    let found = violations(template);
    assert!(found.iter().any(|violation| violation.contains(expected)), "expected {expected:?} in {found:#?}");
}

const POOLS: &str = "{ Fn::Sub: 'arn:${AWS::Partition}:workspaces:${AWS::Region}:${AWS::AccountId}:workspacespool/*' }";

#[test]
fn the_checker_accepts_a_scoped_mutation_and_reads_on_any_resource() {
    let scoped =
        function_with(&format!("{{ Effect: Allow, Action: workspaces:UpdateWorkspacesPool, Resource: {POOLS} }}"));
    assert_eq!(violations(&scoped), Vec::<String>::new());
    let reads = "[workspaces:DescribeWorkspacesPools, appstream:ListTagsForResource, thinclient:GetEnvironment]";
    let reads = function_with(&format!("{{ Effect: Allow, Action: {reads}, Resource: '*' }}"));
    assert_eq!(violations(&reads), Vec::<String>::new());
}

#[test]
fn the_checker_reports_wildcard_actions() {
    for action in ["'*'", "'workspaces:*'", "'appstream:Describe*'", "'thinclient:Update*'"] {
        let template = function_with(&format!("{{ Effect: Allow, Action: {action}, Resource: {POOLS} }}"));
        assert_reported(&template, "wildcard action");
    }
}

#[test]
fn the_checker_reports_a_mutation_on_every_resource() {
    let template = function_with("{ Effect: Allow, Action: workspaces:UpdateWorkspacesPool, Resource: '*' }");
    assert_reported(&template, "workspaces:UpdateWorkspacesPool on *: not a resource of its type");
}

#[test]
fn the_checker_reports_a_mutation_on_another_resource_type() {
    let builders = "{ Fn::Sub: 'arn:${AWS::Partition}:appstream:${AWS::Region}:${AWS::AccountId}:image-builder/*' }";
    let template = function_with(&format!("{{ Effect: Allow, Action: appstream:StopFleet, Resource: {builders} }}"));
    assert_reported(&template, "appstream:StopFleet on arn:${AWS::Partition}:appstream");
    // a near miss: a pool is not a WorkSpace
    let template =
        function_with(&format!("{{ Effect: Allow, Action: workspaces:RebootWorkspaces, Resource: {POOLS} }}"));
    assert_reported(&template, "workspaces:RebootWorkspaces on");
}

#[test]
fn the_checker_reports_a_mutation_it_has_no_scope_for() {
    let workspaces = "{ Fn::Sub: 'arn:${AWS::Partition}:workspaces:${AWS::Region}:${AWS::AccountId}:workspace/*' }";
    let template =
        function_with(&format!("{{ Effect: Allow, Action: workspaces:ModifyWorkspaceState, Resource: {workspaces} }}"));
    assert_reported(&template, "workspaces:ModifyWorkspaceState mutates but is not in the test's table");
}

#[test]
fn the_checker_reports_actions_aws_does_not_define_and_scopes_that_never_match() {
    // a typo is an action no role could ever use
    let template = function_with("{ Effect: Allow, Action: appstream:ListTagForResource, Resource: '*' }");
    assert_reported(
        &template,
        "appstream:ListTagForResource is not an action of AWS's Service Authorization Reference",
    );
    // an action without resource types scoped to ARNs is never allowed (AWS authorises it on "*")
    let builders = "{ Fn::Sub: 'arn:${AWS::Partition}:appstream:${AWS::Region}:${AWS::AccountId}:image-builder/*' }";
    let template =
        function_with(&format!("{{ Effect: Allow, Action: appstream:ListTagsForResource, Resource: {builders} }}"));
    assert_reported(&template, "appstream:ListTagsForResource on arn:${AWS::Partition}:appstream");
}

#[test]
fn the_checker_reports_ledger_and_bus_actions_on_other_tables_and_buses() {
    let tables = "{ Fn::Sub: 'arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/*' }";
    let template = function_with(&format!("{{ Effect: Allow, Action: dynamodb:PutItem, Resource: {tables} }}"));
    assert_reported(&template, "dynamodb:PutItem on arn:");
    let default_bus = "{ Fn::Sub: 'arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default' }";
    let template = function_with(&format!("{{ Effect: Allow, Action: events:PutEvents, Resource: {default_bus} }}"));
    assert_reported(&template, "events:PutEvents on arn:");
}

#[test]
fn the_checker_reports_an_unscoped_or_unconditioned_pass_role() {
    let condition = "Condition: { StringEquals: { iam:PassedToService: appstream.amazonaws.com } }";
    let template = function_with(&format!("{{ Effect: Allow, Action: iam:PassRole, Resource: '*', {condition} }}"));
    assert_reported(&template, "iam:PassRole must be granted on Ref ExportRoleArns only");
    let template = function_with("{ Effect: Allow, Action: iam:PassRole, Resource: { Ref: ExportRoleArns } }");
    assert_reported(&template, "iam:PassRole must be granted on Ref ExportRoleArns only");
}

#[test]
fn the_checker_reports_terminate_and_delete_on_euc_services() {
    let workspaces = "{ Fn::Sub: 'arn:${AWS::Partition}:workspaces:${AWS::Region}:${AWS::AccountId}:workspace/*' }";
    for action in ["workspaces:TerminateWorkspaces", "workspaces:terminateworkspaces", "thinclient:DeleteEnvironment"] {
        let template = function_with(&format!("{{ Effect: Allow, Action: {action}, Resource: {workspaces} }}"));
        assert_reported(&template, &format!("{action} destroys end-user computing resources"));
    }
    // in a plain IAM role too
    let statement = "{ Effect: Allow, Action: appstream:DeleteFleet, Resource: '*' }";
    let role = template_with(
        "R",
        "AWS::IAM::Role",
        &format!("{{ Policies: [{{ PolicyName: p, PolicyDocument: {{ Statement: [{statement}] }} }}] }}"),
    );
    assert_reported(&role, "R.Policies[0] #0: appstream:DeleteFleet destroys");
}

#[test]
fn the_checker_reads_both_branches_of_a_condition() {
    let good = format!("{{ Effect: Allow, Action: workspaces:UpdateWorkspacesPool, Resource: {POOLS} }}");
    let bad = "{ Effect: Allow, Action: 'events:*', Resource: '*' }";
    assert_reported(&function_with(&format!("{{ Fn::If: [C, {good}, {bad}] }}")), "wildcard action events:*");
    assert_reported(&function_with(&format!("{{ Fn::If: [C, {bad}, {{ Ref: AWS::NoValue }}] }}")), "wildcard action");
}

#[test]
fn the_checker_reports_not_action_and_policies_it_cannot_read() {
    let template = function_with("{ Effect: Allow, NotAction: workspaces:TerminateWorkspaces, Resource: '*' }");
    assert_reported(&template, "NotAction in an Allow");
    for policy in ["AmazonWorkSpacesAdmin", "{ SQSSendMessagePolicy: { QueueName: q } }"] {
        let template = template_with("F", "AWS::Serverless::Function", &format!("{{ Policies: [{policy}] }}"));
        assert_reported(&template, "F.Policies[0]: only inline statements can be checked");
    }
    let globals = yaml("{ Globals: { Function: { Policies: [AWSLambdaExecute] } }, Resources: {} }");
    assert_reported(&globals, "Globals.Function.Policies[0]");
    let managed = "{ ManagedPolicyArns: ['arn:aws:iam::aws:policy/AdministratorAccess'] }";
    assert_reported(&template_with("R", "AWS::IAM::Role", managed), "R: managed policies cannot be checked");
}

#[test]
fn the_checker_reads_standalone_and_resource_policies() {
    let statement = "{ Effect: Allow, Action: 'dynamodb:*', Resource: { Fn::GetAtt: [LedgerTable, Arn] } }";
    let standalone =
        template_with("P", "AWS::IAM::ManagedPolicy", &format!("{{ PolicyDocument: {{ Statement: {statement} }} }}"));
    assert_reported(&standalone, "P #0: wildcard action dynamodb:*");
    let statement = "{ Effect: Allow, Principal: { Service: events.amazonaws.com }, Action: 'sqs:*', Resource: '*' }";
    let queue =
        template_with("Q", "AWS::SQS::QueuePolicy", &format!("{{ PolicyDocument: {{ Statement: [{statement}] }} }}"));
    assert_reported(&queue, "Q #0: wildcard action sqs:*");
    let statement = "{ Sid: Open, Effect: Allow, Principal: { AWS: '*' }, Action: sns:Publish, Resource: '*' }";
    let topic =
        template_with("T", "AWS::SNS::TopicPolicy", &format!("{{ PolicyDocument: {{ Statement: [{statement}] }} }}"));
    assert_reported(&topic, "T Open: Principal * grants everyone");
    let permission = "{ Action: 'lambda:*', Principal: events.amazonaws.com, FunctionName: f }";
    assert_reported(&template_with("L", "AWS::Lambda::Permission", permission), "L: wildcard action lambda:*");
}

#[test]
fn the_checker_reports_assume_role_beyond_the_spoke_role_and_organization_reads_beyond_the_organization() {
    let spoke_role = "{ Fn::Sub: 'arn:${AWS::Partition}:iam::*:role/${SpokeRoleName}' }";
    let assume =
        |resource: &str| function_with(&format!("{{ Effect: Allow, Action: sts:AssumeRole, Resource: {resource} }}"));
    assert_eq!(violations(&assume(spoke_role)), Vec::<String>::new());
    for resource in [
        "'*'",
        "{ Fn::Sub: 'arn:${AWS::Partition}:iam::*:role/*' }",
        "{ Fn::Sub: 'arn:${AWS::Partition}:iam::*:role/${SpokeRoleName}*' }",
    ] {
        assert_reported(&assume(resource), "sts:AssumeRole on");
    }
    // a read of the organization is scoped to it, by the resource type AWS authorises it on
    let ous = "{ Fn::Sub: 'arn:${AWS::Partition}:organizations::*:ou/${OrganizationId}/*' }";
    let list =
        function_with(&format!("{{ Effect: Allow, Action: organizations:ListAccountsForParent, Resource: {ous} }}"));
    assert_eq!(violations(&list), Vec::<String>::new());
    let everywhere = function_with("{ Effect: Allow, Action: organizations:ListChildren, Resource: '*' }");
    assert_reported(&everywhere, "organizations:ListChildren on *: not a resource of its type");
    let wrong_type =
        function_with(&format!("{{ Effect: Allow, Action: organizations:DescribeAccount, Resource: {ous} }}"));
    assert_reported(&wrong_type, "organizations:DescribeAccount on arn:${AWS::Partition}:organizations::*:ou/");
}

#[test]
fn the_checker_reads_trust_policies_and_admits_everyone_only_within_an_organization() {
    let trust = "{ Statement: [{ Effect: Allow, Principal: { AWS: '*' }, Action: sts:AssumeRole }] }";
    let role = template_with("R", "AWS::IAM::Role", &format!("{{ AssumeRolePolicyDocument: {trust} }}"));
    assert_reported(&role, "R.AssumeRolePolicyDocument #0: Principal * grants everyone");
    let bus = |condition: &str| {
        let statement = format!(
            "{{ Effect: Allow, Principal: '*', Action: events:PutEvents, Resource: {{ Fn::GetAtt: [EventBus, Arn] }}{condition} }}"
        );
        template_with("B", "AWS::Events::EventBusPolicy", &format!("{{ Statement: {statement} }}"))
    };
    let organization = ", Condition: { StringEquals: { aws:PrincipalOrgID: { Ref: OrganizationId } } }";
    assert_eq!(violations(&bus(organization)), Vec::<String>::new());
    assert_reported(&bus(""), "B: Principal * grants everyone");
    assert_reported(&bus(", Condition: { StringEquals: { aws:PrincipalOrgID: 'o-*' } }"), "B: Principal *");
    assert_reported(
        &bus(", Condition: { StringLike: { aws:PrincipalOrgID: { Ref: OrganizationId } } }"),
        "B: Principal *",
    );
    // a spoke puts events on the hub's bus only
    let other = function_with("{ Effect: Allow, Action: events:PutEvents, Resource: { Ref: SomeBusArn } }");
    assert_reported(&other, "events:PutEvents on Ref:SomeBusArn: not a resource of its type");
}

#[path = "template/spoke.rs"]
mod spoke;

/// Two stacks (a test one beside production) can share an account and region: no schedule has a fixed name (SAM
/// would name each after its logical id, the same in both), and the functions' reserved concurrency is the
/// stack's parameter, for a fan-out to many shards.
#[test]
fn schedules_have_no_fixed_name_and_concurrency_is_a_parameter() {
    let template = template();
    assert_eq!(template["Parameters"]["FunctionConcurrency"]["Default"], yaml("2"));
    for (function, _) in FUNCTIONS {
        let properties = &template["Resources"][function]["Properties"];
        assert_eq!(properties["ReservedConcurrentExecutions"], yaml("{ Ref: FunctionConcurrency }"), "{function}");
        let tick = &properties["Events"]["Tick"];
        assert_eq!(tick["Type"], "ScheduleV2", "{function}");
        assert_eq!(tick["Properties"]["OmitName"], yaml("true"), "{function}");
        assert!(tick["Properties"]["Name"].is_null(), "{function}");
    }
}
