//! Policy cases: mutations of `examples/autopilot.yaml` (by pointer, knowing which keys hold durations, time
//! zones, times and days), edits of its YAML text, arbitrary documents and text, and one case through the
//! policy parser.

use super::generators::{arbitrary_json, wrong_value};
use super::json_tree::{Nesting, Node, Step, nested, node_mut, nodes, pick, remove, set};
use super::judge::{Expect, guarded, judge_policy};
use super::{Figures, HUGE_POLICY_TEXT, clip};
use autopilot_shared::policy::Policy;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};

/// Keys whose values are durations (`30m`), time zones, times of day; objects that are maps of names, not
/// structs (a new key there is a new name, not an unknown field).
const DURATION_KEYS: [&str; 14] = [
    "prewarm",
    "idle_grace",
    "cooldown",
    "max_runtime",
    "warn_before",
    "backoff",
    "max_duration",
    "bake",
    "warn_support_ending",
    "within",
    "reporting_stale_after",
    "reboot_after",
    "reboot_window",
    "transient_grace",
];
const MAP_KEYS: [&str; 4] = ["calendars", "schedules", "tag", "alarms"];

#[derive(Debug, Clone)]
pub(super) enum PolicyMutation {
    Drop(Index),
    Retype(Index, Value),
    /// Replace a number with another (negative, fractional, huge, zero, out of range).
    Number(Index, Value),
    Duration(Index, String),
    Timezone(Index, String),
    TimeOfDay(Index, String),
    Weekday(Index, String),
    /// Add a key to a mapping.
    UnknownKey(Index, String, Value),
    Huge(Index),
    Nest(Index, usize),
}

/// A change to the YAML text itself (what a `Value` cannot express: NaN, tags, anchors, broken syntax).
#[derive(Debug, Clone)]
pub(super) enum TextEdit {
    /// Replace the value of the chosen `key: value` line.
    Value(Index, String),
    /// Insert a line before the chosen one.
    Line(Index, String),
    /// Cut the document at the chosen character.
    Truncate(Index),
}

#[derive(Debug, Clone)]
pub(super) enum PolicyCase {
    Mutated {
        mutations: Vec<PolicyMutation>,
        edit: Option<TextEdit>,
    },
    /// Any JSON value as a YAML document.
    Arbitrary(Value),
    /// Any text.
    Text(String),
}

fn policy_mutation() -> BoxedStrategy<PolicyMutation> {
    let numbers = prop::sample::select(vec![
        json!(-1),
        json!(0),
        json!(11),
        json!(4_294_967_296u64),
        json!(1.5),
        json!(-0.5),
        json!(1e300),
        json!(u64::MAX),
    ]);
    let durations = prop::sample::select(
        [
            "",
            "5",
            "m",
            "1h1h",
            "30m1h",
            "1.5h",
            "-5m",
            "1w",
            "1 h",
            "PT1H",
            "5 minutes",
            "٣m",
            "2147483647d",
            "99999999999s",
            "0x10m",
            "1h 30m",
            "h1",
        ]
        .map(str::to_owned)
        .to_vec(),
    );
    let zones = prop::sample::select(
        ["Mars/Olympus_Mons", "CET+1", "Europe/Berlin ", " UTC", "GMT+25", "", "Europe", "Europe/Berl1n", "UTC;DROP"]
            .map(str::to_owned)
            .to_vec(),
    );
    let times = prop::sample::select(
        ["24:00", "7:00", "07:60", "0700", "07:00:00", "ab:cd", "", "-1:00", "+7:00", "07:+5", "07:0", "１２:00"]
            .map(str::to_owned)
            .to_vec(),
    );
    let days = prop::sample::select(
        ["monday", "Mon", "mon-", "-fri", "mon-fri-sat", "", "xyz", "mon,tue", "MON", "mon–fri"]
            .map(str::to_owned)
            .to_vec(),
    );
    prop_oneof![
        3 => any::<Index>().prop_map(PolicyMutation::Drop),
        3 => (any::<Index>(), wrong_value()).prop_map(|(at, to)| PolicyMutation::Retype(at, to)),
        2 => (any::<Index>(), numbers).prop_map(|(at, n)| PolicyMutation::Number(at, n)),
        2 => (any::<Index>(), durations).prop_map(|(at, d)| PolicyMutation::Duration(at, d)),
        1 => (any::<Index>(), zones).prop_map(|(at, z)| PolicyMutation::Timezone(at, z)),
        1 => (any::<Index>(), times).prop_map(|(at, t)| PolicyMutation::TimeOfDay(at, t)),
        1 => (any::<Index>(), days).prop_map(|(at, d)| PolicyMutation::Weekday(at, d)),
        2 => (any::<Index>(), "new_[a-z]{1,10}", wrong_value()).prop_map(|(at, k, v)| PolicyMutation::UnknownKey(at, k, v)),
        1 => any::<Index>().prop_map(PolicyMutation::Huge),
        1 => (any::<Index>(), prop_oneof![3 => 1usize..=40, 1 => Just(127usize), 1 => Just(200usize)])
            .prop_map(|(at, n)| PolicyMutation::Nest(at, n)),
    ]
    .boxed()
}

fn text_edit() -> BoxedStrategy<TextEdit> {
    let values = prop::sample::select(
        [
            ".nan",
            ".inf",
            "-.inf",
            "~",
            "!!binary AQ==",
            "*undefined",
            "&a [*a]",
            "\"unterminated",
            "{",
            "[",
            "- x",
            "\t1",
            "? x",
            "!!python/object:os.system ls",
            "0x1F",
            "0o17",
            "1_000",
            "1e400",
            "'",
            "|",
            ">-",
            "@",
            "`",
            "%",
            "null",
            "yes",
            "[1, 2",
            "{a: 1, a: 2}",
            "!!float 1",
            "!!int 0.5",
            "2026-13-45",
        ]
        .map(str::to_owned)
        .to_vec(),
    );
    let lines = prop::sample::select(
        [
            "---",
            "...",
            "%YAML 1.2",
            "\tversion: 1",
            "version: 1",
            "<<: *x",
            "? [a, b]\n: c",
            "!!map",
            "&anchor",
            "# comment",
            "unknown_key: 1",
            "- item",
            "  - nested item",
            ": no key",
        ]
        .map(str::to_owned)
        .to_vec(),
    );
    prop_oneof![
        3 => (any::<Index>(), values).prop_map(|(at, v)| TextEdit::Value(at, v)),
        2 => (any::<Index>(), lines).prop_map(|(at, l)| TextEdit::Line(at, l)),
        1 => any::<Index>().prop_map(TextEdit::Truncate),
    ]
    .boxed()
}

const POLICY_KEYS: [&str; 24] = [
    "version",
    "defaults",
    "timezone",
    "dry_run",
    "calendars",
    "schedules",
    "periods",
    "days",
    "start",
    "end",
    "holidays",
    "prewarm",
    "capacity",
    "select",
    "tag",
    "names",
    "ids",
    "schedule",
    "in_hours",
    "off_hours",
    "min",
    "max",
    "rollouts",
    "remediation",
];

pub(super) fn policy_case() -> BoxedStrategy<PolicyCase> {
    let mutated = (prop::collection::vec(policy_mutation(), 1..=3), proptest::option::weighted(0.25, text_edit()))
        .prop_map(|(mutations, edit)| PolicyCase::Mutated { mutations, edit });
    let key = prop_oneof![3 => prop::sample::select(POLICY_KEYS.map(str::to_owned).to_vec()), 1 => "[a-z_]{0,10}"];
    let arbitrary = prop::collection::vec((key, arbitrary_json()), 0..8)
        .prop_map(|fields| PolicyCase::Arbitrary(Value::Object(fields.into_iter().collect())));
    let token = prop_oneof![
        4 => prop::sample::select(
            [
                "version", ":", " ", "\n", "  ", "- ", "[", "]", "{", "}", ",", "1", "&a", "*a", "!!str", "'", "\"", "#",
                "---", "...", "capacity", "schedules", "? ", "|", ">", "%YAML 1.2", "\t", "07:00", "30m", "mon-fri",
                "Europe/Berlin", "0.75",
            ]
            .map(str::to_owned)
            .to_vec()
        ),
        1 => any::<String>(),
    ];
    let text = prop::collection::vec(token, 0..60).prop_map(|tokens| PolicyCase::Text(tokens.concat()));
    prop_oneof![6 => mutated, 1 => arbitrary, 1 => text].boxed()
}

/// `capacity[0].in_hours.min`: a pointer as the validator writes paths.
fn policy_path(pointer: &[Step]) -> String {
    let mut path = String::new();
    for step in pointer {
        match step {
            Step::Key(key) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Step::At(index) => path.push_str(&format!("[{index}]")),
        }
    }
    path
}

/// Applies one policy mutation; returns the text the rejection must contain when the mutation alone makes
/// the (valid) document invalid.
fn apply_policy(document: &mut Value, mutation: &PolicyMutation) -> Option<String> {
    let all = nodes(document);
    let below_root: Vec<&Node> = all.iter().filter(|n| !n.pointer.is_empty()).collect();
    let keyed = |keys: &[&str]| -> Vec<&Node> {
        below_root.iter().copied().filter(|n| n.string.is_some() && keys.contains(&n.key())).collect()
    };
    let replace = |document: &mut Value, among: Vec<&Node>, at: &Index, text: &str| -> Option<String> {
        let target = pick(at, &among)?.pointer.clone();
        set(document, &target, Value::String(text.to_owned()));
        Some(policy_path(&target))
    };
    match mutation {
        PolicyMutation::Drop(at) => {
            let target = pick(at, &below_root)?.pointer.clone();
            remove(document, &target);
            None
        }
        PolicyMutation::Retype(at, to) => {
            let target = pick(at, &below_root)?.pointer.clone();
            set(document, &target, to.clone());
            None
        }
        PolicyMutation::Number(at, number) => {
            let numbers: Vec<&Node> = below_root.iter().copied().filter(|n| n.number).collect();
            let target = pick(at, &numbers)?.pointer.clone();
            set(document, &target, number.clone());
            None
        }
        PolicyMutation::Duration(at, text) => replace(document, keyed(&DURATION_KEYS), at, text),
        PolicyMutation::Timezone(at, text) => replace(document, keyed(&["timezone"]), at, text),
        PolicyMutation::TimeOfDay(at, text) => replace(document, keyed(&["start", "end"]), at, text),
        PolicyMutation::Weekday(at, text) => {
            let days: Vec<&Node> = below_root
                .iter()
                .copied()
                .filter(|n| {
                    n.string.is_some()
                        && matches!(n.pointer.as_slice(), [.., Step::Key(key), Step::At(_)] if key == "days")
                })
                .collect();
            replace(document, days, at, text)
        }
        PolicyMutation::UnknownKey(at, key, value) => {
            let objects: Vec<&Node> = all.iter().filter(|n| n.object).collect();
            let target = pick(at, &objects)?;
            let structure = !MAP_KEYS.contains(&target.key());
            let pointer = target.pointer.clone();
            if let Some(Value::Object(map)) = node_mut(document, &pointer) {
                map.insert(key.clone(), value.clone());
            }
            structure.then(|| format!("unknown field `{key}`"))
        }
        PolicyMutation::Huge(at) => {
            let strings: Vec<&Node> = below_root.iter().copied().filter(|n| n.string.is_some()).collect();
            replace(document, strings, at, &"y".repeat(HUGE_POLICY_TEXT)).and(None)
        }
        PolicyMutation::Nest(at, levels) => {
            let target = pick(at, &below_root)?.pointer.clone();
            if let Some(node) = node_mut(document, &target) {
                let core = node.take();
                *node = nested(*levels, Nesting::Arrays, core);
            }
            None
        }
    }
}

fn edit_text(text: &str, edit: &TextEdit) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    match edit {
        TextEdit::Value(at, value) => {
            let keyed: Vec<usize> = (0..lines.len()).filter(|i| lines[*i].contains(": ")).collect();
            if let Some(line) = (!keyed.is_empty()).then(|| keyed[at.index(keyed.len())])
                && let Some((key, _)) = lines[line].split_once(": ")
            {
                lines[line] = format!("{key}: {value}");
            }
        }
        TextEdit::Line(at, line) => {
            let position = at.index(lines.len() + 1);
            lines.insert(position, line.clone());
        }
        TextEdit::Truncate(at) => {
            let cut = text.char_indices().map(|(i, _)| i).nth(at.index(text.chars().count().max(1))).unwrap_or(0);
            return text[..cut].to_owned();
        }
    }
    lines.join("\n") + "\n"
}

pub(super) fn check_policy(figures: &mut Figures, base: &Value, case: PolicyCase) {
    let (label, text, expect) = match case {
        PolicyCase::Text(text) => (clip(&format!("text {text:?}"), 300), text, None),
        PolicyCase::Arbitrary(document) => {
            let label = clip(&format!("arbitrary {document}"), 300);
            match serde_yaml_ng::to_string(&document) {
                Ok(text) => (label, text, None),
                Err(error) => return figures.corpus_problem(format!("{label}: cannot write YAML: {error}")),
            }
        }
        PolicyCase::Mutated { mutations, edit } => {
            let mut document = base.clone();
            let wanted: Vec<Option<String>> = mutations.iter().map(|m| apply_policy(&mut document, m)).collect();
            let label = clip(&format!("examples/autopilot.yaml + {mutations:?} + {edit:?}"), 300);
            let text = match serde_yaml_ng::to_string(&document) {
                Ok(text) => text,
                Err(error) => return figures.corpus_problem(format!("{label}: cannot write YAML: {error}")),
            };
            // One mutation that breaks a rule, and nothing else: the rejection must name it.
            let expect = match (wanted.as_slice(), &edit) {
                ([Some(wanted)], None) => Some(wanted.clone()),
                _ => None,
            };
            let text = match &edit {
                Some(edit) => edit_text(&text, edit),
                None => text,
            };
            (label, text, expect)
        }
    };
    let outcome = guarded(|| Policy::from_yaml(&text));
    let expect = match &expect {
        Some(wanted) => Expect::Reject(Some(wanted.as_str())),
        None => Expect::Either,
    };
    judge_policy(figures, &label, outcome, expect);
}
