#!/bin/sh
# Benchmark (not a test): 1000 messages from 4 concurrent SMTP clients into
# `mailctl serve` (release build, every message fsynced into a Maildir
# before 250) and into python aiosmtpd (Sink handler: discards; Mailbox
# handler: Maildir without fsync), in one run. Prints messages per second
# and the server's peak RSS (VmHWM).
#
# Usage: [BENCH_DIR=/path] tests/bench/serve.sh [TOTAL] [CLIENTS]
# BENCH_DIR is where the Maildirs go (default /tmp); its file system decides
# what fsync costs. Needs: cargo, python3, aiosmtpd (Debian
# python3-aiosmtpd or pip).
set -eu

TOTAL=${1:-1000}
CLIENTS=${2:-4}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BLAST="$ROOT/tests/bench/serve/blast.py"
WORK=$(mktemp -d -p "${BENCH_DIR:-/tmp}")
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# A python that has aiosmtpd (the Debian package installs it for /usr/bin/python3).
AIOPY=
for py in python3 /usr/bin/python3; do
    if "$py" -c 'import aiosmtpd' 2>/dev/null; then AIOPY=$py; break; fi
done

(cd "$ROOT" && cargo build --release --quiet)
MAILCTL="${CARGO_TARGET_DIR:-$ROOT/target}/release/mailctl"

peak_rss() { awk '/VmHWM/ {print $2 " kB"}' "/proc/$1/status"; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {
    python3 - "$1" <<'PY'
import socket, sys, time
for _ in range(300):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
PY
}

report() { # name, blast output, pid
    set -- "$1" "$2" "$3"
    secs=${2% *}
    rate=${2#* }
    printf '%-34s %6s msg/s  %7s s  peak RSS %s\n' "$1" "$rate" "$secs" "$(peak_rss "$3")"
}

echo "$TOTAL messages, $CLIENTS concurrent clients, $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)," \
    "maildirs on $(df -T "$WORK" | awk 'NR==2 {print $2}')"

# mailctl serve
"$MAILCTL" serve --maildir "$WORK/mailctl" --smtp 127.0.0.1:0 --pop3 127.0.0.1:0 \
    2>"$WORK/mailctl.log" &
SERVER_PID=$!
while ! grep -qs 'smtp listening' "$WORK/mailctl.log"; do sleep 0.05; done
PORT=$(sed -n 's/^mailctl: smtp listening on .*:\([0-9]*\)$/\1/p' "$WORK/mailctl.log")
OUT=$(python3 "$BLAST" 127.0.0.1 "$PORT" "$TOTAL" "$CLIENTS")
report "mailctl serve (fsync each)" "$OUT" "$SERVER_PID"
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=
COUNT=$(ls "$WORK/mailctl/inbox/new" | wc -l)
[ "$COUNT" -eq "$TOTAL" ] || { echo "mailctl stored $COUNT of $TOTAL" >&2; exit 1; }

if [ -z "$AIOPY" ]; then
    echo "aiosmtpd not installed: skipped (apt install python3-aiosmtpd)"
    exit 0
fi

for handler in Sink Mailbox; do
    PORT=$(free_port)
    if [ "$handler" = Mailbox ]; then
        set -- "$WORK/aio"
    else
        set --
    fi
    "$AIOPY" -m aiosmtpd -n -l "127.0.0.1:$PORT" -c "aiosmtpd.handlers.$handler" "$@" \
        >/dev/null 2>"$WORK/aio.log" &
    SERVER_PID=$!
    wait_port "$PORT"
    OUT=$(python3 "$BLAST" 127.0.0.1 "$PORT" "$TOTAL" "$CLIENTS")
    case $handler in
        Sink) name="aiosmtpd (Sink, discards)" ;;
        *) name="aiosmtpd (Maildir, no fsync)" ;;
    esac
    report "$name" "$OUT" "$SERVER_PID"
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
done
