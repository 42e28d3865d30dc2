//! `mailctl fetch`: list, retrieve, keep or delete mail over POP3.
//!
//! The run goes flags -> plan -> drive -> output: [`flags`] reads what to
//! do, [`plan`] picks the messages from the server's listing, [`drive`]
//! retrieves them over the session of [`crate::net::pop3`], and [`output`]
//! reports.
//!
//! - [`retrieve`]: the RETR/DELE loop (pipelined, durable before DELE).
//! - [`sink`]: `--save-dir`, `--maildir`, `--mbox`, `--stdout`.
//! - [`mda`]: `--mda CMD`, delivery through a program.
//! - [`commit`]: makes saved messages durable on worker threads.
//! - [`listing`]: `--list` rows from `TOP n 0`.
//! - [`several`]: `--account a,b` and `--all-accounts`.
//! - [`crate::cmd::progress`]: the progress bar.

/// `eprintln!` that never panics: a closed stderr (`2>&1 | head`) must not
/// turn a run into a crash, least of all in the middle of a retrieval.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod commit;
pub mod drive;
pub mod flags;
pub mod listing;
pub mod mda;
pub mod output;
pub mod plan;
pub mod retrieve;
pub mod several;
pub mod sink;

use std::io::Write;
use std::ops::RangeInclusive;
use std::path::PathBuf;

use clap::Args;

use super::Globals;
use crate::cli::ConnectArgs;
use crate::config::ResolvedServer;
use crate::exit::{exit_status, Exit};
use crate::net::connection::TlsMode;
use crate::net::pop3::{self as session, AuthMethod, Session};
use crate::text::printable;
use crate::transcript::Transcript;

use flags::{parse_ranges, parse_size, Destination, Retrieval};
use sink::Sink;

const AFTER_HELP: &str = "\
Examples:
  mailctl fetch                                          # list, default account
  mailctl fetch --account work --new --maildir ~/Maildir
  mailctl fetch --server pop.example.org --user me --all --delete --save-dir ./mail
  mailctl fetch --list --json | jq -r '.[].subject'
  mailctl fetch --new --delete --mda procmail --mda-lf
  mailctl fetch --account work,home --new                # each to its [accounts.NAME.fetch] destination
  mailctl fetch --all-accounts --new --keep-days 14      # leave mail on the servers for two weeks

With no action, --list. A destination without --retr, --all or --new takes every message.

Messages are saved (written under a temporary name, synced, renamed, directory synced) before their \
DELE is sent and their UIDL recorded; deletions happen only when the server confirms QUIT. \
--stdout writes one message exactly as received; several are framed as mboxrd (as --mbox writes them: \
'From ' separator lines, '>'-quoted 'From ' lines, LF line endings); on a terminal, control \
characters are shown as escapes such as \\x1b so a message cannot drive the terminal. \
--mda runs its command once per message, one at a time, and the message counts as delivered only when \
the command exits 0 (even without reading all of it); a failing command stops the run: no DELE for \
that message or any later one, and mailctl exits with the command's status if it is 64-78 (75: try \
later), else 74. \
UIDLs of fetched messages are kept in $XDG_STATE_HOME/mailctl/uidl/ (default ~/.local/state), \
each one journaled as its message is saved: a killed run fetches nothing twice when run again (with \
--mda, the message being delivered may be delivered again). Ctrl-C or SIGTERM: no new message is \
taken, the one being received is finished, saved messages are recorded and deleted (QUIT), and mailctl \
prints 'interrupted: N saved' and exits 130 or 143. A second run for the same server and user waits \
up to 5 s, then exits 75. \
A whole reply may take --timeout plus --timeout per 256 KiB of its size (so at least 4.4 KB/s with \
--timeout 60). --mbox takes a dotlock, an fcntl and an flock lock, waiting up to 5 s for another \
holder (then 75).

Exit status: 0 ok; 64 usage; 69 the server refused (-ERR); 73 cannot create output; \
74 local I/O error; 75 temporary failure, dropped connection, a reply too slow, or a lock held \
by another program; 76 protocol or TLS failure \
(including STLS not offered); 77 login refused; 78 configuration (no password, or a password \
that would travel unencrypted to a remote server); 130 SIGINT; 143 SIGTERM. With --json, a failure before the listing or \
report gives one object: {\"status\": \"failed\", \"exit_code\": N, \"error\": \"...\"}.";

/// Options of `mailctl fetch`.
#[derive(Debug, Args, Clone)]
#[command(after_help = AFTER_HELP)]
pub struct FetchArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,

    /// Fetch from every account of the configuration file that has a
    /// pop3 table, one after the other (as --account a,b names some).
    #[arg(long, conflicts_with = "server")]
    pub all_accounts: bool,

    /// How to log in.
    /// [default: the account's `auth`, else auto]
    #[arg(long, value_enum)]
    pub auth: Option<AuthMethod>,

    /// List the messages: number, size, date (in the local zone), sender,
    /// subject, fitted to the terminal's width (the default action). With
    /// --new, only the messages not fetched before.
    #[arg(long, conflicts_with_all = ["retr", "all", "delete", "save_dir", "maildir", "mbox", "stdout", "mda"])]
    pub list: bool,

    /// With --list: show each message's unique id (UIDL) too (--json
    /// always has it).
    #[arg(long)]
    pub uidl: bool,

    /// Print the listing, or the per-message retrieval report, as JSON;
    /// for several accounts, one document:
    /// {"accounts": [{"account", "exit_code", "error", "messages"}], "exit_code"}.
    #[arg(long)]
    pub json: bool,

    /// Retrieve these messages: numbers and ranges such as 1,4-6
    /// (repeatable).
    #[arg(long, value_name = "N,M-K", value_parser = parse_ranges, conflicts_with_all = ["all", "new"])]
    pub retr: Vec<Vec<RangeInclusive<u32>>>,

    /// Retrieve every message.
    #[arg(long, conflicts_with = "new")]
    pub all: bool,

    /// Retrieve the messages whose UIDL was not fetched before from this
    /// server and user.
    #[arg(long)]
    pub new: bool,

    /// Delete each message on the server once it is safely saved.
    #[arg(long)]
    pub delete: bool,

    /// Skip messages larger than this (suffixes K, M, G), saying so.
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub max_size: Option<u64>,

    /// With --max-size: delete the messages over it from the server instead
    /// of leaving them there, once their UIDLs are recorded (they are never
    /// fetched).
    #[arg(long, requires = "max_size")]
    pub delete_oversized: bool,

    /// Leave messages on the server for N days: delete those first fetched
    /// N days ago or more (0: as soon as saved, as --delete). The record of
    /// fetched UIDLs keeps when each was first fetched.
    #[arg(long, value_name = "N", conflicts_with = "delete")]
    pub keep_days: Option<u32>,

    /// Save each message in a new folder under DIR: message.eml (exact
    /// bytes) and its decoded parts.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["maildir", "mbox", "stdout", "mda"])]
    pub save_dir: Option<PathBuf>,

    /// With --save-dir: decode at most N parts of each message (default
    /// 1000); the rest are left out with a warning (message.eml still holds
    /// the whole message).
    #[arg(long, value_name = "N", requires = "save_dir",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_parts: Option<u32>,

    /// Deliver each message into the Maildir DIR (created if missing).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["mbox", "stdout", "mda"])]
    pub maildir: Option<PathBuf>,

    /// Append messages to FILE in mboxrd format, under a dotlock, an fcntl
    /// and an flock lock.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["stdout", "mda"])]
    pub mbox: Option<PathBuf>,

    /// Write messages to standard output (several: mboxrd framing).
    #[arg(long, conflicts_with_all = ["json", "mda"])]
    pub stdout: bool,

    /// Deliver each message by running CMD with `sh -c`, the message on
    /// its standard input exactly as received (CRLF line endings unless
    /// --mda-lf, dot lines unstuffed). Delivered when CMD exits 0; its standard output
    /// goes to standard error. CMD sees MAILCTL_NUMBER, MAILCTL_SIZE,
    /// MAILCTL_UIDL (when known), MAILCTL_SERVER and MAILCTL_USER, never
    /// the password.
    #[arg(long, value_name = "CMD")]
    pub mda: Option<String>,

    /// With --mda: give CMD LF line endings instead (each CRLF becomes
    /// LF), as procmail and maildrop expect.
    #[arg(long, requires = "mda")]
    pub mda_lf: bool,
}

/// The server address and TLS mode `--server` and `--tls` alone give (the
/// rule lives in [`crate::config::Protocol`]): without a port, 995 (or 110
/// with `--tls starttls|none`); port 995 means implicit TLS, any other port
/// STLS, which is then required, unless `--tls` says otherwise.
#[cfg(test)]
fn server_and_tls(
    server: &str,
    tls: Option<crate::net::connection::TlsMode>,
) -> anyhow::Result<(
    crate::net::connection::Endpoint,
    crate::net::connection::TlsMode,
)> {
    let connect = ConnectArgs {
        server: Some(server.to_string()),
        tls,
        ..ConnectArgs::default()
    };
    let resolved = crate::config::resolve_pop3(&connect, None)?;
    Ok((resolved.endpoint, resolved.tls))
}

/// Runs `mailctl fetch`.
///
/// With `--json`, a failure that comes before the listing or the report
/// could be printed still gives one JSON object on stdout,
/// `{"status": "failed", "exit_code": N, "error": "..."}`, so a script
/// never has to parse prose.
pub fn run(args: FetchArgs, globals: Globals) -> anyhow::Result<Exit> {
    if let Some(accounts) = several::accounts(&args, globals)? {
        return several::run(args, &accounts, globals);
    }
    let json = args.json;
    let mut tally = output::Tally::default();
    let result = fetch(args, globals, &mut tally);
    if let (true, false, Err(err)) = (json, tally.reported, &result) {
        let object = serde_json::json!({
            "status": "failed",
            "exit_code": exit_status(err).code(),
            "error": printable(format!("{err:#}").as_bytes()),
        });
        output::print_stdout(|out| writeln!(out, "{object}"))?;
    }
    result
}

/// `run` for one account, keeping `tally` of what it printed and did. A
/// `--save-dir` folder this run created and left empty is removed.
fn fetch(mut args: FetchArgs, globals: Globals, tally: &mut output::Tally) -> anyhow::Result<Exit> {
    flags::fill_destination(&mut args, globals)?;
    let new_save_dir = args.save_dir.clone().filter(|dir| !dir.exists());
    let result = fetch_account(args, globals, tally);
    if let Some(dir) = new_save_dir {
        // Fails, as it should, unless the folder is empty.
        let _ = std::fs::remove_dir(dir);
    }
    result
}

/// [`fetch`] once the destination is known.
fn fetch_account(
    args: FetchArgs,
    globals: Globals,
    tally: &mut output::Tally,
) -> anyhow::Result<Exit> {
    let retrieval = flags::retrieval(&args)?;
    let server = crate::config::resolve_pop3(&args.connect, globals.config)?;
    let Some(user) = server.user.clone() else {
        crate::bail_with!(Exit::Usage, "--user is required (or `user` in the account)");
    };
    let auth = match args.auth {
        Some(auth) => auth,
        None => server.auth_as()?.unwrap_or(AuthMethod::Auto),
    };
    if server.tls == TlsMode::None && auth != AuthMethod::Auto {
        // Known before connecting: say so before anything is sent.
        session::plaintext_check(auth, auth, false, &server.endpoint)?;
    }
    // Fail on an unusable destination, a damaged record of fetched UIDLs,
    // or another run holding it, before touching the server. What a killed
    // run left in the journal is recorded once the destination is repaired.
    let mut record = match &retrieval {
        Some(_) => Some(drive::Record::load(&server.endpoint, &user)?),
        None => None,
    };
    let file_sink = open_sink(&retrieval, &args, &server, &user, record.as_ref())?;
    let stop = match &mut record {
        Some(record) => {
            record.fold()?;
            drive::catch_signals()?
        }
        None => drive::StopFlag::default(),
    };

    let mut session = connect(&server, auth, &user, globals.verbose)?;
    let entries = session.listing()?;
    let server_name = server.endpoint.to_string();
    let (Some((selection, destination)), Some(record)) = (retrieval, record) else {
        return list(&args, &mut session, entries, &server, &user, tally);
    };
    let plan = plan::plan(
        selection,
        &entries,
        record.fetched(),
        args.max_size,
        &server_name,
    );
    let plan = match plan {
        Ok(plan) => plan,
        Err(e) => {
            let _ = session.quit();
            return Err(e);
        }
    };
    let sink: Box<dyn Sink> = match file_sink {
        Some(s) => s,
        None => {
            debug_assert!(matches!(destination, Destination::Stdout));
            use std::io::IsTerminal;
            Box::new(sink::StdoutSink::new(
                plan.fetch.len() != 1,
                std::io::stdout().is_terminal(),
            ))
        }
    };
    let verbose = globals.verbose > 0;
    let settings = drive::Settings {
        // Kept for 0 days: deleted once saved.
        delete: args.delete || args.keep_days == Some(0),
        verbose,
        stop: &stop,
        keep_days: args.keep_days,
        delete_oversized: args.delete_oversized,
    };
    let finished = drive::drive(&mut session, plan, sink, settings, &entries, record);
    let style = output::Style {
        json: args.json,
        quiet: args.stdout && !verbose,
        delivered: args.mda.is_some(),
    };
    let Some(signal) = finished.interrupted else {
        return output::report(finished, &style, tally);
    };
    let saved = finished
        .outcomes
        .iter()
        .filter(|o| o.saved.is_some())
        .count();
    if let Err(e) = output::report(finished, &style, tally) {
        say!("mailctl: error: {}", printable(format!("{e:#}").as_bytes()));
    }
    say!("mailctl: interrupted: {saved} saved");
    Ok(if signal == signal_hook::consts::SIGINT {
        Exit::Interrupted
    } else {
        Exit::Terminated
    })
}

/// `--list` (with `--new`, of the new messages only) over `session`.
fn list(
    args: &FetchArgs,
    session: &mut Session,
    entries: Vec<session::Entry>,
    server: &ResolvedServer,
    user: &str,
    tally: &mut output::Tally,
) -> anyhow::Result<Exit> {
    let listing = output::Listing {
        json: args.json,
        uidl: args.uidl,
        only_new: args.new,
    };
    let entries = match args.new {
        true => new_entries(session, &entries, server, user)?,
        false => entries,
    };
    output::list(session, &entries, &listing, tally)
}

/// The messages of `entries` not fetched before (`--list --new`); the
/// record is read without waiting for a run that holds it.
fn new_entries(
    session: &mut Session,
    entries: &[session::Entry],
    server: &ResolvedServer,
    user: &str,
) -> anyhow::Result<Vec<session::Entry>> {
    let server_name = server.endpoint.to_string();
    let chosen = drive::fetched_before(&server.endpoint, user).and_then(|fetched| {
        plan::plan(flags::Selection::New, entries, &fetched, None, &server_name)
    });
    match chosen {
        Ok(plan) => Ok(plan.fetch),
        Err(e) => {
            let _ = session.quit();
            Err(e)
        }
    }
}

/// The sink for a file or program destination; `None` for `--stdout`
/// (opened once the number of messages is known) and for `--list`.
fn open_sink(
    retrieval: &Retrieval,
    args: &FetchArgs,
    server: &ResolvedServer,
    user: &str,
    record: Option<&drive::Record>,
) -> anyhow::Result<Option<Box<dyn Sink>>> {
    Ok(match retrieval {
        Some((_, Destination::SaveDir(d))) => Some(Box::new(sink::SaveDir::open_with(
            d,
            flags::extract_limits(args),
        )?)),
        Some((_, Destination::Maildir(d))) => Some(Box::new(sink::MaildirSink::open(d)?)),
        Some((_, Destination::Mbox(f))) => {
            let torn = record.and_then(|r| r.torn(f));
            Some(Box::new(sink::MboxSink::open(f, torn)?))
        }
        Some((_, Destination::Mda(command))) => {
            let hidden = match &server.password.configured {
                Some(crate::config::ConfiguredPassword::Env { var, .. }) => Some(var.into()),
                _ => None,
            };
            Some(Box::new(mda::MdaSink::new(
                command,
                args.mda_lf,
                server.endpoint.to_string(),
                user.to_string(),
                hidden,
            )?))
        }
        Some((_, Destination::Stdout)) | None => None,
    })
}

/// Connects and logs in; the password is dropped once sent. An account
/// with OAuth 2 logs in with its access token unless a password method is
/// asked for; a refused cached token is retried once with a fresh one.
fn connect(
    server: &ResolvedServer,
    auth: AuthMethod,
    user: &str,
    verbose: u8,
) -> anyhow::Result<Session> {
    let transcript = Transcript::stderr(verbose > 0);
    let wants_token = matches!(
        auth,
        AuthMethod::Auto | AuthMethod::Xoauth2 | AuthMethod::OAuthBearer
    );
    crate::cmd::require_client_cert(auth == AuthMethod::External, server)?;
    let Some(token) = crate::cmd::oauth2::token_for(server, wants_token, &transcript)? else {
        let password = || server.obtain_password();
        return open_and_login(server, auth, user, &password, false, &transcript);
    };
    let cached = || Ok(token.secret.clone());
    let first = open_and_login(server, auth, user, &cached, true, &transcript);
    let refused = |e: &anyhow::Error| {
        e.downcast_ref::<crate::proto::pop3::Error>()
            .and_then(crate::proto::pop3::Error::refusal)
            == Some(crate::proto::pop3::Refusal::Login)
    };
    match (&first, &server.oauth2) {
        (Err(e), Some(oauth2)) if token.cached && refused(e) => {
            let fresh = crate::cmd::oauth2::fresh_token(oauth2, &transcript)?;
            open_and_login(server, auth, user, &|| Ok(fresh.clone()), true, &transcript)
        }
        _ => first,
    }
}

/// Opens a session and logs in with what `secret` yields (an access token
/// if `token`), asked for only if the method needs it.
fn open_and_login(
    server: &ResolvedServer,
    auth: AuthMethod,
    user: &str,
    secret: &dyn Fn() -> anyhow::Result<crate::secret::Secret>,
    token: bool,
    transcript: &Transcript,
) -> anyhow::Result<Session> {
    let (endpoint, tls) = (&server.endpoint, server.tls);
    let mut session = Session::open(
        endpoint,
        tls,
        &server.tls_options,
        server.timeout,
        transcript.clone(),
    )
    .map_err(|e| crate::config::with_tls_hint(e, endpoint.port, tls))?;
    session.login(auth, user, secret, token)?;
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::connection::TlsMode;

    #[test]
    fn port_decides_tls() {
        let t = |s: &str, tls| {
            let (e, mode) = server_and_tls(s, tls).unwrap();
            (e.port, mode)
        };
        assert_eq!(t("mail.example.org", None), (995, TlsMode::Implicit));
        assert_eq!(t("mail.example.org:995", None), (995, TlsMode::Implicit));
        assert_eq!(t("mail.example.org:110", None), (110, TlsMode::Starttls));
        assert_eq!(t("mail.example.org:2110", None), (2110, TlsMode::Starttls));
        assert_eq!(
            t("mail.example.org", Some(TlsMode::Starttls)),
            (110, TlsMode::Starttls)
        );
        assert_eq!(t("h", Some(TlsMode::None)), (110, TlsMode::None));
        assert_eq!(
            t("h:995", Some(TlsMode::None)),
            (995, TlsMode::None),
            "an explicit --tls wins"
        );
    }
}
