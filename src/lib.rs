//! mailctl: send, fetch and serve mail from the command line.
//!
//! The crate is layered; each layer is a folder:
//!
//! - [`proto`]: SMTP, POP3 and SASL as state machines that do no I/O.
//! - [`net`]: sockets and TLS; drives the machines over connections.
//! - [`mail`]: composing, reading and decoding messages.
//! - [`store`]: durable files, Maildirs, the UIDL state.
//! - [`config`]: the configuration file and accounts.
//! - [`cmd`]: one module per subcommand, on top of all the others.
//!
//! The rules between them (checked by `tests/layers.rs`): `proto` uses no
//! other layer and no sockets, files, clock, TLS or process exit; `net`,
//! `mail` and `store` never use `cli`, `cmd` or `config`; `mail` never uses
//! `net`; `config` never uses `cli` or `net`; exit codes are chosen only in
//! [`exit`] and `cmd`.

pub mod cli;
pub mod cmd;
pub mod config;
pub mod crypto;
pub mod endpoint;
pub mod exit;
pub mod mail;
pub mod net;
pub mod proto;
pub mod secret;
pub mod store;
pub mod system;
pub mod text;
pub mod transcript;
