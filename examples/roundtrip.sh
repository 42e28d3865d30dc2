#!/usr/bin/env bash
# The whole round trip on one machine, with no mail account anywhere:
# start `mailctl serve` (SMTP + POP3 over a Maildir, TLS with a throwaway
# certificate), send a message with an attachment through it with
# `mailctl send`, then fetch it back with `mailctl fetch` and decode it.
#
#   bash examples/roundtrip.sh            # builds mailctl first if needed
#   MAILCTL=/path/to/mailctl bash examples/roundtrip.sh
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${MAILCTL:-}" ]; then
    echo "== building mailctl: cargo build --release"
    echo "   (the first build compiles about 150 crates and takes several minutes; cargo's progress follows)"
    # No --quiet: cargo prints a line per crate, and its progress bar when stderr is a terminal.
    cargo build --release --manifest-path "$here/Cargo.toml"
    echo "   built"
    MAILCTL="${CARGO_TARGET_DIR:-$here/target}/release/mailctl"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mailctl-roundtrip.XXXXXX")
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

echo "== mailctl serve (ports chosen by the system, log in $work/serve.log)"
"$MAILCTL" serve -v --maildir "$work/maildir" --smtp 127.0.0.1:0 --pop3 127.0.0.1:0 \
    --tls-self-signed "$work/ca.pem" 2>"$work/serve.log" &
server_pid=$!
for _ in $(seq 100); do
    grep -q 'pop3 listening' "$work/serve.log" 2>/dev/null && break
    sleep 0.1
done
smtp=$(sed -n 's/^mailctl: smtp listening on //p' "$work/serve.log")
pop3=$(sed -n 's/^mailctl: pop3 listening on //p' "$work/serve.log")
echo "   SMTP on $smtp, POP3 on $pop3, CA in $work/ca.pem"

printf 'Disk usage report\n%s\n' "$(df -h / | tail -n 1)" > "$work/报告.txt"

echo "== mailctl send (STARTTLS, certificate verified against the CA file)"
uname -a | "$MAILCTL" send -v --server "$smtp" --ca-file "$work/ca.pem" \
    --from 'Alice <alice@example.test>' --to '"张三" <bob@example.test>' \
    --subject '测试邮件: round trip' --attach "$work/报告.txt"

export MAILCTL_PASSWORD=anything   # serve without --user accepts any password
echo "== mailctl fetch --list"
"$MAILCTL" fetch --server "$pop3" --ca-file "$work/ca.pem" --user bob --list

echo "== mailctl fetch --all --delete --save-dir"
XDG_STATE_HOME="$work/state" "$MAILCTL" fetch --server "$pop3" --ca-file "$work/ca.pem" \
    --user bob --all --delete --save-dir "$work/inbox"
folder=$(find "$work/inbox" -mindepth 1 -maxdepth 1 -type d | head -n 1)
echo "== saved in $folder:"
ls -l "$folder"
echo "== attachment as received:"
cat "$folder/报告.txt"
cmp "$work/报告.txt" "$folder/报告.txt"
echo "round trip OK"
