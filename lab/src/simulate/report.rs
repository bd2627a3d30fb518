//! The simulation's Markdown report (`report.md`): the runs against the baselines, the goals, resources, image
//! builders, exports, each resource's chart, WorkSpaces health and Thin Client sections.

use super::Summary;
use super::charts::{Series, resource_chart};
use std::fmt::Write as _;

/// A Markdown table.
fn table(out: &mut String, headers: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    let _ = writeln!(out, "| {} |\n|{}", headers.join(" | "), "---|".repeat(headers.len()));
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
}

/// The report on `summary`, with a chart for every resource of `series`.
pub(super) fn report(summary: &Summary, series: &Series) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# EUC Autopilot simulation\n\n{} to {}, seed {}, {} ticks, {} injected events delivered ({} matched no rule).\n",
        summary.from, summary.to, summary.seed, summary.ticks, summary.events_delivered, summary.events_not_routed
    );
    if summary.measured_from > summary.from {
        let _ = writeln!(
            out,
            "Learning until {}: the capacity and service figures below (ours and every baseline's), the detection \
             latency and the goals count from then on.\n",
            summary.measured_from
        );
    }
    if !summary.failed_invocations.is_empty() {
        let _ = writeln!(
            out,
            "**{} invocations failed** (a deployment would log, retry or dead-letter them):\n\n{}\n",
            summary.failed_invocations.len(),
            summary.failed_invocations.iter().take(20).map(|f| format!("- {f}")).collect::<Vec<_>>().join("\n")
        );
    }
    table(
        &mut out,
        &[
            "run",
            "capacity-hours",
            "session requests",
            "unserved",
            "unserved share",
            "unserved session-minutes",
            "actions",
            "API calls",
        ],
        summary.runs().into_iter().map(|(name, f)| {
            vec![
                name,
                format!("{:.1}", f.capacity_hours),
                f.session_requests.to_string(),
                f.unserved_session_requests.to_string(),
                format!("{:.2}%", f.unserved_share() * 100.0),
                f.unserved_session_minutes.to_string(),
                f.actions.to_string(),
                f.api_calls.to_string(),
            ]
        }),
    );
    let _ = writeln!(
        out,
        "\n![cost against unserved demand]({})\n\nAAS: Application Auto Scaling target tracking on capacity utilization at that target, with scheduled minimum and maximum capacity from the same schedule (the model: docs/scaling.md in the EUC Autopilot repository).\n\n{}\n\n## Resources\n",
        super::charts::COST_CHART,
        goals(summary).join("\n")
    );
    table(
        &mut out,
        &["resource", "service", "capacity-hours", "session requests", "unserved", "actions"],
        summary.resources.iter().map(|r| {
            vec![
                r.id.clone(),
                r.service.clone(),
                format!("{:.1}", r.figures.capacity_hours),
                r.figures.session_requests.to_string(),
                r.figures.unserved_session_requests.to_string(),
                r.figures.actions.to_string(),
            ]
        }),
    );
    let b = &summary.builders;
    if !b.builders.is_empty() {
        let _ = writeln!(
            out,
            "\n## Image builders\n\n{:.1} billed hours vs {:.1} if every builder ran from its first start to the end: {:.1} hours saved; {} stops deferred.\n",
            b.running_hours, b.baseline_hours, b.hours_saved, b.deferrals
        );
        table(
            &mut out,
            &["builder", "billed hours", "baseline hours", "saved", "starts", "stops", "stop warnings", "deferrals"],
            b.builders.iter().map(|f| {
                vec![
                    f.name.clone(),
                    format!("{:.1}", f.running_hours),
                    format!("{:.1}", f.baseline_hours),
                    format!("{:.1}", f.hours_saved),
                    f.starts.to_string(),
                    f.stops.to_string(),
                    f.stop_warnings.to_string(),
                    f.deferrals.len().to_string(),
                ]
            }),
        );
        let deferrals: Vec<String> = b
            .builders
            .iter()
            .flat_map(|f| f.deferrals.iter().map(move |d| format!("- {} {}: {}", d.at, f.name, d.reason)))
            .collect();
        if !deferrals.is_empty() {
            let _ = writeln!(out, "\nDeferred stops:\n\n{}", deferrals.join("\n"));
        }
    }
    if !summary.exports.is_empty() {
        let _ = writeln!(out, "\n## Image exports and imports\n");
        table(
            &mut out,
            &["kind", "image", "AMI name", "attempts", "outcome", "duration (min)", "escalated"],
            summary.exports.iter().map(|r| {
                vec![
                    r.kind.clone(),
                    r.image.clone(),
                    r.ami_name.clone().unwrap_or_default(),
                    r.attempts.to_string(),
                    r.outcome.clone(),
                    r.duration_minutes.map(|m| m.to_string()).unwrap_or_default(),
                    if r.escalated { "yes".into() } else { String::new() },
                ]
            }),
        );
    }
    out.push('\n');
    for id in series.keys() {
        let _ = writeln!(out, "### {id}\n\n![{id}]({})\n", resource_chart(id));
    }
    out
}

/// The report's Thin Client section: the rollout chart at `chart` (relative to the report) when one was
/// written, and the service's announced end of support.
pub(super) fn rollout_section(chart: Option<&str>) -> String {
    let mut out = String::from("\n## WorkSpaces Thin Client\n\n");
    if let Some(chart) = chart {
        let _ = write!(out, "![rollout]({chart})\n\n");
    }
    out.push_str(&format!(
        "AWS has announced the end of support of WorkSpaces Thin Client on {}: plan the devices' \
         replacement; no software set is rolled out past its own `supportedUntil`.\n",
        autopilot_shared::support::THIN_CLIENT_END
    ));
    out
}

/// The demo's goals, each line starting with PASS or MISS.
pub fn goals(summary: &Summary) -> Vec<String> {
    let t = &summary.totals;
    let saving = if summary.baselines.fixed.capacity_hours > 0.0 {
        1.0 - t.capacity_hours / summary.baselines.fixed.capacity_hours
    } else {
        0.0
    };
    let mark = |ok: bool| if ok { "PASS" } else { "MISS" };
    let b = &summary.builders;
    let builder_saving = if b.baseline_hours > 0.0 { b.hours_saved / b.baseline_hours } else { 0.0 };
    let builder_goal = (!b.builders.is_empty()).then(|| {
        format!(
            "{} image builder hours {:.0}% below running from first start (goal: at least 50%)",
            mark(builder_saving >= 0.5),
            builder_saving * 100.0
        )
    });
    let mut goals = vec![
        format!("{} capacity-hours {:.0}% below static (goal: at least 40%)", mark(saving >= 0.40), saving * 100.0),
        format!(
            "{} unserved session requests {:.2}% (goal: at most {}%)",
            mark(t.unserved_share() <= super::UNSERVED_SHARE_GOAL),
            t.unserved_share() * 100.0,
            super::UNSERVED_SHARE_GOAL * 100.0,
        ),
        format!(
            "{} unserved requests {} vs schedule-only {} (goal: fewer)",
            mark(t.unserved_session_requests < summary.baselines.schedule_only.unserved_session_requests),
            t.unserved_session_requests,
            summary.baselines.schedule_only.unserved_session_requests
        ),
    ];
    if let Some(run) = summary.baselines.aas_reference() {
        let seconds = |s: Option<i64>| s.map_or_else(|| "none".to_owned(), |s| format!("{s} s"));
        goals.push(format!(
            "{} detection latency p95 {} over {} pressure episodes vs AAS target tracking at {}% {} (goal: at most 60 s)",
            mark(summary.detection_latency.p95_seconds.map_or(summary.detection_latency.unanswered == 0, |s| s <= 60)),
            seconds(summary.detection_latency.p95_seconds),
            summary.detection_latency.answered,
            super::AAS_REFERENCE_TARGET,
            seconds(run.detection_latency.p95_seconds),
        ));
    }
    if let Some(aas) = summary.baselines.aas_reference().map(|r| &r.figures).filter(|aas| aas.capacity_hours > 0.0) {
        let ratio = t.capacity_hours / aas.capacity_hours;
        goals.push(format!(
            "{} capacity-hours {ratio:.2} x AAS target tracking at {}% with {} unserved requests vs its {} (goal: at most 0.85 x, no more unserved;{} the floor, capacity exactly at demand each minute with no start-up delay: {:.2} x)",
            mark(ratio <= 0.85 && t.unserved_session_requests <= aas.unserved_session_requests),
            super::AAS_REFERENCE_TARGET,
            t.unserved_session_requests,
            aas.unserved_session_requests,
            summary.baselines.oracle.as_ref().map_or_else(String::new, |o| format!(
                " the lead-time oracle, knowing the demand curve and its noise, with {} unserved: {:.2} x;",
                o.figures.unserved_session_requests,
                o.figures.capacity_hours / aas.capacity_hours
            )),
            summary.baselines.instant.capacity_hours / aas.capacity_hours
        ));
        goals.push(format!(
            "{} unserved session-minutes {} vs AAS target tracking at {}% {} (goal: at most half)",
            mark(t.unserved_session_minutes * 2 <= aas.unserved_session_minutes),
            t.unserved_session_minutes,
            super::AAS_REFERENCE_TARGET,
            aas.unserved_session_minutes
        ));
    }
    goals.extend(builder_goal);
    goals.push(format!(
        "{} {} requests refused by IAM of {} authorisations (goal: none: the template's roles are wide enough){}",
        mark(summary.iam.refused.is_empty()),
        summary.iam.refused.len(),
        summary.iam.authorizations,
        if summary.iam.refused.is_empty() { String::new() } else { format!(": {}", summary.iam.refused.join("; ")) }
    ));
    goals.push(format!(
        "{} {} failed invocations (goal: none)",
        mark(summary.failed_invocations.is_empty()),
        summary.failed_invocations.len()
    ));
    let w = &summary.workspaces;
    if w.baseline_unhealthy_hours > 0.0 {
        let saving = crate::health::saving(w);
        goals.push(format!(
            "{} unhealthy WorkSpace-hours {:.0}% below the run without the remediator (goal: at least 50%)",
            mark(saving >= 0.5),
            saving * 100.0
        ));
    }
    goals
}
