//! The operator's policy document (`autopilot.yaml`): parsing, validation into a typed
//! [`Policy`] that cannot hold an invalid value, schedules and tag-based overrides.
//!
//! A document is parsed strictly (unknown fields and wrong types are errors) and then validated as a whole;
//! every problem found is reported with its path and reason, e.g.
//! `schedules.office.periods[1].end: 25:00 is not a time of day (use HH:MM, 00:00 to 23:59)`.

pub mod predictive;
mod raw;
mod remediation;
pub mod schedule;
pub mod selector;
mod structure;
pub mod tags;
pub mod targets;
pub mod values;

use chrono::Duration;
use chrono_tz::Tz;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub use predictive::Predictive;
pub use schedule::{Period, Phase, Reason, Schedule, ScheduleState};
pub use selector::{ResourceView, Selector};
pub use values::{InvalidValue, Share, ShareRange};

/// The only document version this build understands.
pub const SUPPORTED_VERSION: u32 = 1;

/// One problem in a document: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationError {
    pub path: String,
    pub reason: String,
}

impl std::fmt::Display for ValidationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Paths and reasons quote the document; a 1 MB value must not become a 1 MB message.
        let reason = crate::events::clipped(&self.reason);
        if self.path.is_empty() {
            write!(f, "{reason}")
        } else {
            write!(f, "{}: {reason}", crate::events::clipped(&self.path))
        }
    }
}

/// Every problem found in a document, in document order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid policy document: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct PolicyError(pub Vec<ValidationError>);

/// Marker that only this module can create: the validated types below cannot be built by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Validated;

/// A validated policy document.
#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    pub version: u32,
    pub defaults: Defaults,
    pub calendars: BTreeMap<String, BTreeSet<chrono::NaiveDate>>,
    pub schedules: BTreeMap<String, Arc<Schedule>>,
    pub capacity: Vec<CapacityRule>,
    pub image_builders: Vec<BuilderRule>,
    pub exports: ExportPolicy,
    pub rollouts: Option<RolloutPolicy>,
    pub remediation: Option<RemediationPolicy>,
    /// Where to work: `None` is the hub's own account and region.
    pub targets: Option<targets::Targets>,
    #[serde(skip)]
    _validated: Validated,
}

#[derive(Debug, Clone, Serialize)]
pub struct Defaults {
    pub timezone: Tz,
    pub dry_run: bool,
}

/// A `capacity` rule (pool-scaler).
#[derive(Debug, Clone, Serialize)]
pub struct CapacityRule {
    pub select: Selector,
    /// Name and schedule; without one the rule is always in-hours.
    pub schedule: Option<NamedSchedule>,
    pub in_hours: Bounds,
    pub off_hours: Bounds,
    pub scale_out: Step,
    pub scale_in: Step,
    /// `false`: a manual change is honoured until the next schedule transition.
    pub enforce: bool,
    /// Prewarm ahead of the learned weekly demand profile; `None`: reactive only.
    pub predictive: Option<Predictive>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NamedSchedule {
    pub name: String,
    pub schedule: Arc<Schedule>,
}

/// Capacity bounds for one phase; `min <= max` holds.
#[derive(Debug, Clone, Serialize)]
pub struct Bounds {
    pub min: u32,
    pub max: u32,
    pub target_utilization: Share,
    pub buffer: u32,
    pub stop_when_idle: bool,
    #[serde(serialize_with = "serialize_duration")]
    pub idle_grace: Duration,
    #[serde(skip)]
    _validated: Validated,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    #[serde(serialize_with = "serialize_duration")]
    pub cooldown: Duration,
    pub max_step: u32,
}

/// An `image_builders` rule (builder-scheduler).
#[derive(Debug, Clone, Serialize)]
pub struct BuilderRule {
    pub select: Selector,
    pub schedule: Option<NamedSchedule>,
    /// Start the builder when the schedule enters in-hours.
    pub start_on_schedule: bool,
    /// Stop the builder when the schedule enters off-hours.
    pub stop_on_schedule: bool,
    #[serde(serialize_with = "serialize_opt_duration")]
    pub max_runtime: Option<Duration>,
    #[serde(serialize_with = "serialize_duration")]
    pub warn_before: Duration,
}

/// `exports` (export-chaser).
#[derive(Debug, Clone, Serialize)]
pub struct ExportPolicy {
    pub max_attempts: u32,
    #[serde(serialize_with = "serialize_duration")]
    pub backoff: Duration,
    #[serde(serialize_with = "serialize_duration")]
    pub max_duration: Duration,
}

/// `rollouts` (softwareset-roller).
#[derive(Debug, Clone, Serialize)]
pub struct RolloutPolicy {
    pub rings: Vec<Ring>,
    /// A new software set starts a rollout only after a `Rollout Requested` command.
    pub require_approval: bool,
    /// A failed gate puts the ring's environments back on their previous set (when it is still supported).
    pub auto_rollback: bool,
    /// Environments in USE_LATEST mode are left alone unless this is set.
    pub include_use_latest: bool,
    /// Warn (`Software Set Support Ending`) this long before a set an environment runs reaches its
    /// `supportedUntil`.
    #[serde(serialize_with = "serialize_duration")]
    pub warn_support_ending: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ring {
    pub name: String,
    pub select: Selector,
    #[serde(serialize_with = "serialize_duration")]
    pub bake: Duration,
    pub gates: Gates,
}

#[derive(Debug, Clone, Serialize)]
pub struct Gates {
    pub min_up_to_date: Share,
    #[serde(serialize_with = "serialize_duration")]
    pub within: Duration,
    pub max_not_compliant: Share,
    pub max_stuck_in_progress: Share,
    pub min_reporting_devices: u32,
    /// The least share of the ring's active devices that must report: devices an update silenced never count as
    /// healthy, and must not leave the verdict to the few that still report.
    pub min_reporting_share: Share,
    #[serde(serialize_with = "serialize_duration")]
    pub reporting_stale_after: Duration,
}

/// `remediation` (remediator).
#[derive(Debug, Clone, Serialize)]
pub struct RemediationPolicy {
    /// How long a WorkSpace stays UNHEALTHY or IMPAIRED before it is rebooted.
    #[serde(serialize_with = "serialize_duration")]
    pub reboot_after: Duration,
    /// Reboots within `reboot_window` before a rebuild (where allowed) or an escalation.
    pub max_reboots: u32,
    #[serde(serialize_with = "serialize_duration")]
    pub reboot_window: Duration,
    /// No second action on a resource within this long of the last one.
    #[serde(serialize_with = "serialize_duration")]
    pub cooldown: Duration,
    /// A directory with more than this share of its WorkSpaces unhealthy (and at least `circuit_min_population`
    /// WorkSpaces) has an outage: nothing in it is acted on.
    pub max_unhealthy_share: Share,
    pub circuit_min_population: u32,
    /// How long a transient pool or fleet error may persist (the service retries by itself) before it is
    /// escalated.
    #[serde(serialize_with = "serialize_duration")]
    pub transient_grace: Duration,
    /// What applies to WorkSpaces no selection names (`rebuild`, `skip_connected`, `budget` at the top level).
    pub default: RemediationSelection,
    /// Named selections with their own settings and budget; a WorkSpace belongs to the first that selects it.
    pub selections: Vec<RemediationSelection>,
    /// CloudWatch alarm name → the scope its `ALARM` state sweeps at once.
    pub alarms: BTreeMap<String, AlarmScope>,
}

/// A group of WorkSpaces with its own remediation settings and budget.
#[derive(Debug, Clone, Serialize)]
pub struct RemediationSelection {
    pub name: String,
    /// `None` for the default selection (everything no other selection names).
    pub select: Option<Selector>,
    /// Rebuild after `max_reboots` (rebuild can lose user data: opt in explicitly).
    pub rebuild: bool,
    /// Leave WorkSpaces with a user connected alone.
    pub skip_connected: bool,
    pub max_actions_per_hour: u32,
}

impl RemediationPolicy {
    /// The selection a WorkSpace belongs to: the first that selects it, else the default.
    pub fn selection_for(&self, resource: &impl ResourceView) -> &RemediationSelection {
        self.selections
            .iter()
            .find(|s| s.select.as_ref().is_some_and(|select| select.matches(resource)))
            .unwrap_or(&self.default)
    }
}

/// What an alarm's `ALARM` state points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlarmScope {
    Directory(String),
    Pool(String),
    Fleet(String),
}

fn serialize_duration<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&values::format_duration(*duration))
}

fn serialize_opt_duration<S: serde::Serializer>(duration: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
    match duration {
        Some(duration) => serialize_duration(duration, serializer),
        None => serializer.serialize_none(),
    }
}

impl Policy {
    /// Parses and validates a YAML document. Reports every problem found, not just the first.
    pub fn from_yaml(text: &str) -> Result<Policy, PolicyError> {
        let document = structure::read(text).map_err(PolicyError)?;
        validate(document)
    }

    /// Whether a side effect should only be recorded, not made.
    pub fn dry_run(&self) -> bool {
        self.defaults.dry_run
    }
}

/// Collects errors while walking a document.
struct Validator {
    errors: Vec<ValidationError>,
}

impl Validator {
    fn error(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(ValidationError { path: path.into(), reason: reason.into() });
    }

    fn check<T>(&mut self, path: &str, result: Result<T, InvalidValue>) -> Option<T> {
        result.map_err(|reason| self.error(path, reason.0)).ok()
    }

    fn duration(&mut self, path: &str, text: Option<&str>, default: Duration) -> Duration {
        match text {
            None => default,
            Some(text) => self.check(path, values::parse_duration(text)).unwrap_or(default),
        }
    }

    fn positive_duration(&mut self, path: &str, text: Option<&str>, default: Duration) -> Duration {
        let duration = self.duration(path, text, default);
        if duration <= Duration::zero() {
            self.error(path, "must be longer than 0s");
        }
        duration
    }

    fn share(&mut self, path: &str, value: Option<f64>, default: f64, range: ShareRange) -> Share {
        let fallback = Share::constant(default);
        match value {
            None => fallback,
            Some(value) => self.check(path, Share::new(value, range)).unwrap_or(fallback),
        }
    }

    fn timezone(&mut self, path: &str, name: &str) -> Option<Tz> {
        let parsed = name
            .parse::<Tz>()
            .map_err(|_| InvalidValue(format!("{name} is not an IANA time zone (e.g. Europe/Berlin)")));
        self.check(path, parsed)
    }

    fn selector(&mut self, path: &str, raw: raw::Selector) -> Selector {
        match Selector::new(raw.tag, raw.ids, raw.names) {
            Ok(selector) => selector,
            Err(reason) => {
                self.error(path, reason.0);
                Selector::nothing()
            }
        }
    }

    fn schedule_ref(
        &mut self,
        path: &str,
        name: Option<String>,
        schedules: &BTreeMap<String, Arc<Schedule>>,
        declared: &BTreeSet<String>,
    ) -> Option<NamedSchedule> {
        let name = name?;
        match schedules.get(&name) {
            Some(schedule) => Some(NamedSchedule { name, schedule: Arc::clone(schedule) }),
            None => {
                // A schedule that exists but failed validation has its own error already.
                if !declared.contains(&name) {
                    let known = declared.iter().cloned().collect::<Vec<_>>().join(", ");
                    self.error(
                        path,
                        format!(
                            "no schedule named {name:?} (defined: {})",
                            if known.is_empty() { "none" } else { &known }
                        ),
                    );
                }
                None
            }
        }
    }
}

fn validate(document: raw::Document) -> Result<Policy, PolicyError> {
    let mut v = Validator { errors: Vec::new() };

    if document.version != SUPPORTED_VERSION {
        v.error(
            "version",
            format!("version {} is not supported (this build reads version {SUPPORTED_VERSION})", document.version),
        );
    }
    let default_timezone = match &document.defaults.timezone {
        Some(name) => v.timezone("defaults.timezone", name).unwrap_or(Tz::UTC),
        None => Tz::UTC,
    };
    let defaults = Defaults { timezone: default_timezone, dry_run: document.defaults.dry_run.unwrap_or(false) };

    let mut calendars = BTreeMap::new();
    for (name, dates) in document.calendars {
        let mut set = BTreeSet::new();
        for (index, text) in dates.iter().enumerate() {
            if let Some(date) = v.check(&format!("calendars.{name}[{index}]"), values::parse_date(text)) {
                set.insert(date);
            }
        }
        calendars.insert(name, set);
    }

    let declared: BTreeSet<String> = document.schedules.keys().cloned().collect();
    let mut schedules = BTreeMap::new();
    for (name, raw) in document.schedules {
        let path = format!("schedules.{name}");
        if let Some(schedule) = validate_schedule(&mut v, &path, raw, default_timezone, &calendars) {
            schedules.insert(name, Arc::new(schedule));
        }
    }

    let mut capacity = Vec::new();
    for (index, rule) in document.capacity.into_iter().enumerate() {
        let path = format!("capacity[{index}]");
        let select = v.selector(&format!("{path}.select"), rule.select);
        let schedule = v.schedule_ref(&format!("{path}.schedule"), rule.schedule, &schedules, &declared);
        let in_hours = validate_bounds(&mut v, &format!("{path}.in_hours"), &rule.in_hours);
        let off_hours = match (&rule.off_hours, &schedule) {
            (Some(bounds), _) => validate_bounds(&mut v, &format!("{path}.off_hours"), bounds),
            (None, Some(_)) => {
                v.error(format!("{path}.off_hours"), "required when a schedule is set");
                in_hours.clone()
            }
            (None, None) => in_hours.clone(),
        };
        let scale_out =
            validate_step(&mut v, &format!("{path}.scale_out"), rule.scale_out.as_ref(), Duration::minutes(3), 50);
        let scale_in =
            validate_step(&mut v, &format!("{path}.scale_in"), rule.scale_in.as_ref(), Duration::minutes(20), 10);
        capacity.push(CapacityRule {
            select,
            schedule,
            in_hours,
            off_hours,
            scale_out,
            scale_in,
            enforce: rule.enforce,
            predictive: predictive::validate(&mut v, &format!("{path}.predictive"), rule.predictive.as_ref()),
        });
    }

    let mut image_builders = Vec::new();
    for (index, rule) in document.image_builders.into_iter().enumerate() {
        let path = format!("image_builders[{index}]");
        let select = v.selector(&format!("{path}.select"), rule.select);
        let has_schedule = rule.schedule.is_some();
        let schedule = v.schedule_ref(&format!("{path}.schedule"), rule.schedule, &schedules, &declared);
        let (mut start_on_schedule, mut stop_on_schedule) = (has_schedule, has_schedule);
        if let Some(actions) = &rule.on_schedule {
            if !has_schedule {
                v.error(format!("{path}.on_schedule"), "needs a schedule");
            }
            start_on_schedule = false;
            stop_on_schedule = false;
            for (action_index, action) in actions.iter().enumerate() {
                match action.as_str() {
                    "start" => start_on_schedule = true,
                    "stop" => stop_on_schedule = true,
                    other => v.error(
                        format!("{path}.on_schedule[{action_index}]"),
                        format!("{other:?} is not an action (use start, stop)"),
                    ),
                }
            }
            if actions.is_empty() {
                v.error(format!("{path}.on_schedule"), "lists no action (use start, stop or both)");
            }
        }
        let max_runtime = rule
            .max_runtime
            .as_deref()
            .map(|text| v.positive_duration(&format!("{path}.max_runtime"), Some(text), Duration::hours(12)));
        if !has_schedule && max_runtime.is_none() {
            v.error(path.clone(), "needs a schedule, a max_runtime, or both");
        }
        let warn_before =
            v.duration(&format!("{path}.warn_before"), rule.warn_before.as_deref(), Duration::minutes(15));
        image_builders.push(BuilderRule {
            select,
            schedule,
            start_on_schedule,
            stop_on_schedule,
            max_runtime,
            warn_before,
        });
    }

    let exports = {
        let raw = document.exports;
        let retry = raw.as_ref().and_then(|e| e.retry.as_ref());
        let max_attempts = retry.and_then(|r| r.max_attempts).unwrap_or(3);
        if !(1..=10).contains(&max_attempts) {
            v.error("exports.retry.max_attempts", format!("{max_attempts} is out of range (1 to 10)"));
        }
        let backoff =
            v.duration("exports.retry.backoff", retry.and_then(|r| r.backoff.as_deref()), Duration::minutes(30));
        let max_duration = v.positive_duration(
            "exports.max_duration",
            raw.as_ref().and_then(|e| e.max_duration.as_deref()),
            Duration::hours(6),
        );
        ExportPolicy { max_attempts, backoff, max_duration }
    };

    let rollouts = document.rollouts.map(|raw| {
        let default_bake = v.duration("rollouts.bake", raw.bake.as_deref(), Duration::hours(24));
        let default_gates =
            validate_gates(&mut v, "rollouts.gates", raw.gates.as_ref().unwrap_or(&raw::Gates::default()), None);
        if raw.rings.is_empty() {
            v.error("rollouts.rings", "needs at least one ring");
        }
        let mut names = BTreeSet::new();
        let rings = raw
            .rings
            .into_iter()
            .enumerate()
            .map(|(index, ring)| {
                let path = format!("rollouts.rings[{index}]");
                if ring.name.trim().is_empty() {
                    v.error(format!("{path}.name"), "must not be empty");
                } else if !names.insert(ring.name.clone()) {
                    v.error(format!("{path}.name"), format!("ring {:?} is defined twice", ring.name));
                }
                let bake = v.duration(&format!("{path}.bake"), ring.bake.as_deref(), default_bake);
                let gates = match &ring.gates {
                    Some(gates) => validate_gates(&mut v, &format!("{path}.gates"), gates, Some(&default_gates)),
                    None => default_gates.clone(),
                };
                Ring { name: ring.name, select: v.selector(&format!("{path}.select"), ring.select), bake, gates }
            })
            .collect();
        RolloutPolicy {
            rings,
            require_approval: raw.require_approval,
            auto_rollback: raw.auto_rollback,
            include_use_latest: raw.include_use_latest,
            warn_support_ending: v.duration(
                "rollouts.warn_support_ending",
                raw.warn_support_ending.as_deref(),
                Duration::days(30),
            ),
        }
    });

    let remediation = document.remediation.map(|raw| remediation::validate(&mut v, raw));
    let targets = document.targets.map(|raw| targets::validate(&mut v, raw));

    if !v.errors.is_empty() {
        return Err(PolicyError(v.errors));
    }
    Ok(Policy {
        version: document.version,
        defaults,
        calendars,
        schedules,
        capacity,
        image_builders,
        exports,
        rollouts,
        remediation,
        targets,
        _validated: Validated,
    })
}

fn validate_schedule(
    v: &mut Validator,
    path: &str,
    raw: raw::Schedule,
    default_timezone: Tz,
    calendars: &BTreeMap<String, BTreeSet<chrono::NaiveDate>>,
) -> Option<Schedule> {
    let errors_before = v.errors.len();
    let timezone = match &raw.timezone {
        Some(name) => v.timezone(&format!("{path}.timezone"), name),
        None => Some(default_timezone),
    };
    if raw.periods.is_empty() {
        v.error(format!("{path}.periods"), "needs at least one period");
    }
    let mut periods = Vec::new();
    for (index, period) in raw.periods.iter().enumerate() {
        let period_path = format!("{path}.periods[{index}]");
        let mut days = Vec::new();
        for (day_index, text) in period.days.iter().enumerate() {
            if let Some(parsed) = v.check(&format!("{period_path}.days[{day_index}]"), values::parse_days(text)) {
                days.extend(parsed);
            }
        }
        let start = v.check(&format!("{period_path}.start"), values::parse_time_of_day(&period.start));
        let end = v.check(&format!("{period_path}.end"), values::parse_time_of_day(&period.end));
        // A period whose days all failed to parse has its own errors already.
        if let (Some(start), Some(end)) = (start, end)
            && (period.days.is_empty() || !days.is_empty())
            && let Some(period) = v.check(&period_path, Period::new(&days, start, end))
        {
            periods.push(period);
        }
    }
    let mut holidays = BTreeSet::new();
    for name in raw.holidays.into_vec() {
        match calendars.get(&name) {
            Some(dates) => holidays.extend(dates.iter().copied()),
            None => v.error(format!("{path}.holidays"), format!("no calendar named {name:?}")),
        }
    }
    let prewarm = v.duration(&format!("{path}.prewarm"), raw.prewarm.as_deref(), Duration::zero());
    // Built also when the time zone is wrong (in UTC), so that a wrong prewarm is reported beside it.
    let zone = timezone.unwrap_or(chrono_tz::Tz::UTC);
    let schedule = v.check(&format!("{path}.prewarm"), Schedule::new(zone, periods, holidays, prewarm))?;
    (v.errors.len() == errors_before).then_some(schedule)
}

/// The most a capacity can be: the services' desired-capacity fields are 32-bit integers.
pub const MAX_CAPACITY: u32 = i32::MAX as u32;

/// A capacity figure the services can take, else an error at its path.
fn capacity(v: &mut Validator, path: String, value: u32) {
    if value > MAX_CAPACITY {
        v.error(
            path,
            format!("{value} is more than any pool or fleet can have (the API takes at most {MAX_CAPACITY})"),
        );
    }
}

fn validate_bounds(v: &mut Validator, path: &str, raw: &raw::Bounds) -> Bounds {
    capacity(v, format!("{path}.min"), raw.min);
    capacity(v, format!("{path}.max"), raw.max);
    capacity(v, format!("{path}.buffer"), raw.buffer.unwrap_or(0));
    if raw.min > raw.max {
        v.error(path, format!("min ({}) is greater than max ({})", raw.min, raw.max));
    }
    if raw.stop_when_idle && raw.min > 0 {
        v.error(
            format!("{path}.stop_when_idle"),
            format!("needs min: 0 (a stopped resource has no capacity, min is {})", raw.min),
        );
    }
    Bounds {
        min: raw.min,
        max: raw.max,
        target_utilization: v.share(
            &format!("{path}.target_utilization"),
            raw.target_utilization,
            0.75,
            ShareRange::Positive,
        ),
        buffer: raw.buffer.unwrap_or(0),
        stop_when_idle: raw.stop_when_idle,
        idle_grace: v.duration(&format!("{path}.idle_grace"), raw.idle_grace.as_deref(), Duration::minutes(30)),
        _validated: Validated,
    }
}

fn validate_step(v: &mut Validator, path: &str, raw: Option<&raw::Step>, cooldown: Duration, max_step: u32) -> Step {
    let max_step = raw.and_then(|s| s.max_step).unwrap_or(max_step);
    if max_step == 0 {
        v.error(format!("{path}.max_step"), "must be at least 1");
    }
    capacity(v, format!("{path}.max_step"), max_step);
    Step {
        cooldown: v.duration(&format!("{path}.cooldown"), raw.and_then(|s| s.cooldown.as_deref()), cooldown),
        max_step,
    }
}

fn validate_gates(v: &mut Validator, path: &str, raw: &raw::Gates, inherit: Option<&Gates>) -> Gates {
    let base = inherit.cloned();
    let share = |v: &mut Validator,
                 field: &str,
                 value: Option<f64>,
                 inherited: Option<Share>,
                 default: f64,
                 range: ShareRange| match (value, inherited) {
        (None, Some(inherited)) => inherited,
        (value, _) => v.share(&format!("{path}.{field}"), value, default, range),
    };
    let min_up_to_date = share(
        v,
        "min_up_to_date",
        raw.min_up_to_date,
        base.as_ref().map(|g| g.min_up_to_date),
        0.95,
        ShareRange::Positive,
    );
    let max_not_compliant = share(
        v,
        "max_not_compliant",
        raw.max_not_compliant,
        base.as_ref().map(|g| g.max_not_compliant),
        0.05,
        ShareRange::ZeroAllowed,
    );
    let max_stuck_in_progress = share(
        v,
        "max_stuck_in_progress",
        raw.max_stuck_in_progress,
        base.as_ref().map(|g| g.max_stuck_in_progress),
        0.05,
        ShareRange::ZeroAllowed,
    );
    let min_reporting_share = share(
        v,
        "min_reporting_share",
        raw.min_reporting_share,
        base.as_ref().map(|g| g.min_reporting_share),
        0.5,
        ShareRange::ZeroAllowed,
    );
    let within = v.positive_duration(
        &format!("{path}.within"),
        raw.within.as_deref(),
        base.as_ref().map_or(Duration::hours(24), |g| g.within),
    );
    let reporting_stale_after = v.positive_duration(
        &format!("{path}.reporting_stale_after"),
        raw.reporting_stale_after.as_deref(),
        base.as_ref().map_or(Duration::hours(24), |g| g.reporting_stale_after),
    );
    let min_reporting_devices =
        raw.min_reporting_devices.or(base.as_ref().map(|g| g.min_reporting_devices)).unwrap_or(1);
    if min_reporting_devices == 0 {
        v.error(
            format!("{path}.min_reporting_devices"),
            "must be at least 1 (a gate that needs no device proves nothing)",
        );
    }
    Gates {
        min_up_to_date,
        within,
        max_not_compliant,
        max_stuck_in_progress,
        min_reporting_devices,
        min_reporting_share,
        reporting_stale_after,
    }
}

#[cfg(test)]
mod tests;
