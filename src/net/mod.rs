//! The only code that touches sockets and TLS.
//!
//! - [`connection`]: a TCP or TLS connection with time-outs and a transcript.
//! - [`tls`]: every TLS setting, client and server, and certificates.
//! - [`Error`]: what can go wrong in this layer.
//! - [`smtp`] and [`pop3`]: the client drivers that run the protocol
//!   machines of [`crate::proto`] over a connection.
//! - [`serve`]: the listener and sessions of `mailctl serve`.
//! - [`oauth2`]: requests to an OAuth 2 token server and the loopback
//!   listener of the code grant.

pub mod connection;
mod error;
pub mod http;
pub mod oauth2;
pub mod pop3;
pub mod serve;
pub mod smtp;
pub mod tls;

pub use error::Error;
