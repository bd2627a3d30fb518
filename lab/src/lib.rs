//! EUC Autopilot's lab: experiments with the five functions on the simulated estate (`autopilot-sim`).
//!
//! - [`simulate`]: `autopilot simulate` / `demo`: a run of every function on the virtual clock, with baselines, a
//!   summary and a report; [`health`]: its WorkSpaces health section; [`people`]: simulated administrators;
//!   [`chart`]: the reports' SVG line charts;
//! - [`samples`]: the sample events of each function as a scenario (the estate they name, order, outcomes);
//! - [`chaos`]: reliability experiments (`autopilot chaos`); [`bench`]: performance figures (`autopilot bench`);
//! - [`transcript`]: a function's sample scenario written down (answers, audit, events), to compare runs.

pub mod bench;
pub mod chaos;
pub mod chart;
pub mod health;
pub mod people;
pub mod samples;
pub mod simulate;
pub mod transcript;

pub use autopilot_functions::{Crew, Function};
pub use autopilot_sim::LocalEstate;

/// Every function's dependencies on `local`, each signed as its own role.
pub fn crew(local: &LocalEstate) -> Crew {
    Crew::new(|function| local.deps_for(function.name()))
}
