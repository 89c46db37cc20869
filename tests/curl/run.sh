#!/usr/bin/env bash
# curl-based integration tests: start the real binary on a free port with a
# fresh database, poll /readyz, run each script (set -e, curl --fail + jq -e),
# restart on the same database, run the after-restart checks, stop the
# server on exit. Prints "N passed, N failed".
#
#   bash tests/curl/run.sh            (VISAGE_BIN overrides the binary)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "curl tests need $tool (make test installs it)" >&2; exit 2; }
done
source "$root/tests/lib/visage.sh"
ensure_bin || exit 2
export DATA="$root/tests/data"
STATE_DIR=$(mktemp -d)
export STATE_DIR
trap 'store_cleanup; rm -rf "$STATE_DIR"' EXIT
store_init || exit 2
# The database the scripts share: a SQLite file, or a PostgreSQL database.
DB=$(new_db "$STATE_DIR/visage.db") || exit 2
export DB
port=$(free_port)
export BASE="http://127.0.0.1:$port"
server_pid=""

start_server() {
  start_visage "$port" "$STATE_DIR/server.log" --db "$DB"
  local rc=$?
  server_pid=$SERVER_PID
  return $rc
}

stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null
  wait "$server_pid" 2>/dev/null
  local rc=$?
  server_pid=""
  return $rc
}

cleanup() {
  [ -n "$server_pid" ] && kill -KILL "$server_pid" 2>/dev/null
  store_cleanup
  rm -rf "$STATE_DIR"
}
trap cleanup EXIT

passed=0
failed=0
run() {
  local name=$1
  if bash "$here/$name"; then
    echo "ok   curl/$name"; passed=$((passed + 1))
  else
    echo "FAIL curl/$name"; failed=$((failed + 1))
  fi
}

start_server || exit 1
run story.sh
run decisions.sh
run errors.sh
run ecosystem.sh
if stop_server; then
  echo "ok   curl/graceful-shutdown (SIGTERM, exit 0)"; passed=$((passed + 1))
else
  echo "FAIL curl/graceful-shutdown"; failed=$((failed + 1))
fi
start_server || exit 1
run after_restart.sh
# Last: keys close the API for anything that would follow.
run auth.sh
stop_server
[ "$failed" -eq 0 ] || { echo "server log:"; tail -30 "$STATE_DIR/server.log"; }
echo "$passed passed, $failed failed (store: ${VISAGE_TEST_STORE:-sqlite})"
[ "$failed" -eq 0 ]
