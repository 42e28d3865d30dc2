#!/usr/bin/env bash
# Benchmark (not a test): sending a backlog. N queued small messages (200 by
# default) go to the local Postfix of tests/interop/setup.sh (STARTTLS on
# 10587, AUTH PLAIN as alice, recipient sink@example.test, accepted then
# discarded) by `mailctl queue run` (one connection, pipelined transactions),
# against a shell loop running msmtp once per message.
#
# The outbox is filled with `mailctl send --queue-only` before the clock
# starts. Reported: wall time of each, messages per second, and the ratio
# mailctl / msmtp (goal: at most 0.2). Each case runs BENCH_RUNS times (default
# 3); the median is reported.
#
# Usage: tests/bench/queue.sh
# Knobs: BENCH_QUEUE_MESSAGES=200  BENCH_RUNS=3  BENCH_QUEUE_PORT=10587 (10025: plain, no AUTH)
#        MAILCTL_BIN=/path/to/mailctl (else: cargo build --release)
set -euo pipefail
. "$(dirname "$0")/common/lib.sh"
bench_init
bench_mailctl

N=${BENCH_QUEUE_MESSAGES:-200}
RUNS=${BENCH_RUNS:-3}
PORT=${BENCH_QUEUE_PORT:-$SMTP_SUBMISSION_PORT}
W=$BENCH_WORK/queue
mkdir -p "$W"
FROM=alice@$MAIL_DOMAIN
TO=$SINK_ADDRESS
export MAILCTL_PASSWORD=$USER_ALICE_PASSWORD
OUTBOX=$W/outbox

printf 'From: %s\r\nTo: %s\r\nSubject: queue bench\r\nDate: Thu, 1 Jan 2026 00:00:00 +0000\r\nMessage-ID: <bench@example.test>\r\n\r\nA small message of the backlog.\r\n' \
    "$FROM" "$TO" >"$W/small.eml"

if [ "$PORT" = "$SMTP_PLAIN_PORT" ]; then
    mailctl_conn=(--server "127.0.0.1:$PORT" --tls none)
    msmtp_conn="--tls=off"
else
    mailctl_conn=(--server "127.0.0.1:$PORT" --tls starttls --ca-file "$CA_FILE" --user alice)
    msmtp_conn="--tls=on --tls-starttls=on --tls-trust-file=$CA_FILE --auth=plain --user=alice --passwordeval='echo $USER_ALICE_PASSWORD'"
fi

fill_outbox() {
    rm -rf "$OUTBOX"
    local i
    for i in $(seq 1 "$N"); do
        "$MAILCTL" send "${mailctl_conn[@]}" --raw --to "$TO" --queue-only --outbox "$OUTBOX" \
            <"$W/small.eml" 2>/dev/null
    done
}

msmtp_loop() {
    local i
    for i in $(seq 1 "$N"); do
        eval msmtp --host=127.0.0.1 --port="$PORT" "$msmtp_conn" --from="$FROM" "$TO" <"$W/small.eml"
    done
}

elapsed() {
    local t0 t1
    t0=$(date +%s.%N)
    "$@"
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f\n", b - a}'
}

: >"$W/mailctl.wall"
: >"$W/msmtp.wall"
for run in $(seq 1 "$RUNS"); do
    bench_log "run $run/$RUNS: filling the outbox with $N messages"
    fill_outbox
    bench_log "run $run/$RUNS: mailctl queue run"
    elapsed "$MAILCTL" queue run --outbox "$OUTBOX" >>"$W/mailctl.wall"
    left=$(find "$OUTBOX" -mindepth 1 -maxdepth 1 -type d ! -name tmp ! -name failed | wc -l)
    [ "$left" = 0 ] || { echo "queue run left $left entries" >&2; exit 1; }
    bench_log "run $run/$RUNS: msmtp x $N"
    elapsed msmtp_loop >>"$W/msmtp.wall"
done

mailctl_s=$(median <"$W/mailctl.wall")
msmtp_s=$(median <"$W/msmtp.wall")
printf 'workload\tclient\tmedian s\tmessages/s\n%s\t%s\t%s\t%s\n%s\t%s\t%s\t%s\n' \
    "$N queued, port $PORT" "mailctl queue run" "$mailctl_s" "$(awk -v n="$N" -v s="$mailctl_s" 'BEGIN {printf "%.0f", n / s}')" \
    "$N queued, port $PORT" "msmtp x $N" "$msmtp_s" "$(awk -v n="$N" -v s="$msmtp_s" 'BEGIN {printf "%.0f", n / s}')" |
    if command -v column >/dev/null; then column -t -s $'\t'; else cat; fi
awk -v a="$mailctl_s" -v b="$msmtp_s" 'BEGIN {r = a / b; printf "ratio mailctl / msmtp: %.3f (goal <= 0.2): %s\n", r, (r <= 0.2 ? "met" : "NOT met")}'
