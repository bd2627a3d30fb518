//! The proptest strategies: event mutations and cases, the vocabulary they draw on (sources, detail types,
//! field names, broken ARNs and ids, wrong values, bytes that are not UTF-8), arbitrary JSON, and a runner
//! seeded for reproducible runs.

use super::events::{EventCase, Mutation};
use super::json_tree::Nesting;
use super::{DEEP, Figures};
use autopilot_shared::events::{AUTOPILOT_SOURCE, CLOUDTRAIL_DETAIL_TYPE, Command};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Value, json};

/// What generated events may be like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reach {
    /// Only what EventBridge can deliver to a function: strings up to its size limit, nesting `serde_json` lets
    /// through, JSON text that is UTF-8.
    Deliverable,
    /// Anything a parser could be handed: huge strings, nesting far beyond the limit, bytes that are not UTF-8.
    Anything,
}

const KNOWN_SOURCES: [&str; 7] = [
    "aws.events",
    "aws.scheduler",
    "aws.appstream",
    "aws.workspaces",
    "aws.cloudwatch",
    "aws.thinclient",
    AUTOPILOT_SOURCE,
];

fn known_detail_types() -> Vec<String> {
    let mut types: Vec<String> = [
        "Scheduled Event",
        CLOUDTRAIL_DETAIL_TYPE,
        "AppStream Session Notification",
        "WorkSpaces Access",
        "CloudWatch Alarm State Change",
    ]
    .into_iter()
    .chain(Command::DETAIL_TYPES)
    .map(str::to_owned)
    .collect();
    let near_misses: Vec<String> = types
        .iter()
        .flat_map(|t| [t.to_lowercase(), t.to_uppercase(), format!("{t} "), format!(" {t}"), t.replace(' ', "")])
        .collect();
    types.extend(near_misses);
    types.extend(
        ["Export Completed", "Rollout Started", "Escalation", "EC2 Instance State-change Notification", ""]
            .map(str::to_owned),
    );
    types
}

fn detail_type_text() -> BoxedStrategy<String> {
    prop_oneof![4 => prop::sample::select(known_detail_types()), 1 => "[A-Za-z .-]{0,32}"].boxed()
}

fn source_text() -> BoxedStrategy<String> {
    let misses = ["aws.Events", "aws.events ", "euc.autopilot2", "euc", "aws.ec2", "", "aws.workspaces.pools"];
    let known: Vec<String> = KNOWN_SOURCES.iter().chain(misses.iter()).map(|s| (*s).to_owned()).collect();
    prop_oneof![4 => prop::sample::select(known), 1 => "[a-z.]{0,20}"].boxed()
}

pub(super) fn wrong_value() -> BoxedStrategy<Value> {
    prop::sample::select(vec![
        Value::Null,
        json!(true),
        json!(0),
        json!(-1),
        json!(1.5),
        json!(1e300),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(""),
        json!("text"),
        json!([]),
        json!([1, "two"]),
        json!({}),
        json!({ "unexpected": true }),
    ])
    .boxed()
}

fn bad_arn() -> BoxedStrategy<String> {
    let broken = [
        "arn:aws:iam::12345:role/AppStreamExportRole",
        "arn:aws:iam::1234567890123:role/AppStreamExportRole",
        "arn:aws:iam::12345678901x:role/AppStreamExportRole",
        "arn:aws:iam::123456789012:user/alice",
        "arn::iam::123456789012:role/x",
        "arn:aws:iam:eu-central-1:123456789012:role/x",
        "arn:aws:workspaces:mars-north-9:123456789012:workspace/ws-f8h2k9m1p",
        "arn:aws:scheduler:eu-central-1:123456789012",
        "arn:aws:iam::123456789012:role/",
        "arn:aws:iam::123456789012:role/a#b",
        "ARN:AWS:IAM::123456789012:ROLE/X",
        "arn:aws",
        "arn:",
        "not-an-arn",
        "",
    ];
    prop_oneof![
        3 => prop::sample::select(broken.map(str::to_owned).to_vec()),
        2 => "arn:[a-z0-9-]{0,6}:[a-z0-9-]{0,12}:[a-z0-9-]{0,16}:[0-9a-z]{0,14}:[ -~]{0,24}",
    ]
    .boxed()
}

fn bad_id() -> BoxedStrategy<String> {
    let broken = [
        "",
        " ",
        "#",
        "ws-#1",
        "wspool-",
        "d-",
        "../../etc/passwd",
        "ws-f8h2k9m1p\n",
        "\u{0}",
        "ws-\u{202e}evil",
        "wspool-1a2b3c4d5 ",
        "ｗｓ-ｆ８",
        "\u{1F600}",
    ];
    prop_oneof![
        3 => prop::sample::select(broken.map(str::to_owned).to_vec()),
        1 => Just("x".repeat(300)),
        2 => "[ -~]{0,40}",
        1 => any::<String>(),
    ]
    .boxed()
}

fn mutation(reach: Reach) -> BoxedStrategy<Mutation> {
    let levels = if reach == Reach::Deliverable {
        (1usize..=100).boxed()
    } else {
        prop_oneof![6 => 1usize..=64, 1 => Just(127usize), 1 => Just(129usize), 2 => Just(DEEP)].boxed()
    };
    let fill = prop::sample::select(vec!['a', 'é', '字', '😀', '"', '\\', '\u{0}']);
    prop_oneof![
        3 => any::<Index>().prop_map(Mutation::Drop),
        3 => (any::<Index>(), wrong_value()).prop_map(|(at, to)| Mutation::Retype(at, to)),
        1 => (any::<Index>(), fill).prop_map(|(at, fill)| Mutation::Huge(at, fill)),
        1 => (any::<Index>(), levels, any::<bool>()).prop_map(|(at, n, arrays)| {
            Mutation::Nest(at, n, if arrays { Nesting::Arrays } else { Nesting::Objects })
        }),
        2 => (any::<Index>(), bad_arn()).prop_map(|(at, arn)| Mutation::BadArn(at, arn)),
        2 => (any::<Index>(), bad_id()).prop_map(|(at, id)| Mutation::BadId(at, id)),
        2 => detail_type_text().prop_map(Mutation::DetailType),
        2 => source_text().prop_map(Mutation::Source),
        2 => (any::<Index>(), "new[A-Za-z0-9]{1,12}", wrong_value())
            .prop_map(|(at, key, value)| Mutation::AddField(at, key, value)),
    ]
    .boxed()
}

/// Bytes that are never valid UTF-8 (lone continuation, overlong, truncated, surrogate, beyond U+10FFFF).
fn not_utf8() -> BoxedStrategy<Vec<u8>> {
    prop::sample::select(vec![
        vec![0xff],
        vec![0x80],
        vec![0xc0, 0xaf],
        vec![0xe2, 0x82],
        vec![0xed, 0xa0, 0x80],
        vec![0xf4, 0x90, 0x80, 0x80],
        vec![0xfe, 0xfe, 0xff, 0xff],
    ])
    .boxed()
}

const FIELD_NAMES: [&str; 48] = [
    "source",
    "detail-type",
    "id",
    "time",
    "account",
    "region",
    "resources",
    "version",
    "detail",
    "eventSource",
    "eventName",
    "eventTime",
    "eventID",
    "awsRegion",
    "errorCode",
    "userIdentity",
    "requestParameters",
    "responseElements",
    "name",
    "poolId",
    "capacity",
    "desiredUserSessions",
    "computeCapacity",
    "desiredInstances",
    "imageName",
    "amiName",
    "iamRoleArn",
    "retry",
    "maxAttempts",
    "backoff",
    "tagSpecifications",
    "softwareSetId",
    "rolloutId",
    "reason",
    "resourceType",
    "resourceId",
    "fleetName",
    "stackName",
    "sessionId",
    "eventType",
    "actionType",
    "workspaceId",
    "directoryId",
    "loginTime",
    "alarmName",
    "state",
    "previousState",
    "value",
];

fn field_name() -> BoxedStrategy<String> {
    prop_oneof![3 => prop::sample::select(FIELD_NAMES.map(str::to_owned).to_vec()), 1 => "[a-zA-Z-]{0,12}"].boxed()
}

fn vocabulary() -> BoxedStrategy<String> {
    let mut words: Vec<String> = KNOWN_SOURCES.map(str::to_owned).to_vec();
    words.extend(known_detail_types());
    words.extend(
        [
            "appstream.amazonaws.com",
            "workspaces.amazonaws.com",
            "thinclient.amazonaws.com",
            "UpdateWorkspacesPool",
            "StartImageBuilder",
            "CreateExportImageTask",
            "ModifyWorkspaceState",
            "UpdateEnvironment",
            "2026-11-23T06:00:00Z",
            "2026-11-23T07:00:12.345+0000",
            "123456789012",
            "eu-central-1",
            "wspool-1a2b3c4d5",
            "ws-f8h2k9m1p",
            "ALARM",
            "SESSION_STARTED",
            "arn:aws:iam::123456789012:role/AppStreamExportRole",
        ]
        .map(str::to_owned),
    );
    prop::sample::select(words).boxed()
}

/// Any JSON value, with keys and strings often taken from the events' own vocabulary.
pub(super) fn arbitrary_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        vocabulary().prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((field_name(), inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
    .boxed()
}

/// An EventBridge-shaped event with a known or near-miss source and detail type and an arbitrary detail.
fn arbitrary_envelope() -> BoxedStrategy<Value> {
    let detail = prop::collection::vec((field_name(), arbitrary_json()), 0..8)
        .prop_map(|fields| Value::Object(fields.into_iter().collect()));
    (source_text(), detail_type_text(), proptest::option::of(vocabulary()), proptest::option::of(vocabulary()), detail)
        .prop_map(|(source, detail_type, id, time, detail)| {
            let mut event = json!({ "version": "0", "source": source, "detail-type": detail_type, "detail": detail });
            if let Some(object) = event.as_object_mut() {
                object.extend(id.map(|id| ("id".to_owned(), Value::String(id))));
                object.extend(time.map(|time| ("time".to_owned(), Value::String(time))));
            }
            event
        })
        .boxed()
}

pub(super) fn event_case(reach: Reach) -> BoxedStrategy<EventCase> {
    let corrupt = if reach == Reach::Deliverable {
        Just(None).boxed()
    } else {
        proptest::option::weighted(0.1, (any::<Index>(), not_utf8())).boxed()
    };
    let mutated = (any::<Index>(), prop::collection::vec(mutation(reach), 1..=4), corrupt)
        .prop_map(|(sample, mutations, corrupt)| EventCase::Mutated { sample, mutations, corrupt });
    let arbitrary = prop_oneof![arbitrary_json(), arbitrary_envelope()].prop_map(EventCase::Arbitrary);
    prop_oneof![6 => mutated, 2 => arbitrary].boxed()
}

/// A runner whose random numbers come from `seed` only.
pub(super) fn runner(cases: u32, seed: u64) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&seed.rotate_left(29).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// `count` values of `strategy`.
pub(super) fn generate<S: Strategy>(
    strategy: &S,
    count: u32,
    runner: &mut TestRunner,
    figures: &mut Figures,
) -> Vec<S::Value> {
    let mut values = Vec::new();
    for _ in 0..count {
        match strategy.new_tree(runner) {
            Ok(tree) => values.push(tree.current()),
            Err(reason) => figures.corpus_problem(format!("the generator gave up: {reason}")),
        }
    }
    values
}
