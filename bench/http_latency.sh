#!/usr/bin/env bash
# Latency of POST /v1/verify and /v1/identify against the release build:
# p50/p99 with 1 and 8 concurrent clients (wrk, raw image/jpeg bodies).
#
#   bash bench/http_latency.sh        # DURATION=10s PHOTO=tests/data/obama2.jpg
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
PHOTO=${PHOTO:-tests/data/obama2.jpg}
WORKERS=${WORKERS:-2}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
make -s models test-data
cargo build --release -q
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
target/release/visage serve --addr "127.0.0.1:$port" --db "$dir/v.db" --workers "$WORKERS" --queue 64 >"$dir/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
until curl -sf "$base/readyz" >/dev/null; do sleep 0.1; done
person=$(curl -sf -F image=@tests/data/obama.jpg -F name=Obama "$base/v1/enroll" | jq -r .person_id)
curl -sf -F image=@tests/data/biden.jpg -F name=Biden "$base/v1/enroll" >/dev/null
echo "photo: $PHOTO ($(python3 -c "import sys; print(open(sys.argv[1],'rb').read().__len__())" "$PHOTO") bytes), $WORKERS inference workers, gallery of 2"
printf '%-10s %8s %10s %10s %10s %10s\n' endpoint clients 'req/s' p50 p99 non-2xx
for path in "/v1/verify?person_id=$person" /v1/identify; do
  for c in 1 8; do
    out=$(IMG="$PHOTO" wrk -t "$(( c < 2 ? 1 : 2 ))" -c "$c" -d "$DURATION" --latency -s bench/post_image.lua "$base$path")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1=="50%" {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    bad=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
    printf '%-10s %8s %10s %10s %10s %10s\n' "${path%%\?*}" "$c" "$rps" "$p50" "$p99" "${bad:-0}"
  done
done
