#!/usr/bin/env bash
# A short run of every fuzz target on its committed corpus (new inputs go to a scratch
# directory, so the committed corpus is not changed). A crash fails CI.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${FUZZ_SECONDS:-30}
# An assignment, so that `set -e` stops the script when cargo-fuzz is missing (a failing
# command substitution inside `for` would silently fuzz nothing).
targets=$(cargo +nightly fuzz list)
[ -n "$targets" ] || { echo "no fuzz targets listed"; exit 1; }
for target in $targets; do
    scratch=$(mktemp -d)
    log="$scratch.log"
    echo "fuzz $target: ${seconds}s"
    status=0
    cargo +nightly fuzz run "$target" "$scratch" "corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E "^(stat::number_of_executed_units|stat::new_units_added|Done)" "$log" || true
    if [ "$status" -ne 0 ]; then
        grep -E "panicked|SUMMARY|Test unit written" -A3 "$log" || tail -40 "$log"
        echo "fuzz $target: FAILED (artifacts in fuzz/artifacts/$target)"
        rm -rf "$scratch" "$log"
        exit 1
    fi
    rm -rf "$scratch" "$log"
done
