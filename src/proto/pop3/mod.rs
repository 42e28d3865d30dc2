//! POP3 (RFC 1939, RFC 2449): the client and server state machines, which do no I/O.
//!
//! - [`response`]: status lines and the byte-unstuffing multi-line reader.
//! - [`command`]: commands and their exact wire bytes.
//! - [`capability`]: the CAPA response (RFC 2449).
//! - [`client`]: the session state machine (Authorization, Transaction,
//!   Update) that is fed the server's bytes and checks what may be sent.
//! - [`login`]: the login policy (mechanism, plaintext check, challenges).
//! - [`server`]: the server's session machine behind `mailctl serve`.
//!
//! Nothing here touches a socket, a file or the clock; [`crate::net::pop3`]
//! and [`crate::net::serve`] drive the machines.

pub mod capability;
pub mod client;
pub mod command;
pub mod login;
pub mod response;
pub mod server;

#[cfg(test)]
mod tests;

pub use capability::Capabilities;
pub use client::{Client, Event, Reply, State};
pub use command::{Command, Kind};
pub use login::{Login, Method, Step};

use std::fmt;

/// What can go wrong inside the protocol machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The server sent something that is not POP3.
    Malformed(String),
    /// A response (or one line of it) exceeded its limit.
    TooLarge(String),
    /// A command argument cannot be sent (line break, empty word).
    BadArgument(String),
    /// The command is not allowed now (wrong state, pipelining not offered,
    /// STLS reply pending, message marked deleted).
    NotAllowed(String),
    /// The server answered `-ERR` to what `what` names.
    Refused {
        /// What was refused, such as `login` or `RETR 3`.
        what: String,
        /// The refusal.
        reply: Reply,
        /// What the server said before (a decoded SASL challenge).
        detail: Option<String>,
    },
    /// A password or token would travel unencrypted to a remote server.
    Unencrypted {
        /// The server, as shown to the user.
        server: String,
        /// Whether `auto` found no usable APOP timestamp.
        no_apop: bool,
    },
    /// The server's answers do not fit the exchange (a reply out of place,
    /// STLS missing or refused, too many SASL challenges).
    Unexpected(String),
    /// A SCRAM exchange failed on the client's side: a malformed
    /// challenge, or a server that did not prove it knows the password.
    Scram(crate::proto::sasl::scram::Error),
}

impl Error {
    /// The error for an `-ERR` reply to what `what` names.
    pub fn refused(reply: &Reply, what: &str) -> Self {
        Error::Refused {
            what: what.to_string(),
            reply: reply.clone(),
            detail: None,
        }
    }

    /// How a refusal should be read: temporary by its response code, a
    /// refused login, or a permanent refusal. `None` for other errors.
    pub fn refusal(&self) -> Option<Refusal> {
        let Error::Refused { reply, .. } = self else {
            return None;
        };
        Some(if reply.is_temporary() {
            Refusal::Temporary
        } else if matches!(
            reply.kind,
            Kind::User | Kind::Pass | Kind::Apop | Kind::Auth
        ) || reply.code().as_deref() == Some("AUTH")
        {
            Refusal::Login
        } else {
            Refusal::Permanent
        })
    }
}

/// The kinds of `-ERR`, as [`Error::refusal`] reads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Try again later (`IN-USE`, `LOGIN-DELAY`, `SYS/TEMP`).
    Temporary,
    /// The credentials were refused.
    Login,
    /// Anything else.
    Permanent,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Malformed(m) => write!(f, "protocol error: {m}"),
            Error::TooLarge(m) => write!(f, "protocol error: {m}"),
            Error::BadArgument(m) => write!(f, "{m}"),
            Error::NotAllowed(m) => write!(f, "{m}"),
            Error::Refused {
                what,
                reply,
                detail,
            } => {
                if let Some(detail) = detail {
                    write!(f, "{detail}: ")?;
                }
                write!(f, "{what}: server said -ERR {}", quoted(&reply.text))
            }
            Error::Unencrypted { server, no_apop } => {
                let why = if *no_apop {
                    " (the greeting offers no usable APOP timestamp)"
                } else {
                    ""
                };
                write!(
                    f,
                    "refusing to send credentials unencrypted to {server}{why}: \
                     --tls none allows only APOP, except for loopback servers"
                )
            }
            Error::Unexpected(m) => write!(f, "{m}"),
            Error::Scram(e) => write!(f, "SCRAM authentication: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// The most characters of server text quoted in an error message.
const MAX_QUOTED: usize = 300;

/// Server text made printable and cut to 300 characters, so an error
/// stays one readable line whatever the server sent.
pub fn quoted(text: &[u8]) -> String {
    let text = crate::text::printable(text);
    match text.char_indices().nth(MAX_QUOTED) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text,
    }
}
