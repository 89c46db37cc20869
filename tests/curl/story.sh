#!/usr/bin/env bash
# The user story: enroll one photo, verify, identify, delete.
set -euo pipefail
: "${BASE:?}" "${DATA:?}"
source "$(dirname "$0")/lib.sh"

# The models run on the backend the server was started with (VISAGE_BACKEND).
curl --fail -s "$BASE/v1/info" | jq -e --arg b "${VISAGE_BACKEND:-tract}" '.models.backend == $b' >/dev/null

obama=$(curl --fail -s -F image=@"$DATA/obama.jpg" -F name="Barack Obama" "$BASE/v1/enroll" | jq -er .person_id)

curl --fail -s -F image=@"$DATA/obama2.jpg" -F person_id="$obama" "$BASE/v1/verify" \
  | jq -e '.match == true and .similarity >= .threshold' >/dev/null
curl --fail -s -F image=@"$DATA/biden.jpg" -F person_id="$obama" "$BASE/v1/verify" \
  | jq -e '.match == false and .similarity < .threshold' >/dev/null
curl --fail -s -F image=@"$DATA/obama3.jpg" "$BASE/v1/identify" \
  | jq -e --arg p "$obama" '.faces[0].match.person_id == $p and .faces[0].match.name == "Barack Obama"' >/dev/null
curl --fail -s -F image=@"$DATA/biden.jpg" "$BASE/v1/identify" \
  | jq -e '.faces[0].match == null and .faces[0].status == "unknown"' >/dev/null

# Raw body and base64 JSON work as well as multipart.
curl --fail -s -H 'Content-Type: image/jpeg' --data-binary @"$DATA/obama2.jpg" "$BASE/v1/verify?person_id=$obama" \
  | jq -e '.match == true' >/dev/null
base64 -w0 "$DATA/obama.jpg" > "$STATE_DIR/a.b64"
base64 -w0 "$DATA/obama2.jpg" > "$STATE_DIR/b.b64"
jq -n --rawfile a "$STATE_DIR/a.b64" --rawfile b "$STATE_DIR/b.b64" '{image_a: $a, image_b: $b}' \
  | curl --fail -s -H 'Content-Type: application/json' --data-binary @- "$BASE/v1/compare" \
  | jq -e '.match == true' >/dev/null

curl --fail -s -o /dev/null -X DELETE "$BASE/v1/persons/$obama"
curl --fail -s -F image=@"$DATA/obama3.jpg" "$BASE/v1/identify" | jq -e '.faces[0].status == "unknown"' >/dev/null
expect_error 404 person_not_found "$BASE/v1/persons/$obama"

# Someone to find again after the restart.
biden=$(curl --fail -s -F image=@"$DATA/biden.jpg" -F name="Joe Biden" "$BASE/v1/enroll" | jq -er .person_id)
echo "$biden" > "$STATE_DIR/biden_id"
echo "$obama" > "$STATE_DIR/obama_id"
