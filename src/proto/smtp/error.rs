//! What can go wrong in an SMTP client session, as the protocol machines
//! see it: malformed replies, refusals (with the server's reply), missing
//! extensions, arguments that cannot be sent.
//!
//! The messages are the one-line texts users see; the exit status each
//! variant stands for is decided outside the protocol layer.

use std::fmt;

use crate::proto::sasl::{scram, Mechanism};

use super::client::{RecipientState, RecipientStatus};
use super::reply::{Reply, MAX_LINE, MAX_LINES};

/// An SMTP protocol error or refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// A reply line that is not `NNN[ -]text` (printable, shortened).
    MalformedReply {
        /// The offending line.
        line: String,
    },
    /// A line of a multi-line reply with another code than the first.
    CodeChanged {
        /// The offending line.
        line: String,
        /// The code of the reply it continues.
        expected: u16,
    },
    /// A reply line longer than [`MAX_LINE`] bytes.
    ReplyTooLong,
    /// A reply of more than [`MAX_LINES`] lines.
    TooManyLines,
    /// A reply that makes no sense at this point of the session.
    Unexpected {
        /// What was expected, such as `greeting`.
        what: &'static str,
        /// The reply.
        reply: Reply,
    },
    /// The server refused a step; the reply code says how (4xx, 5xx).
    Refused {
        /// The step, such as `sender refused (MAIL FROM)`.
        what: &'static str,
        /// The reply.
        reply: Reply,
    },
    /// The server refused STARTTLS.
    StartTlsRefused(Reply),
    /// TLS is required but the server does not offer STARTTLS.
    StartTlsNotOffered,
    /// Credentials would cross an unencrypted connection.
    PlaintextAuth,
    /// Credentials are configured but the server offers no AUTH.
    AuthNotOffered,
    /// The mechanism asked for is not offered.
    MechanismNotOffered {
        /// The mechanism asked for.
        mechanism: Mechanism,
        /// Every mechanism name the server listed (printable).
        offered: String,
    },
    /// No password mechanism mailctl knows is offered.
    NoUsableMechanism {
        /// Every mechanism name the server listed (printable).
        offered: String,
    },
    /// The server refused the credentials (or failed to check them).
    AuthRefused {
        /// The mechanism tried.
        mechanism: Option<Mechanism>,
        /// The reply.
        reply: Reply,
    },
    /// A CRAM-MD5 challenge that is not base64.
    BadChallenge(Reply),
    /// A SCRAM exchange failed on the client's side: a malformed
    /// challenge, or a server that did not prove it knows the password.
    Scram(scram::Error),
    /// A command argument that cannot be sent: a line break or control
    /// character, a malformed address, an empty recipient.
    InvalidArgument(String),
    /// The envelope has no recipient.
    NoRecipients,
    /// The message exceeds the server's SIZE limit.
    TooBig {
        /// The message size.
        size: u64,
        /// The server's limit.
        limit: u64,
    },
    /// Delivery status notifications were asked for and the server does
    /// not offer DSN.
    DsnNotOffered,
    /// A non-ASCII address and no SMTPUTF8.
    NeedsSmtpUtf8 {
        /// The address.
        address: String,
    },
    /// Some or every recipient was refused; nothing was sent.
    RecipientsRefused {
        /// The refused recipients with the server's replies.
        refused: Vec<RecipientStatus>,
        /// Whether every recipient was refused.
        all: bool,
    },
    /// The connection broke (the driver knows why).
    ConnectionLost,
    /// The session ended before the message was accepted.
    Incomplete,
}

impl Error {
    /// Whether this is a malformed reply (bad syntax, a changed code, a
    /// line or reply over its limit): the server broke the protocol.
    pub fn is_malformed_reply(&self) -> bool {
        matches!(
            self,
            Error::MalformedReply { .. }
                | Error::CodeChanged { .. }
                | Error::ReplyTooLong
                | Error::TooManyLines
        )
    }

    /// Whether any refused recipient was refused permanently.
    pub fn any_permanent(refused: &[RecipientStatus]) -> bool {
        refused
            .iter()
            .any(|r| r.state == RecipientState::PermFailed)
    }

    /// The server's reply behind this error, if there is one.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Error::Unexpected { reply, .. }
            | Error::Refused { reply, .. }
            | Error::StartTlsRefused(reply)
            | Error::AuthRefused { reply, .. }
            | Error::BadChallenge(reply) => Some(reply),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MalformedReply { line } => write!(f, "malformed reply from server: '{line}'"),
            Error::CodeChanged { line, expected } => write!(
                f,
                "malformed reply: line '{line}' continues a {expected} reply"
            ),
            Error::ReplyTooLong => {
                write!(f, "malformed reply: line longer than {MAX_LINE} bytes")
            }
            Error::TooManyLines => write!(f, "malformed reply: more than {MAX_LINES} lines"),
            Error::Unexpected { what, reply } => write!(f, "unexpected {what}: {reply}"),
            Error::Refused { what, reply } => write!(f, "{what}: {reply}"),
            Error::StartTlsRefused(reply) => write!(f, "STARTTLS refused: {reply}"),
            Error::StartTlsNotOffered => f.write_str(
                "the server does not offer STARTTLS; refusing to continue without TLS \
                 (use --tls none to send unencrypted)",
            ),
            Error::PlaintextAuth => {
                f.write_str("refusing to send credentials over an unencrypted connection")
            }
            Error::AuthNotOffered => {
                f.write_str("the server does not offer authentication (no AUTH in its EHLO reply)")
            }
            Error::MechanismNotOffered { mechanism, offered } => write!(
                f,
                "the server does not offer AUTH {}; it offers: {offered}",
                mechanism.name()
            ),
            Error::NoUsableMechanism { offered } => write!(
                f,
                "no usable password mechanism among the server's: {offered} \
                 (use --auth to choose one)"
            ),
            Error::AuthRefused { reply, .. } if reply.is_transient() => {
                write!(f, "authentication failed: {reply}")
            }
            Error::AuthRefused { reply, .. } => write!(f, "authentication refused: {reply}"),
            Error::BadChallenge(reply) => write!(f, "malformed CRAM-MD5 challenge: {reply}"),
            Error::Scram(e) => write!(f, "SCRAM authentication: {e}"),
            Error::InvalidArgument(message) => f.write_str(message),
            Error::NoRecipients => f.write_str("no recipients"),
            Error::TooBig { size, limit } => write!(
                f,
                "the message is {size} bytes but the server accepts at most {limit} (SIZE)"
            ),
            Error::DsnNotOffered => f.write_str(
                "delivery status notifications were asked for (--notify, --ret, --envid) \
                 and the server does not offer DSN; nothing was sent",
            ),
            Error::NeedsSmtpUtf8 { address } => write!(
                f,
                "the address '{address}' is not ASCII and the server does not offer SMTPUTF8"
            ),
            Error::RecipientsRefused { refused, all } => {
                f.write_str(if *all {
                    "every recipient was refused: "
                } else {
                    "recipient refused, message not sent: "
                })?;
                for (i, r) in refused.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    let reply = r.reply.as_ref().map(Reply::summary).unwrap_or_default();
                    write!(f, "<{}>: {reply}", r.address)?;
                }
                Ok(())
            }
            Error::ConnectionLost => f.write_str("the connection was lost"),
            Error::Incomplete => f.write_str("the session ended before the message was accepted"),
        }
    }
}

impl std::error::Error for Error {}
