//! Where a password comes from: `MAILCTL_PASSWORD`, a command, a variable
//! or the file the configuration names, or a prompt on the terminal. The
//! [`Secret`] type itself knows nothing of these.

use std::io::IsTerminal;
use std::process::{Command, Stdio};

use super::error::Error;
use crate::secret::{Secret, PASSWORD_ENV};

/// A password source named in the configuration file, with where.
#[derive(Clone, Debug)]
pub enum ConfiguredPassword {
    /// `password_command`: first line of the command's output.
    Command {
        /// The shell command.
        command: String,
        /// `FILE:LINE` of the key.
        origin: String,
    },
    /// `password_env`: the value of an environment variable.
    Env {
        /// The variable name.
        var: String,
        /// `FILE:LINE` of the key.
        origin: String,
    },
    /// `password_keyring`: an entry of the system keyring.
    Keyring {
        /// The entry name.
        entry: String,
        /// `FILE:LINE` of the key.
        origin: String,
    },
    /// `password`: stored in the (private) file itself.
    Stored {
        /// The password.
        secret: Secret,
        /// `FILE:LINE` of the key.
        origin: String,
    },
}

/// Where the password for a server comes from, in order: `MAILCTL_PASSWORD`,
/// `--password-command`, the file's source, then a terminal prompt.
#[derive(Clone, Debug, Default)]
pub struct Password {
    /// `--password-command` from the command line.
    pub command_line: Option<String>,
    /// The source the configuration file names for this server.
    pub configured: Option<ConfiguredPassword>,
}

impl Password {
    /// Whether no source is set at all: no `MAILCTL_PASSWORD`, no
    /// `--password-command`, nothing in the file (a prompt would be next).
    pub fn is_unset(&self) -> bool {
        let env = std::env::var(PASSWORD_ENV).ok().filter(|v| !v.is_empty());
        env.is_none() && self.command_line.is_none() && self.configured.is_none()
    }

    /// Finds the password or token. Never reads it from an argument.
    pub fn obtain(&self, prompt: &str) -> Result<Secret, Error> {
        if let Some(value) = std::env::var(PASSWORD_ENV).ok().filter(|v| !v.is_empty()) {
            return Ok(Secret::new(value));
        }
        if let Some(command) = &self.command_line {
            return run_password_command(command);
        }
        let at = |origin: &str, error: Error| Error::At {
            origin: origin.to_string(),
            error: Box::new(error),
        };
        match &self.configured {
            Some(ConfiguredPassword::Command { command, origin }) => {
                run_password_command(command).map_err(|e| at(origin, e))
            }
            Some(ConfiguredPassword::Env { var, origin }) => {
                match std::env::var(var).ok().filter(|v| !v.is_empty()) {
                    Some(value) => Ok(Secret::new(value)),
                    None => Err(at(origin, Error::PasswordEnvUnset { var: var.clone() })),
                }
            }
            Some(ConfiguredPassword::Keyring { entry, origin }) => {
                super::keyring::lookup(entry).map_err(|e| at(origin, e))
            }
            Some(ConfiguredPassword::Stored { secret, .. }) => Ok(secret.clone()),
            None => ask(prompt),
        }
    }

    /// Where the password will come from, for summaries (never the password).
    pub fn describe(&self) -> String {
        if std::env::var(PASSWORD_ENV).is_ok_and(|v| !v.is_empty()) {
            return format!("from ${PASSWORD_ENV}");
        }
        if let Some(command) = &self.command_line {
            return format!(
                "from --password-command `{}`",
                crate::text::printable(command.as_bytes())
            );
        }
        match &self.configured {
            Some(ConfiguredPassword::Command { command, .. }) => {
                format!(
                    "from password_command `{}`",
                    crate::text::printable(command.as_bytes())
                )
            }
            Some(ConfiguredPassword::Env { var, .. }) => format!("from ${var}"),
            Some(ConfiguredPassword::Keyring { entry, .. }) => format!(
                "from the keyring entry `{}`",
                crate::text::printable(entry.as_bytes())
            ),
            Some(ConfiguredPassword::Stored { .. }) => "stored in the config file".to_string(),
            None => "asked on the terminal".to_string(),
        }
    }
}

/// Asks on the terminal; without one, there is no password to be had.
fn ask(prompt: &str) -> Result<Secret, Error> {
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(prompt)
            .map(Secret::new)
            .map_err(Error::PasswordPrompt);
    }
    Err(Error::NoPassword {
        var: PASSWORD_ENV.to_string(),
    })
}

/// Runs `command` with `sh -c` and returns the first line of its output.
pub fn run_password_command(command: &str) -> Result<Secret, Error> {
    let failed = |m: String| Error::PasswordCommand(m);
    let output = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| failed(format!("cannot run password command: {e}")))?;
    if !output.status.success() {
        return Err(failed(format!(
            "password command failed ({})",
            output.status
        )));
    }
    let text = String::from_utf8(output.stdout)
        .map_err(|_| failed("password command printed invalid UTF-8".to_string()))?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(failed("password command printed nothing".to_string()));
    }
    Ok(Secret::new(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_first_line() {
        let s = run_password_command("printf 'pw1\\nother\\n'").unwrap();
        assert_eq!(s.expose(), "pw1");
        let err = run_password_command("exit 3").unwrap_err();
        assert!(matches!(err, Error::PasswordCommand(_)));
    }

    #[test]
    fn command_line_then_file() {
        if std::env::var_os(PASSWORD_ENV).is_some() {
            return;
        }
        let password = Password {
            command_line: Some("echo fromflag".into()),
            configured: Some(ConfiguredPassword::Command {
                command: "echo fromfile".into(),
                origin: "f:1".into(),
            }),
        };
        assert_eq!(password.obtain("").unwrap().expose(), "fromflag");
        let password = Password {
            command_line: None,
            configured: Some(ConfiguredPassword::Command {
                command: "exit 1".into(),
                origin: "f:1".into(),
            }),
        };
        let err = password.obtain("").unwrap_err();
        assert!(matches!(err, Error::At { ref origin, .. } if origin == "f:1"));
        assert!(err.to_string().starts_with("f:1: password command failed"));
    }
}
