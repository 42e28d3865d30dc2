//! The configuration file's format, for `mailctl help config` and the
//! `mailctl.toml(5)` man page.

/// What the file holds, key by key (help text: a heading line ending in
/// `:` starts a block kept line for line).
pub const FORMAT: &str = "\
The file (TOML) lives at $XDG_CONFIG_HOME/mailctl/config.toml (~/.config/mailctl/config.toml), \
or --config FILE, or MAILCTL_CONFIG. `mailctl config init` writes a first one; `mailctl config \
check` validates it, naming FILE:LINE for a mistake (exit 78). Flags on the command line override \
the file; a command line giving --server without --account does not read it.

Keys:
  default = \"NAME\"                  account used without --account (optional with one account)
  [accounts.NAME]
  from = \"Name <addr@example.org>\"  sender of send, mail and sendmail mode
  user = \"addr@example.org\"         login for both servers
  password_command = \"CMD\"          first line of CMD's output is the password (or token)
  password_env = \"VAR\"              the password is in environment variable VAR
  password = \"...\"                  the password itself: only in a private (0600) file
  ca_file = \"PATH\"                  trusted CA certificates (PEM) instead of the system's
  [accounts.NAME.smtp]              and [accounts.NAME.pop3], each:
  host = \"HOST\"                     required
  port = N                          default 465/995, or 587/110 with tls starttls or none
  tls = \"implicit|starttls|none\"    default from port: 465/995 implicit, else starttls
  user, password_command, password_env, password, ca_file    this server only
  auth = \"MECH\"                     smtp: auto|plain|login|cram-md5|xoauth2; pop3: auto|user|apop|plain|xoauth2
  timeout = SECS                    connect and each read or write (default 60)
  [accounts.NAME.fetch]             where fetch puts mail without a destination flag, one of:
  maildir = \"DIR\"  mbox = \"FILE\"  save_dir = \"DIR\"  mda = \"CMD\"

Paths may start with ~/ ; relative ones are taken from the file's directory. Without a password \
source, mailctl asks on the terminal; MAILCTL_PASSWORD and --password-command win over the file. \
examples/mailctl.toml in the source shows every key with its explanation.";
