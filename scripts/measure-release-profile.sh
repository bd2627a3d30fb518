#!/usr/bin/env bash
# Builds the representative Lambda binary (shared/examples/lambda_probe.rs) under the workspace release profile
# and under cargo's default release profile, and prints binary size and init time for each.
# Slow (two full release builds of the AWS SDKs); not part of the check command.
set -euo pipefail
cd "$(dirname "$0")/.."
measure() {
  local label=$1; shift
  env "$@" cargo build --release --locked -p autopilot-shared --example lambda_probe >/dev/null
  local bin=target/release/examples/lambda_probe
  printf '%-28s size_bytes=%s ' "$label" "$(stat -c %s "$bin")"
  python3 scripts/measure-init.py "$bin" 20
}
measure "default release profile" CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_STRIP=none
measure "opt-level=3, fat LTO" CARGO_PROFILE_RELEASE_OPT_LEVEL=3
measure "workspace release profile"
