#!/bin/sh
# Benchmark (not a test): 1000 messages from 4 concurrent SMTP clients into
# `mailctl serve` (release build, every message fsynced into a Maildir
# before 250) and into python aiosmtpd with three handlers: Sink (discards),
# Mailbox (Maildir without fsync) and serve/fsync_maildir.py (Maildir synced
# like mailctl's: data, rename into new/, new/ synced, then 250). The four
# servers are run interleaved ROUNDS times, since a shared machine is noisy;
# prints each run and the median rate per server, with its peak RSS (VmHWM).
#
# Usage: [BENCH_DIR=/path] [ROUNDS=3] tests/bench/serve.sh [TOTAL] [CLIENTS]
# BENCH_DIR is where the Maildirs go (default /tmp); its file system decides
# what fsync and file creation cost. Each client is its own process
# (serve/blast.py), so the clients keep up with the servers. To measure on
# a journaled ext4 where the machine's own file system has none (as root):
#   truncate -s 2G /var/tmp/ext4.img && mkfs.ext4 -q -F /var/tmp/ext4.img &&
#   mkdir -p /mnt/bench && mount -o loop /var/tmp/ext4.img /mnt/bench &&
#   BENCH_DIR=/mnt/bench tests/bench/serve.sh
# Needs: cargo, python3, aiosmtpd (Debian python3-aiosmtpd or pip).
set -eu

TOTAL=${1:-1000}
CLIENTS=${2:-4}
ROUNDS=${ROUNDS:-3}
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

. "$(dirname "$0")/common/servers.sh"

FS=$(df -T "$WORK" | awk 'NR==2 {print $2}')
DEV=$(df "$WORK" | awk 'NR==2 {print $1}')
case $FS in
    ext4) if ls /proc/fs/jbd2/ 2>/dev/null | grep -q "^${DEV#/dev/}-"; then FS="ext4 (journal)"; else FS="ext4 (no journal)"; fi ;;
esac
echo "$TOTAL messages, $CLIENTS concurrent clients, $ROUNDS rounds, $(nproc) CPUs," \
    "load $(cut -d' ' -f1 /proc/loadavg), maildirs on $FS"

SERVERS="mailctl"
if [ -n "$AIOPY" ]; then
    SERVERS="mailctl aio-sink aio-maildir aio-fsync"
else
    echo "aiosmtpd not installed: only mailctl runs (apt install python3-aiosmtpd)"
fi

label() {
    case $1 in
        mailctl) echo "mailctl serve (Maildir, fsync each)" ;;
        aio-sink) echo "aiosmtpd (Sink, discards)" ;;
        aio-maildir) echo "aiosmtpd (Mailbox, no fsync)" ;;
        aio-fsync) echo "aiosmtpd (Maildir, fsync each)" ;;
    esac
}

run_one() { # server, round
    srv=$1 rnd=$2
    dir="$WORK/$srv.$rnd"
    case $srv in
        mailctl)
            "$MAILCTL" serve --maildir "$dir" --smtp 127.0.0.1:0 --pop3 127.0.0.1:0 \
                2>"$WORK/mailctl.log" &
            SERVER_PID=$!
            while ! grep -qs 'smtp listening' "$WORK/mailctl.log"; do sleep 0.05; done
            PORT=$(sed -n 's/^mailctl: smtp listening on .*:\([0-9]*\)$/\1/p' "$WORK/mailctl.log")
            ;;
        *)
            PORT=$(free_port)
            case $srv in
                aio-sink) set -- aiosmtpd.handlers.Sink ;;
                aio-maildir) set -- aiosmtpd.handlers.Mailbox "$dir" ;;
                aio-fsync) set -- fsync_maildir.FsyncMaildir "$dir" ;;
            esac
            PYTHONPATH="$ROOT/tests/bench/serve" "$AIOPY" -m aiosmtpd -n -l "127.0.0.1:$PORT" \
                -c "$@" >/dev/null 2>"$WORK/aio.log" &
            SERVER_PID=$!
            wait_port "$PORT"
            ;;
    esac
    OUT=$(python3 "$BLAST" 127.0.0.1 "$PORT" "$TOTAL" "$CLIENTS")
    RSS=$(vm_peak "$SERVER_PID")
    kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
    case $srv in
        mailctl) COUNT=$(ls "$dir/inbox/new" | wc -l) ;;
        aio-sink) COUNT=$TOTAL ;;
        *) COUNT=$(ls "$dir/new" | wc -l) ;;
    esac
    [ "$COUNT" -eq "$TOTAL" ] || { echo "$srv stored $COUNT of $TOTAL" >&2; exit 1; }
    # The Maildirs are kept until the end: on ext4 without a journal, new
    # inodes skip recently deleted ones by scanning for them, so deleting a
    # run's files here would slow file creation in the runs after it.
    echo "$srv ${OUT#* } ${OUT% *} $RSS" >>"$WORK/results"
    printf '  round %s  %-38s %6s msg/s  %6s s  peak RSS %s\n' "$rnd" "$(label "$srv")" "${OUT#* }" "${OUT% *}" "$RSS"
}

round=1
while [ "$round" -le "$ROUNDS" ]; do
    for server in $SERVERS; do run_one "$server" "$round"; done
    round=$((round + 1))
done

echo "median of $ROUNDS rounds:"
for server in $SERVERS; do
    awk -v s="$server" '$1 == s {print $2, $4}' "$WORK/results" | sort -n |
        awk -v name="$(label "$server")" '{r[NR]=$1; m[NR]=$2} END {
            i = int((NR + 1) / 2); printf "  %-38s %6s msg/s  peak RSS %s kB\n", name, r[i], m[i] }'
done
