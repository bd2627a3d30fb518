//! The health gate of a ring, evaluated purely from the devices of its environments:
//! of the *reporting* devices (registered, posture reported within `reporting_stale_after`), the share that run
//! the target set and are UP_TO_DATE must reach `min_up_to_date`, the share NOT_COMPLIANT must not exceed
//! `max_not_compliant`, and the share still IN_PROGRESS at the deadline must not exceed `max_stuck_in_progress`.
//! Devices that have not reported recently count as "not reporting", never as healthy; a ring with fewer than
//! `min_reporting_devices` reporting is not healthy: it waits until the deadline (`within` after the
//! ring's maintenance windows opened, [`crate::window`]), then fails.
//!
//! Device details cost one `GetDevice` per device; `ListDevices`' summaries carry the status, the current set and
//! the last posture. So the ring is counted from the summaries first ([`summary_figures`]), and its devices are
//! read one by one only when the details can change the verdict ([`needs_details`]): not while too few devices
//! report or run the target set for the gate to pass before its deadline (a ring waiting days for its
//! maintenance window costs one listing per look, not one read per device).

use autopilot_shared::policy::Gates;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// One Thin Client device as the gate sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceView {
    pub id: String,
    pub environment_id: String,
    /// REGISTERED, DEREGISTERING, DEREGISTERED, ARCHIVED.
    pub status: String,
    pub current_software_set_id: Option<String>,
    /// UP_TO_DATE, IN_PROGRESS, NOT_APPLICABLE.
    pub update_status: Option<String>,
    /// COMPLIANT, NOT_COMPLIANT, NONE.
    pub compliance_status: Option<String>,
    pub last_posture_at: Option<DateTime<Utc>>,
}

/// How much of the ring's devices the figures were counted from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Detail {
    /// Every device read (`GetDevice`): update and compliance status counted.
    #[default]
    Devices,
    /// The `ListDevices` summaries only: `up_to_date` counts the reporting devices on the target set (an upper
    /// bound), `in_progress` and `not_compliant` are not counted. Only ever a waiting ring's figures.
    Summaries,
}

/// The counts a verdict is made from (kept in the rollout's history and reports).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct GateFigures {
    /// Registered devices of the ring.
    pub active: u32,
    /// Of those, reporting recently.
    pub reporting: u32,
    pub up_to_date: u32,
    pub not_compliant: u32,
    pub in_progress: u32,
    #[serde(default)]
    pub detail: Detail,
}

/// What the gate says now.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// Healthy: the thresholds hold.
    Passed,
    /// Devices are still updating (or too few report); look again before the deadline.
    Waiting { reason: String },
    /// The deadline passed without the thresholds holding.
    Failed { reason: String },
}

fn share(part: u32, whole: u32) -> f64 {
    if whole == 0 { 0.0 } else { f64::from(part) / f64::from(whole) }
}

/// Counts the ring's devices (read one by one) for `target` at `now`.
pub fn figures(devices: &[DeviceView], target: &str, gates: &Gates, now: DateTime<Utc>) -> GateFigures {
    count(devices, target, gates, now, Detail::Devices)
}

/// Counts the ring's devices from their `ListDevices` summaries (no update or compliance status).
pub fn summary_figures(summaries: &[DeviceView], target: &str, gates: &Gates, now: DateTime<Utc>) -> GateFigures {
    count(summaries, target, gates, now, Detail::Summaries)
}

/// Whether reading every device can change the verdict the summaries' figures `f` give at `now`: false while
/// too few devices report (the verdict does not depend on the details), and, before the deadline, while too few
/// run the target set for the gate to pass.
pub fn needs_details(f: &GateFigures, gates: &Gates, from: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    if too_few_report(f, gates) {
        return false;
    }
    now >= from + gates.within || share(f.up_to_date, f.reporting) >= gates.min_up_to_date.get()
}

fn count(devices: &[DeviceView], target: &str, gates: &Gates, now: DateTime<Utc>, detail: Detail) -> GateFigures {
    let mut f = GateFigures { detail, ..GateFigures::default() };
    for device in devices.iter().filter(|d| d.status == "REGISTERED") {
        f.active += 1;
        let fresh = device.last_posture_at.is_some_and(|at| at <= now && now - at <= gates.reporting_stale_after);
        if !fresh {
            continue;
        }
        f.reporting += 1;
        let on_target = device.current_software_set_id.as_deref() == Some(target);
        if detail == Detail::Summaries {
            f.up_to_date += u32::from(on_target);
            continue;
        }
        match device.update_status.as_deref() {
            Some("UP_TO_DATE") if on_target => f.up_to_date += 1,
            Some("IN_PROGRESS") => f.in_progress += 1,
            _ => {}
        }
        if device.compliance_status.as_deref() == Some("NOT_COMPLIANT") {
            f.not_compliant += 1;
        }
    }
    f
}

/// Whether fewer devices report than the gate needs: fewer than `min_reporting_devices`, or less than
/// `min_reporting_share` of the ring's active devices.
fn too_few_report(f: &GateFigures, gates: &Gates) -> bool {
    f.reporting < gates.min_reporting_devices || share(f.reporting, f.active) < gates.min_reporting_share.get()
}

/// The verdict for a ring whose environments were set to `target` and whose devices could take it from `from`
/// (the last of their maintenance windows opened).
pub fn evaluate(f: &GateFigures, gates: &Gates, from: DateTime<Utc>, now: DateTime<Utc>) -> Verdict {
    let deadline = from + gates.within;
    let past_deadline = now >= deadline;
    if too_few_report(f, gates) {
        let reason = format!(
            "{} of {} active devices reporting ({:.0}%), the gate needs {} and {:.0}%",
            f.reporting,
            f.active,
            share(f.reporting, f.active) * 100.0,
            gates.min_reporting_devices,
            gates.min_reporting_share.get() * 100.0
        );
        return if past_deadline { Verdict::Failed { reason } } else { Verdict::Waiting { reason } };
    }
    let up = share(f.up_to_date, f.reporting);
    if f.detail == Detail::Summaries {
        // Counted from the summaries (too few devices run the target set to pass): it fails only when that
        // already proves it at the deadline; otherwise it waits, whatever the details say.
        let described = format!(
            "{} of {} reporting devices run the target set ({:.0}%, need {:.0}%)",
            f.up_to_date,
            f.reporting,
            up * 100.0,
            gates.min_up_to_date.get() * 100.0
        );
        return if past_deadline && up < gates.min_up_to_date.get() {
            Verdict::Failed { reason: format!("{described}; deadline {deadline} passed") }
        } else {
            Verdict::Waiting {
                reason: format!(
                    "{described}; their update and compliance status are read once enough do; deadline {deadline}"
                ),
            }
        };
    }
    let not_compliant = share(f.not_compliant, f.reporting);
    let stuck = if past_deadline { share(f.in_progress, f.reporting) } else { 0.0 };
    let min_up = gates.min_up_to_date.get();
    let (max_nc, max_stuck) = (gates.max_not_compliant.get(), gates.max_stuck_in_progress.get());
    let described = format!(
        "{} of {} reporting devices up to date ({:.0}%, need {:.0}%), {} not compliant ({:.0}%, max {:.0}%), {} in progress",
        f.up_to_date,
        f.reporting,
        up * 100.0,
        min_up * 100.0,
        f.not_compliant,
        not_compliant * 100.0,
        max_nc * 100.0,
        f.in_progress
    );
    if up >= min_up && not_compliant <= max_nc && stuck <= max_stuck {
        Verdict::Passed
    } else if past_deadline {
        let stuck_note = if stuck > max_stuck {
            format!("; {:.0}% stuck in progress at the deadline (max {:.0}%)", stuck * 100.0, max_stuck * 100.0)
        } else {
            String::new()
        };
        Verdict::Failed { reason: format!("{described}{stuck_note}; deadline {deadline} passed") }
    } else {
        Verdict::Waiting { reason: format!("{described}; deadline {deadline}") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autopilot_shared::policy::Policy;
    use chrono::{Duration, TimeZone};

    fn gates() -> Gates {
        let policy = Policy::from_yaml(
            r#"
version: 1
rollouts:
  gates: { min_up_to_date: 0.8, within: 24h, max_not_compliant: 0.1, max_stuck_in_progress: 0.1, min_reporting_devices: 3, reporting_stale_after: 12h }
  rings: [{ name: canary, select: { names: [e1] } }]
"#,
        )
        .unwrap();
        policy.rollouts.unwrap().rings[0].gates.clone()
    }

    fn t(hours: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap() + Duration::hours(hours)
    }

    fn device(
        n: u32,
        set: &str,
        update: &str,
        compliance: &str,
        posture_hours_ago: Option<i64>,
        now: DateTime<Utc>,
    ) -> DeviceView {
        DeviceView {
            id: format!("d{n}"),
            environment_id: "e1".into(),
            status: "REGISTERED".into(),
            current_software_set_id: Some(set.into()),
            update_status: Some(update.into()),
            compliance_status: Some(compliance.into()),
            last_posture_at: posture_hours_ago.map(|h| now - Duration::hours(h)),
        }
    }

    #[test]
    fn a_ring_passes_when_enough_reporting_devices_run_the_target() {
        let now = t(10);
        let mut devices: Vec<DeviceView> =
            (0..9).map(|n| device(n, "new", "UP_TO_DATE", "COMPLIANT", Some(1), now)).collect();
        devices.push(device(9, "old", "IN_PROGRESS", "COMPLIANT", Some(1), now));
        let f = figures(&devices, "new", &gates(), now);
        assert_eq!((f.active, f.reporting, f.up_to_date, f.in_progress), (10, 10, 9, 1));
        assert_eq!(evaluate(&f, &gates(), t(0), now), Verdict::Passed);
    }

    #[test]
    fn silent_devices_are_not_reporting_never_healthy() {
        let now = t(10);
        // two fresh, eight silent for more than 12 hours (and two never reported)
        let mut devices: Vec<DeviceView> =
            (0..2).map(|n| device(n, "new", "UP_TO_DATE", "COMPLIANT", Some(1), now)).collect();
        devices.extend((2..8).map(|n| device(n, "new", "UP_TO_DATE", "COMPLIANT", Some(13), now)));
        devices.extend((8..10).map(|n| device(n, "new", "UP_TO_DATE", "COMPLIANT", None, now)));
        let f = figures(&devices, "new", &gates(), now);
        assert_eq!((f.active, f.reporting), (10, 2));
        assert!(matches!(evaluate(&f, &gates(), t(0), now), Verdict::Waiting { .. }));
        let Verdict::Failed { reason } = evaluate(&f, &gates(), t(0), t(24)) else { panic!() };
        assert!(reason.contains("2 of 10 active devices reporting"), "{reason}");
    }

    #[test]
    fn a_ring_where_most_devices_went_silent_does_not_pass_on_the_few_that_report() {
        // GIVEN a gate that needs one reporting device, and a ring of 10 where one reports (up to date) and nine
        // went silent (what an update that bricks devices looks like)
        let gates = Gates { min_reporting_devices: 1, ..gates() };
        let now = t(10);
        let mut devices = vec![device(0, "new", "UP_TO_DATE", "COMPLIANT", Some(1), now)];
        devices.extend((1..10).map(|n| device(n, "new", "IN_PROGRESS", "COMPLIANT", Some(30), now)));
        let f = figures(&devices, "new", &gates, now);
        // THEN it is not healthy: half the ring must report (`min_reporting_share`, 0.5 by default)
        assert!(matches!(evaluate(&f, &gates, t(0), now), Verdict::Waiting { .. }));
        let Verdict::Failed { reason } = evaluate(&f, &gates, t(0), t(24)) else { panic!() };
        assert!(reason.contains("1 of 10 active devices reporting (10%), the gate needs 1 and 50%"), "{reason}");
        // AND with five reporting, it passes
        for device in devices.iter_mut().take(5) {
            *device = DeviceView {
                last_posture_at: Some(now - Duration::hours(1)),
                update_status: Some("UP_TO_DATE".into()),
                ..device.clone()
            };
        }
        assert_eq!(evaluate(&figures(&devices, "new", &gates, now), &gates, t(0), now), Verdict::Passed);
    }

    #[test]
    fn devices_that_never_update_fail_the_gate_at_the_deadline() {
        let now = t(25);
        let devices: Vec<DeviceView> = (0..10)
            .map(|n| {
                if n < 5 {
                    device(n, "new", "UP_TO_DATE", "COMPLIANT", Some(1), now)
                } else {
                    device(n, "old", "IN_PROGRESS", "COMPLIANT", Some(1), now)
                }
            })
            .collect();
        let f = figures(&devices, "new", &gates(), now);
        assert!(matches!(evaluate(&f, &gates(), t(0), t(12)), Verdict::Waiting { .. }));
        let Verdict::Failed { reason } = evaluate(&f, &gates(), t(0), now) else { panic!() };
        assert!(reason.contains("5 of 10") && reason.contains("stuck in progress"), "{reason}");
    }

    #[test]
    fn too_many_not_compliant_devices_keep_the_gate_closed() {
        let now = t(5);
        let devices: Vec<DeviceView> = (0..10)
            .map(|n| device(n, "new", "UP_TO_DATE", if n < 2 { "NOT_COMPLIANT" } else { "COMPLIANT" }, Some(1), now))
            .collect();
        let f = figures(&devices, "new", &gates(), now);
        assert_eq!(f.not_compliant, 2);
        assert!(matches!(evaluate(&f, &gates(), t(0), now), Verdict::Waiting { .. }));
        // deregistered devices do not count at all
        let mut gone = device(99, "old", "IN_PROGRESS", "NOT_COMPLIANT", Some(1), now);
        gone.status = "DEREGISTERED".into();
        let f2 = figures(&[gone], "new", &gates(), now);
        assert_eq!(f2, GateFigures::default());
    }

    #[test]
    fn the_summaries_skip_the_device_reads_only_when_the_details_cannot_change_the_verdict() {
        // Every ring of four devices drawn from five kinds, before, at and after the deadline.
        let kinds: [(&str, &str, &str, Option<i64>); 5] = [
            ("new", "UP_TO_DATE", "COMPLIANT", Some(1)),
            ("new", "IN_PROGRESS", "NOT_COMPLIANT", Some(1)),
            ("old", "IN_PROGRESS", "COMPLIANT", Some(1)),
            ("old", "AVAILABLE", "NOT_COMPLIANT", Some(1)),
            ("new", "UP_TO_DATE", "COMPLIANT", Some(13)),
        ];
        let mut gates = gates();
        gates.min_reporting_devices = 2;
        let mut skipped = 0;
        for combination in 0..5_usize.pow(4) {
            for now in [t(1), t(24), t(30)] {
                let devices: Vec<DeviceView> = (0..4)
                    .map(|n| {
                        let (set, update, compliance, posture) = kinds[combination / 5_usize.pow(n) % 5];
                        device(n, set, update, compliance, posture, now)
                    })
                    .collect();
                let summaries: Vec<DeviceView> = devices
                    .iter()
                    .map(|d| DeviceView { update_status: None, compliance_status: None, ..d.clone() })
                    .collect();
                let counted = summary_figures(&summaries, "new", &gates, now);
                let read = figures(&devices, "new", &gates, now);
                assert_eq!((counted.active, counted.reporting), (read.active, read.reporting));
                assert!(counted.up_to_date >= read.up_to_date, "an upper bound");
                let verdict = evaluate(&counted, &gates, t(0), now);
                assert_ne!(verdict, Verdict::Passed, "never passed on summaries");
                if !needs_details(&counted, &gates, t(0), now) {
                    skipped += 1;
                    let full = evaluate(&read, &gates, t(0), now);
                    assert_eq!(
                        std::mem::discriminant(&verdict),
                        std::mem::discriminant(&full),
                        "{verdict:?} vs {full:?} for {devices:?} at {now}"
                    );
                }
            }
        }
        assert!(skipped > 500, "most waiting rings need no device read: {skipped}");
    }
}
