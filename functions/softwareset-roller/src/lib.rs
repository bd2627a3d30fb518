//! softwareset-roller: rolls WorkSpaces Thin Client software sets across environments in rings with health
//! gates and rollback.
//!
//! In progress (issue 7): [`gate`], the pure health-gate evaluation of a ring, and [`machine`], the pure rollout
//! state machine. The observe/act steps, handler, template resource and end-to-end tests follow.

pub mod gate;
pub mod machine;
pub mod observe;
