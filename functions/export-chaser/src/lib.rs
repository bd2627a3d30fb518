//! export-chaser: creates and chases AppStream image export tasks and imported images to a terminal state.
//!
//! In progress (issue 6): [`decide`], the pure state machine of an export job (exactly-once creation through
//! intent → task id with crash recovery, age-based polling, retry classification, escalation). The observe and
//! act steps, the handler, the template resource and the end-to-end tests follow.

pub mod act;
pub mod decide;
pub mod handler;
pub mod imports;
pub mod observe;
pub mod routing;

pub use handler::{Config, Deps, FUNCTION, Report, handle};
