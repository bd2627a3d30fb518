//! Harness for end-to-end tests: a local estate, a policy stored in the ledger, and the functions'
//! dependencies wired to both, with the simulator's virtual clock as the functions' clock; and
//! [`runtime_api`], a local Lambda Runtime API that runs the functions' release binaries as Lambda does.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test harness: a failed set-up is a failed test

pub use autopilot_sim::runtime_api;

use autopilot_functions::Function;
use autopilot_shared::error::AutopilotError;
use autopilot_shared::runtime::Deps;
use autopilot_sim::LocalEstate;
use autopilot_sim::estate::Estate;

pub use autopilot_sim::calllog::{CallRecord, is_mutating};

/// How long each in-process invocation may take.
const REMAINING: std::time::Duration = std::time::Duration::from_secs(60);

/// A running estate with a policy, ready for the functions.
pub struct Harness {
    pub local: LocalEstate,
    /// Dependencies signed as an administrator, for a test's own reads and set-up (the ledger, a person's
    /// calls).
    pub deps: Deps,
    /// Each function's dependencies, signed as its own role: what the deliveries below use.
    pub crew: autopilot_functions::Crew,
}

impl Harness {
    /// Starts `estate` (YAML) with `seed` and stores `policy` (YAML) as the current policy.
    pub async fn start(estate: &str, policy: &str, seed: u64) -> Harness {
        let estate = Estate::from_yaml(estate).expect("estate parses");
        let local = LocalEstate::start(&estate, seed, 0).await.expect("local estate starts");
        let ledger = local.ledger();
        ledger.put_policy(policy, local.simulator.now()).await.expect("policy stored");
        let deps = local.deps_through(None, autopilot_sim::Identity::Admin);
        let crew = autopilot_lab::crew(&local);
        Harness { local, deps, crew }
    }

    /// Delivers one pool-scaler tick at the current virtual time.
    pub async fn tick(&self) -> pool_scaler::Report {
        let event = autopilot_sim::tick_event("euc-autopilot-pool-scaler", self.local.simulator.now());
        self.deliver(event).await.expect("tick handled")
    }

    /// Delivers any event to the pool-scaler.
    pub async fn deliver(&self, event: serde_json::Value) -> Result<pool_scaler::Report, AutopilotError> {
        Box::pin(pool_scaler::handle(self.crew.of(Function::PoolScaler), event, REMAINING)).await
    }

    /// Delivers one builder-scheduler tick at the current virtual time.
    pub async fn builder_tick(&self) -> builder_scheduler::Report {
        let event = autopilot_sim::tick_event("euc-autopilot-builder-scheduler", self.local.simulator.now());
        self.deliver_to_builders(event).await.expect("tick handled")
    }

    /// Delivers any event to the builder-scheduler.
    pub async fn deliver_to_builders(
        &self,
        event: serde_json::Value,
    ) -> Result<builder_scheduler::Report, AutopilotError> {
        Box::pin(builder_scheduler::handle(self.crew.of(Function::BuilderScheduler), event, REMAINING)).await
    }

    /// Delivers one export-chaser tick at the current virtual time.
    pub async fn export_tick(&self) -> export_chaser::Report {
        let event = autopilot_sim::tick_event("euc-autopilot-export-chaser", self.local.simulator.now());
        self.deliver_to_exports(event).await.expect("tick handled")
    }

    /// Delivers any event to the export-chaser.
    pub async fn deliver_to_exports(&self, event: serde_json::Value) -> Result<export_chaser::Report, AutopilotError> {
        Box::pin(export_chaser::handle(self.crew.of(Function::ExportChaser), event, REMAINING)).await
    }

    /// Delivers one softwareset-roller tick at the current virtual time.
    pub async fn roller_tick(&self) -> softwareset_roller::Report {
        let event = autopilot_sim::tick_event("euc-autopilot-softwareset-roller", self.local.simulator.now());
        self.deliver_to_roller(event).await.expect("tick handled")
    }

    /// Delivers any event to the softwareset-roller.
    pub async fn deliver_to_roller(
        &self,
        event: serde_json::Value,
    ) -> Result<softwareset_roller::Report, AutopilotError> {
        Box::pin(softwareset_roller::handle(self.crew.of(Function::SoftwareSetRoller), event, REMAINING)).await
    }

    /// Delivers one remediator tick at the current virtual time.
    pub async fn remediator_tick(&self) -> remediator::Report {
        let event = autopilot_sim::tick_event("euc-autopilot-remediator", self.local.simulator.now());
        self.deliver_to_remediator(event).await.expect("tick handled")
    }

    /// Delivers any event to the remediator.
    pub async fn deliver_to_remediator(&self, event: serde_json::Value) -> Result<remediator::Report, AutopilotError> {
        Box::pin(remediator::handle(self.crew.of(Function::Remediator), event, REMAINING)).await
    }

    /// Ticks the pool-scaler every `every` minutes for `minutes` minutes of virtual time.
    pub async fn run(&self, minutes: i64, every: i64) {
        let mut elapsed = 0;
        while elapsed < minutes {
            self.tick().await;
            self.local.simulator.advance(chrono::Duration::minutes(every));
            elapsed += every;
        }
    }

    /// Ticks the builder-scheduler every `every` minutes until the virtual clock reaches `until`, returning
    /// every report.
    pub async fn run_builders_until(
        &self,
        until: chrono::DateTime<chrono::Utc>,
        every: i64,
    ) -> Vec<builder_scheduler::Report> {
        let mut reports = Vec::new();
        while self.local.simulator.now() < until {
            reports.push(self.builder_tick().await);
            self.local.simulator.advance(chrono::Duration::minutes(every));
        }
        reports
    }

    /// Makes the simulated `operation` fail at `rate` (0.0 to 1.0) from now on: an outage that starts and ends
    /// mid-test.
    pub fn fail(&self, operation: &str, rate: f64) {
        self.local.simulator.with_world_mut(|w| {
            w.faults.error_rate.insert(operation.into(), rate);
        });
    }

    /// Mutating calls in the simulator's call log (successful or not).
    pub fn mutations(&self) -> Vec<CallRecord> {
        self.local.simulator.calls().into_iter().filter(CallRecord::is_estate_mutation).collect()
    }

    /// Details of the outcome events published to the simulated EventBridge with `detail_type`.
    pub fn outcome_events(&self, detail_type: &str) -> Vec<serde_json::Value> {
        self.local.simulator.with_world(|w| {
            w.events.iter().filter(|e| e.detail_type == detail_type).map(|e| e.detail.clone()).collect()
        })
    }
}
