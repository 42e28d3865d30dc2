# Shared helpers of tests/bench/send.sh and tests/bench/fetch.sh (sourced).
#
# A case is a command line (a string, run as `bash -c "exec CMD"` so the
# peak RSS measured is the client's own) with @PORT@ standing for the
# server's port. measure() runs it:
#   direct (RTT 0):  RUNS timed runs straight to the server, plus one run
#                    through delay_proxy.py with no delay to count round trips;
#   RTT > 0:         RUNS timed runs through delay_proxy.py adding that RTT,
#                    round trips counted on the same runs.
# Each result is one row of $BENCH_RESULTS (tab-separated) and printed.

BENCH_COMMON=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_ROOT=$(cd "$BENCH_COMMON/../../.." && pwd)

bench_log() { printf '[bench] %s\n' "$*" >&2; }

bench_init() {
    local env_file=${MAILCTL_INTEROP_ENV:-${MAILCTL_INTEROP_DIR:-/tmp/mailctl-interop}/env}
    [ -r "$env_file" ] || { echo "no $env_file: run tests/interop/setup.sh first (as root)" >&2; exit 1; }
    set -a
    # shellcheck disable=SC1090
    . "$env_file"
    set +a
    [ -x /usr/bin/time ] || { echo "/usr/bin/time missing: apt-get install time" >&2; exit 1; }
    BENCH_WORK=${BENCH_WORK:-$MAILCTL_INTEROP_DIR/bench}
    mkdir -p "$BENCH_WORK"
    # A caller-given results file is appended to (all.sh shares one).
    if [ -z "${BENCH_RESULTS:-}" ]; then
        BENCH_RESULTS=$BENCH_WORK/results-$(date +%Y%m%d-%H%M%S).tsv
        : >"$BENCH_RESULTS"
    fi
    BENCH_PROXY_PID=
    trap bench_cleanup EXIT
}

bench_cleanup() {
    stop_proxy
}

# The mailctl binary to measure: $MAILCTL_BIN, else a release build.
bench_mailctl() {
    if [ -n "${MAILCTL_BIN:-}" ]; then
        MAILCTL=$MAILCTL_BIN
    else
        bench_log "building mailctl (release)"
        (cd "$BENCH_ROOT" && cargo build --release --quiet --bin mailctl) >&2
        MAILCTL=${CARGO_TARGET_DIR:-$BENCH_ROOT/target}/release/mailctl
    fi
    [ -x "$MAILCTL" ] || { echo "no mailctl binary at $MAILCTL" >&2; exit 1; }
}

# start_proxy TARGET_PORT RTT_MS: sets PROXY_PORT and PROXY_STATS.
start_proxy() {
    local target=$1 rtt=$2 i
    PROXY_STATS=$BENCH_WORK/proxy.stats.json
    local port_file=$BENCH_WORK/proxy.port
    rm -f "$port_file" "$PROXY_STATS"
    # BENCH_PROXY_LOG=FILE: every chunk and round trip of every case, appended.
    python3 "$BENCH_COMMON/delay_proxy.py" --target "127.0.0.1:$target" --rtt-ms "$rtt" \
        --port-file "$port_file" --stats-file "$PROXY_STATS" \
        ${BENCH_PROXY_LOG:+--log "$BENCH_PROXY_LOG"} 2>>"$BENCH_WORK/proxy.log" &
    BENCH_PROXY_PID=$!
    for i in $(seq 1 200); do
        [ -s "$port_file" ] && break
        sleep 0.05
    done
    [ -s "$port_file" ] || { echo "delay proxy did not start" >&2; exit 1; }
    PROXY_PORT=$(cat "$port_file")
}

# stop_proxy: stops the proxy we started (by pid) and lets it write stats.
stop_proxy() {
    if [ -n "${BENCH_PROXY_PID:-}" ]; then
        kill -TERM "$BENCH_PROXY_PID" 2>/dev/null || true
        wait "$BENCH_PROXY_PID" 2>/dev/null || true
        BENCH_PROXY_PID=
    fi
}

proxy_stat() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$PROXY_STATS" "$1"; }

median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

# run_once CMD PORT: one run; appends wall seconds to $BENCH_WORK/wall and
# peak RSS (KiB) to $BENCH_WORK/rss; returns the client's exit status.
run_once() {
    local cmd=${1//@PORT@/$2} t0 t1 rc=0
    [ -n "${BENCH_PREPARE:-}" ] && bash -c "$BENCH_PREPARE"
    t0=$(date +%s.%N)
    /usr/bin/time -f %M -o "$BENCH_WORK/rss.once" bash -c "exec $cmd" \
        >"$BENCH_WORK/out.once" 2>"$BENCH_WORK/err.once" || rc=$?
    t1=$(date +%s.%N)
    if [ $rc != 0 ]; then
        bench_log "FAILED (exit $rc): $cmd"
        tail -n 5 "$BENCH_WORK/err.once" | sed 's/^/[bench]   /' >&2
        return $rc
    fi
    [ -n "${BENCH_CHECK:-}" ] && { bash -c "$BENCH_CHECK" || { bench_log "check failed: $BENCH_CHECK"; return 1; }; }
    awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f\n", b - a}' >>"$BENCH_WORK/wall"
    tail -n 1 "$BENCH_WORK/rss.once" >>"$BENCH_WORK/rss"
}

# measure WORKLOAD CLIENT RTT_MS TARGET_PORT RUNS CMD
measure() {
    local workload=$1 client=$2 rtt=$3 target=$4 runs=$5 cmd=$6 i rc=0 rt=- conns=-
    if [ "$runs" -lt 1 ]; then
        bench_log "$workload / $client / +${rtt} ms RTT: skipped (0 runs asked)"
        return 0
    fi
    : >"$BENCH_WORK/wall"
    : >"$BENCH_WORK/rss"
    bench_log "$workload / $client / +${rtt} ms RTT: $runs run(s)"
    if [ "$rtt" = 0 ]; then
        for i in $(seq 1 "$runs"); do run_once "$cmd" "$target" || { rc=1; break; }; done
        if [ $rc = 0 ]; then
            : >"$BENCH_WORK/wall.keep"; cp "$BENCH_WORK/wall" "$BENCH_WORK/wall.keep"
            cp "$BENCH_WORK/rss" "$BENCH_WORK/rss.keep"
            start_proxy "$target" 0
            run_once "$cmd" "$PROXY_PORT" || rc=1
            stop_proxy
            rt=$(proxy_stat round_trips); conns=$(proxy_stat connections)
            cp "$BENCH_WORK/wall.keep" "$BENCH_WORK/wall"
            cp "$BENCH_WORK/rss.keep" "$BENCH_WORK/rss"
        fi
    else
        start_proxy "$target" "$rtt"
        for i in $(seq 1 "$runs"); do run_once "$cmd" "$PROXY_PORT" || { rc=1; break; }; done
        stop_proxy
        if [ $rc = 0 ]; then
            rt=$(( $(proxy_stat round_trips) / runs )); conns=$(( $(proxy_stat connections) / runs ))
        fi
    fi
    local wall rss
    if [ $rc = 0 ]; then
        wall=$(median <"$BENCH_WORK/wall")
        rss=$(sort -g "$BENCH_WORK/rss" | tail -n 1)
        printf '%s\t%s\t%s\t%.3f\t%.1f\t%s\t%s\t%s\n' "$workload" "$client" "$rtt" "$wall" \
            "$(awk -v k="$rss" 'BEGIN {print k / 1024}')" "$rt" "$conns" "$runs" >>"$BENCH_RESULTS"
    else
        printf '%s\t%s\t%s\tFAILED\t-\t-\t-\t%s\n' "$workload" "$client" "$rtt" "$runs" >>"$BENCH_RESULTS"
    fi
}

# print_table: the results so far as an aligned table.
print_table() {
    {
        printf 'workload\tclient\t+RTT ms\tmedian s\tpeak RSS MiB\tround trips\tconnections\truns\n'
        cat "$BENCH_RESULTS"
    } | if command -v column >/dev/null; then column -t -s $'\t'; else cat; fi
    echo "(results: $BENCH_RESULTS)"
}

# want CLIENT: whether this client is selected ($BENCH_CLIENTS, default all).
want() { [ -z "${BENCH_CLIENTS:-}" ] || [[ " ${BENCH_CLIENTS//,/ } " == *" $1 "* ]]; }

# want_rtt RTT: whether this RTT is selected ($BENCH_RTTS, default "0 50").
bench_rtts() { echo "${BENCH_RTTS:-0 50}" | tr ',' ' '; }
