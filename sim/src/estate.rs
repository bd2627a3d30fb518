//! The estate file (YAML): the resources of a simulated estate with their tags, states, capacities, user demand
//! and injected faults. Documented with examples in `docs/local-estate.md`; `sim/estates/demo.yaml` is the demo.
//! Every resource carries an account and a region (defaulting to the file's).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use crate::organization::{OrganizationSpec, UnitSpec};

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
    /// Generated personal WorkSpaces with seeded faults and outages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workspace_groups: Vec<WorkspaceGroupSpec>,
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
    /// The roles the stack lets the export-chaser pass to AppStream (the template's `ExportRoleArns`); default:
    /// `arn:aws:iam::<account>:role/AppStreamExportRole`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_role_arns: Option<Vec<String>>,
    /// Accounts where `spoke.yaml` is deployed: the hub's functions may assume its role there (through the
    /// simulator's STS) when a policy targets them. An account not listed has no spoke role: AccessDenied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spokes: Vec<crate::iam::sts::SpokeDeployment>,
    /// The AWS organization the estate's accounts belong to, with the hub (`account`) as its management
    /// account: AWS Organizations `ListAccountsForParent` and `ListChildren` answer from it, so a policy's
    /// `organizational_units` are discovered as on AWS. None: Organizations answers `AWSOrganizationsNotInUseException`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<OrganizationSpec>,
}

pub(crate) fn default_account() -> String {
    "123456789012".into()
}
pub(crate) fn default_region() -> String {
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
    /// Minutes after the start at which the WorkSpace becomes UNHEALTHY (a shorthand for one fault).
    #[serde(default)]
    pub unhealthy_after_minutes: Option<u32>,
    /// Whether a reboot cures the `unhealthy_after_minutes` fault (otherwise only a rebuild does).
    #[serde(default = "yes")]
    pub recovers_on_reboot: bool,
    /// Further health faults, each starting `after_minutes` after the start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<WorkspaceFaultSpec>,
    #[serde(default, flatten)]
    pub placement: Placement,
}

fn yes() -> bool {
    true
}

/// What ends a WorkSpace health fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cure {
    /// A reboot (or a stop, or a rebuild) cures it.
    Reboot,
    /// Only a rebuild cures it; reboots leave the WorkSpace in the fault's state.
    Rebuild,
    /// It ends by itself after its minutes (e.g. a directory outage); nothing cures it sooner.
    #[serde(rename = "self")]
    Itself,
}

/// The state a WorkSpace health fault puts it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FaultState {
    /// Users are disconnected.
    Unhealthy,
    /// Degraded: a connected user may stay on it.
    Impaired,
}

impl FaultState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unhealthy => "UNHEALTHY",
            Self::Impaired => "IMPAIRED",
        }
    }
}

/// One health fault of one WorkSpace. It starts `after_minutes` after the start if the WorkSpace is AVAILABLE
/// then, else as soon as it next is; a `self` fault lasts from `after_minutes` for `minutes` (a window in time:
/// one that could not start inside its window never starts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceFaultSpec {
    pub after_minutes: u32,
    #[serde(default = "cure_reboot")]
    pub cure: Cure,
    /// How long a `self` fault lasts (required for `self`, not allowed otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<u32>,
    #[serde(default = "fault_unhealthy")]
    pub state: FaultState,
}

fn cure_reboot() -> Cure {
    Cure::Reboot
}
fn fault_unhealthy() -> FaultState {
    FaultState::Unhealthy
}

/// `count` generated personal WorkSpaces `<prefix><n>` (n from 0, zero-padded so the id is `ws-` and 9
/// lowercase letters or digits) of users `<user_prefix><n>`, with faults placed by the seeded generator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceGroupSpec {
    #[serde(default = "default_directory")]
    pub directory_id: String,
    pub count: u32,
    /// `ws-` and lowercase letters or digits, leaving enough of the 9 characters for the numbers.
    pub prefix: String,
    #[serde(default = "default_user_prefix")]
    pub user_prefix: String,
    #[serde(default = "default_bundle")]
    pub bundle_id: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Share (0..1) of the WorkSpaces with a user connected at the start.
    #[serde(default)]
    pub connected_share: f64,
    /// Expected health faults per WorkSpace per week, placed at random over the 7 days from the start.
    #[serde(default)]
    pub failures_per_week: f64,
    /// Share (0..1) of those faults a reboot cures; the rest need a rebuild.
    #[serde(default = "all")]
    pub reboot_cures: f64,
    /// Share (0..1) of those faults that make the WorkSpace IMPAIRED rather than UNHEALTHY.
    #[serde(default)]
    pub impaired_share: f64,
    /// Outages (e.g. of the directory) that make a share of the group UNHEALTHY until they end.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outages: Vec<OutageSpec>,
    #[serde(default, flatten)]
    pub placement: Placement,
}

fn default_user_prefix() -> String {
    "user".into()
}
fn all() -> f64 {
    1.0
}

/// `share` (0..1) of a group's WorkSpaces, chosen at random, turn UNHEALTHY `at_minutes` after the start and
/// recover by themselves `minutes` later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutageSpec {
    pub at_minutes: u32,
    pub minutes: u32,
    pub share: f64,
}

/// The length of a WorkSpace id after `ws-`.
pub const WORKSPACE_ID_CHARS: usize = 9;

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
    /// The desktop's endpoint (`desktopEndpoint`, e.g. a streaming URL); none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desktop_endpoint: Option<String>,
    /// The code devices register with (`activationCode`); by default derived from the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_code: Option<String>,
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
    /// Device names are this prefix and the device's number (`<prefix>0000`, …); by default each device's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_prefix: Option<String>,
    /// Tags of every device in the group.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
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
    /// Per batch operation: the `ErrorCode` of those failures (default `InternalError`; e.g.
    /// `InvalidResourceState.Workspace`: the WorkSpace changed state just before the call).
    #[serde(default)]
    pub batch_failure_code: BTreeMap<String, String>,
    /// Per batch operation: the first this many attempts of every item fail in `FailedRequests`, the next
    /// succeed (deterministic, unlike `batch_failure_rate`: every retry path is taken, whatever the seed).
    #[serde(default)]
    pub batch_fail_first: BTreeMap<String, u32>,
    #[serde(default)]
    pub exports: ExportFaults,
    /// Per account × region (`<account>/<region>`): faults of every operation answered there (many accounts:
    /// one bad shard beside good ones).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub places: BTreeMap<String, PlaceFaults>,
}

/// Faults of every operation in one account × region.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceFaults {
    /// Share of requests answered with a 5xx.
    #[serde(default)]
    pub error_rate: f64,
    /// Requests per second allowed there, all operations together; excess is throttled.
    #[serde(default)]
    pub throttle_per_second: Option<f64>,
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
    /// Parses and validates an estate file.
    /// The template parameter `ExportRoleArns` of the local stack.
    pub fn export_role_arns(&self) -> Vec<String> {
        self.export_role_arns
            .clone()
            .unwrap_or_else(|| vec![format!("arn:aws:iam::{}:role/AppStreamExportRole", self.account)])
    }

    pub fn from_yaml(text: &str) -> Result<Self, EstateError> {
        let estate: Self = serde_yaml_ng::from_str(text).map_err(|e| EstateError {
            path: e.location().map(|l| format!("line {}", l.line())).unwrap_or_default(),
            reason: e.to_string(),
        })?;
        estate.validate()?;
        Ok(estate)
    }

    /// Checks what the types cannot: shares in 0..1, sane counts, well-formed generated ids.
    pub fn validate(&self) -> Result<(), EstateError> {
        for (i, w) in self.workspaces.iter().enumerate() {
            for (j, fault) in w.faults.iter().enumerate() {
                fault.validate(&format!("workspaces[{i}].faults[{j}]"))?;
            }
        }
        for (i, group) in self.workspace_groups.iter().enumerate() {
            group.validate(&format!("workspace_groups[{i}]"))?;
        }
        if let Some(organization) = &self.organization {
            organization.validate()?;
        }
        Ok(())
    }
}

pub(crate) fn invalid(path: String, reason: impl Into<String>) -> EstateError {
    EstateError { path, reason: reason.into() }
}

fn check_share(path: &str, field: &str, value: f64) -> Result<(), EstateError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(invalid(format!("{path}.{field}"), format!("is a share and must be between 0 and 1, not {value}")))
    }
}

impl WorkspaceFaultSpec {
    fn validate(&self, path: &str) -> Result<(), EstateError> {
        match (self.cure, self.minutes) {
            (Cure::Itself, None | Some(0)) => {
                Err(invalid(format!("{path}.minutes"), "a fault with cure: self needs minutes (at least 1)"))
            }
            (Cure::Reboot | Cure::Rebuild, Some(_)) => {
                Err(invalid(format!("{path}.minutes"), "minutes applies only to cure: self"))
            }
            _ => Ok(()),
        }
    }
}

/// Most WorkSpaces one group may generate.
pub const MAX_GROUP_COUNT: u32 = 100_000;
/// Most faults per WorkSpace per week a group may ask for (about one an hour).
pub const MAX_FAILURES_PER_WEEK: f64 = 168.0;

impl WorkspaceGroupSpec {
    /// Digits of the number that follows the prefix in each id.
    pub fn id_digits(&self) -> usize {
        WORKSPACE_ID_CHARS.saturating_sub(self.prefix.len().saturating_sub(3))
    }

    /// The id and user of the `n`th WorkSpace.
    pub fn member(&self, n: u32) -> (String, String) {
        let width = self.id_digits();
        (format!("{}{n:0width$}", self.prefix), format!("{}{n:0width$}", self.user_prefix))
    }

    fn validate(&self, path: &str) -> Result<(), EstateError> {
        if self.count == 0 || self.count > MAX_GROUP_COUNT {
            return Err(invalid(
                format!("{path}.count"),
                format!("must be between 1 and {MAX_GROUP_COUNT}, not {}", self.count),
            ));
        }
        let tail = self.prefix.strip_prefix("ws-").unwrap_or("");
        if !self.prefix.starts_with("ws-")
            || !tail.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            || tail.len() >= WORKSPACE_ID_CHARS
        {
            return Err(invalid(
                format!("{path}.prefix"),
                format!(
                    "{:?} must be ws- and at most {} lowercase letters or digits (ids are ws- and \
                     {WORKSPACE_ID_CHARS} lowercase letters or digits)",
                    self.prefix,
                    WORKSPACE_ID_CHARS - 1
                ),
            ));
        }
        let needed = (self.count - 1).to_string().len();
        if needed > self.id_digits() {
            return Err(invalid(
                format!("{path}.prefix"),
                format!(
                    "{:?} leaves {} digit(s) for the numbers, {} WorkSpaces need {needed}: shorten the prefix",
                    self.prefix,
                    self.id_digits(),
                    self.count
                ),
            ));
        }
        if !(0.0..=MAX_FAILURES_PER_WEEK).contains(&self.failures_per_week) {
            return Err(invalid(
                format!("{path}.failures_per_week"),
                format!("must be between 0 and {MAX_FAILURES_PER_WEEK}, not {}", self.failures_per_week),
            ));
        }
        check_share(path, "connected_share", self.connected_share)?;
        check_share(path, "reboot_cures", self.reboot_cures)?;
        check_share(path, "impaired_share", self.impaired_share)?;
        for (j, outage) in self.outages.iter().enumerate() {
            let at = format!("{path}.outages[{j}]");
            check_share(&at, "share", outage.share)?;
            if outage.minutes == 0 {
                return Err(invalid(format!("{at}.minutes"), "an outage lasts at least 1 minute"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(yaml: &str) -> String {
        Estate::from_yaml(yaml).unwrap_err().to_string()
    }

    #[test]
    fn invalid_groups_and_faults_are_rejected_with_a_clear_reason() {
        let group = |fields: &str| format!("workspace_groups: [{{ count: 10, prefix: ws-x, {fields} }}]");
        let e = error(&group("connected_share: 1.5"));
        assert_eq!(
            e,
            "invalid estate file: workspace_groups[0].connected_share: is a share and must be between 0 and 1, not 1.5"
        );
        assert!(error(&group("reboot_cures: -0.1")).contains("workspace_groups[0].reboot_cures"));
        assert!(error(&group("impaired_share: .nan")).contains("workspace_groups[0].impaired_share"));
        let e = error(&group("outages: [{ at_minutes: 1, minutes: 5, share: 2 }]"));
        assert!(e.contains("workspace_groups[0].outages[0].share"), "{e}");
        assert!(error(&group("outages: [{ at_minutes: 1, minutes: 0, share: 1 }]")).contains("at least 1 minute"));
        assert!(error(&group("failures_per_week: -1")).contains("failures_per_week"));
        assert!(error(&group("colour: red")).contains("unknown field"), "unknown fields are errors");
        assert!(error("workspace_groups: [{ count: 0, prefix: ws-x }]").contains("count: must be between 1"));
        let e = error("workspace_groups: [{ count: 10, prefix: WS-X }]");
        assert!(e.contains("workspace_groups[0].prefix") && e.contains("lowercase"), "{e}");
        let e = error("workspace_groups: [{ count: 120, prefix: ws-abcdefg }]");
        assert!(e.contains("leaves 2 digit(s)") && e.contains("need 3"), "{e}");
        let fault = |f: &str| format!("workspaces: [{{ id: ws-a00000001, user: a, faults: [{f}] }}]");
        assert!(error(&fault("{ after_minutes: 1, cure: self }")).contains("workspaces[0].faults[0].minutes"));
        assert!(error(&fault("{ after_minutes: 1, minutes: 5 }")).contains("only to cure: self"));
        assert!(error(&fault("{ after_minutes: 1, cure: reinstall }")).contains("unknown variant"));
        assert!(error(&fault("{ after_minutes: 1, state: ERROR }")).contains("unknown variant"));
    }

    #[test]
    fn group_members_have_valid_ids() {
        let group: WorkspaceGroupSpec = serde_yaml_ng::from_str("{ count: 120, prefix: ws-sales }").unwrap();
        assert_eq!(group.member(7), ("ws-sales0007".into(), "user0007".into()));
        assert_eq!(group.id_digits(), 4);
        assert!(Estate::from_yaml("workspace_groups: [{ count: 10, prefix: ws-abcdefgh }]").is_ok(), "1 digit");
    }
}
