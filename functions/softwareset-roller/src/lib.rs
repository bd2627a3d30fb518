//! softwareset-roller: rolls WorkSpaces Thin Client software sets across environments in rings with health
//! gates and rollback.
//!
//! In progress (issue 7): [`gate`], the pure health-gate evaluation of a ring. The rollout state machine,
//! observe/act steps, handler, template resource and end-to-end tests follow.

pub mod gate;
