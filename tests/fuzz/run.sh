#!/usr/bin/env bash
# Bounded fuzz run of the MIME extraction target (for CI and by hand):
#   tests/fuzz/run.sh [SECONDS]      (default 60)
# Installs cargo-fuzz from crates.io when missing. The toolchain is stable:
# RUSTC_BOOTSTRAP=1 lets cargo-fuzz use the unstable flags it needs.
# Seeds are the fixture corpus; new inputs go to tests/fuzz/corpus/extract
# and crashes to tests/fuzz/artifacts/extract (both ignored by git).
set -euo pipefail
seconds="${1:-60}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

corpus="$here/corpus/extract"
mkdir -p "$corpus"
cd "$root"
# Optimised as shipped, with debug assertions and overflow checks in
# mailctl's own code (see Cargo.toml here); no sanitizer (the extraction code has
# no unsafe code), which keeps the executions per second high.
exec cargo fuzz run --fuzz-dir "$here" -O --sanitizer none extract \
    "$corpus" "$root/tests/fixtures/eml" -- \
    -max_total_time="$seconds" -timeout=10 -max_len=65536 -rss_limit_mb=2048 \
    -print_final_stats=1
