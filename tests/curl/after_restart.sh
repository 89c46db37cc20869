#!/usr/bin/env bash
# Run against a restarted server on the same database: enrollments survived,
# deletions stayed deleted.
set -euo pipefail
: "${BASE:?}" "${DATA:?}" "${STATE_DIR:?}"
source "$(dirname "$0")/lib.sh"

biden=$(cat "$STATE_DIR/biden_id")
obama=$(cat "$STATE_DIR/obama_id")
curl --fail -s "$BASE/v1/info" | jq -e '.gallery.persons == 1 and .gallery.faces == 1' >/dev/null
curl --fail -s "$BASE/v1/persons/$biden" | jq -e '.name == "Joe Biden" and .face_count == 1' >/dev/null
curl --fail -s -F image=@"$DATA/biden.jpg" "$BASE/v1/identify" \
  | jq -e --arg p "$biden" '.faces[0].match.person_id == $p' >/dev/null
expect_error 404 person_not_found "$BASE/v1/persons/$obama"
