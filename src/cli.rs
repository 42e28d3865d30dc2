//! The command line: `mailctl <command> [options]`.
//!
//! Each command's options live beside its code in `cmd/`; this file holds
//! the top level and the options shared by the client commands.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Send, fetch and serve mail from the command line.
#[derive(Debug, Parser)]
#[command(
    name = "mailctl",
    version,
    about,
    propagate_version = true,
    after_help = "\
Examples:
  mailctl send --to bob@example.org --subject hi --body 'see you at 5'
  mailctl fetch --account work --new --maildir ~/Mail/work
  mailctl config check --connect
  mailctl completions bash > ~/.local/share/bash-completion/completions/mailctl

Accounts live in $XDG_CONFIG_HOME/mailctl/config.toml (see `mailctl config check --help`).
Exit status follows sysexits.h: 0 ok, 64 usage, 75 try again later, 78 configuration, ..."
)]
pub struct Cli {
    /// Print the protocol transcript on stderr (secrets redacted).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Configuration file [default: $XDG_CONFIG_HOME/mailctl/config.toml].
    #[arg(long, global = true, value_name = "FILE", env = "MAILCTL_CONFIG")]
    pub config: Option<PathBuf>,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Submit a message over SMTP.
    Send(Box<crate::cmd::send::SendArgs>),
    /// List, retrieve and delete messages over POP3.
    Fetch(crate::cmd::fetch::FetchArgs),
    /// Run a local SMTP receiver and POP3 server over a Maildir.
    Serve(crate::cmd::serve::ServeArgs),
    /// Decode saved messages into text and attachment files.
    Parse(crate::cmd::parse::ParseArgs),
    /// Check the configuration file and the servers it names.
    Config(crate::cmd::config::ConfigArgs),
    /// Store or remove an account's password in the system keyring.
    Password(crate::cmd::password::PasswordArgs),
    /// List and send the outbox: messages queued by `send --queue`.
    Queue(crate::cmd::queue::QueueArgs),
    /// Submit a message the sendmail way: message on stdin, recipients as
    /// arguments.
    Sendmail(crate::cmd::sendmail::SendmailArgs),
    /// Authorize an account's OAuth 2 access and show its tokens' state.
    #[command(name = "oauth2")]
    OAuth2(crate::cmd::oauth2::OAuth2Args),
    /// Send a message the mailx way: mail -s SUBJECT ADDR... < body.
    Mail(crate::cmd::mailx::MailxArgs),
    /// Print a shell completion script.
    Completions(crate::cmd::completions::CompletionsArgs),
    /// Write the man pages, one per command.
    Man(crate::cmd::man::ManArgs),
}

/// The global options each command ignores, hidden from its help, man
/// page and completions (they are still accepted, as everywhere).
const IGNORED_GLOBALS: &[(&str, &[&str])] = &[
    ("serve", &["config"]),
    ("parse", &["config", "verbose"]),
    ("completions", &["config", "verbose"]),
    ("man", &["config", "verbose"]),
];

/// The command line's definition, built, with each command showing only the
/// global options that mean something to it.
pub fn command() -> clap::Command {
    let mut command = definition();
    command.build();
    command
}

/// [`command`] before it is built (when settings that apply to every
/// command, such as leaving out the `help` command, can still be made).
pub fn definition() -> clap::Command {
    use clap::CommandFactory;
    let mut command = Cli::command();
    for (name, ignored) in IGNORED_GLOBALS {
        // A command's own copy of a global option is kept, not replaced,
        // when the global ones are handed down: a hidden copy hides it.
        let hidden: Vec<clap::Arg> = command
            .get_arguments()
            .filter(|a| ignored.contains(&a.get_id().as_str()))
            .map(|a| a.clone().hide(true))
            .collect();
        command = command.mut_subcommand(name, |sub| sub.args(hidden));
    }
    command
}

/// Parses the process's command line with [`command`].
pub fn parse() -> Result<Cli, clap::Error> {
    use clap::FromArgMatches;
    let matches = command().try_get_matches()?;
    Cli::from_arg_matches(&matches)
}

/// A usage error as one line, in the form of every other error: clap's
/// message without its `error:` prefix, its lines joined, then where to
/// read more (`see 'mailctl fetch --help'`), the command found among
/// `args` (the command line, program name first).
pub fn usage_error_line(err: &clap::Error, args: &[std::ffi::OsString]) -> String {
    let text = err.render().to_string();
    let message: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("Usage: "))
        .filter(|line| {
            !line.is_empty()
                && !line.starts_with("tip:")
                && !line.starts_with("For more information")
        })
        .map(|line| line.strip_prefix("error: ").unwrap_or(line))
        .collect();
    format!(
        "{} (see '{} --help')",
        message.join(" "),
        command_path(args)
    )
}

/// `mailctl fetch` or `mailctl config check`: the commands named in `args`.
fn command_path(args: &[std::ffi::OsString]) -> String {
    let program = args.first().map(std::path::Path::new);
    if let Some(name) = program.and_then(|p| p.file_name()) {
        if crate::cmd::mailx::is_mailx_name(name) {
            return name.to_string_lossy().into_owned();
        }
    }
    let mut path = vec!["mailctl".to_string()];
    let mut current = command();
    for arg in args.iter().skip(1) {
        let Some(arg) = arg.to_str() else { continue };
        if arg == "--" {
            break;
        }
        if let Some(sub) = current.find_subcommand(arg).cloned() {
            path.push(arg.to_string());
            current = sub;
        }
    }
    path.join(" ")
}

/// The options every client command takes to reach a server, and the
/// longest `--timeout`: the configuration defines them, since they override
/// its settings.
pub use crate::config::{ConnectArgs, MAX_TIMEOUT_SECS};

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
        command().debug_assert();
    }

    fn usage_error(argv: &[&str]) -> String {
        let err = command().try_get_matches_from(argv).unwrap_err();
        let args: Vec<std::ffi::OsString> = argv.iter().map(Into::into).collect();
        usage_error_line(&err, &args)
    }

    #[test]
    fn usage_errors_are_one_line_naming_the_help_to_read() {
        let line = usage_error(&["mailctl", "fetch", "--bogus"]);
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.starts_with("unexpected argument '--bogus' found"),
            "{line}"
        );
        assert!(line.ends_with("(see 'mailctl fetch --help')"), "{line}");
        let line = usage_error(&["mailctl", "fetch", "--delete-oversized"]);
        assert!(line.contains("--max-size <BYTES>"), "{line}");
        assert!(line.ends_with("(see 'mailctl fetch --help')"), "{line}");
        let line = usage_error(&["mailctl", "frobnicate"]);
        assert!(line.ends_with("(see 'mailctl --help')"), "{line}");
        let line = usage_error(&["mailctl", "--config", "x", "send", "--timeout", "0"]);
        assert_eq!(
            line,
            "invalid value '0' for '--timeout <SECS>': expected whole seconds from 1 to 86400 \
             (see 'mailctl send --help')"
        );
        let line = usage_error(&["/usr/bin/mailx", "fetch", "--nope"]);
        assert!(line.ends_with("(see 'mailx --help')"), "{line}");
        let line = usage_error(&["mailctl", "config", "check", "--nope"]);
        assert!(
            line.ends_with("(see 'mailctl config check --help')"),
            "{line}"
        );
    }

    #[test]
    fn global_options_are_shown_only_where_they_mean_something() {
        let mut command = command();
        let shown = |command: &mut clap::Command, name: &str, arg: &str| {
            let sub = command.find_subcommand_mut(name).unwrap();
            !sub.get_arguments()
                .find(|a| a.get_id() == arg)
                .unwrap()
                .is_hide_set()
        };
        for name in ["send", "fetch", "config", "sendmail"] {
            assert!(shown(&mut command, name, "config"), "{name}");
            assert!(shown(&mut command, name, "verbose"), "{name}");
        }
        assert!(shown(&mut command, "serve", "verbose"));
        assert!(!shown(&mut command, "serve", "config"));
        for name in ["parse", "completions", "man"] {
            assert!(!shown(&mut command, name, "config"), "{name}");
            assert!(!shown(&mut command, name, "verbose"), "{name}");
        }
        // Still accepted there.
        let parsed = command.try_get_matches_from(["mailctl", "parse", "-v", "x.eml"]);
        assert!(parsed.is_ok(), "{parsed:?}");
    }

    fn sendmail_args(argv: &[&str]) -> (Vec<String>, u8) {
        let cli = Cli::try_parse_from(argv).unwrap();
        match cli.command {
            Command::Sendmail(args) => (
                args.args
                    .into_iter()
                    .map(|a| a.into_string().unwrap())
                    .collect(),
                cli.verbose,
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sendmail_arguments_pass_through_untouched() {
        for rest in [
            &["-oem", "-oi", "--", "a@x"][..],
            &["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"][..],
            &["-f", "me@x", "-i", "a@x", "b@x"][..],
            &["-ti", "-h", "5", "--account", "work"][..],
            &["--account=work", "-t", "--", "-v"][..],
        ] {
            let mut argv = vec!["mailctl", "sendmail"];
            argv.extend_from_slice(rest);
            assert_eq!(sendmail_args(&argv).0, rest, "{rest:?}");
        }
        // Global options before the command still work.
        let (args, verbose) = sendmail_args(&["mailctl", "-v", "sendmail", "-i", "a@x"]);
        assert_eq!(
            (args, verbose),
            (vec!["-i".to_string(), "a@x".to_string()], 1)
        );
    }

    #[test]
    fn account_flag_on_client_commands() {
        let cli =
            Cli::try_parse_from(["mailctl", "--config", "/c.toml", "config", "check"]).unwrap();
        assert_eq!(cli.config.as_deref(), Some(std::path::Path::new("/c.toml")));
        let connect = <ConnectArgs as clap::Args>::augment_args(clap::Command::new("x"));
        let matches = connect
            .try_get_matches_from(["x", "--account", "work", "--server", "h"])
            .unwrap();
        assert_eq!(
            matches.get_one::<String>("account").map(String::as_str),
            Some("work")
        );
    }
}
