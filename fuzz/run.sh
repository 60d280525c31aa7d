#!/usr/bin/env bash
# Runs kam's fuzz targets one after another, each for its share of seconds, under `nice -n 19`
# (so that builds on the same machine win), with the built binaries (no rebuild between
# targets), and appends a line per target to target/logs/summary.tsv.
#
#   fuzz/run.sh                           # the default plan: 3,500 s in all (add seconds for more)
#   fuzz/run.sh csv=60 parquet=120        # some targets, some seconds
#
# Build first: (cd fuzz && cargo fuzz build -s none -a). Crashes, timeouts and OOMs go to
# fuzz/artifacts/<target>/ and the run goes on (-fork=1 -ignore_crashes=1 ...).
set -u
cd "$(dirname "$0")"
FUZZ=$(pwd)
BIN=${KAM_FUZZ_BIN:-$FUZZ/target/x86_64-unknown-linux-gnu/release}
LOGS=${KAM_FUZZ_LOGS:-$FUZZ/target/logs}
mkdir -p "$LOGS"
plan=("$@")
if [ ${#plan[@]} -eq 0 ]; then
  plan=(csv=600 parquet=600 predict_body=600 artifact=400 config=300 forecast_body=300 train_body=300 fields=200 csv=200)
fi
for item in "${plan[@]}"; do
  t=${item%%=*}
  secs=${item#*=}
  dict=()
  case $t in
    predict_body|forecast_body|train_body) dict=(-dict="$FUZZ/dicts/api.dict") ;;
    config) dict=(-dict="$FUZZ/dicts/config.dict") ;;
  esac
  mkdir -p "corpus/$t" "artifacts/$t"
  log="$LOGS/$t.$(date +%Y%m%dT%H%M%S).log"
  start=$(date +%s)
  echo "$(date -u +%FT%TZ) start $t for ${secs}s, log $log"
  nice -n 19 "$BIN/$t" "$FUZZ/corpus/$t" \
    -artifact_prefix="$FUZZ/artifacts/$t/" \
    -max_total_time="$secs" -rss_limit_mb=4096 -timeout=10 \
    -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    "${dict[@]}" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  end=$(date +%s)
  # fork mode prints "#<execs>: cov: ... ft: ... corp: <files>/<size> ... exec/s: ..." lines.
  last=$(grep -E '^#[0-9]+: cov:' "$log" | tail -1)
  execs=$(echo "$last" | sed -E 's/^#([0-9]+):.*/\1/')
  crashes=$(grep -Ec '^(INFO: log from the inferior|CRASH|==[0-9]+== ERROR|.*deadly signal|.*panicked at)' "$log")
  files=$(find "corpus/$t" -type f | wc -l)
  bytes=$(du -sb "corpus/$t" | cut -f1)
  arts=$(find "artifacts/$t" -type f | wc -l)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "$secs" "$((end - start))" "${execs:-?}" "$files" "$bytes" "$arts" "$rc" >>"$LOGS/summary.tsv"
  echo "$(date -u +%FT%TZ) done $t: $((end - start))s wall, ${execs:-?} execs, corpus $files files $bytes bytes, artifacts $arts (exit $rc)"
done
