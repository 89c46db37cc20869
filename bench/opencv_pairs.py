#!/usr/bin/env python3
"""OpenCV's own YuNet + SFace pipeline scored on an LFW pair list: the
yardstick for `visage eval pairs --embedder sface` on the same photos.
Not part of the product.

    python3 bench/opencv_pairs.py PAIRS ROOT --scores out.csv [--score 0.9] [--face central]
    python3 bench/fusion_weights.py out.csv out.csv --weights 1 --threshold 0.363

Per photo: decode, `FaceDetectorYN` at the photo's own size (score bar
`--score`, NMS 0.3), the face nearest the centre (LFW's subject; or the
largest, or the detector's best), `FaceRecognizerSF.alignCrop` + `feature`.
A pair with a photo where no face passed the bar gets similarity -1 (judged
"different"), and the photos are counted. The scores file has the columns of
`visage eval pairs --scores`, so `bench/fusion_weights.py` reads it (given
twice, weight 1) for 10-fold accuracy dealt as visage deals it, TAR at FAR
and accuracy at a threshold (0.363 is OpenCV's published cosine point).
"""
import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from opencv_pipeline import folded  # noqa: E402


def parse_pairs(path, root):
    """LFW's pair format: a header line (a count, or `folds count`), then
    `name i j` (same person) or `name i name2 j` (different people)."""
    lines = Path(path).read_text().split("\n")[1:]
    photo = lambda n, i: str(Path(root) / n / f"{n}_{int(i):04d}.jpg")  # noqa: E731
    out = []
    for line in lines:
        f = line.split()
        if len(f) == 3:
            out.append((photo(f[0], f[1]), photo(f[0], f[2]), True))
        elif len(f) == 4:
            out.append((photo(f[0], f[1]), photo(f[2], f[3]), False))
    return out


def pick(faces, shape, how):
    if how == "best":
        return max(faces, key=lambda f: f[14])
    if how == "largest":
        return max(faces, key=lambda f: f[2] * f[3])
    cy, cx = shape[0] / 2, shape[1] / 2
    return min(faces, key=lambda f: (f[0] + f[2] / 2 - cx) ** 2 + (f[1] + f[3] / 2 - cy) ** 2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pairs")
    ap.add_argument("root")
    ap.add_argument("--scores", required=True)
    ap.add_argument("--score", type=float, default=0.9, help="detection score bar (OpenCV's default 0.9)")
    ap.add_argument("--face", choices=("central", "largest", "best"), default="central")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    det = cv2.FaceDetectorYN.create(folded("face_detection_yunet_2023mar_int8bq.onnx"), "", (320, 320), args.score, 0.3)
    rec = cv2.FaceRecognizerSF.create(folded("face_recognition_sface_2021dec_int8bq.onnx"), "")
    pairs = parse_pairs(args.pairs, args.root)
    photos = sorted({p for a, b, _ in pairs for p in (a, b)})
    start = time.perf_counter()
    emb = {}
    for path in photos:
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            sys.exit(f"cannot read {path}")
        det.setInputSize((img.shape[1], img.shape[0]))
        _, faces = det.detect(img)
        if faces is None or not len(faces):
            emb[path] = None
            continue
        v = rec.feature(rec.alignCrop(img, pick(faces, img.shape, args.face))).reshape(-1)
        emb[path] = v / np.linalg.norm(v)
    lines = ["img_a,img_b,same,similarity"]
    for a, b, same in pairs:
        s = -1.0 if emb[a] is None or emb[b] is None else float(emb[a] @ emb[b])
        lines.append(f"{a},{b},{int(same)},{s:.6f}")
    Path(args.scores).write_text("\n".join(lines) + "\n")
    missing = sum(v is None for v in emb.values())
    print(f"OpenCV {cv2.__version__}: {len(pairs)} pairs, {len(photos)} photos, {missing} without a face "
          f"(score >= {args.score}), {time.perf_counter() - start:.0f} s; scores in {args.scores}")


if __name__ == "__main__":
    main()
