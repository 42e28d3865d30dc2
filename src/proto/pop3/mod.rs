//! POP3 (RFC 1939, RFC 2449): the client and server state machines, which do no I/O.
//!
//! - [`response`]: status lines and the byte-unstuffing multi-line reader.
//! - [`command`]: commands and their exact wire bytes.
//! - [`capability`]: the CAPA response (RFC 2449).
//! - [`client`]: the session state machine (Authorization, Transaction,
//!   Update) that is fed response lines and checks what may be sent.
//! - [`server`]: the server's session machine behind `mailctl serve`.
//!
//! Nothing here touches a socket, a file or the clock; [`crate::net::pop3`]
//! and [`crate::net::serve`] drive the machines.

pub mod capability;
pub mod client;
pub mod command;
pub mod response;
pub mod server;

pub use capability::Capabilities;
pub use client::{Client, Event, Reply, State};
pub use command::{Command, Kind};

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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Malformed(m) => write!(f, "protocol error: {m}"),
            Error::TooLarge(m) => write!(f, "protocol error: {m}"),
            Error::BadArgument(m) => write!(f, "{m}"),
            Error::NotAllowed(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}
