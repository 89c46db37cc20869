#!/usr/bin/env bash
# Access control as an operator meets it: a key made with `visage keys create`
# while the server runs closes the API (at once on SQLite, within a second on
# PostgreSQL, where the service follows the change log); scopes give 403;
# health stays open.
set -euo pipefail
: "${BASE:?}" "${VISAGE_BIN:?}" "${STATE_DIR:?}"
source "$(dirname "$0")/lib.sh"

db="${DB:?}"
admin=$("$VISAGE_BIN" keys create --scope admin --name ops --quiet --db "$db")
matcher=$("$VISAGE_BIN" keys create --scope match --name kiosk --quiet --db "$db")

curl --fail -s "$BASE/healthz" >/dev/null
closed() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/v1/info")" = 401 ]; }
source "$(dirname "$0")/../lib/visage.sh"
eventually 2 closed
expect_status 401 "$BASE/v1/info"
jq -e '.error.code == "unauthorized"' "$BODY_FILE" >/dev/null
curl --fail -s -H "Authorization: Bearer $matcher" "$BASE/v1/info" | jq -e '.models.embedder' >/dev/null
expect_status 403 -H "Authorization: Bearer $matcher" "$BASE/v1/keys"
jq -e '.error.code == "forbidden"' "$BODY_FILE" >/dev/null
# The admin sees both keys (never their secrets) and the audit trail names the CLI.
curl --fail -s -H "Authorization: Bearer $admin" "$BASE/v1/keys" > "$STATE_DIR/keys.json"
jq -e '.keys | length == 2' "$STATE_DIR/keys.json" >/dev/null
secret=${matcher#vsk_*_}
if grep -qF -- "$secret" "$STATE_DIR/keys.json"; then echo "a key secret is listed" >&2; exit 1; fi
curl --fail -s -H "Authorization: Bearer $admin" "$BASE/v1/audit" \
  | jq -e '[.entries[] | select(.action == "create_key" and .actor == "cli")] | length == 2' >/dev/null
# Revoked over HTTP: refused from then on.
id=$(echo "$matcher" | cut -d_ -f2)
expect_status 204 -X DELETE -H "Authorization: Bearer $admin" "$BASE/v1/keys/$id"
expect_status 401 -H "Authorization: Bearer $matcher" "$BASE/v1/info"
