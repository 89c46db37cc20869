#!/usr/bin/env bash
# The admin commands end to end on the real binary: enroll-dir (resumable,
# reasons for skipped photos), export / import (refusing another model's
# embeddings), persons list|show|delete, reembed (with and without photos,
# beside the old embeddings, switched and back), gallery models|changes|switch|prune,
# faces import (unassigned and by folder, resumable), clusters, persons merge.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
source tests/lib/visage.sh
ensure_bin
v() { "$VISAGE_BIN" "$@" 2>>"$work/log"; }
work=$(mktemp -d)
trap 'store_cleanup; rm -rf "$work"' EXIT
store_init
fail() { echo "FAIL: $*" >&2; tail -20 "$work/log" >&2; exit 1; }
export RUST_LOG=warn,tract_onnx=error

photos="$work/photos"
mkdir -p "$photos/Barack_Obama" "$photos/Joe_Biden" "$photos/Nobody"
cp tests/data/obama.jpg tests/data/obama2.jpg tests/data/obama3.jpg "$photos/Barack_Obama/"
cp tests/data/biden.jpg "$photos/Joe_Biden/"
head -c 5000 /dev/urandom > "$photos/Joe_Biden/broken.jpg"
printf 'not a photo' > "$photos/Nobody/notes.txt"   # not an image extension: ignored
db=$(new_db "$work/a.db")
db_b=$(new_db "$work/b.db")
db_c=$(new_db "$work/c.db")

# enroll-dir: 4 faces, 1 skipped with its reason; a second run enrolls nothing new.
v enroll-dir "$photos" --db "$db" > "$work/run1.json"
jq -e '.enrolled == 4 and .persons_created == 2 and .photos == 5 and .skipped_by_reason.invalid_image == 1
       and (.skipped[0].path | endswith("broken.jpg"))' "$work/run1.json" >/dev/null || fail "first run: $(cat "$work/run1.json")"
v enroll-dir "$photos" --db "$db" > "$work/run2.json"
jq -e '.enrolled == 0 and .already_enrolled == 4 and .persons_created == 0 and .persons_existing == 2' \
  "$work/run2.json" >/dev/null || fail "resume: $(cat "$work/run2.json")"
cp tests/data/obama_partial_face.jpg "$photos/Barack_Obama/"
v enroll-dir "$photos" --db "$db" --face largest > "$work/run3.json"
jq -e '.enrolled + (.skipped | length) == 2 and .already_enrolled == 4' "$work/run3.json" >/dev/null \
  || fail "new photo: $(cat "$work/run3.json")"

# persons list / show.
v persons list --db "$db" > "$work/persons.jsonl"
[ "$(wc -l < "$work/persons.jsonl")" -eq 2 ] || fail "persons list: $(cat "$work/persons.jsonl")"
obama=$(jq -r 'select(.name == "Barack Obama") | .id' "$work/persons.jsonl")
v persons show "$obama" --db "$db" | jq -e '.name == "Barack Obama" and (.faces | length) >= 3
  and (.faces[0] | has("embedding") | not) and .metadata.folder == "Barack_Obama"' >/dev/null || fail "persons show"

# export, import into a fresh database (ids kept), import again (nothing new).
v export --db "$db" --out "$work/export.jsonl"
[ "$(head -1 "$work/export.jsonl" | jq -r .format)" = visage-export ] || fail "export header"
jq -e -s '[.[1:][].faces[]] | length > 0 and all((.embedding | length) == 256 and (.model | startswith("sface+dlib@")))' \
  "$work/export.jsonl" >/dev/null || fail "export embeddings"
v import "$work/export.jsonl" --db "$db_b" | jq -e '.persons_imported == 2' >/dev/null || fail "import"
v import "$work/export.jsonl" --db "$db_b" | jq -e '.persons_imported == 0 and .persons_already_present == 2' \
  >/dev/null || fail "import again"
v persons show "$obama" --db "$db_b" | jq -e '.name == "Barack Obama"' >/dev/null || fail "imported person"

# Another model's embeddings are refused, and nothing is written.
sed 's/"model":"sface[^"]*"/"model":"arcface-r100@sha256:00"/g' "$work/export.jsonl" > "$work/other.jsonl"
if v import "$work/other.jsonl" --db "$db_c"; then fail "imported another model's embeddings"; fi
grep -q "refusing to import" "$work/log" || fail "no reason given for the refusal"
[ "$(v persons list --db "$db_c" | wc -l)" -eq 0 ] || fail "a refused import wrote persons"

# reembed: pretend the faces came from an old embedder.
db_sql "$db" "UPDATE faces SET model = 'old-embedder@sha256:00'"
set +e
v reembed --db "$db" > "$work/re1.json"; rc=$?
set -e
[ "$rc" -eq 3 ] || fail "reembed without photos exited $rc, expected 3"
jq -e '.reembedded == 0 and (.needs_new_photos | length) == 2' "$work/re1.json" >/dev/null || fail "re1: $(cat "$work/re1.json")"
v reembed --db "$db" --photos "$photos" > "$work/re2.json"
jq -e '.reembedded == .faces_to_reembed and .faces_to_reembed >= 4 and .needs_new_photos == []' "$work/re2.json" \
  >/dev/null || fail "re2: $(cat "$work/re2.json")"
v reembed --db "$db" | jq -e '.faces_to_reembed == 0' >/dev/null || fail "re3"
# Moving the gallery to another embedder and back: the new embeddings are
# made beside the old, then the switch makes them every face's own.
v reembed --db "$db" --photos "$photos" --to sface --switch > "$work/to_sface.json" || fail "reembed to sface"
jq -e '.faces_to_reembed >= 4 and .reembedded == .faces_to_reembed and .switched.done and .switched.switched >= 4' \
  "$work/to_sface.json" >/dev/null || fail "reembed to sface: $(cat "$work/to_sface.json")"
v export --db "$db" | jq -e -s '[.[1:][].faces[]] | all((.embedding | length) == 128 and (.model | startswith("sface-2021dec")))' \
  >/dev/null || fail "the gallery is not on sface"
# Back: the default's embeddings are still there (nothing to embed), the switch undoes the move.
v reembed --db "$db" --switch > "$work/back.json" || fail "reembed back"
jq -e '.faces_to_reembed == 0 and .switched.switched >= 4 and .changes.faces >= 4' "$work/back.json" >/dev/null \
  || fail "reembed back to the default: $(cat "$work/back.json")"
v export --db "$db" | jq -e -s '[.[1:][].faces[]] | all((.embedding | length) == 256 and (.model | startswith("sface+dlib")))' \
  >/dev/null || fail "the gallery is not back on the default"

# --keep-crops: a move to another embedder needs no photos.
db_k=$(new_db "$work/k.db")
v enroll-dir "$photos" --db "$db_k" --keep-crops > /dev/null
v reembed --db "$db_k" --embedder sface > "$work/rk.json" || fail "reembed from crops: $(cat "$work/rk.json")"
jq -e '.faces_to_reembed >= 4 and .reembedded == .faces_to_reembed and .from_crops == .reembedded
       and .needs_new_photos == []' "$work/rk.json" >/dev/null || fail "reembed from crops: $(cat "$work/rk.json")"
# The faces embedded from their crops agree with each other as the photos' would.
v gallery doctor --db "$db_k" --embedder sface --json > "$work/dk.json" || fail "doctor after the move: $(cat "$work/dk.json")"
jq -e '.counts.other_model == 0 and .counts.disagreeing_faces == 0 and .faces >= 4' "$work/dk.json" >/dev/null \
  || fail "doctor after the move: $(cat "$work/dk.json")"
# The models, the answers a switch would change, the switch, pruning.
v gallery models --db "$db_k" --json | jq -e '.faces >= 4 and .faces_without_serving_model == 0
  and ([.models[] | select(.embedder == "sface-2021dec-int8bq") | .beside] == [.faces])' >/dev/null || fail "gallery models"
v gallery changes --db "$db_k" --to sface --json | jq -e '.faces >= 4 and .complete and .from.embedder == "sface+dlib"' \
  >/dev/null || fail "gallery changes"
v gallery switch sface --db "$db_k" | grep -q "faces switched to sface" || fail "gallery switch"
if v gallery prune --db "$db_k"; then fail "pruned the embeddings the configured embedder compares by"; fi
grep -q "switch to it first" "$work/log" || fail "no reason given for refusing the prune"
v gallery switch sface+dlib --db "$db_k" >/dev/null || fail "switch back"
v gallery prune --db "$db_k" --json | jq -e '. >= 4' >/dev/null || fail "prune"
v gallery models --db "$db_k" --json | jq -e '[.models[].embedder] == ["sface+dlib"]' >/dev/null || fail "models after pruning"

# calibrate: the report on this gallery, with the flags serve takes.
v calibrate --db "$db" --json > "$work/calibration.json"
jq -e '.gallery.persons == 2 and .gallery.persons_with_two_or_more_faces == 1 and .verify.gallery.frr.pairs >= 3
       and .reference.impostor_pairs > 1000000 and .identify.gallery_leave_one_out.probes >= 4' \
  "$work/calibration.json" >/dev/null || fail "calibrate: $(cat "$work/calibration.json")"
far4=$(jq -r '.verify.targets[] | select(.far == 0.0001) | .threshold' "$work/calibration.json")
v calibrate --db "$db" --verify-far 1e-4 --json | jq -e --argjson t "$far4" '.verify.threshold == $t and .verify.rule.far == 0.0001' \
  >/dev/null || fail "calibrate --verify-far"
v calibrate --db "$db" | grep -q "^1:1 (verify, compare): threshold" || fail "calibrate's text"

# gallery doctor: clean, then Biden's photo filed under Obama is found (exit code 4).
v gallery doctor --db "$db" --json > "$work/doctor0.json" || fail "doctor on a clean gallery: $(cat "$work/doctor0.json")"
mkdir -p "$work/misfiled/Barack_Obama" && cp tests/data/biden.jpg "$work/misfiled/Barack_Obama/"
v enroll-dir "$work/misfiled" --db "$db" >/dev/null
set +e; v gallery doctor --db "$db" --json > "$work/doctor1.json"; rc=$?; set -e
[ "$rc" -eq 4 ] || fail "doctor exited $rc, expected 4"
jq -e --arg o "$obama" '.counts.disagreeing_faces == 1 and .disagreeing_faces[0].person_id == $o
       and .disagreeing_faces[0].name == "Barack Obama" and .complete' "$work/doctor1.json" >/dev/null \
  || fail "doctor: $(cat "$work/doctor1.json")"
set +e; v gallery doctor --db "$db" > "$work/doctor.txt"; set -e
grep -q "^1 faces disagree with their own person" "$work/doctor.txt" || fail "doctor's text: $(cat "$work/doctor.txt")"

# faces import --unassigned: each photo's faces kept without a person, its
# path the external id; resumable; clusters lists Obama's three photos as one.
library="$work/library"
mkdir -p "$library/2019" "$library/2020" "$library/people/Barack_Obama" "$library/people/Obama_again"
cp tests/data/obama.jpg tests/data/biden.jpg "$library/2019/"
db_d=$(new_db "$work/d.db")
v faces import "$library" --unassigned --db "$db_d" >/dev/null
cp tests/data/obama2.jpg tests/data/obama3.jpg "$library/2020/"
head -c 5000 /dev/urandom > "$library/2020/broken.jpg"
v faces import "$library" --unassigned --db "$db_d" > "$work/faces1.json"
jq -e '.imported == 2 and .already_imported == 2 and .faces_kept == 2 and .skipped_by_reason.invalid_image == 1' \
  "$work/faces1.json" >/dev/null || fail "faces import: $(cat "$work/faces1.json")"
v clusters --db "$db_d" --json > "$work/clusters.json"
jq -e '(.clusters | length) == 1 and .clusters[0].size == 3 and ([.clusters[0].faces[].external_id] | sort)
       == ["2019/obama.jpg", "2020/obama2.jpg", "2020/obama3.jpg"]' "$work/clusters.json" >/dev/null \
  || fail "clusters: $(cat "$work/clusters.json")"
v clusters --db "$db_d" --min-size 1 | grep -q "^cluster .*: 1 faces" || fail "clusters --min-size 1 lists no single face"
# Without --unassigned the first folder names the person; persons merge joins two.
cp tests/data/obama.jpg "$library/people/Barack_Obama/"
cp tests/data/obama2.jpg "$library/people/Obama_again/"
db_e=$(new_db "$work/e.db")
v faces import "$library/people" --db "$db_e" >/dev/null
v persons list --db "$db_e" > "$work/people.jsonl"
keep=$(jq -r 'select(.name == "Barack Obama") | .id' "$work/people.jsonl")
again=$(jq -r 'select(.name == "Obama again") | .id' "$work/people.jsonl")
[ -n "$keep" ] && [ -n "$again" ] || fail "faces import by folder: $(cat "$work/people.jsonl")"
if v persons merge "$keep" "$keep" --db "$db_e"; then fail "a person was merged into itself"; fi
v persons merge "$keep" "$again" --db "$db_e" || fail "persons merge"
v persons show "$keep" --db "$db_e" | jq -e '(.faces | length) == 2' >/dev/null || fail "merged faces"
if v persons show "$again" --db "$db_e" >/dev/null; then fail "the merged person still exists"; fi

# A running service sees the admin commands' changes after SIGHUP.
port=$(free_port)
start_visage "$port" "$work/log" --db "$db" || fail "the server did not start"
server=$SERVER_PID
trap 'kill "$server" 2>/dev/null || true; store_cleanup; rm -rf "$work"' EXIT
who() { curl -sf -F image=@tests/data/obama2.jpg "http://127.0.0.1:$port/v1/identify" | jq -r '.faces[0].status'; }
[ "$(who)" = identified ] || fail "the served gallery does not know the enrolled person"
v persons delete "$obama" --db "$db"
if v persons show "$obama" --db "$db" >/dev/null; then fail "deleted person still shown"; fi
if [ -z "$PG_DIR" ]; then
  [ "$(who)" = identified ] || fail "expected the running gallery to be stale before SIGHUP"
  kill -HUP "$server"
  for _ in $(seq 1 50); do [ "$(who)" = unknown ] && break; sleep 0.1; done
  [ "$(who)" = unknown ] || fail "SIGHUP did not reload the gallery"
else
  # On PostgreSQL the service follows the change log: no SIGHUP needed.
  for _ in $(seq 1 40); do [ "$(who)" = unknown ] && break; sleep 0.05; done
  [ "$(who)" = unknown ] || fail "the service did not follow the deletion"
fi
kill -TERM "$server"; wait "$server" || fail "the server did not stop cleanly"
echo "ok   cli/admin.sh (enroll-dir, export, import, persons, faces import, clusters, persons merge, reembed (from photos and from kept crops, switch and back), gallery models/changes/switch/prune, calibrate, gallery doctor, SIGHUP reload; store: ${VISAGE_TEST_STORE:-sqlite})"
