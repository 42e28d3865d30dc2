//! The `[accounts.NAME.oauth2]` table turned into the settings of the
//! account's OAuth 2 client: the provider's endpoints and scopes unless the
//! table names its own.

use std::path::{Path, PathBuf};

use toml::Spanned;

use super::file::{Loaded, Provider};

/// Microsoft identity platform, the `common` tenant.
const MICROSOFT: Endpoints = Endpoints {
    token_url: "https://login.microsoftonline.com/common/oauth2/v2.0/token",
    auth_url: "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
    device_url: Some("https://login.microsoftonline.com/common/oauth2/v2.0/devicecode"),
    scopes: &[
        "offline_access",
        "https://outlook.office.com/SMTP.Send",
        "https://outlook.office.com/POP.AccessAsUser.All",
    ],
};

/// Google: its device grant does not allow the mail scope, so the code
/// grant with a loopback redirect is used.
const GOOGLE: Endpoints = Endpoints {
    token_url: "https://oauth2.googleapis.com/token",
    auth_url: "https://accounts.google.com/o/oauth2/v2/auth",
    device_url: None,
    scopes: &["https://mail.google.com/"],
};

/// A provider's known endpoints and scopes.
struct Endpoints {
    token_url: &'static str,
    auth_url: &'static str,
    device_url: Option<&'static str>,
    scopes: &'static [&'static str],
}

/// Everything the OAuth 2 client of one account needs (no secrets: those
/// come from commands and files when used).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuth2Settings {
    /// The account name, which names its token files.
    pub account: String,
    /// The token endpoint (RFC 6749 section 3.2).
    pub token_url: String,
    /// The authorization endpoint of the code grant, if known.
    pub auth_url: Option<String>,
    /// The device authorization endpoint (RFC 8628), if the provider has
    /// one: `oauth2 login` then uses the device grant.
    pub device_url: Option<String>,
    /// The scopes asked for.
    pub scopes: Vec<String>,
    /// The application's client id.
    pub client_id: String,
    /// A command printing the client secret.
    pub client_secret_command: Option<String>,
    /// A command keeping the refresh token instead of a file.
    pub refresh_token_command: Option<String>,
    /// The trusted CA certificates for the endpoints, instead of the
    /// system's (the account's `ca_file`).
    pub ca_file: Option<PathBuf>,
}

/// The OAuth 2 settings of account `name`, if it has an `oauth2` table;
/// `ca_file` is the account's own, already resolved.
pub fn oauth2_settings(
    loaded: &Loaded,
    name: &str,
    ca_file: Option<PathBuf>,
) -> anyhow::Result<Option<OAuth2Settings>> {
    let Some(table) = loaded.file.accounts[name].oauth2.as_ref() else {
        return Ok(None);
    };
    let preset = table.provider.as_ref().map(|p| match p.get_ref() {
        Provider::Microsoft => &MICROSOFT,
        Provider::Google => &GOOGLE,
    });
    let own = |key: &Option<Spanned<String>>| key.as_ref().map(|v| v.get_ref().clone());
    let token_url = own(&table.token_url).or(preset.map(|p| p.token_url.to_string()));
    let Some(token_url) = token_url else {
        return Err(loaded.error_at_table(
            &format!("accounts.{name}.oauth2"),
            "the oauth2 table needs `provider` (\"microsoft\" or \"google\") or `token_url`",
        ));
    };
    for url in [&table.token_url, &table.auth_url, &table.device_url]
        .into_iter()
        .flatten()
    {
        check_url(loaded, url)?;
    }
    Ok(Some(OAuth2Settings {
        account: name.to_string(),
        token_url,
        auth_url: own(&table.auth_url).or(preset.map(|p| p.auth_url.to_string())),
        device_url: match &table.device_url {
            Some(url) => Some(url.get_ref().clone()),
            None if table.auth_url.is_none() => {
                preset.and_then(|p| p.device_url.map(str::to_string))
            }
            None => None,
        },
        scopes: match &table.scopes {
            Some(scopes) => scopes.clone(),
            None => preset
                .map(|p| p.scopes.iter().map(|s| s.to_string()).collect())
                .unwrap_or_default(),
        },
        client_id: table.client_id.get_ref().clone(),
        client_secret_command: own(&table.client_secret_command),
        refresh_token_command: own(&table.refresh_token_command),
        ca_file,
    }))
}

/// An endpoint must be HTTPS, or plain HTTP to this machine (a local
/// token server), so that no secret crosses a network in the clear.
fn check_url(loaded: &Loaded, url: &Spanned<String>) -> anyhow::Result<()> {
    let text = url.get_ref();
    let local = ["http://127.0.0.1:", "http://[::1]:", "http://localhost:"]
        .iter()
        .any(|p| text.starts_with(p));
    if text.starts_with("https://") || local {
        return Ok(());
    }
    Err(loaded.error_at(
        url.span(),
        format!(
            "`{}` is not an https:// URL (plain http is allowed only to 127.0.0.1, [::1] or localhost)",
            crate::text::printable(text.as_bytes())
        ),
    ))
}

/// The account's own `ca_file` (not a server's), resolved.
pub fn account_ca_file(loaded: &Loaded, name: &str) -> Option<PathBuf> {
    loaded.file.accounts[name]
        .ca_file
        .as_ref()
        .map(|p| super::resolve::relative_to(&loaded.path, p.get_ref()))
}

/// The OAuth 2 settings of an account for `oauth2 login`: the file at
/// `config` (or the default path), the account named or the default one,
/// which must have an `oauth2` table.
pub fn resolve_oauth2(
    config: Option<&Path>,
    account: Option<&str>,
) -> anyhow::Result<OAuth2Settings> {
    let path = match config {
        Some(path) => path.to_path_buf(),
        None => super::default_path().ok_or(super::Error::NoConfigDir)?,
    };
    let loaded = super::file::load(&path)?;
    let name = super::choose_account(&loaded, account)?;
    match oauth2_settings(&loaded, name, account_ca_file(&loaded, name))? {
        Some(settings) => Ok(settings),
        None => Err(loaded.error_at_table(
            &format!("accounts.{name}"),
            format!("account '{name}' has no [accounts.{name}.oauth2] table"),
        )),
    }
}

/// The OAuth 2 settings of every account of the file that has them.
pub fn all_oauth2(loaded: &Loaded) -> anyhow::Result<Vec<OAuth2Settings>> {
    let mut all = Vec::new();
    for name in loaded.file.accounts.keys() {
        if let Some(settings) = oauth2_settings(loaded, name, account_ca_file(loaded, name))? {
            all.push(settings);
        }
    }
    Ok(all)
}
