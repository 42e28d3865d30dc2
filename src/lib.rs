//! mailctl: send, fetch and serve mail from the command line.
//!
//! The protocol modules ([`smtp`], [`pop3`]) are state machines that do no
//! I/O; [`transport`] is the only socket code, and the `cmd` modules drive
//! one with the other.

pub mod cli;
pub mod cmd;
pub mod compose;
pub mod config;
pub mod durable;
pub mod exit;
pub mod extract;
pub mod maildir;
pub mod pop3;
pub mod sasl;
pub mod secret;
pub mod selfsigned;
pub mod server;
pub mod smtp;
pub mod system;
pub mod text;
pub mod transcript;
pub mod transport;
