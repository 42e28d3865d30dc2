#!/bin/sh
# Mail the output of a command: mailctl reads the body from standard input.
#
#   MAILCTL_PASSWORD=... examples/pipe_output.sh smtp.example.org:587 \
#       me@example.org admin@example.org df -h
#
# Environment: MAILCTL (the mailctl binary, default "mailctl"); MAILCTL_USER
# (login, default FROM; set it empty to send without authentication);
# MAILCTL_SEND_OPTS (more options for "mailctl send", e.g. "--tls none").
# The exit status is mailctl's: 0 sent, 75 try again later, others final.
set -eu
if [ $# -lt 4 ]; then
    echo "usage: $0 SERVER FROM TO COMMAND [ARG...]" >&2
    exit 64
fi
server=$1 from=$2 to=$3
shift 3
user=${MAILCTL_USER-$from}

# Run the command, keeping its status; its stderr goes into the mail too.
status=0
output=$("$@" 2>&1) || status=$?

# shellcheck disable=SC2086 # MAILCTL_SEND_OPTS is split on purpose.
printf '%s\n\n(exit status %s on %s)\n' "$output" "$status" "$(hostname)" |
    "${MAILCTL:-mailctl}" send --server "$server" ${user:+--user "$user"} \
        ${MAILCTL_SEND_OPTS:-} --from "$from" --to "$to" \
        --subject "Output of '$*' on $(hostname): status $status"
