//! `mailctl fetch`: list, retrieve, keep or delete mail over POP3.
//!
//! - [`session`]: drives the `pop3` state machine over a connection.
//! - [`retrieve`]: the RETR/DELE loop (pipelined, durable before DELE).
//! - [`sink`]: `--save-dir`, `--maildir`, `--mbox`, `--stdout`.
//! - [`mda`]: `--mda CMD`, delivery through a program.
//! - [`commit`]: makes saved messages durable on worker threads.
//! - [`state`]: UIDLs already fetched, for `--new`.
//! - [`listing`]: `--list` rows from `TOP n 0`.
//! - [`progress`]: the progress bar.

/// `eprintln!` that never panics: a closed stderr (`2>&1 | head`) must not
/// turn a run into a crash, least of all in the middle of a retrieval.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod commit;
pub mod listing;
pub mod mda;
pub mod progress;
pub mod retrieve;
pub mod sink;

use std::collections::{BTreeSet, HashSet};
use std::io::Write;
use std::ops::RangeInclusive;
use std::path::PathBuf;

use clap::Args;

use super::Globals;
use crate::cli::ConnectArgs;
use crate::exit::{exit_status, fail, Exit};
use crate::store::uidl as state;
use crate::text::printable;
use crate::transcript::Transcript;

use crate::net::pop3::{self as session, AuthMethod, Entry, Session};
use sink::Sink;

const AFTER_HELP: &str = "\
Examples:
  mailctl fetch                                          # list, default account
  mailctl fetch --account work --new --maildir ~/Maildir
  mailctl fetch --server pop.example.org --user me --all --delete --save-dir ./mail
  mailctl fetch --list --json | jq -r '.[].subject'
  mailctl fetch --new --delete --mda procmail --mda-lf

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
UIDLs of fetched messages are kept in $XDG_STATE_HOME/mailctl/uidl/ (default ~/.local/state).

Exit status: 0 ok; 64 usage; 69 the server refused (-ERR); 73 cannot create output; \
74 local I/O error; 75 temporary failure or dropped connection; 76 protocol or TLS failure \
(including STLS not offered); 77 login refused; 78 configuration (no password, or a password \
that would travel unencrypted to a remote server). With --json, a failure before the listing or \
report gives one object: {\"status\": \"failed\", \"exit_code\": N, \"error\": \"...\"}.";

/// Options of `mailctl fetch`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct FetchArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,

    /// How to log in.
    /// [default: the account's `auth`, else auto]
    #[arg(long, value_enum)]
    pub auth: Option<AuthMethod>,

    /// List the messages: number, size, UIDL, date, sender, subject (the
    /// default action).
    #[arg(long, conflicts_with_all = ["retr", "all", "new", "delete", "save_dir", "maildir", "mbox", "stdout", "mda"])]
    pub list: bool,

    /// Print the listing, or the per-message retrieval report, as JSON.
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

    /// Save each message in a new folder under DIR: message.eml (exact
    /// bytes) and its decoded parts.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["maildir", "mbox", "stdout", "mda"])]
    pub save_dir: Option<PathBuf>,

    /// Deliver each message into the Maildir DIR (created if missing).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["mbox", "stdout", "mda"])]
    pub maildir: Option<PathBuf>,

    /// Append messages to FILE in mboxrd format, under an exclusive lock.
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

/// Parses `1,4-6` into ranges.
fn parse_ranges(text: &str) -> Result<Vec<RangeInclusive<u32>>, String> {
    let number = |s: &str| -> Result<u32, String> {
        match s.trim().parse::<u32>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("'{s}' is not a message number (1 or more)")),
        }
    };
    let mut ranges = Vec::new();
    // Empty items are skipped, as in --to lists: "1,2," is "1,2".
    for part in text.split(',').filter(|p| !p.trim().is_empty()) {
        let range = match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (number(a)?, number(b)?);
                if a > b {
                    return Err(format!("range '{part}' runs backwards"));
                }
                a..=b
            }
            None => {
                let n = number(part)?;
                n..=n
            }
        };
        ranges.push(range);
    }
    if ranges.is_empty() {
        return Err(format!("no message number in '{text}'"));
    }
    Ok(ranges)
}

/// Parses a byte count with an optional K, M or G suffix (powers of 1024).
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, factor) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let f: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => return Err(format!("unknown size suffix in '{text}'")),
            };
            (&t[..i], f)
        }
        _ => (t, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| format!("'{text}' is not a size in bytes"))
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

/// Which messages to retrieve.
enum Selection {
    All,
    New,
    Numbers(Vec<RangeInclusive<u32>>),
}

/// Where retrieved messages go.
enum Destination {
    SaveDir(PathBuf),
    Maildir(PathBuf),
    Mbox(PathBuf),
    Stdout,
    Mda(String),
}

/// Runs `mailctl fetch`.
///
/// With `--json`, a failure that comes before the listing or the report
/// could be printed still gives one JSON object on stdout,
/// `{"status": "failed", "exit_code": N, "error": "..."}`, so a script
/// never has to parse prose.
pub fn run(args: FetchArgs, globals: Globals) -> anyhow::Result<Exit> {
    let json = args.json;
    let mut reported = false;
    let result = fetch(args, globals, &mut reported);
    if let (true, false, Err(err)) = (json, reported, &result) {
        let object = serde_json::json!({
            "status": "failed",
            "exit_code": exit_status(err).code(),
            "error": printable(format!("{err:#}").as_bytes()),
        });
        print_stdout(|out| writeln!(out, "{object}"))?;
    }
    result
}

/// `run`, setting `reported` once the JSON output has been written.
fn fetch(args: FetchArgs, globals: Globals, reported: &mut bool) -> anyhow::Result<Exit> {
    let destination = if let Some(d) = &args.save_dir {
        Some(Destination::SaveDir(d.clone()))
    } else if let Some(d) = &args.maildir {
        Some(Destination::Maildir(d.clone()))
    } else if let Some(f) = &args.mbox {
        Some(Destination::Mbox(f.clone()))
    } else if args.stdout {
        Some(Destination::Stdout)
    } else {
        args.mda.clone().map(Destination::Mda)
    };
    if args.mda_lf && args.mda.is_none() {
        // clap lets `requires` pass when a conflicting destination is given.
        crate::bail_with!(Exit::Usage, "--mda-lf needs --mda");
    }
    let selection = if !args.retr.is_empty() {
        Some(Selection::Numbers(args.retr.concat()))
    } else if args.all {
        Some(Selection::All)
    } else if args.new {
        Some(Selection::New)
    } else {
        None
    };
    let retrieval = match (selection, destination) {
        (None, None) => {
            if args.delete {
                crate::bail_with!(
                    Exit::Usage,
                    "--delete needs a destination: --save-dir, --maildir, --mbox, --stdout or --mda"
                );
            }
            None
        }
        (Some(_), None) => crate::bail_with!(
            Exit::Usage,
            "choose where to save messages: --save-dir, --maildir, --mbox, --stdout or --mda"
        ),
        (selection, Some(dest)) => Some((selection.unwrap_or(Selection::All), dest)),
    };

    let server = crate::config::resolve_pop3(&args.connect, globals.config)?;
    let (endpoint, tls) = (server.endpoint.clone(), server.tls);
    let Some(user) = server.user.clone() else {
        crate::bail_with!(Exit::Usage, "--user is required (or `user` in the account)");
    };
    let auth = match args.auth {
        Some(auth) => auth,
        None => server.auth_as()?.unwrap_or(AuthMethod::Auto),
    };
    if tls == crate::net::connection::TlsMode::None && auth != AuthMethod::Auto {
        // Known before connecting: say so before anything is sent.
        session::plaintext_check(auth, auth, false, &endpoint)?;
    }

    // Fail on an unusable destination before touching the server.
    let mut file_sink: Option<Box<dyn Sink>> = match &retrieval {
        Some((_, Destination::SaveDir(d))) => Some(Box::new(sink::SaveDir::open(d)?)),
        Some((_, Destination::Maildir(d))) => Some(Box::new(sink::MaildirSink::open(d)?)),
        Some((_, Destination::Mbox(f))) => Some(Box::new(sink::MboxSink::open(f)?)),
        Some((_, Destination::Mda(command))) => {
            let hidden = match &server.password.configured {
                Some(crate::config::ConfiguredPassword::Env { var, .. }) => Some(var.into()),
                _ => None,
            };
            Some(Box::new(mda::MdaSink::new(
                command,
                args.mda_lf,
                endpoint.to_string(),
                user.clone(),
                hidden,
            )?))
        }
        _ => None,
    };

    // The record of fetched UIDLs; read now so a damaged file stops us
    // before the server is contacted.
    let recorded = match &retrieval {
        Some(_) => {
            let path = state::state_path(&endpoint.to_string(), &user)?;
            state::prepare_dir(&path)?;
            let state = state::UidlState::load(&path, &endpoint.to_string(), &user)?;
            Some((path, state))
        }
        None => None,
    };

    let secret = server.obtain_password()?;
    let tls_options = server.tls_options.clone();
    let transcript = Transcript::stderr(globals.verbose > 0);
    let timeout = server.timeout;
    let mut session = Session::open(&endpoint, tls, &tls_options, timeout, transcript)
        .map_err(|e| crate::config::with_tls_hint(e, endpoint.port, tls))?;
    session.login(auth, &user, &secret)?;
    drop(secret);
    let entries = session.listing()?;

    let (Some((selection, destination)), Some((state_path, mut uidl_state))) =
        (retrieval, recorded)
    else {
        return list(&mut session, &entries, args.json, reported);
    };

    let mut failure: Option<anyhow::Error> = None;
    let chosen: Vec<Entry> = match selection {
        Selection::All => entries.clone(),
        Selection::New => {
            if entries.iter().any(|e| e.uidl.is_none()) {
                let _ = session.quit();
                crate::bail_with!(
                    Exit::Unavailable,
                    "{endpoint} does not give unique ids (UIDL), which --new needs"
                );
            }
            entries
                .iter()
                .filter(|e| {
                    !uidl_state
                        .fetched
                        .contains(e.uidl.as_deref().unwrap_or_default())
                })
                .cloned()
                .collect()
        }
        Selection::Numbers(ranges) => {
            for r in &ranges {
                if !entries.iter().any(|e| r.contains(&e.number)) {
                    let what = if r.start() == r.end() {
                        format!("message {}", r.start())
                    } else {
                        format!("messages {}-{}", r.start(), r.end())
                    };
                    say!("mailctl: error: no {what} on the server");
                    failure.get_or_insert(fail(Exit::Unavailable, format!("no {what}")));
                }
            }
            entries
                .iter()
                .filter(|e| ranges.iter().any(|r| r.contains(&e.number)))
                .cloned()
                .collect()
        }
    };

    let mut outcomes_skipped = Vec::new();
    let mut plan = Vec::new();
    for e in chosen {
        match args.max_size {
            Some(max) if e.size > max => {
                say!(
                    "mailctl: skipping message {} ({} bytes, over --max-size {max})",
                    e.number,
                    e.size
                );
                outcomes_skipped.push(retrieve::Outcome {
                    number: e.number,
                    uidl: e.uidl.clone(),
                    size: e.size,
                    skipped: Some(format!("larger than --max-size {max}")),
                    ..Default::default()
                });
            }
            _ => plan.push(e),
        }
    }

    let mut sink: Box<dyn Sink> = match file_sink.take() {
        Some(s) => s,
        None => {
            debug_assert!(matches!(destination, Destination::Stdout));
            use std::io::IsTerminal;
            Box::new(sink::StdoutSink::new(
                plan.len() != 1,
                std::io::stdout().is_terminal(),
            ))
        }
    };
    let total_bytes: u64 = plan.iter().map(|e| e.size).sum();
    let progress = progress::Progress::new(plan.len(), total_bytes, globals.verbose > 0);
    let mut newly_saved: Vec<String> = Vec::new();
    let report = retrieve::retrieve(
        &mut session,
        &plan,
        sink.as_mut(),
        args.delete,
        &progress,
        |e| {
            if let Some(u) = &e.uidl {
                newly_saved.push(u.clone());
            }
        },
    );
    progress.finish();
    drop(sink);

    let marked = report.outcomes.iter().filter(|o| o.marked).count();
    let mut quit_problem: Option<anyhow::Error> = None;
    let committed = if report.connection_ok {
        match session.quit() {
            Ok(true) => true,
            Ok(false) => {
                if marked > 0 {
                    quit_problem = Some(fail(
                        Exit::Unavailable,
                        format!(
                            "the server refused QUIT: the {marked} deletions may not have happened"
                        ),
                    ));
                }
                false
            }
            Err(e) => {
                if marked > 0 {
                    quit_problem = Some(e.context(format!(
                        "the connection failed before QUIT was answered: the {marked} deletions may not have happened"
                    )));
                }
                false
            }
        }
    } else {
        if marked > 0 {
            say!(
                "mailctl: warning: the connection failed before QUIT: the {marked} deletions may not have happened"
            );
        }
        false
    };

    // Record what was saved, even after a failure: those messages are safe.
    if entries.iter().any(|e| e.uidl.is_some()) {
        let on_server: HashSet<&str> = entries.iter().filter_map(|e| e.uidl.as_deref()).collect();
        let mut fetched: BTreeSet<String> = uidl_state
            .fetched
            .iter()
            .filter(|u| on_server.contains(u.as_str()))
            .cloned()
            .collect();
        fetched.extend(newly_saved);
        if fetched != uidl_state.fetched {
            uidl_state.fetched = fetched;
            if let Err(e) = uidl_state.save(&state_path) {
                say!("mailctl: error: recording fetched messages: {e:#}");
                failure.get_or_insert(e.into());
            }
        }
    }

    let mut outcomes = report.outcomes;
    for o in &mut outcomes {
        o.deleted = o.marked && committed;
    }
    outcomes.extend(outcomes_skipped);
    outcomes.sort_by_key(|o| o.number);

    if args.json {
        *reported = true;
        print_stdout(|out| {
            serde_json::to_writer_pretty(&mut *out, &outcomes)?;
            writeln!(out)
        })?;
    } else if !args.stdout || globals.verbose > 0 {
        let saved = outcomes.iter().filter(|o| o.saved.is_some()).count();
        let deleted = outcomes.iter().filter(|o| o.deleted).count();
        let verb = if args.mda.is_some() {
            "delivered"
        } else {
            "saved"
        };
        if saved > 0 || deleted > 0 {
            say!("mailctl: {saved} {verb}, {deleted} deleted");
        }
    }

    if let Some(err) = quit_problem {
        return Err(err);
    }
    if !report.connection_ok {
        let err = report.failure.expect("a broken connection is a failure");
        let saved = outcomes.iter().filter(|o| o.saved.is_some()).count();
        return Err(err.context(format!("{saved} messages were saved before the failure")));
    }
    match report.failure.or(failure) {
        Some(err) => {
            let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
            if failed > 0 {
                say!(
                    "mailctl: error: {failed} of {} messages were not fetched",
                    outcomes.len()
                );
            }
            Ok(exit_status(&err))
        }
        None => Ok(Exit::Ok),
    }
}

/// `--list`: TOP n 0 for each message, then a table or JSON on stdout.
fn list(
    session: &mut Session,
    entries: &[Entry],
    json: bool,
    reported: &mut bool,
) -> anyhow::Result<Exit> {
    let numbers: Vec<u32> = entries.iter().map(|e| e.number).collect();
    let mut rows: Vec<listing::Row> = entries
        .iter()
        .map(|e| listing::Row {
            number: e.number,
            size: e.size,
            uidl: e.uidl.clone(),
            ..Default::default()
        })
        .collect();
    // Each header block is decoded as it arrives: memory holds the short
    // rows, never every message's header at once.
    session.headers(&numbers, 256 * 1024, |i, header| {
        if let (Some(row), Some(header)) = (rows.get_mut(i), header) {
            listing::decode_headers(row, header);
        }
    })?;
    if let Err(e) = session.quit() {
        say!(
            "mailctl: warning: {}",
            printable(format!("{e:#}").as_bytes())
        );
    }
    *reported = true;
    print_stdout(|out| {
        if json {
            serde_json::to_writer_pretty(&mut *out, &rows)?;
            writeln!(out)
        } else {
            listing::print_table(&rows, out)
        }
    })?;
    Ok(Exit::Ok)
}

/// Writes a report on stdout. A reader that went away (`| head`) is not an
/// error; any other failure is (exit 74).
fn print_stdout(
    write: impl FnOnce(&mut std::io::StdoutLock<'static>) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(fail(
            Exit::IoErr,
            format!("writing to standard output: {e}"),
        )),
    }
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

    #[test]
    fn ranges_and_sizes() {
        assert_eq!(parse_ranges("1,4-6").unwrap(), vec![1..=1, 4..=6]);
        assert!(parse_ranges("0").is_err());
        assert!(parse_ranges("5-2").is_err());
        assert!(parse_ranges("a").is_err());
        assert_eq!(parse_ranges("1, 3-4,").unwrap(), vec![1..=1, 3..=4]);
        assert!(parse_ranges(",").is_err());
        assert!(parse_ranges("").is_err());
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("2K").unwrap(), 2048);
        assert_eq!(parse_size("1m").unwrap(), 1 << 20);
        assert!(parse_size("1X").is_err());
        assert!(parse_size("").is_err());
    }
}
