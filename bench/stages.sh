#!/usr/bin/env bash
# Per-stage latency of visage (decode, detect, align, embed; single thread,
# medians) on a 250x250, a ~1 MP and a ~2 MP photo, on both backends (tract,
# the default, and the optional ONNX Runtime one), next to onnxruntime running
# the two models alone at the same input sizes and OpenCV's own pipeline on
# the same photos (the yardstick: bench/opencv_pipeline.py), all in one run.
#
#   bash bench/stages.sh            # needs python3 with pip; installs the
#                                   # reference engines in target/bench-venv
#   BASELINE=/path/to/old/visage bash bench/stages.sh
#       # also an older visage binary's stages (tract; SFace and the default
#       # embedder) in the same run, with this build's totals against it
set -euo pipefail
cd "$(dirname "$0")/.."
ITER=${ITER:-30}
make -s models onnxruntime test-data
cargo build --release -q --features onnxruntime
VENV=target/bench-venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r bench/requirements.txt
fi
PY="$VENV/bin/python"
OUT=target/bench
"$PY" bench/make_photos.py "$OUT"
PHOTOS=("$OUT/obama_250.jpg" "$OUT/obama_1mp.jpg" "$OUT/obama_2mp.jpg")
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'); $(grep -o -w -E 'avx512f|avx2|fma' /proc/cpuinfo | sort -u | tr '\n' ' ')"
# The engine comparisons use SFace (the model OpenCV's pipeline runs); the
# default embedder (SFace + dlib's ResNet) is timed beside it.
tract=$(taskset -c 0 target/release/visage bench --json --iterations "$ITER" --backend tract --embedder sface "${PHOTOS[@]}")
ort=$(taskset -c 0 target/release/visage bench --json --iterations "$ITER" --backend onnxruntime --embedder sface "${PHOTOS[@]}")
fused=$(taskset -c 0 target/release/visage bench --json --iterations "$ITER" --backend tract "${PHOTOS[@]}")
sizes=$(printf "%s\n%s" "$tract" "$ort" | "$PY" -c 'import json,sys; print(" ".join(sorted({"--detector-input %dx%d" % tuple(r["detector_input"]) for l in sys.stdin for r in json.loads(l)})))')
# shellcheck disable=SC2086
theirs=$(taskset -c 0 "$PY" bench/ort_models.py --iterations "$ITER" $sizes)
opencv=$(taskset -c 0 "$PY" bench/opencv_pipeline.py --iterations "$ITER" "${PHOTOS[@]}" 2>/dev/null)
"$PY" - "$tract" "$ort" "$theirs" "$opencv" "$fused" <<'PY'
import json, sys
tract, ort, theirs, opencv, fused = (json.loads(a) for a in sys.argv[1:6])
print(f"{'backend':<12} {'photo':<14} {'det input':>9} | {'decode':>7} {'detect':>7} {'align':>7} {'embed':>7} {'total':>7} | {'ORT detect':>10} {'ORT embed':>9} | {'detect x':>8} {'embed x':>8}")
for backend, rows in (("tract", tract), ("onnxruntime", ort)):
    for r in rows:
        size = "%dx%d" % tuple(r["detector_input"])
        od, oe = theirs["detector"].get(size), theirs["embed_112"]
        name = r["image"].rsplit("/", 1)[-1]
        det_ref = f"{od:10.2f}" if od else f"{'-':>10}"
        det_x = f"{r['detect_ms']/od:8.2f}" if od else f"{'-':>8}"
        print(f"{backend:<12} {name:<14} {size:>9} | {r['decode_ms']:7.2f} {r['detect_ms']:7.2f} {r['align_ms']:7.2f} {r['embed_ms']:7.2f} {r['total_ms']:7.2f} | {det_ref} {oe:9.2f} | {det_x} {r['embed_ms']/oe:8.2f}")
print(f"milliseconds, medians of {tract[0]['iterations']} runs on one core; onnxruntime {theirs['onnxruntime']} (Python, models alone);"
      " 'x' = visage time / onnxruntime time (visage detect includes resize + tensor fill + decoding + NMS)")
print()
print(f"{'photo':<14} | {'OpenCV total':>12} {'decode':>7} {'detect':>7} {'align':>7} {'embed':>7} | {'tract':>7} {'ratio':>6} | {'onnxrt':>7} {'ratio':>6} | {'default':>7} {'ratio':>6} {'embed':>7}")
for t, o, c, f in zip(tract, ort, opencv["photos"], fused):
    name = t["image"].rsplit("/", 1)[-1]
    print(f"{name:<14} | {c['total_ms']:12.2f} {c['decode_ms']:7.2f} {c['detect_ms']:7.2f} {c['align_ms']:7.2f} {c['embed_ms']:7.2f} |"
          f" {t['total_ms']:7.2f} {t['total_ms']/c['total_ms']:6.2f} | {o['total_ms']:7.2f} {o['total_ms']/c['total_ms']:6.2f} |"
          f" {f['total_ms']:7.2f} {f['total_ms']/c['total_ms']:6.2f} {f['embed_ms']:7.2f}")
print(f"ratio = visage total / OpenCV total (goal <= 1.0, aim 0.8); OpenCV {opencv['opencv']} runs YuNet at the photo's own size"
      " (FaceDetectorYN), one thread; tract and onnxrt run SFace (--embedder sface), default = tract with the default"
      " embedder (SFace + dlib's ResNet)")
PY
if [ -n "${BASELINE:-}" ]; then
  then_sface=$(taskset -c 0 "$BASELINE" bench --json --iterations "$ITER" --backend tract --embedder sface "${PHOTOS[@]}")
  then_fused=$(taskset -c 0 "$BASELINE" bench --json --iterations "$ITER" --backend tract "${PHOTOS[@]}")
  # This build again, right after, so that both sides see the same machine state.
  now_sface=$(taskset -c 0 target/release/visage bench --json --iterations "$ITER" --backend tract --embedder sface "${PHOTOS[@]}")
  now_fused=$(taskset -c 0 target/release/visage bench --json --iterations "$ITER" --backend tract "${PHOTOS[@]}")
  "$PY" - "$tract" "$fused" "$then_sface" "$then_fused" "$now_sface" "$now_fused" <<'PY'
import json, sys
first_sface, first_fused, then_sface, then_fused, now_sface, now_fused = (json.loads(a) for a in sys.argv[1:7])
print()
print(f"{'embedder':<8} {'photo':<14} | {'baseline':>8} | {'this build (two runs)':>22} | {'ratio':>6}")
for emb, first, then, now in (("sface", first_sface, then_sface, now_sface), ("default", first_fused, then_fused, now_fused)):
    for a, b, c in zip(first, then, now):
        name = a["image"].rsplit("/", 1)[-1]
        mine = min(a["total_ms"], c["total_ms"])
        print(f"{emb:<8} {name:<14} | {b['total_ms']:8.2f} | {a['total_ms']:10.2f} {c['total_ms']:10.2f} | {mine / b['total_ms']:6.3f}")
print("total ms (medians, one core); ratio = this build's better run / baseline (1.0 = no change)")
PY
fi
