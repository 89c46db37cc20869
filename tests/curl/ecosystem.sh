#!/usr/bin/env bash
# The service's documents, checked with the ecosystem's own tools: the
# OpenAPI document with openapi-spec-validator, the docs page and its assets.
set -euo pipefail
: "${BASE:?}" "${STATE_DIR:?}" "${VISAGE_BIN:?}"
source "$(dirname "$0")/lib.sh"
py=${TEST_PYTHON:-$(cd "$(dirname "$0")/../.." && pwd)/target/test-venv/bin/python}
[ -x "$py" ] || { echo "no $py: run \`make test-venv\`" >&2; exit 1; }

# OpenAPI: served, valid 3.1, the same as `visage openapi` prints.
curl -sf "$BASE/openapi.json" -o "$STATE_DIR/openapi.json"
jq -e '.openapi == "3.1.0" and (.paths | length) >= 19' "$STATE_DIR/openapi.json" >/dev/null
"$py" -m openapi_spec_validator "$STATE_DIR/openapi.json"
"$VISAGE_BIN" openapi | jq -S . > "$STATE_DIR/openapi.cli.json"
jq -S . "$STATE_DIR/openapi.json" | diff -q - "$STATE_DIR/openapi.cli.json" >/dev/null
# Every operation documents its errors with the common shape.
jq -e '[.paths[][] | select(.operationId == "verify")][0].responses["404"].content["application/json"].examples.person_not_found.value.error.code == "person_not_found"' \
  "$STATE_DIR/openapi.json" >/dev/null

# The docs page and everything it loads come from this service.
expect_status 200 "$BASE/docs"
grep -q 'swagger-ui-bundle.js' "$BODY_FILE"
for asset in $(grep -o '/assets/[A-Za-z0-9._-]*' "$BODY_FILE"); do
  expect_status 200 "$BASE$asset"
done
! grep -Eq 'https?://' "$BODY_FILE"
