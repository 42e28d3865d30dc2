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
    /// List and send the outbox: messages queued by `send --queue`.
    Queue(crate::cmd::queue::QueueArgs),
    /// Submit a message the sendmail way: message on stdin, recipients as
    /// arguments.
    Sendmail(crate::cmd::sendmail::SendmailArgs),
    /// Print a shell completion script.
    Completions(crate::cmd::completions::CompletionsArgs),
    /// Write the man pages, one per command.
    Man(crate::cmd::man::ManArgs),
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
