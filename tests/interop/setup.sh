#!/usr/bin/env bash
# Installs and starts the real servers the interop tests and benchmarks use:
# Postfix (SMTP submission) and Dovecot (POP3), on 127.0.0.1 only, from config
# files of our own under a state directory; the system's /etc configs are not
# used and their daemons are never started.
#
# Usage (as root):  tests/interop/setup.sh        # install, configure, (re)start
#                   MAILCTL_INTEROP_DIR=/path tests/interop/setup.sh
#                   tests/interop/setup.sh --no-install   # skip apt-get
# Then:             . /tmp/mailctl-interop/env     # ports, users, passwords, CA
# Stop with:        tests/interop/stop.sh
#
# Idempotent: re-running rewrites the configs, keeps the CA and certificate
# (unless they expire within a day), keeps the mailboxes and restarts both
# servers.
set -euo pipefail

DIR=${MAILCTL_INTEROP_DIR:-/tmp/mailctl-interop}
DOMAIN=example.test
VMAIL_USER=mailctl-vmail
SMTP_PLAIN_PORT=10025
SMTP_SUBMISSION_PORT=10587
SMTP_SMTPS_PORT=10465
SMTP_CLIENTCERT_PORT=10589
POP3_PORT=10110
POP3S_PORT=10995
# Mailbox users. alice and bob are for people trying things by hand; the
# others each belong to one interop test so parallel tests never share a
# mailbox; sink's mail is discarded (send benchmarks); bench and bigbench hold
# the fetch benchmark's mailboxes.
USERS="alice bob carol dave erin frank grace heidi ivan judy mike oscar peggy quinn rupert sybil sink bench bigbench olga otto"
PACKAGES="postfix dovecot-core dovecot-pop3d swaks libnet-ssleay-perl libio-socket-ssl-perl msmtp mpop fetchmail curl hyperfine python3 openssl time bsdextrautils procps ca-certificates dbus gnome-keyring libdbus-1-dev pkg-config chromium fonts-wqy-zenhei"

INSTALL=1
for arg in "$@"; do
    case $arg in
        --no-install) INSTALL=0 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown argument: $arg" >&2; exit 64 ;;
    esac
done

log() { printf '[interop-setup] %s\n' "$*"; }
die() { printf '[interop-setup] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts servers)"
case $DIR in /*) ;; *) die "MAILCTL_INTEROP_DIR must be an absolute path" ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)

# ---------------------------------------------------------------- packages
install_packages() {
    local missing=() p
    for p in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        log "packages already installed"
        return
    fi
    log "installing: ${missing[*]}"
    # Debian's maintainer scripts start postfix and dovecot with the stock
    # all-interfaces configuration unless policy-rc.d forbids it (exit 101).
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# mailctl interop setup: no daemon starts during apt-get install\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        created_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    elif ! grep -q 'exit 101' "$policy"; then
        die "$policy exists and does not forbid starting daemons; refusing to install"
    fi
    # No system-wide mail configuration: ours lives under $DIR.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    export DEBIAN_FRONTEND=noninteractive
    local try
    for try in 1 2 3; do
        apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null && break
        [ "$try" = 3 ] && die "apt-get failed three times"
        log "apt-get failed, retrying in 10 s"
        sleep 10
    done
    if [ $created_policy = 1 ]; then
        rm -f "$policy"
        trap - EXIT
    fi
}
[ $INSTALL = 1 ] && install_packages
for cmd in postfix dovecot openssl; do
    command -v "$cmd" >/dev/null || [ -x "/usr/sbin/$cmd" ] || die "$cmd is not installed (run without --no-install)"
done
export PATH=$PATH:/usr/sbin:/sbin

# ---------------------------------------------------------------- stop old
if [ -x "$HERE/stop.sh" ]; then
    MAILCTL_INTEROP_DIR=$DIR "$HERE/stop.sh" --quiet
fi

# ---------------------------------------------------------------- layout
if ! id "$VMAIL_USER" >/dev/null 2>&1; then
    log "creating system user $VMAIL_USER (owns the test mailboxes)"
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$VMAIL_USER"
fi
VMAIL_UID=$(id -u "$VMAIL_USER")
VMAIL_GID=$(id -g "$VMAIL_USER")

mkdir -p "$DIR"/{tls,postfix,postfix-spool,postfix-data,dovecot,dovecot/run,dovecot/state,log,mail}
chmod 755 "$DIR" "$DIR/log" "$DIR/dovecot" "$DIR/postfix"
chmod 700 "$DIR/tls"
chown postfix:postfix "$DIR/postfix-data"
chown "$VMAIL_USER:$VMAIL_USER" "$DIR/mail"
chmod 755 "$DIR/mail"

# ---------------------------------------------------------------- TLS
TLS=$DIR/tls
if [ ! -s "$TLS/server.crt" ] || ! openssl x509 -checkend 86400 -noout -in "$TLS/server.crt" >/dev/null 2>&1 \
    || ! openssl x509 -checkend 86400 -noout -in "$TLS/ca.pem" >/dev/null 2>&1; then
    log "generating a throwaway CA and a server certificate for localhost/127.0.0.1"
    openssl req -x509 -newkey rsa:2048 -nodes -days 90 -sha256 \
        -keyout "$TLS/ca.key" -out "$TLS/ca.pem" -subj "/CN=mailctl interop test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -sha256 \
        -keyout "$TLS/server.key" -out "$TLS/server.csr" -subj "/CN=localhost" 2>/dev/null
    cat >"$TLS/server.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
EXT
    openssl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" \
        -CAcreateserial -days 60 -sha256 -extfile "$TLS/server.ext" -out "$TLS/server.crt" 2>/dev/null
    rm -f "$TLS/server.csr"
fi
# Client certificates: one signed by the CA and listed in Postfix's
# relay_clientcerts, one self-signed that Postfix does not know. The CA's one
# names the user quinn, whom Dovecot logs in with SASL EXTERNAL.
CERT_USER=quinn
if [ ! -s "$TLS/client.crt" ] || ! openssl x509 -checkend 86400 -noout -in "$TLS/client.crt" >/dev/null 2>&1 \
    || ! openssl verify -CAfile "$TLS/ca.pem" "$TLS/client.crt" >/dev/null 2>&1 \
    || ! openssl x509 -noout -subject -in "$TLS/client.crt" | grep -q "CN *= *$CERT_USER\$"; then
    log "generating client certificates"
    openssl req -newkey rsa:2048 -nodes -sha256 \
        -keyout "$TLS/client.key" -out "$TLS/client.csr" -subj "/CN=$CERT_USER" 2>/dev/null
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' \
        >"$TLS/client.ext"
    openssl x509 -req -in "$TLS/client.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" \
        -CAcreateserial -days 60 -sha256 -extfile "$TLS/client.ext" -out "$TLS/client.crt" 2>/dev/null
    openssl req -x509 -newkey rsa:2048 -nodes -days 60 -sha256 \
        -keyout "$TLS/stranger.key" -out "$TLS/stranger.crt" -subj "/CN=stranger" 2>/dev/null
    rm -f "$TLS/client.csr"
fi
chmod 600 "$TLS"/*.key
chmod 644 "$TLS/ca.pem" "$TLS/server.crt" "$TLS/client.crt" "$TLS/stranger.crt"
# The CA certificate is what clients need; keep a readable copy outside tls/.
cp "$TLS/ca.pem" "$DIR/ca.pem"
chmod 644 "$DIR/ca.pem"

# ---------------------------------------------------------------- users
password_of() { printf 'pw-%s-4711' "$1"; }
: >"$DIR/dovecot/users.new"
: >"$DIR/postfix/vmailbox.new"
for u in $USERS; do
    # {PLAIN} passwords: what makes CRAM-MD5 and APOP possible.
    printf '%s:{PLAIN}%s::::::\n' "$u" "$(password_of "$u")" >>"$DIR/dovecot/users.new"
    printf '%s@%s %s/%s/Maildir/\n' "$u" "$DOMAIN" "$DOMAIN" "$u" >>"$DIR/postfix/vmailbox.new"
    for sub in tmp new cur; do
        install -d -o "$VMAIL_USER" -g "$VMAIL_USER" -m 700 "$DIR/mail/$DOMAIN/$u/Maildir/$sub"
    done
    chown "$VMAIL_USER:$VMAIL_USER" "$DIR/mail/$DOMAIN" "$DIR/mail/$DOMAIN/$u" "$DIR/mail/$DOMAIN/$u/Maildir"
done
mv "$DIR/dovecot/users.new" "$DIR/dovecot/users"
# SASL EXTERNAL: the client certificate's user, with no password to check.
printf '%s:::::::nopassword=y\n' "$CERT_USER" >"$DIR/dovecot/users-cert"
chown root:dovecot "$DIR/dovecot/users-cert"
chmod 640 "$DIR/dovecot/users-cert"
mv "$DIR/postfix/vmailbox.new" "$DIR/postfix/vmailbox"
chown root:dovecot "$DIR/dovecot/users"
chmod 640 "$DIR/dovecot/users"
# Mail for sink@ is accepted, queued, then thrown away.
printf 'sink@%s discard:\n' "$DOMAIN" >"$DIR/postfix/transport"

# ---------------------------------------------------------------- OAuth 2
# Dovecot checks OAuth 2 access tokens itself (local JWT validation, no
# network): HS256 JWTs signed with this key, `sub` = the user, issuer
# mailctl-interop. The dict key is <azp or default>/<alg>/<kid or default>
# and the value the key in base64. tests/interop/token_server.py signs with it.
KEYS=$DIR/dovecot/oauth2-keys
mkdir -p "$KEYS/default/HS256"
if [ ! -s "$KEYS/default/HS256/default" ]; then
    log "generating the HS256 key of the OAuth 2 token server"
    openssl rand -base64 32 | tr -d '\n' >"$KEYS/default/HS256/default.new"
    mv "$KEYS/default/HS256/default.new" "$KEYS/default/HS256/default"
fi
chown -R root:dovecot "$KEYS"
chmod 750 "$KEYS" "$KEYS/default" "$KEYS/default/HS256"
chmod 640 "$KEYS/default/HS256/default"
cat >"$DIR/dovecot/oauth2.conf.ext" <<CONF
# Without introspection_mode = local spelled out, the auth process crashes
# on the first token.
introspection_mode = local
local_validation_key_dict = fs:posix:prefix=$KEYS/
username_attribute = sub
issuers = mailctl-interop
CONF
chmod 644 "$DIR/dovecot/oauth2.conf.ext"

# ---------------------------------------------------------------- dovecot
DH=""
[ -r /usr/share/dovecot/dh.pem ] && DH="ssl_dh = </usr/share/dovecot/dh.pem"
cat >"$DIR/dovecot/dovecot.conf" <<CONF
# mailctl interop test server: POP3 on 127.0.0.1 only.
instance_name = mailctl-interop
base_dir = $DIR/dovecot/run
state_dir = $DIR/dovecot/state
protocols = pop3
listen = 127.0.0.1
log_path = $DIR/log/dovecot.log
info_log_path = $DIR/log/dovecot.log
default_internal_user = dovecot
default_login_user = dovenull

ssl = yes
ssl_cert = <$TLS/server.crt
ssl_key = <$TLS/server.key
$DH
ssl_min_protocol = TLSv1.2
# Client certificates from the test CA are asked for, not required; one
# that verifies (the test CA has no CRL) names its user (commonName) for
# SASL EXTERNAL.
ssl_ca = <$TLS/ca.pem
ssl_verify_client_cert = yes
ssl_require_crl = no
auth_ssl_username_from_cert = yes
ssl_cert_username_field = commonName

auth_mechanisms = plain login cram-md5 apop scram-sha-1 scram-sha-256 oauthbearer xoauth2 external
# Loopback counts as secure for Dovecot, so plaintext logins on 127.0.0.1
# work without TLS too (the clients are the ones that must insist on TLS).
disable_plaintext_auth = yes
# EXTERNAL: the certificate's user, only if listed; no password.
passdb {
  driver = passwd-file
  mechanisms = external
  args = username_format=%n $DIR/dovecot/users-cert
}
# OAuth 2 tokens first, and only for the token mechanisms.
passdb {
  driver = oauth2
  mechanisms = oauthbearer xoauth2
  args = $DIR/dovecot/oauth2.conf.ext
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n $DIR/dovecot/users
}
userdb {
  driver = static
  args = uid=$VMAIL_UID gid=$VMAIL_GID home=$DIR/mail/$DOMAIN/%n
}
mail_location = maildir:~/Maildir
first_valid_uid = $VMAIL_UID
last_valid_uid = $VMAIL_UID
first_valid_gid = $VMAIL_GID
last_valid_gid = $VMAIL_GID

pop3_uidl_format = %08Xu%08Xv
pop3_logout_format = top=%t/%p, retr=%r/%b, del=%d/%m, size=%s

service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $POP3_PORT
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = $POP3S_PORT
    ssl = yes
  }
}
service auth {
  # Postfix's smtpd asks this socket to check SMTP AUTH.
  unix_listener auth-postfix {
    mode = 0660
    user = postfix
    group = postfix
  }
}
CONF

# ---------------------------------------------------------------- postfix
PF=$DIR/postfix
SPOOL=$DIR/postfix-spool
cat >"$PF/main.cf" <<CONF
# mailctl interop test server: SMTP on 127.0.0.1 only, delivers only to
# Maildirs under $DIR/mail, never to the outside.
compatibility_level = 3.6
queue_directory = $SPOOL
data_directory = $DIR/postfix-data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = $DIR/log/postfix.log
maillog_file_prefixes = $DIR/log

myhostname = mail.$DOMAIN
mydomain = $DOMAIN
myorigin = $DOMAIN
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks_style = host
mynetworks = 127.0.0.0/8
smtpd_banner = \$myhostname ESMTP mailctl interop
biff = no
append_dot_mydomain = no
smtputf8_enable = yes
alias_maps =
alias_database =

# No delivery outside: only the virtual domain below.
relayhost =
default_transport = error:outside delivery is disabled on this test server
relay_transport = error:outside delivery is disabled on this test server
local_transport = error:local delivery is disabled on this test server
relay_domains =
transport_maps = texthash:$PF/transport
virtual_mailbox_domains = $DOMAIN
virtual_mailbox_base = $DIR/mail
virtual_mailbox_maps = texthash:$PF/vmailbox
virtual_uid_maps = static:$VMAIL_UID
virtual_gid_maps = static:$VMAIL_GID
virtual_minimum_uid = $VMAIL_UID
virtual_mailbox_limit = 0
# Room for a 50 MB attachment (base64: ~68 MB).
message_size_limit = 134217728
mailbox_size_limit = 0

smtpd_tls_cert_file = $TLS/server.crt
smtpd_tls_key_file = $TLS/server.key
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtp_tls_security_level = none

smtpd_sasl_type = dovecot
smtpd_sasl_path = $DIR/dovecot/run/auth-postfix
smtpd_sasl_auth_enable = no
smtpd_sasl_authenticated_header = yes
smtpd_sasl_security_options = noanonymous
smtpd_sasl_tls_security_options = noanonymous
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions =
# The client-certificate listener lets in exactly the certificates listed
# here by SHA-256 fingerprint.
smtpd_tls_fingerprint_digest = sha256
relay_clientcerts = texthash:$PF/relay_clientcerts
CONF
printf '%s mailctl-interop-client\n' \
    "$(openssl x509 -in "$TLS/client.crt" -noout -fingerprint -sha256 | cut -d= -f2)" >"$PF/relay_clientcerts"


# Every service unchrooted (our paths are outside the spool) and every
# listener bound to 127.0.0.1.
cat >"$PF/master.cf" <<CONF
# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:$SMTP_PLAIN_PORT inet n - n - - smtpd
  -o syslog_name=postfix/smtp-plain
127.0.0.1:$SMTP_SUBMISSION_PORT inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
127.0.0.1:$SMTP_CLIENTCERT_PORT inet n - n - - smtpd
  -o syslog_name=postfix/clientcert
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_ask_ccert=yes
  -o smtpd_tls_CAfile=$TLS/ca.pem
  -o smtpd_recipient_restrictions=permit_tls_clientcerts,reject
127.0.0.1:$SMTP_SMTPS_PORT inet n - n - - smtpd
  -o syslog_name=postfix/smtps
  -o smtpd_tls_wrappermode=yes
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
CONF

# ---------------------------------------------------------------- start
log "starting dovecot (config $DIR/dovecot/dovecot.conf)"
# The daemons must not inherit our stdout/stderr: a caller reading them
# through a pipe (CI, `| tee`) would otherwise wait for them to exit.
dovecot -c "$DIR/dovecot/dovecot.conf" </dev/null >>"$DIR/log/dovecot-start.log" 2>&1 || {
    cat "$DIR/log/dovecot-start.log" >&2; die "dovecot did not start"; }
log "starting postfix (config directory $PF)"
postfix -c "$PF" check </dev/null >"$DIR/log/postfix-start.log" 2>&1 &&
postfix -c "$PF" start </dev/null >>"$DIR/log/postfix-start.log" 2>&1 || {
    cat "$DIR/log/postfix-start.log" >&2; die "postfix did not start"; }

wait_port() {
    local port=$1 i
    for i in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    die "nothing listens on 127.0.0.1:$port (see $DIR/log/)"
}
for port in $SMTP_PLAIN_PORT $SMTP_SUBMISSION_PORT $SMTP_SMTPS_PORT $SMTP_CLIENTCERT_PORT $POP3_PORT $POP3S_PORT; do
    wait_port "$port"
done
for i in $(seq 1 100); do [ -S "$DIR/dovecot/run/auth-postfix" ] && break; sleep 0.1; done

# ---------------------------------------------------------------- env file
{
    echo "# Written by tests/interop/setup.sh: source it, or set MAILCTL_INTEROP_ENV to its path."
    echo "MAILCTL_INTEROP_DIR=$DIR"
    echo "MAIL_HOST=127.0.0.1"
    echo "MAIL_DOMAIN=$DOMAIN"
    echo "SMTP_PLAIN_PORT=$SMTP_PLAIN_PORT"
    echo "SMTP_SUBMISSION_PORT=$SMTP_SUBMISSION_PORT"
    echo "SMTP_SMTPS_PORT=$SMTP_SMTPS_PORT"
    echo "SMTP_CLIENTCERT_PORT=$SMTP_CLIENTCERT_PORT"
    echo "CLIENT_CERT=$TLS/client.crt"
    echo "CLIENT_KEY=$TLS/client.key"
    echo "STRANGER_CERT=$TLS/stranger.crt"
    echo "STRANGER_KEY=$TLS/stranger.key"
    echo "POP3_PORT=$POP3_PORT"
    echo "POP3S_PORT=$POP3S_PORT"
    echo "CA_FILE=$DIR/ca.pem"
    echo "MAIL_UID=$VMAIL_UID"
    echo "MAIL_GID=$VMAIL_GID"
    echo "MAIL_USERS=${USERS// /,}"
    echo "SINK_ADDRESS=sink@$DOMAIN"
    echo "POSTFIX_CONFIG_DIR=$PF"
    echo "DOVECOT_CONFIG=$DIR/dovecot/dovecot.conf"
    echo "LOG_DIR=$DIR/log"
    echo "OAUTH2_KEY_FILE=$KEYS/default/HS256/default"
    echo "OAUTH2_ISSUER=mailctl-interop"
    for u in $USERS; do
        U=$(echo "$u" | tr '[:lower:]' '[:upper:]')
        echo "USER_${U}_PASSWORD=$(password_of "$u")"
        echo "USER_${U}_MAILDIR=$DIR/mail/$DOMAIN/$u/Maildir"
    done
} >"$DIR/env.new"
chmod 644 "$DIR/env.new"
mv "$DIR/env.new" "$DIR/env"

log "ready: SMTP 127.0.0.1:$SMTP_SUBMISSION_PORT (STARTTLS) :$SMTP_SMTPS_PORT (TLS) :$SMTP_PLAIN_PORT (plain);"
log "       POP3 127.0.0.1:$POP3_PORT (STLS) :$POP3S_PORT (TLS); users: $USERS (password pw-USER-4711)"
log "env file: $DIR/env   (export MAILCTL_INTEROP_ENV=$DIR/env)"
