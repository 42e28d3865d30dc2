#!/usr/bin/env bash
# Benchmark (not a test): SMTP submission to the local Postfix of
# tests/interop/setup.sh (STARTTLS on 10587, AUTH PLAIN, recipient
# sink@example.test whose mail is accepted then discarded), by mailctl, curl
# and msmtp, direct and with +50 ms RTT through tests/bench/common/delay_proxy.py.
#
# Workloads: a small text message; a message with a 10 MB attachment; one with
# a 50 MB attachment. mailctl and `curl -F` build the big messages themselves
# from the attachment file; msmtp (which cannot attach) and `curl -T` send a
# message prebuilt once by python.
#
# Reported per case: median wall time, peak RSS of the client, round trips the
# client waited for (see delay_proxy.py), connections.
#
# Usage: tests/bench/send.sh                       # everything, prints a table
# Knobs: BENCH_CLIENTS="mailctl,curl,msmtp,curl-T"  BENCH_RTTS="0,50"
#        BENCH_SEND_WORKLOADS="small,10MB,50MB"  BENCH_RUNS=5 (small)  BENCH_BIG_RUNS=3
#        MAILCTL_BIN=/path/to/mailctl (else: cargo build --release)
#        BENCH_PROXY_LOG=FILE (log every chunk and round trip seen by the proxy)
set -euo pipefail
. "$(dirname "$0")/common/lib.sh"
bench_init
want mailctl && bench_mailctl

RUNS=${BENCH_RUNS:-5}
BIG_RUNS=${BENCH_BIG_RUNS:-3}
WORKLOADS=$(echo "${BENCH_SEND_WORKLOADS:-small,10MB,50MB}" | tr ',' ' ')
W=$BENCH_WORK/send
mkdir -p "$W"
PORT=$SMTP_SUBMISSION_PORT
FROM=alice@$MAIL_DOMAIN
TO=$SINK_ADDRESS
PW=$USER_ALICE_PASSWORD
export MAILCTL_PASSWORD=$PW

# ------------------------------------------------------------ inputs
printf 'Hello,\n\nthis is the benchmark'"'"'s small message.\nIt has a few lines of text.\n\n-- \nmailctl bench\n' >"$W/small.txt"
for mb in 10 50; do
    [ -s "$W/att$mb.bin" ] || head -c $((mb * 1000 * 1000)) /dev/urandom >"$W/att$mb.bin"
done
python3 - "$W" "$FROM" "$TO" <<'PY'
import sys, os
from email.message import EmailMessage
from email.policy import SMTP
w, frm, to = sys.argv[1:4]
def build(name, attachment):
    path = os.path.join(w, name)
    if os.path.exists(path):
        return
    m = EmailMessage(policy=SMTP)
    m["From"], m["To"], m["Subject"] = frm, to, "mailctl bench " + name
    m.set_content(open(os.path.join(w, "small.txt")).read())
    if attachment:
        with open(os.path.join(w, attachment), "rb") as f:
            m.add_attachment(f.read(), maintype="application", subtype="octet-stream", filename=attachment)
    with open(path + ".tmp", "wb") as f:
        f.write(m.as_bytes())
    os.replace(path + ".tmp", path)
build("small.eml", None)
build("big10.eml", "att10.bin")
build("big50.eml", "att50.bin")
PY

# ------------------------------------------------------------ clients
mailctl_cmd() { # ATTACH-or-empty
    local attach=""
    [ -n "$1" ] && attach="--attach $W/$1"
    echo "$MAILCTL send --server 127.0.0.1:@PORT@ --tls starttls --ca-file $CA_FILE --user alice --auth plain --from $FROM --to $TO --subject 'mailctl bench' --body-file $W/small.txt $attach"
}
curl_common="curl -sS --ssl-reqd --cacert $CA_FILE smtp://127.0.0.1:@PORT@ --mail-from $FROM --mail-rcpt $TO -u alice:$PW --login-options AUTH=PLAIN"
curl_T_cmd() { echo "$curl_common -T $W/$1"; }
curl_F_cmd() { echo "$curl_common -H 'Subject: curl bench' -H 'From: $FROM' -H 'To: $TO' -F '=<$W/small.txt;type=text/plain' -F 'file=@$W/$1;encoder=base64'"; }
msmtp_cmd() { echo "msmtp --host=127.0.0.1 --port=@PORT@ --tls=on --tls-starttls=on --tls-trust-file=$CA_FILE --auth=plain --user=alice --passwordeval='echo $PW' --from=$FROM $TO < $W/$1"; }

for rtt in $(bench_rtts); do
    for workload in $WORKLOADS; do
        case $workload in
            small) runs=$RUNS; att=""; eml=small.eml ;;
            10MB) runs=$BIG_RUNS; att=att10.bin; eml=big10.eml ;;
            50MB) runs=$BIG_RUNS; att=att50.bin; eml=big50.eml ;;
            *) echo "unknown workload $workload" >&2; exit 64 ;;
        esac
        want mailctl && measure "send $workload" mailctl "$rtt" "$PORT" "$runs" "$(mailctl_cmd "$att")"
        if [ -z "$att" ]; then
            want curl && measure "send $workload" "curl -T" "$rtt" "$PORT" "$runs" "$(curl_T_cmd "$eml")"
        else
            want curl && measure "send $workload" "curl -F" "$rtt" "$PORT" "$runs" "$(curl_F_cmd "$att")"
            want curl-T && measure "send $workload" "curl -T (prebuilt)" "$rtt" "$PORT" "$runs" "$(curl_T_cmd "$eml")"
        fi
        want msmtp && measure "send $workload" "msmtp (prebuilt)" "$rtt" "$PORT" "$runs" "$(msmtp_cmd "$eml")"
    done
done
print_table
