use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use mailctl::cmd::Globals;
use mailctl::exit::{exit_status, Exit};
use mailctl::text::printable;

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    if invoked_as_sendmail(&argv0) {
        return finish(sendmail_mode(args.collect()));
    }
    if Path::new(&argv0)
        .file_name()
        .is_some_and(mailctl::cmd::mailx::is_mailx_name)
    {
        return mailx_mode(std::env::args_os().collect());
    }
    let cli = match mailctl::cli::parse() {
        Ok(cli) => cli,
        Err(err) => return usage(&err),
    };
    finish(mailctl::cmd::run(cli))
}

/// Help and version on stdout, exit 0; help for a bare `mailctl` (or a
/// command group without its command) on stderr, exit 64; any other usage
/// error as one line, exit 64.
fn usage(err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            ExitCode::from(Exit::Usage.code())
        }
        _ => {
            let args: Vec<OsString> = std::env::args_os().collect();
            let line = mailctl::cli::usage_error_line(err, &args);
            let _ = writeln!(std::io::stderr(), "mailctl: error: {line}");
            ExitCode::from(Exit::Usage.code())
        }
    }
}

/// Whether the program was started through a link named `sendmail`.
fn invoked_as_sendmail(argv0: &OsString) -> bool {
    Path::new(argv0)
        .file_name()
        .is_some_and(|n| n == "sendmail")
}

/// sendmail mode: the whole command line is sendmail's.
fn sendmail_mode(args: Vec<OsString>) -> anyhow::Result<Exit> {
    let globals = Globals {
        verbose: 0,
        config: config_from_env(),
    };
    mailctl::cmd::sendmail::run_argv(args, globals)
}

/// mailx mode: the whole command line is mailx's.
fn mailx_mode(argv: Vec<OsString>) -> ExitCode {
    let (args, verbose) = match mailctl::cmd::mailx::parse_argv(argv.clone()) {
        Ok(parsed) => parsed,
        Err(err) => return usage(&err),
    };
    let globals = Globals {
        verbose,
        config: config_from_env(),
    };
    finish(mailctl::cmd::mailx::run(args, globals))
}

/// `MAILCTL_CONFIG`, for the modes that take no `--config`.
fn config_from_env() -> Option<&'static Path> {
    std::env::var_os("MAILCTL_CONFIG")
        .filter(|c| !c.is_empty())
        .map(|c| &*Box::leak(std::path::PathBuf::from(c).into_boxed_path()))
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
