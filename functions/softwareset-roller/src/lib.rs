//! softwareset-roller: rolls WorkSpaces Thin Client software sets across environments in rings with health
//! gates and rollback.
//!
//! In progress (issue 7):
//! - [`gate`]: the pure health-gate evaluation of a ring;
//! - [`machine`]: the pure rollout state machine;
//! - [`plan`]: rings and their environments, the candidate set, refusals (one active rollout per environment);
//! - [`observe`]: environments, software sets, the ring's devices.
//!
//! The act step, the handler (commands, tick), the template resource and the end-to-end rollouts follow.

pub mod act;
pub mod gate;
pub mod handler;
pub mod machine;
pub mod observe;
pub mod plan;
pub mod routing;

pub use handler::{Config, Deps, FUNCTION, Report, handle};
