#!/usr/bin/env bash
# Runs every fuzz target in turn for SECONDS_PER_TARGET (default 600), one libFuzzer job each at
# the lowest CPU priority, then minimises its corpus. Logs go to $LOG_DIR (default /tmp).
# Usage: fuzz/run-all.sh [target...]
set -u
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1 # cargo-fuzz needs nightly-only flags (-Zsanitizer); see README.md
SECONDS_PER_TARGET="${SECONDS_PER_TARGET:-600}"
LOG_DIR="${LOG_DIR:-/tmp}"
targets=("$@")
[ ${#targets[@]} -eq 0 ] && mapfile -t targets < <(cargo fuzz list)
for t in "${targets[@]}"; do
    echo "== $t: ${SECONDS_PER_TARGET}s"
    nice -n 19 cargo fuzz run "$t" -- -max_total_time="$SECONDS_PER_TARGET" \
        -print_final_stats=1 >"$LOG_DIR/fuzz-$t.log" 2>&1
    echo "   exit $? ; $(grep -E '^#[0-9]+.*DONE|^stat::number_of_executed_units|^stat::new_units_added' "$LOG_DIR/fuzz-$t.log" | tr '\n' ' ')"
    nice -n 19 cargo fuzz cmin "$t" >"$LOG_DIR/fuzz-$t-cmin.log" 2>&1
    echo "   cmin: $(ls "corpus/$t" | wc -l) files, $(du -sh "corpus/$t" | cut -f1)"
done
