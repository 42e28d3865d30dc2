//! The envelope a client submits (RFC 5321 section 2.3.1): who the message
//! is from and who gets it, apart from what its header says.

/// The SMTP envelope (RFC 5321 section 2.3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse-path (MAIL FROM).
    pub from: String,
    /// The forward-paths (RCPT TO), each once.
    pub recipients: Vec<String>,
    /// Delivery status notifications asked for (RFC 3461).
    pub dsn: super::client::Dsn,
}
