//! EUC Autopilot common library, shared by every function, the `autopilot` tool and the tests.
//!
//! - [`policy`]: the operator's policy document, schedules and tag overrides (pure).
//! - [`ledger`]: the single DynamoDB table: idempotency, leases, resource state, audit, config versions.
//! - [`clients`]: the one place AWS SDK clients are built (retry, timeouts, endpoints).
//! - [`events`]: typed EventBridge inputs, parsed strictly.
//! - [`telemetry`]: JSON logs with Powertools keys, EMF metrics, correlation ids.
//! - [`clock`]: system and virtual clocks.
//! - [`cpu`]: CPU time by step of a tick (decide, act), counted only where `autopilot bench` turns it on.
//! - [`error`]: error classes and their mapping to Lambda diagnostics.
//! - [`effect`]: one side effect exactly once (idempotency, dry-run, audit) and outcome events.
//! - [`pacing`]: each AWS operation sent at the rate its service allows (learnt from throttling).
//! - [`lookups`]: per-resource look-ups several functions need (tags).
//! - [`notes`]: holds and dry-run would-acts recorded when they change, not every tick.
//! - [`runtime`]: configuration, dependencies, policy loading, the function lease and the Lambda entry point.
//! - [`invocation`]: the invocation written once (route, policy, lease, work, report); a function supplies its steps.
//! - [`reconcile`]: the pipelined reconcile of a listed population (list, memories, tags streaming into decide and act).
//! - [`report`]: what an invocation answers: typed statuses and results, a bounded item list.
//! - [`support`]: AWS's announced end-of-support dates and the warnings operators see.

pub mod clients;
pub mod clock;
pub mod cpu;
pub mod effect;
pub mod error;
pub mod events;
pub mod invocation;
pub mod ledger;
pub mod lookups;
pub mod notes;
pub mod pacing;
pub mod policy;
pub mod reconcile;
pub mod report;
pub mod resource;
pub mod runtime;
pub mod shard;
pub mod support;
pub mod telemetry;
