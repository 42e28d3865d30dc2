//! The listener and sessions of `mailctl serve`: [`listener`] accepts
//! connections, caps them and shuts down cleanly; [`session`] drives the
//! SMTP or POP3 server machine over one connection.

pub mod hooks;
pub mod listener;
pub mod session;
pub mod signal;
pub mod summary;
pub mod throttle;
