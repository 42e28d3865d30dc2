//! `mailctl password set|delete [--account NAME]`: the password of an
//! account in the system keyring, under the entry its `password_keyring`
//! key names. The password is read from the terminal (twice) or from the
//! first line of standard input, never from an argument.

use std::io::{BufRead, IsTerminal};

use clap::{Args, Subcommand};

use super::Globals;
use crate::cli::ConnectArgs;
use crate::config::{self, keyring, ConfiguredPassword, Protocol};
use crate::exit::{fail, Exit};
use crate::secret::Secret;
use crate::text::printable;

/// Options of `mailctl password`.
#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: PasswordAction,
}

/// `mailctl password` subcommands.
#[derive(Debug, Subcommand)]
pub enum PasswordAction {
    /// Store the account's password in the system keyring.
    #[command(after_help = SET_HELP)]
    Set(Target),
    /// Remove the account's password from the system keyring.
    Delete(Target),
}

const SET_HELP: &str = "\
The account names its keyring entry in the configuration file:

  [accounts.work]
  password_keyring = \"work\"

Examples:
  mailctl password set --account work          # asks twice on the terminal
  pass show mail/work | mailctl password set --account work";

/// Which account's entry.
#[derive(Debug, Args)]
pub struct Target {
    /// The account [default: the file's `default`].
    #[arg(long, value_name = "NAME", env = "MAILCTL_ACCOUNT")]
    pub account: Option<String>,
}

/// Runs `mailctl password`.
pub fn run(args: PasswordArgs, globals: Globals) -> anyhow::Result<Exit> {
    match args.action {
        PasswordAction::Set(target) => {
            let entries = entries(&target, globals)?;
            let secret = read_password()?;
            for entry in &entries {
                keyring::store(entry, &secret)?;
                eprintln!(
                    "mailctl: stored in the keyring as `{}`",
                    printable(entry.as_bytes())
                );
            }
        }
        PasswordAction::Delete(target) => {
            for entry in entries(&target, globals)? {
                let shown = printable(entry.as_bytes());
                if keyring::delete(&entry)? {
                    eprintln!("mailctl: removed `{shown}` from the keyring");
                } else {
                    eprintln!("mailctl: the keyring holds no `{shown}`");
                }
            }
        }
    }
    Ok(Exit::Ok)
}

/// The keyring entries the account's servers read their password from.
fn entries(target: &Target, globals: Globals) -> anyhow::Result<Vec<String>> {
    let connect = ConnectArgs {
        account: target.account.clone(),
        ..ConnectArgs::default()
    };
    let mut entries = Vec::new();
    let mut account = None;
    for protocol in [Protocol::Smtp, Protocol::Pop3] {
        // An account may have one server table only.
        let Ok(server) = config::resolve(protocol, &connect, globals.config) else {
            continue;
        };
        account = account.or(server.account.clone());
        if let Some(ConfiguredPassword::Keyring { entry, .. }) = &server.password.configured {
            if !entries.contains(entry) {
                entries.push(entry.clone());
            }
        }
    }
    if entries.is_empty() {
        // Say why: a broken file or unknown account first, as resolving does.
        config::resolve(Protocol::Smtp, &connect, globals.config)
            .or_else(|_| config::resolve(Protocol::Pop3, &connect, globals.config))?;
        let name = account.unwrap_or_default();
        return Err(fail(
            Exit::Config,
            format!(
                "account '{name}' names no keyring entry: add password_keyring = \"{name}\" \
                 to [accounts.{name}] first"
            ),
        ));
    }
    Ok(entries)
}

/// The password: asked twice on a terminal, else the first line of
/// standard input.
fn read_password() -> anyhow::Result<Secret> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            return Err(fail(
                Exit::DataErr,
                "the two passwords differ; nothing stored",
            ));
        }
        return non_empty(first);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    non_empty(line.trim_end_matches(['\r', '\n']).to_string())
}

fn non_empty(password: String) -> anyhow::Result<Secret> {
    if password.is_empty() {
        return Err(fail(Exit::DataErr, "empty password; nothing stored"));
    }
    Ok(Secret::new(password))
}
