//! The command-line options that override an account's settings: the
//! values [`resolve`](super::resolve) merges with the file.

use std::path::PathBuf;

use clap::builder::PossibleValue;
use clap::{Args, ValueEnum};

use crate::endpoint::TlsMode;

/// Options every client command takes to reach a server.
#[derive(Debug, Args, Clone)]
pub struct ConnectArgs {
    /// Account from the configuration file [default: the file's `default`].
    #[arg(long, value_name = "NAME", env = "MAILCTL_ACCOUNT")]
    pub account: Option<String>,

    /// Server as `HOST[:PORT]`.
    // The help text without the Markdown quotes the doc comment needs.
    #[arg(long, value_name = "HOST[:PORT]", help = "Server as HOST[:PORT]")]
    pub server: Option<String>,

    /// Transport security; by default implied by the port (465/995:
    /// implicit, otherwise STARTTLS, which is then required).
    #[arg(long, value_enum)]
    pub tls: Option<TlsMode>,

    /// Trust only the CA certificates in this PEM file, not the system's.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,

    /// Do not verify the server's certificate or host name (testing only).
    #[arg(long)]
    pub insecure: bool,

    /// Present this client certificate (PEM, chain after the leaf) when
    /// the server asks for one.
    #[arg(long, value_name = "PEM", requires = "key")]
    pub cert: Option<PathBuf>,

    /// The private key (PEM, unencrypted) of `--cert`.
    #[arg(long, value_name = "PEM", requires = "cert")]
    pub key: Option<PathBuf>,

    /// User name to authenticate as.
    #[arg(long)]
    pub user: Option<String>,

    /// Shell command whose first output line is the password or token.
    #[arg(long, value_name = "CMD")]
    pub password_command: Option<String>,

    /// Seconds to wait for connecting and for each read or write
    /// [default: the account's `timeout`, else 60].
    #[arg(long, value_name = "SECS", value_parser = timeout_seconds)]
    pub timeout: Option<u64>,
}

/// The longest `--timeout` accepted: a day.
pub const MAX_TIMEOUT_SECS: u64 = 86_400;

/// Parses `--timeout`: whole seconds from 1 to [`MAX_TIMEOUT_SECS`].
fn timeout_seconds(value: &str) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(secs) if (1..=MAX_TIMEOUT_SECS).contains(&secs) => Ok(secs),
        _ => Err(format!(
            "expected whole seconds from 1 to {MAX_TIMEOUT_SECS}"
        )),
    }
}

impl Default for ConnectArgs {
    /// No flags given: every option unset.
    fn default() -> Self {
        ConnectArgs {
            account: None,
            server: None,
            tls: None,
            ca_file: None,
            insecure: false,
            cert: None,
            key: None,
            user: None,
            password_command: None,
            timeout: None,
        }
    }
}

/// `--tls implicit|starttls|none`.
impl ValueEnum for TlsMode {
    fn value_variants<'a>() -> &'a [Self] {
        &[TlsMode::Implicit, TlsMode::Starttls, TlsMode::None]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(match self {
            TlsMode::Implicit => "implicit",
            TlsMode::Starttls => "starttls",
            TlsMode::None => "none",
            // Never named: only implied for a loopback server.
            TlsMode::StarttlsIfOffered => return None,
        }))
    }
}
