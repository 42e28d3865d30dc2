//! Messages: composing them ([`compose`]), reading ready-made ones
//! ([`raw`]) and decoding them into files ([`extract`]).

pub mod compose;
pub mod extract;
pub mod raw;
pub mod view;

use std::fmt;

/// Why a message could not be composed, read or taken apart. Each kind
/// carries the one-line message users see.
#[derive(Debug)]
pub enum Error {
    /// A value given for the message (an address, a header, a date) is not
    /// valid.
    Invalid(String),
    /// An input file (an attachment, a body file) cannot be read.
    NoInput(String),
    /// Reading or writing a local file failed midway.
    Io(String),
    /// The input is not a message.
    NotAMessage(String),
    /// An output file cannot be created.
    CantCreate(String),
    /// Something that cannot happen did.
    Internal(String),
}

impl Error {
    /// The message.
    pub fn message(&self) -> &str {
        match self {
            Error::Invalid(m)
            | Error::NoInput(m)
            | Error::Io(m)
            | Error::NotAMessage(m)
            | Error::CantCreate(m)
            | Error::Internal(m) => m,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// Any underlying error is part of the message, so there is no separate
/// `source` (which `{:#}` would print a second time).
impl std::error::Error for Error {}

/// An [`Error::Invalid`] as an `anyhow::Error`.
pub(crate) fn invalid(message: impl Into<String>) -> anyhow::Error {
    Error::Invalid(message.into()).into()
}

/// An [`Error::NoInput`] as an `anyhow::Error`.
pub(crate) fn no_input(message: impl Into<String>) -> anyhow::Error {
    Error::NoInput(message.into()).into()
}

/// An [`Error::Io`] as an `anyhow::Error`.
pub(crate) fn local_io(message: impl Into<String>) -> anyhow::Error {
    Error::Io(message.into()).into()
}

/// An [`Error::NotAMessage`] as an `anyhow::Error`.
pub(crate) fn not_a_message(message: impl Into<String>) -> anyhow::Error {
    Error::NotAMessage(message.into()).into()
}

/// An [`Error::CantCreate`] as an `anyhow::Error`.
pub(crate) fn cant_create(message: impl Into<String>) -> anyhow::Error {
    Error::CantCreate(message.into()).into()
}

/// An [`Error::Internal`] as an `anyhow::Error`.
pub(crate) fn internal(message: impl Into<String>) -> anyhow::Error {
    Error::Internal(message.into()).into()
}

/// The [`Error`] in an error's chain, if any: for tests that match on the
/// kind.
#[cfg(test)]
pub(crate) fn kind_of(err: &anyhow::Error) -> Option<&Error> {
    err.chain().find_map(|e| e.downcast_ref::<Error>())
}
