//! What can be wrong with the configuration, or with finding a password.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A configuration error: the message users see, and a kind that decides
/// the exit status (see `exit.rs`).
#[derive(Debug)]
pub enum Error {
    /// The file, or an account in it, is wrong or unreadable; the message
    /// names the file (and the line, where there is one).
    File(String),
    /// Neither `--config` nor a configuration directory.
    NoConfigDir,
    /// No `--server`, no `--account`, and no file: nothing says where to
    /// connect.
    NoServer {
        /// `smtp` or `pop3`.
        protocol: &'static str,
        /// The file that does not exist.
        path: PathBuf,
    },
    /// The file's `auth` is not a mechanism of this protocol.
    BadAuth {
        /// The mechanism as the file spells it.
        name: String,
        /// `smtp` or `pop3`.
        protocol: &'static str,
    },
    /// The user name holds a control character.
    ControlInUser,
    /// Credentials would go unencrypted to a server that is not loopback.
    Cleartext {
        /// `host:port`.
        endpoint: String,
    },
    /// A time-out of zero seconds.
    ZeroTimeout,
    /// The password command could not run, failed, or printed no password.
    PasswordCommand(String),
    /// Reading the password from the terminal failed.
    PasswordPrompt(io::Error),
    /// No password source at all, and no terminal to ask on.
    NoPassword {
        /// The environment variable that was looked at.
        var: String,
    },
    /// `password_env` names a variable that is not set.
    PasswordEnvUnset {
        /// The variable.
        var: String,
    },
    /// The system keyring has no such entry, cannot be reached, or this
    /// build has no keyring support.
    Keyring(String),
    /// An error about the key at `FILE:LINE`.
    At {
        /// `FILE:LINE`.
        origin: String,
        /// What is wrong there.
        error: Box<Error>,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::File(message) | Error::PasswordCommand(message) | Error::Keyring(message) => {
                f.write_str(message)
            }
            Error::NoConfigDir => f.write_str(
                "no configuration directory (HOME and XDG_CONFIG_HOME unset): give --config FILE",
            ),
            Error::NoServer { protocol, path } => write!(
                f,
                "no {protocol} server: give --server HOST[:PORT], or describe an account in {} \
                 (see `mailctl config check --help`)",
                path.display()
            ),
            Error::BadAuth { name, protocol } => {
                write!(f, "auth = \"{name}\" is not supported for {protocol}")
            }
            Error::ControlInUser => f.write_str("the user name holds a control character"),
            Error::Cleartext { endpoint } => write!(
                f,
                "refusing to send credentials unencrypted to {endpoint} \
                 (tls none with a user is allowed only for loopback servers)"
            ),
            Error::ZeroTimeout => f.write_str("the time-out must be at least 1 second"),
            Error::PasswordPrompt(e) => write!(f, "cannot read password: {e}"),
            Error::NoPassword { var } => write!(
                f,
                "no password: set {var}, give --password-command, or run on a terminal"
            ),
            Error::PasswordEnvUnset { var } => {
                write!(f, "password_env names {var}, which is not set")
            }
            Error::At { origin, error } => write!(f, "{origin}: {error}"),
        }
    }
}

/// Every message already says what an underlying error said, so there is
/// no separate `source` (which `{:#}` would print a second time).
impl std::error::Error for Error {}

/// A [`Error::File`] as an `anyhow::Error`.
pub(crate) fn file_error(message: impl Into<String>) -> anyhow::Error {
    Error::File(message.into()).into()
}

/// An error with a hint appended (`error: ...; hint: ...`); its exit status
/// is the wrapped error's.
#[derive(Debug)]
pub struct Hinted {
    /// The error.
    pub error: anyhow::Error,
    /// The suggestion.
    pub hint: &'static str,
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}; hint: {}", self.error, self.hint)
    }
}

/// The wrapped error is part of the message; see [`Error`].
impl std::error::Error for Hinted {}
