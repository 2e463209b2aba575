#!/usr/bin/env bash
# make fuzz: runs every libFuzzer driver for FUZZ_SECONDS (default 60) each, starting from its
# committed corpus (copied, so new inputs do not land in the repo unless you copy them back).
set -euo pipefail
build=${1:-build-fuzz}
secs=${FUZZ_SECONDS:-60}
here=$(cd "$(dirname "$0")" && pwd)
for bin in "$build"/*_fuzz; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    work=$(mktemp -d)
    cp "$here/$name"/* "$work"/ 2>/dev/null || true
    echo "== $name ($secs s)"
    "$bin" -max_total_time="$secs" -print_final_stats=1 "$work" 2>&1 | grep -E 'Done|ERROR|crash|stat::' || true
    rm -rf "$work"
done
