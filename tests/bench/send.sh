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
#        tests/bench/send.sh compare               # small message, hyperfine, targets
# Knobs: BENCH_CLIENTS="mailctl,curl,msmtp,curl-T"  BENCH_RTTS="0,50"
#        BENCH_SEND_WORKLOADS="small,10MB,50MB"  BENCH_RUNS=5 (small)  BENCH_BIG_RUNS=3
#        MAILCTL_BIN=/path/to/mailctl (else: cargo build --release)
#        BENCH_PROXY_LOG=FILE (log every chunk and round trip seen by the proxy)
#
# `compare` times only the small message with hyperfine (BENCH_COMPARE_RUNS,
# default 30, after 3 warm-up runs): mailctl against curl straight to
# Postfix, and mailctl against msmtp through delay_proxy.py at +50 ms RTT
# (BENCH_COMPARE_RTT); it prints each median, the ratios next to the targets
# (mailctl <= 1.5x curl direct, <= 0.9x msmtp at +50 ms) and the peak RSS of
# each client (/usr/bin/time -v, the highest of 3 runs). MAILCTL_BASELINE_BIN=FILE
# adds a second mailctl build (say, one of main) to every comparison.
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

# ------------------------------------------------------------ compare
# peak_rss CMD: the highest "Maximum resident set size" (KiB) of 3 runs.
peak_rss() {
    local i max=0 kb
    for i in 1 2 3; do
        /usr/bin/time -v bash -c "exec $1" >/dev/null 2>"$W/time.out" || {
            bench_log "FAILED: $1"; tail -n 5 "$W/time.out" >&2; return 1; }
        kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$W/time.out")
        [ "$kb" -gt "$max" ] && max=$kb
    done
    echo "$max"
}

# hyperfine_pair LABEL PORT JSON NAME CMD [NAME CMD ...]: one hyperfine run
# over the commands (@PORT@ replaced), results exported to JSON.
hyperfine_pair() {
    local label=$1 port=$2 json=$3 args=() name cmd
    shift 3
    while [ $# -gt 0 ]; do
        name=$1 cmd=${2//@PORT@/$port}
        shift 2
        args+=(-n "$name" "$cmd")
    done
    bench_log "$label: hyperfine, $COMPARE_RUNS runs each"
    hyperfine --style none --warmup 3 --runs "$COMPARE_RUNS" --export-json "$json" \
        "${args[@]}" >&2
}

compare() {
    COMPARE_RUNS=${BENCH_COMPARE_RUNS:-30}
    local rtt=${BENCH_COMPARE_RTT:-50} base=${MAILCTL_BASELINE_BIN:-}
    local m mb c s
    m=$(mailctl_cmd "") c=$(curl_T_cmd small.eml) s=$(msmtp_cmd small.eml)
    mb=${m/#$MAILCTL/$base}
    local baseline=()
    [ -n "$base" ] && baseline=("mailctl (baseline)" "$mb")
    hyperfine_pair "direct" "$PORT" "$W/compare-direct.json" \
        mailctl "$m" "${baseline[@]}" curl "$c"
    start_proxy "$PORT" "$rtt"
    hyperfine_pair "+$rtt ms RTT" "$PROXY_PORT" "$W/compare-rtt.json" \
        mailctl "$m" "${baseline[@]}" msmtp "$s"
    stop_proxy
    local rss_m rss_b=- rss_c rss_s
    rss_m=$(peak_rss "${m//@PORT@/$PORT}")
    [ -n "$base" ] && rss_b=$(peak_rss "${mb//@PORT@/$PORT}")
    rss_c=$(peak_rss "${c//@PORT@/$PORT}")
    rss_s=$(peak_rss "${s//@PORT@/$PORT}")
    python3 - "$W/compare-direct.json" "$W/compare-rtt.json" "$rtt" \
        "$rss_m" "$rss_b" "$rss_c" "$rss_s" <<'PY'
import json, sys
direct, delayed, rtt = sys.argv[1], sys.argv[2], sys.argv[3]
rss = dict(zip(["mailctl", "mailctl (baseline)", "curl", "msmtp"], sys.argv[4:8]))
def medians(path):
    return {r["command"]: r["median"] for r in json.load(open(path))["results"]}
def mib(kb):
    return "-" if kb == "-" else "%.1f" % (int(kb) / 1024)
ok = True
for title, path, ref, target in [("direct", direct, "curl", 1.5),
                                  ("+%s ms RTT" % rtt, delayed, "msmtp", 0.9)]:
    med = medians(path)
    print("small STARTTLS+AUTH send, %s (median of hyperfine runs)" % title)
    for name, t in med.items():
        line = "  %-20s %8.1f ms  peak RSS %6s MiB" % (name, t * 1000, mib(rss.get(name, "-")))
        if name != ref:
            ratio = t / med[ref]
            line += "  %.2fx %s" % (ratio, ref)
            if name == "mailctl":
                good = ratio <= target
                ok &= good
                line += " (target <= %.1fx: %s)" % (target, "met" if good else "MISSED")
        print(line)
sys.exit(0 if ok else 1)
PY
}

if [ "${1:-}" = compare ]; then
    compare
    exit
fi

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
