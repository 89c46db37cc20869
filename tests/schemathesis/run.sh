#!/usr/bin/env bash
# The OpenAPI document against the running service, checked independently:
# schemathesis generates requests from /openapi.json (valid and invalid,
# every media type, stateful sequences) with an admin key. It must find no
# server error, no response off the document, no invalid request accepted,
# and no request the document calls valid refused, except the refusals no
# OpenAPI document can rule out, which are listed here and counted:
#   - 422: the photo's content (not an image, no face, too small...), which
#     no schema can state;
#   - a merge into a person just created, from persons that do not exist:
#     the 404 names the absent `from` person, not the created one;
#   - a raw image body without the query parameter the operation needs
#     (verify's `person_id`, enroll's `name` or `person_id`): OpenAPI cannot
#     make a query parameter required for one media type only;
#   - a webhook URL that parses but points where webhooks may not (a
#     loopback or private address, a user and password in it): the document
#     says so in words, a schema cannot.
# The service runs as it would on a network: HTTPS (a certificate this test
# makes), its embeddings sealed with a data key, rate limits on every scope
# and the failed-authentication throttle on (with budgets above what the run
# sends: schemathesis tries invalid keys from the same address as its valid
# requests, and the throttle's own refusals are tested in tests/api/limits.rs).
# Usage: [ST_SEED=N] tests/schemathesis/run.sh [EXAMPLES] (per operation, default 50;
# the seed is fixed unless ST_SEED is given).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
source tests/lib/visage.sh
ensure_bin
examples=${1:-50}
st=$root/target/test-venv/bin/schemathesis
[ -x "$st" ] || { echo "run \`make test-venv\` first" >&2; exit 2; }
state=$(mktemp -d)
trap 'kill "${SERVER_PID:-}" 2>/dev/null || true; rm -rf "$state"' EXIT
"$VISAGE_BIN" keys create --db "$state/visage.db" --name schemathesis --scope admin >"$state/key.txt" 2>&1
key=$(grep -o 'vsk_[A-Za-z0-9_-]*' "$state/key.txt")
command -v openssl >/dev/null || { echo "schemathesis runs over TLS: it needs openssl" >&2; exit 2; }
make_certs "$state" server || { echo "openssl cannot make the certificates" >&2; exit 2; }
"$VISAGE_BIN" data-key generate "$state/data.key" 2>/dev/null
port=$(free_port)
"$VISAGE_BIN" serve --addr "127.0.0.1:$port" --models-dir "$PWD/models" --db "$state/visage.db" \
  --data-key-file "$state/data.key" --keep-crops --tls-cert "$state/server.pem" --tls-key "$state/server.key" \
  --rate-limit match=1000/s,enroll=1000/s,admin=1000/s --auth-failures 100000/m \
  >"$state/server.log" 2>&1 &
SERVER_PID=$!
eventually 30 curl -sf --cacert "$state/ca.pem" "https://127.0.0.1:$port/readyz" \
  || { echo "the service did not start:" >&2; tail -20 "$state/server.log" >&2; exit 1; }
# Run from the temporary folder: schemathesis keeps a cache of the failures
# it found in the working folder and replays them in later runs.
set +e
(cd "$state" && "$st" run "https://127.0.0.1:$port/openapi.json" --tls-verify "$state/ca.pem" \
  -H "Authorization: Bearer $key" --checks all \
  --max-examples "$examples" --seed "${ST_SEED:-20261201}" --generation-database none \
  --report junit --report-dir "$state/report" >"$state/out.txt" 2>&1)
set -e
grep -E 'generated|passed|failures' "$state/out.txt" | tail -3
python3 - "$state"/report/junit*.xml <<'PY'
import re, sys, xml.etree.ElementTree as ET
explained, unexplained = {}, []
for case in ET.parse(sys.argv[1]).iter("testcase"):
    for failure in case:
        if failure.tag not in ("failure", "error"):
            continue
        text = failure.text or ""
        for block in re.split(r"\n(?=\d+\. Test Case ID)", text):
            if "Test Case ID" not in block:
                continue
            status = re.search(r"^\[(\d{3})\]", block, re.M)
            status = int(status.group(1)) if status else None
            raw_body = re.search(r"Content-Type: image/", block) is not None
            if "ST302" in block and "/merge" in block and '"code":"person_not_found"' in block:
                # A merge's 404 names a `from` person that does not exist, not the one just created.
                why = "merge: a `from` person absent"
            elif "ST202" in block and status == 422:
                why = "422: the photo's content"
            elif "ST202" in block and status == 400 and raw_body and (
                '"param":"person_id"' in block or "give a name or a person_id" in block
            ):
                why = "raw body without its query parameter"
            elif "ST202" in block and status == 400 and "/webhooks" in block and '"param":"url"' in block and (
                "private address" in block or "no user or password" in block or "names no host" in block
            ):
                why = "a webhook URL's target"
            else:
                unexplained.append(f"{case.get('name')}:\n{block[:1500]}")
                continue
            explained[why] = explained.get(why, 0) + 1
for why, n in sorted(explained.items()):
    print(f"explained refusals ({why}): {n}")
for u in unexplained:
    print("UNEXPLAINED", u, sep="\n", file=sys.stderr)
print(f"unexplained failures: {len(unexplained)}")
sys.exit(1 if unexplained else 0)
PY
