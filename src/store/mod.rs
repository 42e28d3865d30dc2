//! What is kept on disk: durable file creation ([`durable`]), Maildirs
//! ([`maildir`], [`mailbox`]) and the UIDL state of `fetch --new` ([`uidl`]).

pub mod durable;
pub mod mailbox;
pub mod maildir;
pub mod uidl;
