#!/usr/bin/env python3
"""How fast replicas follow each other: enrollments acknowledged by replica A
(its 201) until replica B's gallery holds them (B's /v1/info face count), and
keys revoked on A (its 204) until B refuses them (401). Prints p50/p99/max.

    bench/replicas.py A_URL B_URL PHOTO ENROLLMENTS REVOCATIONS   (KEY: an admin key)
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request

A, B, PHOTO, N, M = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
ADMIN = os.environ["KEY"]
TIMEOUT = 10.0


def call(method, url, body=None, ctype=None, key=ADMIN):
    req = urllib.request.Request(url, data=body, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    if ctype:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def faces(base):
    status, body = call("GET", f"{base}/v1/info")
    assert status == 200, body
    return json.loads(body)["gallery"]["faces"]


def wait_for(predicate):
    start = time.perf_counter()
    while not predicate():
        if time.perf_counter() - start > TIMEOUT:
            raise SystemExit("not propagated within 10 s")
        time.sleep(0.002)


def summary(label, seconds):
    s = sorted(x * 1000 for x in seconds)
    pick = lambda q: s[min(len(s) - 1, int(round(q * (len(s) - 1))))]
    print(f"{label:<44} n={len(s):<4} p50 {pick(0.5):7.1f} ms   p99 {pick(0.99):7.1f} ms   max {s[-1]:7.1f} ms")


photo = open(PHOTO, "rb").read()
enrolled = []
base = faces(B)
for i in range(N):
    status, body = call("POST", f"{A}/v1/enroll?name=propagation%20{i}", photo, "image/jpeg")
    assert status == 201, body
    acked = time.perf_counter()
    wait_for(lambda: faces(B) >= base + i + 1)
    enrolled.append(time.perf_counter() - acked)
summary("enrollment on A -> in B's gallery", enrolled)

revoked = []
for i in range(M):
    status, body = call("POST", f"{A}/v1/keys", json.dumps({"name": f"k{i}", "scope": "match"}).encode(), "application/json")
    assert status == 201, body
    key = json.loads(body)
    works = lambda: call("GET", f"{B}/v1/info", key=key["key"])[0] == 200
    wait_for(works)
    status, body = call("DELETE", f"{A}/v1/keys/{key['id']}")
    assert status == 204, body
    acked = time.perf_counter()
    wait_for(lambda: call("GET", f"{B}/v1/info", key=key["key"])[0] == 401)
    revoked.append(time.perf_counter() - acked)
summary("key revoked on A -> refused by B", revoked)
