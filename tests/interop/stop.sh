#!/usr/bin/env bash
# Stops the Postfix and Dovecot that tests/interop/setup.sh started, by their
# pid files under the state directory (never by process name). Mailboxes,
# certificates and configs stay; setup.sh starts them again.
#
# Usage: tests/interop/stop.sh [--quiet]      (MAILCTL_INTEROP_DIR as for setup.sh)
set -euo pipefail

DIR=${MAILCTL_INTEROP_DIR:-/tmp/mailctl-interop}
QUIET=0
[ "${1:-}" = --quiet ] && QUIET=1
log() { [ $QUIET = 1 ] || printf '[interop-stop] %s\n' "$*"; }

# stop_pidfile NAME PIDFILE EXPECTED_COMM
stop_pidfile() {
    local name=$1 file=$2 comm=$3 pid i
    [ -r "$file" ] || { log "$name: no pid file ($file), not running"; return 0; }
    pid=$(tr -dc '0-9' <"$file")
    if [ -z "$pid" ] || [ ! -d "/proc/$pid" ]; then
        log "$name: pid ${pid:-?} from $file is not running"
        return 0
    fi
    # A stale pid file may name an unrelated process that got the same pid.
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$comm" ]; then
        log "$name: pid $pid is not $comm, leaving it alone"
        return 0
    fi
    log "$name: stopping pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
        [ -d "/proc/$pid" ] || { log "$name: stopped"; return 0; }
        sleep 0.1
    done
    log "$name: pid $pid still running after 10 s, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
}

stop_pidfile postfix "$DIR/postfix-spool/pid/master.pid" master
stop_pidfile dovecot "$DIR/dovecot/run/master.pid" dovecot
