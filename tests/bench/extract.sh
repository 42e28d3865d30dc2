#!/usr/bin/env bash
# Extraction benchmark (not a test): the same N multipart messages of about
# 100 KB (a third with gb18030 subjects and bodies, attachment names in
# RFC 2231, RFC 2047 or plain ASCII) extracted by
#   mailctl   one process: mailctl parse --save-dir OUT MSG...
#   ripmime   one process per message
#   munpack   one process per message (package mpack)
#   python    one process, the email package (extract_email.py)
# Reports the median wall time (hyperfine), the peak RSS of one run
# (GNU time: the largest single process) and how many attachment names
# each tool wrote exactly as decoded UTF-8.
#
# usage: tests/bench/extract.sh [N] [RUNS]     (defaults 1000 and 5)
# Builds mailctl in release mode into $CARGO_TARGET_DIR (or ./target).
set -euo pipefail
n="${1:-1000}"
runs="${2:-5}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

missing=()
command -v ripmime >/dev/null || missing+=(ripmime)
command -v munpack >/dev/null || missing+=(mpack)
command -v hyperfine >/dev/null || missing+=(hyperfine)
[ -x /usr/bin/time ] || missing+=(time)
if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

(cd "$root" && cargo build --release --quiet)
mailctl="${CARGO_TARGET_DIR:-$root/target}/release/mailctl"

# Messages and output live in BENCH_DIR: by default a tmpfs (/dev/shm) when
# there is one, so the figures measure the tools rather than the disk's
# metadata latency; BENCH_DIR=/var/tmp measures on disk.
if [ -z "${BENCH_DIR:-}" ]; then
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then BENCH_DIR=/dev/shm; else BENCH_DIR="${TMPDIR:-/tmp}"; fi
fi
work="$(mktemp -d "$BENCH_DIR/mailctl-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT
msgs="$work/msgs"
python3 "$here/gen_messages.py" "$msgs" "$n"
largest=$(find "$msgs" -name '*.eml' -printf '%s\n' | sort -n | tail -1)
total=$(du -sm "$msgs" | cut -f1)
echo "$n messages, $total MB, largest $largest bytes, in $msgs ($(df --output=fstype "$work" | tail -1))"

# One command per tool, each writing into $work/out-<tool>.
cat >"$work/run-mailctl" <<SH
"$mailctl" parse --save-dir "$work/out-mailctl" "$msgs"/*.eml >/dev/null
SH
cat >"$work/run-ripmime" <<SH
mkdir -p "$work/out-ripmime"
for f in "$msgs"/*.eml; do
    b=\${f##*/}; d="$work/out-ripmime/\${b%.eml}"; mkdir "\$d"
    ripmime -i "\$f" -d "\$d"
done
SH
cat >"$work/run-munpack" <<SH
mkdir -p "$work/out-munpack"
for f in "$msgs"/*.eml; do
    b=\${f##*/}; d="$work/out-munpack/\${b%.eml}"; mkdir "\$d"
    munpack -q -t -C "\$d" "\$f" >/dev/null
done
SH
cat >"$work/run-python" <<SH
python3 "$here/extract_email.py" "$work/out-python" "$msgs"/*.eml
SH

tools=(mailctl ripmime munpack python)
args=()
for t in "${tools[@]}"; do
    args+=(-n "$t" --prepare "rm -rf '$work/out-$t'" "bash '$work/run-$t'")
done
hyperfine --style basic --warmup 1 --runs "$runs" --export-json "$work/times.json" "${args[@]}" >&2

printf '\n%-8s %10s %14s %22s\n' tool median_s peak_rss_MB names_decoded_utf8
for t in "${tools[@]}"; do
    rm -rf "$work/out-$t"
    /usr/bin/time -o "$work/rss-$t" -f '%M' bash "$work/run-$t" >/dev/null 2>&1
    rss_kb=$(tail -1 "$work/rss-$t")
    python3 - "$work/times.json" "$t" "$rss_kb" "$msgs/expected-names.txt" "$work/out-$t" <<'PY'
import json, os, sys
times, tool, rss_kb, expected_file, out = sys.argv[1:]
median = next(r["median"] for r in json.load(open(times))["results"] if r["command"] == tool)
expected = open(expected_file, encoding="utf-8").read().split("\n")[:-1]
found = set()
for _, _, files in os.walk(os.fsencode(out)):
    for f in files:
        try:
            found.add(f.decode("utf-8"))
        except UnicodeDecodeError:
            pass
hits = sum(1 for name in expected if name in found)
print("%-8s %10.3f %14.1f %15d/%d" % (tool, median, int(rss_kb) / 1024, hits, len(expected)))
PY
done
