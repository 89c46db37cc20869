#!/usr/bin/env bash
# Crash safety: enrollments from 4 concurrent clients, the server killed with
# SIGKILL mid-way, restarted on the same database. Every enrollment answered
# 201 before the kill must be there, complete (person + its face); no person
# may exist without a face (nothing partial); PRAGMA integrity_check is ok.
# Enrollments in flight at the kill may or may not have committed; either way
# they must be complete. Prints one line per run.
#
#   bash tests/crash/kill9.sh [RUNS]      (default 3; VISAGE_BIN overrides the binary)
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
RUNS=${1:-3}
source "$root/tests/lib/visage.sh"
ensure_bin || exit 2
photos=(tests/data/obama.jpg tests/data/obama2.jpg tests/data/obama3.jpg tests/data/biden.jpg)
failed=0
pid=""
loops=()
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  for l in "${loops[@]}"; do kill "$l" 2>/dev/null; done
}
trap cleanup EXIT

start() {
  start_visage "$port" "$state/server.log" --db "$state/visage.db"
  local rc=$?
  pid=$SERVER_PID
  return $rc
}

for run in $(seq 1 "$RUNS"); do
  state=$(mktemp -d)
  port=$(free_port)
  base="http://127.0.0.1:$port"
  start || exit 1
  loops=()
  for w in 1 2 3 4; do
    (
      i=0
      while true; do
        i=$((i + 1))
        out="$state/resp.$w.$i"
        code=$(curl -s -o "$out" -w '%{http_code}' -F "image=@${photos[$(( (w + i) % 4 ))]}" \
          -F "name=run $run client $w #$i" "$base/v1/enroll" 2>/dev/null)
        if [ "$code" = 201 ]; then
          jq -r '"\(.person_id) \(.face.id)"' "$out" >>"$state/acked.$w"
        fi
      done
    ) &
    loops+=($!)
  done
  sleep "$(python3 -c "import random; print(round(random.uniform(2.0, 4.0), 2))")"
  kill -KILL "$pid"
  wait "$pid" 2>/dev/null
  for l in "${loops[@]}"; do kill "$l" 2>/dev/null; wait "$l" 2>/dev/null; done
  loops=()
  cat "$state"/acked.* >"$state/acked" 2>/dev/null || : >"$state/acked"
  start || exit 1
  acked=$(wc -l <"$state/acked")
  present=0
  while read -r person face; do
    faces=$(curl -sf "$base/v1/persons/$person" | jq -r '[.faces[].id] | join(" ")')
    [ "$faces" = "$face" ] && present=$((present + 1))
  done <"$state/acked"
  curl -sf "$base/v1/persons?limit=1000" >"$state/persons.json"
  total=$(jq '.persons | length' "$state/persons.json")
  partial=$(jq '[.persons[] | select(.face_count != 1)] | length' "$state/persons.json")
  kill -TERM "$pid"; wait "$pid" 2>/dev/null; pid=""
  integrity=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA integrity_check').fetchone()[0])" "$state/visage.db")
  echo "run $run: acknowledged $acked, present $present, persons after restart $total (in flight at the kill: $((total - present))), partial $partial, integrity $integrity"
  if [ "$present" != "$acked" ] || [ "$partial" != 0 ] || [ "$integrity" != ok ] || [ "$acked" = 0 ]; then
    failed=$((failed + 1))
    tail -5 "$state/server.log" >&2
  fi
  rm -rf "$state"
done
[ "$failed" -eq 0 ] && echo "kill -9: $RUNS runs, all acknowledged enrollments present" || { echo "kill -9: $failed of $RUNS runs failed"; exit 1; }
