//! The harness of the tests that need something from outside the crate: a
//! running mail server, an installed mail program. Each test says what it
//! needs; when that is missing the test is reported `ignored` with the
//! reason, and the summary counts it as ignored, never as passed. When the
//! `CI` environment variable is set, a need that CI provides fails the test
//! instead: CI must never skip these silently.
//!
//! A test file using it is declared with `harness = false` in Cargo.toml and
//! ends with `fn main() -> ExitCode { outside::run(trials) }`.

#![allow(dead_code)]

use std::process::{Command, ExitCode, Stdio};

use libtest_mimic::{Arguments, Completion, Failed, Trial};

/// Something a test needs that is not there.
#[derive(Clone, Debug)]
pub struct Missing {
    /// What is missing and how to get it, one line.
    pub what: String,
    /// Whether CI provides it (then its absence under CI is a failure).
    pub ci_provides: bool,
}

/// A test named `name` that runs `body` with what `need` found, or is
/// ignored (or fails under CI) when `need` finds it missing. `body` fails the
/// test by panicking, as in any other test.
pub fn trial<T: 'static>(
    name: &str,
    need: impl FnOnce() -> Result<T, Missing> + Send + 'static,
    body: impl FnOnce(T) + Send + 'static,
) -> Trial {
    Trial::ignorable_test(name, move || match need() {
        Ok(found) => {
            body(found);
            Ok(Completion::Completed)
        }
        Err(missing) if missing.ci_provides && std::env::var_os("CI").is_some() => {
            Err(Failed::from(format!(
                "CI is set but {}: CI must run this test",
                missing.what
            )))
        }
        Err(missing) => Ok(Completion::ignored_with(missing.what)),
    })
}

/// Runs the trials with the usual test-binary arguments (filters,
/// `--list`, `--test-threads`, ...) and prints the usual summary.
pub fn run(trials: Vec<Trial>) -> ExitCode {
    libtest_mimic::run(&Arguments::from_args(), trials).exit_code()
}

/// Whether a program is on the PATH.
pub fn program(name: &str, ci_provides: bool) -> Result<(), Missing> {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        Ok(())
    } else {
        Err(Missing {
            what: format!("{name} is not installed"),
            ci_provides,
        })
    }
}
