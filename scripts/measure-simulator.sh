#!/usr/bin/env bash
# Simulator figures (release build): request throughput through the real SDK, and `autopilot serve` start-up
# time (process spawn to the `ready` line, median of 10). Slow (a release build); not part of the check command.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p autopilot-cli --bin autopilot >/dev/null
cargo build --release --locked -p autopilot-sim --example sim_throughput >/dev/null
target/release/examples/sim_throughput
python3 - <<'PY'
import statistics, subprocess, time
samples = []
for _ in range(10):
    start = time.perf_counter()
    p = subprocess.Popen(["target/release/autopilot", "serve", "--estate", "sim/estates/demo.yaml", "--port", "0"], stdout=subprocess.PIPE, text=True)
    for line in p.stdout:
        if line.strip().startswith("# ready"):
            break
    samples.append((time.perf_counter() - start) * 1000)
    p.kill(); p.wait()
print(f"autopilot serve start-up (spawn to ready, demo estate): median {statistics.median(samples):.1f} ms, min {min(samples):.1f} ms, 10 runs")
PY
