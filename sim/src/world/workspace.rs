//! Personal WorkSpaces and their health faults: a queue of faults, each holding the WorkSpace in its state until
//! its cure (a reboot, a rebuild, or the end of its window).

use super::Pending;
use crate::estate::{self, Cure, FaultState};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// A personal WorkSpace. Its health faults come from a queue (`faults`, earliest first); one at a time is
/// `fault`, which holds the WorkSpace in the fault's state until its cure: a reboot (or stop) for
/// [`Cure::Reboot`], a rebuild for [`Cure::Reboot`] and [`Cure::Rebuild`], the end of its window for
/// [`Cure::Itself`].
#[derive(Debug, Clone, Serialize)]
pub struct Workspace {
    pub id: String,
    pub account: String,
    pub region: String,
    pub directory_id: String,
    pub user: String,
    pub bundle_id: String,
    pub state: String,
    pub connected: bool,
    pub last_connected: Option<DateTime<Utc>>,
    pub tags: BTreeMap<String, String>,
    pub pending: Option<Pending>,
    /// Faults still to start, earliest first.
    pub faults: Vec<WorkspaceFault>,
    /// The fault the WorkSpace has now.
    pub fault: Option<WorkspaceFault>,
    /// Minutes spent UNHEALTHY, IMPAIRED or ERROR.
    pub unhealthy_minutes: u64,
    /// Minutes spent REBOOTING or REBUILDING.
    pub repair_minutes: u64,
    /// Faults that started.
    pub faults_started: u32,
}

/// One health fault of a WorkSpace: due `at` (it starts then, or when the WorkSpace is next AVAILABLE); a
/// [`Cure::Itself`] fault ends at `until` (and never starts once that has passed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkspaceFault {
    pub at: DateTime<Utc>,
    pub cure: Cure,
    pub until: Option<DateTime<Utc>>,
    pub state: FaultState,
}

impl WorkspaceFault {
    pub(super) fn from_spec(spec: &estate::WorkspaceFaultSpec, start: DateTime<Utc>) -> Self {
        let at = start + Duration::minutes(i64::from(spec.after_minutes));
        Self {
            at,
            cure: spec.cure,
            until: match spec.cure {
                Cure::Itself => Some(at + Duration::minutes(i64::from(spec.minutes.unwrap_or(0)))),
                _ => None,
            },
            state: spec.state,
        }
    }

    /// Whether a self-curing fault is over at `now`.
    fn over(&self, now: DateTime<Utc>) -> bool {
        self.until.is_some_and(|until| until <= now)
    }
}

impl Workspace {
    /// UNHEALTHY, IMPAIRED or ERROR.
    pub fn is_unhealthy(&self) -> bool {
        matches!(self.state.as_str(), "UNHEALTHY" | "IMPAIRED" | "ERROR")
    }

    /// REBOOTING or REBUILDING.
    pub fn is_repairing(&self) -> bool {
        matches!(self.state.as_str(), "REBOOTING" | "REBUILDING")
    }

    /// A reboot or stop was accepted: it cures a [`Cure::Reboot`] fault.
    pub fn restarted(&mut self) {
        self.fault.take_if(|f| f.cure == Cure::Reboot);
    }

    /// A rebuild was accepted: it cures every fault but a running [`Cure::Itself`] one.
    pub fn rebuilt(&mut self) {
        self.fault.take_if(|f| f.cure != Cure::Itself);
    }

    /// Adds a fault to the queue, keeping it ordered by due time.
    pub fn schedule(&mut self, fault: WorkspaceFault) {
        let at = self.faults.partition_point(|f| f.at <= fault.at);
        self.faults.insert(at, fault);
    }

    /// One minute ending at `now`: the minute counters (for the state held during that minute), then a due state
    /// change, the end of a self-curing fault, and the (re)assertion or start of a fault.
    pub(super) fn step(&mut self, now: DateTime<Utc>) {
        if self.is_unhealthy() {
            self.unhealthy_minutes += 1;
        }
        if self.is_repairing() {
            self.repair_minutes += 1;
        }
        if let Some(pending) = self.pending.take_if(|p| p.at <= now) {
            self.state = pending.state;
        }
        if self.fault.take_if(|f| f.over(now)).is_some() && self.state_is_fault() {
            self.state = "AVAILABLE".into();
        }
        if self.state == "AVAILABLE" && self.fault.is_none() {
            self.start_due_fault(now);
        }
        if self.state == "AVAILABLE"
            && let Some(fault) = &self.fault
        {
            self.state = fault.state.as_str().into();
            if fault.state == FaultState::Unhealthy {
                self.connected = false;
            }
        }
    }

    fn state_is_fault(&self) -> bool {
        matches!(self.state.as_str(), "UNHEALTHY" | "IMPAIRED")
    }

    /// Starts the earliest due fault, dropping self-curing ones whose window has passed.
    fn start_due_fault(&mut self, now: DateTime<Utc>) {
        while self.faults.first().is_some_and(|f| f.at <= now) {
            let fault = self.faults.remove(0);
            if !fault.over(now) {
                self.faults_started += 1;
                self.fault = Some(fault);
                return;
            }
        }
    }
}
