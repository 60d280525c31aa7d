#!/usr/bin/env bash
# Issue 15's two paths on N generated customers (default 1,000,000, ~9.6M rows): kam train on the
# transactions file, and DuckDB running `kam aggregate-sql`'s query then kam train --aggregates
# on its Parquet output. Checks that both give the same model and snapshot bytes, then times each
# step with farm-bench (medians of 3, min–max, peak memory).
# Needs DuckDB for Python in .venv (pip install -r tests/engines/requirements.txt).
# Usage: bench/aggregates_1m.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
cargo build --release --quiet
kam=$PWD/target/release/kam
py=$PWD/.venv/bin/python3
out=bench/out/aggregates
mkdir -p "$out"
rm -rf "$out"/models-*
[ -f "$out/gen-$n.csv" ] || "$kam" generate --customers "$n" --seed 7 --out "$out/gen-$n.csv" >/dev/null
echo "$(wc -l < "$out/gen-$n.csv") lines, $(du -h "$out/gen-$n.csv" | cut -f1)"
"$kam" aggregate-sql --dialect duckdb --source tx --config "$out/gen-$n.kam.toml" > "$out/query.sql"
"$py" bench/duckdb_aggregate.py "$out/gen-$n.csv" "$out/query.sql" "$out/agg.parquet"
"$kam" train "$out/gen-$n.csv" --config "$out/gen-$n.kam.toml" --models "$out/models-direct" >/dev/null
"$kam" train --aggregates "$out/agg.parquet" --config "$out/gen-$n.kam.toml" --models "$out/models-agg" >/dev/null
for f in "$out"/models-direct/*; do cmp "$f" "$out/models-agg/$(basename "$f")"; done
echo "same model and snapshot bytes from both paths: $(ls "$out/models-direct" | tr '\n' ' ')"
farm-bench -n 3 --timeout 900 -- "$py" bench/duckdb_aggregate.py "$out/gen-$n.csv" "$out/query.sql" "$out/agg.parquet"
farm-bench -n 3 --timeout 900 --vs "$kam train $out/gen-$n.csv --config $out/gen-$n.kam.toml --models $out/models-direct" \
  -- "$kam" train --aggregates "$out/agg.parquet" --config "$out/gen-$n.kam.toml" --models "$out/models-agg"
