#!/usr/bin/env python3
"""The yardstick for visage's end-to-end latency: OpenCV's own face pipeline on
the same two models, one thread (decode -> FaceDetectorYN at the photo's size
-> FaceRecognizerSF.alignCrop + feature), medians per stage. The models are
de-quantized the same way (bench/onnx_fold.py): OpenCV's DNN engine refuses the
shipped files. Not part of the product.

    python3 bench/opencv_pipeline.py photo.jpg [photo.jpg ...] [--iterations 30]
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from onnx_fold import fold  # noqa: E402


def folded(name):
    p = Path(tempfile.mkdtemp()) / name
    p.write_bytes(fold(str(ROOT / "models" / name)).SerializeToString())
    return str(p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("images", nargs="+")
    ap.add_argument("--iterations", type=int, default=30)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    yunet = folded("face_detection_yunet_2023mar_int8bq.onnx")
    sface = folded("face_recognition_sface_2021dec_int8bq.onnx")
    det = cv2.FaceDetectorYN.create(yunet, "", (320, 320), 0.9, 0.3, 5000)
    rec = cv2.FaceRecognizerSF.create(sface, "")
    out = {"opencv": cv2.__version__, "photos": []}
    for path in args.images:
        data = np.frombuffer(Path(path).read_bytes(), np.uint8)
        times = {k: [] for k in ("decode", "detect", "align", "embed", "total")}
        for i in range(args.iterations + 2):
            t0 = time.perf_counter()
            img = cv2.imdecode(data, cv2.IMREAD_COLOR)
            t1 = time.perf_counter()
            det.setInputSize((img.shape[1], img.shape[0]))
            _, faces = det.detect(img)
            t2 = time.perf_counter()
            if faces is not None and len(faces):
                face = max(faces, key=lambda f: f[2] * f[3])
                aligned = rec.alignCrop(img, face)
                t3 = time.perf_counter()
                rec.feature(aligned)
            else:
                t3 = time.perf_counter()
            t4 = time.perf_counter()
            if i >= 2:
                for k, (a, b) in zip(times, [(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t0, t4)]):
                    times[k].append((b - a) * 1000)
        out["photos"].append({"image": path, **{f"{k}_ms": statistics.median(v) for k, v in times.items()}})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
