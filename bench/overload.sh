#!/usr/bin/env bash
# Overload: 1 inference worker with a queue of 2 under 32 clients posting to
# /v1/identify (wrk), while /healthz is polled every 50 ms. Prints how many
# requests were refused (429) and the latency of those refusals' neighbour,
# /healthz: p50, p99 and max over the run. Inference runs on its own threads,
# so the async runtime must keep answering.
#
#   bash bench/overload.sh        # DURATION=10s
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
DURATION=${DURATION:-10s}
ensure_wrk
start_visage --workers 1 --queue 2
curl -sf -F image=@tests/data/obama.jpg -F name=Obama "$base/v1/enroll" >/dev/null
IMG=tests/data/obama2.jpg wrk -t 2 -c 32 -d "$DURATION" --latency -s bench/post_image.lua "$base/v1/identify" \
  >"$dir/wrk.txt" &
load=$!
sleep 1
: >"$dir/health.txt"
while kill -0 "$load" 2>/dev/null; do
  curl -s -o /dev/null -w '%{http_code} %{time_total}\n' "$base/healthz" >>"$dir/health.txt"
  sleep 0.05
done
wait "$load" || true
python3 - "$dir/health.txt" "$dir/wrk.txt" <<'PY'
import re, statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
ok = [float(t) * 1000 for code, t in rows if code == "200"]
ok.sort()
wrk = open(sys.argv[2]).read()
total = int(re.search(r"(\d+) requests in", wrk).group(1))
non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", wrk)) else 0
rps = re.search(r"Requests/sec:\s+([\d.]+)", wrk).group(1)
print(f"/v1/identify under 32 clients, 1 worker, queue 2: {total} requests ({rps}/s), {non2xx} refused with 429")
print(f"/healthz meanwhile: {len(ok)}/{len(rows)} answered 200; p50 {statistics.median(ok):.2f} ms, "
      f"p99 {ok[int(len(ok) * 0.99) - 1]:.2f} ms, max {ok[-1]:.2f} ms")
PY
