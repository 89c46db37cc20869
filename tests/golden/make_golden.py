#!/usr/bin/env python3
"""Generate the golden values the Rust parity tests compare against.

    python3 -m pip install onnx onnxruntime opencv-python-headless numpy
    python3 tests/golden/make_golden.py

Run once (the output is committed; the tests themselves need no Python):
- ort_models.json: onnxruntime's outputs of both models on deterministic
  synthetic inputs (a pattern anyone can regenerate, see `pattern`).
- opencv_chain.json: OpenCV's whole chain (FaceDetectorYN at the photo's own
  size, FaceRecognizerSF.alignCrop + feature) on the test photos.
"""
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
from onnx_fold import fold  # noqa: E402

YUNET = ROOT / "models/face_detection_yunet_2023mar_int8bq.onnx"
SFACE = ROOT / "models/face_recognition_sface_2021dec_int8bq.onnx"
PHOTOS = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"]


def pattern(c, h, w):
    """value(c, y, x) = (x * 31 + y * 17 + c * 101) % 256, as float32."""
    cc, yy, xx = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    return ((xx * 31 + yy * 17 + cc * 101) % 256).astype(np.float32)[None]


def folded_path(src, tmp, dynamic=False):
    p = Path(tmp) / (("dyn-" if dynamic else "") + src.name)
    p.write_bytes(fold(str(src), dynamic).SerializeToString())
    return str(p)


def main():
    tmp = tempfile.mkdtemp()
    yunet, sface = folded_path(YUNET, tmp), folded_path(SFACE, tmp)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    out = {"pattern": "(x * 31 + y * 17 + c * 101) % 256", "onnxruntime": ort.__version__}
    s = ort.InferenceSession(sface, so, providers=["CPUExecutionProvider"])
    out["sface_112"] = s.run(None, {"data": pattern(3, 112, 112)})[0].ravel().tolist()
    y = ort.InferenceSession(folded_path(YUNET, tmp, dynamic=True), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in y.get_outputs()]
    res = y.run(None, {"input": pattern(3, 96, 160)})
    out["yunet_96x160"] = {n: r.ravel().tolist() for n, r in zip(names, res)}
    (ROOT / "tests/golden/ort_models.json").write_text(json.dumps(out))

    chain = {"opencv": cv2.__version__, "photos": {}}
    rec = cv2.FaceRecognizerSF.create(sface, "")
    for name in PHOTOS:
        img = cv2.imread(str(ROOT / "tests/data" / name))
        h, w = img.shape[:2]
        det = cv2.FaceDetectorYN.create(yunet, "", (w, h), 0.9, 0.3, 5000)
        _, faces = det.detect(img)
        faces = [] if faces is None else faces
        entries = []
        for f in faces:
            aligned = rec.alignCrop(img, f)
            feat = rec.feature(aligned).ravel()
            entries.append({
                "box": f[0:4].tolist(),
                "landmarks": f[4:14].reshape(5, 2).tolist(),
                "score": float(f[14]),
                "embedding": (feat / np.linalg.norm(feat)).tolist(),
            })
        chain["photos"][name] = entries
    (ROOT / "tests/golden/opencv_chain.json").write_text(json.dumps(chain, indent=1))
    print("wrote tests/golden/ort_models.json and tests/golden/opencv_chain.json")


if __name__ == "__main__":
    main()
