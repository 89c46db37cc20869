#!/usr/bin/env python3
"""onnxruntime latency of the two models, single-threaded, for comparison with
visage's per-stage figures measured in the same run (see bench/stages.sh).

    python3 bench/ort_models.py --detector-input 928x1152 --detector-input 256x256
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from onnx_fold import fold  # noqa: E402


def session(path, dynamic):
    tmp = Path(tempfile.mkdtemp()) / Path(path).name
    tmp.write_bytes(fold(str(path), dynamic).SerializeToString())
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(tmp), so, providers=["CPUExecutionProvider"])


def median_ms(fn, iterations):
    for _ in range(3):
        fn()
    times = []
    for _ in range(iterations):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--detector-input", action="append", default=[], help="WxH of YuNet's input")
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--models-dir", default=str(ROOT / "models"))
    args = ap.parse_args()
    models = Path(args.models_dir)
    rng = np.random.default_rng(0)
    out = {"onnxruntime": ort.__version__, "detector": {}}
    yunet = session(models / "face_detection_yunet_2023mar_int8bq.onnx", True)
    for size in args.detector_input:
        w, h = (int(x) for x in size.split("x"))
        x = rng.uniform(0, 255, (1, 3, h, w)).astype(np.float32)
        out["detector"][size] = median_ms(lambda: yunet.run(None, {"input": x}), args.iterations)
    sface = session(models / "face_recognition_sface_2021dec_int8bq.onnx", False)
    x = rng.uniform(0, 255, (1, 3, 112, 112)).astype(np.float32)
    out["embed_112"] = median_ms(lambda: sface.run(None, {"data": x}), args.iterations)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
