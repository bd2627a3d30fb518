//! When an environment's devices can take a new software set, pure: with `APPLY_IMMEDIATELY` at once; with
//! `USE_MAINTENANCE_WINDOW` in its maintenance window (a `CUSTOM` window's days and hours, in UTC or in each
//! device's local time; the service's own `SYSTEM` window some time each day). A ring's gate deadline counts from
//! when its environments' windows open, so a ring whose window is at the weekend is not failed on Tuesday.

use chrono::{DateTime, Datelike, Duration, NaiveTime, Utc, Weekday};
use serde::{Deserialize, Serialize};

/// When an environment's devices apply a new desired set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum UpdateWindow {
    /// `APPLY_IMMEDIATELY` (and a record from before windows were kept).
    #[default]
    Immediately,
    /// The service's `SYSTEM` maintenance window: some time in each day, when is not published.
    Daily,
    /// A `CUSTOM` maintenance window: on `days` (0 = Monday), from `start` to `end` minutes after midnight
    /// (`end` before `start`: past midnight), in UTC or in each device's own time zone.
    Weekly { days: Vec<u32>, start: u32, end: u32, device_time: bool },
}

/// The furthest a device's local time is behind UTC (UTC−12): a window in device time opens at the latest that
/// much after it opens in UTC.
const DEVICE_TIME_LAG: i64 = 12;

impl UpdateWindow {
    /// Reads the environment's `softwareSetUpdateSchedule` and `maintenanceWindow`.
    pub fn of(
        schedule: Option<&aws_sdk_workspacesthinclient::types::SoftwareSetUpdateSchedule>,
        window: Option<&aws_sdk_workspacesthinclient::types::MaintenanceWindow>,
    ) -> Self {
        use aws_sdk_workspacesthinclient::types::{ApplyTimeOf, MaintenanceWindowType, SoftwareSetUpdateSchedule};
        if schedule == Some(&SoftwareSetUpdateSchedule::ApplyImmediately) {
            return UpdateWindow::Immediately;
        }
        let Some(window) = window.filter(|w| *w.r#type() == MaintenanceWindowType::Custom) else {
            return UpdateWindow::Daily;
        };
        let minutes = |hour: Option<i32>, minute: Option<i32>| {
            u32::try_from(hour.unwrap_or(0).clamp(0, 23) * 60 + minute.unwrap_or(0).clamp(0, 59)).unwrap_or(0)
        };
        let days: Vec<u32> = window
            .days_of_the_week()
            .iter()
            .filter_map(|d| d.as_str().parse::<Weekday>().ok())
            .map(|d| d.num_days_from_monday())
            .collect();
        if days.is_empty() {
            return UpdateWindow::Daily;
        }
        UpdateWindow::Weekly {
            days,
            start: minutes(window.start_time_hour(), window.start_time_minute()),
            end: minutes(window.end_time_hour(), window.end_time_minute()),
            device_time: window.apply_time_of() == Some(&ApplyTimeOf::Device),
        }
    }

    /// The latest instant the devices can have begun to apply a set asked for at `after`.
    pub fn opens(&self, after: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            UpdateWindow::Immediately => after,
            UpdateWindow::Daily => after + Duration::days(1),
            UpdateWindow::Weekly { days, start, end, device_time } => {
                let length = if end > start { end - start } else { 24 * 60 - start + end };
                let start_time = NaiveTime::from_num_seconds_from_midnight_opt(start * 60, 0).unwrap_or_default();
                // From the day before (a window open past midnight) to a week on: the first that has not ended.
                let opening = (-1..=7)
                    .map(|offset| after.date_naive() + Duration::days(offset))
                    .filter(|day| days.contains(&day.weekday().num_days_from_monday()))
                    .map(|day| day.and_time(start_time).and_utc())
                    .find(|opens| *opens + Duration::minutes(i64::from(length)) > after)
                    .map_or(after, |opens| opens.max(after));
                if *device_time { opening + Duration::hours(DEVICE_TIME_LAG) } else { opening }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// Monday 2026-11-23 plus `hours`, UTC.
    fn t(hours: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap() + Duration::hours(hours)
    }

    #[test]
    fn a_window_opens_at_its_next_start_or_now_when_open() {
        let weekend = UpdateWindow::Weekly { days: vec![5, 6], start: 60, end: 300, device_time: false };
        // Monday 10:00 → Saturday 01:00
        assert_eq!(weekend.opens(t(10)), t(5 * 24 + 1));
        // Saturday 02:00, inside the window → now
        assert_eq!(weekend.opens(t(5 * 24 + 2)), t(5 * 24 + 2));
        // Sunday 06:00, after Sunday's window → next Saturday 01:00
        assert_eq!(weekend.opens(t(6 * 24 + 6)), t(12 * 24 + 1));
        // a window past midnight (Sunday 22:00 to 02:00) seen on Monday 01:00 is still open
        let night = UpdateWindow::Weekly { days: vec![6], start: 22 * 60, end: 120, device_time: false };
        assert_eq!(night.opens(t(1)), t(1));
        assert_eq!(night.opens(t(3)), t(6 * 24 + 22));
        // in each device's time: up to twelve hours later
        let device = UpdateWindow::Weekly { days: vec![0, 1, 2, 3, 4, 5, 6], start: 120, end: 240, device_time: true };
        assert_eq!(device.opens(t(10)), t(24 + 2 + 12));
        assert_eq!(UpdateWindow::Immediately.opens(t(10)), t(10));
        assert_eq!(UpdateWindow::Daily.opens(t(10)), t(34));
    }

    #[test]
    fn the_service_fields_are_read_as_the_api_gives_them() {
        use aws_sdk_workspacesthinclient::types::{
            ApplyTimeOf, DayOfWeek, MaintenanceWindow, MaintenanceWindowType, SoftwareSetUpdateSchedule,
        };
        let custom = MaintenanceWindow::builder()
            .r#type(MaintenanceWindowType::Custom)
            .start_time_hour(1)
            .start_time_minute(30)
            .end_time_hour(5)
            .end_time_minute(0)
            .days_of_the_week(DayOfWeek::Saturday)
            .days_of_the_week(DayOfWeek::Sunday)
            .apply_time_of(ApplyTimeOf::Utc)
            .build()
            .unwrap();
        let window = Some(&custom);
        assert_eq!(
            UpdateWindow::of(Some(&SoftwareSetUpdateSchedule::UseMaintenanceWindow), window),
            UpdateWindow::Weekly { days: vec![5, 6], start: 90, end: 300, device_time: false }
        );
        assert_eq!(
            UpdateWindow::of(Some(&SoftwareSetUpdateSchedule::ApplyImmediately), window),
            UpdateWindow::Immediately
        );
        let system = MaintenanceWindow::builder().r#type(MaintenanceWindowType::System).build().unwrap();
        assert_eq!(UpdateWindow::of(None, Some(&system)), UpdateWindow::Daily);
    }
}
