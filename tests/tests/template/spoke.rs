//! The spoke (`spoke.yaml`): what the hub's roles may do in a target account, who may, and the events it
//! forwards — beside the hub's checks in `template.rs`, whose helpers it uses.

use super::*;
use autopilot_sim::iam::policy::{self as iam, Case, Context, Decision, PolicyDocument};
use autopilot_sim::iam::template::{Stack, StackSettings};
use serde_json::Value as Json;

const HUB_ACCOUNT: &str = "111111111111";
const SPOKE_ACCOUNT: &str = "222222222222";
const HUB_BUS: &str = "arn:aws:events:eu-west-1:111111111111:event-bus/euc-autopilot-euc-autopilot";
const EXPORT_ROLE: &str = "arn:aws:iam::222222222222:role/euc-export";
/// The regions the test's spoke stacks are deployed to (parameter `Regions`): the first creates the role.
const REGIONS: [&str; 2] = ["eu-west-1", "eu-central-1"];
/// The services of the estate: what the spoke role is for.
const ESTATE_SERVICES: [&str; 5] = ["workspaces", "appstream", "thinclient", "application-autoscaling", "iam"];

/// `file` resolved as CloudFormation deploys it in the spoke account and `region`.
fn deployed(file: &str, stack_name: &str, region: &str, parameters: &[(&str, &str)]) -> Stack {
    let settings = StackSettings {
        stack_name: stack_name.into(),
        partition: "aws".into(),
        account: SPOKE_ACCOUNT.into(),
        region: region.into(),
        parameters: parameters.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        physical_names: std::collections::BTreeMap::new(),
    };
    Stack::new(&text_of(file), settings).unwrap()
}

/// The spoke stack in `region` (`parameters` override the test's).
fn spoke_in(region: &str, parameters: &[(&str, &str)]) -> Stack {
    let regions = REGIONS.join(",");
    let mut all = vec![
        ("HubAccountId", HUB_ACCOUNT),
        ("HubEventBusArn", HUB_BUS),
        ("ExportRoleArns", EXPORT_ROLE),
        ("Regions", &regions),
    ];
    all.extend_from_slice(parameters);
    deployed("spoke.yaml", "StackSet-spoke", region, &all)
}

/// The hub's function roles, each with its resolved policy documents, as if the hub were deployed where the spoke is:
/// what a hub role may do in its own account and region, the spoke role must allow in its.
fn hub_roles(region: &str, parameters: &[(&str, &str)]) -> Vec<(String, Vec<Json>)> {
    let hub = deployed("template.yaml", "euc-autopilot", region, parameters);
    hub.resources_of_type("AWS::Serverless::Function")
        .map(|(id, function)| {
            let policies = hub.resolve(&function["Properties"]["Policies"]).unwrap().unwrap_or(Json::Null);
            (id.to_owned(), listed(&policies).into_iter().cloned().collect())
        })
        .collect()
}

/// The spoke role's resolved policy documents.
fn spoke_role_documents(spoke: &Stack) -> Vec<Json> {
    role_documents(spoke, "SpokeRole")
}

fn role_documents(spoke: &Stack, role: &str) -> Vec<Json> {
    let role = spoke.resolve(&spoke.template()["Resources"][role]["Properties"]).unwrap().unwrap();
    listed(&role["Policies"]).into_iter().map(|policy| policy["PolicyDocument"].clone()).collect()
}

/// The spoke's read-only role (for `autopilot plan`): only reads, each one the spoke role has too, in the same
/// regions; trusted by the hub account (whose own policies say who may assume it: the operator policy), with the
/// organization and the external id when they are given.
#[test]
fn the_spoke_reader_role_only_reads_what_the_spoke_role_reads() {
    let spoke = spoke_in(REGIONS[0], &[]);
    let reader = grants(
        &role_documents(&spoke, "SpokeReaderRole"),
        &["workspaces", "appstream", "thinclient", "application-autoscaling", "iam"],
    );
    let operator =
        grants(&spoke_role_documents(&spoke), &["workspaces", "appstream", "thinclient", "application-autoscaling"]);
    assert!(!reader.is_empty());
    for (action, resource) in &reader {
        let name = action.split(':').nth(1).unwrap_or_default();
        assert!(["Describe", "List", "Get"].iter().any(|read| name.starts_with(read)), "{action} is not a read");
        assert!(operator.contains(&(action.clone(), resource.clone())), "{action} on {resource}: not the spoke role's");
    }
    let deny = |documents: &[Json]| {
        documents.iter().flat_map(|d| listed(&d["Statement"])).find(|s| s["Effect"] == "Deny").cloned()
    };
    assert_eq!(
        deny(&role_documents(&spoke, "SpokeReaderRole")),
        deny(&spoke_role_documents(&spoke)),
        "the same regions"
    );
    for (organization, external_id) in [("", ""), ("o-abcdefghij", "x-123")] {
        let spoke = spoke_in(REGIONS[0], &[("OrganizationId", organization), ("ExternalId", external_id)]);
        let trust = &spoke.template()["Resources"]["SpokeReaderRole"]["Properties"]["AssumeRolePolicyDocument"];
        let trust = spoke.resolve(trust).unwrap().unwrap();
        let statements = listed(&trust["Statement"]);
        assert_eq!(statements.len(), 1, "{trust}");
        assert_eq!(
            statements[0]["Principal"],
            serde_json::json!({ "AWS": format!("arn:aws:iam::{HUB_ACCOUNT}:root") })
        );
        let condition = &statements[0]["Condition"]["StringEquals"];
        if organization.is_empty() {
            assert!(condition.is_null(), "{trust}");
        } else {
            assert_eq!(condition["aws:PrincipalOrgID"], organization, "{trust}");
            assert_eq!(condition["sts:ExternalId"], external_id, "{trust}");
        }
    }
}

fn listed(value: &Json) -> Vec<&Json> {
    match value {
        Json::Null => Vec::new(),
        Json::Array(items) => items.iter().collect(),
        one => vec![one],
    }
}

fn parsed(documents: &[Json]) -> Vec<PolicyDocument> {
    documents.iter().map(|document| PolicyDocument::parse(document, "test").unwrap()).collect()
}

/// Every (action, resource) the `Allow` statements of `documents` name, for the actions of `services`.
fn grants(documents: &[Json], services: &[&str]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for statement in documents.iter().flat_map(|document| listed(&document["Statement"])) {
        if statement["Effect"] != "Allow" {
            continue;
        }
        for action in listed(&statement["Action"]).into_iter().filter_map(Json::as_str) {
            if services.iter().any(|service| action.split(':').next() == Some(service)) {
                for resource in listed(&statement["Resource"]).into_iter().filter_map(Json::as_str) {
                    found.push((action.to_owned(), resource.to_owned()));
                }
            }
        }
    }
    found
}

/// `arn` with a region of `*` in `region`.
fn in_region(arn: &str, region: &str) -> String {
    let mut parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() == 6 && parts[3] == "*" {
        parts[3] = region;
    }
    parts.join(":")
}

#[test]
fn the_spoke_role_allows_in_its_regions_exactly_what_the_hub_roles_allow_in_theirs() {
    let documents = spoke_role_documents(&spoke_in(REGIONS[0], &[]));
    let spoke_role = parsed(&documents);
    // the ledger, the project bus and the organization stay in the hub; the spoke role assumes nothing further
    assert_eq!(grants(&documents, &["dynamodb", "events", "sts", "organizations"]), Vec::<(String, String)>::new());
    for region in REGIONS.into_iter().chain(["us-east-1"]) {
        let managed = REGIONS.contains(&region);
        let hub: Vec<Json> = hub_roles(region, &[("ExportRoleArns", EXPORT_ROLE)])
            .into_iter()
            .flat_map(|(_, documents)| documents)
            .collect();
        let context: Context = [
            ("aws:requestedregion".to_owned(), vec![region.to_owned()]),
            ("iam:passedtoservice".to_owned(), vec!["appstream.amazonaws.com".to_owned()]),
        ]
        .into();
        // GIVEN everything a hub role may do to the estate in its account and region, THEN the spoke role may do it
        // in a region of Regions, and in no other (iam:PassRole is not regional: the AppStream call it goes with is)
        let hub_grants = grants(&hub, &ESTATE_SERVICES);
        assert!(hub_grants.len() > 30, "{hub_grants:?}");
        for (action, resource) in hub_grants {
            let decision = iam::evaluate(&spoke_role, &action, &resource, &context);
            let expected =
                if managed || action.starts_with("iam:") { Decision::Allowed } else { Decision::ExplicitDeny };
            assert_eq!(decision, expected, "spoke role: {action} on {resource} in {region}");
        }
        // AND nothing more: whatever the spoke role grants, some hub role has in its own region
        let hub = parsed(&hub);
        for (action, resource) in grants(&documents, &ESTATE_SERVICES) {
            let resource = in_region(&resource, region);
            assert_eq!(iam::evaluate(&hub, &action, &resource, &context), Decision::Allowed, "{action} on {resource}");
        }
    }
    // without export roles there is nothing to pass
    let documents = spoke_role_documents(&spoke_in(REGIONS[0], &[("ExportRoleArns", "")]));
    assert_eq!(grants(&documents, &["iam"]), Vec::<(String, String)>::new());
}

#[test]
fn only_the_hub_functions_may_assume_the_spoke_role_which_each_account_creates_once() {
    // GIVEN the hub's function roles: each may assume the spoke role of any account, and no other role
    let spoke_role = format!("arn:aws:iam::{SPOKE_ACCOUNT}:role/EUCAutopilotSpoke");
    assert_eq!(template()["Parameters"]["SpokeRoleName"]["Default"], spoke()["Parameters"]["SpokeRoleName"]["Default"]);
    let hub = hub_roles(REGIONS[0], &[]);
    for (function, documents) in &hub {
        let policy = parsed(documents);
        let admin = format!("arn:aws:iam::{SPOKE_ACCOUNT}:role/Admin");
        assert_eq!(
            iam::evaluate(&policy, "sts:AssumeRole", &spoke_role, &Context::new()),
            Decision::Allowed,
            "{function}"
        );
        assert_eq!(
            iam::evaluate(&policy, "sts:AssumeRole", &admin, &Context::new()),
            Decision::ImplicitDeny,
            "{function}"
        );
    }
    // THEN the spoke role trusts the hub account's roles named as SAM names the hub stack's function roles, with the
    // organization and the external id when they are given
    for (organization, external_id) in [("", ""), ("o-abcdefghij", ""), ("", "x-123"), ("o-abcdefghij", "x-123")] {
        let spoke = spoke_in(REGIONS[0], &[("OrganizationId", organization), ("ExternalId", external_id)]);
        let trust = &spoke.template()["Resources"]["SpokeRole"]["Properties"]["AssumeRolePolicyDocument"];
        let trust = spoke.resolve(trust).unwrap().unwrap();
        let statements = listed(&trust["Statement"]);
        assert_eq!(statements.len(), 1, "{trust}");
        let statement = statements[0];
        assert_eq!(statement["Principal"], serde_json::json!({ "AWS": format!("arn:aws:iam::{HUB_ACCOUNT}:root") }));
        assert_eq!(statement["Action"], "sts:AssumeRole");
        let pattern = statement["Condition"]["ArnLike"]["aws:PrincipalArn"].as_str().unwrap();
        for (function, _) in &hub {
            let role = format!("arn:aws:iam::{HUB_ACCOUNT}:role/euc-autopilot-{function}Role-AB12CD34EF56");
            assert!(iam::glob(pattern, &role, Case::Sensitive), "{pattern} must match {role}");
        }
        for stranger in [
            format!("arn:aws:iam::{HUB_ACCOUNT}:role/another-stack-PoolScalerFunctionRole-AB12CD34EF56"),
            format!("arn:aws:iam::{SPOKE_ACCOUNT}:role/euc-autopilot-PoolScalerFunctionRole-AB12CD34EF56"),
        ] {
            assert!(!iam::glob(pattern, &stranger, Case::Sensitive), "{pattern} must not match {stranger}");
        }
        let mut expected = serde_json::Map::new();
        if !organization.is_empty() {
            expected.insert("aws:PrincipalOrgID".into(), organization.into());
        }
        if !external_id.is_empty() {
            expected.insert("sts:ExternalId".into(), external_id.into());
        }
        let operators = if expected.is_empty() { 1 } else { 2 };
        assert_eq!(statement["Condition"].as_object().map(serde_json::Map::len), Some(operators), "{statement}");
        if !expected.is_empty() {
            assert_eq!(statement["Condition"]["StringEquals"], Json::Object(expected), "{statement}");
        }
    }
    // AND IAM being global, one stack per account creates the role: the one in the first of Regions, or the only one
    assert!(spoke_in(REGIONS[0], &[]).holds("CreatesRole").unwrap());
    assert!(!spoke_in(REGIONS[1], &[]).holds("CreatesRole").unwrap());
    assert!(spoke_in("us-east-1", &[("Regions", "")]).holds("CreatesRole").unwrap());
    // (and every stack creates something: CloudFormation refuses one whose conditions leave no resource)
    for (region, forward) in REGIONS.into_iter().flat_map(|region| [(region, "true"), (region, "false")]) {
        let spoke = spoke_in(region, &[("ForwardEvents", forward)]);
        let resources = spoke.template()["Resources"].as_object().unwrap();
        let created = resources.values().filter(|r| r["Condition"].as_str().is_none_or(|c| spoke.holds(c).unwrap()));
        assert!(created.count() > 0, "the spoke in {region}, ForwardEvents={forward}, creates nothing");
    }
    assert_eq!(spoke()["Resources"]["SpokeRole"]["Properties"]["RoleName"], yaml("{ Ref: SpokeRoleName }"));
}

#[test]
fn with_an_organization_the_hub_functions_may_read_its_accounts_and_nothing_else_of_it() {
    let organization = "o-abcdefghij";
    let resource = |kind: &str, id: &str| format!("arn:aws:organizations::333333333333:{kind}/{organization}/{id}");
    let other = "arn:aws:organizations::444444444444:ou/o-zyxwvutsrq/ou-ab12-cdef3456".to_owned();
    let reads = [
        ("organizations:ListAccountsForParent", resource("ou", "ou-ab12-cdef3456")),
        ("organizations:ListAccountsForParent", resource("root", "r-ab12")),
        ("organizations:ListChildren", resource("ou", "ou-ab12-cdef3456")),
        ("organizations:DescribeAccount", resource("account", SPOKE_ACCOUNT)),
    ];
    for (function, documents) in hub_roles(REGIONS[0], &[("OrganizationId", organization)]) {
        let policy = parsed(&documents);
        for (action, resource) in &reads {
            assert_eq!(iam::evaluate(&policy, action, resource, &Context::new()), Decision::Allowed, "{function}");
            assert_eq!(iam::evaluate(&policy, action, &other, &Context::new()), Decision::ImplicitDeny, "{function}");
        }
        assert_eq!(iam::evaluate(&policy, "organizations:ListAccounts", "*", &Context::new()), Decision::ImplicitDeny);
    }
    // without one, no organizations action at all
    for (function, documents) in hub_roles(REGIONS[0], &[]) {
        assert_eq!(grants(&documents, &["organizations"]), Vec::<(String, String)>::new(), "{function}");
    }
}

#[test]
fn the_spoke_forwards_exactly_the_events_the_hub_functions_consume_to_the_hub_bus() {
    let spoke = spoke();
    let rules = resources_of_type(&spoke, "AWS::Events::Rule");
    let patterns = |source: &str, detail_type: &str| -> Vec<(&str, &Value)> {
        rules
            .iter()
            .filter(|(_, rule)| {
                let pattern = &rule["Properties"]["EventPattern"];
                strings(&pattern["source"]).iter().any(|s| s == source)
                    && strings(&pattern["detail-type"]).iter().any(|d| d == detail_type)
            })
            .map(|(name, rule)| (*name, &rule["Properties"]["EventPattern"]))
            .collect()
    };
    // GIVEN every rule of the hub's functions for AWS events (our commands come to the hub's bus, not from spokes)
    let aws_rules: Vec<&Rule> = FUNCTIONS
        .iter()
        .flat_map(|(_, rules)| rules.iter())
        .filter(|rule| rule.source != autopilot_shared::events::AUTOPILOT_SOURCE)
        .collect();
    // THEN one forwarding rule matches what it matches
    for rule in &aws_rules {
        let forwarding = patterns(rule.source, rule.detail_type);
        assert_eq!(forwarding.len(), 1, "{}: one forwarding rule", rule.name);
        let (name, pattern) = forwarding[0];
        let forwarded = strings(&pattern["detail"]["eventName"]);
        for event_name in rule.event_names {
            assert!(
                forwarded.iter().any(|n| n == event_name),
                "{}: {event_name} is not forwarded by {name}",
                rule.name
            );
        }
        assert_detail_conditions(&spoke, rule, pattern, &format!("{} forwarded by {name}", rule.name));
    }
    // AND nothing else: every source, detail-type and event name forwarded is one a hub function consumes (a source
    // and a detail-type that never come together are harmless: each service sends its own detail-types)
    for (name, rule) in &rules {
        let pattern = &rule["Properties"]["EventPattern"];
        let (sources, detail_types) = (strings(&pattern["source"]), strings(&pattern["detail-type"]));
        let consumes =
            |r: &&&Rule| sources.iter().any(|s| s == r.source) && detail_types.iter().any(|d| d == r.detail_type);
        let consumers: Vec<&&Rule> = aws_rules.iter().filter(consumes).collect();
        for source in &sources {
            assert!(consumers.iter().any(|r| r.source == source), "{name}: nothing consumes {source}");
        }
        for detail_type in &detail_types {
            assert!(consumers.iter().any(|r| r.detail_type == detail_type), "{name}: nothing consumes {detail_type}");
        }
        for event_name in strings(&pattern["detail"]["eventName"]) {
            assert!(
                consumers.iter().any(|r| r.event_names.contains(&event_name.as_str())),
                "{name}: nothing consumes {event_name}"
            );
        }
        if detail_types.iter().any(|d| d == autopilot_shared::events::CLOUDTRAIL_DETAIL_TYPE) {
            // one service's calls, by name: never every call of an account
            assert_eq!(sources.len(), 1, "{name}");
            assert!(!pattern["detail"]["eventName"].is_null(), "{name}: which calls");
        }
        // from the default bus to the hub's bus, with the forwarding role, retries and the dead-letter queue
        assert_eq!(rule["Condition"], "ForwardsEvents", "{name}");
        assert!(rule["Properties"]["EventBusName"].is_null(), "{name}: AWS events come to the default bus");
        let targets = rule["Properties"]["Targets"].as_sequence().unwrap();
        assert_eq!(targets.len(), 1, "{name}");
        assert_eq!(targets[0]["Arn"], yaml("{ Ref: HubEventBusArn }"), "{name}");
        assert_eq!(targets[0]["RoleArn"], yaml("{ Fn::GetAtt: [ForwardingRole, Arn] }"), "{name}");
        assert_eq!(targets[0]["DeadLetterConfig"], yaml("{ Arn: { Fn::GetAtt: [ForwardingDeadLetterQueue, Arn] } }"));
        assert!(targets[0]["RetryPolicy"].is_mapping(), "{name}: an explicit retry policy");
    }
    // AND the dead-letter queue takes the failed deliveries of exactly these rules
    let queue_policy = &spoke["Resources"]["ForwardingDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"];
    let mut senders: Vec<String> = each(&queue_policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"])
        .into_iter()
        .map(resource_text)
        .collect();
    let mut forwarding: Vec<String> = rules.iter().map(|(name, _)| format!("GetAtt:{name}.Arn")).collect();
    senders.sort();
    forwarding.sort();
    assert_eq!(senders, forwarding);
    // AND the forwarding role may put events on the hub's bus and nowhere else
    let spoke_stack = spoke_in(REGIONS[1], &[("ForwardEvents", "true")]);
    let role =
        spoke_stack.resolve(&spoke_stack.template()["Resources"]["ForwardingRole"]["Properties"]).unwrap().unwrap();
    let documents: Vec<Json> = listed(&role["Policies"]).into_iter().map(|p| p["PolicyDocument"].clone()).collect();
    assert_eq!(grants(&documents, &["events", "sqs", "sts"]), [("events:PutEvents".to_owned(), HUB_BUS.to_owned())]);
    assert_eq!(grants(&documents, &ESTATE_SERVICES), Vec::<(String, String)>::new());

    // AND the hub admits exactly the forwarded sources on its bus, from its organization's accounts only
    let hub = template();
    let bus_policy = &hub["Resources"]["EventBusPolicy"];
    assert_eq!(bus_policy["Condition"], "HasOrganization");
    let statement = &bus_policy["Properties"]["Statement"];
    assert_eq!(statement["Condition"]["StringEquals"]["aws:PrincipalOrgID"], yaml("{ Ref: OrganizationId }"));
    assert_eq!(statement["Action"], "events:PutEvents");
    // the default bus, where the functions' rules for AWS events listen
    assert_eq!(bus_policy["Properties"]["EventBusName"], "default");
    assert_eq!(
        statement["Resource"],
        yaml("{ Fn::Sub: 'arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default' }")
    );
    let mut admitted = strings(&statement["Condition"]["ForAllValues:StringEquals"]["events:source"]);
    let mut sources: Vec<String> =
        rules.iter().flat_map(|(_, rule)| strings(&rule["Properties"]["EventPattern"]["source"])).collect();
    admitted.sort();
    sources.sort();
    sources.dedup();
    assert_eq!(admitted, sources, "the hub's bus policy admits the sources the spokes forward");
}

/// `HubEventBusArn` is needed only to forward events: without forwarding it may be left empty; forwarding without
/// it is refused before anything is created (a CloudFormation rule), and no forwarding resource can name an empty
/// bus (the condition needs the bus too).
#[test]
fn the_hub_bus_is_asked_for_only_when_events_are_forwarded() {
    let quiet = spoke_in(REGIONS[0], &[("HubEventBusArn", ""), ("ForwardEvents", "false")]);
    assert!(!quiet.holds("ForwardsEvents").unwrap());
    assert_eq!(quiet.template()["Parameters"]["HubEventBusArn"]["Default"], serde_json::json!(""));
    let forwarding = spoke_in(REGIONS[0], &[("ForwardEvents", "true")]);
    assert!(forwarding.holds("ForwardsEvents").unwrap());
    let rule = &forwarding.template()["Rules"]["ForwardingNeedsTheHubBus"];
    let equals = serde_json::json!({ "Fn::Equals": [{ "Ref": "ForwardEvents" }, "true"] });
    assert_eq!(rule["RuleCondition"], equals);
    let not_empty = serde_json::json!({ "Fn::Not": [{ "Fn::Equals": [{ "Ref": "HubEventBusArn" }, ""] }] });
    assert_eq!(rule["Assertions"][0]["Assert"], not_empty);
    let without_bus = spoke_in(REGIONS[0], &[("HubEventBusArn", ""), ("ForwardEvents", "true")]);
    assert!(!without_bus.holds("ForwardsEvents").unwrap());
}
