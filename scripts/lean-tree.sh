#!/usr/bin/env bash
# The lean operator tool (`cargo install --path cli --no-default-features`: validate, config, plan, audit, targets) must
# build without the simulated estate, the lab, axum and proptest. Prints its normal dependency tree's crates that
# break the rule and exits 1 when there is one.
set -euo pipefail
cd "$(dirname "$0")/.."
forbidden='^(autopilot-sim|autopilot-lab|axum|axum-core|proptest) '
tree=$(cargo tree -p autopilot-cli --no-default-features -e normal --prefix none --locked)
found=$(printf '%s\n' "$tree" | grep -E "$forbidden" | sort -u || true)
if [ -n "$found" ]; then
  printf 'lean-tree: the operator tool without default features depends on:\n%s\n' "$found" >&2
  exit 1
fi
printf 'lean-tree: %s crates, none of autopilot-sim, autopilot-lab, axum, proptest\n' \
  "$(printf '%s\n' "$tree" | sed 's/ (.*//' | sort -u | wc -l)"
