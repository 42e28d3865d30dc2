#!/usr/bin/env bash
# Benchmark (not a test): POP3 retrieval from the local Dovecot of
# tests/interop/setup.sh (STLS on 10110, USER/PASS) by mailctl, mpop,
# fetchmail and curl, direct and with +50 ms RTT through
# tests/bench/common/delay_proxy.py.
#
# Workloads, filled directly into the Maildirs once (kept between runs; the
# clients keep the messages on the server):
#   1000x2KB  user bench:    1000 messages of about 2 KB
#   20x5MB    user bigbench: 20 messages of about 5 MB
# Every client retrieves every message into a fresh local directory: mailctl
# --maildir, mpop --delivery=maildir, fetchmail into a BSMTP file, curl one
# file per message (pop3://host/[1-N], one connection).
#
# Reported per case: median wall time, peak RSS of the client, round trips the
# client waited for (see delay_proxy.py), connections.
#
# Usage: tests/bench/fetch.sh                      # everything, prints a table
# Knobs: BENCH_CLIENTS="mailctl,mpop,fetchmail,curl"  BENCH_RTTS="0,50"
#        BENCH_FETCH_WORKLOADS="1000x2KB,20x5MB"  BENCH_RUNS=3
#        BENCH_SLOW_RUNS=1 (curl and fetchmail on 1000 messages at +RTT: ~1-2 min each)
#        MAILCTL_BIN=/path/to/mailctl (else: cargo build --release)
#        BENCH_PROXY_LOG=FILE (log every chunk and round trip seen by the proxy)
set -euo pipefail
. "$(dirname "$0")/common/lib.sh"
bench_init
want mailctl && bench_mailctl

RUNS=${BENCH_RUNS:-3}
SLOW_RUNS=${BENCH_SLOW_RUNS:-1}
WORKLOADS=$(echo "${BENCH_FETCH_WORKLOADS:-1000x2KB,20x5MB}" | tr ',' ' ')
W=$BENCH_WORK/fetch
OUT=$W/out
mkdir -p "$W"
PORT=$POP3_PORT

# ------------------------------------------------------------ mailboxes
fill() { # MAILDIR COUNT SIZE
    python3 - "$1" "$2" "$3" "$MAIL_UID" "$MAIL_GID" <<'PY'
import base64, os, sys
maildir, count, size, uid, gid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
existing = [n for sub in ("new", "cur") for n in os.listdir(os.path.join(maildir, sub))
            if n.startswith("bench.")]
if len(existing) == count:
    sys.exit(0)
for sub in ("new", "cur"):
    for n in os.listdir(os.path.join(maildir, sub)):
        os.unlink(os.path.join(maildir, sub, n))
rand = os.urandom(size)
for i in range(count):
    head = (f"From: Bench Sender <sender@example.test>\r\n"
            f"To: bench@example.test\r\n"
            f"Subject: benchmark message {i + 1}\r\n"
            f"Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n"
            f"Message-ID: <bench.{count}.{i + 1}@example.test>\r\n"
            f"MIME-Version: 1.0\r\n"
            f"Content-Type: application/octet-stream\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n").encode()
    b64 = base64.b64encode(rand[: (size - len(head)) * 3 // 4])
    lines = b"\r\n".join(b64[j:j + 76] for j in range(0, len(b64), 76)) + b"\r\n"
    name = f"bench.{count}.{i + 1:05d}.M{i}.mailctl-bench"
    tmp = os.path.join(maildir, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(head + lines)
    os.chown(tmp, uid, gid)
    os.rename(tmp, os.path.join(maildir, "new", name))
PY
}

# ------------------------------------------------------------ clients
export XDG_STATE_HOME=$W/state
mailctl_cmd() { # USER
    echo "env MAILCTL_PASSWORD=$2 $MAILCTL fetch --server 127.0.0.1:@PORT@ --tls starttls --ca-file $CA_FILE --user $1 --auth user --all --maildir $OUT"
}
mpop_cmd() {
    echo "mpop -C /dev/null --host=127.0.0.1 --port=@PORT@ --tls=on --tls-starttls=on --tls-trust-file=$CA_FILE --auth=user --user=$1 --passwordeval='echo $2' --keep=on --only-new=off --delivery=maildir,$OUT --uidls-file=$W/mpop.uidls"
}
fetchmail_cmd() {
    local rc=$W/fetchmailrc.$1
    cat >"$rc" <<RC
set no syslog
poll localhost via 127.0.0.1 protocol pop3 auth password timeout 120
  user $1 there with password "$2" is root here
  sslproto 'TLS1.2+' sslcertck sslcertfile "$CA_FILE" sslcommonname localhost
  keep fetchall bsmtp "$OUT/fetchmail.bsmtp"
RC
    chmod 600 "$rc"
    echo "env FETCHMAILHOME=$W fetchmail -f $rc --idfile $W/fetchmail.ids --pidfile $W/fetchmail.pid -P @PORT@"
}
curl_cmd() { # USER PASSWORD COUNT
    echo "curl -sS --ssl-reqd --cacert $CA_FILE -u $1:$2 'pop3://127.0.0.1:@PORT@/[1-$3]' --create-dirs -o '$OUT/#1.eml'"
}

for workload in $WORKLOADS; do
    case $workload in
        1000x2KB) user=bench; count=1000; size=2048 ;;
        20x5MB) user=bigbench; count=20; size=$((5 * 1000 * 1000)) ;;
        *) echo "unknown workload $workload" >&2; exit 64 ;;
    esac
    UPPER=$(echo "$user" | tr '[:lower:]' '[:upper:]')
    maildir_var=USER_${UPPER}_MAILDIR
    pw_var=USER_${UPPER}_PASSWORD
    bench_log "filling $user's mailbox: $count messages of $size bytes"
    fill "${!maildir_var}" "$count" "$size"
    pw=${!pw_var}
    for rtt in $(bench_rtts); do
        slow=$RUNS
        [ "$rtt" != 0 ] && [ "$count" -ge 100 ] && slow=$SLOW_RUNS
        # Every run starts from an empty local store and must retrieve all.
        export BENCH_PREPARE="rm -rf '$OUT' '$W/mpop.uidls' '$W/fetchmail.ids' && mkdir -p '$OUT/new' '$OUT/cur' '$OUT/tmp'"
        export BENCH_CHECK="n=\$(find '$OUT' -type f | wc -l); grep -c '^DATA' '$OUT/fetchmail.bsmtp' 2>/dev/null | grep -qx $count || [ \$n -eq $count ]"
        want mailctl && measure "fetch $workload" mailctl "$rtt" "$PORT" "$RUNS" "$(mailctl_cmd $user "$pw")"
        want mpop && measure "fetch $workload" mpop "$rtt" "$PORT" "$RUNS" "$(mpop_cmd $user "$pw")"
        want fetchmail && measure "fetch $workload" fetchmail "$rtt" "$PORT" "$slow" "$(fetchmail_cmd $user "$pw")"
        want curl && measure "fetch $workload" curl "$rtt" "$PORT" "$slow" "$(curl_cmd $user "$pw" $count)"
        unset BENCH_PREPARE BENCH_CHECK
    done
done
rm -rf "$OUT"
print_table
