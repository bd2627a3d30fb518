//! softwareset-roller: rolls WorkSpaces Thin Client software sets across environments in rings with health
//! gates and rollback.
//!
//! - [`gate`]: the pure health-gate evaluation of a ring;
//! - [`machine`]: the pure rollout state machine;
//! - [`plan`]: rings and their environments, the candidate set, refusals (one active rollout per environment);
//! - [`observe`]: environments, software sets, the gated ring's devices;
//! - [`act`]: each update once, transitions announced and saved;
//! - [`handler`]: commands and the tick.

pub mod act;
pub mod gate;
pub mod handler;
pub mod machine;
pub mod observe;
pub mod plan;
pub mod routing;

pub use handler::{Config, Deps, FUNCTION, Report, handle};
