#!/usr/bin/env python3
"""Clustering quality on LFW View 1, for choosing how visage groups faces
nobody has named yet (issue: faces without a person). Not part of the product.

Reads the embeddings of a visage SQLite database in which every LFW View 1
photo was enrolled under its folder's name (the truth):

    visage enroll-dir ../shared/faces/lfw-view1/images --face largest --db /tmp/lfw.db
    python3 bench/clustering/lfw_clusters.py /tmp/lfw.db ../shared/faces/lfw-view1 [PRECISION [METHODS]]

The persons of pairsDevTrain.txt are the tuning set, those of
pairsDevTest.txt (other people) the check: each method's setting is chosen
on DevTrain, by BCubed F1 and by BCubed F1 among the settings whose pairwise
precision reaches PRECISION (default 0.995), and reported on DevTest with
the same setting. METHODS: a comma-separated choice of the ones below.
Faces a method leaves unclustered count as clusters of one.

Methods (same embeddings, cosine similarity of the fused embedder, whose
"same person" similarities sit near 0.75):
  dbscan  DBSCAN on cosine distance, at least 3 faces a cluster (Immich's);
  cw      Chinese whispers on the graph of pairs at or above a similarity
          (dlib's), unweighted, 100 passes;
  single  connected components of that graph (single linkage), which an
          arriving face can maintain incrementally;
  centroid  incremental: a face joins the most similar cluster mean at or
          above a similarity, else starts a cluster (random arrival order).
Needs numpy and scikit-learn.
"""
import sqlite3
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from sklearn.cluster import DBSCAN


def names_of(pairs_file):
    names = set()
    for line in Path(pairs_file).read_text().splitlines()[1:]:
        f = line.split()
        names.add(f[0])
        if len(f) == 4:
            names.add(f[2])
    return names


def load(db, model_prefix="sface+dlib"):
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT p.name, f.embedding FROM faces f JOIN persons p ON p.id = f.person_id "
        "WHERE f.model LIKE ? ORDER BY f.id",
        (model_prefix + "%",),
    ).fetchall()
    # enroll-dir names a person after the folder, underscores as spaces.
    names = [r[0].replace(" ", "_") for r in rows]
    x = np.stack([np.frombuffer(r[1], dtype="<f4") for r in rows])
    return names, x / np.linalg.norm(x, axis=1, keepdims=True)


def scores(truth, labels):
    """BCubed precision, recall, F1; pairwise precision, recall."""
    n = len(truth)
    cluster = defaultdict(list)
    klass = defaultdict(list)
    for i, (t, l) in enumerate(zip(truth, labels)):
        cluster[l].append(i)
        klass[t].append(i)
    both = defaultdict(int)
    for t, l in zip(truth, labels):
        both[(t, l)] += 1
    p = sum(both[(t, l)] / len(cluster[l]) for t, l in zip(truth, labels)) / n
    r = sum(both[(t, l)] / len(klass[t]) for t, l in zip(truth, labels)) / n
    f1 = 2 * p * r / (p + r)
    pairs = lambda k: k * (k - 1) / 2
    together = sum(pairs(len(v)) for v in cluster.values())
    same = sum(pairs(len(v)) for v in klass.values())
    right = sum(pairs(k) for k in both.values())
    return p, r, f1, right / together if together else 1.0, right / same if same else 1.0


def singletons(labels, noise=-1):
    out, nxt = [], max(labels, default=0) + 1
    for l in labels:
        if l == noise:
            out.append(nxt)
            nxt += 1
        else:
            out.append(l)
    return out


def dbscan(x, eps):
    return singletons(list(DBSCAN(eps=eps, min_samples=3, metric="cosine").fit(x).labels_))


def chinese_whispers(x, threshold, passes=100, seed=0):
    sim = x @ x.T
    np.fill_diagonal(sim, -1)
    nbrs = [np.flatnonzero(row >= threshold) for row in sim]
    labels = np.arange(len(x))
    rng = np.random.default_rng(seed)
    for _ in range(passes):
        changed = 0
        for i in rng.permutation(len(x)):
            if len(nbrs[i]) == 0:
                continue
            vals, counts = np.unique(labels[nbrs[i]], return_counts=True)
            best = vals[np.argmax(counts)]
            if best != labels[i]:
                labels[i], changed = best, changed + 1
        if changed == 0:
            break
    return list(labels)


def components(x, threshold):
    """Single linkage: connected components of the pairs at or above `threshold`
    (what a face joining every cluster it links to maintains incrementally)."""
    parent = list(range(len(x)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    sim = x @ x.T
    for i, j in zip(*np.nonzero(np.triu(sim >= threshold, 1))):
        parent[find(i)] = find(j)
    return [find(i) for i in range(len(x))]


def centroids(x, threshold, seed=0):
    """Incremental, in a random arrival order: a face joins the cluster whose
    mean it is most similar to, at or above `threshold`, else starts one."""
    order = np.random.default_rng(seed).permutation(len(x))
    sums, labels = [], [0] * len(x)
    for i in order:
        if sums:
            m = np.stack(sums)
            sim = (m @ x[i]) / np.linalg.norm(m, axis=1)
            k = int(np.argmax(sim))
            if sim[k] >= threshold:
                sums[k] = sums[k] + x[i]
                labels[i] = k
                continue
        sums.append(x[i].copy())
        labels[i] = len(sums) - 1
    return labels


def average_linkage(x, threshold, seed=0, most_moves=16):
    """visage's rule (crates/service/src/clusters), in a random arrival
    order. A face joins the cluster with the highest average similarity to
    it (sum . x / n) at or above `threshold`, else starts one; the grown
    cluster then absorbs every cluster whose average similarity to it
    (sum_a . sum_b / (n_a n_b)) reaches `threshold` (looked for among the
    clusters the face reaches), the larger keeping its id. Then a face of a
    cluster of 3 or more whose average similarity to the rest of it is below
    `threshold` leaves it and arrives again anywhere else (at most
    `most_moves` such moves an arrival)."""
    order = np.random.default_rng(seed).permutation(len(x))
    sums = np.zeros((len(x), x.shape[1]), dtype=np.float64)
    sizes = np.zeros(len(x), dtype=np.int64)
    members = {}
    nxt = 0

    def arrive(i, skip=None):
        nonlocal nxt
        live = np.flatnonzero(sizes)
        if skip is not None:
            live = live[live != skip]
        target, reach = None, []
        if len(live):
            avg = sums[live] @ x[i] / sizes[live]
            reach = list(live[avg >= threshold])
            k = int(np.argmax(avg))
            if avg[k] >= threshold:
                target = int(live[k])
        if target is None:
            target, nxt = nxt, nxt + 1
            members[target] = []
        sums[target] += x[i]
        sizes[target] += 1
        members[target].append(i)
        reach = [c for c in reach if c != target]
        while reach:
            avg = [sums[c] @ sums[target] / (sizes[c] * sizes[target]) for c in reach]
            k = int(np.argmax(avg))
            if avg[k] < threshold:
                break
            other = reach.pop(k)
            keep, drop = (other, target) if sizes[other] > sizes[target] else (target, other)
            sums[keep] += sums[drop]
            sizes[keep] += sizes[drop]
            members[keep] += members.pop(drop)
            sums[drop], sizes[drop] = 0, 0
            target = keep
        return target

    for i in order:
        pending, moves = [arrive(i)], 0
        while pending and moves < most_moves:
            c = pending.pop()
            if sizes[c] < 3:
                continue
            m = np.array(members[c])
            rest = (x[m] @ sums[c] - 1.0) / (sizes[c] - 1)
            j = int(np.argmin(rest))
            if rest[j] >= threshold:
                continue
            f = int(m[j])
            moves += 1
            members[c].remove(f)
            sums[c] -= x[f]
            sizes[c] -= 1
            pending += [c, arrive(f, skip=c)]
    labels = [0] * len(x)
    for c, m in members.items():
        for i in m:
            labels[i] = c
    return labels


METHODS = {
    "dbscan": (dbscan, [round(e, 3) for e in np.arange(0.05, 0.50, 0.01)]),
    "cw": (chinese_whispers, [round(t, 3) for t in np.arange(0.55, 0.96, 0.01)]),
    "single": (components, [round(t, 3) for t in np.arange(0.55, 0.96, 0.01)]),
    "centroid": (centroids, [round(t, 3) for t in np.arange(0.55, 0.96, 0.01)]),
    "avglink": (average_linkage, [round(t, 3) for t in np.arange(0.68, 0.83, 0.01)]),
}


def main():
    db, lfw = sys.argv[1], Path(sys.argv[2])
    floor = float(sys.argv[3]) if len(sys.argv) > 3 else 0.995
    chosen = sys.argv[4].split(",") if len(sys.argv) > 4 else list(METHODS)
    names, x = load(db)
    train, test = names_of(lfw / "pairsDevTrain.txt"), names_of(lfw / "pairsDevTest.txt")
    split = {
        s: [i for i, n in enumerate(names) if n in people] for s, people in (("DevTrain", train), ("DevTest", test))
    }
    for s, idx in split.items():
        print(f"{s}: {len(idx)} faces, {len({names[i] for i in idx})} persons")
    print(f"{'method':8} {'setting':>7} {'split':8} {'B3 P':>7} {'B3 R':>7} {'B3 F1':>7} {'pair P':>7} {'pair R':>7}")
    for name in chosen:
        run, grid = METHODS[name]
        tx, tt = x[split["DevTrain"]], [names[i] for i in split["DevTrain"]]
        on_train = {g: scores(tt, run(tx, g)) for g in grid}
        # Best BCubed F1; then best F1 among settings whose pairwise precision
        # on DevTrain reaches `floor` (a cluster a person names must be one person).
        picks = [("best F1", max(grid, key=lambda g: on_train[g][2]))]
        precise = [g for g in grid if on_train[g][3] >= floor]
        if precise:
            picks.append((f"P>={floor}", max(precise, key=lambda g: on_train[g][2])))
        for why, g in picks:
            for s, idx in split.items():
                r = on_train[g] if s == "DevTrain" else scores([names[i] for i in idx], run(x[idx], g))
                print(f"{name:8} {g:7.3f} {s:8} " + " ".join(f"{v:7.4f}" for v in r) + f"  ({why})")


if __name__ == "__main__":
    main()
