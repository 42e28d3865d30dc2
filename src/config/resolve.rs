//! Turning command-line flags plus an account from the file into the
//! settings of one server connection. Flags win over the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::connect::ConnectArgs;
use super::error::{file_error, Error};
use super::file::{self, AuthName, Loaded, PasswordKeys, Server};
use super::oauth2::{account_ca_file, oauth2_settings, OAuth2Settings};
use super::password::{ConfiguredPassword, Password};
use crate::endpoint::{ClientCert, Endpoint, TlsMode, TlsOptions};
use crate::secret::Secret;

/// The time-out when neither `--timeout` nor the account's `timeout` sets one.
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;

/// The time-out in seconds: `--timeout` if given, else the server table's
/// `timeout`, else [`DEFAULT_TIMEOUT_SECS`].
pub fn resolve_timeout(flag: Option<u64>, file: Option<u64>) -> u64 {
    flag.or(file).unwrap_or(DEFAULT_TIMEOUT_SECS)
}

/// Which server of an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// SMTP submission (RFC 6409): 587 with STARTTLS, 465 with implicit TLS.
    Smtp,
    /// POP3 (RFC 1939): 110 with STLS, 995 with implicit TLS.
    Pop3,
}

impl Protocol {
    /// The table name in the file and the word used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Smtp => "smtp",
            Protocol::Pop3 => "pop3",
        }
    }

    /// The port of TLS from the first byte (RFC 8314 section 3.3 / 7.2).
    pub fn implicit_tls_port(self) -> u16 {
        match self {
            Protocol::Smtp => 465,
            Protocol::Pop3 => 995,
        }
    }

    /// The port of plaintext-then-STARTTLS (RFC 6409 / RFC 2595).
    pub fn plain_port(self) -> u16 {
        match self {
            Protocol::Smtp => 587,
            Protocol::Pop3 => 110,
        }
    }

    /// The port implied by a TLS mode. With none given, SMTP uses
    /// submission on 587 (STARTTLS) and POP3 uses 995 (implicit TLS, as RFC
    /// 8314 recommends), as `mailctl send` and `mailctl fetch` do.
    pub fn default_port(self, tls: Option<TlsMode>) -> u16 {
        match (self, tls) {
            (_, Some(TlsMode::Implicit)) | (Protocol::Pop3, None) => self.implicit_tls_port(),
            _ => self.plain_port(),
        }
    }

    /// The TLS mode implied by a port: implicit on 465 / 995, otherwise a
    /// required STARTTLS / STLS.
    pub fn implied_tls(self, port: u16) -> TlsMode {
        if port == self.implicit_tls_port() {
            TlsMode::Implicit
        } else {
            TlsMode::Starttls
        }
    }

    /// The TLS mode when none is named: [`Protocol::implied_tls`], except
    /// that a loopback server (127.0.0.0/8, ::1, localhost) on another port
    /// than 465 / 995 gets STARTTLS / STLS only if it offers it, since
    /// nothing sent to it leaves the machine.
    pub fn implied_tls_for(self, endpoint: &Endpoint) -> TlsMode {
        match self.implied_tls(endpoint.port) {
            TlsMode::Starttls if endpoint.is_loopback() => TlsMode::StarttlsIfOffered,
            tls => tls,
        }
    }
}

/// Everything needed to connect and log in to one server.
#[derive(Clone, Debug)]
pub struct ResolvedServer {
    /// SMTP or POP3.
    pub protocol: Protocol,
    /// The account used, if the file was used at all.
    pub account: Option<String>,
    /// The file the account came from.
    pub config_path: Option<PathBuf>,
    /// Host and port.
    pub endpoint: Endpoint,
    /// TLS mode, explicit or implied by the port.
    pub tls: TlsMode,
    /// CA file and `--insecure`.
    pub tls_options: TlsOptions,
    /// User name, if authentication is wanted.
    pub user: Option<String>,
    /// Authentication mechanism as the command line spells it (`auto`,
    /// `plain`, `cram-md5`, `user`, `apop`, ...), if the file sets one.
    pub auth: Option<String>,
    /// Where the password comes from.
    pub password: Password,
    /// The account's `from` address (`Name <addr>` or `addr`).
    pub from: Option<String>,
    /// Connect and I/O time-out.
    pub timeout: Duration,
    /// The account's OAuth 2 client, when it logs in with tokens.
    pub oauth2: Option<OAuth2Settings>,
}

/// The password sent to a loopback server when no source is set: `mailctl
/// serve` without users accepts any, and nothing leaves the machine.
pub const LOOPBACK_PLACEHOLDER_PASSWORD: &str = "mailctl";

impl ResolvedServer {
    /// Obtains the password, prompting `Password for USER@HOST: ` when no
    /// other source is set; a loopback server with no source set gets
    /// a fixed placeholder password instead.
    pub fn obtain_password(&self) -> anyhow::Result<Secret> {
        Ok(self.secret()?)
    }

    /// [`ResolvedServer::obtain_password`] with its typed error.
    fn secret(&self) -> Result<Secret, Error> {
        if self.password.is_unset() && self.endpoint.is_loopback() {
            return Ok(Secret::new(LOOPBACK_PLACEHOLDER_PASSWORD.to_string()));
        }
        self.password.obtain(&self.password_prompt())
    }

    /// `Password for USER@HOST: `.
    fn password_prompt(&self) -> String {
        let user = self.user.as_deref().unwrap_or("");
        format!("Password for {user}@{}: ", self.endpoint.host)
    }

    /// The file's `auth` as the command's own `--auth` value type, so a
    /// command does `args.auth.or(server.auth_as()?)`.
    pub fn auth_as<T: clap::ValueEnum>(&self) -> anyhow::Result<Option<T>> {
        match &self.auth {
            None => Ok(None),
            Some(name) => T::from_str(name, true).map(Some).map_err(|_| {
                Error::BadAuth {
                    name: name.clone(),
                    protocol: self.protocol.name(),
                }
                .into()
            }),
        }
    }

    /// The file's `auth` as a SASL mechanism for SMTP; `None` for `auto`
    /// (the strongest offered) or when the file sets none.
    pub fn smtp_mechanism(&self) -> Option<crate::proto::sasl::Mechanism> {
        self.auth
            .as_deref()
            .filter(|a| *a != "auto")
            .and_then(crate::proto::sasl::Mechanism::from_name)
    }

    /// The user and password to log in with, if a user is set: the
    /// password is obtained only after refusing a user name with control
    /// characters and credentials in the clear to a server that is not
    /// loopback.
    pub fn login(&self) -> Result<Option<(String, Secret)>, Error> {
        let Some(user) = self.login_user()? else {
            return Ok(None);
        };
        Ok(Some((user, self.secret()?)))
    }

    /// The user to log in as, if one is set, once the checks of
    /// [`ResolvedServer::login`] pass; no password is obtained.
    pub fn login_user(&self) -> Result<Option<String>, Error> {
        let Some(user) = &self.user else {
            return Ok(None);
        };
        if user.chars().any(char::is_control) {
            return Err(Error::ControlInUser);
        }
        if self.tls == TlsMode::None && !self.endpoint.is_loopback() {
            return Err(Error::Cleartext {
                endpoint: self.endpoint.to_string(),
            });
        }
        Ok(Some(user.clone()))
    }

    /// The time-out, which must be at least a second.
    pub fn checked_timeout(&self) -> Result<Duration, Error> {
        match self.timeout.is_zero() {
            true => Err(Error::ZeroTimeout),
            false => Ok(self.timeout),
        }
    }

    /// The bare address of `from` (inside `<...>` when there is a display
    /// name), for the envelope sender.
    pub fn from_address(&self) -> Option<&str> {
        self.from.as_deref().map(address_of)
    }

    /// A hint when the port and TLS mode look mismatched.
    pub fn tls_hint(&self) -> Option<&'static str> {
        super::tls_hint(self.endpoint.port, self.tls)
    }

    /// One line for `config check`: `host:port, implicit TLS, user u, ...`.
    pub fn describe(&self) -> String {
        let tls = match self.tls {
            TlsMode::Implicit => "implicit TLS",
            TlsMode::Starttls => "STARTTLS required",
            TlsMode::None => "no TLS",
            TlsMode::StarttlsIfOffered => "STARTTLS if offered (loopback)",
        };
        let mut out = format!("{}, {tls}", self.endpoint);
        match &self.user {
            Some(user) => {
                out.push_str(&format!(", user {user}"));
                out.push_str(&format!(
                    ", auth {}",
                    self.auth.as_deref().unwrap_or("auto")
                ));
                match &self.oauth2 {
                    Some(oauth2) => out.push_str(&format!(
                        ", OAuth 2 tokens from {}",
                        crate::text::printable(oauth2.token_url.as_bytes())
                    )),
                    None => out.push_str(&format!(", password {}", self.password.describe())),
                }
            }
            None => out.push_str(", no authentication"),
        }
        if let Some(ca) = &self.tls_options.ca_file {
            out.push_str(&format!(", CA file {}", ca.display()));
        }
        if self.timeout != Duration::from_secs(DEFAULT_TIMEOUT_SECS) {
            out.push_str(&format!(", timeout {}s", self.timeout.as_secs()));
        }
        out
    }
}

/// The bare address in `Name <addr>`, or the trimmed text.
pub fn address_of(from: &str) -> &str {
    match (from.rfind('<'), from.rfind('>')) {
        (Some(open), Some(close)) if open < close => from[open + 1..close].trim(),
        _ => from.trim(),
    }
}

/// The configuration file used when `--config` is not given:
/// `$XDG_CONFIG_HOME/mailctl/config.toml` (default `~/.config`).
pub fn default_path() -> Option<PathBuf> {
    crate::system::config_dir().map(|dir| dir.join("config.toml"))
}

/// Resolves the SMTP server for `mailctl send` and sendmail mode.
pub fn resolve_smtp(
    connect: &ConnectArgs,
    config: Option<&Path>,
) -> anyhow::Result<ResolvedServer> {
    resolve(Protocol::Smtp, connect, config)
}

/// Resolves the POP3 server for `mailctl fetch`.
pub fn resolve_pop3(
    connect: &ConnectArgs,
    config: Option<&Path>,
) -> anyhow::Result<ResolvedServer> {
    resolve(Protocol::Pop3, connect, config)
}

/// Resolves one server from the flags in `connect` and, when needed, the
/// configuration file (`config`, else [`default_path`]).
///
/// - `--account NAME` (or `MAILCTL_ACCOUNT`): that account from the file;
///   every flag given overrides the file's value.
/// - `--server` without an account: the flags alone; the file is not read,
///   so no account's password can go to a server named on the command line.
/// - neither: the default account (`default = "..."`, or the only one).
pub fn resolve(
    protocol: Protocol,
    connect: &ConnectArgs,
    config: Option<&Path>,
) -> anyhow::Result<ResolvedServer> {
    if connect.account.is_none() && connect.server.is_some() {
        return from_flags(protocol, connect);
    }
    let path = match config {
        Some(path) => path.to_path_buf(),
        None => default_path().ok_or(Error::NoConfigDir)?,
    };
    if connect.account.is_none() && config.is_none() && file::is_absent(&path) {
        return Err(Error::NoServer {
            protocol: protocol.name(),
            path,
        }
        .into());
    }
    let loaded = file::load(&path)?;
    from_account(protocol, connect, &loaded, connect.account.as_deref())
}

/// Settings from the command line alone.
fn from_flags(protocol: Protocol, connect: &ConnectArgs) -> anyhow::Result<ResolvedServer> {
    let server = connect.server.as_deref().unwrap_or_default();
    let endpoint = Endpoint::parse(server, protocol.default_port(connect.tls))?;
    let tls = connect
        .tls
        .unwrap_or_else(|| protocol.implied_tls_for(&endpoint));
    Ok(ResolvedServer {
        protocol,
        account: None,
        config_path: None,
        endpoint,
        tls,
        tls_options: TlsOptions {
            ca_file: connect.ca_file.clone(),
            insecure: connect.insecure,
            client_cert: flag_client_cert(connect),
        },
        user: connect.user.clone(),
        auth: None,
        password: Password {
            command_line: connect.password_command.clone(),
            configured: None,
        },
        from: None,
        timeout: Duration::from_secs(resolve_timeout(connect.timeout, None)),
        oauth2: None,
    })
}

/// Picks the account: the one named, the file's `default`, or the only one.
pub fn choose_account<'a>(loaded: &'a Loaded, name: Option<&str>) -> anyhow::Result<&'a str> {
    let accounts = &loaded.file.accounts;
    let list = || accounts.keys().cloned().collect::<Vec<_>>().join(", ");
    if let Some(name) = name {
        return match accounts.get_key_value(name) {
            Some((key, _)) => Ok(key.as_str()),
            None if accounts.is_empty() => Err(file_error(format!(
                "{}: no account '{name}': the file defines no account",
                loaded.path.display()
            ))),
            None => Err(file_error(format!(
                "{}: no account '{name}' (accounts: {})",
                loaded.path.display(),
                list()
            ))),
        };
    }
    if let Some(default) = &loaded.file.default {
        return Ok(default.get_ref().as_str());
    }
    match accounts.len() {
        0 => Err(file_error(format!(
            "{}: defines no account: add an [accounts.NAME] table (see examples/mailctl.toml)",
            loaded.path.display()
        ))),
        1 => Ok(accounts
            .keys()
            .next()
            .map(String::as_str)
            .unwrap_or_default()),
        _ => Err(file_error(format!(
            "{}: several accounts ({}) and no `default`: add default = \"NAME\" at the top, \
                 or give --account NAME",
            loaded.path.display(),
            list()
        ))),
    }
}

/// Settings from one account of the file, overridden by the flags.
pub fn from_account(
    protocol: Protocol,
    connect: &ConnectArgs,
    loaded: &Loaded,
    name: Option<&str>,
) -> anyhow::Result<ResolvedServer> {
    let name = choose_account(loaded, name)?;
    let account = &loaded.file.accounts[name];
    match protocol {
        Protocol::Smtp => match &account.smtp {
            Some(server) => merge(protocol, connect, loaded, name, account, server),
            None => Err(missing_table(loaded, name, protocol)),
        },
        Protocol::Pop3 => match &account.pop3 {
            Some(server) => merge(protocol, connect, loaded, name, account, server),
            None => Err(missing_table(loaded, name, protocol)),
        },
    }
}

fn missing_table(loaded: &Loaded, name: &str, protocol: Protocol) -> anyhow::Error {
    let table = format!("accounts.{name}");
    loaded.error_at_table(
        &table,
        format!(
            "account '{name}' has no [{table}.{}] table",
            protocol.name()
        ),
    )
}

fn merge<A: AuthName>(
    protocol: Protocol,
    connect: &ConnectArgs,
    loaded: &Loaded,
    name: &str,
    account: &file::Account,
    server: &Server<A>,
) -> anyhow::Result<ResolvedServer> {
    let file_tls = server.tls.as_ref().map(|t| TlsMode::from(*t.get_ref()));
    let explicit_tls = connect.tls.or(file_tls);
    let endpoint = match &connect.server {
        Some(text) => Endpoint::parse(text, protocol.default_port(explicit_tls))?,
        None => {
            let host = server.host.get_ref();
            let host = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            let port = server
                .port
                .as_ref()
                .map(|p| *p.get_ref())
                .unwrap_or_else(|| protocol.default_port(explicit_tls));
            Endpoint {
                host: host.to_string(),
                port,
            }
        }
    };
    let tls = explicit_tls.unwrap_or_else(|| protocol.implied_tls_for(&endpoint));
    let ca_file = connect.ca_file.clone().or_else(|| {
        server
            .ca_file
            .as_ref()
            .or(account.ca_file.as_ref())
            .map(|p| relative_to(&loaded.path, p.get_ref()))
    });
    let client_cert = match flag_client_cert(connect) {
        Some(cert) => Some(cert),
        None if server.tls_cert.is_some() || server.tls_key.is_some() => {
            file_client_cert(loaded, &server.tls_cert, &server.tls_key)?
        }
        None => file_client_cert(loaded, &account.tls_cert, &account.tls_key)?,
    };
    let user = connect.user.clone().or_else(|| {
        server
            .user
            .as_ref()
            .or(account.user.as_ref())
            .map(|u| u.get_ref().clone())
    });
    let keys = if server.password_keys().is_empty() {
        account.password_keys()
    } else {
        server.password_keys()
    };
    let timeout = resolve_timeout(
        connect.timeout,
        server.timeout.as_ref().map(|t| *t.get_ref()),
    );
    Ok(ResolvedServer {
        protocol,
        account: Some(name.to_string()),
        config_path: Some(loaded.path.clone()),
        endpoint,
        tls,
        tls_options: TlsOptions {
            ca_file,
            insecure: connect.insecure,
            client_cert,
        },
        user,
        auth: server.auth.as_ref().map(|a| a.get_ref().name().to_string()),
        password: Password {
            command_line: connect.password_command.clone(),
            configured: configured_password(loaded, keys),
        },
        from: account.from.as_ref().map(|f| f.get_ref().clone()),
        timeout: Duration::from_secs(timeout),
        oauth2: oauth2_settings(loaded, name, account_ca_file(loaded, name))?,
    })
}

/// The client certificate of `--cert` and `--key` (clap makes them a pair).
fn flag_client_cert(connect: &ConnectArgs) -> Option<ClientCert> {
    Some(ClientCert {
        cert: connect.cert.clone()?,
        key: connect.key.clone()?,
    })
}

/// The client certificate of a table's `tls_cert` and `tls_key`, paths
/// relative to the file; one without the other is an error at its line.
fn file_client_cert(
    loaded: &Loaded,
    cert: &Option<Spanned<PathBuf>>,
    key: &Option<Spanned<PathBuf>>,
) -> Result<Option<ClientCert>, Error> {
    let lone = |given: &Spanned<PathBuf>, missing: &str| Error::At {
        origin: format!(
            "{}:{}",
            loaded.path.display(),
            loaded.line_of(given.span().start)
        ),
        error: Box::new(Error::File(format!("{missing} is missing beside it"))),
    };
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(ClientCert {
            cert: relative_to(&loaded.path, cert.get_ref()),
            key: relative_to(&loaded.path, key.get_ref()),
        })),
        (Some(cert), None) => Err(lone(cert, "tls_key")),
        (None, Some(key)) => Err(lone(key, "tls_cert")),
        (None, None) => Ok(None),
    }
}

fn configured_password(loaded: &Loaded, keys: PasswordKeys<'_>) -> Option<ConfiguredPassword> {
    let origin = |s: &Spanned<String>| {
        format!(
            "{}:{}",
            loaded.path.display(),
            loaded.line_of(s.span().start)
        )
    };
    if let Some(c) = keys.password_command {
        return Some(ConfiguredPassword::Command {
            command: c.get_ref().clone(),
            origin: origin(c),
        });
    }
    if let Some(v) = keys.password_env {
        return Some(ConfiguredPassword::Env {
            var: v.get_ref().clone(),
            origin: origin(v),
        });
    }
    if let Some(k) = keys.password_keyring {
        return Some(ConfiguredPassword::Keyring {
            entry: k.get_ref().clone(),
            origin: origin(k),
        });
    }
    keys.password.map(|p| ConfiguredPassword::Stored {
        secret: Secret::new(p.get_ref().clone()),
        origin: origin(p),
    })
}

/// A relative `ca_file` is taken relative to the configuration file's
/// directory, `~/` to the home directory.
pub(crate) fn relative_to(config: &Path, path: &Path) -> PathBuf {
    if let Ok(rest) = path.strip_prefix("~") {
        if let Some(home) = crate::system::home_dir() {
            return home.join(rest);
        }
    }
    if path.is_absolute() {
        return path.to_path_buf();
    }
    config
        .parent()
        .map(|dir| dir.join(path))
        .unwrap_or_else(|| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_get_starttls_if_offered() {
        let at = |host: &str, port: u16| Endpoint {
            host: host.to_string(),
            port,
        };
        let smtp = |host: &str, port: u16| Protocol::Smtp.implied_tls_for(&at(host, port));
        for host in ["127.0.0.1", "127.3.2.1", "::1", "localhost", "LOCALHOST"] {
            assert_eq!(smtp(host, 2525), TlsMode::StarttlsIfOffered, "{host}");
            assert_eq!(smtp(host, 465), TlsMode::Implicit, "{host}");
        }
        for host in [
            "192.0.2.1",
            "10.0.0.1",
            "localhost.example.org",
            "::2",
            "mail",
        ] {
            assert_eq!(smtp(host, 2525), TlsMode::Starttls, "{host}");
        }
        let pop3 = Protocol::Pop3.implied_tls_for(&at("127.0.0.1", 995));
        assert_eq!(pop3, TlsMode::Implicit);
    }
}
