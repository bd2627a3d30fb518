//! The simulated estate: every resource, its state machine on the virtual clock, user demand and the running
//! totals (capacity-hours, served session-minutes, unserved requests). Operations in `services/` read and
//! change it; [`World::advance_to`] moves time forward minute by minute.

use crate::estate::{self, Cure, Demand, Estate, FaultState};
use crate::rng::Rng;
use chrono::{DateTime, Datelike, Duration, NaiveTime, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::Serialize;
use std::collections::BTreeMap;

/// How long things take, in minutes of virtual time.
pub mod durations {
    pub const POOL_START: i64 = 12;
    pub const POOL_STOP: i64 = 8;
    pub const POOL_UPDATE: i64 = 2;
    pub const FLEET_START: i64 = 15;
    pub const FLEET_STOP: i64 = 5;
    pub const PROVISION: i64 = 10;
    pub const BUILDER_START: i64 = 10;
    pub const BUILDER_STOP: i64 = 5;
    /// A builder creating an image (Image Assistant) is SNAPSHOTTING this long.
    pub const BUILDER_SNAPSHOT: i64 = 25;
    pub const WORKSPACE_START: i64 = 3;
    pub const WORKSPACE_STOP: i64 = 3;
    pub const WORKSPACE_REBOOT: i64 = 5;
    pub const WORKSPACE_REBUILD: i64 = 30;
}

/// A state change scheduled for later.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pending {
    pub at: DateTime<Utc>,
    pub state: String,
}

/// Capacity and the sessions using it, shared by pools and fleets. Units are sessions for pools and
/// multi-session fleets and instances for single-session fleets (`sessions_per_unit` converts).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Capacity {
    pub desired: u32,
    pub actual: u32,
    pub active_sessions: u32,
    pub sessions_per_unit: u32,
    /// Capacity being added: each increase becomes usable on its own after the provisioning delay.
    pub provisioning: Vec<(DateTime<Utc>, u32)>,
}

impl Capacity {
    fn new(desired: u32, sessions_per_unit: u32, running: bool) -> Self {
        Self {
            desired,
            actual: if running { desired } else { 0 },
            active_sessions: 0,
            sessions_per_unit: sessions_per_unit.max(1),
            provisioning: Vec::new(),
        }
    }

    /// Sessions the current units can hold.
    pub fn session_capacity(&self) -> u32 {
        self.actual * self.sessions_per_unit
    }

    /// Units that carry at least one session (never removed by scale-in).
    pub fn units_in_use(&self) -> u32 {
        self.active_sessions.div_ceil(self.sessions_per_unit)
    }

    pub fn set_desired(&mut self, desired: u32, now: DateTime<Utc>) {
        self.desired = desired;
        if desired > self.actual {
            self.provisioning.push((now + Duration::minutes(durations::PROVISION), desired));
        } else {
            // Scale-in never ends an active session: keep the units in use.
            self.actual = desired.max(self.units_in_use());
            self.provisioning.clear();
        }
    }

    fn tick(&mut self, now: DateTime<Utc>) {
        let desired = self.desired;
        let mut actual = self.actual;
        self.provisioning.retain(|(ready, target)| {
            let done = *ready <= now;
            if done {
                actual = actual.max((*target).min(desired));
            }
            !done
        });
        self.actual = actual;
        if self.desired < self.actual {
            self.actual = self.desired.max(self.units_in_use());
        }
    }
}

/// Running totals of one resource, for cost and service-level measurement.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    /// Units (sessions or instances) running, in hours.
    pub capacity_hours: f64,
    pub served_session_minutes: u64,
    /// Sessions that started (users who found capacity).
    pub sessions_started: u64,
    pub unserved_session_minutes: u64,
    /// Users who wanted a session and found no capacity (each shortfall counted once).
    pub unserved_requests: u64,
    shortfall: u32,
    /// Sessions wanted in the last simulated minute (for charts).
    pub wanted_now: u32,
    /// The current relative demand noise.
    #[serde(skip)]
    drift: f64,
    /// Minutes with users left without a session, and how many (the first 10,000).
    #[serde(skip)]
    pub shortfalls: Vec<(DateTime<Utc>, u32)>,
}

/// Demand evaluated per minute.
#[derive(Debug, Clone)]
pub struct DemandModel {
    timezone: Tz,
    weekday: Vec<f64>,
    weekend: Vec<f64>,
    noise: f64,
}

impl DemandModel {
    pub fn from_spec(spec: &Demand) -> Result<Self, String> {
        let timezone: Tz = spec.timezone.parse().map_err(|_| format!("{} is not an IANA time zone", spec.timezone))?;
        if spec.weekday.len() != 24 || spec.weekend.as_ref().is_some_and(|w| w.len() != 24) {
            return Err("demand profiles need 24 hourly values".into());
        }
        Ok(Self {
            timezone,
            weekday: spec.weekday.clone(),
            weekend: spec.weekend.clone().unwrap_or_else(|| vec![0.0; 24]),
            noise: spec.noise,
        })
    }

    /// The most sessions this profile can want (its highest hourly value with the noise on top).
    pub fn peak(&self) -> u32 {
        let highest = self.weekday.iter().chain(self.weekend.iter()).copied().fold(0.0, f64::max);
        (highest * (1.0 + 3.0 * self.noise.abs())).ceil().max(0.0) as u32
    }

    /// Wanted concurrent sessions at `now` (before noise).
    pub fn wanted(&self, now: DateTime<Utc>) -> f64 {
        let local = now.with_timezone(&self.timezone);
        let profile = |weekday: Weekday| {
            if matches!(weekday, Weekday::Sat | Weekday::Sun) { &self.weekend } else { &self.weekday }
        };
        let hour = local.hour() as usize;
        let this = profile(local.weekday())[hour];
        let next_weekday = if hour == 23 { local.weekday().succ() } else { local.weekday() };
        let next = profile(next_weekday)[(hour + 1) % 24];
        let fraction = f64::from(local.minute()) / 60.0;
        this + (next - this) * fraction
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Pool {
    pub id: String,
    pub name: String,
    pub account: String,
    pub region: String,
    pub state: String,
    pub running_mode: String,
    pub directory_id: String,
    pub bundle_id: String,
    pub created_at: DateTime<Utc>,
    pub capacity: Capacity,
    pub tags: BTreeMap<String, String>,
    pub errors: Vec<(String, String)>,
    pub application_autoscaling: bool,
    pub pending: Option<Pending>,
    pub totals: Totals,
    #[serde(skip)]
    pub demand: Option<DemandModel>,
}

impl Totals {
    /// Users who wanted a session: those who got one and those who found no capacity.
    pub fn session_requests(&self) -> u64 {
        self.sessions_started + self.unserved_requests
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Fleet {
    pub name: String,
    pub account: String,
    pub region: String,
    pub fleet_type: String,
    pub state: String,
    pub instance_type: String,
    pub max_sessions_per_instance: u32,
    pub image: Option<String>,
    pub created_at: DateTime<Utc>,
    pub capacity: Capacity,
    pub tags: BTreeMap<String, String>,
    pub errors: Vec<(String, String)>,
    pub application_autoscaling: bool,
    pub pending: Option<Pending>,
    pub totals: Totals,
    #[serde(skip)]
    pub demand: Option<DemandModel>,
}

impl Fleet {
    pub fn is_multi_session(&self) -> bool {
        self.max_sessions_per_instance > 1
    }
}

/// A personal WorkSpace. Its health faults come from a queue (`faults`, earliest first); one at a time is
/// `fault`, which holds the WorkSpace in the fault's state until its cure: a reboot (or stop) for
/// [`Cure::Reboot`], a rebuild for [`Cure::Reboot`] and [`Cure::Rebuild`], the end of its window for
/// [`Cure::Itself`].
#[derive(Debug, Clone, Serialize)]
pub struct Workspace {
    pub id: String,
    pub account: String,
    pub region: String,
    pub directory_id: String,
    pub user: String,
    pub bundle_id: String,
    pub state: String,
    pub connected: bool,
    pub last_connected: Option<DateTime<Utc>>,
    pub tags: BTreeMap<String, String>,
    pub pending: Option<Pending>,
    /// Faults still to start, earliest first.
    pub faults: Vec<WorkspaceFault>,
    /// The fault the WorkSpace has now.
    pub fault: Option<WorkspaceFault>,
    /// Minutes spent UNHEALTHY, IMPAIRED or ERROR.
    pub unhealthy_minutes: u64,
    /// Minutes spent REBOOTING or REBUILDING.
    pub repair_minutes: u64,
    /// Faults that started.
    pub faults_started: u32,
}

/// One health fault of a WorkSpace: due `at` (it starts then, or when the WorkSpace is next AVAILABLE); a
/// [`Cure::Itself`] fault ends at `until` (and never starts once that has passed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkspaceFault {
    pub at: DateTime<Utc>,
    pub cure: Cure,
    pub until: Option<DateTime<Utc>>,
    pub state: FaultState,
}

impl WorkspaceFault {
    fn from_spec(spec: &estate::WorkspaceFaultSpec, start: DateTime<Utc>) -> Self {
        let at = start + Duration::minutes(i64::from(spec.after_minutes));
        Self {
            at,
            cure: spec.cure,
            until: match spec.cure {
                Cure::Itself => Some(at + Duration::minutes(i64::from(spec.minutes.unwrap_or(0)))),
                _ => None,
            },
            state: spec.state,
        }
    }

    /// Whether a self-curing fault is over at `now`.
    fn over(&self, now: DateTime<Utc>) -> bool {
        self.until.is_some_and(|until| until <= now)
    }
}

impl Workspace {
    /// UNHEALTHY, IMPAIRED or ERROR.
    pub fn is_unhealthy(&self) -> bool {
        matches!(self.state.as_str(), "UNHEALTHY" | "IMPAIRED" | "ERROR")
    }

    /// REBOOTING or REBUILDING.
    pub fn is_repairing(&self) -> bool {
        matches!(self.state.as_str(), "REBOOTING" | "REBUILDING")
    }

    /// A reboot or stop was accepted: it cures a [`Cure::Reboot`] fault.
    pub fn restarted(&mut self) {
        self.fault.take_if(|f| f.cure == Cure::Reboot);
    }

    /// A rebuild was accepted: it cures every fault but a running [`Cure::Itself`] one.
    pub fn rebuilt(&mut self) {
        self.fault.take_if(|f| f.cure != Cure::Itself);
    }

    /// Adds a fault to the queue, keeping it ordered by due time.
    pub fn schedule(&mut self, fault: WorkspaceFault) {
        let at = self.faults.partition_point(|f| f.at <= fault.at);
        self.faults.insert(at, fault);
    }

    /// One minute ending at `now`: the minute counters (for the state held during that minute), then a due state
    /// change, the end of a self-curing fault, and the (re)assertion or start of a fault.
    fn step(&mut self, now: DateTime<Utc>) {
        if self.is_unhealthy() {
            self.unhealthy_minutes += 1;
        }
        if self.is_repairing() {
            self.repair_minutes += 1;
        }
        if let Some(pending) = self.pending.take_if(|p| p.at <= now) {
            self.state = pending.state;
        }
        if self.fault.take_if(|f| f.over(now)).is_some() && self.state_is_fault() {
            self.state = "AVAILABLE".into();
        }
        if self.state == "AVAILABLE" && self.fault.is_none() {
            self.start_due_fault(now);
        }
        if self.state == "AVAILABLE"
            && let Some(fault) = &self.fault
        {
            self.state = fault.state.as_str().into();
            if fault.state == FaultState::Unhealthy {
                self.connected = false;
            }
        }
    }

    fn state_is_fault(&self) -> bool {
        matches!(self.state.as_str(), "UNHEALTHY" | "IMPAIRED")
    }

    /// Starts the earliest due fault, dropping self-curing ones whose window has passed.
    fn start_due_fault(&mut self, now: DateTime<Utc>) {
        while self.faults.first().is_some_and(|f| f.at <= now) {
            let fault = self.faults.remove(0);
            if !fault.over(now) {
                self.faults_started += 1;
                self.fault = Some(fault);
                return;
            }
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Builder {
    pub name: String,
    pub account: String,
    pub region: String,
    pub state: String,
    pub instance_type: String,
    pub created_at: DateTime<Utc>,
    pub tags: BTreeMap<String, String>,
    pub pending: Option<Pending>,
    pub running_minutes: u64,
}

impl Builder {
    /// Whether the builder is billed in its state: every state but STOPPED, STOPPING, FAILED and DELETING.
    pub fn bills(&self) -> bool {
        !matches!(self.state.as_str(), "STOPPED" | "STOPPING" | "FAILED" | "DELETING")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Image {
    pub name: String,
    pub account: String,
    pub region: String,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub tags: BTreeMap<String, String>,
    pub pending: Vec<Pending>,
    pub imported_from: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportTask {
    pub task_id: String,
    pub image_name: String,
    pub image_arn: String,
    pub ami_name: String,
    pub ami_description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub state: String,
    pub ami_id: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub error: Option<(String, String)>,
    pub ends_at: DateTime<Utc>,
    /// The state it will end in.
    pub outcome: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Window {
    pub days: Vec<Weekday>,
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl Window {
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        let time = now.time();
        let day = now.weekday();
        if self.start <= self.end {
            self.days.contains(&day) && self.start <= time && time < self.end
        } else {
            (self.days.contains(&day) && time >= self.start) || (self.days.contains(&day.pred()) && time < self.end)
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    pub id: String,
    pub name: String,
    pub account: String,
    pub region: String,
    pub desired_software_set_id: Option<String>,
    pub update_mode: String,
    pub update_schedule: String,
    pub window: Option<Window>,
    pub desktop_endpoint: Option<String>,
    pub activation_code: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SoftwareSet {
    pub id: String,
    pub version: String,
    pub released_at: DateTime<Utc>,
    pub supported_until: Option<DateTime<Utc>>,
    pub validation_status: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Device {
    pub id: String,
    pub account: String,
    pub region: String,
    pub serial_number: String,
    pub name: String,
    pub environment_id: String,
    pub current_software_set_id: String,
    pub desired_software_set_id: Option<String>,
    pub pending_software_set_id: Option<String>,
    pub apply_done_at: Option<DateTime<Utc>>,
    pub apply_minutes: u32,
    pub never_update: bool,
    pub reporting: bool,
    pub last_posture_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub tags: BTreeMap<String, String>,
}

/// A captured `PutEvents` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapturedEvent {
    pub at: DateTime<Utc>,
    pub event_id: String,
    pub source: String,
    pub detail_type: String,
    pub detail: serde_json::Value,
    pub event_bus_name: Option<String>,
}

/// Everything the simulator knows.
#[derive(Debug, Clone)]
pub struct World {
    pub now: DateTime<Utc>,
    pub rng: Rng,
    pub account: String,
    pub region: String,
    pub pools: BTreeMap<String, Pool>,
    pub workspaces: BTreeMap<String, Workspace>,
    pub fleets: BTreeMap<String, Fleet>,
    pub builders: BTreeMap<String, Builder>,
    pub images: BTreeMap<String, Image>,
    pub exports: BTreeMap<String, ExportTask>,
    pub environments: BTreeMap<String, Environment>,
    pub software_sets: BTreeMap<String, SoftwareSet>,
    pub devices: BTreeMap<String, Device>,
    pub events: Vec<CapturedEvent>,
    pub faults: estate::Faults,
}

fn parse_instant(path: &str, text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("{path}: {text} is not an RFC 3339 instant"))
}

fn parse_hhmm(path: &str, text: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(text, "%H:%M").map_err(|_| format!("{path}: {text} is not HH:MM"))
}

fn parse_day(path: &str, text: &str) -> Result<Weekday, String> {
    text.to_ascii_lowercase().parse::<Weekday>().map_err(|_| format!("{path}: {text} is not a day of the week"))
}

impl World {
    /// Builds the world from an estate file; `seed` drives every random choice.
    pub fn from_estate(estate: &Estate, seed: u64) -> Result<Self, String> {
        estate.validate().map_err(|e| e.to_string())?;
        let now = parse_instant("start", &estate.start)?;
        let placed = |p: &estate::Placement| {
            (
                p.account.clone().unwrap_or_else(|| estate.account.clone()),
                p.region.clone().unwrap_or_else(|| estate.region.clone()),
            )
        };
        let demand = |path: String, d: &Option<Demand>| {
            d.as_ref().map(DemandModel::from_spec).transpose().map_err(|e| format!("{path}.demand: {e}"))
        };
        let errors =
            |e: &[estate::ErrorSpec]| e.iter().map(|e| (e.code.clone(), e.message.clone())).collect::<Vec<_>>();
        let mut world = World {
            now,
            rng: Rng::new(seed),
            account: estate.account.clone(),
            region: estate.region.clone(),
            pools: BTreeMap::new(),
            workspaces: BTreeMap::new(),
            fleets: BTreeMap::new(),
            builders: BTreeMap::new(),
            images: BTreeMap::new(),
            exports: BTreeMap::new(),
            environments: BTreeMap::new(),
            software_sets: BTreeMap::new(),
            devices: BTreeMap::new(),
            events: Vec::new(),
            faults: estate.faults.clone(),
        };
        for (i, p) in estate.workspaces_pools.iter().enumerate() {
            let (account, region) = placed(&p.placement);
            let running = p.state == "RUNNING";
            world.pools.insert(
                p.id.clone(),
                Pool {
                    id: p.id.clone(),
                    name: p.name.clone(),
                    account,
                    region,
                    state: p.state.clone(),
                    running_mode: p.running_mode.clone(),
                    directory_id: p.directory_id.clone(),
                    bundle_id: p.bundle_id.clone(),
                    created_at: now - Duration::days(30),
                    capacity: Capacity::new(p.desired_user_sessions, 1, running),
                    tags: p.tags.clone(),
                    errors: errors(&p.errors),
                    application_autoscaling: p.application_autoscaling,
                    pending: None,
                    totals: Totals::default(),
                    demand: demand(format!("workspaces_pools[{i}]"), &p.demand)?,
                },
            );
        }
        for w in &estate.workspaces {
            let (account, region) = placed(&w.placement);
            let mut workspace = Workspace {
                id: w.id.clone(),
                account,
                region,
                directory_id: w.directory_id.clone(),
                user: w.user.clone(),
                bundle_id: w.bundle_id.clone(),
                state: w.state.clone(),
                connected: w.connected,
                last_connected: w.connected.then_some(now),
                tags: w.tags.clone(),
                pending: None,
                faults: Vec::new(),
                fault: None,
                unhealthy_minutes: 0,
                repair_minutes: 0,
                faults_started: 0,
            };
            for fault in legacy_fault(w).iter().chain(&w.faults) {
                workspace.schedule(WorkspaceFault::from_spec(fault, now));
            }
            workspace.fault = initial_fault(w, now);
            workspace.faults_started = u32::from(workspace.fault.is_some());
            world.workspaces.insert(w.id.clone(), workspace);
        }
        for (i, group) in estate.workspace_groups.iter().enumerate() {
            let (account, region) = placed(&group.placement);
            for workspace in workspace_group(group, seed, i, now, &account, &region) {
                if world.workspaces.contains_key(&workspace.id) {
                    return Err(format!("workspace_groups[{i}]: the WorkSpace id {} is already taken", workspace.id));
                }
                world.workspaces.insert(workspace.id.clone(), workspace);
            }
        }
        for (i, f) in estate.fleets.iter().enumerate() {
            let (account, region) = placed(&f.placement);
            let running = f.state == "RUNNING";
            world.fleets.insert(
                f.name.clone(),
                Fleet {
                    name: f.name.clone(),
                    account,
                    region,
                    fleet_type: f.fleet_type.clone(),
                    state: f.state.clone(),
                    instance_type: f.instance_type.clone(),
                    max_sessions_per_instance: f.max_sessions_per_instance.max(1),
                    image: f.image.clone(),
                    created_at: now - Duration::days(30),
                    capacity: Capacity::new(f.desired, 1, running),
                    tags: f.tags.clone(),
                    errors: errors(&f.errors),
                    application_autoscaling: f.application_autoscaling,
                    pending: None,
                    totals: Totals::default(),
                    demand: demand(format!("fleets[{i}]"), &f.demand)?,
                },
            );
        }
        for b in &estate.image_builders {
            let (account, region) = placed(&b.placement);
            let pending = b.state_minutes.map(|m| Pending {
                at: now + Duration::minutes(i64::from(m)),
                state: match b.state.as_str() {
                    "STOPPING" => "STOPPED",
                    _ => "RUNNING",
                }
                .into(),
            });
            world.builders.insert(
                b.name.clone(),
                Builder {
                    name: b.name.clone(),
                    account,
                    region,
                    state: b.state.clone(),
                    instance_type: b.instance_type.clone(),
                    created_at: now - Duration::days(10),
                    tags: b.tags.clone(),
                    pending,
                    running_minutes: 0,
                },
            );
        }
        for image in &estate.images {
            let (account, region) = placed(&image.placement);
            world.images.insert(
                image.name.clone(),
                Image {
                    name: image.name.clone(),
                    account,
                    region,
                    state: image.state.clone(),
                    created_at: now - Duration::days(5),
                    tags: image.tags.clone(),
                    pending: Vec::new(),
                    imported_from: None,
                },
            );
        }
        for s in &estate.software_sets {
            world.software_sets.insert(
                s.id.clone(),
                SoftwareSet {
                    id: s.id.clone(),
                    version: s.version.clone(),
                    released_at: parse_instant("software_sets.released_at", &s.released_at)?,
                    supported_until: s
                        .supported_until
                        .as_deref()
                        .map(|t| parse_instant("software_sets.supported_until", t))
                        .transpose()?,
                    validation_status: s.validation_status.clone(),
                },
            );
        }
        for (i, e) in estate.environments.iter().enumerate() {
            let (account, region) = placed(&e.placement);
            let window = match &e.maintenance_window {
                None => None,
                Some(w) => Some(Window {
                    days: w
                        .days
                        .iter()
                        .map(|d| parse_day(&format!("environments[{i}].maintenance_window.days"), d))
                        .collect::<Result<_, _>>()?,
                    start: parse_hhmm(&format!("environments[{i}].maintenance_window.start"), &w.start)?,
                    end: parse_hhmm(&format!("environments[{i}].maintenance_window.end"), &w.end)?,
                }),
            };
            world.environments.insert(
                e.id.clone(),
                Environment {
                    id: e.id.clone(),
                    name: e.name.clone(),
                    account,
                    region,
                    desired_software_set_id: e.desired_software_set_id.clone(),
                    update_mode: e.software_set_update_mode.clone(),
                    update_schedule: e.software_set_update_schedule.clone(),
                    window,
                    desktop_endpoint: e.desktop_endpoint.clone(),
                    activation_code: e
                        .activation_code
                        .clone()
                        .unwrap_or_else(|| format!("{}act", e.id.chars().take(6).collect::<String>())),
                    created_at: now - Duration::days(60),
                    updated_at: now - Duration::days(1),
                    tags: e.tags.clone(),
                },
            );
        }
        for (i, group) in estate.devices.iter().enumerate() {
            let Some(environment) = world.environments.get(&group.environment) else {
                return Err(format!("devices[{i}].environment: no environment {:?}", group.environment));
            };
            let (account, region) = (environment.account.clone(), environment.region.clone());
            for n in 0..group.count {
                let id = format!("{}-dev{:04}", group.environment, n);
                world.devices.insert(
                    id.clone(),
                    Device {
                        id: id.clone(),
                        account: account.clone(),
                        region: region.clone(),
                        serial_number: format!("SN{:08}", world.rng.next_u64() % 100_000_000),
                        name: group.name_prefix.as_ref().map_or_else(|| id.clone(), |prefix| format!("{prefix}{n:04}")),
                        environment_id: group.environment.clone(),
                        current_software_set_id: group.current_software_set_id.clone(),
                        desired_software_set_id: None,
                        pending_software_set_id: None,
                        apply_done_at: None,
                        apply_minutes: group.apply_minutes,
                        never_update: n < group.never_update,
                        reporting: !(group.never_update..group.never_update + group.not_reporting).contains(&n),
                        last_posture_at: now,
                        created_at: now - Duration::days(60),
                        updated_at: now - Duration::days(1),
                        tags: group.tags.clone(),
                    },
                );
            }
        }
        Ok(world)
    }

    pub fn arn(&self, service: &str, account: &str, region: &str, resource: &str) -> String {
        format!("arn:aws:{service}:{region}:{account}:{resource}")
    }

    /// Moves the virtual clock to `to`, one minute at a time, advancing every state machine and the demand.
    pub fn advance_to(&mut self, to: DateTime<Utc>) {
        while self.now + Duration::minutes(1) <= to {
            self.now += Duration::minutes(1);
            self.step();
        }
        if self.now < to {
            self.now = to;
        }
    }

    fn step(&mut self) {
        let now = self.now;
        for pool in self.pools.values_mut() {
            step_scaled(
                &mut pool.state,
                &mut pool.pending,
                &mut pool.capacity,
                &mut pool.totals,
                pool.demand.as_ref(),
                now,
                &mut self.rng,
            );
        }
        for fleet in self.fleets.values_mut() {
            step_scaled(
                &mut fleet.state,
                &mut fleet.pending,
                &mut fleet.capacity,
                &mut fleet.totals,
                fleet.demand.as_ref(),
                now,
                &mut self.rng,
            );
        }
        for builder in self.builders.values_mut() {
            if let Some(pending) = builder.pending.take_if(|p| p.at <= now) {
                builder.state = pending.state;
            }
            if builder.bills() {
                builder.running_minutes += 1;
            }
        }
        for workspace in self.workspaces.values_mut() {
            workspace.step(now);
        }
        for image in self.images.values_mut() {
            while image.pending.first().is_some_and(|p| p.at <= now) {
                let next = image.pending.remove(0);
                image.state = next.state;
            }
        }
        for task in self.exports.values_mut() {
            if task.state == "EXPORTING" && task.ends_at <= now {
                task.state = task.outcome.clone();
                match task.state.as_str() {
                    "COMPLETED" => {
                        task.ami_id = Some(format!(
                            "ami-{}",
                            &crate::rng::Rng::new(task.ends_at.timestamp() as u64 ^ task.task_id.len() as u64).hex(17)
                        ))
                    }
                    "FAILED" => {
                        task.error = Some((
                            self.faults.exports.error_code.clone(),
                            "The export failed while copying the image snapshot.".into(),
                        ))
                    }
                    _ => {
                        task.error =
                            Some(("EXPORT_IMAGE_TIMED_OUT".into(), "The export did not finish in time.".into()))
                    }
                }
            }
        }
        self.step_devices();
    }

    fn step_devices(&mut self) {
        let now = self.now;
        let latest = self.latest_software_set();
        for device in self.devices.values_mut() {
            let Some(environment) = self.environments.get(&device.environment_id) else { continue };
            let target = match environment.update_mode.as_str() {
                "USE_LATEST" => latest.clone(),
                _ => environment.desired_software_set_id.clone(),
            };
            device.desired_software_set_id = target.clone();
            if device.reporting && now.minute() == 0 {
                device.last_posture_at = now;
            }
            if let Some(done) = device.apply_done_at
                && done <= now
            {
                if let Some(pending) = device.pending_software_set_id.take() {
                    device.current_software_set_id = pending;
                }
                device.apply_done_at = None;
                device.updated_at = now;
                continue;
            }
            let Some(target) = target else { continue };
            if device.never_update || device.apply_done_at.is_some() || device.current_software_set_id == target {
                continue;
            }
            let may_apply = environment.update_schedule == "APPLY_IMMEDIATELY"
                || environment.window.as_ref().is_some_and(|w| w.contains(now));
            if may_apply {
                device.pending_software_set_id = Some(target);
                device.apply_done_at = Some(now + Duration::minutes(i64::from(device.apply_minutes)));
                device.updated_at = now;
            }
        }
    }

    /// The newest validated software set.
    /// A person creates an image from a RUNNING builder (Image Assistant): the builder is SNAPSHOTTING for
    /// [`durations::BUILDER_SNAPSHOT`] minutes, then RUNNING again, and the image becomes AVAILABLE.
    pub fn create_image_from_builder(&mut self, builder: &str, image: &str) -> Result<(), String> {
        let now = self.now;
        let done = now + Duration::minutes(durations::BUILDER_SNAPSHOT);
        let found = self.builders.get_mut(builder).ok_or_else(|| format!("no image builder {builder}"))?;
        if found.state != "RUNNING" {
            return Err(format!("image builder {builder} is {}, not RUNNING", found.state));
        }
        found.state = "SNAPSHOTTING".into();
        found.pending = Some(Pending { at: done, state: "RUNNING".into() });
        let (account, region) = (found.account.clone(), found.region.clone());
        self.images.insert(
            image.to_owned(),
            Image {
                name: image.to_owned(),
                account,
                region,
                state: "PENDING".into(),
                created_at: now,
                tags: BTreeMap::new(),
                pending: vec![Pending { at: done, state: "AVAILABLE".into() }],
                imported_from: None,
            },
        );
        Ok(())
    }

    pub fn latest_software_set(&self) -> Option<String> {
        self.software_sets
            .values()
            .filter(|s| s.validation_status == "VALIDATED")
            .max_by_key(|s| s.released_at)
            .map(|s| s.id.clone())
    }

    /// A fresh identifier, deterministic for the seed.
    pub fn new_id(&mut self, prefix: &str, len: usize) -> String {
        format!("{prefix}{}", self.rng.hex(len))
    }
}

/// The fault `unhealthy_after_minutes` / `recovers_on_reboot` describe, if any.
fn legacy_fault(w: &estate::WorkspaceSpec) -> Option<estate::WorkspaceFaultSpec> {
    w.unhealthy_after_minutes.map(|after_minutes| estate::WorkspaceFaultSpec {
        after_minutes,
        cure: if w.recovers_on_reboot { Cure::Reboot } else { Cure::Rebuild },
        minutes: None,
        state: FaultState::Unhealthy,
    })
}

/// A WorkSpace that starts UNHEALTHY or IMPAIRED has a fault from the start, cured as `recovers_on_reboot` says.
fn initial_fault(w: &estate::WorkspaceSpec, start: DateTime<Utc>) -> Option<WorkspaceFault> {
    let state = match w.state.as_str() {
        "UNHEALTHY" => FaultState::Unhealthy,
        "IMPAIRED" => FaultState::Impaired,
        _ => return None,
    };
    let cure = if w.recovers_on_reboot { Cure::Reboot } else { Cure::Rebuild };
    Some(WorkspaceFault { at: start, cure, until: None, state })
}

/// Minutes over which a group's `failures_per_week` are placed.
const FAULT_HORIZON_MINUTES: f64 = 7.0 * 1440.0;

/// The random stream of one WorkSpace group: derived from the world's seed and the group's position, so a
/// group's WorkSpaces depend on nothing else in the estate and the world's own stream (demand noise, batch
/// faults, ids) is the same with or without groups.
fn group_rng(seed: u64, index: usize) -> Rng {
    let mut mix = Rng::new(seed ^ 0x5753_4752_4f55_5053);
    for _ in 0..=index {
        mix.next_u64();
    }
    Rng::new(mix.next_u64())
}

/// Exactly `round(share × count)` of `count` members, chosen at random.
fn pick(rng: &mut Rng, count: u32, share: f64) -> Vec<bool> {
    let mut order: Vec<usize> = (0..count as usize).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    let chosen = (share * f64::from(count)).round() as usize;
    let mut picked = vec![false; count as usize];
    for &i in order.iter().take(chosen) {
        picked[i] = true;
    }
    picked
}

/// Fault start times of one WorkSpace: a Poisson process of `per_week` over the horizon, in minutes.
fn fault_minutes(rng: &mut Rng, per_week: f64) -> Vec<u32> {
    let mut minutes = Vec::new();
    if per_week <= 0.0 {
        return minutes;
    }
    let rate = per_week / FAULT_HORIZON_MINUTES;
    let mut t = 0.0;
    loop {
        t += -(1.0 - rng.unit()).ln() / rate;
        if t >= FAULT_HORIZON_MINUTES {
            return minutes;
        }
        minutes.push(t as u32);
    }
}

/// The WorkSpaces of one `workspace_groups` entry (validated), deterministic for the seed.
fn workspace_group(
    group: &estate::WorkspaceGroupSpec,
    seed: u64,
    index: usize,
    start: DateTime<Utc>,
    account: &str,
    region: &str,
) -> Vec<Workspace> {
    let mut rng = group_rng(seed, index);
    let connected = pick(&mut rng, group.count, group.connected_share);
    let outages: Vec<Vec<bool>> = group.outages.iter().map(|o| pick(&mut rng, group.count, o.share)).collect();
    (0..group.count)
        .map(|n| {
            let (id, user) = group.member(n);
            let connected = connected[n as usize];
            let mut workspace = Workspace {
                id,
                account: account.to_owned(),
                region: region.to_owned(),
                directory_id: group.directory_id.clone(),
                user,
                bundle_id: group.bundle_id.clone(),
                state: "AVAILABLE".into(),
                connected,
                last_connected: connected.then_some(start),
                tags: group.tags.clone(),
                pending: None,
                faults: Vec::new(),
                fault: None,
                unhealthy_minutes: 0,
                repair_minutes: 0,
                faults_started: 0,
            };
            for after_minutes in fault_minutes(&mut rng, group.failures_per_week) {
                let spec = estate::WorkspaceFaultSpec {
                    after_minutes,
                    cure: if rng.chance(group.reboot_cures) { Cure::Reboot } else { Cure::Rebuild },
                    minutes: None,
                    state: if rng.chance(group.impaired_share) { FaultState::Impaired } else { FaultState::Unhealthy },
                };
                workspace.schedule(WorkspaceFault::from_spec(&spec, start));
            }
            for (outage, hit) in group.outages.iter().zip(&outages) {
                if hit[n as usize] {
                    let spec = estate::WorkspaceFaultSpec {
                        after_minutes: outage.at_minutes,
                        cure: Cure::Itself,
                        minutes: Some(outage.minutes),
                        state: FaultState::Unhealthy,
                    };
                    workspace.schedule(WorkspaceFault::from_spec(&spec, start));
                }
            }
            workspace
        })
        .collect()
}

/// One minute of a pool or fleet: due state change, capacity provisioning, then user demand.
fn step_scaled(
    state: &mut String,
    pending: &mut Option<Pending>,
    capacity: &mut Capacity,
    totals: &mut Totals,
    demand: Option<&DemandModel>,
    now: DateTime<Utc>,
    rng: &mut Rng,
) {
    if let Some(due) = pending.take_if(|p| p.at <= now) {
        *state = due.state;
        match state.as_str() {
            "RUNNING" if capacity.actual == 0 => capacity.actual = capacity.desired,
            "STOPPED" => {
                capacity.actual = 0;
                capacity.active_sessions = 0;
            }
            _ => {}
        }
    }
    // A pool keeps serving while UPDATING; a fleet has no such state.
    let running = matches!(state.as_str(), "RUNNING" | "UPDATING");
    capacity.tick(now);
    serve_demand(capacity, totals, demand, running, now, rng);
}

/// One minute of user demand against one resource's capacity.
fn serve_demand(
    capacity: &mut Capacity,
    totals: &mut Totals,
    demand: Option<&DemandModel>,
    running: bool,
    now: DateTime<Utc>,
    rng: &mut Rng,
) {
    if running {
        totals.capacity_hours += f64::from(capacity.actual) / 60.0;
    }
    let Some(demand) = demand else { return };
    // Noise drifts slowly (an AR(1) walk with standard deviation `noise`), as real demand does; independent
    // per-minute jitter would make users leave and return every minute.
    if demand.noise > 0.0 {
        const KEEP: f64 = 0.97;
        let shock = (rng.unit() * 2.0 - 1.0) * 3f64.sqrt() * demand.noise * (1.0 - KEEP * KEEP).sqrt();
        totals.drift = (KEEP * totals.drift + shock).clamp(-3.0 * demand.noise, 3.0 * demand.noise);
    }
    let jitter = 1.0 + totals.drift;
    let wanted = (demand.wanted(now) * jitter).round().max(0.0) as u32;
    totals.wanted_now = wanted;
    if !running {
        capacity.active_sessions = 0;
    }
    if wanted < capacity.active_sessions {
        capacity.active_sessions = wanted;
    }
    let arrivals = wanted.saturating_sub(capacity.active_sessions);
    let free = if running { capacity.session_capacity().saturating_sub(capacity.active_sessions) } else { 0 };
    let served = arrivals.min(free);
    capacity.active_sessions += served;
    totals.sessions_started += u64::from(served);
    let missed = arrivals - served;
    totals.served_session_minutes += u64::from(capacity.active_sessions);
    totals.unserved_session_minutes += u64::from(missed);
    if missed > 0 && totals.shortfalls.len() < 10_000 {
        totals.shortfalls.push((now, missed));
    }
    totals.unserved_requests += u64::from(missed.saturating_sub(totals.shortfall));
    totals.shortfall = missed;
}

#[cfg(test)]
mod tests {
    use super::*;
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
        reboot(&mut w);
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
        let share =
            |p: fn(&WorkspaceFault) -> bool| random.iter().filter(|f| p(f)).count() as f64 / random.len() as f64;
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
        let error = World::from_estate(&Estate::from_yaml(&yaml).unwrap(), 1).unwrap_err();
        assert!(error.contains("workspace_groups[0]") && error.contains("ws-grp000003"), "{error}");
    }

    #[test]
    fn the_demo_groups_load() {
        let w = world(include_str!("../estates/demo.yaml"), 1);
        assert_eq!(w.workspaces.len(), 4 + 120 + 20);
        let kiosk = w.workspaces.values().filter(|ws| ws.directory_id == "d-4456b7c8d9").count();
        assert_eq!(kiosk, 20);
        let outage = w.workspaces.values().flat_map(|ws| &ws.faults).filter(|f| f.cure == Cure::Itself).count();
        assert_eq!(outage, 48, "40% of the 120 sales WorkSpaces");
    }
}
