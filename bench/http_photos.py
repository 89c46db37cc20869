#!/usr/bin/env python3
"""Sequential keep-alive client: POSTs each photo once (raw image/jpeg) to
URL and prints the mean milliseconds a photo and the faces embedded a photo
as JSON, after `--warmup` photos not counted. Not part of the product.

    python3 bench/http_photos.py http://127.0.0.1:PORT/v1/embed photo.jpg [...]
"""
import argparse
import http.client
import json
import time
import urllib.parse
from pathlib import Path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("images", nargs="+")
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args()
    u = urllib.parse.urlsplit(args.url)
    conn = http.client.HTTPConnection(u.hostname, u.port)
    bodies = [Path(p).read_bytes() for p in args.images]
    failed = faces = 0
    for body in bodies[: args.warmup]:
        conn.request("POST", u.path, body, {"Content-Type": "image/jpeg"})
        conn.getresponse().read()
    start = time.perf_counter()
    for body in bodies:
        conn.request("POST", u.path, body, {"Content-Type": "image/jpeg"})
        r = conn.getresponse()
        answer = r.read()
        failed += r.status != 200
        if r.status == 200:
            faces += len(json.loads(answer).get("faces", []))
    ms = (time.perf_counter() - start) * 1000 / len(bodies)
    print(json.dumps({"photos": len(bodies), "ms_per_photo": ms, "faces_per_photo": faces / len(bodies), "non_200": failed}))


if __name__ == "__main__":
    main()
