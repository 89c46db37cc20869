#!/usr/bin/env bash
# One SQLite node against two replicas on PostgreSQL, in the same run, on
# the same machine: enrollments/s and identifications/s (wrk, 8 clients; the
# replicas get 4 each, through no load balancer), then how fast a change
# acknowledged by one replica is seen by the other (bench/replicas.py), idle
# and while both serve identifications.
# Both sides have two inference threads in all (the node --workers 2, each
# replica --workers 1). On a 2-core machine the replicas share the cores
# with each other and with PostgreSQL: the figures show the cost of the
# shared store and of following, not the gain of more machines, which only
# more machines can show.
#
#   bash bench/replicas.sh        # DURATION=15s N=200 (enrollments timed; half as many under load) M=30 (revocations timed)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
source tests/lib/visage.sh
DURATION=${DURATION:-15s}
N=${N:-200}
M=${M:-30}
ensure_wrk
make -s models test-data
cargo build --release -q
bin=target/release/visage
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; store_cleanup; rm -rf "$work"; }
trap cleanup EXIT
export RUST_LOG=warn,tract_onnx=error

echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'); $(nproc) cores; $(grep -o -w -E 'avx512f|avx2|fma' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "PostgreSQL: $("$(bash tests/pg/cluster.sh bin x)/postgres" --version)"

# serve NAME DB WORKERS: starts a replica; sets PORT_<NAME>.
serve() {
  local port
  port=$(free_port)
  "$bin" serve --addr "127.0.0.1:$port" --db "$2" --workers "$3" >"$work/$1.log" 2>&1 &
  pids+=($!)
  wait_up "http://127.0.0.1:$port/readyz"
  printf -v "PORT_$1" '%s' "$port"
}

# rate LABEL PHOTO PATH URL...: wrk on every URL at once (8 clients in all); total req/s.
rate() {
  local label=$1 photo=$2 path=$3 clients out total=0 bad=0 f
  shift 3
  clients=$(( 8 / $# ))
  local files=() runs=()
  for u in "$@"; do
    f="$work/wrk.${#files[@]}"
    files+=("$f")
    IMG="$photo" wrk -t 1 -c "$clients" -d "$DURATION" -s bench/post_image.lua -H "Authorization: Bearer $KEY" "$u$path" >"$f" &
    runs+=($!)
  done
  for r in "${runs[@]}"; do wait "$r"; done
  for f in "${files[@]}"; do
    total=$(awk -v t="$total" '/Requests\/sec/ {printf "%.1f", t + $2}' "$f")
    bad=$(( bad + $(awk '/Non-2xx/ {n = $NF} END {print n + 0}' "$f") ))
  done
  printf '%-40s %10s req/s   non-2xx %s\n' "$label" "$total" "$bad"
}

echo
echo "== one node on SQLite (--workers 2)"
KEY=$("$bin" keys create --scope admin --name bench --quiet --db "$work/node.db")
export KEY
serve node "$work/node.db" 2
node="http://127.0.0.1:$PORT_node"
rate "enroll (new person each)" tests/data/obama.jpg "/v1/enroll?name=bench" "$node"
rate "identify" tests/data/obama2.jpg "/v1/identify" "$node"
echo "gallery: $(curl -sf -H "Authorization: Bearer $KEY" "$node/v1/info" | jq -c .gallery)"
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true; pids=()

echo
echo "== two replicas on PostgreSQL (--workers 1 each), one database"
VISAGE_TEST_STORE=postgres store_init
db=$(new_db unused)
KEY=$("$bin" keys create --scope admin --name bench --quiet --db "$db")
export KEY
serve a "$db" 1
serve b "$db" 1
a="http://127.0.0.1:$PORT_a"
b="http://127.0.0.1:$PORT_b"
rate "enroll (new person each)" tests/data/obama.jpg "/v1/enroll?name=bench" "$a" "$b"
rate "identify" tests/data/obama2.jpg "/v1/identify" "$a" "$b"
sleep 2
echo "galleries: a $(curl -sf -H "Authorization: Bearer $KEY" "$a/v1/info" | jq -c .gallery), b $(curl -sf -H "Authorization: Bearer $KEY" "$b/v1/info" | jq -c .gallery)"
echo
echo "== propagation between the two replicas (idle otherwise)"
python3 bench/replicas.py "$a" "$b" tests/data/obama.jpg "$N" "$M"
echo
echo "== propagation while both replicas serve identify (2 wrk clients each)"
loads=()
for u in "$a" "$b"; do
  IMG=tests/data/obama2.jpg wrk -t 1 -c 2 -d 600s -s bench/post_image.lua -H "Authorization: Bearer $KEY" "$u/v1/identify" >/dev/null &
  loads+=($!)
done
sleep 2
python3 bench/replicas.py "$a" "$b" tests/data/obama.jpg "$(( N / 2 ))" "$M"
for l in "${loads[@]}"; do kill "$l" 2>/dev/null; wait "$l" 2>/dev/null; done
