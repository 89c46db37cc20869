#!/usr/bin/env bash
# Throughput and latency of POST /v1/embed and /v1/verify with a 250x250 photo
# at 1, 2, 4 and 16 concurrent clients: visage with 1 and 2 inference workers
# on each backend (tract, the default; onnxruntime, optional), next to the
# Python peer (FastAPI on gunicorn + uvicorn workers + OpenCV on the same
# models, bench/fastapi_peer.py) with 1 and 2 worker processes, all in the
# same run, then a summary of the ratios.
#
#   bash bench/throughput.sh          # DURATION=10s per row
#   EMBEDDER=sface bash bench/throughput.sh   # visage on the peer's models
#                                             # (default: visage's default embedder)
#   BASELINE=/path/to/old/visage bash bench/throughput.sh
#       # also an older visage binary (tract) in the same run, with the
#       # ratios of this build to it: a refactoring's before and after
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
DURATION=${DURATION:-10s}
ensure_wrk
make -s models onnxruntime test-data
cargo build --release -q --features onnxruntime
VENV=target/bench-venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r bench/requirements.txt
"$VENV/bin/python" bench/make_photos.py target/bench
PHOTO=target/bench/obama_250.jpg
dir=$(mktemp -d)
export ROWS="$dir/rows.tsv"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$dir"' EXIT
wrk_header server
binaries=("visage target/release/visage tract" "visage target/release/visage onnxruntime")
[ -z "${BASELINE:-}" ] || binaries+=("baseline $BASELINE tract")
for spec in "${binaries[@]}"; do
  read -r name bin backend <<<"$spec"
  for workers in 1 2; do
    port=$(free_port)
    "$bin" serve --addr "127.0.0.1:$port" --db "$dir/$name$backend$workers.db" --workers "$workers" \
      --queue 64 --backend "$backend" ${EMBEDDER:+--embedder "$EMBEDDER"} >"$dir/$name-$backend$workers.log" 2>&1 &
    pids+=($!)
    wait_up "http://127.0.0.1:$port/readyz"
    person=$(curl -sf -F image=@tests/data/obama.jpg -F name=Obama "http://127.0.0.1:$port/v1/enroll" | jq -r .person_id)
    for c in 1 2 4 16; do
      wrk_row "$name $backend ${workers}w embed" "http://127.0.0.1:$port/v1/embed" "$c" "$PHOTO" "$DURATION"
    done
    for c in 1 2 4 16; do
      wrk_row "$name $backend ${workers}w verify" "http://127.0.0.1:$port/v1/verify?person_id=$person" "$c" "$PHOTO" \
        "$DURATION"
    done
    kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
  done
done
for workers in 1 2; do
  port=$(free_port)
  "$VENV/bin/python" -m gunicorn --chdir bench -k uvicorn.workers.UvicornWorker -w "$workers" \
    -b "127.0.0.1:$port" --log-level warning fastapi_peer:app >"$dir/peer$workers.log" 2>&1 &
  pids+=($!)
  wait_up "http://127.0.0.1:$port/docs"
  for c in 1 2 4 16; do wrk_row "fastapi+opencv ${workers}w embed" "http://127.0.0.1:$port/v1/embed" "$c" "$PHOTO" "$DURATION"; done
  kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
done
echo
python3 - "$ROWS" <<'PY'
import sys
best = {}
for line in open(sys.argv[1]):
    label, _clients, rps = line.rstrip("\n").split("\t")
    best[label] = max(best.get(label, 0.0), float(rps or 0))
peer1, peer2 = best["fastapi+opencv 1w embed"], best["fastapi+opencv 2w embed"]
print(f"best req/s over 1-16 clients; peer (FastAPI + OpenCV): 1 worker {peer1:.1f}, 2 workers {peer2:.1f} ({peer2 / peer1:.2f}x)")
for backend in ("tract", "onnxruntime"):
    for ep in ("embed", "verify"):
        one, two = best[f"visage {backend} 1w {ep}"], best[f"visage {backend} 2w {ep}"]
        print(f"visage {backend:<11} {ep:<6}: 1 worker {one:6.1f}, 2 workers {two:6.1f} ({two / one:.2f}x, goal >= 1.8x);"
              f" 2 workers vs peer embed 2 workers: {two / peer2:.2f}x (goal >= 1.2x)")
if "baseline tract 1w embed" in best:
    for ep in ("embed", "verify"):
        for w in (1, 2):
            now, then = best[f"visage tract {w}w {ep}"], best[f"baseline tract {w}w {ep}"]
            print(f"this build vs baseline, tract {ep:<6} {w} worker{'s' if w > 1 else ' '}: {now:6.1f} vs {then:6.1f} req/s ({now / then:.3f}x)")
PY
