#!/usr/bin/env bash
# Does a bad webhook receiver slow identify? POST /v1/identify latency (wrk,
# p50/p99) with no webhook (the baseline, measured in the same run), then
# with a webhook for every event whose receiver hangs (each attempt cut at
# the 10 s timeout), answers 500, or redirects (never followed), and with
# one that verifies and answers 204 (every identify event delivered).
# Ratios are against the baseline. The receiver is tests/webhooks/receiver.py
# (standardwebhooks; `make test-venv`).
#
#   bash bench/webhooks_latency.sh      # DURATION=20s CLIENTS=4 WORKERS=2
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
DURATION=${DURATION:-20s}
CLIENTS=${CLIENTS:-4}
WORKERS=${WORKERS:-2}
PHOTO=tests/data/obama2.jpg
ensure_wrk
make -s test-venv
start_visage --workers "$WORKERS" --queue 64 --webhooks-allow-private
secret=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
rport=$(free_port)
target/test-venv/bin/python tests/webhooks/receiver.py "$secret" "$rport" >"$dir/received" &
receiver=$!
trap 'kill $pid $receiver 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
wait_up "http://127.0.0.1:$rport/"
curl -sf -F image=@tests/data/obama.jpg -F name=Obama "$base/v1/enroll" >/dev/null
curl -sf -F image=@tests/data/biden.jpg -F name=Biden "$base/v1/enroll" >/dev/null
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores;" \
  "flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|avx512f|avx512_vnni|avx512vnni)$' | tr '\n' ' ')" \
  "forced: ${TRACT_CPU_ISA:+TRACT_CPU_ISA=$TRACT_CPU_ISA }${VISAGE_CPU:+VISAGE_CPU=$VISAGE_CPU}none"
echo "identify of $PHOTO, $CLIENTS clients for $DURATION each, $WORKERS inference workers, release build"
printf '%-30s %10s %10s %10s %12s %12s %10s\n' receiver 'req/s' p50 p99 'p50 ratio' 'p99 ratio' attempts
ms() { awk '{ v=$1; if (v ~ /ms$/) { sub(/ms$/, "", v); print v } else if (v ~ /us$/) { sub(/us$/, "", v); print v/1000 } else { sub(/s$/, "", v); print v*1000 } }' <<<"$1"; }
base_p50="" base_p99=""
for target in none /hang /fail /redirect /ok; do
  hook=""
  if [ "$target" != none ]; then
    hook=$(curl -sf -H 'content-type: application/json' "$base/v1/webhooks" \
      -d "{\"url\": \"http://127.0.0.1:$rport$target\", \"events\": [\"*\"], \"secret\": \"$secret\"}" | jq -r .id)
  fi
  out=$(IMG="$PHOTO" wrk -t 2 -c "$CLIENTS" -d "$DURATION" --latency -s bench/post_image.lua "$base/v1/identify")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(ms "$(awk '$1=="50%" {print $2}' <<<"$out")")
  p99=$(ms "$(awk '$1=="99%" {print $2}' <<<"$out")")
  [ -n "$base_p50" ] || { base_p50=$p50; base_p99=$p99; }
  attempts=0
  if [ -n "$hook" ]; then
    attempts=$(curl -sf "$base/v1/webhooks/$hook/deliveries?limit=1000" | jq '.deliveries | length')
    curl -sf -X DELETE "$base/v1/webhooks/$hook" >/dev/null
  fi
  printf '%-30s %10s %9.1fms %9.1fms %12.3f %12.3f %10s\n' "$target" "$rps" "$p50" "$p99" \
    "$(echo "$p50 / $base_p50" | bc -l)" "$(echo "$p99 / $base_p99" | bc -l)" "$attempts"
done
