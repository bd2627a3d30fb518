//! Plain SVG charts for the reports of `autopilot simulate`: line charts (each resource's demand and capacity,
//! the rollout per ring, unhealthy WorkSpaces with and without the remediator) and a labelled scatter chart
//! (cost against unserved demand, one point per run).

use chrono::{DateTime, Utc};
use std::fmt::Write as _;

/// One series of a chart: its label in the legend, its colour (`#rrggbb`) and one value per instant.
#[derive(Debug, Clone)]
pub struct Line<'a> {
    pub label: &'a str,
    pub colour: &'a str,
    pub values: Vec<u32>,
}

/// A plain SVG line chart: one labelled, coloured line per series over the instants `at`.
pub fn line_chart(title: &str, at: &[DateTime<Utc>], lines: &[Line<'_>]) -> String {
    let (width, height, margin) = (900.0, 260.0, 40.0);
    let max = lines.iter().flat_map(|line| line.values.iter().copied()).max().unwrap_or(1).max(1) as f64;
    let n = at.len().max(2) as f64 - 1.0;
    let mut legend = String::new();
    let mut polylines = String::new();
    for (index, Line { label, colour, values }) in lines.iter().enumerate() {
        let x = width - 10.0 - 150.0 * (lines.len() - index) as f64;
        let _ = write!(legend, r#"<text x="{x}" y="20" fill="{colour}">{label}</text>"#);
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, value)| {
                format!(
                    "{:.1},{:.1}",
                    margin + (width - 2.0 * margin) * i as f64 / n,
                    height - margin - (height - 2.0 * margin) * f64::from(*value) / max
                )
            })
            .collect();
        let _ = writeln!(
            polylines,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"#,
            points.join(" ")
        );
    }
    let first = at.first().map(|t| t.format("%a %d %b %H:%M").to_string()).unwrap_or_default();
    let last = at.last().map(|t| t.format("%a %d %b %H:%M").to_string()).unwrap_or_default();
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{margin}" y="20" font-weight="bold">{title}</text>
{legend}
<line x1="{margin}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="black"/><line x1="{margin}" y1="{margin}" x2="{margin}" y2="{bottom}" stroke="black"/>
<text x="4" y="{top_label}">{max}</text><text x="4" y="{bottom}">0</text>
<text x="{margin}" y="{date_y}">{first}</text><text x="{right}" y="{date_y}" text-anchor="end">{last}</text>
{polylines}</svg>
"##,
        bottom = height - margin,
        right = width - margin,
        top_label = margin + 4.0,
        date_y = height - 12.0,
    )
}

/// One labelled point of a scatter chart.
#[derive(Debug, Clone, Copy)]
pub struct Point<'a> {
    pub label: &'a str,
    pub x: f64,
    pub y: f64,
}

/// A plain SVG scatter chart: each point a dot with its label; x linear from 0 to the largest value, y on a log
/// scale (log10(1 + y)) so that runs a thousand times apart in unserved demand stay apart.
pub fn scatter_chart(title: &str, x_label: &str, y_label: &str, points: &[Point<'_>]) -> String {
    let (width, height, margin) = (700.0, 420.0, 60.0);
    let log = |y: f64| (1.0 + y.max(0.0)).log10();
    let max_x = points.iter().map(|p| p.x).fold(0.0, f64::max).max(1.0);
    let max_y = points.iter().map(|p| p.y).fold(0.0, f64::max).max(1.0);
    let mut dots = String::new();
    for Point { label, x, y } in points {
        let (cx, cy) = scatter_position(*x / max_x, log(*y) / log(max_y), (width, height, margin));
        let _ = writeln!(
            dots,
            r##"<circle cx="{cx:.1}" cy="{cy:.1}" r="4" fill="#1f77b4"/><text x="{:.1}" y="{:.1}">{label}</text>"##,
            cx + 6.0,
            cy - 6.0
        );
    }
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{margin}" y="20" font-weight="bold">{title}</text>
<line x1="{margin}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="black"/><line x1="{margin}" y1="{margin}" x2="{margin}" y2="{bottom}" stroke="black"/>
<text x="{right}" y="{x_label_y}" text-anchor="end">{x_label} (0 to {max_x:.0})</text>
<text x="4" y="{top_label}">{y_label} (log scale, 0 to {max_y:.0})</text>
{dots}</svg>
"##,
        bottom = height - margin,
        right = width - margin,
        top_label = margin - 10.0,
        x_label_y = height - 20.0,
    )
}

/// Where a point at shares `(x, y)` of the axes (0–1) is drawn in a `(width, height, margin)` chart.
fn scatter_position(x: f64, y: f64, (width, height, margin): (f64, f64, f64)) -> (f64, f64) {
    (margin + (width - 2.0 * margin) * x, height - margin - (height - 2.0 * margin) * y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scatter_chart_keeps_runs_orders_of_magnitude_apart_in_unserved_demand_apart() {
        let points = [
            Point { label: "ours", x: 13_962.0, y: 1.0 },
            Point { label: "aas-75", x: 12_674.0, y: 356.0 },
            Point { label: "schedule-only", x: 5_153.0, y: 293_796.0 },
        ];
        let svg = scatter_chart("t", "x", "y", &points);
        let ys: Vec<f64> =
            svg.lines().filter_map(|l| l.split("cy=\"").nth(1)?.split('"').next()?.parse().ok()).collect();
        assert_eq!(ys.len(), 3);
        // linear, the first two would be 0.4 px apart; on the log scale they are over 100 px apart
        assert!(ys[0] - ys[1] > 100.0 && ys[1] > ys[2], "{ys:?}");
        assert!(svg.contains("log scale"));
    }
}
