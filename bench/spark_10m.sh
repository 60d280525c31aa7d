#!/usr/bin/env bash
# Issue 15 on the 10M-row file: CDNOW_master copied 144 times, copy k with customer id
# id + k·100000 (10,030,896 rows, 3,394,080 customers; as ../shared/peers/make_synthetic.py
# builds it). Spark 4 in local[2] mode runs `kam aggregate-sql`'s query and writes Parquet parts;
# kam train --aggregates reads them; the model and snapshot must equal kam train's on the file.
# Prints each step's wall time and peak memory (/usr/bin/time).
# Needs data/cdnow (scripts/fetch_cdnow.sh), PySpark in .venv (tests/engines/spark-requirements.txt)
# and a Java runtime (apt-get install openjdk-17-jre-headless).
# Usage: bench/spark_10m.sh [extra kam train flags, e.g. --period quarter]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
kam=$PWD/target/release/kam
out=$PWD/bench/out/spark10m
mkdir -p "$out"
[ -f data/cdnow/CDNOW_master.txt ] || scripts/fetch_cdnow.sh
if [ ! -f "$out/cdnow_x144.csv" ]; then
  awk 'BEGIN { print "customer_id,date,amount"; n = 0 }
       { sub(/\r$/, "") }
       $1 ~ /^[0-9]+$/ { id[n] = $1 + 0; d[n] = substr($2, 1, 4) "-" substr($2, 5, 2) "-" substr($2, 7, 2); a[n] = $4; n++ }
       END { for (k = 0; k < 144; k++) for (i = 0; i < n; i++) printf "%d,%s,%s\n", id[i] + k * 100000, d[i], a[i] }' \
    data/cdnow/CDNOW_master.txt > "$out/cdnow_x144.csv"
fi
echo "$(($(wc -l < "$out/cdnow_x144.csv") - 1)) rows, $(du -h "$out/cdnow_x144.csv" | cut -f1)"
spark_home=$(.venv/bin/python3 -c "import os, pyspark; print(os.path.dirname(pyspark.__file__))")
measure() {
  /usr/bin/time -o "$out/time.txt" -f "%e s wall, %M KiB peak RSS" "$@" >"$out/log.txt" 2>&1 || { cat "$out/log.txt" >&2; exit 1; }
  cat "$out/time.txt"
}
"$kam" aggregate-sql --dialect spark --source tx "$@" > "$out/query.sql"
{
  echo "CREATE TEMPORARY VIEW tx USING csv OPTIONS (path '$out/cdnow_x144.csv', header 'true');"
  echo "INSERT OVERWRITE DIRECTORY '$out/agg' USING parquet"
  cat "$out/query.sql"
  echo ";"
} > "$out/spark.sql"
rm -rf "$out"/models-*
# From $out, where Spark leaves its metastore_db/ and derby.log.
cd "$out"
echo "spark-sql local[2] (start-up included): $(SPARK_HOME=$spark_home measure "$spark_home/bin/spark-sql" --master 'local[2]' --conf spark.ui.enabled=false -f "$out/spark.sql")"
echo "  $(ls "$out/agg" | grep -c parquet) Parquet parts, $(du -sh "$out/agg" | cut -f1)"
echo "kam train --aggregates (with the snapshot): $(measure "$kam" train --aggregates "$out/agg" "$@" --models "$out/models-agg")"
echo "kam train on the file (with the snapshot):  $(measure "$kam" train "$out/cdnow_x144.csv" "$@" --models "$out/models-file")"
for f in "$out"/models-file/*; do cmp "$f" "$out/models-agg/$(basename "$f")"; done
echo "same model and snapshot bytes: $(ls "$out/models-file" | tr '\n' ' ')"
