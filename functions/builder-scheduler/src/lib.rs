//! builder-scheduler: starts and stops AppStream image builders on schedules, stops forgotten ones after a
//! maximum runtime, and never interrupts one that is busy.
//!
//! - [`observe`]: one paginated `DescribeImageBuilders` pass and each builder's tags;
//! - [`decide`]: the pure planner (schedule, max-runtime, warnings, safety by state, manual changes, tags),
//!   with a reason for every decision;
//! - [`act`]: idempotent (per cause), fenced, audited, dry-run-aware execution and outcome events;
//! - [`handler`]: one entry point for every input, callable in-process.

pub mod act;
pub mod decide;
pub mod handler;
pub mod observe;
pub mod routing;

pub use handler::{Config, Deps, FUNCTION, Report, handle};
