//! `mailctl config check [--account NAME] [--connect]` and `mailctl config
//! path`.
//!
//! `check` validates the file and prints what each account resolves to
//! (never a password). `--connect` opens each server of every account (or
//! of `--account NAME`), reads
//! the greeting, asks EHLO / CAPA, upgrades with STARTTLS / STLS as the
//! account requires, and reports what the server offers; it sends no
//! message, deletes nothing and ends with QUIT.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Globals;
use crate::cli::ConnectArgs;
use crate::config::{self, Loaded, Protocol, ResolvedServer};
use crate::exit::{fail, Exit};
use crate::net::connection::TlsMode;
use crate::text::printable;
use crate::transcript::Transcript;

mod format;
mod init;
pub use format::FORMAT;
mod probe;
pub use init::InitArgs;
pub use probe::{probe_pop3, probe_smtp};

/// Options of `mailctl config`.
#[derive(Debug, Args)]
#[command(after_long_help = FORMAT)]
pub struct ConfigArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: ConfigAction,
}

/// `mailctl config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Validate the configuration file and show what each account uses.
    #[command(after_help = CHECK_HELP)]
    Check(CheckArgs),
    /// Write a first configuration file for an address (asking what is
    /// missing on a terminal).
    Init(InitArgs),
    /// Print the path of the configuration file in use.
    #[command(
        after_help = "Examples:\n  mailctl config path\n  $EDITOR \"$(mailctl config path)\""
    )]
    Path,
}

const CHECK_HELP: &str = "\
Examples:
  mailctl config check                      # every account, no network
  mailctl config check --connect            # and every account's servers
  mailctl config check --account work --connect
  mailctl --config ./test.toml config check

The file lives at $XDG_CONFIG_HOME/mailctl/config.toml (see `mailctl config
path`); examples/mailctl.toml in the source shows every key. A mistake is
reported as FILE:LINE: ... with exit status 78.";

/// Options of `mailctl config check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Check only this account (and connect to its servers with --connect).
    #[arg(long, value_name = "NAME", env = "MAILCTL_ACCOUNT")]
    pub account: Option<String>,

    /// Also connect to the SMTP and POP3 servers of every account (or of
    /// --account) and report what each offers (TLS, EHLO / CAPA); sends and
    /// deletes nothing.
    #[arg(long)]
    pub connect: bool,
}

/// Runs `mailctl config`.
pub fn run(args: ConfigArgs, globals: Globals) -> anyhow::Result<Exit> {
    let path = config_path(globals)?;
    match args.action {
        ConfigAction::Path => {
            println!("{}", path.display());
            Ok(Exit::Ok)
        }
        ConfigAction::Check(check) => run_check(&path, &check, globals),
        ConfigAction::Init(init) => {
            if !init::run(&path, &init)? {
                return Ok(Exit::Ok);
            }
            let loaded = config::load(&path)?;
            let names: Vec<String> = loaded.file.accounts.keys().cloned().collect();
            connect_accounts(&loaded, &names, globals)
        }
    }
}

fn config_path(globals: Globals) -> anyhow::Result<PathBuf> {
    match globals.config {
        Some(path) => Ok(path.to_path_buf()),
        None => config::default_path().ok_or_else(|| {
            fail(
                Exit::Config,
                "no configuration directory (HOME and XDG_CONFIG_HOME unset): give --config FILE",
            )
        }),
    }
}

fn run_check(path: &std::path::Path, args: &CheckArgs, globals: Globals) -> anyhow::Result<Exit> {
    if config::is_absent(path) {
        crate::bail_with!(
            Exit::Config,
            "{}: no such file: create it (examples/mailctl.toml shows every key) or give --config FILE",
            path.display()
        );
    }
    let loaded = config::load(path)?;
    let names: Vec<String> = match &args.account {
        Some(name) => vec![config::choose_account(&loaded, Some(name))?.to_string()],
        None => loaded.file.accounts.keys().cloned().collect(),
    };
    println!(
        "file: {} (mode {:04o}{})",
        loaded.path.display(),
        loaded.mode,
        if loaded.is_private() { ", private" } else { "" }
    );
    if names.is_empty() {
        println!("warning: no account defined: add an [accounts.NAME] table");
    }
    let default = config::choose_account(&loaded, None).ok();
    for name in &names {
        let servers = account_servers(&loaded, name)?;
        let marker = if default == Some(name.as_str()) {
            " (default)"
        } else {
            ""
        };
        println!("account {}{marker}", shown(name));
        if let Some(from) = servers.iter().find_map(|s| s.from.as_deref()) {
            println!("  from: {}", shown(from));
        }
        for server in &servers {
            println!(
                "  {}: {}",
                server.protocol.name(),
                shown(&server.describe())
            );
            for warning in warnings(server) {
                println!("  warning: {}", shown(&warning));
            }
        }
    }
    if !args.connect {
        return Ok(Exit::Ok);
    }
    connect_accounts(&loaded, &names, globals)
}

/// `--connect`: probes the servers of each account in `names`, saying
/// which account and server each report is about; fails with the first
/// failure once every server was tried.
fn connect_accounts(loaded: &Loaded, names: &[String], globals: Globals) -> anyhow::Result<Exit> {
    let transcript = Transcript::stderr(globals.verbose > 0);
    let mut first_error = None;
    let mut failed = Vec::new();
    for name in names {
        for server in account_servers(loaded, name)? {
            println!(
                "account {}: connecting to {} server {}",
                shown(name),
                server.protocol.name(),
                shown(&server.endpoint.to_string()),
            );
            let result = match server.protocol {
                Protocol::Smtp => probe_smtp(&server, &transcript),
                Protocol::Pop3 => probe_pop3(&server, &transcript),
            };
            match result {
                Ok(report) => {
                    for line in report {
                        println!("  {line}");
                    }
                }
                Err(err) => {
                    let err = config::with_tls_hint(err, server.endpoint.port, server.tls);
                    println!("  failed: {}", printable(format!("{err:#}").as_bytes()));
                    failed.push(format!("{} {}", shown(name), server.protocol.name()));
                    first_error.get_or_insert(err);
                }
            }
        }
    }
    match first_error {
        Some(err) => Err(err.context(format!("failed: {}", failed.join(", ")))),
        None => Ok(Exit::Ok),
    }
}

/// A value from the configuration file as it is safe to print: terminal
/// escapes and other control characters made visible.
fn shown(value: &str) -> String {
    printable(value.as_bytes())
}

/// The SMTP and POP3 servers of account `name`, resolved without flags.
fn account_servers(loaded: &Loaded, name: &str) -> anyhow::Result<Vec<ResolvedServer>> {
    let connect = ConnectArgs::default();
    let account = &loaded.file.accounts[name];
    let mut out = Vec::new();
    if account.smtp.is_some() {
        out.push(config::from_account(
            Protocol::Smtp,
            &connect,
            loaded,
            Some(name),
        )?);
    }
    if account.pop3.is_some() {
        out.push(config::from_account(
            Protocol::Pop3,
            &connect,
            loaded,
            Some(name),
        )?);
    }
    Ok(out)
}

/// Doubtful but legal settings.
fn warnings(server: &ResolvedServer) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(hint) = server.tls_hint() {
        out.push(hint.to_string());
    }
    if server.tls == TlsMode::None && server.user.is_some() && !server.endpoint.is_loopback() {
        out.push(format!(
            "tls = \"none\" with a user: the password would cross the network in clear, \
             so {} will refuse to log in",
            server.protocol.name()
        ));
    }
    if let Some(config::ConfiguredPassword::Env { var, origin }) = &server.password.configured {
        if std::env::var_os(var).is_none() {
            out.push(format!(
                "{origin}: password_env names {var}, which is not set now"
            ));
        }
    }
    if server.user.is_none() && server.password.configured.is_some() {
        out.push("a password source is set but no `user`: no login will be attempted".to_string());
    }
    if let Some(ca) = &server.tls_options.ca_file {
        if !ca.is_file() {
            out.push(format!("ca_file {} does not exist", ca.display()));
        }
    }
    out
}
