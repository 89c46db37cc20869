#!/usr/bin/env bash
# The demo page end to end in headless Chromium: installs Chromium and its
# driver with apt when missing (as root), starts the real binary on a free
# port with a fresh database, and drives the page with Selenium (from
# target/test-venv, `make test-venv`). Screenshots go to target/artifacts/.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "the browser test needs chromium and chromium-driver: please install them" >&2
    exit 1
  fi
fi
py="$root/target/test-venv/bin/python"
[ -x "$py" ] || { echo "no $py: run \`make test-venv\`" >&2; exit 1; }
source tests/lib/visage.sh
ensure_bin

state=$(mktemp -d)
port=$(free_port)
start_visage "$port" "$state/server.log" --db "$state/visage.db" --keep-crops || exit 1
server=$SERVER_PID
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$state"' EXIT
mkdir -p target/artifacts
if "$py" tests/browser/ui_test.py "http://127.0.0.1:$port" "$root/tests/data" "$root/target/artifacts"; then
  echo "ok   browser/ui_test.py (screenshots in target/artifacts/)"
else
  echo "FAIL browser/ui_test.py; server log:" >&2
  tail -20 "$state/server.log" >&2
  exit 1
fi
