//! The five functions in one place: their names, the EventBridge rules that reach each, and their handlers
//! invoked in process with the same dependencies and events as in Lambda — for `autopilot plan`, the lab's
//! simulations and the tests.

pub use {builder_scheduler, export_chaser, pool_scaler, remediator, softwareset_roller};

use autopilot_shared::error::AutopilotError;
use autopilot_shared::runtime::Deps;
use serde_json::Value;

/// Every function's dependencies (each signed as its own role): what the simulations deliver events with.
#[derive(Debug, Clone)]
pub struct Crew {
    deps: Vec<Deps>,
}

impl Crew {
    /// Dependencies for each of [`Function::ALL`], built by `build`.
    pub fn new(build: impl Fn(Function) -> Deps) -> Self {
        Self { deps: Function::ALL.iter().map(|f| build(*f)).collect() }
    }

    /// The dependencies of `function`.
    pub fn of(&self, function: Function) -> &Deps {
        let index = Function::ALL.iter().position(|f| *f == function).unwrap_or_default();
        &self.deps[index]
    }

    /// Handles `event` as `function`'s Lambda would ([`Function::invoke`] with its own dependencies).
    pub async fn invoke(
        &self,
        function: Function,
        event: Value,
        remaining: std::time::Duration,
    ) -> Result<Value, AutopilotError> {
        function.invoke(self.of(function), event, remaining).await
    }
}

/// One of the five functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    PoolScaler,
    BuilderScheduler,
    ExportChaser,
    SoftwareSetRoller,
    Remediator,
}

impl Function {
    /// Every function, in the order the tool runs and prints them.
    pub const ALL: [Function; 5] = [
        Function::PoolScaler,
        Function::BuilderScheduler,
        Function::ExportChaser,
        Function::SoftwareSetRoller,
        Function::Remediator,
    ];

    /// Its name (service name in logs, metrics and ledger keys).
    pub fn name(self) -> &'static str {
        match self {
            Function::PoolScaler => pool_scaler::FUNCTION,
            Function::BuilderScheduler => builder_scheduler::FUNCTION,
            Function::ExportChaser => export_chaser::FUNCTION,
            Function::SoftwareSetRoller => softwareset_roller::FUNCTION,
            Function::Remediator => remediator::FUNCTION,
        }
    }

    /// The function of that name (`pool-scaler`, …).
    pub fn named(name: &str) -> Option<Function> {
        Function::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Whether its EventBridge rules (its `routing.rs`, mirrored in `template.yaml`) deliver `event` to it.
    pub fn routes(self, event: &Value) -> bool {
        match self {
            Function::PoolScaler => pool_scaler::routing::routes(event),
            Function::BuilderScheduler => builder_scheduler::routing::routes(event),
            Function::ExportChaser => export_chaser::routing::routes(event),
            Function::SoftwareSetRoller => softwareset_roller::routing::routes(event),
            Function::Remediator => remediator::routing::routes(event),
        }
    }

    /// Handles one event as its Lambda would, with `remaining` time; its report as JSON.
    pub async fn invoke(
        self,
        deps: &Deps,
        event: Value,
        remaining: std::time::Duration,
    ) -> Result<Value, AutopilotError> {
        /// The report as the Lambda runtime writes it, read back as a strict consumer would (no key twice).
        fn json<R: serde::Serialize>(report: R) -> Result<Value, AutopilotError> {
            let text = serde_json::to_string(&report).map_err(AutopilotError::non_retryable)?;
            autopilot_shared::events::strict::parse_unique_keys(&text)
                .map_err(|e| AutopilotError::non_retryable(format!("the answer is not well-formed JSON ({e}): {text}")))
        }
        // Boxed: handler futures are large.
        match self {
            Function::PoolScaler => json(Box::pin(pool_scaler::handle(deps, event, remaining)).await?),
            Function::BuilderScheduler => json(Box::pin(builder_scheduler::handle(deps, event, remaining)).await?),
            Function::ExportChaser => json(Box::pin(export_chaser::handle(deps, event, remaining)).await?),
            Function::SoftwareSetRoller => json(Box::pin(softwareset_roller::handle(deps, event, remaining)).await?),
            Function::Remediator => json(Box::pin(remediator::handle(deps, event, remaining)).await?),
        }
    }
}
