# Shared by the shell tests (sourced, after `cd` to the repository root): the
# binary under test, free ports, and starting the service until it is ready.

# ensure_bin: sets VISAGE_BIN, building the debug binary (with the features in
# $VISAGE_FEATURES) unless it is already set.
ensure_bin() {
  if [ -z "${VISAGE_BIN:-}" ]; then
    cargo build --locked -q --bin visage ${VISAGE_FEATURES:+--features "$VISAGE_FEATURES"} || return 2
    VISAGE_BIN="$PWD/target/debug/visage"
  fi
  export VISAGE_BIN
}

# free_port: a free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_visage PORT LOG [ARGS...]: `visage serve` on 127.0.0.1:PORT with the
# repository's models (ARGS after), its output appended to LOG; sets
# SERVER_PID and waits up to 30 s for /readyz. On failure prints the log's
# tail and returns 1.
start_visage() {
  local port=$1 log=$2
  shift 2
  "$VISAGE_BIN" serve --addr "127.0.0.1:$port" --models-dir "$PWD/models" "$@" >>"$log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "the server did not become ready; its log:" >&2
  tail -20 "$log" >&2
  return 1
}

# The store under test: SQLite files (default) or, with
# VISAGE_TEST_STORE=postgres, databases in a throwaway PostgreSQL cluster
# of this script's own (tests/pg/cluster.sh). Call store_init once (after
# setting a trap that calls store_cleanup), then new_db FILE for each
# database: it prints FILE, or the URL of a fresh PostgreSQL database.
PG_DIR=""
store_init() {
  case "${VISAGE_TEST_STORE:-sqlite}" in
    sqlite) ;;
    postgres)
      PG_DIR=$(mktemp -d)
      bash tests/pg/cluster.sh start "$PG_DIR" >/dev/null || return 2
      ;;
    *) echo "VISAGE_TEST_STORE=$VISAGE_TEST_STORE: expected sqlite or postgres" >&2; return 2 ;;
  esac
}
new_db() {
  if [ -n "$PG_DIR" ]; then bash tests/pg/cluster.sh createdb "$PG_DIR"; else echo "$1"; fi
}
store_cleanup() {
  if [ -n "$PG_DIR" ]; then bash tests/pg/cluster.sh stop "$PG_DIR"; PG_DIR=""; fi
}
# make_certs DIR NAME...: a CA of its own in DIR (ca.pem) and, for each NAME,
# a server certificate for 127.0.0.1 signed by it (NAME.pem, NAME.key).
make_certs() {
  local dir=$1 name; shift
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=visage test CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null || return 1
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$dir/ext"
  for name in "$@"; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
      -keyout "$dir/$name.key" -out "$dir/$name.csr" 2>/dev/null || return 1
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
      -extfile "$dir/ext" -out "$dir/$name.pem" 2>/dev/null || return 1
  done
}

# db_sql DB SQL: runs SQL on the database (prints rows, one per line).
db_sql() {
  case "$1" in
    postgres://*) "$(bash tests/pg/cluster.sh bin x)/psql" -X -q -A -t -v ON_ERROR_STOP=1 "$1" -c "$2" ;;
    *) python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
for row in c.execute(sys.argv[2]): print("|".join(map(str, row)))
c.commit()' "$1" "$2" ;;
  esac
}
# eventually SECONDS CMD...: runs CMD every 0.05 s until it succeeds, for at most SECONDS.
eventually() {
  local until=$(( $(date +%s%N) + ${1%.*} * 1000000000 )); shift
  while ! "$@" >/dev/null 2>&1; do
    [ "$(date +%s%N)" -lt "$until" ] || return 1
    sleep 0.05
  done
}
