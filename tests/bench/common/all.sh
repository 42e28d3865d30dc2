#!/usr/bin/env bash
# Runs tests/bench/send.sh and tests/bench/fetch.sh in one go (same knobs as
# those scripts: BENCH_CLIENTS, BENCH_RTTS, MAILCTL_BIN, ...) and prints one
# table of every result. Takes about 10 minutes, most of it fetchmail and curl
# fetching 1000 messages one round trip at a time at +50 ms.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
bench_init
export BENCH_RESULTS BENCH_WORK
if [ -z "${MAILCTL_BIN:-}" ] && want mailctl; then
    bench_mailctl
    export MAILCTL_BIN=$MAILCTL
fi
"$HERE/../send.sh" >/dev/null
"$HERE/../fetch.sh" >/dev/null
print_table
