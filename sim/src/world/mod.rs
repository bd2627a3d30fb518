//! The simulated estate: every resource, its state machine on the virtual clock, user demand and the running
//! totals (capacity-hours, served session-minutes, unserved requests). Operations in `services/` read and
//! change it; [`World::advance_to`] moves time forward minute by minute.
//!
//! - [`build`]: a world from an estate file ([`World::from_estate`]); [`groups`]: generated WorkSpace groups;
//! - [`capacity`]: pools' and fleets' capacity, sessions and totals; [`demand`]: user demand;
//! - [`workspace`]: personal WorkSpaces and their health faults.

pub mod build;
pub mod capacity;
pub mod demand;
mod groups;
pub mod sessions;
#[cfg(test)]
mod tests;
pub mod workspace;

pub use build::WorldError;
pub use capacity::{Capacity, Totals};
pub use demand::{DemandError, DemandModel};
pub use workspace::{Workspace, WorkspaceFault};

use crate::estate;
use crate::rng::Rng;
use capacity::Scaled;
use chrono::{DateTime, Datelike, Duration, NaiveTime, Timelike, Utc, Weekday};
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

/// Why a person could not create an image from a builder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateImageError {
    #[error("no image builder {builder}")]
    NoBuilder { builder: String },
    #[error("image builder {builder} is {state}, not RUNNING")]
    NotRunning { builder: String, state: String },
}

/// Everything the simulator knows.
#[derive(Debug, Clone)]
pub struct World {
    pub now: DateTime<Utc>,
    /// Demand: sessions arriving and leaving, start-up delays.
    pub rng: Rng,
    /// Injected faults (per-item batch failures, export and import outcomes): a stream of its own, so that one
    /// more retry of a faulty call does not reshuffle the demand of the rest of the run.
    pub fault_rng: Rng,
    /// Ids of what the services create (tasks, events): a stream of its own for the same reason.
    pub id_rng: Rng,
    /// Attempts so far per batch operation and item (`<operation>#<id>`), for `Faults::batch_fail_first`.
    pub batch_attempts: BTreeMap<String, u32>,
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
    /// The organization of the estate's accounts, the hub being its management account.
    pub organization: Option<estate::OrganizationSpec>,
    /// The account and region of the request being answered (its signer's account, its SigV4 region): a request
    /// sees and changes only what lives there. `None` (in-process callers, the simulated people) sees everything.
    pub caller: Option<(String, String)>,
    /// The session events AWS sends as sessions start and end (`AppStream Session Notification` per fleet
    /// session, `WorkSpaces Access` per pool session started), when recording (`Some`: `autopilot simulate`
    /// drains and delivers them minute by minute; `None`, the default, records nothing).
    pub session_events: Option<Vec<serde_json::Value>>,
}

/// A resource that lives in an account and region.
pub trait Placed {
    fn account(&self) -> &str;
    fn region(&self) -> &str;
}

macro_rules! placed {
    ($($kind:ty),*) => {$(
        impl Placed for $kind {
            fn account(&self) -> &str {
                &self.account
            }
            fn region(&self) -> &str {
                &self.region
            }
        }
    )*};
}
placed!(Pool, Fleet, Builder, Image, Environment, Device, Workspace);

/// The resource `id` of `map`, when the request's caller (`caller`: [`World::caller`]) may see it.
pub fn visible<'a, T: Placed>(
    caller: &Option<(String, String)>,
    map: &'a mut BTreeMap<String, T>,
    id: &str,
) -> Option<&'a mut T> {
    map.get_mut(id).filter(|item| caller.as_ref().is_none_or(|(a, r)| a == item.account() && r == item.region()))
}

impl World {
    /// Every region the world places a resource in, its own first.
    pub fn regions(&self) -> Vec<String> {
        let mut found = vec![self.region.clone()];
        let placed = self
            .pools
            .values()
            .map(|p| &p.region)
            .chain(self.fleets.values().map(|f| &f.region))
            .chain(self.builders.values().map(|b| &b.region))
            .chain(self.images.values().map(|i| &i.region))
            .chain(self.workspaces.values().map(|w| &w.region))
            .chain(self.environments.values().map(|e| &e.region))
            .chain(self.devices.values().map(|d| &d.region));
        for region in placed {
            if !found.contains(region) {
                found.push(region.clone());
            }
        }
        found
    }

    /// Whether the request being answered may see a resource in `account` and `region`.
    /// The part of the world placed in `account` and `region` (what a shard there sees), with the same clock
    /// (export tasks, which are not placed, all kept).
    pub fn in_place(&self, account: &str, region: &str) -> World {
        fn here<T: Placed + Clone>(map: &BTreeMap<String, T>, account: &str, region: &str) -> BTreeMap<String, T> {
            map.iter()
                .filter(|(_, v)| v.account() == account && v.region() == region)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }
        World {
            pools: here(&self.pools, account, region),
            workspaces: here(&self.workspaces, account, region),
            fleets: here(&self.fleets, account, region),
            builders: here(&self.builders, account, region),
            images: here(&self.images, account, region),
            environments: here(&self.environments, account, region),
            devices: here(&self.devices, account, region),
            ..self.clone()
        }
    }

    pub fn sees(&self, account: &str, region: &str) -> bool {
        self.caller.as_ref().is_none_or(|(a, r)| a == account && r == region)
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
        let mut sessions = self.session_events.take();
        for pool in self.pools.values_mut() {
            let before = (pool.totals.sessions_started, pool.capacity.active_sessions);
            let scaled = Scaled {
                state: &mut pool.state,
                pending: &mut pool.pending,
                capacity: &mut pool.capacity,
                totals: &mut pool.totals,
                demand: pool.demand.as_ref(),
            };
            scaled.step(now, &mut self.rng);
            if let Some(events) = sessions.as_mut() {
                let started = pool.totals.sessions_started - before.0;
                events.extend((0..started).map(|n| sessions::access(pool, now, n)));
            }
        }
        for fleet in self.fleets.values_mut() {
            let before = (fleet.totals.sessions_started, fleet.capacity.active_sessions);
            let scaled = Scaled {
                state: &mut fleet.state,
                pending: &mut fleet.pending,
                capacity: &mut fleet.capacity,
                totals: &mut fleet.totals,
                demand: fleet.demand.as_ref(),
            };
            scaled.step(now, &mut self.rng);
            if let Some(events) = sessions.as_mut() {
                let started = fleet.totals.sessions_started - before.0;
                let ended = u64::from(before.1.saturating_sub(fleet.capacity.active_sessions));
                events.extend((0..ended).map(|n| sessions::notification(fleet, now, n, sessions::Change::Ended)));
                events.extend((0..started).map(|n| sessions::notification(fleet, now, n, sessions::Change::Started)));
            }
        }
        self.session_events = sessions;
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

    /// A person creates an image from a RUNNING builder (Image Assistant): the builder is SNAPSHOTTING for
    /// [`durations::BUILDER_SNAPSHOT`] minutes, then RUNNING again, and the image becomes AVAILABLE.
    pub fn create_image_from_builder(&mut self, builder: &str, image: &str) -> Result<(), CreateImageError> {
        let now = self.now;
        let done = now + Duration::minutes(durations::BUILDER_SNAPSHOT);
        let found = self
            .builders
            .get_mut(builder)
            .ok_or_else(|| CreateImageError::NoBuilder { builder: builder.to_owned() })?;
        if found.state != "RUNNING" {
            return Err(CreateImageError::NotRunning { builder: builder.to_owned(), state: found.state.clone() });
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

    /// The newest validated software set.
    pub fn latest_software_set(&self) -> Option<String> {
        self.software_sets
            .values()
            .filter(|s| s.validation_status == "VALIDATED")
            .max_by_key(|s| s.released_at)
            .map(|s| s.id.clone())
    }

    /// A fresh identifier, deterministic for the seed.
    pub fn new_id(&mut self, prefix: &str, len: usize) -> String {
        format!("{prefix}{}", self.id_rng.hex(len))
    }
}
