//! `mailctl mail`, or mailctl started as `mail` or `mailx`: the mailx(1)
//! interface scripts use to send a report, as logrotate, cron jobs and
//! monitoring plug-ins do:
//!
//! ```text
//! mail -s SUBJECT [-a FILE] [-c CC] [-b BCC] [-r FROM] ADDR... < body
//! ```
//!
//! The body is read from standard input, and the message goes through the
//! default account (or `--account NAME`, `MAILCTL_ACCOUNT`), composed and
//! submitted by the same code as `mailctl send` and sendmail mode.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser};

use super::Globals;
use crate::cli::ConnectArgs;
use crate::exit::Exit;
use crate::mail::compose::text::TextBody;
use crate::mail::compose::{address, Draft, Mailbox};

const MAILX_HELP: &str = "\
Examples:
  df -h | mail -s \"disk usage on $(hostname)\" ops@example.org
  mail -s 'nightly report' -a report.pdf -c boss@example.org me@example.org < summary.txt
  mailctl mail -s test -r 'Backup <backup@example.org>' root@example.org < /dev/null

Started through a link named `mail` or `mailx` (ln -s \"$(command -v mailctl)\" /usr/local/bin/mail), \
mailctl takes these options directly. The message goes through the default account of the \
configuration file (or --account NAME, MAILCTL_ACCOUNT). -c and -b take comma-separated lists and may \
be repeated. Options of other mailx programs that only matter to an interactive session (-n, -N, -i, -d) \
are accepted and ignored.

Exit status: as `mailctl send`: 0 sent; 64 usage; 65 bad input; 66 a missing attachment; 75 try \
again later; 77 login refused; 78 configuration.";

/// Options of `mailctl mail` (and of mailctl started as `mail` or `mailx`).
#[derive(Debug, Args, Clone)]
#[command(after_help = MAILX_HELP)]
pub struct MailxArgs {
    /// The subject.
    #[arg(short = 's', value_name = "SUBJECT")]
    pub subject: Option<String>,

    /// Attach a file (repeatable).
    #[arg(short = 'a', value_name = "FILE")]
    pub attach: Vec<PathBuf>,

    /// Copy to these addresses (comma-separated, repeatable).
    #[arg(short = 'c', value_name = "ADDRS")]
    pub cc: Vec<String>,

    /// Blind copy to these addresses (comma-separated, repeatable).
    #[arg(short = 'b', value_name = "ADDRS")]
    pub bcc: Vec<String>,

    /// The sender [default: the account's `from`].
    #[arg(short = 'r', value_name = "FROM")]
    pub from: Option<String>,

    /// Send nothing when the body is empty.
    #[arg(short = 'E')]
    pub skip_empty: bool,

    /// Ignored (interactive settings of other mailx programs).
    #[arg(short = 'n', hide = true)]
    pub no_mailrc: bool,

    /// Ignored, as `-n`.
    #[arg(short = 'N', hide = true)]
    pub no_header_summary: bool,

    /// Ignored, as `-n`.
    #[arg(short = 'i', hide = true)]
    pub ignore_interrupts: bool,

    /// Ignored, as `-n`.
    #[arg(short = 'd', hide = true)]
    pub debug: bool,

    /// Account from the configuration file [default: the file's `default`].
    #[arg(long, value_name = "NAME", env = "MAILCTL_ACCOUNT")]
    pub account: Option<String>,

    /// The recipients.
    #[arg(value_name = "ADDR", required = true)]
    pub to: Vec<String>,
}

/// mailctl started as `mail` or `mailx`: its options, and `-v`.
#[derive(Debug, Parser)]
#[command(
    name = "mail",
    version,
    about = "Send a message, the mailx way",
    disable_help_subcommand = true
)]
struct MailxCommand {
    /// Print the protocol transcript on stderr (secrets redacted).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(flatten)]
    args: MailxArgs,
}

/// Whether a program name (argv\[0\]) is one mailctl answers as mailx.
pub fn is_mailx_name(name: &std::ffi::OsStr) -> bool {
    name == "mail" || name == "mailx"
}

/// Runs the mailx interface on a whole command line (program name first),
/// for mailctl started as `mail` or `mailx`: clap's errors are returned for
/// the caller to print.
pub fn parse_argv(argv: Vec<OsString>) -> Result<(MailxArgs, u8), clap::Error> {
    let command = MailxCommand::try_parse_from(argv)?;
    Ok((command.args, command.verbose))
}

/// Runs `mailctl mail`.
pub fn run(args: MailxArgs, globals: Globals) -> anyhow::Result<Exit> {
    let connect = ConnectArgs {
        account: args.account.clone(),
        ..ConnectArgs::default()
    };
    let server = crate::config::resolve_smtp(&connect, globals.config).map_err(|err| {
        match err.downcast_ref::<crate::config::Error>() {
            Some(crate::config::Error::NoServer { path, .. }) => crate::exit::fail(
                Exit::Config,
                format!(
                    "mail sends through the default account, and {} does not exist: \
                     `mailctl config init` writes one",
                    path.display()
                ),
            ),
            _ => err,
        }
    })?;
    let Some(draft) = draft(&args, server.from.as_deref(), globals.verbose > 0)? else {
        return Ok(Exit::Ok);
    };
    let envelope = draft.envelope()?;
    let mut message = draft.build()?;
    let progress = super::progress::Progress::sending(message.size(), globals.verbose > 0);
    message.count_bytes_with(progress.byte_counter());
    // `queue = "on-failure"` keeps what cannot be sent now, as in sendmail mode.
    let settings = crate::config::queue_settings(server.account.as_deref(), globals.config)?;
    let outbox = match settings.queue_on_failure {
        true => Some(super::queue::outbox_root(None, &settings)?),
        false => None,
    };
    super::sendmail::submit(&server, &envelope, &message, globals, outbox.as_deref())
}

/// The message the command line and standard input describe (a body not
/// in UTF-8 transcoded from the charset detected, said with `verbose`);
/// `None` with `-E` and an empty body.
fn draft(
    args: &MailxArgs,
    account_from: Option<&str>,
    verbose: bool,
) -> anyhow::Result<Option<Draft>> {
    let list = |values: &[String]| -> anyhow::Result<Vec<Mailbox>> {
        let mut out = Vec::new();
        for value in values {
            out.extend(address::parse_list(value)?);
        }
        Ok(out)
    };
    let Some(from) = args.from.as_deref().or(account_from) else {
        crate::bail_with!(
            Exit::Usage,
            "no sender: give -r FROM or a `from` in the account"
        );
    };
    let (text, spooled_text) = match super::send::read_text_body(None, None, verbose)? {
        TextBody::Memory(text) => (Some(text), None),
        TextBody::Spooled(spooled) => (None, Some(Arc::new(spooled))),
    };
    if args.skip_empty && text.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return Ok(None);
    }
    Ok(Some(Draft {
        from: Some(Mailbox::parse(from)?),
        to: list(&args.to)?,
        cc: list(&args.cc)?,
        bcc: list(&args.bcc)?,
        subject: args.subject.clone(),
        text,
        spooled_text,
        attachments: args.attach.clone(),
        ..Draft::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> MailxArgs {
        parse_argv(argv.iter().map(Into::into).collect()).unwrap().0
    }

    #[test]
    fn the_options_scripts_use() {
        let args = parse(&[
            "mail",
            "-s",
            "disk full",
            "-a",
            "df.txt",
            "-c",
            "a@x.org,b@x.org",
            "-b",
            "c@x.org",
            "-r",
            "cron@x.org",
            "root@x.org",
            "ops@x.org",
        ]);
        assert_eq!(args.subject.as_deref(), Some("disk full"));
        assert_eq!(args.attach, [PathBuf::from("df.txt")]);
        assert_eq!(args.cc, ["a@x.org,b@x.org"]);
        assert_eq!(args.bcc, ["c@x.org"]);
        assert_eq!(args.from.as_deref(), Some("cron@x.org"));
        assert_eq!(args.to, ["root@x.org", "ops@x.org"]);
        // Clustered and attached forms, and the ignored interactive flags.
        let args = parse(&["mailx", "-n", "-ssubject", "-E", "--", "-odd@x.org"]);
        assert_eq!(args.subject.as_deref(), Some("subject"));
        assert!(args.skip_empty);
        assert_eq!(args.to, ["-odd@x.org"]);
        assert!(parse_argv(vec!["mail".into(), "-s".into(), "x".into()]).is_err());
    }

    #[test]
    fn names() {
        assert!(is_mailx_name("mail".as_ref()));
        assert!(is_mailx_name("mailx".as_ref()));
        assert!(!is_mailx_name("sendmail".as_ref()));
    }
}
