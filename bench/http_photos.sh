#!/usr/bin/env bash
# Milliseconds a photo through HTTP (POST /v1/embed, one inference worker, one
# sequential keep-alive client) next to OpenCV's own pipeline on the same
# photos, one thread, in the same run (issue 12's yardstick), at 250x250 and
# at ~1 MP (the same photos enlarged to 1000x1000):
#   - visage --embedder sface (the models OpenCV's pipeline runs), with
#     visage's own kernels (the default) and with tract's alone
#     (VISAGE_TRACT_KERNELS=tract), and the default embedder (SFace + dlib);
#   - visage --embedder sface with its 1x1 convolutions in f32 rather than
#     integers (VISAGE_TRACT_KERNELS=f32);
#   - visage --embedder sface --max-faces 1: the largest face only, the work
#     OpenCV's pipeline does (/v1/embed otherwise embeds every face found,
#     and many LFW photos show several);
#   - ratios against OpenCV measured in the same run.
#
#   bash bench/http_photos.sh [PHOTO_DIR]   # N=200; default PHOTO_DIR: LFW View 1
#                                           # beside the repo if present, else
#                                           # the generated test photos
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
N=${N:-200}
SRC=${1:-../shared/faces/lfw-view1/images}
# The same build as the other benchmarks (with the optional backend), so
# that running them one after another does not rebuild.
make -s models onnxruntime test-data
cargo build --release -q --features onnxruntime
VENV=target/bench-venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r bench/requirements.txt
PY="$VENV/bin/python"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/250" "$dir/1mp"
if [ -d "$SRC" ]; then
  find "$SRC" -name '*.jpg' | sort | awk -v n="$N" 'NR % 7 == 0 && c < n {print; c++}' >"$dir/list"
else
  "$PY" bench/make_photos.py target/bench
  for i in $(seq 1 "$N"); do echo target/bench/obama_250.jpg; done >"$dir/list"
fi
"$PY" - "$dir" <<'PY'
import sys, cv2
d = sys.argv[1]
for i, p in enumerate(open(f"{d}/list").read().split()):
    img = cv2.imread(p)
    cv2.imwrite(f"{d}/250/{i:04d}.jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    big = cv2.resize(img, (1000, 1000), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(f"{d}/1mp/{i:04d}.jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 90])
PY
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'); $(grep -o -w -E 'avx512f|avx2|fma' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "$(wc -l <"$dir/list") photos from $SRC; server and OpenCV pinned to core 0, client on core 1"

# Every configuration is served at once (each its own process, one worker,
# pinned to core 0, idle while another runs), and the photos go by in $CHUNKS
# chunks: OpenCV, then each server, on the same chunk before the next, so that
# the machine's drift over the minutes falls on every side alike.
CHUNKS=${CHUNKS:-8}
configs=("sface X=1 -- --embedder sface" "sface-tract-kernels VISAGE_TRACT_KERNELS=tract -- --embedder sface"
         "default X=1 --" "sface-largest X=1 -- --embedder sface --max-faces 1"
         "sface-f32 VISAGE_TRACT_KERNELS=f32 -- --embedder sface")
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$dir"' EXIT
results="$dir/results"
split -n "l/$CHUNKS" -d "$dir/list" "$dir/chunk."
for set in 250 1mp; do
  ports=()
  for run in "${configs[@]}"; do
    # shellcheck disable=SC2206
    words=(${run#* })
    envs=()
    while [ "${words[0]}" != "--" ]; do envs+=("${words[0]}"); words=("${words[@]:1}"); done
    port=$(free_port)
    env "${envs[@]}" taskset -c 0 target/release/visage serve --addr "127.0.0.1:$port" --db "$dir/v$port.db" \
      --workers 1 "${words[@]:1}" >"$dir/log$port" 2>&1 &
    pids+=($!)
    wait_up "http://127.0.0.1:$port/readyz"
    # Warm-up: the plans for this size are built on first use.
    taskset -c 1 "$PY" bench/http_photos.py --warmup 0 "http://127.0.0.1:$port/v1/embed" \
      $(head -n 5 "$dir/list" | awk -v d="$dir/$set" '{printf "%s/%04d.jpg\n", d, NR - 1}') >/dev/null
    ports+=("$port")
  done
  first=0
  for chunk in "$dir"/chunk.*; do
    n=$(wc -l <"$chunk")
    photos=()
    for i in $(seq "$first" $((first + n - 1))); do photos+=("$(printf '%s/%s/%04d.jpg' "$dir" "$set" "$i")"); done
    first=$((first + n))
    taskset -c 0 "$PY" bench/opencv_pipeline.py --iterations 1 "${photos[@]}" 2>/dev/null |
      "$PY" -c 'import json,sys; d=json.load(sys.stdin)["photos"]; print(sys.argv[1], "opencv", sum(p["total_ms"] for p in d), len(d), len(d))' "$set" >>"$results"
    for k in "${!configs[@]}"; do
      run=${configs[$k]}
      taskset -c 1 "$PY" bench/http_photos.py --warmup 0 "http://127.0.0.1:${ports[$k]}/v1/embed" "${photos[@]}" |
        "$PY" -c 'import json,sys; d=json.load(sys.stdin); n=d["photos"]; print(sys.argv[1], sys.argv[2], d["ms_per_photo"] * n, n, d["faces_per_photo"] * n)' "$set" "${run%% *}" >>"$results"
    done
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null || true
  pids=()
done
"$PY" - "$results" <<'PY'
import sys
from collections import defaultdict
total = defaultdict(lambda: [0.0, 0, 0.0])
for s_, k, t, n, f in (l.split() for l in open(sys.argv[1])):
    total[(s_, k)][0] += float(t)
    total[(s_, k)][1] += int(n)
    total[(s_, k)][2] += float(f)
ms = {k: t / n for k, (t, n, f) in total.items()}
faces = {k: f / n for k, (t, n, f) in total.items()}
print(f"{'photos':<8} {'OpenCV':>8} | {'visage sface':>12} {'ratio':>6} | {'tract kernels':>13} {'ratio':>6} | {'default':>8} {'ratio':>6} | {'sface, 1 face':>13} {'ratio':>6} | {'sface, f32 1x1':>14} {'ratio':>6}")
for s in ("250", "1mp"):
    o = ms[(s, "opencv")]
    a, b, c, d, e = (ms[(s, k)] for k in ("sface", "sface-tract-kernels", "default", "sface-largest", "sface-f32"))
    print(f"{s:<8} {o:8.2f} | {a:12.2f} {a/o:6.2f} | {b:13.2f} {b/o:6.2f} | {c:8.2f} {c/o:6.2f} | {d:13.2f} {d/o:6.2f} | {e:14.2f} {e/o:6.2f}")
    print(f"{'':<8} {'':>8} | faces a photo embedded: sface {faces[(s, 'sface')]:.2f}, default {faces[(s, 'default')]:.2f}, 1 face {faces[(s, 'sface-largest')]:.2f}")
print(f"milliseconds a photo (mean over {total[('250', 'opencv')][1]} photos, in chunks alternating OpenCV and each configuration); visage through HTTP, one worker, keep-alive; OpenCV in-process, one thread, the largest face;"
      " goals: sface <= 1.0 at 250x250, <= 0.7 at 1 MP; default <= 1.3 at 250x250")
PY
