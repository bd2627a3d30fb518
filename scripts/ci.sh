#!/usr/bin/env bash
# The one check command: formatting, lints and every test. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n== %s\n' "$*"; }

# Disk. A check from a fresh clone leaves about 4 GB under target/ (the figure is printed at the end); a disk that
# fills mid-build shows only as a linker's "Bus error", so say how much room there is before anything is built.
# Incremental caches are for edit-compile loops: a check builds each crate once, and they would add ~2 GB here.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
disk_free_mb() { df -Pm . | awk 'NR == 2 { print $4 }'; }
echo "ci: $(disk_free_mb) MB free on the disk of $(pwd)"
if [ "$(disk_free_mb)" -lt 6000 ]; then
  echo "ci: warning: less than 6 GB free; the build may fail for want of disk (target/ needs about 4 GB)" >&2
fi

step "Python tools in .venv (boto3 and the AWS CLI for the simulator tests, cfn-lint and the serverless rules for the template)"
# The linters are pinned: a new release with new rules must not break CI without a change here.
lint_tools=(cfn-lint==1.58.0 cfn-lint-serverless==0.3.6)
tools_ready() {
  .venv/bin/python - "${lint_tools[@]}" <<'PY' >/dev/null 2>&1
import importlib.metadata, sys
import awscli, boto3, cfnlint, cfn_lint_serverless  # noqa: F401 (each must import)
for pin in sys.argv[1:]:
    name, version = pin.split("==")
    assert importlib.metadata.version(name) == version, pin
PY
}
if ! tools_ready; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check boto3 awscli "${lint_tools[@]}"
fi
.venv/bin/python -c "import boto3; print('boto3', boto3.__version__)"
.venv/bin/aws --version

step "Node tools in scripts/iam (the Service Authorization Reference as data, an independent IAM evaluator)"
# Pinned by scripts/iam/package-lock.json; used by the IAM test (tests/tests/iam.rs) and the data check below.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null
fi
node --version
[ -d scripts/iam/node_modules/@cloud-copilot/iam-simulate ] || npm ci --prefix scripts/iam --no-audit --no-fund --silent
node scripts/iam/sar.mjs --check sim/src/iam/sar.json

step "cfn-lint template.yaml and spoke.yaml (with the serverless rules)"
.venv/bin/cfn-lint --version
# Informational checks too (I3011: stateful resources say what happens to them on delete and replace). The hub
# (template.yaml) and the spoke every target account gets (spoke.yaml, docs/multi-account.md).
.venv/bin/cfn-lint --include-checks I --append-rules cfn_lint_serverless.rules -t template.yaml spoke.yaml

step "qemu-aarch64 (runs the packaged arm64 bootstraps in the runtime test on a non-arm64 machine)"
# Debian's qemu-user and the arm64 C library; without them the runtime test says so and runs native binaries.
if [ "$(uname -m)" != aarch64 ] && ! { command -v qemu-aarch64 >/dev/null && [ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]; }; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if command -v apt-get >/dev/null; then
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq qemu-user libc6-arm64-cross >/dev/null \
      || echo "ci: qemu-user could not be installed; the runtime test will run native binaries" >&2
  fi
fi
command -v qemu-aarch64 >/dev/null && qemu-aarch64 --version | head -1 || true

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "the lean operator tool: no simulator, lab, axum or proptest in its dependency tree"
bash scripts/lean-tree.sh
step "cargo deny: licences, bans, sources (advisories skipped: no GitHub from CI)"
bash scripts/deny.sh
step "package the Lambda functions (arm64 zips, at most 8 MB each)"
bash scripts/package.sh
step "every test (the runtime test runs the zips just packaged)"
# cargo-nextest (on the machine's Rust toolchain) runs tests of every test binary side by side, the slowest first
# (.config/nextest.toml), where `cargo test` runs one binary at a time and a binary's last long test alone: measured
# here, 13m51s against 19m40s for the same tests. Without nextest, `cargo test` runs the same tests.
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-targets --locked --no-fail-fast
else
  echo "ci: cargo-nextest is not installed; cargo test runs the same tests, one binary at a time (each in one process)"
  cargo test --workspace --all-targets --locked --no-fail-fast
fi

printf '\nci: target/ holds %s, %s MB left free\n' "$(du -sh target | cut -f1)" "$(disk_free_mb)"
printf '\nci: all checks passed in %ss\n' "$(( $(date +%s) - start ))"
