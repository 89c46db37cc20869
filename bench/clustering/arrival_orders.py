#!/usr/bin/env python3
"""visage's clustering rule over many arrival orders, with and without its
misfit moves (a face whose average similarity to the rest of its cluster
fell below the threshold leaves it), on LFW View 1. Not part of the product.

    python3 bench/clustering/arrival_orders.py DB ../shared/faces/lfw-view1 [THRESHOLD [ORDERS]]

DB is a visage SQLite database holding LFW View 1's faces either enrolled
under their folder's name (`visage enroll-dir`) or kept unassigned with the
file's path as external id (`through_api.py`'s database). Both splits are
clustered together, as a photo library would be, and scored separately.
"Aliases merged" scores again with the persons LFW names twice counted as
one (Sepp/Joseph Blatter, Nan Wang/Wang Nan, ...): the truth's own errors.
"""
import sqlite3
import sys
from pathlib import Path

import numpy as np

from lfw_clusters import average_linkage, load, names_of, scores

# The same person under two LFW names (looked at: the photos show one person).
ALIASES = {
    "Joseph_Blatter": "Sepp_Blatter",
    "Wang_Nan": "Nan_Wang",
    "Muhammad_Ibrahim_Bilal": "Ahmed_Ibrahim_Bilal",
    "Luther_Htu": "Johnny_Htu",
    "Sung_Hong_Choi": "Choi_Sung-hong",
    "Hassan_Wirajuda": "Hasan_Wirayuda",
}


def load_any(db):
    con = sqlite3.connect(db)
    unassigned = con.execute("SELECT COUNT(*) FROM faces WHERE person_id IS NULL").fetchone()[0]
    if not unassigned:
        return load(db)
    rows = con.execute("SELECT external_id, embedding FROM faces WHERE person_id IS NULL ORDER BY id").fetchall()
    names = [r[0].split("/")[0] for r in rows]
    x = np.stack([np.frombuffer(r[1], dtype="<f4") for r in rows]).astype(np.float64)
    return names, x / np.linalg.norm(x, axis=1, keepdims=True)


def main():
    db, lfw = sys.argv[1], Path(sys.argv[2])
    threshold = float(sys.argv[3]) if len(sys.argv) > 3 else 0.75
    orders = int(sys.argv[4]) if len(sys.argv) > 4 else 8
    names, x = load_any(db)
    splits = {s: names_of(lfw / f"pairs{s}.txt") for s in ("DevTrain", "DevTest")}
    idx = {s: [i for i, n in enumerate(names) if n in people] for s, people in splits.items()}
    print(f"{len(names)} faces, threshold {threshold}, {orders} arrival orders (seeds 0..{orders - 1})")
    print(f"{'rule':14} {'truth':15} {'split':8} {'B3 F1':>7} {'pair P':>7} {'P min':>7} {'pair R':>7}")
    for rule, moves in (("no moves", 0), ("misfits move", 16)):
        runs = [average_linkage(x, threshold, seed=s, most_moves=moves) for s in range(orders)]
        for truth in ("LFW labels", "aliases merged"):
            named = names if truth == "LFW labels" else [ALIASES.get(n, n) for n in names]
            for s, ids in idx.items():
                r = [scores([named[i] for i in ids], [labels[i] for i in ids]) for labels in runs]
                f1, p, r_ = (np.mean([v[k] for v in r]) for k in (2, 3, 4))
                low = min(v[3] for v in r)
                print(f"{rule:14} {truth:15} {s:8} {f1:7.4f} {p:7.4f} {low:7.4f} {r_:7.4f}", flush=True)


if __name__ == "__main__":
    main()
