//! Runs mailctl on a pseudo-terminal of a chosen width (through python3's
//! `pty` module), for what it shows only on a terminal.

use std::ffi::OsStr;
use std::process::{Command, Output};

/// What a run on the terminal showed (stdout and stderr together, with
/// the terminal's CRLF line endings), and its exit code.
pub struct Shown {
    /// Everything written to the terminal.
    pub text: String,
    /// The exit code.
    pub code: i32,
}

/// Runs `program` with `args` on a terminal `columns` wide, with `env`
/// set and `COLUMNS` unset; `None` (after printing "skipped") when python3
/// cannot be run. With `sigint_on`, a SIGINT is sent once that text shows.
pub fn run<S: AsRef<OsStr>>(
    columns: u16,
    sigint_on: Option<&str>,
    program: &str,
    args: &[S],
    env: &[(&str, &str)],
) -> Option<Shown> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pty_support/run.py");
    let mut command = Command::new("python3");
    command.arg(script).arg(columns.to_string());
    if let Some(text) = sigint_on {
        command.args(["--sigint-on", text]);
    }
    command.arg("--").arg(program).args(args);
    command.env_remove("COLUMNS");
    for (name, value) in env {
        command.env(name, value);
    }
    let out: Output = match command.output() {
        Ok(out) => out,
        Err(e) => {
            println!("skipped: python3 cannot be run: {e}");
            return None;
        }
    };
    Some(Shown {
        text: String::from_utf8_lossy(&out.stdout).into_owned(),
        code: out.status.code().unwrap_or(-1),
    })
}
