#!/usr/bin/env bash
# Latency of POST /v1/verify and /v1/identify against the release build:
# p50/p99 with 1 and 8 concurrent clients (wrk, raw image/jpeg bodies).
#
#   bash bench/http_latency.sh        # DURATION=10s PHOTO=tests/data/obama2.jpg WORKERS=2 BACKEND=tract
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
DURATION=${DURATION:-10s}
PHOTO=${PHOTO:-tests/data/obama2.jpg}
WORKERS=${WORKERS:-2}
ensure_wrk
start_visage --workers "$WORKERS" --queue 64
person=$(curl -sf -F image=@tests/data/obama.jpg -F name=Obama "$base/v1/enroll" | jq -r .person_id)
curl -sf -F image=@tests/data/biden.jpg -F name=Biden "$base/v1/enroll" >/dev/null
echo "photo: $PHOTO ($(wc -c <"$PHOTO") bytes), $WORKERS inference workers, backend ${BACKEND:-tract}, gallery of 2"
wrk_header endpoint
for c in 1 8; do wrk_row /v1/verify "$base/v1/verify?person_id=$person" "$c" "$PHOTO" "$DURATION"; done
for c in 1 8; do wrk_row /v1/identify "$base/v1/identify" "$c" "$PHOTO" "$DURATION"; done
