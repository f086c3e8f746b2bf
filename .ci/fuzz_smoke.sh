#!/usr/bin/env bash
# A short run of every fuzz target on its committed corpus (new inputs go to a scratch
# directory, so the committed corpus is not changed). A crash fails CI.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${FUZZ_SECONDS:-30}
for target in $(cargo +nightly fuzz list); do
    scratch=$(mktemp -d)
    echo "fuzz $target: ${seconds}s"
    cargo +nightly fuzz run "$target" "$scratch" "corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 2>&1 | grep -E "^(stat::number_of_executed_units|stat::new_units_added|==|SUMMARY|Done)" || true
    status=${PIPESTATUS[0]}
    rm -rf "$scratch"
    if [ "$status" -ne 0 ]; then
        echo "fuzz $target: FAILED (artifacts in fuzz/artifacts/$target)"
        exit 1
    fi
done
