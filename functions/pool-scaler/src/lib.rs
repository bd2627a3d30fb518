//! pool-scaler: keeps WorkSpaces Pools and AppStream fleets right-sized by schedule and utilization.
//!
//! [`decide`] is the pure heart. The handler, observe and act steps follow.

pub mod decide;
