#!/usr/bin/env python3
"""Clustering quality as a client sees it: every LFW View 1 photo posted to a
running visage with `POST /v1/faces` (unassigned, external id = the file's
path, in a shuffled order), then the clusters read back with
`GET /v1/clusters?min_size=1`, scored against the folders (the truth) on
the persons of pairsDevTrain.txt and of pairsDevTest.txt separately
(clustered together, as a photo library would be). Not part of the product.

    visage serve --db /tmp/lfw-api.db --insecure-no-auth &
    python3 bench/clustering/through_api.py http://127.0.0.1:8080 ../shared/faces/lfw-view1 [FACE] [SEED]

FACE is `central` (default: LFW's photos are centred on the person the
folder names; `largest` sometimes takes a bystander) or any `face` value of
`POST /v1/faces`. Scores are lfw_clusters.py's (BCubed and pairwise).
"""
import json
import random
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from lfw_clusters import names_of, scores


def post_face(base, path, external_id, face):
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in (("external_id", external_id), ("face", face)):
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="x.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode()
        + path.read_bytes()
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    req = urllib.request.Request(
        f"{base}/v1/faces",
        data=b"".join(parts),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return {"error": json.load(e)["error"]["code"]}


def clusters(base):
    out, cursor = [], ""
    while True:
        with urllib.request.urlopen(f"{base}/v1/clusters?min_size=1&limit=500&cursor={cursor}") as r:
            page = json.load(r)
        out.extend(page["clusters"])
        cursor = page["next_cursor"]
        if not cursor:
            return out


def main():
    base, lfw = sys.argv[1].rstrip("/"), Path(sys.argv[2])
    face = sys.argv[3] if len(sys.argv) > 3 else "central"
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    photos = sorted((lfw / "images").glob("*/*.jpg"))
    random.Random(seed).shuffle(photos)
    truth, refused, start = {}, {}, time.time()
    for i, p in enumerate(photos):
        rel = str(p.relative_to(lfw / "images"))
        answer = post_face(base, p, rel, face)
        for f in answer.get("faces", []):
            truth[f["id"]] = p.parent.name
        if not answer.get("faces"):
            why = answer.get("error") or ",".join(r["reason"] for r in answer.get("refused", [])) or "none"
            refused[why] = refused.get(why, 0) + 1
        if (i + 1) % 500 == 0:
            print(f"{i + 1} photos posted, {time.time() - start:.0f} s", file=sys.stderr)
    took = time.time() - start
    label = {}
    for c in clusters(base):
        for f in c["faces"]:
            label[f["id"]] = c["id"]
    print(f"{len(photos)} photos, {len(truth)} faces kept in {took:.0f} s ({len(photos) / took:.1f} photos/s); "
          f"not kept: {refused}; face={face}, order seed {seed}")
    print(f"{'split':8} {'faces':>6} {'B3 P':>7} {'B3 R':>7} {'B3 F1':>7} {'pair P':>7} {'pair R':>7}")
    for split in ("DevTrain", "DevTest"):
        people = names_of(lfw / f"pairs{split}.txt")
        faces = [f for f, person in truth.items() if person in people]
        r = scores([truth[f] for f in faces], [label.get(f, f) for f in faces])
        print(f"{split:8} {len(faces):6d} " + " ".join(f"{v:7.4f}" for v in r))


if __name__ == "__main__":
    main()
