//! The estate file (YAML): the resources of a simulated estate with their tags, states, capacities, user demand
//! and injected faults. Documented with examples in `local/README.md`; `local/estates/demo.yaml` is the demo.
//! Every resource carries an account and a region (defaulting to the file's).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The default virtual start time: a Monday, just after midnight UTC.
pub const DEFAULT_START: &str = "2026-11-23T00:00:00Z";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Estate {
    #[serde(default = "default_account")]
    pub account: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// Virtual clock start (RFC 3339).
    #[serde(default = "default_start")]
    pub start: String,
    #[serde(default)]
    pub workspaces_pools: Vec<PoolSpec>,
    #[serde(default)]
    pub workspaces: Vec<WorkspaceSpec>,
    #[serde(default)]
    pub fleets: Vec<FleetSpec>,
    #[serde(default)]
    pub image_builders: Vec<BuilderSpec>,
    #[serde(default)]
    pub images: Vec<ImageSpec>,
    #[serde(default)]
    pub environments: Vec<EnvironmentSpec>,
    #[serde(default)]
    pub software_sets: Vec<SoftwareSetSpec>,
    #[serde(default)]
    pub devices: Vec<DeviceGroupSpec>,
    #[serde(default)]
    pub faults: Faults,
}

fn default_account() -> String {
    "123456789012".into()
}
fn default_region() -> String {
    "eu-central-1".into()
}
fn default_start() -> String {
    DEFAULT_START.into()
}

/// Where a resource lives; defaults to the estate's account and region.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    pub account: Option<String>,
    pub region: Option<String>,
}

/// A weekly session-demand profile in local time: `hourly` gives the wanted concurrent sessions at each full
/// hour of a weekday (24 values) and, optionally, of a weekend day; values in between are interpolated.
/// `noise` is a relative, seeded jitter.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Demand {
    #[serde(default = "utc")]
    pub timezone: String,
    pub weekday: Vec<f64>,
    #[serde(default)]
    pub weekend: Option<Vec<f64>>,
    #[serde(default)]
    pub noise: f64,
    /// Typical session length in minutes (sessions end when demand falls).
    #[serde(default = "default_session_minutes")]
    pub session_minutes: u32,
}

fn utc() -> String {
    "UTC".into()
}
fn default_session_minutes() -> u32 {
    60
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    pub id: String,
    pub name: String,
    #[serde(default = "running")]
    pub state: String,
    #[serde(default = "auto_stop")]
    pub running_mode: String,
    #[serde(default)]
    pub desired_user_sessions: u32,
    #[serde(default = "default_directory")]
    pub directory_id: String,
    #[serde(default = "default_bundle")]
    pub bundle_id: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub demand: Option<Demand>,
    /// Errors the pool reports (`Errors`), e.g. a missing IAM role.
    #[serde(default)]
    pub errors: Vec<ErrorSpec>,
    /// Registered with Application Auto Scaling (another owner).
    #[serde(default)]
    pub application_autoscaling: bool,
    #[serde(default, flatten)]
    pub placement: Placement,
}

fn running() -> String {
    "RUNNING".into()
}
fn stopped() -> String {
    "STOPPED".into()
}
fn available() -> String {
    "AVAILABLE".into()
}
fn auto_stop() -> String {
    "AUTO_STOP".into()
}
fn default_directory() -> String {
    "d-9067a1b2c3".into()
}
fn default_bundle() -> String {
    "wsb-0123456789".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorSpec {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceSpec {
    pub id: String,
    #[serde(default = "default_directory")]
    pub directory_id: String,
    pub user: String,
    #[serde(default = "default_bundle")]
    pub bundle_id: String,
    #[serde(default = "available")]
    pub state: String,
    /// A user is connected.
    #[serde(default)]
    pub connected: bool,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Minutes after the start at which the WorkSpace becomes UNHEALTHY.
    #[serde(default)]
    pub unhealthy_after_minutes: Option<u32>,
    /// Whether a reboot cures it (otherwise only a rebuild does).
    #[serde(default = "yes")]
    pub recovers_on_reboot: bool,
    #[serde(default, flatten)]
    pub placement: Placement,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetSpec {
    pub name: String,
    /// ALWAYS_ON, ON_DEMAND or ELASTIC.
    #[serde(default = "on_demand")]
    pub fleet_type: String,
    #[serde(default = "running")]
    pub state: String,
    #[serde(default = "default_instance_type")]
    pub instance_type: String,
    /// 1 for single-session fleets; more makes a multi-session fleet (capacity in sessions).
    #[serde(default = "one")]
    pub max_sessions_per_instance: u32,
    /// DesiredInstances (single-session) or DesiredSessions (multi-session).
    #[serde(default)]
    pub desired: u32,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub demand: Option<Demand>,
    #[serde(default)]
    pub errors: Vec<ErrorSpec>,
    #[serde(default)]
    pub application_autoscaling: bool,
    #[serde(default, flatten)]
    pub placement: Placement,
}

fn on_demand() -> String {
    "ON_DEMAND".into()
}
fn default_instance_type() -> String {
    "stream.standard.medium".into()
}
fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuilderSpec {
    pub name: String,
    #[serde(default = "stopped")]
    pub state: String,
    #[serde(default = "default_instance_type")]
    pub instance_type: String,
    /// Minutes the builder stays in its initial state before settling (e.g. SNAPSHOTTING for 30).
    #[serde(default)]
    pub state_minutes: Option<u32>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// When people work on the builder (`autopilot simulate` only): they start it if it is stopped, may
    /// create an image when they finish, and never stop it.
    #[serde(default)]
    pub work: Option<BuilderWork>,
    #[serde(default, flatten)]
    pub placement: Placement,
}

/// People's weekly work on an image builder, in local time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuilderWork {
    #[serde(default = "utc")]
    pub timezone: String,
    pub sessions: Vec<WorkSession>,
}

/// One weekly work session: on `days` (e.g. `mon-fri`, `wed`) at `start` (HH:MM) for `hours`; with
/// `create_image` the person creates an image from the builder when the session ends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkSession {
    pub days: String,
    pub start: String,
    pub hours: f64,
    #[serde(default)]
    pub create_image: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    pub name: String,
    #[serde(default = "available")]
    pub state: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default, flatten)]
    pub placement: Placement,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSpec {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub desired_software_set_id: Option<String>,
    /// USE_LATEST or USE_DESIRED.
    #[serde(default = "use_desired")]
    pub software_set_update_mode: String,
    /// USE_MAINTENANCE_WINDOW or APPLY_IMMEDIATELY.
    #[serde(default = "use_window")]
    pub software_set_update_schedule: String,
    #[serde(default)]
    pub maintenance_window: Option<WindowSpec>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default, flatten)]
    pub placement: Placement,
}

fn use_desired() -> String {
    "USE_DESIRED".into()
}
fn use_window() -> String {
    "USE_MAINTENANCE_WINDOW".into()
}

/// A maintenance window in UTC hours and minutes on the given days (MONDAY … SUNDAY).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    pub days: Vec<String>,
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoftwareSetSpec {
    pub id: String,
    pub version: String,
    pub released_at: String,
    #[serde(default)]
    pub supported_until: Option<String>,
    /// VALIDATED or NOT_VALIDATED.
    #[serde(default = "validated")]
    pub validation_status: String,
}

fn validated() -> String {
    "VALIDATED".into()
}

/// `count` devices in one environment, all on `current_software_set_id`; `never_update` of them ignore new
/// software sets (a fault); `not_reporting` of them stopped reporting posture.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceGroupSpec {
    pub environment: String,
    pub count: u32,
    pub current_software_set_id: String,
    #[serde(default)]
    pub never_update: u32,
    #[serde(default)]
    pub not_reporting: u32,
    /// Minutes a device needs to apply a software set.
    #[serde(default = "default_apply_minutes")]
    pub apply_minutes: u32,
}

fn default_apply_minutes() -> u32 {
    20
}

/// Injected faults, seeded and reproducible.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Per operation: allowed requests per second (token bucket in wall-clock time); excess is throttled.
    #[serde(default)]
    pub throttle_per_second: BTreeMap<String, f64>,
    /// Per operation: share of requests answered with a 5xx.
    #[serde(default)]
    pub error_rate: BTreeMap<String, f64>,
    /// Per operation: added latency in milliseconds (wall clock).
    #[serde(default)]
    pub latency_ms: BTreeMap<String, u64>,
    /// Per batch operation: share of items that fail in `FailedRequests`.
    #[serde(default)]
    pub batch_failure_rate: BTreeMap<String, f64>,
    #[serde(default)]
    pub exports: ExportFaults,
}

/// How export tasks and imported images end.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportFaults {
    /// Minutes an export runs before it ends.
    #[serde(default = "default_export_minutes")]
    pub minutes: u32,
    #[serde(default)]
    pub fail_rate: f64,
    #[serde(default)]
    pub time_out_rate: f64,
    /// The first this many export tasks created end in `fail_as` (deterministic faults for tests).
    #[serde(default)]
    pub fail_first: u32,
    /// `FAILED` or `TIMED_OUT`.
    #[serde(default = "failed")]
    pub fail_as: String,
    /// The `ErrorCode` a FAILED export reports.
    #[serde(default = "export_error_code")]
    pub error_code: String,
    /// Minutes an import spends in IMPORTING and then VALIDATING.
    #[serde(default = "default_import_minutes")]
    pub import_minutes: u32,
    #[serde(default)]
    pub import_fail_rate: f64,
}

impl Default for ExportFaults {
    fn default() -> Self {
        Self {
            minutes: default_export_minutes(),
            fail_rate: 0.0,
            time_out_rate: 0.0,
            fail_first: 0,
            fail_as: failed(),
            error_code: export_error_code(),
            import_minutes: default_import_minutes(),
            import_fail_rate: 0.0,
        }
    }
}

fn failed() -> String {
    "FAILED".into()
}
fn export_error_code() -> String {
    "EXPORT_IMAGE_FAILED".into()
}
fn default_export_minutes() -> u32 {
    45
}
fn default_import_minutes() -> u32 {
    30
}

/// Why an estate file was rejected.
#[derive(Debug, thiserror::Error)]
#[error("invalid estate file: {path}: {reason}")]
pub struct EstateError {
    pub path: String,
    pub reason: String,
}

impl Estate {
    pub fn from_yaml(text: &str) -> Result<Self, EstateError> {
        serde_yaml_ng::from_str(text).map_err(|e| EstateError {
            path: e.location().map(|l| format!("line {}", l.line())).unwrap_or_default(),
            reason: e.to_string(),
        })
    }
}
