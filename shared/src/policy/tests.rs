//! Policy tests: document validation (every error names its path and reason) and schedule semantics
//! (table tests for DST gaps, folds, midnight crossing, holidays and prewarm; properties over several zones).

use super::*;
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use proptest::prelude::*;

const EXAMPLE: &str = include_str!("../../../examples/autopilot.yaml");

fn errors(yaml: &str) -> Vec<String> {
    match Policy::from_yaml(yaml) {
        Ok(_) => Vec::new(),
        Err(PolicyError(errors)) => errors.iter().map(ToString::to_string).collect(),
    }
}

/// Asserts that `yaml` is rejected with an error that starts with `expected` (path and reason).
fn check_rejected(yaml: &str, expected: &str) {
    let found = errors(yaml);
    assert!(found.iter().any(|e| e.starts_with(expected)), "expected {expected:?}, got {found:?}");
}

#[test]
fn the_shipped_example_validates() {
    let policy = Policy::from_yaml(EXAMPLE);
    assert!(policy.is_ok(), "{:?}", policy.err());
    let Ok(policy) = policy else { return };
    assert_eq!(policy.capacity.len(), 2);
    assert_eq!(policy.schedules.len(), 3);
    // a safe first hour: nothing acts until the operator goes live, and no rollout starts without approval
    assert!(policy.dry_run(), "the example starts in dry-run");
    assert_eq!(policy.rollouts.as_ref().map(|r| r.require_approval), Some(true));
    assert_eq!(policy.rollouts.as_ref().map(|r| r.rings.len()), Some(3));
    // ring without gates inherits the defaults; ring gates override field by field
    let rings = policy.rollouts.as_ref().map(|r| r.rings.clone()).unwrap_or_default();
    assert_eq!(rings[1].gates.min_reporting_devices, 3);
    assert_eq!(rings[2].gates.min_reporting_devices, 10);
    assert_eq!(rings[2].gates.within, Duration::hours(24));
    assert_eq!(rings[0].bake, Duration::hours(4));
    assert_eq!(rings[1].bake, Duration::hours(24));
    let rollouts = policy.rollouts.as_ref().unwrap();
    assert!(rollouts.auto_rollback && !rollouts.include_use_latest && rollouts.require_approval);
    assert_eq!(rollouts.warn_support_ending, Duration::days(30));
    // defaults when the fields are absent
    let minimal = Policy::from_yaml("version: 1\nrollouts:\n  rings: [{ name: a, select: { names: [e] } }]\n").unwrap();
    let minimal = minimal.rollouts.unwrap();
    assert!(!minimal.auto_rollback && !minimal.include_use_latest);
    assert_eq!(minimal.warn_support_ending, Duration::days(30));
    assert!(policy.image_builders[0].start_on_schedule && policy.image_builders[0].stop_on_schedule);
    let remediation = policy.remediation.as_ref().unwrap();
    assert!(!remediation.default.rebuild && remediation.default.skip_connected);
    assert_eq!(remediation.default.max_actions_per_hour, 20);
    let kiosks = &remediation.selections[0];
    assert!(kiosks.rebuild && !kiosks.skip_connected && kiosks.max_actions_per_hour == 10);
    assert_eq!(remediation.alarms.get("euc-directory-unhealthy"), Some(&AlarmScope::Directory("d-9067a1b2c3".into())));
    assert_eq!(remediation.transient_grace, Duration::minutes(30));
    assert!(!policy.image_builders[1].start_on_schedule);
}

#[test]
fn validation_errors_name_path_and_reason() {
    let base = "version: 1\nschedules:\n  office:\n    periods:\n";
    check_rejected(
        &format!(
            "{base}      - {{ days: [mon], start: '07:00', end: '19:00' }}\n      - {{ days: [tue], start: '07:00', end: '25:00' }}\n"
        ),
        "schedules.office.periods[1].end: 25:00 is not a time of day",
    );
    check_rejected(
        &format!("{base}      - {{ days: [funday], start: '07:00', end: '19:00' }}\n"),
        "schedules.office.periods[0].days[0]: \"funday\" is not a weekday",
    );
    check_rejected(
        &format!("{base}      - {{ days: [mon], start: '07:00', end: '07:00' }}\n"),
        "schedules.office.periods[0]: start and end are both 07:00",
    );
    check_rejected(
        &format!("{base}      - {{ days: [mon], start: '07:00', end: '19:00', stat: 1 }}\n"),
        "schedules.office.periods[0]: unknown field `stat`",
    );
    check_rejected(
        "version: 1\nschedules:\n  s:\n    timezone: Mars/Olympus\n    periods: [{ days: [mon], start: '07:00', end: '19:00' }]\n",
        "schedules.s.timezone: Mars/Olympus is not an IANA time zone",
    );
    check_rejected(
        "version: 1\nschedules:\n  s:\n    holidays: nope\n    periods: [{ days: [mon], start: '07:00', end: '19:00' }]\n",
        "schedules.s.holidays: no calendar named \"nope\"",
    );
    check_rejected(
        "version: 1\nschedules:\n  s:\n    prewarm: 2d\n    periods: [{ days: [mon], start: '07:00', end: '19:00' }]\n",
        "schedules.s.prewarm: prewarm must be between 0s and 1d",
    );
    // serde's type names are put in words
    check_rejected(
        "version: 1\nremediation: { max_reboots: ten }\n",
        "remediation.max_reboots: invalid type: string \"ten\", expected a whole number (0 or more)",
    );
    // a wrong time zone does not hide a wrong prewarm
    let both = "version: 1\nschedules:\n  s:\n    timezone: CEST\n    prewarm: 2d\n    periods: [{ days: [mon], start: '07:00', end: '19:00' }]\n";
    check_rejected(both, "schedules.s.timezone");
    check_rejected(both, "schedules.s.prewarm: prewarm must be between 0s and 1d");
    check_rejected("version: 1\nschedules:\n  s:\n    periods: []\n", "schedules.s.periods: needs at least one period");
    check_rejected("version: 2\n", "version: version 2 is not supported");
    check_rejected("version: 1\nbogus: true\n", "bogus: unknown field `bogus`");
    check_rejected("version: 1\ndefaults: { dry_run: maybe }\n", "defaults.dry_run: invalid type");
    check_rejected("version: 1\ncalendars:\n  c: [2026-02-30]\n", "calendars.c[0]: 2026-02-30 is not a date");
    let capacity = "version: 1\ncapacity:\n  - select: { tag: { team: a } }\n";
    check_rejected(
        &format!("{capacity}    in_hours: {{ min: 5, max: 2 }}\n"),
        "capacity[0].in_hours: min (5) is greater than max (2)",
    );
    check_rejected(
        &format!("{capacity}    in_hours: {{ min: 4294967295, max: 4294967295 }}\n"),
        "capacity[0].in_hours.min: 4294967295 is more than any pool or fleet can have (the API takes at most 2147483647)",
    );
    check_rejected(
        &format!("{capacity}    in_hours: {{ min: 0, max: 10 }}\n    scale_out: {{ max_step: 3000000000 }}\n"),
        "capacity[0].scale_out.max_step: 3000000000 is more than any pool or fleet can have",
    );
    check_rejected(
        &format!("{capacity}    in_hours: {{ min: 1, max: 2, target_utilization: 1.5 }}\n"),
        "capacity[0].in_hours.target_utilization: 1.5 is not a share",
    );
    check_rejected(
        &format!("{capacity}    schedule: office\n    in_hours: {{ min: 1, max: 2 }}\n"),
        "capacity[0].schedule: no schedule named \"office\"",
    );
    check_rejected(
        &format!("{capacity}    in_hours: {{ min: 1, max: 2, stop_when_idle: true }}\n"),
        "capacity[0].in_hours.stop_when_idle: needs min: 0",
    );
    check_rejected(
        &format!("{capacity}    in_hours: {{ min: 1, max: 2 }}\n    scale_in: {{ cooldown: 20 }}\n"),
        "capacity[0].scale_in.cooldown: \"20\" is not a duration",
    );
    check_rejected(
        "version: 1\ncapacity:\n  - select: {}\n    in_hours: { min: 1, max: 2 }\n",
        "capacity[0].select: selects nothing",
    );
    check_rejected(
        "version: 1\nimage_builders:\n  - select: { names: [b] }\n",
        "image_builders[0]: needs a schedule, a max_runtime, or both",
    );
    check_rejected(
        "version: 1\nimage_builders:\n  - select: { names: [b] }\n    max_runtime: 4h\n    on_schedule: [start]\n",
        "image_builders[0].on_schedule: needs a schedule",
    );
    check_rejected(
        "version: 1\nexports: { retry: { max_attempts: 0 } }\n",
        "exports.retry.max_attempts: 0 is out of range",
    );
    check_rejected("version: 1\nrollouts: { rings: [] }\n", "rollouts.rings: needs at least one ring");
    check_rejected(
        "version: 1\nrollouts:\n  rings:\n    - { name: a, select: { ids: [e1] } }\n    - { name: a, select: { ids: [e2] } }\n",
        "rollouts.rings[1].name: ring \"a\" is defined twice",
    );
    check_rejected(
        "version: 1\nrollouts:\n  gates: { min_reporting_devices: 0 }\n  rings: [{ name: a, select: { ids: [e] } }]\n",
        "rollouts.gates.min_reporting_devices: must be at least 1",
    );
    check_rejected(
        "version: 1\nremediation: { budget: { max_actions_per_hour: 0 } }\n",
        "remediation.budget.max_actions_per_hour: must be at least 1",
    );
    check_rejected(
        "version: 1\nremediation: { alarms: { a: { fleet: f, pool: p } } }\n",
        "remediation.alarms.a: give exactly one of directory, pool or fleet",
    );
    check_rejected(
        "version: 1\nremediation: { selections: [{ name: default, select: { ids: [ws-1] } }] }\n",
        "remediation.selections[0].name: \"default\" is reserved",
    );
    check_rejected(
        "version: 1\nremediation: { selections: [{ name: a, select: { ids: [ws-1] } }, { name: a, select: { ids: [ws-2] } }] }\n",
        "remediation.selections[1].name: \"a\" is used twice",
    );
    check_rejected(
        "version: 1\nremediation: { selections: [{ name: k, select: { ids: [ws-1] }, budget: { max_actions_per_hour: 0 } }] }\n",
        "remediation.selections[0].budget.max_actions_per_hour: must be at least 1",
    );
}

#[test]
fn predictive_blocks_default_switch_off_and_are_checked() {
    let rule = |block: &str| {
        format!(
            "version: 1\ncapacity:\n  - select: {{ names: [p] }}\n    in_hours: {{ min: 0, max: 9 }}\n    predictive: {block}\n"
        )
    };
    let on = Policy::from_yaml(&rule("{}")).unwrap();
    let predictive = on.capacity[0].predictive.clone().unwrap();
    assert_eq!((predictive.history_weeks, predictive.lead_time), (3, chrono::Duration::minutes(15)));
    let tuned = Policy::from_yaml(&rule("{ history_weeks: 5, lead_time: 25m }")).unwrap();
    assert_eq!(
        tuned.capacity[0].predictive.as_ref().map(|p| (p.history_weeks, p.lead_time.num_minutes())),
        Some((5, 25))
    );
    assert!(Policy::from_yaml(&rule("{ enabled: false }")).unwrap().capacity[0].predictive.is_none());
    let no_block = "version: 1\ncapacity:\n  - select: { names: [p] }\n    in_hours: { min: 0, max: 9 }\n";
    assert!(Policy::from_yaml(no_block).unwrap().capacity[0].predictive.is_none());
    check_rejected(&rule("{ history_weeks: 0 }"), "capacity[0].predictive.history_weeks: must be 1 to 8");
    check_rejected(&rule("{ lead_time: 3h }"), "capacity[0].predictive.lead_time: must be at most 2h");
    check_rejected(&rule("{ lead_time: 0s }"), "capacity[0].predictive.lead_time: must be longer than 0s");
    assert!(!errors(&rule("{ margin: 0.1 }")).is_empty(), "unknown fields are refused");
}

#[test]
fn every_error_in_a_document_is_reported() {
    let found = errors(
        "version: 1\nschedules:\n  s:\n    periods:\n      - { days: [mon], start: '7am', end: '25:00' }\ncapacity:\n  - select: { ids: [p] }\n    schedule: s\n    in_hours: { min: 3, max: 1 }\n",
    );
    // both times, and the bounds; the schedule reference is not blamed for the schedule's own errors
    assert_eq!(found.len(), 3, "{found:?}");
}

#[test]
fn durations_are_bounded_and_times_are_two_digits() {
    // 2147483647d validated once, then panicked in the first decide step that added it to an instant.
    check_rejected(
        "version: 1\nremediation: { cooldown: 2147483647d }\n",
        "remediation.cooldown: \"2147483647d\" is longer than 3650d",
    );
    check_rejected(
        "version: 1\nexports: { max_duration: 3651d }\n",
        "exports.max_duration: \"3651d\" is longer than 3650d",
    );
    assert!(Policy::from_yaml("version: 1\nexports: { max_duration: 3650d }\n").is_ok());
    // `u32::from_str` takes a sign: +7:00 was read as 07:00.
    let period = |start: &str| {
        format!("version: 1\nschedules:\n  s:\n    periods: [{{ days: [mon], start: \"{start}\", end: \"19:00\" }}]\n")
    };
    check_rejected(&period("+7:00"), "schedules.s.periods[0].start: +7:00 is not a time of day");
    check_rejected(&period("07:+5"), "schedules.s.periods[0].start: 07:+5 is not a time of day");
}

#[test]
fn a_huge_value_is_quoted_briefly() {
    let huge = "x".repeat(1 << 20);
    let error =
        Policy::from_yaml(&format!("version: 1\ndefaults: {{ timezone: {huge} }}\n")).err().map(|e| e.to_string());
    let error = error.unwrap_or_default();
    assert!(error.starts_with("invalid policy document: defaults.timezone: xxxx"), "{error:.80}");
    assert!(error.len() < 400, "{} bytes", error.len());
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for text in ["", "---", "[1, 2]", "version: [", "\u{0}\u{1}", "version: 1\nschedules: 5\n", "version: -1"] {
        assert!(Policy::from_yaml(text).is_err(), "{text:?}");
    }
}

// ---------------------------------------------------------------------------------------------------------
// Schedules

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).unwrap_or_default()
}

fn local(timezone: Tz, text: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap_or_default();
    schedule::resolve_local(timezone, naive)
}

fn schedule_of(yaml_schedule: &str) -> Schedule {
    let doc = format!("version: 1\ncalendars:\n  h: [2026-12-24, 2026-12-25]\nschedules:\n  s:\n{yaml_schedule}");
    match Policy::from_yaml(&doc) {
        Ok(policy) => policy.schedules.get("s").map(|s| (**s).clone()).unwrap_or_else(|| never("schedule s missing")),
        Err(error) => never(&error.to_string()),
    }
}

fn never(message: &str) -> Schedule {
    panic!("test schedule did not validate: {message}")
}

/// Table test: phase at each local instant.
fn check_phases(schedule: &Schedule, cases: &[(&str, Phase)]) {
    for (at, expected) in cases {
        let instant = local(schedule.timezone(), at);
        assert_eq!(schedule.phase_at(instant), *expected, "at {at} ({instant})");
    }
}

#[test]
fn office_hours_with_prewarm_and_holidays() {
    let office = schedule_of(
        "    timezone: Europe/Berlin\n    prewarm: 30m\n    holidays: h\n    periods: [{ days: [mon-fri], start: '07:00', end: '19:00' }]\n",
    );
    use Phase::{InHours as In, OffHours as Off};
    check_phases(
        &office,
        &[
            ("2026-12-01 06:29", Off),
            ("2026-12-01 06:30", In), // prewarm
            ("2026-12-01 07:00", In),
            ("2026-12-01 18:59", In),
            ("2026-12-01 19:00", Off),
            ("2026-12-05 10:00", Off), // Saturday
            ("2026-12-24 10:00", Off), // holiday
            ("2026-12-23 18:00", In),
        ],
    );
    let at = local(Tz::Europe__Berlin, "2026-12-01 06:45");
    assert!(matches!(office.state_at(at).reason, Reason::Prewarm { period: 0, .. }));
    // no prewarm for a period that will not happen: the evening before a holiday stays off
    let office_prewarm_long = schedule_of(
        "    timezone: Europe/Berlin\n    prewarm: 10h\n    holidays: h\n    periods: [{ days: [mon-fri], start: '07:00', end: '19:00' }]\n",
    );
    assert_eq!(office_prewarm_long.phase_at(local(Tz::Europe__Berlin, "2026-12-23 22:00")), Phase::OffHours);
    assert_eq!(office_prewarm_long.phase_at(local(Tz::Europe__Berlin, "2026-12-22 22:00")), Phase::InHours);
    // transitions
    let from = local(Tz::Europe__Berlin, "2026-12-01 12:00");
    assert_eq!(office.next_transition(from), Some(local(Tz::Europe__Berlin, "2026-12-01 19:00")));
    assert_eq!(
        office.next_transition(local(Tz::Europe__Berlin, "2026-12-04 19:00")),
        Some(local(Tz::Europe__Berlin, "2026-12-07 06:30"))
    );
    assert_eq!(
        office.next_transition(local(Tz::Europe__Berlin, "2026-12-23 19:00")),
        Some(local(Tz::Europe__Berlin, "2026-12-28 06:30"))
    );
}

#[test]
fn periods_cross_midnight_and_holidays_cut_them() {
    let night = schedule_of(
        "    timezone: Asia/Kolkata\n    holidays: h\n    periods: [{ days: [wed], start: '22:00', end: '06:00' }]\n",
    );
    use Phase::{InHours as In, OffHours as Off};
    check_phases(
        &night,
        &[
            ("2026-12-02 21:59", Off),
            ("2026-12-02 22:00", In),
            ("2026-12-03 05:59", In),
            ("2026-12-03 06:00", Off),
            ("2026-12-23 23:00", In),  // Wednesday before the holiday
            ("2026-12-24 00:00", Off), // the holiday is off-hours all local day
            ("2026-12-24 03:00", Off),
        ],
    );
}

#[test]
fn spring_forward_gap_boundaries_take_effect_at_the_first_valid_instant() {
    // America/New_York, 2026-03-08: 02:00 EST jumps to 03:00 EDT.
    let ny =
        schedule_of("    timezone: America/New_York\n    periods: [{ days: [sun], start: '02:30', end: '05:00' }]\n");
    let before = utc("2026-03-08T05:00:00Z"); // 00:00 EST
    assert_eq!(ny.next_transition(before), Some(utc("2026-03-08T07:00:00Z"))); // 03:00 EDT
    assert_eq!(ny.next_transition(utc("2026-03-08T07:00:00Z")), Some(utc("2026-03-08T09:00:00Z")));
    // Lord Howe: 2026-10-04 02:00 (+10:30) jumps to 02:30 (+11)
    let lh = schedule_of(
        "    timezone: Australia/Lord_Howe\n    periods: [{ days: [sun], start: '02:15', end: '04:00' }]\n",
    );
    assert_eq!(
        lh.next_transition(utc("2026-10-03T12:00:00Z")),
        Some(local(Tz::Australia__Lord_Howe, "2026-10-04 02:30"))
    );
    assert_eq!(local(Tz::Australia__Lord_Howe, "2026-10-04 02:30"), utc("2026-10-03T15:30:00Z"));
    // Chatham: 2026-09-27 02:45 (+12:45) jumps to 03:45 (+13:45); a period wholly in the gap never runs
    let ch =
        schedule_of("    timezone: Pacific/Chatham\n    periods: [{ days: [sun], start: '03:00', end: '03:30' }]\n");
    assert_eq!(ch.phase_at(local(Tz::Pacific__Chatham, "2026-09-27 03:45")), Phase::OffHours);
    assert_eq!(ch.next_transition(utc("2026-09-26T12:00:00Z")), Some(local(Tz::Pacific__Chatham, "2026-10-04 03:00")));
}

#[test]
fn autumn_fold_boundaries_take_effect_at_the_first_occurrence_and_never_twice() {
    // Europe/Berlin, 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
    let berlin =
        schedule_of("    timezone: Europe/Berlin\n    periods: [{ days: [sat], start: '22:00', end: '02:30' }]\n");
    let first_0230 = utc("2026-10-25T00:30:00Z"); // 02:30 CEST
    let second_0230 = utc("2026-10-25T01:30:00Z"); // 02:30 CET
    assert_eq!(berlin.phase_at(first_0230 - Duration::seconds(1)), Phase::InHours);
    assert_eq!(berlin.phase_at(first_0230), Phase::OffHours);
    assert_eq!(berlin.phase_at(utc("2026-10-25T01:00:00Z")), Phase::OffHours); // 02:00 CET, second pass
    assert_eq!(berlin.phase_at(second_0230), Phase::OffHours);
    assert_eq!(berlin.next_transition(first_0230), Some(utc("2026-10-31T21:00:00Z"))); // next Saturday 22:00 CET
    // a start in the fold happens once, at the first occurrence
    let start_in_fold =
        schedule_of("    timezone: Europe/Berlin\n    periods: [{ days: [sun], start: '02:30', end: '04:00' }]\n");
    assert_eq!(start_in_fold.next_transition(utc("2026-10-24T20:00:00Z")), Some(first_0230));
    assert_eq!(start_in_fold.next_transition(first_0230), Some(local(Tz::Europe__Berlin, "2026-10-25 04:00")));
}

#[test]
fn a_schedule_without_reachable_periods_has_no_transition() {
    let never =
        schedule_of("    timezone: Pacific/Chatham\n    periods: [{ days: [sun], start: '03:00', end: '03:30' }]\n");
    // Periods exist every Sunday, so there is a transition; but holidays covering everything leave none.
    assert!(never.next_transition(utc("2026-01-01T00:00:00Z")).is_some());
    let policy = Policy::from_yaml(
        "version: 1\ncalendars:\n  all: [2026-01-04]\nschedules:\n  s:\n    timezone: UTC\n    holidays: all\n    periods: [{ days: [sun], start: '01:00', end: '02:00' }]\n",
    );
    let schedule = policy.ok().and_then(|p| p.schedules.get("s").cloned());
    assert_eq!(
        schedule.and_then(|s| s.next_transition(utc("2026-01-03T00:00:00Z"))),
        Some(utc("2026-01-11T01:00:00Z"))
    );
}

// Properties ----------------------------------------------------------------------------------------------

const ZONES: [Tz; 6] = [
    Tz::America__New_York,
    Tz::Europe__Berlin,
    Tz::Australia__Lord_Howe,
    Tz::Asia__Kolkata,
    Tz::Pacific__Chatham,
    Tz::UTC,
];

/// Instants where the zone's UTC offset changes in 2026 (found by scanning; each is a gap or a fold).
fn offset_changes(timezone: Tz) -> Vec<DateTime<Utc>> {
    use chrono::Offset;
    let mut changes = Vec::new();
    let mut at = utc("2026-01-01T00:00:00Z");
    let offset = |t: DateTime<Utc>| t.with_timezone(&timezone).offset().fix().local_minus_utc();
    while at < utc("2027-01-01T00:00:00Z") {
        let next = at + Duration::minutes(15);
        if offset(at) != offset(next) {
            changes.push(next);
        }
        at = next;
    }
    changes
}

fn arb_schedule() -> impl Strategy<Value = Schedule> {
    let period = (proptest::collection::vec(0u32..7, 1..4), 0u32..96, 1u32..96).prop_filter_map(
        "valid period",
        |(days, start, length)| {
            let days: Vec<chrono::Weekday> =
                days.into_iter().filter_map(|d| chrono::Weekday::try_from(d as u8).ok()).collect();
            let start_minutes = start * 15;
            let end_minutes = (start_minutes + length * 15) % (24 * 60);
            let time = |m: u32| chrono::NaiveTime::from_hms_opt(m / 60, m % 60, 0);
            Period::new(&days, time(start_minutes)?, time(end_minutes)?).ok()
        },
    );
    (
        proptest::sample::select(ZONES.to_vec()),
        proptest::collection::vec(period, 1..4),
        proptest::collection::btree_set(0i64..365, 0..6),
        0i64..8,
    )
        .prop_filter_map("valid schedule", |(zone, periods, holiday_days, prewarm_quarters)| {
            let first = NaiveDate::from_ymd_opt(2026, 1, 1)?;
            let holidays =
                holiday_days.into_iter().filter_map(|d| first.checked_add_signed(Duration::days(d))).collect();
            Schedule::new(zone, periods, holidays, Duration::minutes(prewarm_quarters * 15)).ok()
        })
}

/// Instants in 2026, half of them within two days of one of the zone's DST changes.
fn arb_instant_near_dst(schedule: &Schedule) -> impl Strategy<Value = DateTime<Utc>> + use<> {
    let changes = offset_changes(schedule.timezone());
    let start = utc("2026-01-01T00:00:00Z");
    let anywhere = (0i64..(365 * 24 * 60)).prop_map(move |m| start + Duration::minutes(m)).boxed();
    if changes.is_empty() {
        return anywhere;
    }
    let near = (proptest::sample::select(changes), -(2 * 24 * 60i64)..(2 * 24 * 60))
        .prop_map(|(c, m)| c + Duration::minutes(m))
        .boxed();
    prop_oneof![anywhere, near].boxed()
}

fn schedule_and_instant() -> impl Strategy<Value = (Schedule, DateTime<Utc>)> {
    arb_schedule().prop_flat_map(|s| {
        let instants = arb_instant_near_dst(&s);
        (Just(s), instants)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// The phase is constant from an instant up to its next transition, and differs at the transition.
    #[test]
    fn state_is_constant_between_transitions((schedule, at) in schedule_and_instant()) {
        let phase = schedule.phase_at(at);
        let Some(next) = schedule.next_transition(at) else {
            // Only possible when no period can ever run; then the phase must be off-hours.
            prop_assert_eq!(phase, Phase::OffHours);
            return Ok(());
        };
        prop_assert!(next > at);
        prop_assert_ne!(schedule.phase_at(next), phase);
        let span = next - at;
        for step in 1..32 {
            let probe = at + span * step / 32;
            prop_assert_eq!(schedule.phase_at(probe), phase, "at {} between {} and {}", probe, at, next);
        }
        prop_assert_eq!(schedule.phase_at(next - Duration::seconds(1)), phase);
    }

    /// Every transition is a real local boundary resolved: its local time exists, and for
    /// boundaries inside a gap it is the end of the gap; consecutive transitions alternate.
    #[test]
    fn transitions_alternate_and_sit_at_valid_instants((schedule, at) in schedule_and_instant()) {
        let mut now = at;
        let mut phase = schedule.phase_at(now);
        for _ in 0..6 {
            let Some(next) = schedule.next_transition(now) else { break };
            let next_phase = schedule.phase_at(next);
            prop_assert_ne!(next_phase, phase);
            prop_assert!(next <= now + Duration::days(800));
            now = next;
            phase = next_phase;
        }
    }

    /// Holidays are off-hours during the whole local day, whatever the periods and prewarm say.
    #[test]
    fn holidays_are_off_hours_all_local_day((schedule, at) in schedule_and_instant()) {
        let date = at.with_timezone(&schedule.timezone()).date_naive();
        if schedule.holidays().contains(&date) {
            prop_assert_eq!(schedule.phase_at(at), Phase::OffHours);
        }
    }

    /// A period whose boundaries fall inside a DST gap or fold runs at most once per occurrence: over the
    /// 24 hours around every offset change, each period contributes at most one start and one end.
    #[test]
    fn dst_changes_never_double_a_period(zone in proptest::sample::select(ZONES.to_vec()), start in 0u32..96, length in 1u32..48) {
        let time = |m: u32| chrono::NaiveTime::from_hms_opt((m / 60) % 24, m % 60, 0);
        let (Some(start_time), Some(end_time)) = (time(start * 15), time((start * 15 + length * 15) % 1440)) else { return Ok(()) };
        let every_day = [chrono::Weekday::Mon, chrono::Weekday::Tue, chrono::Weekday::Wed, chrono::Weekday::Thu, chrono::Weekday::Fri, chrono::Weekday::Sat, chrono::Weekday::Sun];
        let Ok(period) = Period::new(&every_day, start_time, end_time) else { return Ok(()) };
        let Ok(schedule) = Schedule::new(zone, vec![period], Default::default(), Duration::zero()) else { return Ok(()) };
        for change in offset_changes(zone) {
            // A daily period shorter than 12 h starts at most once and ends at most once in any 22 h (days last 23 h or more).
            let window_start = change - Duration::hours(11);
            let window_end = change + Duration::hours(11);
            let mut count = 0;
            let mut now = window_start;
            while let Some(next) = schedule.next_transition(now) {
                if next >= window_end { break; }
                count += 1;
                now = next;
            }
            prop_assert!(count <= 2, "{} transitions around {} in {:?}", count, change, zone);
            // gap: a boundary inside the gap resolves to the gap's end, which is `change` itself
            for boundary in [start_time, end_time] {
                let local_date = (change - Duration::hours(1)).with_timezone(&zone).date_naive();
                let naive = local_date.and_time(boundary);
                if zone.from_local_datetime(&naive) == chrono::LocalResult::None {
                    prop_assert_eq!(schedule.resolve_local(naive), change);
                }
            }
        }
    }
}

#[test]
fn a_wrong_shape_is_named_for_the_operator_not_by_the_rust_type() {
    let document = "version: 1\ncapacity:\n  - select: { ids: [a] }\n    in_hours: 5\n";
    let Err(error) = Policy::from_yaml(document) else { panic!("accepted {document}") };
    let text = error.to_string();
    assert!(text.contains("capacity[0].in_hours") && text.contains("expected a mapping of its fields"), "{text}");
    assert!(!text.contains("struct"), "{text}");
}

#[test]
fn every_structural_problem_is_reported_with_the_path_the_document_numbers() {
    // GIVEN a document with an unknown key in rule 0, a rule 1 without its required `select`, a wrongly typed
    // bound in rule 2, and an unknown key at the top level
    let found = errors(
        "version: 1\ncapacity:\n  - select: { ids: [a] }\n    scedule: office\n    in_hours: { min: 1, max: 2 }\n  - in_hours: { min: 1, max: 2 }\n  - select: { ids: [c] }\n    in_hours: { min: lots, max: 2 }\nimage_bilders: []\n",
    );
    // THEN each is reported once, at its place in the document as written, the first with its line
    assert_eq!(found.len(), 4, "{found:?}");
    assert!(found[0].starts_with("capacity[0]: unknown field `scedule`"), "{found:?}");
    assert!(found[0].contains("line 4"), "{found:?}");
    assert!(found[1].starts_with("capacity[1]: missing field `select`"), "{found:?}");
    assert!(found[2].starts_with("capacity[2].in_hours.min: invalid type"), "{found:?}");
    assert!(found[3].starts_with("unknown field `image_bilders`"), "{found:?}");
}

#[test]
fn a_wrongly_typed_required_value_is_one_problem_not_two() {
    // `periods` is required: taking its bad value out must not report it missing as well
    let found = errors("version: 1\nschedules:\n  office: { periods: monday }\n  night: { periods: [], bogus: 1 }\n");
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.iter().any(|e| e.contains("schedules.office.periods")), "{found:?}");
    assert!(found.iter().any(|e| e.contains("bogus")), "{found:?}");
}

#[test]
fn a_key_written_twice_in_one_mapping_is_refused_not_replaced() {
    // The second `office` would have silently replaced the first (and its invalid time and zone with it).
    let twice = "version: 1\nschedules:\n  office:\n    periods: [{days: [mon], start: \"25:00\", end: \"19:00\"}]\n    timezone: Mars/X\n  office:\n    periods: [{days: [tue], start: \"07:00\", end: \"19:00\"}]\n";
    let found = errors(twice);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("schedules"), "{found:?}");
    assert!(found[0].contains("key \"office\"") && found[0].contains("appears twice"), "{found:?}");
    for (document, key) in [
        ("version: 1\ncalendars:\n  c: [2026-12-24]\n  c: [2026-12-25]\n", "\"c\""),
        (
            "version: 1\ncapacity:\n  - select: { tag: { team: sales, team: support } }\n    in_hours: { min: 0, max: 9 }\n",
            "\"team\"",
        ),
        ("version: 1\nversion: 1\n", "\"version\""),
    ] {
        let found = errors(document);
        assert!(found.len() == 1 && found[0].contains(key) && found[0].contains("appears twice"), "{found:?}");
    }
}

#[test]
fn a_calendar_date_needs_a_four_digit_year() {
    check_rejected(
        "version: 1\ncalendars:\n  c: [26-12-24]\n",
        "calendars.c[0]: 26-12-24 is not a date (use YYYY-MM-DD)",
    );
    assert!(errors("version: 1\ncalendars:\n  c: [2026-12-24]\n").is_empty());
}

#[test]
fn holidays_of_the_wrong_type_say_what_they_should_be() {
    for holidays in ["5", "{ a: b }"] {
        let found = errors(&format!(
            "version: 1\nschedules:\n  s:\n    periods: [{{ days: [mon], start: \"07:00\", end: \"19:00\" }}]\n    holidays: {holidays}\n"
        ));
        assert!(
            found.len() == 1
                && found[0].starts_with("schedules.s.holidays")
                && found[0].contains("expected a calendar name or a list of calendar names"),
            "{found:?}"
        );
    }
    let named = "version: 1\ncalendars: { c: [2026-12-24] }\nschedules:\n  s:\n    periods: [{ days: [mon], start: \"07:00\", end: \"19:00\" }]\n    holidays: c\n";
    assert!(errors(named).is_empty());
    assert!(errors(&named.replace("holidays: c", "holidays: [c]")).is_empty());
}

#[test]
fn a_document_nested_absurdly_deep_is_refused_at_once() {
    let deep = format!("version: 1\ncalendars: {{ c: {}{} }}\n", "[".repeat(100_000), "]".repeat(100_000));
    // refused before the parser (which took minutes on this document)
    let found = errors(&deep);
    assert!(found.len() == 1 && found[0].contains("nested more than 64 deep"), "{found:?}");
    // brackets in strings and comments do not count
    let quoted = format!("version: 1 # {}\ncalendars: {{ c: [\"{}\"] }}\n", "[".repeat(100), "[".repeat(100));
    assert!(!errors(&quoted).iter().any(|e| e.contains("nested")), "{:?}", errors(&quoted));
}

#[test]
fn a_wrongly_typed_value_does_not_hide_its_siblings_problems() {
    // `max` is not a number and `off_hours` has a field it does not know: both are reported, and `max` is not
    // then reported missing as well
    let found = errors(
        "version: 1\ncapacity:\n  - select: { ids: [p] }\n    in_hours: { min: 1, max: ten }\n    off_hours: { min: 0, max: 2, extra: 1 }\n",
    );
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with("capacity[0].in_hours.max: invalid type: string \"ten\", expected a whole number"),
        "{found:?}"
    );
    assert!(found[1].starts_with("capacity[0].off_hours: unknown field `extra`"), "{found:?}");
}
