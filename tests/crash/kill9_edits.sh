#!/usr/bin/env bash
# Crash safety of the gallery's corrections: clients keep unassigned faces,
# name clusters (`POST /v1/clusters/{id}/assign`), merge persons and move
# faces while the server is killed with SIGKILL, then restarted on the same
# database. Every face acknowledged before the kill must still exist, exactly
# once, and belong to exactly one person that exists or be unassigned in a
# cluster; PRAGMA integrity_check is ok; the clusters after the restart hold
# exactly the database's unassigned faces. Prints one line per run.
#
#   bash tests/crash/kill9_edits.sh [RUNS]      (default 3; VISAGE_BIN overrides the binary)
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
RUNS=${1:-3}
source "$root/tests/lib/visage.sh"
ensure_bin || exit 2
photos=(tests/data/obama.jpg tests/data/obama2.jpg tests/data/obama3.jpg tests/data/biden.jpg)
failed=0
pid=""
cleanup() { [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; }
trap cleanup EXIT

start() {
  start_visage "$port" "$state/server.log" --db "$state/visage.db"
  local rc=$?
  pid=$SERVER_PID
  return $rc
}

# Keeps faces without a person and notes the acknowledged ids.
keeper() {
  local i=0 code
  while [ ! -e "$state/stop" ]; do
    i=$((i + 1))
    code=$(curl -s --max-time 30 -o "$state/k.$i" -w '%{http_code}' -F "image=@${photos[$((i % 4))]}" \
      -F "external_id=k$i" "$base/v1/faces" 2>/dev/null)
    [ "$code" = 201 ] && jq -r '.faces[].id' "$state/k.$i" >>"$state/acked"
  done
}

# Names the largest cluster, enrolls a person and merges it into another,
# and moves faces out again, in a loop.
editor() {
  local i=0 cluster code into from face
  while [ ! -e "$state/stop" ]; do
    i=$((i + 1))
    cluster=$(curl -s --max-time 30 "$base/v1/clusters?min_size=1&limit=1" | jq -r '.clusters[0].id // empty')
    [ -n "$cluster" ] && curl -s --max-time 30 -o /dev/null -H 'Content-Type: application/json' \
      -d "{\"name\": \"named $i\"}" "$base/v1/clusters/$cluster/assign"
    code=$(curl -s --max-time 30 -o "$state/e.$i" -w '%{http_code}' -F "image=@${photos[$((i % 4))]}" \
      -F "name=merge $i" "$base/v1/enroll" 2>/dev/null)
    [ "$code" = 201 ] || continue
    jq -r '.face.id' "$state/e.$i" >>"$state/acked"
    from=$(jq -r '.person_id' "$state/e.$i")
    into=$(curl -s --max-time 30 "$base/v1/persons?limit=1" | jq -r '.persons[0].id // empty')
    [ -n "$into" ] && [ "$into" != "$from" ] && curl -s --max-time 30 -o /dev/null \
      -H 'Content-Type: application/json' -d "{\"from\": [\"$from\"]}" "$base/v1/persons/$into/merge"
    face=$(jq -r '.face.id' "$state/e.$i")
    curl -s --max-time 30 -o /dev/null -X PATCH -H 'Content-Type: application/json' \
      -d '{"person_id": null}' "$base/v1/faces/$face"
  done
}

for run in $(seq 1 "$RUNS"); do
  state=$(mktemp -d)
  port=$(free_port)
  base="http://127.0.0.1:$port"
  : >"$state/acked"
  start || exit 1
  keeper &
  k=$!
  editor &
  e=$!
  sleep "$(python3 -c "import random; print(round(random.uniform(3.0, 6.0), 2))")"
  kill -KILL "$pid"
  wait "$pid" 2>/dev/null
  # Let each client finish the request under way (the server is gone) before counting.
  touch "$state/stop"
  wait "$k" "$e" 2>/dev/null
  start || exit 1
  acked=$(sort -u "$state/acked" | wc -l)
  clustered=$(curl -sf "$base/v1/clusters?min_size=1&limit=500" | jq '[.clusters[].size] | add // 0')
  kill -TERM "$pid"; wait "$pid" 2>/dev/null; pid=""
  read -r missing orphans integrity faces unassigned < <(python3 - "$state/visage.db" "$state/acked" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
acked = {l.strip() for l in open(sys.argv[2]) if l.strip()}
ids = {r[0] for r in db.execute("SELECT id FROM faces")}
missing = len(acked - ids)
# A face's person exists; an unassigned face is in a cluster (the schema's CHECK also says so).
orphans = db.execute(
    "SELECT COUNT(*) FROM faces f WHERE (f.person_id IS NOT NULL AND NOT EXISTS "
    "(SELECT 1 FROM persons p WHERE p.id = f.person_id)) OR (f.person_id IS NULL AND f.cluster_id IS NULL)"
).fetchone()[0]
integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
faces = db.execute("SELECT COUNT(*) FROM faces").fetchone()[0]
unassigned = db.execute("SELECT COUNT(*) FROM faces WHERE person_id IS NULL").fetchone()[0]
print(missing, orphans, integrity, faces, unassigned)
PY
  )
  echo "run $run: acknowledged faces $acked, missing $missing, faces $faces ($unassigned unassigned, $clustered in clusters after the restart), orphans $orphans, integrity $integrity"
  if [ "$missing" != 0 ] || [ "$orphans" != 0 ] || [ "$integrity" != ok ] || [ "$acked" = 0 ] || [ "$clustered" != "$unassigned" ]; then
    failed=$((failed + 1))
    tail -5 "$state/server.log" >&2
  fi
  rm -rf "$state"
done
[ "$failed" -eq 0 ] && echo "kill -9 during edits: $RUNS runs, every acknowledged face present, each with one owner" || { echo "kill -9 during edits: $failed of $RUNS runs failed"; exit 1; }
