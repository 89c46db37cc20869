#!/usr/bin/env bash
# Resident memory of the service: idle after start-up, then the peak (VmHWM)
# after a load of 8 concurrent clients on /v1/identify (wrk).
#
#   bash bench/memory.sh          # DURATION=10s PHOTO=tests/data/obama2.jpg BACKEND=tract
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
DURATION=${DURATION:-10s}
PHOTO=${PHOTO:-tests/data/obama2.jpg}
ensure_wrk
start_visage
curl -sf -F image=@tests/data/obama.jpg -F name=Obama "$base/v1/enroll" >/dev/null
mem() { awk -v k="$1:" '$1 == k {printf "%.1f MiB", $2 / 1024}' "/proc/$pid/status"; }
echo "backend ${BACKEND:-tract}"
echo "idle: RSS $(mem VmRSS), peak so far $(mem VmHWM)"
IMG="$PHOTO" wrk -t 2 -c 8 -d "$DURATION" -s bench/post_image.lua "$base/v1/identify" >/dev/null
echo "after $DURATION of 8 clients on /v1/identify: RSS $(mem VmRSS), peak $(mem VmHWM)"
