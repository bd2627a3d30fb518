#!/usr/bin/env bash
# Builds the five Lambda functions as SAM deploys them (arm64, release profile, bootstrap.zip each) and fails when a
# zip exceeds 8 MB. ci.sh runs it before the tests (the runtime test runs the zips; it calls this script too, a no-op when they are fresh); it also runs alone: `bash scripts/package.sh`.
#
# Needs cargo-lambda and zig (its cross linker), both installed from PyPI into .venv, and the Rust target
# aarch64-unknown-linux-gnu. When that target cannot be installed, it says SKIPPED loudly and builds nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
functions=(pool-scaler builder-scheduler export-chaser softwareset-roller remediator)
target=aarch64-unknown-linux-gnu
limit=$((8 * 1024 * 1024))
start=$(date +%s)

skipped() {
  printf '\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' >&2
  printf 'SKIPPED: packaging (no Lambda zips built, sizes NOT checked): %s\n' "$*" >&2
  printf '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' >&2
  exit 0
}

if ! [ -x .venv/bin/cargo-lambda ] || ! .venv/bin/python -c "import ziglang" >/dev/null 2>&1; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check cargo-lambda ziglang
fi
# cargo-lambda finds zig through the ziglang package of the Python on its PATH
export PATH="$PWD/.venv/bin:$PATH"
cargo lambda --version

command -v rustup >/dev/null 2>&1 || skipped "rustup is not installed, so the Rust target $target cannot be added"
if ! rustup target add "$target"; then
  skipped "'rustup target add $target' failed (is static.rust-lang.org reachable from this machine?)"
fi

packages=()
for function in "${functions[@]}"; do packages+=(-p "$function"); done
cargo lambda build --release --arm64 --output-format zip --locked "${packages[@]}"

lambda_dir="${CARGO_TARGET_DIR:-target}/lambda"
printf '\n%-20s %10s\n' function "zip (MB)"
too_big=0
for function in "${functions[@]}"; do
  zip="$lambda_dir/$function/bootstrap.zip"
  if ! [ -f "$zip" ]; then
    echo "package: $zip is missing" >&2
    exit 1
  fi
  size=$(stat -c %s "$zip")
  flag=""
  if [ "$size" -gt "$limit" ]; then
    flag="  > 8 MB"
    too_big=1
  fi
  printf '%-20s %10s%s\n' "$function" "$(awk -v b="$size" 'BEGIN { printf "%.2f", b / 1048576 }')" "$flag"
done
if [ "$too_big" -ne 0 ]; then
  echo "package: a function's zip is larger than 8 MB (8*1024*1024 bytes)" >&2
  exit 1
fi
printf 'package: %s zips in %s, each at most 8 MB, built in %ss\n' "${#functions[@]}" "$lambda_dir" \
  "$(($(date +%s) - start))"
