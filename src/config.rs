//! The configuration file and accounts.
