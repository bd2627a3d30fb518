#!/usr/bin/env bash
# Performance figures (docs/performance.md): builds the release binaries (the `autopilot` tool and the five
# functions, which the cold-start and peak-memory figures run as Lambda runs them) and runs `autopilot bench`,
# which prints the table and writes bench/results.json. Arguments go to `autopilot bench` (e.g. --sizes 100,1000).
# The arm64 zip sizes are read from target/lambda/ when `scripts/package.sh` has built them. Slow (release
# builds, ~10 minutes of benchmarks); not part of the check command, whose tests/tests/bench.rs runs a small
# version. Run it on an otherwise idle machine: cold start and throughput are wall-clock figures.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p autopilot-cli -p pool-scaler -p builder-scheduler -p export-chaser \
  -p softwareset-roller -p remediator --bins
# the bare lambda_runtime function whose cold start is the floor of the functions', and the same with the SDK
# configuration, clients and logging (the step between the floor and a function)
cargo build --release --locked -p autopilot-shared --example bare_runtime --example lambda_probe
exec target/release/autopilot bench "$@"
