"""An inverted-file index (faiss IVF-Flat) on the same kind of gallery as
`visage bench-gallery`: does partitioning do better than the graph?

Not part of the product. Draws the gallery from the shipped shape (mean and
between/within-person covariances of sface+dlib embeddings of LFW View 1
DevTrain, scaled as crates/eval/src/synthetic.rs scales them; 1-3 faces a person),
half the probes new photos of enrolled persons, half strangers, and reports,
for each number of lists searched, recall@1 of the person against exact
search on genuine probes and known/unknown agreement with exact search at
the default 1:N threshold. f32 vectors, inner product (unit vectors).

    python3 -m venv v && v/bin/pip install numpy faiss-cpu
    OMP_NUM_THREADS=1 v/bin/python bench/ann-choice/ivf.py FACES LISTS [NPROBE,...]
"""
import struct
import sys
import time

import faiss
import numpy as np

SHAPE = "models/reference/sface+dlib.shape"
BETWEEN, WITHIN, SPREAD = 0.85, 0.95, 0.35  # crates/eval/src/synthetic.rs
THRESHOLD = 0.735  # sface+dlib's default 1:N threshold
PROBES = 2000


def shape(path):
    b = open(path, "rb").read()
    assert b[:8] == b"VISAGESH", f"{path} is not a shape file"
    dim = struct.unpack("<I", b[8:12])[0]
    a = np.frombuffer(b[20:], dtype="<f4").astype(np.float64)
    tri = dim * (dim + 1) // 2

    def full(x):
        s = np.zeros((dim, dim))
        s[np.tril_indices(dim)] = x
        return s + np.tril(s, -1).T

    return dim, a[:dim], full(a[dim:dim + tri]), full(a[dim + tri:])


def main():
    n, nlist = int(sys.argv[1]), int(sys.argv[2])
    nprobes = [int(x) for x in sys.argv[3].split(",")] if len(sys.argv) > 3 else [1, 4, 16, 64, 256]
    dim, mean, between, within = shape(SHAPE)
    lb = np.linalg.cholesky(BETWEEN**2 * between + 1e-7 * np.eye(dim)).astype(np.float32)
    lw = np.linalg.cholesky(WITHIN**2 * within + 1e-7 * np.eye(dim)).astype(np.float32)
    mean = mean.astype(np.float32)
    rng = np.random.default_rng(1)
    counts = rng.choice([1, 2, 3], size=n, p=[0.5, 0.3, 0.2])
    persons = int(np.searchsorted(np.cumsum(counts), n)) + 1
    counts = counts[:persons]
    counts[-1] -= counts.sum() - n
    identities = rng.standard_normal((persons, dim)).astype(np.float32) @ lb.T + mean
    person = np.repeat(np.arange(persons), counts)

    def photos(centres):
        r = 1 + SPREAD * (2 * rng.random((len(centres), 1)).astype(np.float32) - 1)
        x = centres + r * (rng.standard_normal(centres.shape).astype(np.float32) @ lw.T)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    gallery = np.concatenate([photos(identities[person[i:i + 200_000]]) for i in range(0, n, 200_000)])
    strangers = rng.standard_normal((PROBES // 2, dim)).astype(np.float32) @ lb.T + mean
    probes = np.concatenate([photos(identities[rng.integers(0, persons, PROBES // 2)]), photos(strangers)])
    genuine = np.arange(PROBES // 2)

    flat = faiss.IndexFlatIP(dim)
    flat.add(gallery)
    best, nearest = flat.search(probes, 1)
    print(f"{n} faces, {persons} persons; best cosine genuine {best[genuine, 0].mean():.3f}, "
          f"strangers {best[PROBES // 2:, 0].mean():.3f}; exact known/unknown at {THRESHOLD}: "
          f"{(best[:, 0] >= THRESHOLD).mean():.3f} known")
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    t = time.time()
    ivf.train(gallery[rng.choice(n, min(n, nlist * 40), replace=False)])
    ivf.add(gallery)
    print(f"{nlist} lists, trained and filled in {time.time() - t:.1f} s")
    for nprobe in nprobes:
        ivf.nprobe = nprobe
        found, got = ivf.search(probes, 1)
        recall = (person[got[genuine, 0]] == person[nearest[genuine, 0]]).mean()
        agree = ((found[:, 0] >= THRESHOLD) == (best[:, 0] >= THRESHOLD)).mean()
        print(f"lists searched {nprobe} ({nprobe / nlist:.2%} of the gallery): recall@1 {recall:.4f}, "
              f"agreement {agree:.4f}")


if __name__ == "__main__":
    main()
