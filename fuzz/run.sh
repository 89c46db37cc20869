#!/usr/bin/env bash
# Runs each fuzz target for a fixed time and reports executions and findings.
#
#   fuzz/run.sh [SECONDS per target, default 300] [TARGET...]
#
# Needs a nightly toolchain and cargo-fuzz (installed here when missing) and
# the models (`make models`). Crashing inputs are copied into
# fuzz/regressions/<target>/, which `tests/fuzz_regressions.rs` replays on
# every `make test`: fix the bug, keep the input.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-300}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(decode_detect request_parse sealed_rows)

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
make -C .. models >/dev/null
cargo +nightly fuzz build

report=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t" "regressions/$t"
    before=$(find "artifacts/$t" -type f | sort)
    log="artifacts/$t.log"
    # libFuzzer stops at the first finding; its stats are printed either way.
    set +e
    cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 -timeout=30 -rss_limit_mb=4096 -max_len=65536 \
        >"$log" 2>&1
    rc=$?
    set -e
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
    found=$(comm -13 <(echo "$before") <(find "artifacts/$t" -type f | sort) | sed '/^$/d')
    findings=$(echo -n "$found" | grep -c . || true)
    for f in $found; do cp "$f" "regressions/$t/"; done
    if [ "$rc" -ne 0 ] && [ "$findings" -eq 0 ]; then
        echo "fuzz run of $t failed (exit $rc) without a finding; see fuzz/$log" >&2
        tail -20 "$log" >&2
        exit "$rc"
    fi
    report+=("$(printf '%-14s %6ss %12s %8s/s %7s %9s' "$t" "$secs" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$findings")")
    [ "$findings" -eq 0 ] || grep -m1 -A15 'ERROR: libFuzzer\|panicked at' "$log" >&2 || true
done
printf '%-14s %7s %12s %10s %7s %9s\n' target time executions rate cov findings
printf '%s\n' "${report[@]}"
