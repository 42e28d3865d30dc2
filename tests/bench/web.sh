#!/bin/sh
# Benchmark (not a test): the web inbox of `mailctl serve --http` against
# maildev (npm), the usual development mail catcher.
#
#  1. ingest: TOTAL messages from CLIENTS client processes (serve/blast.py);
#     mailctl syncs every message into its Maildir before 250, maildev keeps
#     it in --mail-directory (no sync);
#  2. list: GET of the list of those TOTAL messages, median of LISTS requests
#     (mailctl /api/messages?limit=TOTAL, maildev /api/email);
#  3. memory: peak RSS (VmHWM) of each server after BIG messages were stored
#     and listed once.
# Servers run interleaved ROUNDS times (a shared machine is noisy); medians
# are printed with the ratios the web inbox is held to.
#
# Usage: [ROUNDS=3] [LISTS=10] [MAILDEV_DIR=dir] tests/bench/web.sh [TOTAL] [CLIENTS] [BIG]
# MAILDEV_DIR: a folder where `npm install maildev` was run; otherwise
# maildev is installed into a temporary folder (needs npm and the registry).
# Needs: cargo, python3, curl, node/npm.
set -eu

TOTAL=${1:-1000}
CLIENTS=${2:-4}
BIG=${3:-10000}
ROUNDS=${ROUNDS:-3}
LISTS=${LISTS:-10}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BLAST="$ROOT/tests/bench/serve/blast.py"
WORK=$(mktemp -d -p "${BENCH_DIR:-/tmp}")
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

if [ -z "${MAILDEV_DIR:-}" ]; then
    MAILDEV_DIR="$WORK/npm"
    mkdir -p "$MAILDEV_DIR"
    echo "installing maildev into $MAILDEV_DIR"
    (cd "$MAILDEV_DIR" && npm install --silent --no-audit --no-fund maildev@3 >/dev/null)
fi
MAILDEV="$MAILDEV_DIR/node_modules/.bin/maildev"
[ -x "$MAILDEV" ] || { echo "no maildev at $MAILDEV" >&2; exit 1; }

(cd "$ROOT" && cargo build --release --quiet)
MAILCTL="${CARGO_TARGET_DIR:-$ROOT/target}/release/mailctl"

. "$(dirname "$0")/common/servers.sh"

# start SERVER DIR: sets SERVER_PID, SMTP_PORT and LIST_URL.
start() {
    SMTP_PORT=$(free_port)
    WEB_PORT=$(free_port)
    case $1 in
        mailctl)
            "$MAILCTL" serve --maildir "$2" --smtp "127.0.0.1:$SMTP_PORT" --pop3 127.0.0.1:0 \
                --http "127.0.0.1:$WEB_PORT" 2>"$WORK/server.log" &
            LIST_URL="http://127.0.0.1:$WEB_PORT/api/messages?limit=1000000"
            ;;
        maildev)
            "$MAILDEV" --silent --ip 127.0.0.1 --smtp "$SMTP_PORT" --web-ip 127.0.0.1 \
                --web "$WEB_PORT" --mail-directory "$2" >"$WORK/server.log" 2>&1 &
            LIST_URL="http://127.0.0.1:$WEB_PORT/api/email"
            ;;
    esac
    SERVER_PID=$!
    wait_port "$SMTP_PORT"
    wait_port "$WEB_PORT"
}

stop() {
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

# listed: how many messages the list URL returns.
listed() {
    curl -sS "$LIST_URL" | python3 -c '
import json, sys
data = json.load(sys.stdin)
print(len(data["messages"]) if isinstance(data, dict) else len(data))'
}

# list_time: median seconds of LISTS GETs of the whole list.
list_time() {
    i=0
    while [ "$i" -lt "$LISTS" ]; do
        curl -sS -o /dev/null -w '%{time_total}\n' "$LIST_URL"
        i=$((i + 1))
    done | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'
}

# ingest SERVER ROUND: one round of ingest and list timing.
ingest() {
    start "$1" "$WORK/$1.$2"
    OUT=$(python3 "$BLAST" 127.0.0.1 "$SMTP_PORT" "$TOTAL" "$CLIENTS")
    n=0
    while [ "$(listed)" -lt "$TOTAL" ] && [ "$n" -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
    COUNT=$(listed)
    [ "$COUNT" -eq "$TOTAL" ] || { echo "$1 lists $COUNT of $TOTAL" >&2; exit 1; }
    LIST=$(list_time)
    stop
    echo "$1 ${OUT#* } $LIST" >>"$WORK/results"
    printf '  round %s  %-8s ingest %6s msg/s (%s s)   list of %s: %s s\n' \
        "$2" "$1" "${OUT#* }" "${OUT% *}" "$TOTAL" "$LIST"
}

# memory SERVER: peak RSS after BIG messages stored and listed.
memory() {
    start "$1" "$WORK/$1.big"
    python3 "$BLAST" 127.0.0.1 "$SMTP_PORT" "$BIG" "$CLIENTS" >/dev/null
    n=0
    while [ "$(listed)" -lt "$BIG" ] && [ "$n" -lt 300 ]; do sleep 0.2; n=$((n + 1)); done
    RSS=$(vm_peak "$SERVER_PID")
    stop
    echo "$1 $RSS" >>"$WORK/memory"
    printf '  %-8s peak RSS with %s messages: %s kB\n' "$1" "$BIG" "$RSS"
}

echo "$TOTAL messages from $CLIENTS clients, $ROUNDS rounds, $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)"
round=1
while [ "$round" -le "$ROUNDS" ]; do
    for server in mailctl maildev; do ingest "$server" "$round"; done
    round=$((round + 1))
done
for server in mailctl maildev; do memory "$server"; done

median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
M_RATE=$(awk '$1 == "mailctl" {print $2}' "$WORK/results" | median)
D_RATE=$(awk '$1 == "maildev" {print $2}' "$WORK/results" | median)
M_LIST=$(awk '$1 == "mailctl" {print $3}' "$WORK/results" | median)
D_LIST=$(awk '$1 == "maildev" {print $3}' "$WORK/results" | median)
M_RSS=$(awk '$1 == "mailctl" {print $2}' "$WORK/memory")
D_RSS=$(awk '$1 == "maildev" {print $2}' "$WORK/memory")
echo "medians:"
printf '  ingest   mailctl %s msg/s, maildev %s msg/s: %s x (goal >= 2)\n' "$M_RATE" "$D_RATE" \
    "$(awk -v a="$M_RATE" -v b="$D_RATE" 'BEGIN {printf "%.2f", a / b}')"
printf '  list     mailctl %s s, maildev %s s: %s x maildev'"'"'s time (goal <= 1)\n' "$M_LIST" "$D_LIST" \
    "$(awk -v a="$M_LIST" -v b="$D_LIST" 'BEGIN {printf "%.2f", a / b}')"
printf '  memory   mailctl %s kB, maildev %s kB: 1/%s (goal 1/5 or less)\n' "$M_RSS" "$D_RSS" \
    "$(awk -v a="$M_RSS" -v b="$D_RSS" 'BEGIN {printf "%.1f", b / a}')"
