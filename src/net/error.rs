//! The errors of the net layer: addresses, name resolution, connecting,
//! TLS set-up and handshakes, and I/O on an open connection.
//!
//! Each message is one line; where an underlying error exists it is the
//! [`source`](std::error::Error::source), so `{:#}` prints
//! `cannot connect to HOST:PORT: Connection refused (os error 111)`.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A failure of the net layer.
#[derive(Debug)]
pub enum Error {
    /// The host name could not be resolved.
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// The host name resolved to no address at all.
    NoAddress {
        /// The host name.
        host: String,
    },
    /// No address of the server accepted the connection.
    Connect {
        /// `HOST:PORT`.
        endpoint: String,
        /// The error of the last address tried.
        source: io::Error,
    },
    /// The TLS handshake with a server failed.
    Handshake {
        /// The name the certificate was checked against.
        host: String,
        /// OpenSSL's reason in a few words.
        reason: String,
        /// What to do about it, for the common causes.
        hint: Option<&'static str>,
        /// The peer dropped the connection mid-handshake (retry later).
        temporary: bool,
    },
    /// The server did not finish the handshake within the time-out.
    HandshakeTimedOut {
        /// The server's name.
        host: String,
    },
    /// A client's handshake with this server failed.
    Accept {
        /// OpenSSL's reason.
        reason: String,
    },
    /// STARTTLS on a connection that is already encrypted.
    AlreadyTls,
    /// A certificate, key or CA file could not be read.
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A CA file holds no usable PEM certificate.
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A private key file is not a PEM private key.
    Key {
        /// The file.
        path: PathBuf,
        /// OpenSSL's reason.
        reason: String,
    },
    /// A certificate and key (server or client) that cannot be used together.
    Identity {
        /// OpenSSL's reason.
        reason: String,
    },
    /// The client TLS context could not be set up.
    ClientSetup {
        /// OpenSSL's reason.
        reason: String,
    },
    /// The server TLS context could not be set up.
    ServerSetup {
        /// OpenSSL's reason.
        reason: String,
    },
    /// A self-signed certificate could not be made.
    Generate {
        /// OpenSSL's reason.
        reason: String,
    },
    /// An I/O error on an open connection.
    Io(io::Error),
    /// The peer sent nothing within the time-out.
    TimedOut,
    /// The peer sent a line longer than allowed.
    LineTooLong {
        /// The limit, in bytes.
        max: usize,
    },
    /// The peer closed the connection.
    Closed,
}

impl Error {
    /// Whether a failed name lookup may work later: the resolver could not
    /// reach a name server (`EAI_AGAIN`, "Temporary failure in name
    /// resolution"), as when the network is down, rather than an answer
    /// that the name does not exist.
    pub fn is_temporary_lookup(&self) -> bool {
        match self {
            Error::Resolve { source, .. } => source
                .to_string()
                .contains("Temporary failure in name resolution"),
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Resolve { host, .. } => write!(f, "cannot resolve host '{host}'"),
            Error::NoAddress { host } => write!(f, "host '{host}' has no address"),
            Error::Connect { endpoint, .. } => write!(f, "cannot connect to {endpoint}"),
            Error::Handshake {
                host, reason, hint, ..
            } => {
                write!(f, "TLS handshake with {host} failed: {reason}")?;
                match hint {
                    Some(hint) => write!(f, "; hint: {hint}"),
                    None => Ok(()),
                }
            }
            Error::HandshakeTimedOut { host } => {
                write!(f, "TLS handshake with {host} failed: handshake timed out")
            }
            Error::Accept { reason } => write!(f, "TLS handshake failed: {reason}"),
            Error::AlreadyTls => f.write_str("connection is already TLS"),
            Error::File { path, .. } => write!(f, "{}", path.display()),
            Error::CaFile { path, reason } => write!(f, "{}: {reason}", path.display()),
            Error::Key { path, reason } => {
                write!(f, "{}: not a PEM private key: {reason}", path.display())
            }
            Error::Identity { reason } => write!(f, "TLS certificate or key unusable: {reason}"),
            Error::ClientSetup { reason } | Error::ServerSetup { reason } => {
                write!(f, "TLS set-up failed: {reason}")
            }
            Error::Generate { reason } => write!(f, "cannot make a certificate: {reason}"),
            Error::Io(e) => write!(f, "{e}"),
            Error::TimedOut => f.write_str("read timed out"),
            Error::LineTooLong { max } => write!(f, "peer sent a line longer than {max} bytes"),
            Error::Closed => f.write_str("connection closed by peer"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Resolve { source, .. }
            | Error::Connect { source, .. }
            | Error::File { source, .. } => Some(source),
            // Transparent: the I/O error's own message is shown.
            Error::Io(e) => e.source(),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_put_the_cause_last() {
        let err = anyhow::Error::new(Error::Connect {
            endpoint: "127.0.0.1:1".into(),
            source: io::Error::new(io::ErrorKind::ConnectionRefused, "refused"),
        });
        assert_eq!(format!("{err:#}"), "cannot connect to 127.0.0.1:1: refused");
        let err = Error::Handshake {
            host: "h".into(),
            reason: "wrong version number".into(),
            hint: Some("plain text"),
            temporary: false,
        };
        assert_eq!(
            err.to_string(),
            "TLS handshake with h failed: wrong version number; hint: plain text"
        );
        let err = Error::from(io::Error::from(io::ErrorKind::UnexpectedEof));
        assert!(matches!(err, Error::Io(ref e) if e.kind() == io::ErrorKind::UnexpectedEof));
    }
}
