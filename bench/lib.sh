# Helpers shared by the benchmark scripts (sourced).

# Installs wrk from apt when it is missing.
ensure_wrk() {
  command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_up URL: polls until the URL answers (at most 60 s).
wait_up() {
  for _ in $(seq 1 600); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "no answer from $1" >&2
  return 1
}

# wrk_row LABEL URL CLIENTS PHOTO DURATION: POSTs PHOTO as image/jpeg and prints
# one table row: label, clients, req/s, p50, p99, non-2xx (and, when $ROWS
# names a file, appends "label<TAB>clients<TAB>req/s" to it).
wrk_row() {
  local out rps p50 p99 bad
  out=$(IMG="$4" wrk -t "$(( $3 < 2 ? 1 : 2 ))" -c "$3" -d "$5" --latency -s bench/post_image.lua "$2")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  bad=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  printf '%-34s %8s %10s %10s %10s %8s\n' "$1" "$3" "$rps" "$p50" "$p99" "${bad:-0}"
  [ -z "${ROWS:-}" ] || printf '%s\t%s\t%s\n' "$1" "$3" "$rps" >>"$ROWS"
}

wrk_header() {
  printf '%-34s %8s %10s %10s %10s %8s\n' "$1" clients 'req/s' p50 p99 non-2xx
}

# start_visage [SERVE ARGS...]: fetches what is needed, builds the release
# binary (with the optional backend), starts it on a free port with a fresh
# database on $BACKEND (default tract) and waits until it is ready. Sets
# $base, $pid and $dir, and stops the server on exit.
start_visage() {
  make -s models onnxruntime test-data
  cargo build --release -q --features onnxruntime
  dir=$(mktemp -d)
  local port
  port=$(free_port)
  base="http://127.0.0.1:$port"
  target/release/visage serve --addr "127.0.0.1:$port" --db "$dir/v.db" --backend "${BACKEND:-tract}" "$@" \
    >"$dir/log" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
  wait_up "$base/readyz"
}
