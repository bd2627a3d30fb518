//! remediator: finds unhealthy WorkSpaces, pools, fleets and image builders and fixes what can be fixed
//! safely — a reboot after a grace period, a rebuild only where the policy allows it, an escalation for the
//! rest — within per-selection budgets, a per-directory circuit breaker and a per-resource cooldown.
//!
//! - [`observe`]: one paginated Describe per service for the scope swept; tags and connection states only
//!   for the resources that are in trouble;
//! - [`decide`]: the pure planner, with a reason for every decision;
//! - [`act`]: batched, idempotent, fenced, audited, dry-run-aware execution and outcome events;
//! - [`handler`]: one entry point for every input, callable in-process.

pub mod act;
pub mod decide;
pub mod handler;
pub mod observe;
pub mod routing;

pub use handler::{Config, Deps, FUNCTION, Report, handle};
