//! The end-to-end tests, one module per file beside this one, built as one test binary (`e2e`).
//!
//! One binary, not one per file: every file links the same SDK clients, simulator and embedded DynamoDB, so
//! 21 binaries meant 21 links of ~120 MB each and as many copies of the same generic code, 2.5 GB of a fresh CI
//! build's disk (`du -sh target/debug/deps`). cargo-nextest still runs every test in a process of its own, so a
//! test that sets a process-wide subscriber or recorder (`sensitive_data`, `dashboard`) sees only itself.
//! One file's tests: `cargo nextest run -p autopilot-tests -E 'test(/^reliability::/)'`, or
//! `cargo test -p autopilot-tests --test e2e reliability::`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod bad_input;
mod bench;
mod bench_process;
mod builder_scheduler;
mod dashboard;
mod export_chaser;
mod faults;
mod iam;
mod outputs;
mod pipelining;
mod pool_scaler;
mod reliability;
mod remediator;
mod runtime_api;
mod sensitive_data;
mod shards;
mod simulate;
mod softwareset_roller;
mod tag_cache;
mod template;
mod transcript;
mod workspace;
