use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use mailctl::cli::Cli;
use mailctl::cmd::Globals;
use mailctl::exit::{exit_status, Exit};
use mailctl::text::printable;

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    if invoked_as_sendmail(&argv0) {
        return finish(sendmail_mode(args.collect()));
    }
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
    finish(mailctl::cmd::run(cli))
}

/// Whether the program was started through a link named `sendmail`.
fn invoked_as_sendmail(argv0: &OsString) -> bool {
    Path::new(argv0)
        .file_name()
        .is_some_and(|n| n == "sendmail")
}

/// sendmail mode: the whole command line is sendmail's.
fn sendmail_mode(args: Vec<OsString>) -> anyhow::Result<Exit> {
    let config = std::env::var_os("MAILCTL_CONFIG")
        .filter(|c| !c.is_empty())
        .map(|c| &*Box::leak(std::path::PathBuf::from(c).into_boxed_path()));
    let globals = Globals { verbose: 0, config };
    mailctl::cmd::sendmail::run_argv(args, globals)
}

fn finish(result: anyhow::Result<Exit>) -> ExitCode {
    match result {
        Ok(status) => ExitCode::from(status.code()),
        Err(err) => {
            let message = printable(format!("{err:#}").as_bytes());
            // Not eprintln!: a closed stderr must not end in a panic.
            let _ = writeln!(std::io::stderr(), "mailctl: error: {message}");
            ExitCode::from(exit_status(&err).code())
        }
    }
}
