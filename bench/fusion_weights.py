#!/usr/bin/env python3
"""Choose a fusion weight from per-pair scores of two embedders.

    visage eval pairs --pairs DEV --root R --embedder sface --scores a.csv
    visage eval pairs --pairs DEV --root R --embedder dlib  --scores b.csv
    python3 bench/fusion_weights.py a.csv b.csv [--weights 0,0.1,...] [--threshold T]

The fused embedding [sqrt(w) a, sqrt(1-w) b] has cosine w * s_a + (1 - w) * s_b,
so every weight can be scored from the two files alone. Prints, per weight
of the first embedder, the 10-fold accuracy (folds dealt as `eval pairs`
deals a one-count-line LFW file), the best single threshold and its
accuracy, the accuracy at `--threshold`, and TAR at FAR = 0.1 % and 1 %.
"""
import argparse
import csv


def load(path):
    with open(path) as f:
        return [(r["img_a"], r["img_b"], r["same"] == "1", float(r["similarity"])) for r in csv.DictReader(f)]


def folds(same, k=10):
    out, n = [], {True: 0, False: 0}
    for s in same:
        out.append(n[s] % k)
        n[s] += 1
    return out


def best_threshold(pairs):
    s = sorted(pairs)
    pos = sum(1 for _, y in s if y)
    right = best = pos
    best_t = s[0][0] - 1e-3
    for i, (score, y) in enumerate(s):
        right += -1 if y else 1
        tied = i + 1 < len(s) and s[i + 1][0] == score
        if not tied and right > best:
            best = right
            best_t = (score + s[i + 1][0]) / 2 if i + 1 < len(s) else score + 1e-3
    return best_t


def accuracy(pairs, t):
    return sum((s >= t) == y for s, y in pairs) / len(pairs)


def tar_at_far(pairs, far):
    neg = sorted((s for s, y in pairs if not y), reverse=True)
    pos = [s for s, y in pairs if y]
    allowed = int(far * len(neg))
    t = neg[allowed] if allowed < len(neg) else float("-inf")
    return sum(s > t for s in pos) / len(pos)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--weights", default=",".join(f"{w / 20:.2f}" for w in range(21)))
    ap.add_argument("--threshold", type=float)
    ap.add_argument("--folds", type=int, default=10)
    args = ap.parse_args()
    a, b = load(args.a), load(args.b)
    assert [(x[0], x[1]) for x in a] == [(x[0], x[1]) for x in b], "the two files score different pairs"
    same = [x[2] for x in a]
    fold = folds(same, args.folds)
    print(f"{len(a)} pairs; weight = share of {args.a}")
    head = f"{'weight':>6} {'10-fold':>8} {'best t':>7} {'acc@best':>8} {'TAR@0.1%':>9} {'TAR@1%':>7}"
    print(head + (f" {'acc@' + str(args.threshold):>10}" if args.threshold is not None else ""))
    for w in map(float, args.weights.split(",")):
        pairs = [(w * x[3] + (1 - w) * y[3], x[2]) for x, y in zip(a, b)]
        accs = []
        for f in range(args.folds):
            train = [p for p, k in zip(pairs, fold) if k != f]
            test = [p for p, k in zip(pairs, fold) if k == f]
            accs.append(accuracy(test, best_threshold(train)))
        t = best_threshold(pairs)
        line = (f"{w:>6.2f} {100 * sum(accs) / len(accs):>7.2f}% {t:>7.3f} {100 * accuracy(pairs, t):>7.2f}% "
                f"{100 * tar_at_far(pairs, 0.001):>8.2f}% {100 * tar_at_far(pairs, 0.01):>6.2f}%")
        if args.threshold is not None:
            line += f" {100 * accuracy(pairs, args.threshold):>9.2f}%"
        print(line)


if __name__ == "__main__":
    main()
