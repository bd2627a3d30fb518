//! The sample events of each function (`events/<function>/`) as a scenario: the estate whose resources they
//! name (`sim/estates/samples.yaml`), the order they are delivered in and what each must come back with. The
//! runtime test (`tests/tests/runtime_api.rs`) delivers them to the packaged binaries; `autopilot chaos`
//! redelivers, crashes and faults them in process.

use autopilot_sim::LocalEstate;

/// The estate the samples name (start: the samples' time, 2026-11-23T06:00Z).
pub const ESTATE: &str = include_str!("../../sim/estates/samples.yaml");

/// The policy the samples run against (live: every sample acts).
pub const POLICY: &str = include_str!("../../sim/estates/samples-policy.yaml");

/// What a sample must come back with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A response whose `status` is this.
    Status(&'static str),
    /// An error with this `errorType`.
    Error(&'static str),
}

use Expect::{Error, Status};

/// Every sample of every function, in delivery order (one process and one estate per function, so later
/// samples see what earlier ones did), with its outcome. A sample without a line here fails the test. Each
/// function meets an invalid sample early: the samples after it show the runtime keeps serving.
pub const EXPECTATIONS: [(&str, &[(&str, Expect)]); 5] = [
    (
        "pool-scaler",
        &[
            ("tick.json", Status("reconciled")),
            ("invalid-tick-detail.json", Error("InvalidInput")), // a schedule whose input is not `{}`
            ("session-notification.json", Status("reconciled")), // sales-fleet now
            ("workspaces-access.json", Status("reconciled")),    // the pools of directory d-9067a1b2c3 now
            ("manual-stop-fleet.json", Status("recorded")),      // alice stopped sales-fleet
            ("manual-update-workspaces-pool.json", Status("recorded")),
            ("tag-resource-fleet.json", Status("tags-changed")), // sales-fleet's cached tags are stale
            ("create-tags-pool.json", Status("tags-changed")),
        ],
    ),
    (
        "builder-scheduler",
        &[
            ("create-image-builder.json", Status("recorded")), // golden-builder-2's run starts
            ("invalid-start-image-builder-no-parameters.json", Error("InvalidInput")),
            ("manual-start-image-builder.json", Status("recorded")),
            ("create-image.json", Status("recorded")), // a snapshot is coming
            ("manual-stop-image-builder.json", Status("recorded")),
            ("tick.json", Status("reconciled")),
            ("untag-resource-image-builder.json", Status("tags-changed")),
        ],
    ),
    (
        "export-chaser",
        &[
            ("export-requested.json", Status("requested")), // CreateExportImageTask for golden-2026-11
            ("export-requested-malformed-role.json", Error("InvalidInput")),
            ("cloudtrail-create-export-image-task.json", Status("adopted")), // alice's task (see `prepare`)
            ("cloudtrail-create-imported-image.json", Status("adopted")),
            ("tick.json", Status("chased")),
        ],
    ),
    (
        "softwareset-roller",
        &[
            ("rollout-requested.json", Status("requested")), // set 123456, ring by ring
            ("invalid-rollout-requested-unknown-field.json", Error("InvalidInput")), // `softwareSet`: a typo
            ("rollout-paused.json", Status("paused")),       // that rollout (its id is the request's event id)
            ("rollout-resumed.json", Status("resumed")),
            ("tick.json", Status("stepped")),
            ("tag-resource-environment.json", Status("tags-changed")), // envcanary01's cached tags are stale
            ("rollout-aborted.json", Status("aborted")),
        ],
    ),
    (
        "remediator",
        &[
            ("admin-maintenance.json", Status("recorded")), // ws-a1b2c3d4e hands off
            ("invalid-remediation-requested-no-resource-id.json", Error("InvalidInput")),
            ("remediation-requested.json", Status("swept")), // ws-f8h2k9m1p is rebooted at once
            ("remediation-requested-directory.json", Status("swept")),
            ("alarm.json", Status("swept")), // mapped to sales-fleet by the policy
            ("tick.json", Status("swept")),
        ],
    ),
];

/// The samples' folder: `events/<function>/` of the workspace.
pub fn folder(function: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events").join(function)
}

/// Why a sample could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("{}: {source}", path.display())]
    Read { path: std::path::PathBuf, source: std::io::Error },
    #[error("{}: {source}", path.display())]
    Json { path: std::path::PathBuf, source: serde_json::Error },
}

/// The sample `name` of `function`, parsed.
pub fn read(function: &str, name: &str) -> Result<serde_json::Value, SampleError> {
    let path = folder(function).join(name);
    let bytes = std::fs::read(&path).map_err(|source| SampleError::Read { path: path.clone(), source })?;
    serde_json::from_slice(&bytes).map_err(|source| SampleError::Json { path, source })
}

/// The samples of `function` in delivery order, with what each must come back with.
pub fn expectations(function: &str) -> &'static [(&'static str, Expect)] {
    EXPECTATIONS.iter().find(|(f, _)| *f == function).map_or(&[], |(_, e)| e)
}

/// Set-up a sample needs beyond the estate file: the export task alice created, which the CloudTrail sample
/// reports (the estate format has no export tasks).
pub fn prepare(function: &str, local: &LocalEstate) {
    if function != "export-chaser" {
        return;
    }
    local.simulator.with_world_mut(|world| {
        // alice called CreateExportImageTask at 05:58 (the CloudTrail sample's eventTime), before the samples'
        // Export Requested of the same image at 06:00: a task created before our intent is never taken for ours.
        let now = world.now;
        let created_at = now - chrono::Duration::minutes(2);
        let task = autopilot_sim::world::ExportTask {
            task_id: "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111".into(),
            image_name: "golden-2026-11".into(),
            image_arn: "arn:aws:appstream:eu-central-1:123456789012:image/golden-2026-11".into(),
            ami_name: "golden-2026-11-ami".into(),
            ami_description: Some("Golden image export".into()),
            created_at,
            state: "EXPORTING".into(),
            ami_id: None,
            tags: Default::default(),
            error: None,
            ends_at: created_at + chrono::Duration::minutes(45),
            outcome: "COMPLETED".into(),
        };
        world.exports.insert(task.task_id.clone(), task);
    });
}
