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
