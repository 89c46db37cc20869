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

# Prometheus metrics, parsed with the reference Python client's parser.
curl -sf "$BASE/metrics" -o "$STATE_DIR/metrics.txt"
"$py" - "$STATE_DIR/metrics.txt" <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families

families = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
for name in ["visage_http_requests", "visage_http_request_duration_seconds", "visage_stage_duration_seconds",
             "visage_faces_per_photo", "visage_inference_queue_depth", "visage_inference_rejected",
             "visage_gallery_faces", "visage_gallery_persons"]:
    assert name in families, f"{name} missing from {sorted(families)}"
detect = [s for s in families["visage_http_requests"].samples
          if s.labels.get("route") == "/v1/detect" and s.name.endswith("_total")]
assert detect and sum(s.value for s in detect) >= 1, detect
assert families["visage_http_request_duration_seconds"].type == "histogram"
PY
