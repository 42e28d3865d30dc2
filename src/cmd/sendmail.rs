//! `mailctl sendmail` and a `sendmail` symlink: the sendmail(8) interface
//! that cron, mutt and `git send-email` use. The message comes on stdin,
//! recipients as arguments; it is submitted over the account's SMTP server.
//!
//! sendmail's option syntax (`-fADDR`, `-oi`, `-FName`, clustered flags) does
//! not fit clap, so [`SendmailInvocation::parse`] reads the arguments by hand.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::Args;

use super::Globals;
use crate::cli::ConnectArgs;
use crate::config::{self, ResolvedServer};
use crate::exit::{fail, Exit};
use crate::mail::compose::Message;
use crate::mail::raw::{self, RawMessage};
use crate::net::smtp::Envelope;

/// Options of `mailctl sendmail`: everything after it, read the sendmail way.
#[derive(Debug, Args)]
#[command(
    disable_help_flag = true,
    override_usage = "mailctl sendmail [-t] [-i] [-f ADDR] [-F NAME] [--account NAME] [--] [RECIPIENT...]",
    after_help = SENDMAIL_HELP
)]
pub struct SendmailArgs {
    /// sendmail options and recipients (see below).
    #[arg(
        value_name = "ARGS",
        num_args = 0..,
        allow_hyphen_values = true,
        trailing_var_arg = true
    )]
    pub args: Vec<OsString>,

    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
}

/// The help text shared by `mailctl sendmail --help` and the man page.
const SENDMAIL_HELP: &str = "\
Options (sendmail syntax; a value may follow the letter directly, as in -fADDR):
  -t              also send to the To, Cc and Bcc addresses of the message
  -i, -oi         a line holding a single dot does not end the message
  -f ADDR         envelope sender (default: the account's `from`, then the
                  message's From); -r ADDR is the same
  -F NAME         full name for the From header added when there is none
  -C FILE         configuration file (like --config)
  -v              print the SMTP transcript on stderr
  -N WHEN         delivery status notifications: never, or success,failure,delay
  -R full|hdrs    what a notification returns
  -V ENVID        envelope id quoted by notifications
                  (-N, -R, -V need a server offering DSN, else nothing is sent)
  --account NAME  account to send through (default: MAILCTL_ACCOUNT, then the
                  file's default account)
  --outbox DIR    the outbox for queue = \"on-failure\" (default: the file's
                  `outbox`, else $XDG_STATE_HOME/mailctl/outbox)
  --              everything after it is a recipient
Ignored: -oem -oep -odi -odb -om -B TYPE -X FILE -L TAG
  -h N -O OPT=VAL -U -G -m -n -p PROTO -A FILE -bm.
Refused: -bs, -bp, -bd, -bi, -bv, -bt, -q (see `mailctl queue` and `mailctl serve`).

With queue = \"on-failure\" in the account (or at the top of the configuration file), a
message that cannot be sent for now (what would exit 75) is kept in the outbox instead:
the exit status is 0, stderr says `queued: ID (reason)`, and `mailctl queue run` sends it.

Any Bcc or Resent-Bcc header is removed before sending; a missing From, Date or Message-ID
header is added.

Examples:
  echo 'Subject: hi' | mailctl sendmail -i alice@example.org
  git send-email --sendmail-cmd='mailctl sendmail' --to=list@example.org 0001-*.patch
  ln -s \"$(command -v mailctl)\" ~/bin/sendmail     # for cron, mutt, mail(1)
  # muttrc:  set sendmail = \"mailctl sendmail --account work\"";

/// A parsed sendmail command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendmailInvocation {
    /// Recipients given as arguments (bare addresses).
    pub recipients: Vec<String>,
    /// `-t`: also take recipients from To, Cc and Bcc.
    pub recipients_from_headers: bool,
    /// `-i` / `-oi`: a lone `.` line is data, not the end of the message.
    pub ignore_dots: bool,
    /// `-f ADDR` / `-r ADDR`: the envelope sender (`""` for `<>`).
    pub envelope_from: Option<String>,
    /// `-F NAME`: full name for an added From header.
    pub full_name: Option<String>,
    /// `--account NAME`.
    pub account: Option<String>,
    /// `-C FILE` / `--config FILE`.
    pub config: Option<PathBuf>,
    /// `-v`.
    pub verbose: bool,
    /// `--outbox DIR`: where a message that cannot be sent now is queued
    /// (with `queue = "on-failure"` in the configuration).
    pub outbox: Option<PathBuf>,
    /// `-N WHEN`: DSN NOTIFY for every recipient.
    pub notify: Option<String>,
    /// `-R full|hdrs`: DSN RET.
    pub ret: Option<String>,
    /// `-V ENVID`: DSN envelope id.
    pub envid: Option<String>,
}

/// Options that take no value and change nothing.
const IGNORED_FLAGS: &[char] = &['m', 'n', 'U', 'G', 'x', 'E'];
/// Options that take a value and change nothing.
const IGNORED_WITH_VALUE: &[char] = &['B', 'X', 'L', 'h', 'O', 'p', 'A', 'd'];

impl SendmailInvocation {
    /// Parses sendmail-style arguments (without the program name).
    ///
    /// Errors are usage errors (exit 64) naming the option.
    pub fn parse<I, S>(args: I) -> anyhow::Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut args = args
            .into_iter()
            .map(|a| {
                a.into().into_string().map_err(|a| {
                    fail(
                        Exit::Usage,
                        format!("argument is not valid UTF-8: {}", a.to_string_lossy()),
                    )
                })
            })
            .collect::<anyhow::Result<Vec<String>>>()?
            .into_iter();
        let mut inv = SendmailInvocation::default();
        let mut only_recipients = false;
        while let Some(arg) = args.next() {
            if only_recipients || !arg.starts_with('-') || arg == "-" {
                inv.add_recipients(&arg)?;
                continue;
            }
            if arg == "--" {
                only_recipients = true;
                continue;
            }
            if let Some(long) = arg.strip_prefix("--") {
                inv.long_option(long, &mut args)?;
                continue;
            }
            let letters: Vec<char> = arg[1..].chars().collect();
            let mut i = 0;
            while i < letters.len() {
                let letter = letters[i];
                i += 1;
                let takes_value = matches!(
                    letter,
                    'f' | 'r' | 'F' | 'C' | 'o' | 'b' | 'q' | 'N' | 'R' | 'V'
                ) || IGNORED_WITH_VALUE.contains(&letter);
                if !takes_value {
                    match letter {
                        't' => inv.recipients_from_headers = true,
                        'i' => inv.ignore_dots = true,
                        'v' => inv.verbose = true,
                        'I' => crate::bail_with!(
                            Exit::Usage,
                            "-I (rebuild the alias database) is not supported: mailctl has no aliases"
                        ),
                        c if IGNORED_FLAGS.contains(&c) => {}
                        c => crate::bail_with!(Exit::Usage, "unknown sendmail option -{c}"),
                    }
                    continue;
                }
                let attached: String = letters[i..].iter().collect();
                let value = if !attached.is_empty() {
                    attached
                } else if letter == 'q' {
                    String::new()
                } else {
                    args.next().ok_or_else(|| {
                        fail(
                            Exit::Usage,
                            format!("sendmail option -{letter} needs a value"),
                        )
                    })?
                };
                inv.valued_option(letter, value)?;
                break;
            }
        }
        Ok(inv)
    }

    fn long_option(
        &mut self,
        long: &str,
        rest: &mut impl Iterator<Item = String>,
    ) -> anyhow::Result<()> {
        let (name, inline) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (long, None),
        };
        let mut value = || {
            inline.clone().or_else(|| rest.next()).ok_or_else(|| {
                fail(
                    Exit::Usage,
                    format!("sendmail option --{name} needs a value"),
                )
            })
        };
        match name {
            "account" => self.account = Some(value()?),
            "config" => self.config = Some(PathBuf::from(value()?)),
            "outbox" => self.outbox = Some(PathBuf::from(value()?)),
            "read-recipients" => self.recipients_from_headers = true,
            "verbose" => self.verbose = true,
            _ => crate::bail_with!(Exit::Usage, "unknown sendmail option --{name}"),
        }
        Ok(())
    }

    fn valued_option(&mut self, letter: char, value: String) -> anyhow::Result<()> {
        match letter {
            'f' | 'r' => {
                refuse_controls(&value, "-f")?;
                let addr = config::address_of(&value).to_string();
                check_address(&addr, "-f")?;
                self.envelope_from = Some(addr);
            }
            'F' => {
                if value.chars().any(|c| c.is_control()) {
                    crate::bail_with!(Exit::Usage, "-F name holds a control character");
                }
                self.full_name = Some(value);
            }
            'C' => self.config = Some(PathBuf::from(value)),
            'N' => self.notify = Some(value),
            'R' => self.ret = Some(value),
            'V' => self.envid = Some(value),
            'o' if value == "i" => self.ignore_dots = true,
            'b' => match value.as_str() {
                "m" => {}
                "s" => crate::bail_with!(
                    Exit::Usage,
                    "-bs (SMTP on stdin) is not supported: pipe the message itself, or use `mailctl serve`"
                ),
                "p" => crate::bail_with!(
                    Exit::Usage,
                    "-bp (print the queue) is not supported: use `mailctl queue list`"
                ),
                "d" | "D" => crate::bail_with!(
                    Exit::Usage,
                    "-b{value} (run as a daemon) is not supported: use `mailctl serve`"
                ),
                "i" => crate::bail_with!(
                    Exit::Usage,
                    "-bi (rebuild the alias database) is not supported: mailctl has no aliases"
                ),
                other => crate::bail_with!(
                    Exit::Usage,
                    "-b{other} is not supported: only -bm (send a message) is"
                ),
            },
            'q' => crate::bail_with!(
                Exit::Usage,
                "-q (process the queue) is not supported: use `mailctl queue run`"
            ),
            _ => {} // IGNORED_WITH_VALUE
        }
        Ok(())
    }

    /// Adds the addresses of one argument (which may be a comma-separated
    /// list, with display names).
    fn add_recipients(&mut self, arg: &str) -> anyhow::Result<()> {
        for part in split_addresses(arg) {
            refuse_controls(&part, "recipient")?;
            let addr = config::address_of(&part).to_string();
            if addr.is_empty() {
                continue;
            }
            check_address(&addr, "recipient")?;
            self.recipients.push(addr);
        }
        Ok(())
    }
}

/// Refuses an argument holding CR, LF or other control characters.
fn refuse_controls(text: &str, what: &str) -> anyhow::Result<()> {
    if text.chars().any(char::is_control) {
        crate::bail_with!(
            Exit::Usage,
            "{what} '{}' is not a valid address (control character)",
            crate::text::printable(text.as_bytes())
        );
    }
    Ok(())
}

/// Refuses an address that could inject a command or a header.
fn check_address(addr: &str, what: &str) -> anyhow::Result<()> {
    if addr
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '<' || c == '>')
    {
        crate::bail_with!(
            Exit::Usage,
            "{what} '{}' is not a valid address",
            crate::text::printable(addr.as_bytes())
        );
    }
    Ok(())
}

/// Splits `a@x, "Doe, J" <j@y>` at the commas outside quotes and brackets.
fn split_addresses(list: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    for c in list.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The envelope: recipients from the arguments (and with `-t` the To, Cc
/// and Bcc fields), without duplicates; the sender from `-f`, else the
/// account's `from`, else the message's From.
fn envelope(
    inv: &SendmailInvocation,
    default_from: Option<&str>,
    raw: &RawMessage,
) -> anyhow::Result<Envelope> {
    let mut recipients = inv.recipients.clone();
    if inv.recipients_from_headers {
        for addr in &raw.header_recipients {
            check_address(addr, "header address")
                .map_err(|e| fail(Exit::DataErr, format!("{e:#}")))?;
            recipients.push(addr.clone());
        }
    }
    let mut seen = std::collections::HashSet::new();
    recipients.retain(|r| seen.insert(r.to_ascii_lowercase()));
    if recipients.is_empty() {
        crate::bail_with!(
            Exit::Usage,
            "no recipients: give them as arguments, or use -t to read To, Cc and Bcc"
        );
    }
    let from = match (&inv.envelope_from, default_from, &raw.from) {
        (Some(f), _, _) => f.clone(),
        (None, Some(f), _) => config::address_of(f).to_string(),
        (None, None, Some(f)) => f.clone(),
        (None, None, None) => crate::bail_with!(
            Exit::Config,
            "no sender: give -f ADDR, set `from` in the account, or put a From header in the message"
        ),
    };
    let dsn = super::send::dsn_from(
        inv.notify.as_deref(),
        inv.ret.as_deref(),
        inv.envid.as_deref(),
    )?;
    Ok(Envelope {
        from,
        recipients,
        dsn,
    })
}

/// The From, Date and Message-ID fields the message lacks, as CRLF lines,
/// in that order.
fn missing_fields(
    inv: &SendmailInvocation,
    default_from: Option<&str>,
    envelope_from: &str,
    raw: &RawMessage,
    now: &str,
) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    if !raw.has_field("From") {
        let from_header = match (&inv.full_name, default_from) {
            (Some(name), _) if !envelope_from.is_empty() => {
                format!("{} <{envelope_from}>", display_name(name))
            }
            (None, Some(f)) if inv.envelope_from.is_none() => header_mailbox(f),
            _ if !envelope_from.is_empty() => envelope_from.to_string(),
            _ => crate::bail_with!(
                Exit::DataErr,
                "the message has no From header and the envelope sender is empty"
            ),
        };
        push_field(&mut out, "From", &from_header);
    }
    if !raw.has_field("Date") {
        push_field(&mut out, "Date", now);
    }
    if !raw.has_field("Message-ID") {
        let sender = crate::mail::compose::Mailbox {
            name: None,
            address: envelope_from.to_string(),
        };
        let id = crate::mail::compose::generate_message_id(Some(&sender));
        push_field(&mut out, "Message-ID", &format!("<{id}>"));
    }
    Ok(out)
}

/// Builds the submission from a message read by [`raw::read`]: the
/// envelope, and the message with its missing From, Date and Message-ID
/// added (Bcc and Resent-Bcc are removed by the reader).
///
/// `default_from` is the account's `from`, used as envelope sender when no
/// `-f` is given; `now` is the Date header value to add if needed.
pub fn prepare(
    inv: &SendmailInvocation,
    default_from: Option<&str>,
    raw: RawMessage,
    now: &str,
) -> anyhow::Result<(Envelope, Message)> {
    let envelope = envelope(inv, default_from, &raw)?;
    let added = missing_fields(inv, default_from, &envelope.from, &raw, now)?;
    Ok((envelope, raw.into_message(&added)))
}

fn push_field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A configured `Name <addr>` as a header value: the name quoted, or
/// RFC 2047-encoded when it is not ASCII.
fn header_mailbox(from: &str) -> String {
    let addr = config::address_of(from);
    let name = match from.rfind('<') {
        Some(open) => from[..open].trim().trim_matches('"').trim(),
        None => "",
    };
    if name.is_empty() {
        addr.to_string()
    } else {
        format!("{} <{addr}>", display_name(name))
    }
}

/// A display name as sendmail writes it: always quoted, or RFC 2047
/// encoded-words when not ASCII.
fn display_name(name: &str) -> String {
    crate::mail::compose::display_name(name, true)
}

/// Runs `mailctl sendmail ARGS...`.
pub fn run(args: SendmailArgs, globals: Globals) -> anyhow::Result<Exit> {
    run_argv(args.args, globals)
}

/// Runs sendmail mode on raw arguments (without the program name); used for
/// `mailctl sendmail` and when invoked through a `sendmail` symlink.
pub fn run_argv(args: Vec<OsString>, globals: Globals) -> anyhow::Result<Exit> {
    let inv = SendmailInvocation::parse(args)?;
    let server = account_server(&inv, globals)?;
    let raw = raw::read(&mut std::io::stdin().lock(), input_end(&inv))?;
    let now = crate::system::rfc5322_now();
    let (envelope, message) = prepare(&inv, server.from.as_deref(), raw, &now)?;
    let globals = Globals {
        verbose: globals.verbose.max(u8::from(inv.verbose)),
        ..globals
    };
    let queue_root = queue_on_failure(&inv, &server, globals)?;
    submit(&server, &envelope, &message, globals, queue_root.as_deref())
}

/// The outbox to queue in when sending fails for now, if the
/// configuration says `queue = "on-failure"` for the account.
fn queue_on_failure(
    inv: &SendmailInvocation,
    server: &ResolvedServer,
    globals: Globals,
) -> anyhow::Result<Option<PathBuf>> {
    let config_path = inv
        .config
        .clone()
        .or_else(|| globals.config.map(PathBuf::from));
    let settings = config::queue_settings(server.account.as_deref(), config_path.as_deref())?;
    if !settings.queue_on_failure {
        return Ok(None);
    }
    super::queue::outbox_root(inv.outbox.as_deref(), &settings).map(Some)
}

/// The SMTP server of the account (`--account`, else `MAILCTL_ACCOUNT`,
/// else the file's default). Sendmail mode has no `--server`: without a
/// configuration file it cannot send at all.
fn account_server(inv: &SendmailInvocation, globals: Globals) -> anyhow::Result<ResolvedServer> {
    let connect = ConnectArgs {
        account: inv.account.clone().or_else(|| {
            std::env::var("MAILCTL_ACCOUNT")
                .ok()
                .filter(|a| !a.is_empty())
        }),
        ..ConnectArgs::default()
    };
    let config_path = inv
        .config
        .clone()
        .or_else(|| globals.config.map(PathBuf::from));
    config::resolve_smtp(&connect, config_path.as_deref()).map_err(|err| {
        match err.downcast_ref::<config::Error>() {
            Some(config::Error::NoServer { path, .. }) => fail(
                Exit::Config,
                format!(
                    "sendmail mode sends through an account of the configuration file, and {} \
                     does not exist (examples/mailctl.toml shows one)",
                    path.display()
                ),
            ),
            _ => err,
        }
    })
}

/// Where the message on standard input ends: with `-i`, only at the end
/// of input.
fn input_end(inv: &SendmailInvocation) -> raw::End {
    match inv.ignore_dots {
        true => raw::End::Eof,
        false => raw::End::LoneDot,
    }
}

/// Hands the prepared message to the SMTP client: the one place sendmail
/// mode meets `mailctl send`'s submission code
/// ([`crate::net::smtp::submit`]). With `queue_root`, a temporary failure
/// puts the message in that outbox for the recipients it did not reach.
pub fn submit(
    server: &ResolvedServer,
    envelope: &Envelope,
    message: &Message,
    globals: Globals,
    queue_root: Option<&Path>,
) -> anyhow::Result<Exit> {
    let transcript = crate::transcript::Transcript::stderr(globals.verbose > 0);
    let mechanism = server.smtp_mechanism();
    match super::send::submit_with_login(server, mechanism, None, envelope, message, &transcript)? {
        Ok(_) => Ok(Exit::Ok),
        Err(failed) => match queue_root {
            Some(root) if super::queue::is_temporary(&failed.error) => {
                let reason = crate::text::printable(format!("{:#}", failed.error).as_bytes());
                let rest = super::queue::undelivered(envelope, &failed.report);
                let id = super::queue::enqueue(
                    root,
                    super::queue::ToQueue {
                        connection: crate::store::outbox::Connection {
                            account: server.account.clone(),
                            ..Default::default()
                        },
                        envelope: &rest,
                        message,
                        reason: Some(reason.clone()),
                        dsn: super::queue::dsn_request(&envelope.dsn),
                        save_copy: None,
                    },
                )?;
                super::queue::say_queued(&id, Some(&reason));
                Ok(Exit::Ok)
            }
            _ => Err(config::with_tls_hint(
                failed.error,
                server.endpoint.port,
                server.tls,
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> SendmailInvocation {
        SendmailInvocation::parse(args.iter().copied()).unwrap()
    }

    fn parse_err(args: &[&str]) -> String {
        let err = SendmailInvocation::parse(args.iter().copied()).unwrap_err();
        assert_eq!(crate::exit::exit_status(&err), Exit::Usage);
        format!("{err:#}")
    }

    #[test]
    fn git_send_email_arguments() {
        let inv = parse(&["-i", "a@example.org", "b@example.org"]);
        assert!(inv.ignore_dots);
        assert_eq!(inv.recipients, ["a@example.org", "b@example.org"]);
        let inv = parse(&["-f", "me@example.org", "-i", "a@example.org"]);
        assert_eq!(inv.envelope_from.as_deref(), Some("me@example.org"));
        assert_eq!(inv.recipients, ["a@example.org"]);
    }

    #[test]
    fn mutt_arguments() {
        let inv = parse(&[
            "-oem",
            "-oi",
            "-B8BITMIME",
            "-N",
            "failure,delay",
            "--",
            "-odd@example.org",
        ]);
        assert!(inv.ignore_dots);
        assert_eq!(inv.recipients, ["-odd@example.org"]);
    }

    #[test]
    fn cron_arguments() {
        // Debian cron: -FCronDaemon -i -B8BITMIME -oem USER
        let inv = parse(&["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"]);
        assert_eq!(inv.full_name.as_deref(), Some("CronDaemon"));
        assert!(inv.ignore_dots);
        assert_eq!(inv.recipients, ["root"]);
        // cronie: -FCronDaemon -i -odi -oem -oi -t -f USER
        let inv = parse(&[
            "-FCronDaemon",
            "-i",
            "-odi",
            "-oem",
            "-oi",
            "-t",
            "-f",
            "root",
        ]);
        assert!(inv.recipients_from_headers);
        assert_eq!(inv.envelope_from.as_deref(), Some("root"));
        assert!(inv.recipients.is_empty());
    }

    #[test]
    fn clusters_attached_values_and_long_options() {
        let inv = parse(&[
            "-ti",
            "-fme@x.org",
            "-F",
            "Jane Doe",
            "--account=work",
            "--config",
            "/c.toml",
        ]);
        assert!(inv.recipients_from_headers && inv.ignore_dots);
        assert_eq!(inv.envelope_from.as_deref(), Some("me@x.org"));
        assert_eq!(inv.full_name.as_deref(), Some("Jane Doe"));
        assert_eq!(inv.account.as_deref(), Some("work"));
        assert_eq!(inv.config, Some(PathBuf::from("/c.toml")));
        let inv = parse(&["-f<>", "-r", "<me@x.org>", "-bm", "-v", "x@y"]);
        assert_eq!(inv.envelope_from.as_deref(), Some("me@x.org"));
        assert!(inv.verbose);
        let inv = parse(&["-f", "<>", "x@y"]);
        assert_eq!(inv.envelope_from.as_deref(), Some(""));
    }

    #[test]
    fn recipient_lists_and_names() {
        let inv = parse(&["a@x.org, \"Doe, J\" <j@y.org>", "<k@z.org>"]);
        assert_eq!(inv.recipients, ["a@x.org", "j@y.org", "k@z.org"]);
    }

    #[test]
    fn refused_and_bad_options() {
        assert!(parse_err(&["-bs"]).contains("-bs"));
        assert!(parse_err(&["-bp"]).contains("queue"));
        assert!(parse_err(&["-q"]).contains("queue"));
        assert!(parse_err(&["-q30m"]).contains("queue"));
        assert!(parse_err(&["-bd"]).contains("daemon"));
        assert!(parse_err(&["-k"]).contains("unknown sendmail option -k"));
        assert!(parse_err(&["--frobnicate"]).contains("--frobnicate"));
        assert!(parse_err(&["-f"]).contains("-f needs a value"));
        assert!(parse_err(&["a@x\r\nRCPT TO:<evil@y>"]).contains("not a valid address"));
        assert!(parse_err(&["-f", "a b@x"]).contains("not a valid address"));
    }

    const NOW: &str = "Wed, 25 Nov 2026 20:00:00 +0000";

    /// What sendmail mode submits for `input`, the message as text.
    fn submit_text(
        inv: &SendmailInvocation,
        default_from: Option<&str>,
        input: &[u8],
    ) -> anyhow::Result<(Envelope, String)> {
        let raw = raw::read(&mut &input[..], input_end(inv))?;
        let (envelope, message) = prepare(inv, default_from, raw, NOW)?;
        let bytes = message.to_vec().unwrap();
        assert_eq!(bytes.len() as u64, message.size());
        Ok((envelope, String::from_utf8(bytes).unwrap()))
    }

    #[test]
    fn large_messages_keep_their_body() {
        let big = "a log line\n".repeat(200_000);
        let headers = "From: me@x.org\nTo: a@x.org\nBcc: b@x.org\nDate: d\nMessage-ID: <1@x>\n";
        let inv = parse(&["-t", "-i"]);
        let (envelope, text) = submit_text(
            &inv,
            Some("m@x.org"),
            format!("{headers}\n{big}").as_bytes(),
        )
        .unwrap();
        assert_eq!(envelope.recipients, ["a@x.org", "b@x.org"]);
        assert_eq!(envelope.from, "m@x.org");
        let expected = format!(
            "From: me@x.org\r\nTo: a@x.org\r\nDate: d\r\nMessage-ID: <1@x>\r\n\r\n{}",
            big.replace('\n', "\r\n")
        );
        assert_eq!(text, expected);
        // No blank line after the header: one is put there.
        let (_, text) = submit_text(&inv, None, format!("{headers}{big}").as_bytes()).unwrap();
        assert_eq!(text, expected);
    }

    #[test]
    fn lone_dot_ends_the_message_without_i() {
        let input = b"Subject: s\n\nline\n.\nafter\n";
        let (_, text) = submit_text(&parse(&["-f", "a@x.org", "b@x.org"]), None, input).unwrap();
        assert!(text.ends_with("Subject: s\r\n\r\nline\r\n"), "{text}");
        let (_, text) =
            submit_text(&parse(&["-i", "-f", "a@x.org", "b@x.org"]), None, input).unwrap();
        assert!(text.ends_with("line\r\n.\r\nafter\r\n"), "{text}");
    }

    #[test]
    fn endless_header_is_refused() {
        let inv = parse(&["-i", "a@x.org"]);
        let input = "X-Field: value\n".repeat(100_000);
        let err = submit_text(&inv, Some("m@x.org"), input.as_bytes()).unwrap_err();
        assert_eq!(crate::exit::exit_status(&err), Exit::DataErr);
    }

    #[test]
    fn t_reads_headers_and_removes_bcc() {
        let inv = parse(&["-t", "-i", "extra@x.org"]);
        let msg = b"From: me@x.org\nTo: a@x.org, \"B\" <b@x.org>\nCc: c@x.org\nBcc: secret@x.org,\n  also@x.org\nResent-Bcc: r@x.org\nDate: d\nMessage-ID: <1@x>\nSubject: s\n\nbody\nBcc: not a header\n";
        let (envelope, text) = submit_text(&inv, None, msg).unwrap();
        assert_eq!(envelope.from, "me@x.org");
        assert_eq!(
            envelope.recipients,
            [
                "extra@x.org",
                "a@x.org",
                "b@x.org",
                "c@x.org",
                "secret@x.org",
                "also@x.org"
            ]
        );
        assert_eq!(
            text,
            "From: me@x.org\r\nTo: a@x.org, \"B\" <b@x.org>\r\nCc: c@x.org\r\nDate: d\r\nMessage-ID: <1@x>\r\nSubject: s\r\n\r\nbody\r\nBcc: not a header\r\n"
        );
    }

    #[test]
    fn missing_headers_are_added() {
        let inv = parse(&["-FCron Daemon", "-i", "root@x.org"]);
        let msg = b"Subject: out\r\n\r\nhello\r\n";
        let (envelope, text) = submit_text(&inv, Some("Sys <sys@x.org>"), msg).unwrap();
        assert_eq!(envelope.from, "sys@x.org");
        assert!(text.starts_with(&format!(
            "From: \"Cron Daemon\" <sys@x.org>\r\nDate: {NOW}\r\nMessage-ID: <"
        )));
        assert!(
            text.ends_with("@x.org>\r\nSubject: out\r\n\r\nhello\r\n"),
            "{text}"
        );
        // Without -F, the account's own From line is used as is.
        let inv = parse(&["root@x.org"]);
        let (_, text) = submit_text(&inv, Some("Sys <sys@x.org>"), b"Subject: s\n\nb\n").unwrap();
        assert!(text.starts_with("From: \"Sys\" <sys@x.org>\r\nDate: "));
    }

    #[test]
    fn body_without_header_gets_a_blank_line() {
        let inv = parse(&["-f", "me@x.org", "a@x.org"]);
        let (_, text) = submit_text(&inv, None, b"just text\nmore\n").unwrap();
        assert!(text.ends_with(">\r\n\r\njust text\r\nmore\r\n"), "{text}");
        assert!(text.starts_with("From: me@x.org\r\n"));
    }

    #[test]
    fn no_recipient_or_sender_is_refused() {
        let msg = b"Subject: s\n\nb\n";
        let err = submit_text(&parse(&["-i"]), Some("a@x"), msg).unwrap_err();
        assert_eq!(crate::exit::exit_status(&err), Exit::Usage);
        let err = submit_text(&parse(&["a@x"]), None, msg).unwrap_err();
        assert_eq!(crate::exit::exit_status(&err), Exit::Config);
    }

    #[test]
    fn duplicates_removed() {
        let inv = parse(&["-t", "A@x.org"]);
        let (envelope, _) = submit_text(&inv, Some("m@x.org"), b"To: a@x.org\n\nb\n").unwrap();
        assert_eq!(envelope.recipients, ["A@x.org"]);
    }

    #[test]
    fn configured_from_as_header() {
        assert_eq!(header_mailbox("a@x.org"), "a@x.org");
        assert_eq!(header_mailbox("Ann <a@x.org>"), "\"Ann\" <a@x.org>");
        assert_eq!(header_mailbox("\"Ann B\" <a@x.org>"), "\"Ann B\" <a@x.org>");
        assert_eq!(
            header_mailbox("张三 <a@x.org>"),
            "=?utf-8?B?5byg5LiJ?= <a@x.org>"
        );
    }

    #[test]
    fn non_ascii_full_name_is_encoded() {
        assert_eq!(display_name("Jane \"J\" Doe"), "\"Jane \\\"J\\\" Doe\"");
        assert_eq!(display_name("张三"), "=?utf-8?B?5byg5LiJ?=");
    }
}
