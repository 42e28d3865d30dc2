//! Passwords and tokens: where they come from, and a type that never prints
//! them.

use std::fmt;
use std::io::IsTerminal;
use std::process::{Command, Stdio};

use crate::exit::{fail, Exit};

/// The environment variable read for a password or OAuth token.
pub const PASSWORD_ENV: &str = "MAILCTL_PASSWORD";

/// A secret string whose `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where to look for a password, in order of preference.
#[derive(Clone, Debug, Default)]
pub struct PasswordSource {
    /// An environment variable to read first (default `MAILCTL_PASSWORD`).
    pub env_var: Option<String>,
    /// A shell command whose first output line is the password.
    pub command: Option<String>,
}

impl PasswordSource {
    /// Finds the password: the environment variable, then the command, then
    /// an interactive prompt on the terminal. Never a command-line argument.
    pub fn obtain(&self, prompt: &str) -> anyhow::Result<Secret> {
        let var = self.env_var.as_deref().unwrap_or(PASSWORD_ENV);
        if let Ok(value) = std::env::var(var) {
            if !value.is_empty() {
                return Ok(Secret(value));
            }
        }
        if let Some(command) = &self.command {
            return run_password_command(command);
        }
        if std::io::stdin().is_terminal() {
            return rpassword::prompt_password(prompt)
                .map(Secret)
                .map_err(|e| fail(Exit::IoErr, format!("cannot read password: {e}")));
        }
        Err(fail(
            Exit::Config,
            format!("no password: set {var}, give --password-command, or run on a terminal"),
        ))
    }
}

/// Runs `command` with `sh -c` and returns the first line of its output.
pub fn run_password_command(command: &str) -> anyhow::Result<Secret> {
    let output = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| fail(Exit::Config, format!("cannot run password command: {e}")))?;
    if !output.status.success() {
        crate::bail_with!(Exit::Config, "password command failed ({})", output.status);
    }
    let text = String::from_utf8(output.stdout)
        .map_err(|_| fail(Exit::Config, "password command printed invalid UTF-8"))?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        crate::bail_with!(Exit::Config, "password command printed nothing");
    }
    Ok(Secret(line.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn command_first_line() {
        let s = run_password_command("printf 'pw1\\nother\\n'").unwrap();
        assert_eq!(s.expose(), "pw1");
        let err = run_password_command("exit 3").unwrap_err();
        assert_eq!(crate::exit::exit_status(&err), Exit::Config);
    }

    #[test]
    fn env_var_wins() {
        let source = PasswordSource {
            env_var: Some("MAILCTL_TEST_SECRET_VAR".into()),
            command: Some("echo fromcmd".into()),
        };
        std::env::set_var("MAILCTL_TEST_SECRET_VAR", "fromenv");
        assert_eq!(source.obtain("").unwrap().expose(), "fromenv");
        std::env::remove_var("MAILCTL_TEST_SECRET_VAR");
        assert_eq!(source.obtain("").unwrap().expose(), "fromcmd");
    }
}
