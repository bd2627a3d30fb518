//! Harness for end-to-end tests: a local estate, a policy stored in the ledger, and a function's dependencies
//! wired to both, with the simulator's virtual clock as the functions' clock.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test harness: a failed set-up is a failed test

use autopilot_local::LocalEstate;
use autopilot_local::estate::Estate;

pub use autopilot_local::calllog::{CallRecord, is_mutating};

/// A running estate with a policy, ready for a function.
pub struct Harness {
    pub local: LocalEstate,
    pub scaler: pool_scaler::Deps,
}

impl Harness {
    /// Starts `estate` (YAML) with `seed` and stores `policy` (YAML) as the current policy.
    pub async fn start(estate: &str, policy: &str, seed: u64) -> Harness {
        let estate = Estate::from_yaml(estate).expect("estate parses");
        let local = LocalEstate::start(&estate, seed, 0).await.expect("local estate starts");
        let ledger = local.ledger();
        ledger.put_policy(policy, local.simulator.now()).await.expect("policy stored");
        let scaler = local.pool_scaler();
        Harness { local, scaler }
    }

    /// Delivers one pool-scaler tick at the current virtual time.
    pub async fn tick(&self) -> pool_scaler::Report {
        let event = autopilot_local::tick_event("euc-autopilot-pool-scaler", self.local.simulator.now());
        self.deliver(event).await.expect("tick handled")
    }

    /// Delivers any event to the pool-scaler.
    pub async fn deliver(
        &self,
        event: serde_json::Value,
    ) -> Result<pool_scaler::Report, autopilot_shared::error::AutopilotError> {
        Box::pin(pool_scaler::handle(&self.scaler, event, std::time::Duration::from_secs(60))).await
    }

    /// Ticks every `every` minutes for `minutes` minutes of virtual time.
    pub async fn run(&self, minutes: i64, every: i64) {
        let mut elapsed = 0;
        while elapsed < minutes {
            self.tick().await;
            self.local.simulator.advance(chrono::Duration::minutes(every));
            elapsed += every;
        }
    }

    /// Mutating calls in the simulator's call log (successful or not).
    pub fn mutations(&self) -> Vec<CallRecord> {
        self.local
            .simulator
            .calls()
            .into_iter()
            .filter(|c| is_mutating(&c.operation) && c.service != "eventbridge")
            .collect()
    }
}
