#!/usr/bin/env python3
"""One folder per person of the photos an LFW pairs file names (symlinks), for
`visage enroll-dir`: e.g. the gallery shape is fitted to View 1 DevTrain.

    python3 bench/lfw_folders.py PAIRS IMAGES OUT
"""
import os
import sys


def photos(pairs):
    with open(pairs) as f:
        lines = f.read().split("\n")[1:]
    for line in lines:
        p = line.split()
        if len(p) == 3:
            yield p[0], int(p[1])
            yield p[0], int(p[2])
        elif len(p) == 4:
            yield p[0], int(p[1])
            yield p[2], int(p[3])


def main():
    pairs, images, out = sys.argv[1:4]
    made = 0
    for name, n in sorted(set(photos(pairs))):
        src = os.path.abspath(os.path.join(images, name, f"{name}_{n:04d}.jpg"))
        os.makedirs(os.path.join(out, name), exist_ok=True)
        dst = os.path.join(out, name, os.path.basename(src))
        if not os.path.exists(dst):
            os.symlink(src, dst)
            made += 1
    print(f"{made} photos linked under {out}")


if __name__ == "__main__":
    main()
