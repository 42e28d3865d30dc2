#!/bin/sh
# Mail the output of a command: the body is read from standard input.
#
#   MAILCTL_PASSWORD=... examples/pipe_output.sh smtp.example.org:587 \
#       me@example.org admin@example.org df -h
#
# The exit status is mailctl's: 0 sent, 75 try again later, others final.
set -eu
if [ $# -lt 4 ]; then
    echo "usage: $0 SERVER FROM TO COMMAND [ARG...]" >&2
    exit 64
fi
server=$1 from=$2 to=$3
shift 3
MAILCTL=${MAILCTL:-mailctl}

# Run the command, keeping its status; stderr goes into the mail too.
status=0
output=$("$@" 2>&1) || status=$?

printf '%s\n\n(exit status %s on %s)\n' "$output" "$status" "$(hostname)" |
    "$MAILCTL" send --server "$server" --user "$from" \
        --from "$from" --to "$to" \
        --subject "Output of '$*' on $(hostname): status $status"
