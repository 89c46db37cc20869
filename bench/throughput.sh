#!/usr/bin/env bash
# Throughput and latency of POST /v1/embed and /v1/verify with a 250x250 photo
# at 1, 2, 4 and 16 concurrent clients, visage with 1 and 2 inference workers,
# next to the Python peer (FastAPI + uvicorn + OpenCV on the same models,
# bench/fastapi_peer.py) with 1 and 2 worker processes, all in the same run.
#
#   bash bench/throughput.sh          # DURATION=10s
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
DURATION=${DURATION:-10s}
ensure_wrk
make -s models test-data
cargo build --release -q
VENV=target/bench-venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r bench/requirements.txt
"$VENV/bin/python" bench/make_photos.py target/bench
PHOTO=target/bench/obama_250.jpg
dir=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$dir"' EXIT
wrk_header server
for workers in 1 2; do
  port=$(free_port)
  target/release/visage serve --addr "127.0.0.1:$port" --db "$dir/v$workers.db" --workers "$workers" --queue 64 \
    >"$dir/visage$workers.log" 2>&1 &
  pids+=($!)
  wait_up "http://127.0.0.1:$port/readyz"
  person=$(curl -sf -F image=@tests/data/obama.jpg -F name=Obama "http://127.0.0.1:$port/v1/enroll" | jq -r .person_id)
  for c in 1 2 4 16; do wrk_row "visage $workers worker(s) embed" "http://127.0.0.1:$port/v1/embed" "$c" "$PHOTO" "$DURATION"; done
  for c in 1 2 4 16; do wrk_row "visage $workers worker(s) verify" "http://127.0.0.1:$port/v1/verify?person_id=$person" "$c" "$PHOTO" "$DURATION"; done
  kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
done
for workers in 1 2; do
  port=$(free_port)
  "$VENV/bin/python" -m uvicorn --app-dir bench fastapi_peer:app --port "$port" --workers "$workers" --log-level warning \
    >"$dir/peer$workers.log" 2>&1 &
  pids+=($!)
  wait_up "http://127.0.0.1:$port/docs"
  for c in 1 2 4 16; do wrk_row "fastapi+opencv $workers proc embed" "http://127.0.0.1:$port/v1/embed" "$c" "$PHOTO" "$DURATION"; done
  kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
done
