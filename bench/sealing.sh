#!/usr/bin/env bash
# What encryption at rest costs: enroll latency (one client, --keep-crops, so
# an embedding and a crop are sealed per request) on a service without a
# data key and one with, requests alternating between the two so both see
# the same machine; then start-up at scale (`visage bench-load --sealed`:
# N synthetic embeddings inserted, then the gallery loaded from the store as
# at start-up, each embedding opened), clear and sealed in the same run.
#
#   bash bench/sealing.sh      # ENROLLS=60 SIZES=100000
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
ENROLLS=${ENROLLS:-60}
SIZES=${SIZES:-100000}
make -s models onnxruntime test-data
cargo build --release -q --features onnxruntime
dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
target/release/visage data-key generate "$dir/data.key" 2>/dev/null
serve() {  # serve NAME [ARGS]: prints the base URL
  local port; port=$(free_port)
  target/release/visage serve --addr "127.0.0.1:$port" --db "$dir/$1.db" --keep-crops --workers 2 "${@:2}" \
    >"$dir/$1.log" 2>&1 &
  pids+=($!)
  echo "http://127.0.0.1:$port"
}
clear=$(serve clear)
sealed=$(serve sealed --data-key-file "$dir/data.key")
wait_up "$clear/readyz"; wait_up "$sealed/readyz"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores;" \
  "flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(aes|avx2|fma|avx512f|avx512_vnni|avx512vnni)$' | tr '\n' ' ')" \
  "forced: ${TRACT_CPU_ISA:+TRACT_CPU_ISA=$TRACT_CPU_ISA }${VISAGE_CPU:+VISAGE_CPU=$VISAGE_CPU}none"
photos=(tests/data/obama.jpg tests/data/obama2.jpg tests/data/obama3.jpg tests/data/biden.jpg)
: >"$dir/clear.ms"; : >"$dir/sealed.ms"
for i in $(seq 1 "$ENROLLS"); do
  for mode in clear sealed; do
    url=${!mode}
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -F "image=@${photos[$((i % 4))]}" -F "name=p$i" \
      "$url/v1/enroll" | awk '$1 == 201 { print $2 * 1000 } $1 != 201 { print "enroll failed: " $0 > "/dev/stderr"; exit 1 }' \
      >>"$dir/$mode.ms"
  done
done
pct() { sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 } END { i = int((NR - 1) * p + 0.5) + 1; printf "%.1f", v[i] }'; }
printf '%-8s %8s %10s %10s\n' store enrolls 'p50 ms' 'p99 ms'
for mode in clear sealed; do
  printf '%-8s %8s %10s %10s\n' "$mode" "$(wc -l <"$dir/$mode.ms")" "$(pct "$dir/$mode.ms" 0.5)" "$(pct "$dir/$mode.ms" 0.99)"
done
awk -v a="$(pct "$dir/sealed.ms" 0.5)" -v b="$(pct "$dir/clear.ms" 0.5)" -v c="$(pct "$dir/sealed.ms" 0.99)" \
  -v d="$(pct "$dir/clear.ms" 0.99)" 'BEGIN { printf "sealed / clear: p50 %.3f, p99 %.3f\n", a / b, c / d }'
echo "start-up at scale (synthetic 512-d embeddings, exact index):"
target/release/visage bench-load --sizes "$SIZES" --dim 512 --queries 50 --index exact --sealed
