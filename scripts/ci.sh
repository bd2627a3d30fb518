#!/usr/bin/env bash
# The one check command: formatting, lints and every test. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n== %s\n' "$*"; }

step "Python tools in .venv (boto3 for the simulator tests, cfn-lint for the template)"
if ! .venv/bin/python -c "import boto3, cfnlint" >/dev/null 2>&1; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check boto3 cfn-lint
fi
.venv/bin/python -c "import boto3; print('boto3', boto3.__version__)"

step "cfn-lint template.yaml"
.venv/bin/cfn-lint template.yaml

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "cargo test"
cargo test --workspace --all-targets --locked

printf '\nci: all checks passed in %ss\n' "$(( $(date +%s) - start ))"
