//! `mailctl oauth2 login` and `mailctl oauth2 status`, and the access
//! tokens `send`, `fetch` and `config check --connect` log in with: taken
//! from the private cache until shortly before they expire, else obtained
//! with the refresh-token grant (a rotated refresh token is kept).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use clap::{Args, Subcommand};

use super::Globals;
use crate::config::{OAuth2Settings, ResolvedServer};
use crate::exit::{fail, Exit};
use crate::net::oauth2::{Error as TokenError, Loopback, Poll, TokenClient};
use crate::proto::oauth2::{self as messages, Grant};
use crate::secret::Secret;
use crate::store::oauth2::{CachedToken, TokenFiles};
use crate::transcript::Transcript;

const LOGIN_HELP: &str = "\
Examples:
  mailctl oauth2 login --account work
  mailctl oauth2 status

With a device endpoint (Microsoft), mailctl prints a URL and a code to enter
there, from any device, and waits. Otherwise (Google) it prints a URL to open
in a browser on this machine and waits for the browser's redirect to
http://127.0.0.1:PORT/. The refresh token goes to a private file in
$XDG_STATE_HOME/mailctl/oauth2/ or to the account's refresh_token_command.";

/// Options of `mailctl oauth2`.
#[derive(Debug, Args)]
pub struct OAuth2Args {
    /// What to do.
    #[command(subcommand)]
    pub action: OAuth2Action,
}

/// `mailctl oauth2` subcommands.
#[derive(Debug, Subcommand)]
pub enum OAuth2Action {
    /// Authorize mailctl once, as a person, and keep the refresh token.
    #[command(after_help = LOGIN_HELP)]
    Login(LoginArgs),
    /// Show which accounts hold a token and when it expires (never the
    /// token).
    #[command(
        after_help = "Examples:\n  mailctl oauth2 status\n  mailctl oauth2 status --account work"
    )]
    Status(StatusArgs),
}

/// Options of `mailctl oauth2 login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The account (default: the file's default account).
    #[arg(long, value_name = "NAME", env = "MAILCTL_ACCOUNT")]
    pub account: Option<String>,

    /// Seconds to wait for the person to finish.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub wait: u64,
}

/// Options of `mailctl oauth2 status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this account.
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
}

/// Seconds each request to a token server may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a run waits for another one renewing the same account's
/// tokens: longer than one request may take.
const LOCK_WAIT: Duration = Duration::from_secs(40);

/// Runs `mailctl oauth2`.
pub fn run(args: OAuth2Args, globals: Globals) -> anyhow::Result<Exit> {
    match args.action {
        OAuth2Action::Login(login_args) => login(&login_args, globals),
        OAuth2Action::Status(status_args) => status(&status_args, globals),
    }
}

/// An access token and whether it came from the cache (a refused cached
/// token is worth one retry with a fresh one).
#[derive(Clone, Debug)]
pub struct AccessToken {
    /// The token.
    pub secret: Secret,
    /// Whether it was read from the cache.
    pub cached: bool,
}

/// The access token of the server's account, if the account uses OAuth 2
/// and the mechanism asked for takes a token (`token_mechanism`: auto,
/// OAUTHBEARER or XOAUTH2).
pub fn token_for(
    server: &ResolvedServer,
    token_mechanism: bool,
    transcript: &Transcript,
) -> anyhow::Result<Option<AccessToken>> {
    match &server.oauth2 {
        Some(settings) if token_mechanism => access_token(settings, transcript, true).map(Some),
        _ => Ok(None),
    }
}

/// The account's access token: the cached one while it has more than
/// [`messages::EXPIRY_MARGIN_SECS`] to live (unless `use_cache` is off),
/// else a new one from the refresh-token grant, cached.
pub fn access_token(
    settings: &OAuth2Settings,
    transcript: &Transcript,
    use_cache: bool,
) -> anyhow::Result<AccessToken> {
    let files = TokenFiles::for_account(&settings.account)?;
    if let Some(cached) = usable_cache(&files, use_cache, transcript) {
        return Ok(cached);
    }
    let _lock = files.lock(LOCK_WAIT).map_err(|e| match e {
        crate::store::Error::Busy { .. } => fail(
            Exit::TempFail,
            format!(
                "another run is renewing the token of account '{}'; try again later",
                settings.account
            ),
        ),
        other => other.into(),
    })?;
    // Another run may have renewed it while this one waited.
    if let Some(cached) = usable_cache(&files, use_cache, transcript) {
        return Ok(cached);
    }
    let Some(refresh_token) = read_refresh(settings, &files)? else {
        return Err(fail(
            Exit::NoPerm,
            format!(
                "account '{0}' holds no OAuth 2 token: run `mailctl oauth2 login --account {0}`",
                settings.account
            ),
        ));
    };
    transcript.note(
        "oauth2",
        &format!(
            "refreshing the access token at {}",
            crate::text::printable(settings.token_url.as_bytes())
        ),
    );
    let grant = client(settings)?
        .refresh(&refresh_token)
        .map_err(|e| token_failure(settings, e))?;
    keep(settings, &files, &grant, Some(&refresh_token), transcript)?;
    Ok(AccessToken {
        secret: grant.access_token,
        cached: false,
    })
}

/// The cached access token, if `use_cache` and it has more than
/// [`messages::EXPIRY_MARGIN_SECS`] to live. An unreadable cache counts as
/// none: the renewal replaces it.
fn usable_cache(
    files: &TokenFiles,
    use_cache: bool,
    transcript: &Transcript,
) -> Option<AccessToken> {
    if !use_cache {
        return None;
    }
    let now = crate::system::unix_now();
    match files.read_access() {
        Ok(Some(cached)) if cached.expires_at > now + messages::EXPIRY_MARGIN_SECS => {
            transcript.note("oauth2", "using the cached access token");
            Some(AccessToken {
                secret: cached.token,
                cached: true,
            })
        }
        _ => None,
    }
}

/// Forgets the cached token after a server refused it, and obtains a new
/// one.
pub fn fresh_token(settings: &OAuth2Settings, transcript: &Transcript) -> anyhow::Result<Secret> {
    transcript.note("oauth2", "the server refused the cached token; refreshing");
    TokenFiles::for_account(&settings.account)?.forget_access()?;
    Ok(access_token(settings, transcript, false)?.secret)
}

/// Keeps what a grant gave: a new or rotated refresh token, and the
/// access token in the cache.
fn keep(
    settings: &OAuth2Settings,
    files: &TokenFiles,
    grant: &Grant,
    old_refresh: Option<&Secret>,
    transcript: &Transcript,
) -> anyhow::Result<()> {
    if let Some(new) = grant
        .refresh_token
        .as_ref()
        .filter(|n| Some(*n) != old_refresh)
    {
        if old_refresh.is_some() {
            transcript.note(
                "oauth2",
                "the provider rotated the refresh token; keeping the new one",
            );
        }
        store_refresh(settings, files, new)?;
    }
    files.write_access(&CachedToken {
        token: grant.access_token.clone(),
        expires_at: crate::system::unix_now() + grant.expires_in,
    })?;
    Ok(())
}

/// The token client of the account, with its client secret if it has one.
fn client(settings: &OAuth2Settings) -> anyhow::Result<TokenClient> {
    let secret = match &settings.client_secret_command {
        Some(command) => Some(crate::config::run_password_command(command)?),
        None => None,
    };
    TokenClient::new(
        &settings.token_url,
        &settings.client_id,
        secret,
        settings.ca_file.as_deref(),
        HTTP_TIMEOUT,
    )
    .map_err(|e| fail(Exit::Config, e.to_string()))
}

/// The exit status and message of a failed token request.
fn token_failure(settings: &OAuth2Settings, err: TokenError) -> anyhow::Error {
    let account = &settings.account;
    match &err {
        TokenError::Refused { refusal, .. } if refusal.error == "invalid_grant" => fail(
            Exit::NoPerm,
            format!(
                "{err}: the authorization of account '{account}' is no longer valid: \
                 run `mailctl oauth2 login --account {account}`"
            ),
        ),
        TokenError::Refused { .. } => fail(Exit::NoPerm, err.to_string()),
        TokenError::Transport { .. } => fail(Exit::TempFail, err.to_string()),
        TokenError::Malformed { .. } => fail(Exit::Protocol, err.to_string()),
        TokenError::CaFile { .. } => fail(Exit::Config, err.to_string()),
        TokenError::Redirect(_) => fail(Exit::NoPerm, err.to_string()),
    }
}

/// The refresh token: from `refresh_token_command get`, else the file.
fn read_refresh(settings: &OAuth2Settings, files: &TokenFiles) -> anyhow::Result<Option<Secret>> {
    match &settings.refresh_token_command {
        Some(command) => {
            let token = crate::config::run_password_command(&format!("{command} get"))?;
            Ok((!token.expose().is_empty()).then_some(token))
        }
        None => Ok(files.read_refresh()?),
    }
}

/// Keeps the refresh token: on the standard input of
/// `refresh_token_command store`, else in the private file.
fn store_refresh(
    settings: &OAuth2Settings,
    files: &TokenFiles,
    token: &Secret,
) -> anyhow::Result<()> {
    let Some(command) = &settings.refresh_token_command else {
        return Ok(files.write_refresh(token)?);
    };
    let failed = |why: String| {
        fail(
            Exit::CantCreate,
            format!("refresh_token_command `{command} store`: {why}"),
        )
    };
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("{command} store"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "{}", token.expose()).map_err(|e| failed(e.to_string()))?;
    }
    let status = child.wait().map_err(|e| failed(e.to_string()))?;
    if !status.success() {
        return Err(failed(format!("failed ({status})")));
    }
    Ok(())
}

/// `oauth2 login`: the device grant where the provider has a device
/// endpoint, else the code grant with PKCE and a loopback redirect.
fn login(args: &LoginArgs, globals: Globals) -> anyhow::Result<Exit> {
    let settings = crate::config::resolve_oauth2(globals.config, args.account.as_deref())?;
    let transcript = Transcript::stderr(globals.verbose > 0);
    let token_client = client(&settings)?;
    let wait = Duration::from_secs(args.wait);
    let grant = match (&settings.device_url, &settings.auth_url) {
        (Some(device_url), _) => device_login(&token_client, &settings, device_url, wait)?,
        (None, Some(auth_url)) => code_login(&token_client, &settings, auth_url, wait)?,
        (None, None) => crate::bail_with!(
            Exit::Config,
            "account '{}': the oauth2 table names neither device_url nor auth_url",
            settings.account
        ),
    };
    if grant.refresh_token.is_none() {
        crate::bail_with!(
            Exit::Protocol,
            "the provider issued no refresh token (is `offline_access` among the scopes?)"
        );
    }
    let files = TokenFiles::for_account(&settings.account)?;
    keep(&settings, &files, &grant, None, &transcript)?;
    eprintln!(
        "mailctl: account '{}' is authorized; its token renews itself",
        settings.account
    );
    Ok(Exit::Ok)
}

/// The device grant (RFC 8628): print the URL and code, poll.
fn device_login(
    token_client: &TokenClient,
    settings: &OAuth2Settings,
    device_url: &str,
    wait: Duration,
) -> anyhow::Result<Grant> {
    let code = token_client
        .device_code(device_url, &settings.scopes)
        .map_err(|e| token_failure(settings, e))?;
    eprintln!(
        "To authorize mailctl for account '{}', open {} and enter the code {}",
        settings.account,
        crate::text::printable(code.verification_uri.as_bytes()),
        crate::text::printable(code.user_code.as_bytes()),
    );
    if let Some(complete) = &code.verification_uri_complete {
        eprintln!("(or open {})", crate::text::printable(complete.as_bytes()));
    }
    let deadline =
        std::time::Instant::now() + wait.min(Duration::from_secs(code.expires_in.max(1)));
    let mut interval = code.interval;
    loop {
        std::thread::sleep(Duration::from_secs(interval));
        match token_client
            .poll_device(&code.device_code)
            .map_err(|e| token_failure(settings, e))?
        {
            Poll::Granted(grant) => return Ok(grant),
            Poll::SlowDown => interval += 5,
            Poll::Pending => {}
        }
        if std::time::Instant::now() >= deadline {
            crate::bail_with!(
                Exit::TempFail,
                "the authorization was not completed in time"
            );
        }
    }
}

/// The code grant with PKCE (RFC 7636) and a loopback redirect (RFC 8252).
fn code_login(
    token_client: &TokenClient,
    settings: &OAuth2Settings,
    auth_url: &str,
    wait: Duration,
) -> anyhow::Result<Grant> {
    let random = || -> anyhow::Result<String> {
        let mut bytes = [0u8; 32];
        crate::crypto::random_bytes(&mut bytes)?;
        Ok(messages::random_code(&bytes))
    };
    let (verifier, state) = (random()?, random()?);
    let loopback = Loopback::bind()?;
    let url = messages::authorization_url(&messages::AuthorizationRequest {
        auth_url,
        client_id: &settings.client_id,
        redirect_uri: &loopback.redirect_uri,
        scopes: &settings.scopes,
        state: &state,
        challenge: &messages::pkce_challenge(&verifier),
    });
    eprintln!(
        "To authorize mailctl for account '{}', open this URL in a browser on this machine:\n{}",
        settings.account,
        crate::text::printable(url.as_bytes())
    );
    eprintln!("Waiting for the redirect to {} ...", loopback.redirect_uri);
    let code = loopback
        .wait_for_code(&state, wait)
        .map_err(|e| token_failure(settings, e))?;
    token_client
        .exchange_code(&code, &verifier, &loopback.redirect_uri)
        .map_err(|e| token_failure(settings, e))
}

/// `oauth2 status`: per account with an `oauth2` table, whether it holds
/// a refresh token and until when its access token is valid.
fn status(args: &StatusArgs, globals: Globals) -> anyhow::Result<Exit> {
    let path = match globals.config {
        Some(path) => path.to_path_buf(),
        None => crate::config::default_path().ok_or(crate::config::Error::NoConfigDir)?,
    };
    let loaded = crate::config::load(&path)?;
    let all = crate::config::all_oauth2(&loaded)?;
    let chosen: Vec<_> = all
        .iter()
        .filter(|s| args.account.as_deref().is_none_or(|a| a == s.account))
        .collect();
    if chosen.is_empty() {
        println!("no account uses OAuth 2");
        return Ok(Exit::Ok);
    }
    let now = crate::system::unix_now();
    for settings in chosen {
        let files = TokenFiles::for_account(&settings.account)?;
        let refresh = match &settings.refresh_token_command {
            Some(_) => "refresh token kept by refresh_token_command".to_string(),
            None if files.read_refresh()?.is_some() => {
                format!("refresh token in {}", files.refresh_path().display())
            }
            None => "no token: run `mailctl oauth2 login`".to_string(),
        };
        let access = match files.read_access()? {
            Some(cached) if cached.expires_at > now => format!(
                "access token valid until {} ({} s)",
                crate::system::rfc5322_date(cached.expires_at),
                cached.expires_at - now
            ),
            Some(_) => "access token expired".to_string(),
            None => "no access token cached".to_string(),
        };
        println!("{}: {refresh}; {access}", settings.account);
    }
    Ok(Exit::Ok)
}
