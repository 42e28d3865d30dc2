#!/usr/bin/env bash
# Bounded fuzz runs (for CI and by hand):
#   tests/fuzz/run.sh [SECONDS] [TARGET...]
# SECONDS (default 60) is the total time, split evenly between the targets
# given (default: all of them, see `cargo fuzz list --fuzz-dir tests/fuzz`):
#   extract         MIME extraction into a folder (seeds: tests/fixtures/eml)
#   smtp_server     SMTP server machine and DATA receiver
#   pop3_server     POP3 server machine and message stuffer
#   client_replies  SMTP reply reader, POP3 multi-line reader and client
# Installs cargo-fuzz from crates.io when missing. The toolchain is stable:
# RUSTC_BOOTSTRAP=1 lets cargo-fuzz use the unstable flags it needs.
# New inputs go to tests/fuzz/corpus/TARGET and crashes to
# tests/fuzz/artifacts/TARGET (both ignored by git). Every target runs even
# if one fails; the script fails if any did, and ends with one line per
# target: "fuzz: TARGET: N runs in S s, no crash" (or "FAILED ...").
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
all=(extract smtp_server pop3_server client_replies)

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "usage: $0 [SECONDS] [TARGET...]   (targets: ${all[*]})" >&2
    exit 64
fi
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
for t in "${targets[@]}"; do
    if [[ " ${all[*]} " != *" $t "* ]]; then
        echo "$0: unknown target '$t' (targets: ${all[*]})" >&2
        exit 64
    fi
done
each=$(( seconds / ${#targets[@]} ))
[ "$each" -ge 1 ] || each=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

cd "$root"
# Optimised as shipped, with debug assertions and overflow checks in
# mailctl's own code (see Cargo.toml here); no sanitizer (the code under
# test has no unsafe code), which keeps the executions per second high.
flags=(--fuzz-dir "$here" -O --sanitizer none)
for t in "${targets[@]}"; do
    cargo fuzz build "${flags[@]}" "$t"
done

summary=()
failed=0
for t in "${targets[@]}"; do
    corpus="$here/corpus/$t"
    mkdir -p "$corpus"
    if [ "$t" = extract ]; then
        seeds="$root/tests/fixtures/eml"
    else
        seeds="$here/seeds/$t"
    fi
    log=$(mktemp)
    echo "==> fuzz $t for $each s"
    if cargo fuzz run "${flags[@]}" "$t" "$corpus" "$seeds" -- \
        -max_total_time="$each" -timeout=10 -max_len=65536 -rss_limit_mb=2048 \
        -print_final_stats=1 2>&1 | tee "$log"; then
        ok=1
    else
        ok=0
        failed=1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rm -f "$log"
    if [ "$ok" = 1 ]; then
        summary+=("fuzz: $t: ${runs:-?} runs in $each s, no crash")
    else
        summary+=("fuzz: $t: FAILED after ${runs:-?} runs (input in tests/fuzz/artifacts/$t)")
    fi
done
printf '%s\n' "${summary[@]}"
exit "$failed"
