#!/usr/bin/env bash
# Bad requests get the documented status and a stable JSON error code.
set -euo pipefail
: "${BASE:?}" "${DATA:?}"
source "$(dirname "$0")/lib.sh"

expect_error 415 unsupported_media_type -H 'Content-Type: text/plain' --data 'hello' "$BASE/v1/detect"
expect_error 400 missing_image -H 'Content-Type: image/jpeg' --data-binary '' "$BASE/v1/detect"
head -c 4096 /dev/urandom > "$STATE_DIR/garbage.bin"
expect_error 422 invalid_image -H 'Content-Type: image/jpeg' --data-binary @"$STATE_DIR/garbage.bin" "$BASE/v1/detect"
expect_error 400 invalid_base64 -H 'Content-Type: application/json' --data '{"image":"%%%"}' "$BASE/v1/detect"
expect_error 400 invalid_json -H 'Content-Type: application/json' --data '{"image":' "$BASE/v1/detect"
expect_error 404 person_not_found -F image=@"$DATA/obama.jpg" -F person_id=0123456789abcdef0123456789abcdef "$BASE/v1/verify"
expect_error 400 invalid_parameter -F image=@"$DATA/obama.jpg" -F top_k=0 "$BASE/v1/identify"
expect_error 404 not_found "$BASE/v1/nothing-here"
expect_status 200 "$BASE/healthz"
expect_status 200 "$BASE/readyz"
