#!/usr/bin/env bash
# make run: generate demo data, ingest it into ./quarry-data, show what `quarry check` sees, then
# serve it with a live trickle of generated events (`quarry serve --demo`) until Ctrl-C.
# QR_DEMO_LISTEN (default 127.0.0.1:7070) and QR_DEMO_RATE (events/s, default 200) adjust it.
set -euo pipefail
bin=${1:-build/quarry}
data=${2:-./quarry-data}
events=${QR_DEMO_EVENTS:-200000}

if [ -f "$data/LOCK" ] && [ -d "$data/tenants" ] && "$bin" check --data "$data" --json 2>/dev/null | grep -q '"ok": true'; then
    echo "== $data already holds data; adding a fresh batch of generated events"
fi
mkdir -p "$data"
seed=$(( $(date +%s) % 100000 ))
start=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)
echo "== generating $events events (seed $seed, starting $start) and ingesting them into $data"
"$bin" gen --events "$events" --seed "$seed" --start "$start" --rate $(( events / 3600 + 1 )) |
    "$bin" ingest --data "$data"
echo
echo "== quarry check --data $data"
"$bin" check --data "$data"
echo
echo "== quarry serve --data $data --demo (Ctrl-C stops it cleanly)"
exec "$bin" serve --data "$data" --demo --listen "${QR_DEMO_LISTEN:-127.0.0.1:7070}" \
    --demo-rate "${QR_DEMO_RATE:-200}"
