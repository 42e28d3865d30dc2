//! Where `fetch` puts an account's mail when the command line does not say:
//! the `[accounts.NAME.fetch]` table, with exactly one of `maildir`, `mbox`,
//! `save_dir` or `mda`, as an mpop account's `delivery` line.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::file::Loaded;

/// The `[accounts.NAME.fetch]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchTable {
    /// Deliver into this Maildir.
    pub maildir: Option<Spanned<PathBuf>>,
    /// Append to this mbox file.
    pub mbox: Option<Spanned<PathBuf>>,
    /// Save each message in a folder under this directory.
    pub save_dir: Option<Spanned<PathBuf>>,
    /// Deliver through this command.
    pub mda: Option<Spanned<String>>,
}

/// An account's configured destination, paths resolved (`~/` to the home
/// directory, relative ones to the configuration file's directory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// `maildir = "..."`.
    Maildir(PathBuf),
    /// `mbox = "..."`.
    Mbox(PathBuf),
    /// `save_dir = "..."`.
    SaveDir(PathBuf),
    /// `mda = "..."`.
    Mda(String),
}

/// Checks that a `fetch` table names one destination at most.
pub fn check(loaded: &Loaded, name: &str, table: &FetchTable) -> anyhow::Result<()> {
    let given = [
        table.maildir.is_some(),
        table.mbox.is_some(),
        table.save_dir.is_some(),
        table.mda.is_some(),
    ];
    if given.iter().filter(|&&g| g).count() > 1 {
        let table_name = format!("accounts.{name}.fetch");
        return Err(loaded.error_at_table(
            &table_name,
            format!(
                "[{table_name}]: give one of `maildir`, `mbox`, `save_dir` or `mda`, not several"
            ),
        ));
    }
    Ok(())
}

/// The destination configured for account `name`, if any.
pub fn delivery(loaded: &Loaded, name: &str) -> Option<Delivery> {
    let table = loaded.file.accounts.get(name)?.fetch.as_ref()?;
    let path = |p: &Spanned<PathBuf>| super::resolve::relative_to(&loaded.path, p.get_ref());
    if let Some(p) = &table.maildir {
        return Some(Delivery::Maildir(path(p)));
    }
    if let Some(p) = &table.mbox {
        return Some(Delivery::Mbox(path(p)));
    }
    if let Some(p) = &table.save_dir {
        return Some(Delivery::SaveDir(path(p)));
    }
    table
        .mda
        .as_ref()
        .map(|c| Delivery::Mda(c.get_ref().clone()))
}

/// The accounts of the file at `config` (else the default path) that have a
/// `[pop3]` table, in name order, for `fetch --all-accounts`.
pub fn pop3_accounts(config: Option<&Path>) -> anyhow::Result<Vec<String>> {
    let loaded = super::load(&config_path(config)?)?;
    let names: Vec<String> = loaded
        .file
        .accounts
        .iter()
        .filter(|(_, account)| account.pop3.is_some())
        .map(|(name, _)| name.clone())
        .collect();
    if names.is_empty() {
        return Err(super::error::file_error(format!(
            "{}: no account has a [pop3] table",
            loaded.path.display()
        )));
    }
    Ok(names)
}

/// The destination configured for account `name` in the file at `config`
/// (else the default path).
pub fn account_delivery(config: Option<&Path>, name: &str) -> anyhow::Result<Option<Delivery>> {
    let loaded = super::load(&config_path(config)?)?;
    Ok(delivery(&loaded, name))
}

/// `config`, else the default configuration file.
fn config_path(config: Option<&Path>) -> anyhow::Result<PathBuf> {
    match config {
        Some(path) => Ok(path.to_path_buf()),
        None => Ok(super::default_path().ok_or(super::Error::NoConfigDir)?),
    }
}
