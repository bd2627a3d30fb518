//! export-chaser: creates and chases AppStream image export tasks and imported images to a terminal state.
//!
//! - [`decide`]: the pure state machine of an export job (exactly-once creation through intent → task id with
//!   crash recovery, polling by age, retry classification, one escalation);
//! - [`observe`]: `ListExportImageTasks` (one pass serves every task), the recovery look-up, `GetExportImageTask`;
//! - [`request`]: `Export Requested` (pure decide: redelivered, refused, dry-run, create);
//! - [`adopt`]: tasks and imports someone else started, noticed from CloudTrail or the listing (pure decide);
//! - [`chase`]: the tick: every open job's next step, adoption of unknown tasks, due imports;
//! - [`act`]: each creation and outcome event once per job, the job saved with its version;
//! - [`imports`]: imported images, chased with batched `DescribeImages`;
//! - [`handler`]: the wiring.

pub mod act;
pub mod adopt;
pub mod chase;
pub mod decide;
pub mod handler;
pub mod imports;
pub mod observe;
pub mod request;
pub mod routing;

pub use handler::{Config, Deps, FUNCTION, Report, handle};
