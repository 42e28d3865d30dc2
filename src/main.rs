use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use mailctl::cli::Cli;
use mailctl::exit::{exit_status, Exit};
use mailctl::text::printable;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return match err.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(Exit::Usage.code()),
            };
        }
    };
    match mailctl::cmd::run(cli) {
        Ok(status) => ExitCode::from(status.code()),
        Err(err) => {
            let message = printable(format!("{err:#}").as_bytes());
            // Not eprintln!: a closed stderr must not end in a panic.
            let _ = writeln!(std::io::stderr(), "mailctl: error: {message}");
            ExitCode::from(exit_status(&err).code())
        }
    }
}
