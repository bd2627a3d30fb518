//! softwareset-roller: rolls WorkSpaces Thin Client software sets across environments in rings with health
//! gates and rollback.
//!
//! - [`gate`]: the pure health-gate evaluation of a ring;
//! - [`machine`]: the pure rollout state machine;
//! - [`plan`]: rings and their environments, the candidate set, refusals (one active rollout per environment);
//! - [`observe`]: environments, software sets, open rollouts, the gated ring's devices;
//! - [`request`]: starting a rollout (pure decide: duplicate, already rolling, refused, dry-run, begin);
//! - [`control`]: pause, resume, abort (pure decide);
//! - [`tick`]: every open rollout stepped, support-ending and new-set notices, the automatic start;
//! - [`act`]: each update once, transitions announced and saved;
//! - [`window`]: when an environment's devices can take a new set (its maintenance window);
//! - [`handler`]: the wiring: routes an input to a request, a control or the tick.

pub mod act;
pub mod control;
pub mod gate;
pub mod handler;
pub mod machine;
pub mod observe;
pub mod plan;
pub mod request;
pub mod routing;
pub mod tick;
pub mod window;

pub use handler::{Config, Deps, FUNCTION, Report, handle};
