#!/usr/bin/env bash
# Webhook deliveries survive a crash: a webhook whose receiver is down, 12
# enrollments (each a person.created event in the outbox, its delivery
# retried with backoff), the server killed with SIGKILL; the receiver comes
# up, the server restarts on the same database. Every acknowledged
# enrollment's person.created must reach the receiver, verified by the
# `standardwebhooks` package (duplicates allowed, told apart by webhook-id),
# soon after the restart (pending deliveries resume at once, not after the
# backoff the dead process had set: an hour, here). Prints what it measured.
#
#   bash tests/crash/kill9_webhooks.sh      (VISAGE_BIN overrides the binary)
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
source "$root/tests/lib/visage.sh"
ensure_bin || exit 2
python=target/test-venv/bin/python
[ -x "$python" ] || { echo "$python: run make test-venv" >&2; exit 2; }
state=$(mktemp -d)
pid="" receiver=""
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  [ -n "$receiver" ] && kill "$receiver" 2>/dev/null
  rm -rf "$state"
}
trap cleanup EXIT
port=$(free_port)
rport=$(free_port)
base="http://127.0.0.1:$port"
secret=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
start() {
  start_visage "$port" "$state/server.log" --db "$state/visage.db" --webhooks-allow-private
  local rc=$?
  pid=$SERVER_PID
  return $rc
}

start || exit 1
curl -sf -X POST "$base/v1/webhooks" -H 'content-type: application/json' \
  -d "{\"url\": \"http://127.0.0.1:$rport/ok\", \"events\": [\"person.created\"], \"secret\": \"$secret\"}" >/dev/null \
  || { echo "creating the webhook failed" >&2; exit 1; }
photos=(tests/data/obama.jpg tests/data/obama2.jpg tests/data/biden.jpg)
: >"$state/acked"
for i in $(seq 1 12); do
  curl -sf -F "image=@${photos[$((i % 3))]}" -F "name=person $i" "$base/v1/enroll" | jq -r .person_id >>"$state/acked"
done
# Let the deliverer try (and fail) a few times, so backoff is set, then crash.
sleep 3
tried=$(db_sql "$state/visage.db" "SELECT COUNT(*) FROM deliveries WHERE outcome = 'retrying'")
kill -KILL "$pid"; wait "$pid" 2>/dev/null; pid=""
# As if the dead process had backed off for an hour: a restart does not wait it out.
later=$(python3 -c 'import datetime; print((datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))')
db_sql "$state/visage.db" "UPDATE webhooks SET next_at = '$later'"

"$python" tests/webhooks/receiver.py "$secret" "$rport" >"$state/received" &
receiver=$!
eventually 10 test -s "$state/received" || { echo "the receiver did not start" >&2; exit 1; }
restarted=$(date +%s%N)
start || exit 1
acked=$(wc -l <"$state/acked")
delivered() {
  tail -n +2 "$state/received" | jq -r 'select(.verified == true and .payload.type == "person.created")
    | .payload.data.person.id' 2>/dev/null | sort -u >"$state/delivered"
  [ "$(comm -23 <(sort -u "$state/acked") "$state/delivered" | wc -l)" = 0 ]
}
if eventually 15 delivered; then
  took=$(( ($(date +%s%N) - restarted) / 1000000 ))
  tail -n +2 "$state/received" >"$state/records"
  seen=$(jq -r 'select(.verified == true) | .id' "$state/records" | wc -l)
  unique=$(jq -r 'select(.verified == true) | .id' "$state/records" | sort -u | wc -l)
  unverified=$(jq -r 'select(.verified != true) | .id' "$state/records" | wc -l)
  kill -TERM "$pid"; wait "$pid" 2>/dev/null; pid=""
  echo "kill -9 with deliveries pending: $acked enrollments acknowledged, $tried failed attempts before the kill;" \
    "after the restart all $acked person.created delivered within $took ms ($seen deliveries, $unique distinct webhook-ids," \
    "$unverified unverified)"
  [ "$unverified" = 0 ] || exit 1
else
  echo "kill -9 with deliveries pending: of $acked acknowledged enrollments, $(wc -l <"$state/delivered") delivered in 15 s" >&2
  tail -20 "$state/server.log" >&2
  exit 1
fi
