//! SMTP (RFC 5321): the client and server state machines and what they share.
//!
//! Nothing here does I/O: [`client::Client`] is fed replies and hands back
//! the bytes to send, [`server::SmtpServer`] is fed command lines and answers
//! with replies and actions. [`crate::net::smtp`] and [`crate::net::serve`]
//! drive them over sockets.

pub mod client;
pub mod command;
pub mod data;
pub mod ehlo;
pub mod envelope;
pub mod error;
pub mod fault;
pub mod receive;
pub mod reply;
pub mod server;

pub use error::Error;

#[cfg(test)]
mod tests;
