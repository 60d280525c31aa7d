#!/usr/bin/env bash
# Timed CLI runs on generated data: generate N customers (default 1,000,000, ~9.6M rows), train
# on them (planted and default scheme), score them; prints wall time and peak RSS of each step.
# Usage: bench/train_1m.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
cargo build --release --quiet
out=bench/out
mkdir -p "$out"
rm -rf "$out"/models-*
measure() {
  /usr/bin/time -f "%e s wall, %M KiB peak RSS" "$@" 2>&1 >/dev/null | tail -1
}
echo "generate $n customers: $(measure target/release/kam generate --customers "$n" --seed 7 --out "$out/gen.csv")"
echo "  $(wc -l < "$out/gen.csv") lines, $(du -h "$out/gen.csv" | cut -f1)"
echo "train (planted scheme, no snapshot):  $(measure target/release/kam train "$out/gen.csv" --config "$out/gen.kam.toml" --models "$out/models-bare" --no-snapshot)"
echo "train (planted scheme):               $(measure target/release/kam train "$out/gen.csv" --config "$out/gen.kam.toml" --models "$out/models-planted")"
echo "train (default scheme):               $(measure target/release/kam train "$out/gen.csv" --models "$out/models-default")"
echo "score → CSV (planted-scheme model, 4 horizons): $(measure target/release/kam score "$out/gen.csv" --models "$out/models-planted" --out "$out/scores.csv")"
echo "score → CSV without intervals (--draws 0):      $(measure target/release/kam score "$out/gen.csv" --models "$out/models-planted" --draws 0 --out "$out/scores-points.csv")"
echo "score, key-account report only:               $(measure target/release/kam score "$out/gen.csv" --models "$out/models-planted" --summary)"
