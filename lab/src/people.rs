//! Simulated people: what administrators do to image builders in `autopilot simulate` (the estate's `work`
//! sessions). At a session's start a person starts the builder if it is stopped; at its end, with
//! `create_image`, they create an image (the builder snapshots). Nobody ever stops a builder: that is the
//! waste the builder-scheduler exists for. Each action is a call in the simulator's log and a CloudTrail
//! event for the functions, made as the administrator [`PERSON_NAME`] of the estate's account.

use autopilot_shared::policy::values::{parse_days, parse_time_of_day};
use autopilot_sim::Simulator;
use autopilot_sim::estate::Estate;
use chrono::{DateTime, Datelike, Duration, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};

/// The administrator the estate's builder work sessions are made by.
pub const PERSON_NAME: &str = "alice";

/// What a person does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    StartBuilder,
    CreateImage,
}

/// One action on one builder at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub at: DateTime<Utc>,
    pub builder: String,
    pub act: Act,
}

/// Why the estate's work sessions cannot become actions: the field (`image_builders[0].work.timezone`, …) and
/// what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum ActivityError {
    #[error("{path}.timezone: {zone} is not an IANA time zone")]
    NotATimezone { path: String, zone: String },
    #[error("{path}.days: {reason}")]
    Days { path: String, reason: String },
    #[error("{path}.start: {reason}")]
    Start { path: String, reason: String },
    #[error("{path}.hours: {hours} is not in (0, 24]")]
    Hours { path: String, hours: f64 },
    #[error("date out of range")]
    DateOutOfRange,
}

/// Every action of the estate's `work` sessions in `[from, to)`, in time order. Errors name the builder and
/// the field.
pub fn builder_activity(
    estate: &Estate,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Activity>, ActivityError> {
    let mut activity = Vec::new();
    for (index, builder) in estate.image_builders.iter().enumerate() {
        let Some(work) = &builder.work else { continue };
        let path = format!("image_builders[{index}].work");
        let timezone: Tz = work
            .timezone
            .parse()
            .map_err(|_| ActivityError::NotATimezone { path: path.clone(), zone: work.timezone.clone() })?;
        for (n, session) in work.sessions.iter().enumerate() {
            let path = format!("{path}.sessions[{n}]");
            let days = parse_days(&session.days)
                .map_err(|e| ActivityError::Days { path: path.clone(), reason: e.to_string() })?;
            let start = parse_time_of_day(&session.start)
                .map_err(|e| ActivityError::Start { path: path.clone(), reason: e.to_string() })?;
            if !(session.hours > 0.0 && session.hours <= 24.0) {
                return Err(ActivityError::Hours { path, hours: session.hours });
            }
            let length = Duration::minutes((session.hours * 60.0).round() as i64);
            let mut date = from.with_timezone(&timezone).date_naive() - Duration::days(1);
            while autopilot_shared::policy::schedule::resolve_local(timezone, date.and_time(start)) < to {
                let begins = autopilot_shared::policy::schedule::resolve_local(timezone, date.and_time(start));
                if days.contains(&date.weekday()) {
                    let mut push = |at: DateTime<Utc>, act: Act| {
                        if at >= from && at < to {
                            activity.push(Activity { at, builder: builder.name.clone(), act });
                        }
                    };
                    push(begins, Act::StartBuilder);
                    if session.create_image {
                        push(begins + length, Act::CreateImage);
                    }
                }
                date = date.succ_opt().ok_or(ActivityError::DateOutOfRange)?;
            }
        }
    }
    activity.sort_by(|a, b| (a.at, &a.builder).cmp(&(b.at, &b.builder)));
    Ok(activity)
}

/// Carries out one action on the simulator (at its current time) and returns the CloudTrail event it makes,
/// or `None` when the person had nothing to do (the builder was not in a state for it).
pub fn perform(simulator: &Simulator, activity: &Activity) -> Option<Value> {
    let at = simulator.now();
    match activity.act {
        Act::StartBuilder => {
            let stopped =
                simulator.with_world(|w| w.builders.get(&activity.builder).is_some_and(|b| b.state == "STOPPED"));
            if !stopped {
                return None;
            }
            let place = simulator.place();
            let actor = autopilot_sim::person(&place, PERSON_NAME);
            let caller = format!("person:{PERSON_NAME}");
            simulator
                .invoke_as(&caller, "appstream", "StartImageBuilder", &json!({ "Name": activity.builder }))
                .ok()?;
            Some(autopilot_sim::cloudtrail_event_in(
                &place,
                "StartImageBuilder",
                json!({ "name": activity.builder }),
                at,
                &actor,
            ))
        }
        Act::CreateImage => {
            let image = format!("{}-{}", activity.builder, at.format("%Y%m%d%H%M"));
            simulator.with_world_mut(|w| w.create_image_from_builder(&activity.builder, &image)).ok()?;
            let place = simulator.place();
            Some(autopilot_sim::cloudtrail_event_in(
                &place,
                "CreateImage",
                json!({ "imageBuilderName": activity.builder, "imageName": image }),
                at,
                &autopilot_sim::person(&place, PERSON_NAME),
            ))
        }
    }
}

/// The *always running once started* baseline of one builder: billed from the moment it is first up (at the
/// start when the estate says it runs, else at its first work session) to the end of the simulation.
pub fn baseline_hours(
    initially_billing: bool,
    first_start: Option<DateTime<Utc>>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> f64 {
    let up = if initially_billing { Some(from) } else { first_start };
    up.map_or(0.0, |up| (to - up).num_minutes().max(0) as f64 / 60.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekly_sessions_become_actions_in_local_time() {
        let estate = autopilot_sim::estate::Estate::from_yaml(
            r#"
image_builders:
  - name: b
    work:
      timezone: Europe/Berlin
      sessions: [{ days: mon-fri, start: "09:00", hours: 2, create_image: true }]
"#,
        )
        .unwrap();
        let from = DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z").unwrap().with_timezone(&Utc);
        let activity = builder_activity(&estate, from, from + Duration::days(7)).unwrap();
        assert_eq!(activity.len(), 10);
        assert_eq!(
            activity[0],
            Activity { at: from + Duration::hours(8), builder: "b".into(), act: Act::StartBuilder }
        );
        assert_eq!(activity[1].at, from + Duration::hours(10));
        assert_eq!(activity[1].act, Act::CreateImage);
        assert_eq!(baseline_hours(false, Some(activity[0].at), from, from + Duration::days(7)), 7.0 * 24.0 - 8.0);
        assert_eq!(baseline_hours(true, None, from, from + Duration::days(1)), 24.0);
    }

    #[test]
    fn bad_sessions_are_named() {
        let estate = autopilot_sim::estate::Estate::from_yaml(
            "image_builders:\n  - name: b\n    work: { sessions: [{ days: someday, start: \"09:00\", hours: 2 }] }\n",
        )
        .unwrap();
        let now = Utc::now();
        let error = builder_activity(&estate, now, now + Duration::days(1)).unwrap_err().to_string();
        assert!(error.starts_with("image_builders[0].work.sessions[0].days:"), "{error}");
    }
}

/// A person's API call (`{"person": "bob", "service": "appstream", "operation": "UpdateFleet", "parameters":
/// {...}}`): parameters as the API takes them (`Name`, `ComputeCapacity`, …; `TagResource` and `CreateTags` change
/// tags at that time).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonCall {
    #[serde(default = "default_person")]
    pub person: String,
    pub service: String,
    pub operation: String,
    #[serde(default)]
    pub parameters: Value,
}

fn default_person() -> String {
    PERSON_NAME.to_owned()
}

/// A person's API call made now: applied to the estate as `person:<name>` (so the call log names them), and —
/// when the service accepted it — the CloudTrail event AWS sends for it, in the estate's account and region, with
/// the person as the caller. A refused call changes nothing and sends nothing (CloudTrail rules take successful
/// calls only).
pub fn call(simulator: &autopilot_sim::Simulator, call: &PersonCall) -> Option<serde_json::Value> {
    let caller = format!("person:{}", call.person);
    if let Err(error) = simulator.invoke_as(&caller, &call.service, &call.operation, &call.parameters) {
        tracing::info!(person = %call.person, operation = %call.operation, %error, "a person's call was refused");
        return None;
    }
    let place = simulator.place();
    Some(autopilot_sim::cloudtrail_event_in(
        &place,
        &call.operation,
        cloudtrail_parameters(&call.parameters),
        simulator.now(),
        &autopilot_sim::person(&place, &call.person),
    ))
}

/// An API request's parameters as CloudTrail records them: member names in lowerCamelCase (`Name` → `name`,
/// `ComputeCapacity.DesiredInstances` → `computeCapacity.desiredInstances`), tag keys as they are.
fn cloudtrail_parameters(parameters: &serde_json::Value) -> serde_json::Value {
    fn lower_first(name: &str) -> String {
        let mut chars = name.chars();
        chars.next().map(|first| first.to_ascii_lowercase().to_string() + chars.as_str()).unwrap_or_default()
    }
    match parameters {
        serde_json::Value::Object(members) => members
            .iter()
            .map(|(name, value)| {
                let value = match (name.as_str(), value) {
                    ("Tags", serde_json::Value::Object(_)) => value.clone(),
                    _ => cloudtrail_parameters(value),
                };
                (lower_first(name), value)
            })
            .collect(),
        serde_json::Value::Array(items) => items.iter().map(cloudtrail_parameters).collect(),
        other => other.clone(),
    }
}

#[cfg(test)]
mod call_tests {
    use super::*;

    #[test]
    fn parameters_are_recorded_as_cloudtrail_names_them() {
        let request = json!({
            "Name": "sales-fleet",
            "ComputeCapacity": { "DesiredInstances": 12 },
            "Tags": { "Owner": "Team A" },
            "RebootWorkspaceRequests": [{ "WorkspaceId": "ws-1" }]
        });
        assert_eq!(
            cloudtrail_parameters(&request),
            json!({
                "name": "sales-fleet",
                "computeCapacity": { "desiredInstances": 12 },
                "tags": { "Owner": "Team A" },
                "rebootWorkspaceRequests": [{ "workspaceId": "ws-1" }]
            })
        );
    }
}
