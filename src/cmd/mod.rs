//! One module per subcommand: its options and its `run`.

pub mod fetch;
pub mod parse;
pub mod send;
pub mod serve;

use crate::cli::{Cli, Command};
use crate::exit::Exit;

/// Settings that apply to every command.
#[derive(Clone, Copy, Debug)]
pub struct Globals {
    /// `-v` count.
    pub verbose: u8,
}

/// Runs the parsed command line; returns the exit status for success paths
/// that are not plain success (such as "some messages failed").
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    let globals = Globals {
        verbose: cli.verbose,
    };
    match cli.command {
        Command::Send(args) => send::run(*args, globals),
        Command::Fetch(args) => fetch::run(args, globals),
        Command::Serve(args) => serve::run(args, globals),
        Command::Parse(args) => parse::run(args, globals),
    }
}
