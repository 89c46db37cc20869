#!/usr/bin/env bash
# A data key rotation survives SIGKILL: a SQLite database of N faces (random
# 512-d embeddings in clear, some with crops) is sealed by `visage data-key
# rotate --to K1`, killed part way and run again; then, with the service
# running on both keys and enrolling, rotated to K2, killed part way and run
# again. Afterwards every embedding and crop is sealed by K2, the database
# lists K2 alone, K1 is refused, and every embedding reads back with K2
# (`visage export --decrypt`). Prints what it measured.
#
#   bash tests/crash/kill9_rotate.sh [N]      (default 30000; VISAGE_BIN overrides the binary)
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
N=${1:-30000}
source "$root/tests/lib/visage.sh"
ensure_bin || exit 2
state=$(mktemp -d)
pid="" rotating=""
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  [ -n "$rotating" ] && kill -KILL "$rotating" 2>/dev/null
  rm -rf "$state"
}
trap cleanup EXIT
fail() { echo "kill9_rotate: $*" >&2; exit 1; }
db="$state/visage.db"
"$VISAGE_BIN" keys list --db "$db" >/dev/null || fail "cannot create the database"
python3 - "$db" "$N" <<'PY' || fail "cannot fill the database"
import json, os, random, sqlite3, struct, sys
db, n = sys.argv[1], int(sys.argv[2])
c = sqlite3.connect(db)
now = "2026-12-08T00:00:00Z"
lm = json.dumps([[0.0, 0.0]] * 5)
q = json.dumps({"face_size": 0.0, "eye_distance": 0.0, "sharpness": 0.0})
rows, faces, crops = [], [], []
for i in range(n):
    p, f = os.urandom(16).hex(), os.urandom(16).hex()
    rows.append((p, f"person {i}", now, now))
    e = struct.pack("<512f", *(random.uniform(-0.05, 0.05) for _ in range(512)))
    faces.append((f, p, e, "synthetic@sha256:0", lm, q, now))
    if i % 10 == 0:
        crops.append((f, b"\x89PNG\r\n\x1a\n" + os.urandom(2000), lm, now))
c.executemany("INSERT INTO persons (id, name, created_at, updated_at) VALUES (?, ?, ?, ?)", rows)
c.executemany("INSERT INTO faces (id, person_id, embedding, model, box_x, box_y, box_width, box_height, landmarks, "
              "score, quality, created_at) VALUES (?, ?, ?, ?, 0, 0, 0, 0, ?, 0, ?, ?)", faces)
c.executemany("INSERT INTO face_crops (face_id, image, landmarks, created_at) VALUES (?, ?, ?, ?)", crops)
c.commit()
PY
key_id() { "$VISAGE_BIN" data-key generate "$1" 2>&1 | grep -o 'data key [0-9a-f]*' | cut -d' ' -f3; }
k1=$(key_id "$state/k1"); k2=$(key_id "$state/k2")
[ -n "$k1" ] && [ -n "$k2" ] || fail "data-key generate failed"
# Values sealed by the key with this id: embeddings, crops.
sealed_by() {
  db_sql "$db" "SELECT (SELECT COUNT(*) FROM faces WHERE lower(hex(substr(embedding, 1, 11))) = 'f55601' || '$1'),
                       (SELECT COUNT(*) FROM face_crops WHERE lower(hex(substr(image, 1, 11))) = 'f55601' || '$1')"
}
total=$(db_sql "$db" "SELECT (SELECT COUNT(*) FROM faces) || '|' || (SELECT COUNT(*) FROM face_crops)")

some_sealed_by() {
  [ "$(db_sql "$db" "SELECT COUNT(*) FROM faces WHERE lower(hex(substr(embedding, 1, 11))) = 'f55601$1'")" -gt 0 ]
}

# rotate_killed TO ID [ARGS]: starts the rotation, kills it once it has resealed
# some values, checks that it stopped part way, runs it again to the end.
rotate_killed() {
  local to=$1 id=$2; shift 2
  "$VISAGE_BIN" data-key rotate --to "$to" --db "$db" "$@" >"$state/rotate.log" 2>&1 &
  rotating=$!
  eventually 60 some_sealed_by "$id" || fail "no value was resealed: $(cat "$state/rotate.log")"
  kill -KILL "$rotating"; wait "$rotating" 2>/dev/null; rotating=""
  local part; part=$(sealed_by "$id")
  [ "$part" != "$total" ] || fail "the rotation to $id finished before the kill: raise N"
  local start; start=$(date +%s%N)
  "$VISAGE_BIN" data-key rotate --to "$to" --db "$db" "$@" 2>"$state/rotate.log" \
    || fail "the rotation did not finish after the kill: $(cat "$state/rotate.log")"
  local after; after=$(sealed_by "$id")
  [ "$after" = "$total" ] || fail "after the second run $after of $total are sealed by $id"
  echo "rotation to $id: killed with $part (faces|crops) of $total resealed; run again, done in" \
    "$(( ($(date +%s%N) - start) / 1000000 )) ms: $(tail -1 "$state/rotate.log")"
}

rotate_killed "$state/k1" "$k1"
[ "$(db_sql "$db" "SELECT group_concat(id) FROM data_keys")" = "$k1" ] || fail "K1 is not the only key listed"

port=$(free_port)
start_visage "$port" "$state/server.log" --db "$db" --data-key-file "$state/k2" \
  --previous-data-key-file "$state/k1" --keep-crops || fail "the service did not start on both keys"
pid=$SERVER_PID
curl -sf -F image=@tests/data/obama.jpg -F name=Obama "http://127.0.0.1:$port/v1/enroll" >/dev/null \
  || fail "enroll during the rotation failed"
total=$(db_sql "$db" "SELECT (SELECT COUNT(*) FROM faces) || '|' || (SELECT COUNT(*) FROM face_crops)")
rotate_killed "$state/k2" "$k2" --data-key-file "$state/k1"
kill -TERM "$pid"; wait "$pid" 2>/dev/null; pid=""

[ "$(db_sql "$db" "SELECT group_concat(id) FROM data_keys")" = "$k2" ] || fail "K2 is not the only key listed"
if "$VISAGE_BIN" export --db "$db" --data-key-file "$state/k1" -o "$state/x.jsonl" 2>"$state/old.log"; then
  fail "the retired key K1 still opens the database"
fi
grep -q "not this database's" "$state/old.log" || fail "K1 refused without saying why: $(cat "$state/old.log")"
"$VISAGE_BIN" export --decrypt --db "$db" --data-key-file "$state/k2" -o "$state/x.jsonl" 2>"$state/export.log" \
  || fail "export with K2 failed: $(cat "$state/export.log")"
faces=$(grep -o '"embedding":\[' "$state/x.jsonl" | wc -l)
[ "$faces" = "${total%|*}" ] || fail "$faces of ${total%|*} embeddings read back with K2"
echo "every one of $faces embeddings reads back with K2; K1 refused; $(cat "$state/export.log")"
