use super::*;
use crate::estate::{Cure, Estate, FaultState};
use serde_json::json;

fn world(yaml: &str, seed: u64) -> World {
    World::from_estate(&Estate::from_yaml(yaml).unwrap(), seed).unwrap()
}

fn one(faults: &str) -> World {
    world(&format!("workspaces: [{{ id: ws-a00000001, user: ann, connected: true, faults: {faults} }}]"), 1)
}

fn minutes(world: &mut World, n: i64) {
    let to = world.now + Duration::minutes(n);
    world.advance_to(to);
}

fn call(world: &mut World, operation: &str, member: &str) -> serde_json::Value {
    let input = json!({ member: [{ "WorkspaceId": "ws-a00000001" }] });
    crate::services::workspaces::handle(world, operation, &input).unwrap()
}

fn reboot(world: &mut World) {
    assert_eq!(call(world, "RebootWorkspaces", "RebootWorkspaceRequests")["FailedRequests"], json!([]));
}

fn stop_and_start(world: &mut World) {
    assert_eq!(call(world, "StopWorkspaces", "StopWorkspaceRequests")["FailedRequests"], json!([]));
    minutes(world, 5);
    assert_eq!(call(world, "StartWorkspaces", "StartWorkspaceRequests")["FailedRequests"], json!([]));
}

fn rebuild(world: &mut World) {
    assert_eq!(call(world, "RebuildWorkspaces", "RebuildWorkspaceRequests")["FailedRequests"], json!([]));
}

fn ws(world: &World) -> &Workspace {
    &world.workspaces["ws-a00000001"]
}

#[test]
fn a_reboot_cures_a_reboot_fault_and_the_minutes_are_counted() {
    let mut w = one("[{ after_minutes: 10 }]");
    minutes(&mut w, 9);
    assert_eq!(ws(&w).state, "AVAILABLE");
    minutes(&mut w, 1);
    assert_eq!((ws(&w).state.as_str(), ws(&w).connected, ws(&w).faults_started), ("UNHEALTHY", false, 1));
    minutes(&mut w, 20);
    reboot(&mut w);
    assert_eq!(ws(&w).state, "REBOOTING");
    minutes(&mut w, durations::WORKSPACE_REBOOT);
    assert_eq!(ws(&w).state, "AVAILABLE");
    assert_eq!(ws(&w).fault, None);
    minutes(&mut w, 60);
    assert_eq!((ws(&w).unhealthy_minutes, ws(&w).repair_minutes), (20, 5));
}

#[test]
fn a_rebuild_fault_survives_reboots_and_a_rebuild_cures_it() {
    let mut w = one("[{ after_minutes: 0, cure: rebuild }]");
    minutes(&mut w, 1);
    assert_eq!(ws(&w).state, "UNHEALTHY");
    reboot(&mut w);
    minutes(&mut w, durations::WORKSPACE_REBOOT);
    assert_eq!(ws(&w).state, "UNHEALTHY", "a reboot does not cure it");
    rebuild(&mut w);
    assert_eq!(ws(&w).state, "REBUILDING");
    minutes(&mut w, durations::WORKSPACE_REBUILD);
    assert_eq!(ws(&w).state, "AVAILABLE");
    assert_eq!(ws(&w).repair_minutes, 5 + 30);
    assert_eq!(ws(&w).unhealthy_minutes, 0, "repaired at once each time");
}

#[test]
fn an_outage_ends_by_itself_and_a_reboot_during_it_does_not_help() {
    let mut w = one("[{ after_minutes: 10, cure: self, minutes: 60 }]");
    minutes(&mut w, 20);
    assert_eq!(ws(&w).state, "UNHEALTHY");
    reboot(&mut w);
    minutes(&mut w, durations::WORKSPACE_REBOOT);
    assert_eq!(ws(&w).state, "UNHEALTHY", "still in the outage");
    rebuild(&mut w);
    minutes(&mut w, durations::WORKSPACE_REBUILD);
    assert_eq!(ws(&w).state, "UNHEALTHY", "a rebuild does not end an outage either");
    minutes(&mut w, 69 - 55);
    assert_eq!(ws(&w).state, "UNHEALTHY");
    minutes(&mut w, 1);
    assert_eq!(ws(&w).state, "AVAILABLE", "the outage is over at minute 70");
    assert_eq!((ws(&w).unhealthy_minutes, ws(&w).repair_minutes), (10 + 15, 35));
}

#[test]
fn an_outage_missed_while_stopped_never_starts_and_a_late_fault_waits_for_available() {
    let yaml = "workspaces: [{ id: ws-a00000001, user: ann, state: STOPPED, faults: [\
                    { after_minutes: 10, cure: self, minutes: 30 }, { after_minutes: 20, cure: rebuild }] }]";
    let mut w = world(yaml, 1);
    minutes(&mut w, 100);
    assert_eq!((ws(&w).state.as_str(), ws(&w).faults_started), ("STOPPED", 0));
    call(&mut w, "StartWorkspaces", "StartWorkspaceRequests");
    minutes(&mut w, durations::WORKSPACE_START);
    assert_eq!(ws(&w).state, "UNHEALTHY", "the rebuild fault starts once AVAILABLE");
    assert_eq!(ws(&w).faults_started, 1, "the outage was over before the WorkSpace was available");
    assert!(ws(&w).faults.is_empty());
}

#[test]
fn impaired_keeps_a_connected_user_unhealthy_does_not() {
    let mut w = one("[{ after_minutes: 5, state: IMPAIRED }, { after_minutes: 50, state: UNHEALTHY }]");
    minutes(&mut w, 5);
    assert_eq!((ws(&w).state.as_str(), ws(&w).connected), ("IMPAIRED", true));
    // RebootWorkspaces refuses an IMPAIRED WorkSpace; a stop and start cures it
    let refused = call(&mut w, "RebootWorkspaces", "RebootWorkspaceRequests");
    assert_eq!(refused["FailedRequests"][0]["ErrorCode"], json!("InvalidResourceState.Workspace"));
    stop_and_start(&mut w);
    minutes(&mut w, 60);
    assert_eq!((ws(&w).state.as_str(), ws(&w).faults_started), ("UNHEALTHY", 2));
    assert!(!ws(&w).connected);
}

#[test]
fn the_legacy_fields_map_onto_faults() {
    let yaml = "workspaces: [\
            { id: ws-b00000001, user: bob, unhealthy_after_minutes: 60 },\
            { id: ws-c00000001, user: carol, unhealthy_after_minutes: 120, recovers_on_reboot: false },\
            { id: ws-d00000001, user: dan, state: UNHEALTHY, recovers_on_reboot: false }]";
    let w = world(yaml, 1);
    let due = |id: &str| w.workspaces[id].faults.iter().map(|f| (f.at - w.now, f.cure)).collect::<Vec<_>>();
    assert_eq!(due("ws-b00000001"), [(Duration::minutes(60), Cure::Reboot)]);
    assert_eq!(due("ws-c00000001"), [(Duration::minutes(120), Cure::Rebuild)]);
    assert_eq!(w.workspaces["ws-d00000001"].fault.as_ref().map(|f| f.cure), Some(Cure::Rebuild));
}

const GROUP: &str = "workspace_groups:\n\
        - { count: 500, prefix: ws-grp, user_prefix: u, tags: { team: t }, connected_share: 0.3,\
            failures_per_week: 2, reboot_cures: 0.8, impaired_share: 0.25,\
            outages: [{ at_minutes: 3420, minutes: 90, share: 0.4 }] }";

fn faults(w: &World) -> Vec<&WorkspaceFault> {
    w.workspaces.values().flat_map(|ws| &ws.faults).collect()
}

#[test]
fn a_generated_group_is_deterministic_and_has_the_expected_faults() {
    let w = world(GROUP, 7);
    let again = world(GROUP, 7);
    let render = |w: &World| serde_json::to_string(&w.workspaces).unwrap();
    assert_eq!(render(&w), render(&again), "same seed, same group");
    assert_ne!(render(&w), render(&world(GROUP, 8)), "another seed, other faults");
    assert_eq!(w.workspaces.len(), 500);
    assert!(w.workspaces.contains_key("ws-grp000000") && w.workspaces.contains_key("ws-grp000499"));
    for (id, ws) in &w.workspaces {
        let tail = id.strip_prefix("ws-").unwrap();
        assert!(tail.len() == 9 && tail.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()), "{id}");
        assert_eq!(ws.user, format!("u{}", &id[6..]));
        assert_eq!(ws.tags["team"], "t");
        assert!(ws.faults.windows(2).all(|p| p[0].at <= p[1].at), "the queue is ordered");
    }
    assert_eq!(w.workspaces.values().filter(|ws| ws.connected).count(), 150);
    let all = faults(&w);
    let outage: Vec<_> = all.iter().filter(|f| f.cure == Cure::Itself).collect();
    assert_eq!(outage.len(), 200, "40% of the group");
    let wednesday = w.now + Duration::minutes(3420);
    assert!(outage.iter().all(|f| f.at == wednesday && f.until == Some(wednesday + Duration::minutes(90))));
    let random: Vec<&WorkspaceFault> = all.iter().copied().filter(|f| f.cure != Cure::Itself).collect();
    // 500 WorkSpaces × 2 a week: Poisson with mean 1000 (standard deviation about 32)
    assert!((880..=1120).contains(&random.len()), "{}", random.len());
    assert!(random.iter().all(|f| f.at >= w.now && f.at < w.now + Duration::days(7)));
    let share = |p: fn(&WorkspaceFault) -> bool| random.iter().filter(|f| p(f)).count() as f64 / random.len() as f64;
    assert!((share(|f| f.cure == Cure::Reboot) - 0.8).abs() < 0.05);
    assert!((share(|f| f.state == FaultState::Impaired) - 0.25).abs() < 0.05);
}

#[test]
fn groups_do_not_change_the_worlds_own_random_stream() {
    let with = world(GROUP, 3);
    let without = world("{}", 3);
    assert_eq!(with.rng.clone().next_u64(), without.rng.clone().next_u64());
}

#[test]
fn generated_ids_must_not_collide() {
    let yaml = "workspaces: [{ id: ws-grp000003, user: x }]\n".to_owned() + GROUP;
    let error = World::from_estate(&Estate::from_yaml(&yaml).unwrap(), 1).unwrap_err().to_string();
    assert!(error.contains("workspace_groups[0]") && error.contains("ws-grp000003"), "{error}");
}

#[test]
fn the_demo_groups_load() {
    let w = world(include_str!("../../estates/demo.yaml"), 1);
    assert_eq!(w.workspaces.len(), 4 + 120 + 20);
    let kiosk = w.workspaces.values().filter(|ws| ws.directory_id == "d-4456b7c8d9").count();
    assert_eq!(kiosk, 20);
    let outage = w.workspaces.values().flat_map(|ws| &ws.faults).filter(|f| f.cure == Cure::Itself).count();
    assert_eq!(outage, 48, "40% of the 120 sales WorkSpaces");
}
