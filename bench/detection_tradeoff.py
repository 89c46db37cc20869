#!/usr/bin/env python3
"""Missed faces against false faces for pairs of detection score bars.

    visage eval detections --dir LFW/images --root LFW/images --out lfw.jsonl
    visage eval detections --dir NONFACE --out nonface.jsonl
    python3 bench/detection_tradeoff.py lfw.jsonl nonface.jsonl

Both files hold every detection down to a low floor (`--floor`, 0.3), so any
pair of bars can be applied afterwards: a photo's best face needs `best`,
every other face `others` (the detector's `--detect-best-score` and
`--detect-score`). On LFW (deep-funneled, subject centred) a face whose box
centre lies within `--radius` px of the photo's centre is the subject; the
others are other people or false. On the non-face photos every face is false.
"""
import argparse
import json

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("lfw")
ap.add_argument("nonface")
ap.add_argument("--radius", type=float, default=40.0)
ap.add_argument("--best", default="0.3,0.4,0.5,0.6,0.7,0.75,0.8,0.85,0.9")
ap.add_argument("--others", default="0.6,0.7,0.8,0.9")
args = ap.parse_args()


def load(path):
    return [json.loads(line) for line in open(path)]


def kept(faces, best, others):
    faces = sorted(faces, key=lambda f: -f["score"])
    return [f for i, f in enumerate(faces) if f["score"] >= (best if i == 0 else others)]


def central(row, f):
    b = f["box"]
    cx, cy = b["x"] + b["width"] / 2, b["y"] + b["height"] / 2
    return ((cx - row["width"] / 2) ** 2 + (cy - row["height"] / 2) ** 2) ** 0.5 <= args.radius


lfw, nonface = load(args.lfw), load(args.nonface)
print(f"{len(lfw)} LFW photos, {len(nonface)} non-face photos; subject = a face centred within {args.radius:.0f} px")
print(f"{'best':>5} {'others':>6} | {'no face':>7} {'subject missed':>14} {'largest not subject':>19} "
      f"{'other faces':>11} | {'non-face photos with a face':>27} {'false faces':>11}")
for best in map(float, args.best.split(",")):
    for others in map(float, args.others.split(",")):
        if others < best:
            continue
        no_face = missed = largest_wrong = extra = 0
        for r in lfw:
            k = kept(r["faces"], best, others)
            no_face += not k
            missed += not any(central(r, f) for f in k)
            if k:
                big = max(k, key=lambda f: f["box"]["width"] * f["box"]["height"])
                largest_wrong += not central(r, big)
            extra += sum(not central(r, f) for f in k)
        nf = [kept(r["faces"], best, others) for r in nonface]
        print(f"{best:>5.2f} {others:>6.2f} | {no_face:>7} {missed:>14} {largest_wrong:>19} {extra:>11} | "
              f"{sum(bool(k) for k in nf):>27} {sum(len(k) for k in nf):>11}")
