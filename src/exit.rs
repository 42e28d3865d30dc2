//! Exit statuses (sysexits.h) and the error type that carries one.
//!
//! Every failure that should end the program with a particular status is an
//! [`Failure`] somewhere in the `anyhow` chain; [`exit_status`] finds it, and
//! classifies the typed errors of the layers ([`crate::net::Error`]) and
//! plain I/O errors.

use std::fmt;
use std::io;

/// The process exit statuses mailctl uses, as in BSD's sysexits.h.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Exit {
    /// 0: success.
    Ok = 0,
    /// 64: the command line was wrong.
    Usage = 64,
    /// 65: the input data (a message, a header, an address) was malformed.
    DataErr = 65,
    /// 66: an input file did not exist or was not readable.
    NoInput = 66,
    /// 67: every recipient was refused.
    NoUser = 67,
    /// 68: the host name could not be resolved.
    NoHost = 68,
    /// 69: the server refused permanently (5xx / -ERR).
    Unavailable = 69,
    /// 70: an internal error.
    Software = 70,
    /// 71: an operating system error (such as failing to fork); only
    /// passed on from a program mailctl ran.
    OsErr = 71,
    /// 72: a critical system file was missing; only passed on from a
    /// program mailctl ran.
    OsFile = 72,
    /// 73: an output file could not be created.
    CantCreate = 73,
    /// 74: an error while reading or writing a local file.
    IoErr = 74,
    /// 75: a temporary failure (4xx, time-out, dropped connection): retry later.
    TempFail = 75,
    /// 76: the remote side broke the protocol, or TLS failed.
    Protocol = 76,
    /// 77: authentication was refused.
    NoPerm = 77,
    /// 78: the configuration was wrong.
    Config = 78,
    /// 130: stopped by SIGINT (Ctrl-C), after finishing cleanly.
    Interrupted = 130,
    /// 143: stopped by SIGTERM, after finishing cleanly.
    Terminated = 143,
}

impl Exit {
    /// The numeric status.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The status for a sysexits code (64 to 78) another program exited
    /// with; `None` for any other code.
    pub fn from_sysexits(code: i32) -> Option<Exit> {
        Some(match code {
            64 => Exit::Usage,
            65 => Exit::DataErr,
            66 => Exit::NoInput,
            67 => Exit::NoUser,
            68 => Exit::NoHost,
            69 => Exit::Unavailable,
            70 => Exit::Software,
            71 => Exit::OsErr,
            72 => Exit::OsFile,
            73 => Exit::CantCreate,
            74 => Exit::IoErr,
            75 => Exit::TempFail,
            76 => Exit::Protocol,
            77 => Exit::NoPerm,
            78 => Exit::Config,
            _ => return None,
        })
    }
}

/// An error that decides the exit status of the program.
#[derive(Debug)]
pub struct Failure {
    /// The status to exit with.
    pub exit: Exit,
    /// One line saying what went wrong.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// Builds an `anyhow::Error` that exits with `exit`.
pub fn fail(exit: Exit, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure {
        exit,
        message: message.into(),
    })
}

/// Returns early with a [`Failure`]: `bail_with!(Exit::Usage, "bad {}", x)`.
#[macro_export]
macro_rules! bail_with {
    ($exit:expr, $($arg:tt)+) => {
        return Err($crate::exit::fail($exit, format!($($arg)+)))
    };
}

/// The exit status an error should produce.
///
/// The outermost [`Failure`] or typed layer error in the chain wins;
/// otherwise I/O errors that mean "the connection went away" are temporary
/// (75), and anything else is an internal error (70).
pub fn exit_status(err: &anyhow::Error) -> Exit {
    for cause in err.chain() {
        if let Some(failure) = cause.downcast_ref::<Failure>() {
            return failure.exit;
        }
        if let Some(exit) = layer_exit(cause) {
            return exit;
        }
    }
    for cause in err.chain() {
        if let Some(io_err) = cause.downcast_ref::<io::Error>() {
            return io_exit_status(io_err);
        }
    }
    Exit::Software
}

/// The exit status for an SMTP client error: refusals by their reply code
/// (4xx temporary, 5xx permanent), credentials problems 77, malformed
/// replies and missing TLS 76, unusable arguments 64.
fn smtp_exit(e: &crate::proto::smtp::Error) -> Exit {
    use crate::proto::smtp::Error as E;
    let by_class = |class: u8| match class {
        4 => Exit::TempFail,
        5 => Exit::Unavailable,
        _ => Exit::Protocol,
    };
    match e {
        E::MalformedReply { .. }
        | E::CodeChanged { .. }
        | E::ReplyTooLong
        | E::TooManyLines
        | E::Unexpected { .. }
        | E::StartTlsNotOffered
        | E::BadChallenge(_) => Exit::Protocol,
        // RFC 4954 section 6: "530 5.7.0 Authentication required" is a
        // matter of credentials (77), not a refusal of the mail.
        E::Refused { reply, .. } if reply.code == 530 => Exit::NoPerm,
        E::Refused { reply, .. } => by_class(reply.class()),
        E::StartTlsRefused(reply) if reply.is_transient() => Exit::TempFail,
        E::StartTlsRefused(_) => Exit::Protocol,
        E::PlaintextAuth => Exit::Config,
        E::AuthNotOffered | E::MechanismNotOffered { .. } | E::NoUsableMechanism { .. } => {
            Exit::NoPerm
        }
        E::AuthRefused { reply, .. } if reply.is_permanent() => Exit::NoPerm,
        E::AuthRefused { reply, .. } => by_class(reply.class()),
        E::Scram(e) => scram_exit(e),
        E::InvalidArgument(_) | E::NoRecipients => Exit::Usage,
        E::TooBig { .. } | E::NeedsSmtpUtf8 { .. } | E::DsnNotOffered => Exit::Unavailable,
        E::RecipientsRefused { refused, all } => match (all, E::any_permanent(refused)) {
            (_, false) => Exit::TempFail,
            (true, true) => Exit::NoUser,
            (false, true) => Exit::Unavailable,
        },
        E::ConnectionLost | E::Incomplete => Exit::TempFail,
    }
}

/// The exit status for a failed SCRAM exchange: a server that cannot prove
/// it knows the password, or breaks the exchange, 76; a SCRAM error it
/// reports (such as `invalid-proof`) 77; credentials SASLprep refuses 78.
fn scram_exit(e: &crate::proto::sasl::scram::Error) -> Exit {
    use crate::proto::sasl::scram::Error as E;
    match e {
        E::Prepare(_) | E::NoChannelBinding => Exit::Config,
        E::Server(_) => Exit::NoPerm,
        E::ServerFirst(_) | E::TooManyIterations(_) | E::NotProven => Exit::Protocol,
    }
}

/// The exit status for a POP3 error: a refused login is 77, a temporary
/// refusal 75, any other `-ERR` 69, a password that would go unencrypted
/// 78, a bad argument 64, and anything the server got wrong 76.
fn pop3_exit(e: &crate::proto::pop3::Error) -> Exit {
    use crate::proto::pop3::{Error, Refusal};
    match e {
        Error::Refused { .. } => match e.refusal() {
            Some(Refusal::Temporary) => Exit::TempFail,
            Some(Refusal::Login) => Exit::NoPerm,
            _ => Exit::Unavailable,
        },
        Error::Unencrypted { .. } => Exit::Config,
        Error::BadArgument(_) => Exit::Usage,
        Error::NotAllowed(_) => Exit::Software,
        Error::Malformed(_) | Error::TooLarge(_) | Error::Unexpected(_) => Exit::Protocol,
        Error::Scram(e) => scram_exit(e),
    }
}

/// The exit status for a failure of the net layer.
fn net_exit(e: &crate::net::Error) -> Exit {
    use crate::net::Error as E;
    match e {
        E::Resolve { .. } if e.is_temporary_lookup() => Exit::TempFail,
        E::Resolve { .. } | E::NoAddress { .. } => Exit::NoHost,
        E::Connect { source, .. } | E::Io(source) => io_exit_status(source),
        E::Handshake { temporary, .. } if *temporary => Exit::TempFail,
        E::HandshakeTimedOut { .. } | E::TimedOut | E::Closed => Exit::TempFail,
        E::Handshake { .. }
        | E::Accept { .. }
        | E::AlreadyTls
        | E::ClientSetup { .. }
        | E::LineTooLong { .. } => Exit::Protocol,
        E::File { .. } => Exit::NoInput,
        E::CaFile { .. } | E::Key { .. } | E::Identity { .. } | E::ServerSetup { .. } => {
            Exit::Config
        }
        E::Generate { .. } => Exit::Software,
    }
}

/// The exit status for a typed error of a layer (POP3, net, mail, store,
/// config),
/// `None` for any other error.
fn layer_exit(cause: &(dyn std::error::Error + 'static)) -> Option<Exit> {
    if let Some(e) = cause.downcast_ref::<crate::proto::smtp::Error>() {
        return Some(smtp_exit(e));
    }
    if let Some(e) = cause.downcast_ref::<crate::proto::pop3::Error>() {
        return Some(pop3_exit(e));
    }
    if let Some(e) = cause.downcast_ref::<crate::net::Error>() {
        return Some(net_exit(e));
    }
    if cause.downcast_ref::<crate::endpoint::Error>().is_some() {
        return Some(Exit::Usage);
    }
    if let Some(e) = cause.downcast_ref::<crate::mail::raw::Error>() {
        return Some(raw_exit(e));
    }
    if let Some(e) = cause.downcast_ref::<crate::mail::Error>() {
        return Some(mail_exit(e));
    }
    if let Some(e) = cause.downcast_ref::<crate::store::Error>() {
        return Some(store_exit(e));
    }
    if let Some(e) = cause.downcast_ref::<crate::config::Error>() {
        return Some(config_exit(e));
    }
    if let Some(e) = cause.downcast_ref::<crate::config::Hinted>() {
        return Some(exit_status(&e.error));
    }
    None
}

fn config_exit(e: &crate::config::Error) -> Exit {
    use crate::config::Error;
    match e {
        Error::NoServer { .. } | Error::ZeroTimeout => Exit::Usage,
        Error::PasswordPrompt(_) => Exit::IoErr,
        Error::At { error, .. } => config_exit(error),
        _ => Exit::Config,
    }
}

fn mail_exit(e: &crate::mail::Error) -> Exit {
    use crate::mail::Error;
    match e {
        Error::Invalid(_) => Exit::Usage,
        Error::NoInput(_) => Exit::NoInput,
        Error::Io(_) => Exit::IoErr,
        Error::NotAMessage(_) => Exit::DataErr,
        Error::CantCreate(_) => Exit::CantCreate,
        Error::Internal(_) => Exit::Software,
    }
}

fn store_exit(e: &crate::store::Error) -> Exit {
    use crate::store::Error;
    match e {
        Error::NoStateDir | Error::Unreadable { .. } => Exit::Config,
        Error::CreateDir { .. } => Exit::CantCreate,
        Error::Io { .. } => Exit::IoErr,
        Error::Locked { .. } | Error::Busy { .. } => Exit::TempFail,
    }
}

fn raw_exit(e: &crate::mail::raw::Error) -> Exit {
    use crate::mail::raw::Error;
    match e {
        Error::Read(_) => Exit::IoErr,
        Error::NoEndOfHeader => Exit::DataErr,
    }
}

/// The exit status for an I/O error on a connection.
pub fn io_exit_status(err: &io::Error) -> Exit {
    use io::ErrorKind::*;
    match err.kind() {
        TimedOut | WouldBlock | ConnectionReset | ConnectionAborted | ConnectionRefused
        | BrokenPipe | UnexpectedEof | NotConnected | Interrupted => Exit::TempFail,
        _ => Exit::IoErr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn failure_in_chain_decides() {
        let err = Err::<(), _>(fail(Exit::NoPerm, "535 no"))
            .context("authenticating")
            .unwrap_err();
        assert_eq!(exit_status(&err), Exit::NoPerm);
        assert_eq!(format!("{err:#}"), "authenticating: 535 no");
    }

    #[test]
    fn typed_errors_decide() {
        let hinted = crate::config::with_tls_hint(
            fail(Exit::TempFail, "timed out"),
            465,
            crate::net::connection::TlsMode::Starttls,
        );
        assert_eq!(exit_status(&hinted), Exit::TempFail);
        let err = anyhow::Error::new(crate::config::Error::At {
            origin: "f:1".into(),
            error: Box::new(crate::config::Error::ZeroTimeout),
        });
        assert_eq!(exit_status(&err), Exit::Usage);
        let err = anyhow::Error::new(crate::store::Error::NoStateDir);
        assert_eq!(exit_status(&err), Exit::Config);
        let err = anyhow::Error::new(crate::mail::raw::Error::NoEndOfHeader);
        assert_eq!(exit_status(&err), Exit::DataErr);
    }

    #[test]
    fn sysexits_codes_round_trip() {
        for code in 64..=78 {
            assert_eq!(Exit::from_sysexits(code).unwrap().code() as i32, code);
        }
        assert_eq!(Exit::from_sysexits(0), None);
        assert_eq!(Exit::from_sysexits(1), None);
        assert_eq!(Exit::from_sysexits(79), None);
    }

    #[test]
    fn smtp_errors_map_to_sysexits() {
        use crate::proto::smtp::client::{RecipientState, RecipientStatus};
        use crate::proto::smtp::reply::{Reply, ReplyReader};
        use crate::proto::smtp::Error as E;
        let reply = |code: u16| -> Reply {
            let mut r = ReplyReader::new();
            r.feed(format!("{code} x\r\n").as_bytes()).unwrap();
            r.next_reply().unwrap()
        };
        let rcpt = |state| RecipientStatus {
            address: "a@b".into(),
            state,
            reply: None,
            delivered: false,
        };
        let refused = |code| E::Refused {
            what: "x",
            reply: reply(code),
        };
        let auth = |code| E::AuthRefused {
            mechanism: None,
            reply: reply(code),
        };
        let cases = [
            (E::ReplyTooLong, Exit::Protocol),
            (E::StartTlsNotOffered, Exit::Protocol),
            (refused(421), Exit::TempFail),
            (refused(554), Exit::Unavailable),
            (refused(530), Exit::NoPerm),
            (E::StartTlsRefused(reply(454)), Exit::TempFail),
            (E::StartTlsRefused(reply(502)), Exit::Protocol),
            (E::PlaintextAuth, Exit::Config),
            (E::AuthNotOffered, Exit::NoPerm),
            (auth(535), Exit::NoPerm),
            (auth(454), Exit::TempFail),
            (auth(250), Exit::Protocol),
            (E::InvalidArgument("x".into()), Exit::Usage),
            (E::TooBig { size: 2, limit: 1 }, Exit::Unavailable),
            (
                E::RecipientsRefused {
                    refused: vec![rcpt(RecipientState::PermFailed)],
                    all: true,
                },
                Exit::NoUser,
            ),
            (
                E::RecipientsRefused {
                    refused: vec![rcpt(RecipientState::PermFailed)],
                    all: false,
                },
                Exit::Unavailable,
            ),
            (
                E::RecipientsRefused {
                    refused: vec![rcpt(RecipientState::TempFailed)],
                    all: true,
                },
                Exit::TempFail,
            ),
            (E::Incomplete, Exit::TempFail),
        ];
        for (error, exit) in cases {
            let err = anyhow::Error::new(error.clone()).context("reading");
            assert_eq!(exit_status(&err), exit, "{error:?}");
        }
    }

    #[test]
    fn net_errors_keep_their_statuses() {
        use crate::net::Error as E;
        let status = |e: E| exit_status(&anyhow::Error::new(e).context("doing"));
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let host = || "h".to_string();
        let address = crate::endpoint::Error::Address { text: host() };
        assert_eq!(
            exit_status(&anyhow::Error::new(address).context("doing")),
            Exit::Usage
        );
        assert_eq!(
            status(E::Resolve {
                host: host(),
                source: io::Error::other("no")
            }),
            Exit::NoHost
        );
        // The network is down: retry later.
        assert_eq!(
            status(E::Resolve {
                host: host(),
                source: io::Error::other(
                    "failed to lookup address information: Temporary failure in name resolution"
                )
            }),
            Exit::TempFail
        );
        assert_eq!(
            status(E::Connect {
                endpoint: host(),
                source: refused
            }),
            Exit::TempFail
        );
        let handshake = |temporary| E::Handshake {
            host: host(),
            reason: "r".into(),
            hint: None,
            temporary,
        };
        assert_eq!(status(handshake(false)), Exit::Protocol);
        assert_eq!(status(handshake(true)), Exit::TempFail);
        assert_eq!(
            status(E::HandshakeTimedOut { host: host() }),
            Exit::TempFail
        );
        assert_eq!(status(E::LineTooLong { max: 1 }), Exit::Protocol);
        assert_eq!(status(E::Closed), Exit::TempFail);
        assert_eq!(
            status(E::CaFile {
                path: "ca".into(),
                reason: "r".into()
            }),
            Exit::Config
        );
        assert_eq!(
            status(E::File {
                path: "ca".into(),
                source: io::Error::from(io::ErrorKind::NotFound)
            }),
            Exit::NoInput
        );
    }

    #[test]
    fn dropped_connection_is_temporary() {
        let err = anyhow::Error::new(io::Error::from(io::ErrorKind::UnexpectedEof));
        assert_eq!(exit_status(&err), Exit::TempFail);
        let err = anyhow::anyhow!("something odd");
        assert_eq!(exit_status(&err), Exit::Software);
    }
}
