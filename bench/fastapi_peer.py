#!/usr/bin/env python3
"""The peer a Python user would build, for the throughput comparison in
bench/throughput.sh: FastAPI + uvicorn + OpenCV FaceDetectorYN/FaceRecognizerSF
on the same (de-quantized) models, answering POST /v1/embed with a raw image
body. One OpenCV thread per worker process. Not part of the product.

    uvicorn --workers 2 --app-dir bench fastapi_peer:app --port 9000
"""
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from fastapi import FastAPI, HTTPException, Request

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from onnx_fold import fold  # noqa: E402

cv2.setNumThreads(1)


def _folded(name):
    p = Path(tempfile.mkdtemp()) / name
    p.write_bytes(fold(str(ROOT / "models" / name)).SerializeToString())
    return str(p)


_det = cv2.FaceDetectorYN.create(_folded("face_detection_yunet_2023mar_int8bq.onnx"), "", (320, 320), 0.9, 0.3, 5000)
_rec = cv2.FaceRecognizerSF.create(_folded("face_recognition_sface_2021dec_int8bq.onnx"), "")
app = FastAPI()


@app.post("/v1/embed")
async def embed(request: Request):
    data = np.frombuffer(await request.body(), np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise HTTPException(422, "invalid image")
    _det.setInputSize((img.shape[1], img.shape[0]))
    _, faces = _det.detect(img)
    out = []
    for f in [] if faces is None else faces:
        feat = _rec.feature(_rec.alignCrop(img, f)).ravel()
        out.append({"box": f[0:4].tolist(), "score": float(f[14]), "embedding": (feat / np.linalg.norm(feat)).tolist()})
    return {"faces": out}
