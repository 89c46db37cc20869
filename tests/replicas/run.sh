#!/usr/bin/env bash
# Replicas: three `visage serve` processes on one PostgreSQL database (a
# throwaway cluster of this script's own), each holding the gallery and the
# keys in memory and following the others through the change log.
#
#  - enrolled on one, identified on the others; deleted on one, gone on the others;
#  - a key created on one works on the others; revoked on one, refused by all;
#  - concurrent writers on every replica, then every gallery equals the database;
#  - unassigned faces kept on three replicas: the same clusters on each; one
#    cluster named on two replicas at once: one wins, no face lost or doubled,
#    every replica names the person within a second;
#  - the database stopped while they serve: /readyz 503, writes 503
#    database_unavailable, identify and verify answered from memory; back:
#    writes accepted and changes followed, without a restart;
#  - kill -9 of a replica during enrollment: no acknowledged enrollment lost;
#    started again, it loads the gallery and follows;
#  - replica c searches a graph (`--index ann`) kept in its own local folder:
#    it follows like the others; stopped, it saves the graph; started again
#    after others changed the gallery, it reopens the graph and catches up;
#  - one webhook (a real receiver verifying with `standardwebhooks`) gets
#    every event the three wrote, each once and in the outbox's order, until
#    the kill -9 (identify answered during the outage: each with its event,
#    written once the database was back); the replica delivering killed
#    with -9: another takes over (within the 30 s lease), at least once.
#
# Prints one line per check and "N passed, N failed".
#   bash tests/replicas/run.sh        (VISAGE_BIN overrides the binary)
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "the replica tests need $tool (make test installs it)" >&2; exit 2; }
done
source tests/lib/visage.sh
ensure_bin || exit 2
export RUST_LOG=${RUST_LOG:-warn,tract_onnx=error,visage_service::service::deliveries=info}
work=$(mktemp -d)
declare -A PID PORT EXTRA
EXTRA[c]="--index ann --index-dir $work/c.index"
loops=()
cleanup() {
  for p in "${PID[@]}" "${loops[@]}"; do kill -KILL "$p" 2>/dev/null; done
  store_cleanup
  rm -rf "$work"
}
trap cleanup EXIT
VISAGE_TEST_STORE=postgres store_init || exit 2
DB=$(new_db unused) || exit 2
ADMIN=$("$VISAGE_BIN" keys create --scope admin --name replicas --quiet --db "$DB" 2>>"$work/cli.log") || exit 2
AUTH="Authorization: Bearer $ADMIN"

start_replica() {
  local name=$1
  [ -n "${PORT[$name]:-}" ] || PORT[$name]=$(free_port)
  # shellcheck disable=SC2086 # EXTRA holds several arguments
  start_visage "${PORT[$name]}" "$work/$name.log" --db "$DB" --workers 1 --webhooks-allow-private \
    ${EXTRA[$name]:-} || return 1
  PID[$name]=$SERVER_PID
}
url() { echo "http://127.0.0.1:${PORT[$1]}"; }
sql() { db_sql "$DB" "$1"; }

# enroll REPLICA PHOTO NAME: prints the new person's id.
enroll() {
  curl -sf -H "$AUTH" -F "image=@tests/data/$2" -F "name=$3" "$(url "$1")/v1/enroll" | jq -er .person_id
}
# who REPLICA PHOTO: the person identified in the photo, or "none".
who() {
  curl -sf -H "$AUTH" -F "image=@tests/data/$2" "$(url "$1")/v1/identify" | jq -r '.faces[0].match.person_id // "none"'
}
is_who() { [ "$(who "$1" "$2")" = "$3" ]; }
# verified REPLICA PERSON PHOTO: the replica's gallery holds the person's face and it matches the photo.
verified() {
  curl -sf -H "$AUTH" -F "image=@tests/data/$3" -F "person_id=$2" "$(url "$1")/v1/verify" | jq -e '.match == true' >/dev/null
}
code() { curl -s -o "$work/body" -w '%{http_code}' "$@"; }
# The gallery of a replica equals the database: faces and persons.
gallery_is_db() {
  local info faces persons
  info=$(curl -sf -H "$AUTH" "$(url "$1")/v1/info") || return 1
  faces=$(sql "SELECT count(*) FROM faces WHERE person_id IS NOT NULL")
  persons=$(sql "SELECT count(DISTINCT person_id) FROM faces")
  [ "$(jq '.gallery.faces' <<<"$info")" = "$faces" ] && [ "$(jq '.gallery.persons' <<<"$info")" = "$persons" ]
}
all_galleries_are_db() { for r in "$@"; do gallery_is_db "$r" || return 1; done; }

passed=0
failed=0
check() {
  local name=$1; shift
  if "$@"; then
    echo "ok   replicas/$name"; passed=$((passed + 1))
  else
    echo "FAIL replicas/$name"; failed=$((failed + 1))
  fi
}

for r in a b c; do start_replica "$r" || exit 1; done
# One webhook for everything the replicas do, to a receiver of the test venv.
RPORT=$(free_port)
SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
target/test-venv/bin/python tests/webhooks/receiver.py "$SECRET" "$RPORT" >"$work/received" &
loops+=($!)
eventually 10 test -s "$work/received" || { echo "the webhook receiver did not start" >&2; exit 1; }
curl -sf -H "$AUTH" -H 'content-type: application/json' "$(url a)/v1/webhooks" \
  -d "{\"url\": \"http://127.0.0.1:$RPORT/ok\", \"events\": [\"*\"], \"secret\": \"$SECRET\"}" >/dev/null \
  || { echo "creating the webhook failed" >&2; exit 1; }
# received: the webhook-ids the receiver verified, in arrival order.
received() { tail -n +2 "$work/received" | jq -r 'select(.verified == true) | .id'; }
outbox() { sql "SELECT id FROM events ORDER BY txid, seq"; }
all_received() { [ -z "$(comm -23 <(outbox | sort) <(received | sort -u))" ]; }

enrolled_on_one_identified_on_the_others() {
  OBAMA=$(enroll a obama.jpg "Barack Obama") || return 1
  eventually 5 is_who b obama2.jpg "$OBAMA" && eventually 5 is_who c obama2.jpg "$OBAMA"
}

deleted_on_one_gone_on_the_others() {
  [ "$(code -X DELETE -H "$AUTH" "$(url b)/v1/persons/$OBAMA")" = 204 ] || return 1
  eventually 5 is_who a obama2.jpg none && eventually 5 is_who c obama2.jpg none
}

key_created_on_one_works_everywhere_and_revoked_on_one_is_refused_by_all() {
  local key id
  key=$(curl -sf -H "$AUTH" -H 'content-type: application/json' -d '{"name": "kiosk", "scope": "match"}' \
    "$(url a)/v1/keys" | jq -er .key) || return 1
  id=$(echo "$key" | cut -d_ -f2)
  works() { [ "$(code -H "Authorization: Bearer $key" "$(url "$1")/v1/info")" = "$2" ]; }
  works a 200 || return 1
  eventually 5 works b 200 && eventually 5 works c 200 || return 1
  [ "$(code -X DELETE -H "$AUTH" "$(url c)/v1/keys/$id")" = 204 ] || return 1
  works c 401 || return 1
  eventually 5 works a 401 && eventually 5 works b 401
}

# Each replica's writer enrolls 6 persons and deletes every third, all at once.
concurrent_writers_leave_every_gallery_equal_to_the_database() {
  local photos=(obama.jpg obama2.jpg obama3.jpg biden.jpg) pids=() r
  for r in a b c; do
    (
      for i in 1 2 3 4 5 6; do
        id=$(enroll "$r" "${photos[$(( (i + ${#r}) % 4 ))]}" "writer $r #$i") || exit 1
        if [ $((i % 3)) = 0 ]; then
          [ "$(code -X DELETE -H "$AUTH" "$(url "$r")/v1/persons/$id")" = 204 ] || exit 1
        fi
      done
    ) &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || return 1; done
  [ "$(sql "SELECT count(*) FROM persons WHERE name LIKE 'writer %'")" = 12 ] || return 1
  eventually 5 all_galleries_are_db a b c
}

database_stopped_while_replicas_serve() {
  local biden
  BIDEN=$(enroll a biden.jpg "Joe Biden") || return 1
  biden=$BIDEN
  eventually 5 verified b "$biden" biden.jpg || return 1
  # Identify load on b for the whole outage: every answer from memory.
  : >"$work/load.codes"
  (
    while true; do
      curl -s -o "$work/load.body" -w '%{http_code}\n' -H "$AUTH" -F image=@tests/data/obama2.jpg \
        -F source=outage-load "$(url b)/v1/identify" >>"$work/load.codes"
    done
  ) &
  LOAD=$!
  loops+=($LOAD)
  bash tests/pg/cluster.sh pause "$PG_DIR" || return 1
  not_ready() { [ "$(code "$(url "$1")/readyz")" = 503 ]; }
  eventually 10 not_ready a && eventually 10 not_ready b && eventually 10 not_ready c || { echo "readyz stayed 200" >&2; return 1; }
  refused() {
    [ "$(code -H "$AUTH" -F image=@tests/data/obama.jpg -F name=x "$(url a)/v1/enroll")" = 503 ] \
      && jq -e '.error.code == "database_unavailable"' "$work/body" >/dev/null
  }
  eventually 10 refused || { echo "writes not refused: $(cat "$work/body")" >&2; return 1; }
  gauge() { curl -sf -H "$AUTH" "$(url b)/metrics" | grep -qx "visage_database_up $1"; }
  eventually 5 gauge 0 || { echo "database_up gauge not 0" >&2; return 1; }
  sleep 2   # the load goes on against the stopped database
  verified c "$biden" biden.jpg || { echo "verify failed during the outage" >&2; return 1; }
  [ "$(code -H "$AUTH" -F image=@tests/data/biden.jpg "$(url c)/v1/identify")" = 200 ] || { cat "$work/body" >&2; return 1; }
}

# The clusters a replica lists, as "cluster: faces" lines (sorted).
clusters_of() {
  curl -sf -H "$AUTH" "$(url "$1")/v1/clusters?min_size=1&limit=500" \
    | jq -r '.clusters[] | "\(.id): \([.faces[].id] | sort | join(" "))"' | sort
}
same_clusters() { [ "$(clusters_of a)" = "$(clusters_of b)" ] && [ "$(clusters_of a)" = "$(clusters_of c)" ] && [ -n "$(clusters_of a)" ]; }
unassigned_in_db() { [ "$(clusters_of "$1" | wc -w)" = "$(( $(sql "SELECT count(*) FROM faces WHERE person_id IS NULL") + $(clusters_of "$1" | wc -l) ))" ]; }

unassigned_faces_cluster_alike_everywhere_and_one_of_two_namings_wins() {
  local r p before named winner loser a_code b_code first
  before=$(sql "SELECT count(*) FROM persons")
  # Three photos of one man kept on three replicas: one cluster, the same on each.
  for r in a b c; do
    p=$(case $r in a) echo obama.jpg ;; b) echo obama2.jpg ;; c) echo obama3.jpg ;; esac)
    [ "$(code -H "$AUTH" -F "image=@tests/data/$p" -F "external_id=$r" "$(url $r)/v1/faces")" = 201 ] || { cat "$work/body" >&2; return 1; }
  done
  eventually 5 same_clusters || { echo "the replicas list different clusters: $(clusters_of a) / $(clusters_of b) / $(clusters_of c)" >&2; return 1; }
  [ "$(clusters_of a | wc -l)" = 1 ] || { echo "not one cluster: $(clusters_of a)" >&2; return 1; }
  unassigned_in_db b || { echo "b's clusters do not hold the database's unassigned faces" >&2; return 1; }
  named=$(clusters_of a | cut -d: -f1)
  # Named at once on two replicas: one wins, the other finds the cluster gone.
  curl -s -o "$work/assign.a" -w '%{http_code}' -H "$AUTH" -H 'Content-Type: application/json' \
    -d '{"name": "named on a"}' "$(url a)/v1/clusters/$named/assign" >"$work/code.a" &
  first=$!
  curl -s -o "$work/assign.b" -w '%{http_code}' -H "$AUTH" -H 'Content-Type: application/json' \
    -d '{"name": "named on b"}' "$(url b)/v1/clusters/$named/assign" >"$work/code.b" &
  wait "$first" $! 2>/dev/null
  a_code=$(cat "$work/code.a"); b_code=$(cat "$work/code.b")
  echo "     two namings of one cluster at once: a $a_code, b $b_code" >&2
  case "$a_code $b_code" in
    "200 404") winner=a loser=b ;;
    "404 200") winner=b loser=a ;;
    *) echo "expected one 200 and one 404: $(cat "$work/assign.a") / $(cat "$work/assign.b")" >&2; return 1 ;;
  esac
  jq -e '.error.code == "cluster_not_found"' "$work/assign.$loser" >/dev/null || return 1
  p=$(jq -r .person_id "$work/assign.$winner")
  [ "$(jq '.faces | length' "$work/assign.$winner")" = 3 ] || return 1
  # No face lost or doubled, no person made for the loser.
  [ "$(sql "SELECT count(*) FROM faces WHERE person_id = '$p'")" = 3 ] || return 1
  [ "$(sql "SELECT count(*) FROM persons")" = $((before + 1)) ] || { echo "the losing naming created a person" >&2; return 1; }
  [ "$(sql "SELECT count(*) FROM faces WHERE person_id IS NULL")" = 0 ] || return 1
  # Every replica names the new person within a second, and lists no cluster.
  for r in a b c; do
    eventually 1 is_who "$r" obama2.jpg "$p" || { echo "$r does not name the person within 1 s" >&2; return 1; }
    [ -z "$(clusters_of "$r")" ] || { echo "$r still lists the cluster" >&2; return 1; }
  done
}

database_back_writes_accepted_and_followed_without_restart() {
  local probe codes
  bash tests/pg/cluster.sh resume "$PG_DIR" || return 1
  ready() { [ "$(code "$(url "$1")/readyz")" = 200 ]; }
  eventually 10 ready a && eventually 10 ready b && eventually 10 ready c || { echo "not ready again" >&2; return 1; }
  eventually 5 gauge 1 || { echo "database_up gauge not 1" >&2; return 1; }
  probe=$(enroll a obama.jpg "after the outage") || return 1
  eventually 5 verified c "$probe" obama2.jpg || return 1
  kill "$LOAD" 2>/dev/null; wait "$LOAD" 2>/dev/null
  codes=$(sort "$work/load.codes" | uniq -c | tr -s ' \n' ' ')
  echo "     identify on b during the outage and the recovery (count, status):$codes" >&2
  [ "$(grep -c '^200$' "$work/load.codes")" -gt 0 ] && [ -z "$(grep -v '^200$' "$work/load.codes")" ]
}

every_event_delivered_once_in_order_and_each_answered_identify_has_its_event() {
  local answered events
  eventually 30 all_received || { echo "$(outbox | wc -l) events, $(received | sort -u | wc -l) received" >&2; return 1; }
  answered=$(grep -c '^200$' "$work/load.codes")
  events=$(sql "SELECT count(*) FROM events WHERE type LIKE 'identify.%' AND data->>'source' = 'outage-load'")
  echo "     webhook: $(outbox | wc -l) events written by 3 replicas, $(received | wc -l) deliveries," \
    "$(received | sort -u | wc -l) distinct; identify answered during the outage $answered, their events $events" >&2
  [ "$events" = "$answered" ] || return 1
  [ "$(received | wc -l)" = "$(outbox | wc -l)" ] || { echo "an event was delivered twice" >&2; return 1; }
  [ "$(received)" = "$(outbox)" ] || { echo "the webhook received the events out of order" >&2; return 1; }
}

delivery_goes_on_after_the_replica_delivering_dies() {
  local person owner holder="" r other
  owner=$(sql "SELECT lease_owner FROM webhooks")
  for r in a b c; do grep -q "lease_owner=$owner" "$work/$r.log" && holder=$r; done
  [ -n "$holder" ] || { echo "no replica holds the webhook's lease ($owner)" >&2; return 1; }
  kill -KILL "${PID[$holder]}"; wait "${PID[$holder]}" 2>/dev/null
  other=$(case $holder in a) echo b ;; *) echo a ;; esac)
  person=$(enroll "$other" obama2.jpg "after the kill") || return 1
  delivered_person() {
    tail -n +2 "$work/received" | jq -r 'select(.verified == true and .payload.type == "person.created")
      | .payload.data.person.id' | grep -qx "$person"
  }
  # Whichever replica held the webhook's lease: another takes it over within the lease (30 s).
  eventually 45 all_received && delivered_person || { echo "$(outbox | wc -l) events, $(received | sort -u | wc -l) received" >&2; return 1; }
  echo "     webhook after a kill -9 of $holder, which delivered: $(outbox | wc -l) events, all received" \
    "($(received | wc -l) deliveries), delivered by $(sql "SELECT lease_owner FROM webhooks") now" >&2
  start_replica "$holder"
}

kill9_during_enrollment_loses_nothing_acknowledged_and_the_replica_comes_back() {
  local w pids=() acked present=0 person
  : >"$work/acked"; rm -f "$work/k.stop"
  for w in 1 2; do
    (
      i=0
      while [ ! -e "$work/k.stop" ]; do
        i=$((i + 1))
        c=$(curl -s --max-time 30 -o "$work/k.$w" -w '%{http_code}' -H "$AUTH" -F image=@tests/data/obama3.jpg \
          -F "name=kill $w #$i" "$(url a)/v1/enroll")
        [ "$c" = 201 ] && jq -r .person_id "$work/k.$w" >>"$work/acked"
      done
    ) &
    pids+=($!)
  done
  sleep 3
  kill -KILL "${PID[a]}"; wait "${PID[a]}" 2>/dev/null
  # Let each writer finish the request it has under way (a is gone, so each
  # ends at once) before counting: a writer killed mid-loop could still append
  # after the count.
  touch "$work/k.stop"
  for w in "${pids[@]}"; do wait "$w" 2>/dev/null; done
  acked=$(wc -l <"$work/acked")
  while read -r person; do
    [ "$(curl -sf -H "$AUTH" "$(url b)/v1/persons/$person" | jq '.faces | length')" = 1 ] && present=$((present + 1))
  done <"$work/acked"
  echo "     kill -9: acknowledged $acked, present $present" >&2
  [ "$acked" -gt 0 ] && [ "$present" = "$acked" ] || return 1
  start_replica a || return 1
  gallery_is_db a || return 1
  person=$(enroll b obama.jpg "after the restart") || return 1
  eventually 5 verified a "$person" obama2.jpg && eventually 5 all_galleries_are_db a b c
}

graph_replica_reopens_its_local_index_and_catches_up() {
  local info person
  [ "$(curl -sf -H "$AUTH" "$(url c)/v1/info" | jq -r .gallery.index)" = ann ] || { echo "c is not searching a graph" >&2; return 1; }
  kill -TERM "${PID[c]}"; wait "${PID[c]}" 2>/dev/null
  [ -f "$work/c.index/gallery.meta" ] || { echo "c saved no graph" >&2; return 1; }
  person=$(enroll a obama.jpg "while c was down") || return 1
  [ "$(code -X DELETE -H "$AUTH" "$(url b)/v1/persons/$person")" = 204 ] || return 1
  person=$(enroll b obama.jpg "still enrolled when c is back") || return 1
  start_replica c || return 1
  info=$(curl -sf -H "$AUTH" "$(url c)/v1/info") || return 1
  [ "$(jq -r .gallery.index_reopened <<<"$info")" = true ] || { echo "c built its graph again: $info" >&2; return 1; }
  gallery_is_db c && verified c "$person" obama2.jpg
}

check enrolled-on-one-identified-on-the-others enrolled_on_one_identified_on_the_others
check deleted-on-one-gone-on-the-others deleted_on_one_gone_on_the_others
check key-revoked-on-one-refused-by-all key_created_on_one_works_everywhere_and_revoked_on_one_is_refused_by_all
check unassigned-clusters-and-concurrent-naming unassigned_faces_cluster_alike_everywhere_and_one_of_two_namings_wins
check concurrent-writers-galleries-equal-the-database concurrent_writers_leave_every_gallery_equal_to_the_database
check database-stopped database_stopped_while_replicas_serve
check database-back database_back_writes_accepted_and_followed_without_restart
check webhook-every-event-once-in-order every_event_delivered_once_in_order_and_each_answered_identify_has_its_event
check kill9-during-enrollment kill9_during_enrollment_loses_nothing_acknowledged_and_the_replica_comes_back
check webhook-delivery-goes-on-after-the-delivering-replica-dies delivery_goes_on_after_the_replica_delivering_dies
check graph-replica-reopens-its-index graph_replica_reopens_its_local_index_and_catches_up
if [ "$failed" -ne 0 ]; then
  for r in a b c; do echo "--- $r.log"; tail -15 "$work/$r.log"; done
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
