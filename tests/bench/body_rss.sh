#!/usr/bin/env bash
# Measurement (not a test): peak RSS and wall time of `mailctl send` with a
# large text body on standard input and with --body-file, and of `mailctl
# sendmail` with a large message on standard input, each submitting to a
# local `mailctl serve`. Every delivered message is checked: its body, decoded,
# must be the input (line endings made CRLF).
#
# Usage: tests/bench/body_rss.sh [MB]        # default 200
# Knobs: MAILCTL_BIN=/path/to/mailctl (default: cargo build --release)
#        BENCH_BINS="before=/path/a after=/path/b" (compare several builds)
#        BENCH_DIR=/path (scratch space; needs about 4x MB free)
# Needs /usr/bin/time (GNU) and python3.
set -euo pipefail
MB=${1:-200}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [ -z "${BENCH_BINS:-}" ]; then
    if [ -z "${MAILCTL_BIN:-}" ]; then
        (cd "$ROOT" && cargo build --release --quiet)
        MAILCTL_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/mailctl
    fi
    BENCH_BINS="mailctl=$MAILCTL_BIN"
fi
WORK=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/mailctl-body-rss.XXXXXX")
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

# ------------------------------------------------------------ inputs
# A log (ASCII, sent 7bit) and a mostly-ASCII UTF-8 text (quoted-printable).
python3 - "$WORK" "$MB" <<'PY'
import sys
work, mb = sys.argv[1], int(sys.argv[2])
size = mb * 1000 * 1000
lines = {
    "log.txt": "2025-07-01T10:{m:02}:{s:02}Z backup[{i}]: copied /srv/data/file-{i}.dat ({i} bytes)\n",
    "utf8.txt": "{i:>8} Grüße aus Köln: report line {i}, every job finished without errors.\n",
}
for name, fmt in lines.items():
    with open(f"{work}/{name}", "w", encoding="utf-8") as f:
        written, i = 0, 0
        while written < size:
            line = fmt.format(i=i, m=i // 60 % 60, s=i % 60)
            f.write(line)
            written += len(line.encode())
            i += 1
PY
{ printf 'From: cron@example.org\nTo: ops@example.org\nSubject: nightly log\n\n'; cat "$WORK/log.txt"; } >"$WORK/message.txt"

first_bin=${BENCH_BINS%% *}
first_bin=${first_bin#*=}
"$first_bin" serve --maildir "$WORK/maildir" --smtp 127.0.0.1:0 --pop3 127.0.0.1:0 \
    --max-size 4000000000 2>"$WORK/serve.log" &
SERVER_PID=$!
while ! grep -qs 'smtp listening' "$WORK/serve.log"; do sleep 0.05; done
PORT=$(sed -n 's/^mailctl: smtp listening on .*:\([0-9]*\)$/\1/p' "$WORK/serve.log")
cat >"$WORK/config.toml" <<EOF
[accounts.local]
from = "cron@example.org"
[accounts.local.smtp]
host = "127.0.0.1"
port = $PORT
tls = "none"
EOF
chmod 600 "$WORK/config.toml"

# ------------------------------------------------------------ checks
check() { # mailbox, file holding the expected body (LF line endings)
    python3 - "$WORK/maildir/$1" "$2" <<'PY'
import sys, os, hashlib, quopri, base64, io
box, expected_path = sys.argv[1:3]
files = [os.path.join(box, d, f) for d in ("new", "cur") for f in os.listdir(os.path.join(box, d))]
assert len(files) == 1, files
digest = hashlib.sha256()
with open(files[0], "rb") as f:
    encoding = b"7bit"
    for line in f:
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-transfer-encoding":
            encoding = value.strip().lower()
    if encoding == b"quoted-printable":
        out = io.BytesIO()
        quopri.decode(f, out)
        body = out.getvalue()
    elif encoding == b"base64":
        body = base64.b64decode(b"".join(l.strip() for l in f))
    else:
        body = f.read()
digest.update(body.replace(b"\r\n", b"\n"))
with open(expected_path, "rb") as f:
    expected = hashlib.sha256(f.read()).hexdigest()
print("ok" if digest.hexdigest() == expected else "MISMATCH", encoding.decode())
os.remove(files[0])
PY
}

measure() { # label, mailbox, expected body, stdin, command...
    label=$1 box=$2 expected=$3 input=$4
    shift 4
    /usr/bin/time -f '%M %e' -o "$WORK/time" "$@" <"$input" || echo "  (exit $?)"
    read -r rss secs <"$WORK/time"
    printf '%-34s %8.1f MiB %7.1f s   %s\n' "$label" "$(echo "$rss / 1024" | bc -l)" "$secs" \
        "$(check "$box" "$expected")"
}

echo "body of $MB MB; peak RSS of the client, wall time, delivered body check, encoding"
for entry in $BENCH_BINS; do
    name=${entry%%=*}
    bin=${entry#*=}
    send=("$bin" send --server "127.0.0.1:$PORT" --tls none --from cron@example.org --subject log)
    log=$WORK/log.txt
    measure "$name: send < log.txt" log "$log" "$log" "${send[@]}" --to log@example.org
    measure "$name: send < utf8.txt" utf8 "$WORK/utf8.txt" "$WORK/utf8.txt" \
        "${send[@]}" --to utf8@example.org
    measure "$name: send --body-file log.txt" file "$log" /dev/null \
        "${send[@]}" --to file@example.org --body-file "$log"
    measure "$name: sendmail -i < message.txt" sm "$log" "$WORK/message.txt" \
        "$bin" sendmail -C "$WORK/config.toml" -i sm@example.org
done
