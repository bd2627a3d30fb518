use super::events::must_reject;
use super::extremes::read_sample;
use super::json_tree::{MAX_WALK, Nesting, depth, nested, nodes};
use super::*;
use serde_json::json;

#[test]
fn nodes_and_depth_cope_with_deep_values() {
    let deep = nested(DEEP, Nesting::Arrays, json!("core"));
    assert_eq!(depth(&deep), DEEP);
    assert_eq!(nodes(&deep).len(), MAX_WALK);
    let handle = on_stack("drop", BIG_STACK, move || drop(deep));
    assert!(handle.is_ok());
}

#[test]
fn the_oracle_follows_the_contract() {
    let tick = read_sample(&workspace_root(), "scheduled-tick-rule.json");
    assert_eq!(must_reject(&tick), None);
    let mut no_time = tick.clone();
    no_time.as_object_mut().map(|t| t.remove("time"));
    assert!(must_reject(&no_time).is_some());
    let mut command = read_sample(&workspace_root(), "command-rollout-paused.json");
    assert_eq!(must_reject(&command), None);
    command["detail"]["force"] = json!(true);
    assert!(must_reject(&command).is_some());
}

#[test]
fn clip_keeps_char_boundaries() {
    assert_eq!(clip("abc", 5), "abc");
    assert_eq!(clip("ééé", 2), "éé… (2 more bytes)");
}
