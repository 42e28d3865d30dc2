//! What is kept on disk: durable file creation ([`durable`]), Maildirs
//! ([`maildir`], [`mailbox`]), the UIDL state of `fetch --new` ([`uidl`]) and
//! OAuth 2 tokens ([`oauth2`]).

pub mod durable;
pub mod index;
pub mod journal;
pub mod lock;
pub mod mailbox;
pub mod maildir;
pub mod oauth2;
pub mod outbox;
pub mod uidl;

use std::fmt;
use std::io;
use std::path::PathBuf;

/// What can go wrong keeping state on disk.
#[derive(Debug)]
pub enum Error {
    /// Neither `XDG_STATE_HOME` nor `HOME` gives a state directory.
    NoStateDir,
    /// The state directory could not be created.
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A state file is not what this program writes.
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        source: serde_json::Error,
    },
    /// A file is locked by another program, still after waiting.
    Locked {
        /// The file.
        path: PathBuf,
        /// Which lock was in the way.
        held: String,
    },
    /// Another run holds the lock of this state file.
    Busy {
        /// The lock file.
        path: PathBuf,
    },
    /// Reading or writing a file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoStateDir => {
                f.write_str("cannot find a state directory: set XDG_STATE_HOME or HOME")
            }
            Error::CreateDir { dir, source } => write!(
                f,
                "cannot create the state directory {}: {source}",
                dir.display()
            ),
            Error::Unreadable { path, source } => {
                write!(f, "{}: unreadable state file: {source}", path.display())
            }
            Error::Locked { path, held } => write!(
                f,
                "{}: locked by another program ({held}); try again later",
                path.display()
            ),
            Error::Busy { path } => write!(
                f,
                "another fetch from this server and user is running (it holds {}); try again later",
                path.display()
            ),
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

/// The message already says what the underlying error said, so there is
/// no separate `source` (which `{:#}` would print a second time).
impl std::error::Error for Error {}
