//! One module per subcommand: its options and its `run`.

pub mod completions;
pub mod config;
pub mod copy;
pub mod fetch;
pub mod inbox;
pub mod mailx;
pub mod man;
pub mod oauth2;
pub mod parse;
pub mod password;
pub mod progress;
pub mod queue;
pub mod send;
pub mod sendmail;
pub mod serve;
pub mod terminal;

use std::path::Path;

use crate::cli::{Cli, Command};
use crate::exit::Exit;

/// Settings that apply to every command.
#[derive(Clone, Copy, Debug)]
pub struct Globals {
    /// `-v` count.
    pub verbose: u8,
    /// `--config FILE` (or `MAILCTL_CONFIG`), if given; `None` means the
    /// default location (see [`crate::config::default_path`]).
    pub config: Option<&'static Path>,
}

impl Globals {
    /// Globals from the parsed command line. The config path is leaked once
    /// so that `Globals` stays `Copy`.
    pub fn from_cli(cli: &Cli) -> Self {
        Globals {
            verbose: cli.verbose,
            config: cli.config.clone().map(|p| &*Box::leak(p.into_boxed_path())),
        }
    }
}

/// Runs the parsed command line; returns the exit status for success paths
/// that are not plain success (such as "some messages failed").
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    let globals = Globals::from_cli(&cli);
    match cli.command {
        Command::Send(args) => send::run(*args, globals),
        Command::Fetch(args) => fetch::run(args, globals),
        Command::Serve(args) => serve::run(args, globals),
        Command::Parse(args) => parse::run(args, globals),
        Command::Config(args) => config::run(args, globals),
        Command::Password(args) => password::run(args, globals),
        Command::Queue(args) => queue::run(args, globals),
        Command::Sendmail(args) => sendmail::run(args, globals),
        Command::OAuth2(args) => oauth2::run(args, globals),
        Command::Mail(args) => mailx::run(args, globals),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
    }
}

/// Refuses AUTH EXTERNAL (`external`) without a TLS client certificate to
/// present: the server would have no identity to take.
pub(crate) fn require_client_cert(
    external: bool,
    server: &crate::config::ResolvedServer,
) -> anyhow::Result<()> {
    if external && server.tls_options.client_cert.is_none() {
        crate::bail_with!(
            Exit::Usage,
            "--auth external needs a client certificate (--cert and --key, or tls_cert and tls_key)"
        );
    }
    Ok(())
}
