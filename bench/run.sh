#!/usr/bin/env bash
# make bench: every benchmark, figures to stdout (copy them into bench/RESULTS.md with the
# command and the machine). BENCH_EVENTS overrides the corpus size (default 10 M).
set -euo pipefail
build=${1:-build}
here=$(dirname "$0")
events=${BENCH_EVENTS:-10000000}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
python3 "$here/ingest_bench.py" "$build" "$events"
python3 "$here/query_bench.py" "$build" "$events"
for b in "$build"/*_bench; do
    [ -x "$b" ] || continue
    echo "== $(basename "$b")"
    "$b"
done
