//! Building a [`World`] from an estate file: every resource in its account and region, as it stands at the
//! estate's start; WorkSpaces with their fault queues (listed ones and generated groups); demand models. Errors
//! say where in the estate file the problem is.

use super::capacity::{Capacity, Totals};
use super::demand::{DemandError, DemandModel};
use super::groups::workspace_group;
use super::workspace::{Workspace, WorkspaceFault};
use super::{Builder, Device, Environment, Fleet, Image, Pending, Pool, SoftwareSet, Window, World};
use crate::estate::{self, Cure, Demand, Estate, EstateError, FaultState};
use crate::rng::Rng;
use chrono::{DateTime, Duration, NaiveTime, Utc, Weekday};
use std::collections::BTreeMap;

/// Why an estate cannot become a world: where in the estate file, and what is wrong there.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    #[error(transparent)]
    Estate(#[from] EstateError),
    #[error("{path}: {text} is not an RFC 3339 instant")]
    NotAnInstant { path: String, text: String },
    #[error("{path}: {text} is not HH:MM")]
    NotATimeOfDay { path: String, text: String },
    #[error("{path}: {text} is not a day of the week")]
    NotADay { path: String, text: String },
    #[error("{path}.demand: {source}")]
    Demand { path: String, source: DemandError },
    #[error("workspace_groups[{group}]: the WorkSpace id {id} is already taken")]
    IdTaken { group: usize, id: String },
    #[error("devices[{group}].environment: no environment {environment:?}")]
    NoEnvironment { group: usize, environment: String },
}

impl World {
    /// Builds the world from an estate file; `seed` drives every random choice.
    pub fn from_estate(estate: &Estate, seed: u64) -> Result<Self, WorldError> {
        estate.validate()?;
        let now = parse_instant("start", &estate.start)?;
        let mut rng = Rng::new(seed);
        let pools = pools(estate, now)?;
        let workspaces = workspaces(estate, seed, now)?;
        let fleets = fleets(estate, now)?;
        let builders = builders(estate, now);
        let images = images(estate, now);
        let software_sets = software_sets(estate)?;
        let environments = environments(estate, now)?;
        let devices = devices(estate, &environments, now, &mut rng)?;
        Ok(World {
            now,
            rng,
            fault_rng: Rng::new(seed ^ 0xfa17_5eed),
            id_rng: Rng::new(seed ^ 0x1d5_5eed),
            batch_attempts: BTreeMap::new(),
            account: estate.account.clone(),
            region: estate.region.clone(),
            pools,
            workspaces,
            fleets,
            builders,
            images,
            exports: BTreeMap::new(),
            environments,
            software_sets,
            devices,
            events: Vec::new(),
            faults: estate.faults.clone(),
            organization: estate.organization.clone(),
            caller: None,
            session_events: None,
        })
    }
}

fn parse_instant(path: &str, text: &str) -> Result<DateTime<Utc>, WorldError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| WorldError::NotAnInstant { path: path.to_owned(), text: text.to_owned() })
}

fn parse_hhmm(path: String, text: &str) -> Result<NaiveTime, WorldError> {
    NaiveTime::parse_from_str(text, "%H:%M").map_err(|_| WorldError::NotATimeOfDay { path, text: text.to_owned() })
}

fn parse_day(path: &str, text: &str) -> Result<Weekday, WorldError> {
    text.to_ascii_lowercase()
        .parse::<Weekday>()
        .map_err(|_| WorldError::NotADay { path: path.to_owned(), text: text.to_owned() })
}

/// The account and region of a resource: its own, else the estate's.
fn placed(estate: &Estate, placement: &estate::Placement) -> (String, String) {
    (
        placement.account.clone().unwrap_or_else(|| estate.account.clone()),
        placement.region.clone().unwrap_or_else(|| estate.region.clone()),
    )
}

/// The demand model of the resource at `path`, if it has one.
fn demand(path: String, demand: Option<&Demand>) -> Result<Option<DemandModel>, WorldError> {
    demand.map(DemandModel::from_spec).transpose().map_err(|source| WorldError::Demand { path, source })
}

/// The errors a pool or fleet reports, as (code, message).
fn errors(specs: &[estate::ErrorSpec]) -> Vec<(String, String)> {
    specs.iter().map(|e| (e.code.clone(), e.message.clone())).collect()
}

fn pools(estate: &Estate, now: DateTime<Utc>) -> Result<BTreeMap<String, Pool>, WorldError> {
    let mut pools = BTreeMap::new();
    for (i, p) in estate.workspaces_pools.iter().enumerate() {
        let (account, region) = placed(estate, &p.placement);
        let running = p.state == "RUNNING";
        let pool = Pool {
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
            demand: demand(format!("workspaces_pools[{i}]"), p.demand.as_ref())?,
        };
        pools.insert(p.id.clone(), pool);
    }
    Ok(pools)
}

/// The listed WorkSpaces, then the generated groups' (whose ids must not collide with any before them).
fn workspaces(estate: &Estate, seed: u64, now: DateTime<Utc>) -> Result<BTreeMap<String, Workspace>, WorldError> {
    let mut workspaces: BTreeMap<String, Workspace> =
        estate.workspaces.iter().map(|w| (w.id.clone(), listed_workspace(estate, w, now))).collect();
    for (i, group) in estate.workspace_groups.iter().enumerate() {
        let (account, region) = placed(estate, &group.placement);
        for workspace in workspace_group(group, seed, i, now, &account, &region) {
            if workspaces.contains_key(&workspace.id) {
                return Err(WorldError::IdTaken { group: i, id: workspace.id });
            }
            workspaces.insert(workspace.id.clone(), workspace);
        }
    }
    Ok(workspaces)
}

/// A WorkSpace the estate lists, with its faults queued (and the one it starts with, if any).
fn listed_workspace(estate: &Estate, w: &estate::WorkspaceSpec, now: DateTime<Utc>) -> Workspace {
    let (account, region) = placed(estate, &w.placement);
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
    workspace
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

fn fleets(estate: &Estate, now: DateTime<Utc>) -> Result<BTreeMap<String, Fleet>, WorldError> {
    let mut fleets = BTreeMap::new();
    for (i, f) in estate.fleets.iter().enumerate() {
        let (account, region) = placed(estate, &f.placement);
        let running = f.state == "RUNNING";
        let fleet = Fleet {
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
            demand: demand(format!("fleets[{i}]"), f.demand.as_ref())?,
        };
        fleets.insert(f.name.clone(), fleet);
    }
    Ok(fleets)
}

/// Image builders; one in a transition (`state_minutes`) reaches its next state that many minutes in.
fn builders(estate: &Estate, now: DateTime<Utc>) -> BTreeMap<String, Builder> {
    let builder = |b: &estate::BuilderSpec| {
        let (account, region) = placed(estate, &b.placement);
        let pending = b.state_minutes.map(|m| Pending {
            at: now + Duration::minutes(i64::from(m)),
            state: match b.state.as_str() {
                "STOPPING" => "STOPPED",
                _ => "RUNNING",
            }
            .into(),
        });
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
        }
    };
    estate.image_builders.iter().map(|b| (b.name.clone(), builder(b))).collect()
}

fn images(estate: &Estate, now: DateTime<Utc>) -> BTreeMap<String, Image> {
    let image = |image: &estate::ImageSpec| {
        let (account, region) = placed(estate, &image.placement);
        Image {
            name: image.name.clone(),
            account,
            region,
            state: image.state.clone(),
            created_at: now - Duration::days(5),
            tags: image.tags.clone(),
            pending: Vec::new(),
            imported_from: None,
        }
    };
    estate.images.iter().map(|i| (i.name.clone(), image(i))).collect()
}

fn software_sets(estate: &Estate) -> Result<BTreeMap<String, SoftwareSet>, WorldError> {
    let mut sets = BTreeMap::new();
    for s in &estate.software_sets {
        let set = SoftwareSet {
            id: s.id.clone(),
            version: s.version.clone(),
            released_at: parse_instant("software_sets.released_at", &s.released_at)?,
            supported_until: s
                .supported_until
                .as_deref()
                .map(|t| parse_instant("software_sets.supported_until", t))
                .transpose()?,
            validation_status: s.validation_status.clone(),
        };
        sets.insert(s.id.clone(), set);
    }
    Ok(sets)
}

fn environments(estate: &Estate, now: DateTime<Utc>) -> Result<BTreeMap<String, Environment>, WorldError> {
    let mut environments = BTreeMap::new();
    for (i, e) in estate.environments.iter().enumerate() {
        let (account, region) = placed(estate, &e.placement);
        let window = e.maintenance_window.as_ref().map(|w| window(i, w)).transpose()?;
        let environment = Environment {
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
        };
        environments.insert(e.id.clone(), environment);
    }
    Ok(environments)
}

/// The maintenance window of `environments[index]`.
fn window(index: usize, w: &estate::WindowSpec) -> Result<Window, WorldError> {
    let path = |field: &str| format!("environments[{index}].maintenance_window.{field}");
    Ok(Window {
        days: w.days.iter().map(|d| parse_day(&path("days"), d)).collect::<Result<_, _>>()?,
        start: parse_hhmm(path("start"), &w.start)?,
        end: parse_hhmm(path("end"), &w.end)?,
    })
}

/// The devices of every device group, in their environment's account and region; serial numbers from `rng`.
fn devices(
    estate: &Estate,
    environments: &BTreeMap<String, Environment>,
    now: DateTime<Utc>,
    rng: &mut Rng,
) -> Result<BTreeMap<String, Device>, WorldError> {
    let mut devices = BTreeMap::new();
    for (i, group) in estate.devices.iter().enumerate() {
        let Some(environment) = environments.get(&group.environment) else {
            return Err(WorldError::NoEnvironment { group: i, environment: group.environment.clone() });
        };
        for n in 0..group.count {
            let id = format!("{}-dev{:04}", group.environment, n);
            let device = Device {
                id: id.clone(),
                account: environment.account.clone(),
                region: environment.region.clone(),
                serial_number: format!("SN{:08}", rng.next_u64() % 100_000_000),
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
            };
            devices.insert(id, device);
        }
    }
    Ok(devices)
}
