//! The TOML file: its shape, loading, and the checks that need the file
//! itself (line numbers, permissions).
//!
//! Every error names the file and the line: `FILE:LINE: message`, with exit
//! status 78.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::error::file_error;
use crate::endpoint::TlsMode;

/// The whole configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Name of the account used when none is given.
    pub default: Option<Spanned<String>>,
    /// The accounts by name.
    #[serde(default)]
    pub accounts: BTreeMap<String, Account>,
    /// The outbox folder [default: $XDG_STATE_HOME/mailctl/outbox].
    pub outbox: Option<Spanned<PathBuf>>,
    /// Outbox keys for every account (an account's own win).
    /// `queue = "on-failure"`: sendmail mode queues on a temporary failure.
    pub queue: Option<Spanned<QueueMode>>,
    /// How long a queued message is retried: `5d`, `12h`, `30m`, seconds.
    pub queue_max_age: Option<Spanned<String>>,
    /// At most so many messages per period: `30/min`, `2/s`, `500/h`.
    pub rate: Option<Spanned<String>>,
    /// Keep a copy of each message sent: `maildir:DIR` or `mbox:FILE`.
    pub save_copy: Option<Spanned<String>>,
}

/// `queue = "..."`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueMode {
    /// Queue the message when sending fails for now.
    OnFailure,
    /// Never queue.
    Never,
}

/// One account: an identity and the servers it uses.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The sender address, `Name <addr@example.org>` or `addr@example.org`.
    pub from: Option<Spanned<String>>,
    /// User name for both servers unless a server table sets its own.
    pub user: Option<Spanned<String>>,
    /// Password command shared by both servers unless a server table names
    /// its own password source.
    pub password_command: Option<Spanned<String>>,
    /// Environment variable holding the password (shared, as above).
    pub password_env: Option<Spanned<String>>,
    /// The password itself (shared); only allowed in a private file.
    pub password: Option<Spanned<String>>,
    /// The system keyring entry holding the password (shared).
    pub password_keyring: Option<Spanned<String>>,
    /// The trusted CA certificates (PEM) for both servers, instead of the
    /// system's.
    pub ca_file: Option<Spanned<PathBuf>>,
    /// The client certificate (PEM) for both servers.
    pub tls_cert: Option<Spanned<PathBuf>>,
    /// The private key (PEM) of `tls_cert`.
    pub tls_key: Option<Spanned<PathBuf>>,
    /// The SMTP submission server.
    pub smtp: Option<Server<SmtpAuth>>,
    /// The POP3 server.
    pub pop3: Option<Server<Pop3Auth>>,
    /// OAuth 2 instead of a password: `[accounts.NAME.oauth2]`.
    pub oauth2: Option<OAuth2Table>,
    /// Where `fetch` puts this account's mail by default.
    pub fetch: Option<super::delivery::FetchTable>,
    /// Outbox keys for this account.
    /// `queue = "on-failure"`: sendmail mode queues on a temporary failure.
    pub queue: Option<Spanned<QueueMode>>,
    /// How long a queued message is retried: `5d`, `12h`, `30m`, seconds.
    pub queue_max_age: Option<Spanned<String>>,
    /// At most so many messages per period: `30/min`, `2/s`, `500/h`.
    pub rate: Option<Spanned<String>>,
    /// Keep a copy of each message sent: `maildir:DIR` or `mbox:FILE`.
    pub save_copy: Option<Spanned<String>>,
}

/// `[accounts.NAME.oauth2]`: where the account's OAuth 2 tokens come from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Table {
    /// A provider whose endpoints and scopes are known.
    pub provider: Option<Spanned<Provider>>,
    /// The application's client id, registered with the provider.
    pub client_id: Spanned<String>,
    /// A command whose first output line is the client secret, for
    /// providers that require one.
    pub client_secret_command: Option<Spanned<String>>,
    /// The token endpoint (instead of the provider's).
    pub token_url: Option<Spanned<String>>,
    /// The authorization endpoint of the code grant (instead of the
    /// provider's).
    pub auth_url: Option<Spanned<String>>,
    /// The device authorization endpoint (instead of the provider's).
    pub device_url: Option<Spanned<String>>,
    /// The scopes to ask for (instead of the provider's).
    pub scopes: Option<Vec<String>>,
    /// A command that keeps the refresh token instead of a file: run with
    /// `get`, it prints the token; with `store`, it reads it on its input.
    pub refresh_token_command: Option<Spanned<String>>,
}

/// `provider = "..."` in an `oauth2` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    /// Microsoft 365 / Outlook.com (device authorization grant).
    Microsoft,
    /// Gmail (authorization code grant with PKCE, loopback redirect).
    Google,
}

/// The three ways a table can name a password (the keys of one table).
#[derive(Clone, Copy, Debug)]
pub struct PasswordKeys<'a> {
    /// A shell command whose first output line is the password.
    pub password_command: Option<&'a Spanned<String>>,
    /// An environment variable holding the password.
    pub password_env: Option<&'a Spanned<String>>,
    /// The password itself; only allowed in a private (mode 600) file.
    pub password: Option<&'a Spanned<String>>,
    /// The system keyring entry holding the password.
    pub password_keyring: Option<&'a Spanned<String>>,
}

impl PasswordKeys<'_> {
    /// Whether the table names no password source.
    pub fn is_empty(&self) -> bool {
        self.password_command.is_none()
            && self.password_env.is_none()
            && self.password.is_none()
            && self.password_keyring.is_none()
    }
}

/// The outbox keys of one table, top level or account.
#[derive(Clone, Copy, Debug, Default)]
pub struct QueueKeys<'a> {
    /// `queue`.
    pub queue: Option<&'a Spanned<QueueMode>>,
    /// `queue_max_age`.
    pub queue_max_age: Option<&'a Spanned<String>>,
    /// `rate`.
    pub rate: Option<&'a Spanned<String>>,
    /// `save_copy`.
    pub save_copy: Option<&'a Spanned<String>>,
}

impl<'a> QueueKeys<'a> {
    /// These keys, each falling back to `other`'s.
    pub fn or(self, other: QueueKeys<'a>) -> QueueKeys<'a> {
        QueueKeys {
            queue: self.queue.or(other.queue),
            queue_max_age: self.queue_max_age.or(other.queue_max_age),
            rate: self.rate.or(other.rate),
            save_copy: self.save_copy.or(other.save_copy),
        }
    }
}

impl ConfigFile {
    /// The top-level outbox keys.
    pub fn queue_keys(&self) -> QueueKeys<'_> {
        QueueKeys {
            queue: self.queue.as_ref(),
            queue_max_age: self.queue_max_age.as_ref(),
            rate: self.rate.as_ref(),
            save_copy: self.save_copy.as_ref(),
        }
    }
}

impl Account {
    /// The account's outbox keys.
    pub fn queue_keys(&self) -> QueueKeys<'_> {
        QueueKeys {
            queue: self.queue.as_ref(),
            queue_max_age: self.queue_max_age.as_ref(),
            rate: self.rate.as_ref(),
            save_copy: self.save_copy.as_ref(),
        }
    }

    /// The account-wide password keys.
    pub fn password_keys(&self) -> PasswordKeys<'_> {
        PasswordKeys {
            password_command: self.password_command.as_ref(),
            password_env: self.password_env.as_ref(),
            password: self.password.as_ref(),
            password_keyring: self.password_keyring.as_ref(),
        }
    }
}

impl<A> Server<A> {
    /// This server's own password keys.
    pub fn password_keys(&self) -> PasswordKeys<'_> {
        PasswordKeys {
            password_command: self.password_command.as_ref(),
            password_env: self.password_env.as_ref(),
            password: self.password.as_ref(),
            password_keyring: self.password_keyring.as_ref(),
        }
    }
}

/// A server table: `[accounts.NAME.smtp]` or `[accounts.NAME.pop3]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server<A> {
    /// Host name or IP address (no port: see `port`).
    pub host: Spanned<String>,
    /// TCP port; by default implied by `tls`.
    pub port: Option<Spanned<u16>>,
    /// `implicit`, `starttls` or `none`; by default implied by the port.
    pub tls: Option<Spanned<TlsSetting>>,
    /// User name to authenticate as.
    pub user: Option<Spanned<String>>,
    /// Authentication mechanism.
    pub auth: Option<Spanned<A>>,
    /// Password command for this server only.
    pub password_command: Option<Spanned<String>>,
    /// Environment variable holding this server's password.
    pub password_env: Option<Spanned<String>>,
    /// This server's password itself; only allowed in a private file.
    pub password: Option<Spanned<String>>,
    /// The system keyring entry holding this server's password.
    pub password_keyring: Option<Spanned<String>>,
    /// The trusted CA certificates (PEM), instead of the system's.
    pub ca_file: Option<Spanned<PathBuf>>,
    /// The client certificate (PEM) to present to this server.
    pub tls_cert: Option<Spanned<PathBuf>>,
    /// The private key (PEM) of `tls_cert`.
    pub tls_key: Option<Spanned<PathBuf>>,
    /// Seconds to wait for connecting and for each read or write.
    pub timeout: Option<Spanned<u64>>,
}

/// `tls = "..."` in a server table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsSetting {
    /// TLS from the first byte.
    Implicit,
    /// STARTTLS / STLS, required.
    Starttls,
    /// No encryption.
    None,
}

impl From<TlsSetting> for TlsMode {
    fn from(value: TlsSetting) -> Self {
        match value {
            TlsSetting::Implicit => TlsMode::Implicit,
            TlsSetting::Starttls => TlsMode::Starttls,
            TlsSetting::None => TlsMode::None,
        }
    }
}

/// `auth = "..."` in an `smtp` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmtpAuth {
    /// The strongest mechanism the server offers.
    Auto,
    /// AUTH PLAIN.
    Plain,
    /// AUTH LOGIN.
    Login,
    /// AUTH CRAM-MD5.
    CramMd5,
    /// AUTH XOAUTH2 (the password source yields a token).
    Xoauth2,
    /// AUTH OAUTHBEARER (a token, as XOAUTH2).
    Oauthbearer,
    /// AUTH SCRAM-SHA-1.
    ScramSha1,
    /// AUTH SCRAM-SHA-256.
    ScramSha256,
    /// AUTH SCRAM-SHA-1-PLUS.
    ScramSha1Plus,
    /// AUTH SCRAM-SHA-256-PLUS.
    ScramSha256Plus,
    /// AUTH EXTERNAL (the TLS client certificate's identity).
    External,
}

/// `auth = "..."` in a `pop3` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pop3Auth {
    /// The strongest mechanism the server offers.
    Auto,
    /// USER / PASS.
    User,
    /// APOP.
    Apop,
    /// AUTH PLAIN.
    Plain,
    /// AUTH XOAUTH2.
    Xoauth2,
    /// AUTH OAUTHBEARER.
    Oauthbearer,
    /// AUTH SCRAM-SHA-1.
    ScramSha1,
    /// AUTH SCRAM-SHA-256.
    ScramSha256,
    /// AUTH SCRAM-SHA-1-PLUS.
    ScramSha1Plus,
    /// AUTH SCRAM-SHA-256-PLUS.
    ScramSha256Plus,
    /// AUTH EXTERNAL (the TLS client certificate's identity).
    External,
}

/// The wire-independent name of an auth setting, as the command line spells it.
pub trait AuthName {
    /// `auto`, `plain`, `cram-md5`, ...
    fn name(&self) -> &'static str;
}

impl AuthName for SmtpAuth {
    fn name(&self) -> &'static str {
        match self {
            SmtpAuth::Auto => "auto",
            SmtpAuth::Plain => "plain",
            SmtpAuth::Login => "login",
            SmtpAuth::CramMd5 => "cram-md5",
            SmtpAuth::Xoauth2 => "xoauth2",
            SmtpAuth::Oauthbearer => "oauthbearer",
            SmtpAuth::ScramSha1 => "scram-sha-1",
            SmtpAuth::ScramSha256 => "scram-sha-256",
            SmtpAuth::ScramSha1Plus => "scram-sha-1-plus",
            SmtpAuth::ScramSha256Plus => "scram-sha-256-plus",
            SmtpAuth::External => "external",
        }
    }
}

impl AuthName for Pop3Auth {
    fn name(&self) -> &'static str {
        match self {
            Pop3Auth::Auto => "auto",
            Pop3Auth::User => "user",
            Pop3Auth::Apop => "apop",
            Pop3Auth::Plain => "plain",
            Pop3Auth::Xoauth2 => "xoauth2",
            Pop3Auth::Oauthbearer => "oauthbearer",
            Pop3Auth::ScramSha1 => "scram-sha-1",
            Pop3Auth::ScramSha256 => "scram-sha-256",
            Pop3Auth::ScramSha1Plus => "scram-sha-1-plus",
            Pop3Auth::ScramSha256Plus => "scram-sha-256-plus",
            Pop3Auth::External => "external",
        }
    }
}

/// A configuration file read from disk and checked.
#[derive(Debug)]
pub struct Loaded {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its text, kept to turn byte offsets into line numbers.
    pub text: String,
    /// Its permission bits.
    pub mode: u32,
    /// The parsed content.
    pub file: ConfigFile,
}

impl Loaded {
    /// The 1-based line holding byte `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        line_of(&self.text, offset)
    }

    /// An exit-78 error pointing at the start of `span`.
    pub fn error_at(
        &self,
        span: std::ops::Range<usize>,
        message: impl AsRef<str>,
    ) -> anyhow::Error {
        file_error(format!(
            "{}:{}: {}",
            self.path.display(),
            self.line_of(span.start),
            message.as_ref()
        ))
    }

    /// An exit-78 error pointing at the header of table `dotted` (such as
    /// `accounts.work`), or at the file when the header cannot be found.
    pub fn error_at_table(&self, dotted: &str, message: impl AsRef<str>) -> anyhow::Error {
        match table_line(&self.text, dotted) {
            Some(line) => file_error(format!(
                "{}:{line}: {}",
                self.path.display(),
                message.as_ref()
            )),
            None => file_error(format!("{}: {}", self.path.display(), message.as_ref())),
        }
    }

    /// Whether group or other users may read or write the file.
    pub fn is_private(&self) -> bool {
        self.mode & 0o077 == 0
    }
}

/// Reads, parses and checks the configuration file at `path`.
///
/// Errors (all exit 78): the file cannot be read, a syntax error, an unknown key, a
/// wrong type, a missing required key, or a rule the types do not express
/// broken (a `default` naming no account, a file every user may write, a
/// bad host or port, two password sources for one server, ...): all exit 78
/// with `FILE:LINE:`.
pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    let mut file = File::open(path).map_err(|e| open_error(path, e))?;
    let meta = file.metadata().map_err(|e| open_error(path, e))?;
    if meta.is_dir() {
        return Err(file_error(format!(
            "{}: is a directory, not a configuration file",
            path.display()
        )));
    }
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| file_error(format!("{}: cannot read: {e}", path.display())))?;
    let file: ConfigFile = toml::from_str(&text).map_err(|e| parse_error(path, &text, &e))?;
    let loaded = Loaded {
        path: path.to_path_buf(),
        text,
        mode: meta.mode() & 0o7777,
        file,
    };
    check(&loaded)?;
    Ok(loaded)
}

/// A file that could not be opened or inspected.
fn open_error(path: &Path, err: std::io::Error) -> anyhow::Error {
    file_error(format!(
        "{}: cannot open configuration file: {err}",
        path.display()
    ))
}

/// Whether `path` is known not to exist (as opposed to existing but being
/// unreadable, which [`load`] reports).
pub fn is_absent(path: &Path) -> bool {
    matches!(std::fs::metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

fn parse_error(path: &Path, text: &str, err: &toml::de::Error) -> anyhow::Error {
    let mut message = err.message().trim_end().replace('\n', "; ");
    if message == "duplicate key" {
        // The parser points at the key without naming it.
        if let Some(key) = err.span().and_then(|span| text.get(span)) {
            message = format!(
                "duplicate key `{}`",
                crate::text::printable(key.trim().as_bytes())
            );
        }
    }
    match err.span() {
        Some(span) => {
            let line = line_of(text, span.start);
            let table = enclosing_table(text, span.start);
            let place = match table {
                Some(t) => format!(" [{t}]:"),
                None => String::new(),
            };
            file_error(format!("{}:{line}:{place} {message}", path.display()))
        }
        None => file_error(format!("{}: {message}", path.display())),
    }
}

/// The rules the types alone do not express.
pub fn check(loaded: &Loaded) -> anyhow::Result<()> {
    let file = &loaded.file;
    if let Some(default) = &file.default {
        if !file.accounts.contains_key(default.get_ref()) {
            return Err(loaded.error_at(
                default.span(),
                format!(
                    "`default` names account '{}', which is not defined (accounts: {})",
                    default.get_ref(),
                    account_list(file)
                ),
            ));
        }
    }
    if loaded.mode & 0o002 != 0 {
        return Err(file_error(format!("{}: the file is writable by every user (mode {:04o}), so anyone could redirect your mail \
             or run commands as you: run `chmod 600 {}`",
            loaded.path.display(),
            loaded.mode,
            loaded.path.display())));
    }
    super::queue::check_keys(loaded, file.queue_keys())?;
    for (name, account) in &file.accounts {
        super::queue::check_keys(loaded, account.queue_keys())?;
        let table = format!("accounts.{name}");
        if let Some(from) = &account.from {
            check_text(loaded, from, "from")?;
            if !from.get_ref().contains('@') {
                return Err(loaded.error_at(
                    from.span(),
                    format!("`from` = '{}' is not a mail address", from.get_ref()),
                ));
            }
        }
        if let Some(user) = &account.user {
            check_text(loaded, user, "user")?;
        }
        check_password(loaded, account.password_keys())?;
        if account.smtp.is_none() && account.pop3.is_none() {
            return Err(loaded.error_at_table(
                &table,
                format!(
                    "account '{name}' has neither an [{table}.smtp] nor an [{table}.pop3] table"
                ),
            ));
        }
        if let Some(server) = &account.smtp {
            check_server(loaded, server)?;
        }
        if let Some(server) = &account.pop3 {
            check_server(loaded, server)?;
        }
        if let Some(table) = &account.fetch {
            super::delivery::check(loaded, name, table)?;
        }
    }
    Ok(())
}

fn check_server<A>(loaded: &Loaded, server: &Server<A>) -> anyhow::Result<()> {
    let host = server.host.get_ref();
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let bad_host = bare.is_empty()
        || bare
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
        || (bare.contains(':') && bare.parse::<std::net::Ipv6Addr>().is_err());
    if bad_host {
        let hint = if bare.contains(':') {
            " (write the port in `port = N`, not in the host)"
        } else {
            ""
        };
        return Err(loaded.error_at(
            server.host.span(),
            format!("`host` = '{host}' is not a host name or address{hint}"),
        ));
    }
    if let Some(port) = &server.port {
        if *port.get_ref() == 0 {
            return Err(loaded.error_at(port.span(), "`port` must be between 1 and 65535"));
        }
    }
    if let Some(timeout) = &server.timeout {
        let max = super::MAX_TIMEOUT_SECS;
        if !(1..=max).contains(timeout.get_ref()) {
            let message = format!("`timeout` must be from 1 to {max} seconds");
            return Err(loaded.error_at(timeout.span(), &message));
        }
    }
    if let Some(user) = &server.user {
        check_text(loaded, user, "user")?;
    }
    check_password(loaded, server.password_keys())
}

fn check_text(loaded: &Loaded, value: &Spanned<String>, key: &str) -> anyhow::Result<()> {
    let text = value.get_ref();
    if text.is_empty() || text.chars().any(|c| c.is_control()) {
        return Err(loaded.error_at(
            value.span(),
            format!("`{key}` must be non-empty and hold no control characters (CR, LF, ...)"),
        ));
    }
    Ok(())
}

fn check_password(loaded: &Loaded, keys: PasswordKeys<'_>) -> anyhow::Result<()> {
    let given: Vec<(&str, &Spanned<String>)> = [
        ("password_command", keys.password_command),
        ("password_env", keys.password_env),
        ("password", keys.password),
        ("password_keyring", keys.password_keyring),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    if given.len() > 1 {
        let (second, value) = given[1];
        return Err(loaded.error_at(
            value.span(),
            format!(
                "`{second}` and `{}` both given for the same server: keep one",
                given[0].0
            ),
        ));
    }
    if let Some(env) = keys.password_env {
        let name = env.get_ref();
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(loaded.error_at(
                env.span(),
                format!("`password_env` = '{name}' is not an environment variable name"),
            ));
        }
    }
    if let Some(entry) = keys.password_keyring {
        check_text(loaded, entry, "password_keyring")?;
    }
    if let Some(command) = keys.password_command {
        if command.get_ref().trim().is_empty() {
            return Err(loaded.error_at(command.span(), "`password_command` is empty"));
        }
    }
    if let Some(password) = keys.password {
        if !loaded.is_private() {
            return Err(loaded.error_at(
                password.span(),
                format!(
                    "`password` is stored in plain text, but other users can read this file \
                     (mode {:04o}): run `chmod 600 {}`, or use `password_command` or \
                     `password_env` instead",
                    loaded.mode,
                    loaded.path.display()
                ),
            ));
        }
    }
    Ok(())
}

fn account_list(file: &ConfigFile) -> String {
    if file.accounts.is_empty() {
        return "none".to_string();
    }
    file.accounts.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// The 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The `[table]` header in force at byte `offset`, if any.
fn enclosing_table(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let end_of_line = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    text[..end_of_line]
        .lines()
        .rev()
        .find_map(table_header)
        .map(str::to_string)
}

/// The name inside a `[name]` header line (not `[[array]]`), unquoted
/// names only; good enough to point at a place.
fn table_header(line: &str) -> Option<&str> {
    let line = line.trim();
    let inner = line.strip_prefix('[')?;
    if inner.starts_with('[') {
        return None;
    }
    let end = inner.find(']')?;
    Some(inner[..end].trim())
}

/// The line of the header `[dotted]`, or of the first header inside it.
fn table_line(text: &str, dotted: &str) -> Option<usize> {
    let prefix = format!("{dotted}.");
    text.lines().enumerate().find_map(|(i, line)| {
        let name = table_header(line)?;
        (name == dotted || name.starts_with(&prefix)).then_some(i + 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_tables() {
        let text = "a = 1\n[accounts.w]\nfrom = 'x'\n\n[accounts.w.smtp]\nhost = 'h'\n";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, text.find("host").unwrap()), 6);
        assert_eq!(
            enclosing_table(text, text.find("host").unwrap()).as_deref(),
            Some("accounts.w.smtp")
        );
        assert_eq!(enclosing_table(text, 2), None);
        assert_eq!(
            enclosing_table(text, text.find("[accounts.w.smtp]").unwrap()).as_deref(),
            Some("accounts.w.smtp")
        );
        assert_eq!(table_line(text, "accounts.w"), Some(2));
        assert_eq!(table_line(text, "accounts.w.smtp"), Some(5));
        assert_eq!(table_line(text, "accounts.v"), None);
    }
}
