#!/usr/bin/env bash
# Per-stage latency of visage (decode, detect, align, embed; single thread,
# medians) on a ~1 MP photo and a 250x250 photo, next to onnxruntime running
# the same two models at the same input sizes, and OpenCV's own pipeline on the
# same photos (the yardstick: bench/opencv_pipeline.py), all in the same run.
#
#   bash bench/stages.sh            # needs python3 with pip; installs the
#                                   # reference engines in target/bench-venv
set -euo pipefail
cd "$(dirname "$0")/.."
ITER=${ITER:-30}
make -s models test-data
cargo build --release -q
VENV=target/bench-venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r bench/requirements.txt
fi
PY="$VENV/bin/python"
OUT=target/bench
"$PY" bench/make_photos.py "$OUT"
ours=$(taskset -c 0 target/release/visage bench --json --iterations "$ITER" "$OUT/obama_1mp.jpg" "$OUT/obama_250.jpg")
sizes=$(echo "$ours" | "$PY" -c 'import json,sys; print(" ".join("--detector-input %dx%d" % tuple(r["detector_input"]) for r in json.load(sys.stdin)))')
# shellcheck disable=SC2086
theirs=$(taskset -c 0 "$PY" bench/ort_models.py --iterations "$ITER" $sizes)
opencv=$(taskset -c 0 "$PY" bench/opencv_pipeline.py --iterations "$ITER" "$OUT/obama_1mp.jpg" "$OUT/obama_250.jpg" 2>/dev/null)
"$PY" - "$ours" "$theirs" "$opencv" <<'PY'
import json, sys
ours, theirs, opencv = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"{'photo':<14} {'det input':>9} | {'decode':>7} {'detect':>7} {'align':>7} {'embed':>7} {'total':>7} | {'ORT detect':>10} {'ORT embed':>9} | {'detect x':>8} {'embed x':>8}")
for r in ours:
    size = "%dx%d" % tuple(r["detector_input"])
    od, oe = theirs["detector"][size], theirs["embed_112"]
    name = r["image"].rsplit("/", 1)[-1]
    print(f"{name:<14} {size:>9} | {r['decode_ms']:7.2f} {r['detect_ms']:7.2f} {r['align_ms']:7.2f} {r['embed_ms']:7.2f} {r['total_ms']:7.2f} | {od:10.2f} {oe:9.2f} | {r['detect_ms']/od:8.2f} {r['embed_ms']/oe:8.2f}")
print(f"milliseconds, medians of {ours[0]['iterations']} runs on one core; onnxruntime {theirs['onnxruntime']};"
      " 'x' = visage time / onnxruntime time (visage detect includes resize + tensor fill + decoding + NMS)")
print()
print(f"{'photo':<14} | {'visage total':>12} | {'OpenCV total':>12} {'decode':>7} {'detect':>7} {'align':>7} {'embed':>7} | {'visage/OpenCV':>13}")
for r, o in zip(ours, opencv["photos"]):
    name = r["image"].rsplit("/", 1)[-1]
    print(f"{name:<14} | {r['total_ms']:12.2f} | {o['total_ms']:12.2f} {o['decode_ms']:7.2f} {o['detect_ms']:7.2f} {o['align_ms']:7.2f} {o['embed_ms']:7.2f} | {r['total_ms']/o['total_ms']:13.2f}")
print(f"OpenCV {opencv['opencv']} runs YuNet at the photo's own size (FaceDetectorYN), one thread")
PY
