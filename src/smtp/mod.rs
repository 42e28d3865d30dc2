//! SMTP (RFC 5321) client protocol.
//!
//! Everything here except [`session`] is pure: no sockets, no clock, no
//! files. [`client::Client`] is fed replies and hands back the bytes to send;
//! [`session::submit`] drives it over a [`crate::transport::Connection`].

pub mod client;
pub mod command;
pub mod data;
pub mod ehlo;
pub mod reply;
pub mod session;
