//! export-chaser: creates and chases AppStream image export tasks and imported images to a terminal state.
//!
//! - [`decide`]: the pure state machine of an export job (exactly-once creation through intent → task id with
//!   crash recovery, polling by age, retry classification, one escalation);
//! - [`observe`]: `ListExportImageTasks` (one pass serves every task), the recovery look-up, `GetExportImageTask`;
//! - [`act`]: each creation and outcome event once per job, the job saved with its version;
//! - [`imports`]: imported images, chased with batched `DescribeImages`;
//! - [`handler`]: `Export Requested`, CloudTrail adoption, the tick.

pub mod act;
pub mod decide;
pub mod handler;
pub mod imports;
pub mod observe;
pub mod routing;

pub use handler::{Config, Deps, FUNCTION, Report, handle};
