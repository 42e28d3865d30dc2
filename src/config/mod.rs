//! The configuration file and accounts.
//!
//! A TOML file at `$XDG_CONFIG_HOME/mailctl/config.toml` (or `--config
//! FILE`) names accounts, each with a `from` address, an `smtp` and a `pop3`
//! server table and a password source (`password_command`, `password_env`,
//! or a `password` kept in a private file). See `examples/mailctl.toml`.
//!
//! Commands call [`resolve_smtp`] or [`resolve_pop3`] with their
//! [`ConnectArgs`] and the global `--config` path;
//! command-line flags override the file, and a command line that names a
//! `--server` without `--account` does not read the file at all.

mod connect;
mod delivery;
mod error;
mod file;
mod hint;
pub mod keyring;
mod oauth2;
mod password;
pub mod providers;
mod queue;
mod resolve;

pub use connect::{ConnectArgs, MAX_TIMEOUT_SECS};
pub use delivery::{account_delivery, pop3_accounts, Delivery};
pub use error::{Error, Hinted};

pub use file::{
    is_absent, load, Account, AuthName, ConfigFile, Loaded, OAuth2Table, Pop3Auth, Provider,
    Server, SmtpAuth, TlsSetting,
};
pub use hint::{tls_hint, with_tls_hint};
pub use oauth2::{all_oauth2, resolve_oauth2, OAuth2Settings};
pub use password::{run_password_command, ConfiguredPassword, Password};
pub use queue::{parse_duration, parse_rate, queue_settings, QueueSettings, Rate};
pub use resolve::{
    address_of, choose_account, default_path, from_account, resolve, resolve_pop3, resolve_smtp,
    resolve_timeout, Protocol, ResolvedServer, DEFAULT_TIMEOUT_SECS,
};
