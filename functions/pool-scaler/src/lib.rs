//! pool-scaler: keeps WorkSpaces Pools and AppStream fleets right-sized by schedule and utilization.
//!
//! - [`observe`]: paginated Describe passes, tags, Application Auto Scaling targets;
//! - [`decide`]: the pure planner (schedule phase, bounds, utilization target, cooldowns, steps, overrides,
//!   manual changes), with a reason for every decision;
//! - [`forecast`]: predictive prewarm, pure: the learned weekly profile and lead time, and the outlook;
//! - [`act`]: idempotent, fenced, audited, dry-run-aware execution;
//! - [`handler`]: one entry point for every input, callable in-process.

pub mod act;
pub mod decide;
pub mod forecast;
pub mod handler;
pub mod observe;
pub mod routing;

pub use handler::{Config, Deps, FUNCTION, Report, handle};
