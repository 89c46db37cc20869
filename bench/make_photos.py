#!/usr/bin/env python3
"""Benchmark photos derived from the fetched test photos (tests/data/):
obama_1mp.jpg (the 910x1137 original, ~1 MP), obama_2mp.jpg (the same scaled
to 1274x1592, ~2 MP, the size of a downscaled phone photo) and obama_250.jpg
(an LFW-style 250x250 crop centred on the face). Written to the folder given."""
import shutil
import sys
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
src = ROOT / "tests/data/obama.jpg"
shutil.copy(src, out / "obama_1mp.jpg")
img = cv2.imread(str(src))
cv2.imwrite(str(out / "obama_2mp.jpg"), cv2.resize(img, (1274, 1592), interpolation=cv2.INTER_CUBIC),
            [cv2.IMWRITE_JPEG_QUALITY, 90])
# The face box is about (371, 90, 239, 329): take a square of ~2x its height.
cx, cy, side = 371 + 239 // 2, 90 + 329 // 2, 620
x0, y0 = max(cx - side // 2, 0), max(cy - side // 2, 0)
crop = img[y0:y0 + side, x0:x0 + side]
cv2.imwrite(str(out / "obama_250.jpg"), cv2.resize(crop, (250, 250), interpolation=cv2.INTER_AREA),
            [cv2.IMWRITE_JPEG_QUALITY, 92])
