#!/usr/bin/env bash
# Before/after of one SQLite node: an older binary (BASELINE) and this
# build's, interleaved (before, after, before, after), identify, verify and
# enroll at 4 clients for 15 s each (wrk), 2 inference workers.
#
#   BASELINE=old/visage bash bench/single_node_ab.sh     # ROUNDS=2 DURATION=15s
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
: "${BASELINE:?give BASELINE=path/to/an/older/visage}"
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-15s}
ensure_wrk
make -s models test-data
cargo build --release -q
run() {  # BIN LABEL
  local d port base pid id
  d=$(mktemp -d)
  port=$(free_port)
  base="http://127.0.0.1:$port"
  "$1" serve --addr "127.0.0.1:$port" --db "$d/v.db" --workers 2 >"$d/log" 2>&1 &
  pid=$!
  wait_up "$base/readyz"
  curl -sf -F image=@tests/data/obama.jpg -F name=Obama "$base/v1/enroll" >/dev/null
  id=$(curl -sf "$base/v1/persons" | jq -r '.persons[0].id')
  wrk_row "$2 identify" "$base/v1/identify" 4 tests/data/obama2.jpg "$DURATION"
  wrk_row "$2 verify" "$base/v1/verify?person_id=$id" 4 tests/data/obama2.jpg "$DURATION"
  wrk_row "$2 enroll" "$base/v1/enroll?name=x" 4 tests/data/obama.jpg "$DURATION"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rm -rf "$d"
}
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'); $(nproc) cores; $(grep -o -w -E 'avx512f|avx2|fma' /proc/cpuinfo | sort -u | tr '\n' ' ')"
wrk_header "binary, endpoint"
for _ in $(seq 1 "$ROUNDS"); do
  run "$BASELINE" before
  run target/release/visage after
done
