#!/usr/bin/env bash
# Graceful shutdown under load: 8 clients on /v1/identify, SIGTERM after 3 s.
# Prints how long the process took to exit, its exit code, and how the
# requests in flight ended (wrk's error counts).
#
#   bash bench/shutdown.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
ensure_wrk
start_visage --workers 2 --queue 16
curl -sf -F image=@tests/data/obama.jpg -F name=Obama "$base/v1/enroll" >/dev/null
IMG=tests/data/obama2.jpg wrk -t 2 -c 8 -d 8s -s bench/post_image.lua "$base/v1/identify" >"$dir/wrk.txt" 2>&1 &
load=$!
sleep 3
start=$(date +%s.%N)
kill -TERM "$pid"
set +e
wait "$pid"
code=$?
set -e
end=$(date +%s.%N)
wait "$load" || true
printf 'SIGTERM with 8 clients in flight: exited with code %s after %.2f s\n' "$code" "$(echo "$end - $start" | bc)"
grep -E "requests in|Socket errors|Non-2xx" "$dir/wrk.txt" || true
grep -E "shutting down|stopped" "$dir/log" | tail -2
