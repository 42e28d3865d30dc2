//! `mailctl queue` and the outbox side of `send --queue` and sendmail mode:
//! storing a message that could not be sent now, and sending the outbox
//! later over one connection per account.
//!
//! Exactly once, as far as SMTP allows: an entry is locked while it is
//! sent, each recipient is recorded as delivered (durably) as soon as the
//! final dot got its 2xx, and the entry is removed then. A crash between
//! that 2xx and the record is the only way a message goes out twice.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::Globals;
use crate::cli::ConnectArgs;
use crate::config::{self, QueueSettings};
use crate::exit::{exit_status, fail, Exit};
use crate::mail::compose::Message;
use crate::net::smtp::{self, BatchSink, Envelope, Outgoing, SubmitError, SubmitReport};
use crate::proto::smtp::client::{Dsn, RecipientState as Answer, RecipientStatus};
use crate::store::outbox::{
    self, Connection, DsnRequest, Entry, Locked, Outbox, Recipient, RecipientState,
};
use crate::text::printable;
use crate::transcript::Transcript;

/// The first wait before trying a queued message again.
const FIRST_RETRY: u64 = 60;
/// The longest wait between two tries.
const LONGEST_RETRY: u64 = 3600;
/// How long a message is retried unless `queue_max_age` says otherwise.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(5 * 86_400);
/// How often `queue run --watch` looks at the outbox.
const WATCH_POLL: Duration = Duration::from_millis(500);

/// `--queue`, `--queue-only` and `--outbox` of `mailctl send`.
#[derive(Debug, Args, Clone, Default)]
pub struct QueueFlags {
    /// On a temporary failure (what would exit 75), keep the message in the
    /// outbox and exit 0, printing `queued: ID (reason)` on stderr;
    /// `mailctl queue run` sends it later.
    #[arg(long)]
    pub queue: bool,

    /// Put the message in the outbox without trying to send it now.
    #[arg(long, conflicts_with = "queue")]
    pub queue_only: bool,

    /// The outbox folder [default: the configuration's `outbox`, else
    /// $XDG_STATE_HOME/mailctl/outbox].
    #[arg(long, value_name = "DIR")]
    pub outbox: Option<PathBuf>,
}

/// Options of `mailctl queue`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  mailctl send --queue --to bob@example.org --subject hi --body 'sent when the network is back'
  mailctl queue list
  mailctl queue run                 # from cron or a systemd timer
  mailctl queue run --watch         # stay running, send as entries arrive

Exit status of run and flush: 0 when the outbox is empty afterwards, 75 when entries remain \
(see `queue list`), another status when the settings themselves fail (77 authentication, 78 \
configuration).")]
pub struct QueueArgs {
    /// The outbox folder [default: the configuration's `outbox`, else
    /// $XDG_STATE_HOME/mailctl/outbox].
    #[arg(long, value_name = "DIR", global = true)]
    pub outbox: Option<PathBuf>,

    /// Print JSON on standard output.
    #[arg(long, global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub action: QueueAction,
}

/// `mailctl queue` actions.
#[derive(Debug, Subcommand)]
pub enum QueueAction {
    /// List the queued messages: id, account, sender, recipients, size,
    /// attempts, next attempt, last reply.
    List {
        /// List the messages that could not be delivered (in failed/).
        #[arg(long)]
        failed: bool,
    },
    /// Show one queued (or failed) message's details and header.
    Show {
        /// The entry id.
        id: String,
    },
    /// Send every message that is due.
    Run(RunArgs),
    /// Send every message now, whatever its back-off.
    Flush(RunArgs),
    /// Remove messages from the outbox (or from failed/) unsent.
    Drop {
        /// The entry ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

/// Options of `queue run` and `queue flush`.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Only the messages of this account.
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,

    /// Stay running: send messages as they arrive and as they become due,
    /// until SIGINT or SIGTERM.
    #[arg(long)]
    pub watch: bool,
}

/// The outbox folder: `--outbox`, else the file's `outbox`, else the
/// default under the state directory.
pub fn outbox_root(flag: Option<&Path>, settings: &QueueSettings) -> anyhow::Result<PathBuf> {
    match flag
        .map(Path::to_path_buf)
        .or_else(|| settings.outbox.clone())
    {
        Some(root) => Ok(root),
        None => Ok(Outbox::default_root().ok_or(crate::store::Error::NoStateDir)?),
    }
}

/// Whether a failure to send is temporary: what would exit 75.
pub fn is_temporary(err: &anyhow::Error) -> bool {
    exit_status(err) == Exit::TempFail
}

/// What to store with a queued message besides its bytes.
pub struct ToQueue<'a> {
    /// How to reach the server again (no password).
    pub connection: Connection,
    /// Sender and recipients.
    pub envelope: &'a Envelope,
    /// The message.
    pub message: &'a Message,
    /// Why it is queued (the failure of the try just made), if it was tried.
    pub reason: Option<String>,
    /// DSN parameters.
    pub dsn: DsnRequest,
    /// Where to keep a copy once sent.
    pub save_copy: Option<String>,
}

/// The envelope for the recipients a failed submission did not deliver
/// to (with several transactions, some may have got the message).
pub fn undelivered(envelope: &Envelope, report: &SubmitReport) -> Envelope {
    Envelope {
        from: envelope.from.clone(),
        recipients: report
            .recipients
            .iter()
            .filter(|r| !r.delivered)
            .map(|r| r.address.clone())
            .collect(),
        dsn: envelope.dsn.clone(),
    }
}

/// Stores a message in the outbox at `root` durably; returns its id.
pub fn enqueue(root: &Path, item: ToQueue<'_>) -> anyhow::Result<String> {
    let outbox = Outbox::open(root)?;
    let now = outbox::now();
    let tried = item.reason.is_some();
    let entry = Entry {
        created: now,
        connection: item.connection,
        from: item.envelope.from.clone(),
        recipients: item
            .envelope
            .recipients
            .iter()
            .map(|address| Recipient {
                address: address.clone(),
                state: RecipientState::Pending,
                reply: None,
            })
            .collect(),
        size: item.message.size(),
        message_id: item.message.message_id().map(str::to_string),
        eight_bit: item.message.eight_bit(),
        attempts: u32::from(tried),
        next_attempt: if tried { now + FIRST_RETRY } else { now },
        last_reply: item.reason,
        dsn: item.dsn,
        save_copy: item.save_copy,
    };
    let message = item.message;
    outbox.add(&entry, &mut |out| message.write_to(out))
}

/// Prints `queued: ID (reason)` on stderr.
pub fn say_queued(id: &str, reason: Option<&str>) {
    let line = match reason {
        Some(reason) => format!("queued: {id} ({})", printable(reason.as_bytes())),
        None => format!("queued: {id}"),
    };
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Runs `mailctl queue`.
pub fn run(args: QueueArgs, globals: Globals) -> anyhow::Result<Exit> {
    let settings = config::queue_settings(None, globals.config)?;
    let root = outbox_root(args.outbox.as_deref(), &settings)?;
    let outbox = Outbox::open(&root)?;
    match args.action {
        QueueAction::List { failed } => list(&outbox, failed, args.json),
        QueueAction::Show { id } => show(&outbox, &id, args.json),
        QueueAction::Drop { ids } => drop_entries(&outbox, &ids, args.json),
        QueueAction::Run(run) => send_queue(&outbox, &run, false, args.json, globals),
        QueueAction::Flush(run) => send_queue(&outbox, &run, true, args.json, globals),
    }
}

/// The entry as `queue list --json` and `queue show --json` print it.
fn entry_json(id: &str, entry: &Entry) -> Value {
    json!({
        "id": id,
        "account": entry.connection.account,
        "server": entry.connection.server,
        "from": entry.from,
        "recipients": entry.recipients.iter().map(|r| json!({
            "address": r.address,
            "state": r.state,
            "reply": r.reply,
        })).collect::<Vec<_>>(),
        "size": entry.size,
        "message_id": entry.message_id.as_ref().map(|id| format!("<{id}>")),
        "created": entry.created,
        "attempts": entry.attempts,
        "next_attempt": entry.next_attempt,
        "last_reply": entry.last_reply,
    })
}

/// Prints one line on standard output; a reader gone away is not an error.
fn print_line(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(fail(Exit::IoErr, format!("writing standard output: {e}")))
        }
        _ => Ok(()),
    }
}

/// When `at` (seconds since the epoch) is, from now: `now`, `in 5m`.
fn due_in(at: u64) -> String {
    let now = outbox::now();
    match at.saturating_sub(now) {
        0 => "now".into(),
        s if s < 120 => format!("in {s}s"),
        s if s < 7200 => format!("in {}m", s / 60),
        s => format!("in {}h", s / 3600),
    }
}

/// `queue list`: one line (or one JSON object) per entry.
fn list(outbox: &Outbox, failed: bool, json: bool) -> anyhow::Result<Exit> {
    let ids = outbox.ids(failed)?;
    let mut rows = Vec::new();
    for id in &ids {
        match outbox.read(id, failed) {
            Ok(entry) => rows.push((id, entry)),
            // Sent or dropped since it was listed.
            Err(crate::store::Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err.into()),
        }
    }
    if json {
        let all: Vec<Value> = rows.iter().map(|(id, e)| entry_json(id, e)).collect();
        print_line(&Value::Array(all).to_string())?;
        return Ok(Exit::Ok);
    }
    for (id, entry) in rows {
        let recipients: Vec<&str> = entry
            .recipients
            .iter()
            .filter(|r| r.state != RecipientState::Delivered)
            .map(|r| r.address.as_str())
            .collect();
        let line = format!(
            "{id}  {}  {}  {}  {} bytes  {} attempts  next {}  {}",
            entry.connection.account.as_deref().unwrap_or("-"),
            entry.from,
            recipients.join(","),
            entry.size,
            entry.attempts,
            if failed {
                "-".into()
            } else {
                due_in(entry.next_attempt)
            },
            entry.last_reply.as_deref().unwrap_or("-"),
        );
        print_line(&printable(line.as_bytes()))?;
    }
    Ok(Exit::Ok)
}

/// The error for an id that names no entry (66).
fn no_such_entry(id: &str) -> anyhow::Error {
    fail(
        Exit::NoInput,
        format!(
            "no queued message {} (see `mailctl queue list`)",
            printable(id.as_bytes())
        ),
    )
}

/// `queue show ID`: the entry's details and the message header.
fn show(outbox: &Outbox, id: &str, json: bool) -> anyhow::Result<Exit> {
    let failed = outbox.find(id).ok_or_else(|| no_such_entry(id))?;
    let entry = outbox.read(id, failed)?;
    if json {
        let mut value = entry_json(id, &entry);
        value["failed"] = json!(failed);
        print_line(&value.to_string())?;
        return Ok(Exit::Ok);
    }
    let mut text = format!(
        "id: {id}{}\naccount: {}\nserver: {}\nfrom: <{}>\nsize: {}\nattempts: {}\nnext attempt: {}\nlast reply: {}\n",
        if failed { " (failed)" } else { "" },
        entry.connection.account.as_deref().unwrap_or("-"),
        entry.connection.server.as_deref().unwrap_or("-"),
        entry.from,
        entry.size,
        entry.attempts,
        due_in(entry.next_attempt),
        entry.last_reply.as_deref().unwrap_or("-"),
    );
    for r in &entry.recipients {
        let state = serde_json::to_value(r.state).unwrap_or_default();
        text.push_str(&format!(
            "to: <{}> {} {}\n",
            r.address,
            state.as_str().unwrap_or("?"),
            r.reply.as_deref().unwrap_or("")
        ));
    }
    let message = std::fs::read(outbox.message_path(id, failed))?;
    let header_end = memchr::memmem::find(&message, b"\r\n\r\n").map_or(message.len(), |p| p + 2);
    text.push('\n');
    text.push_str(&String::from_utf8_lossy(&message[..header_end]).replace("\r\n", "\n"));
    for line in text.trim_end().lines() {
        print_line(&printable(line.trim_end().as_bytes()))?;
    }
    Ok(Exit::Ok)
}

/// `queue drop ID...`: removes entries, live or failed, unsent.
fn drop_entries(outbox: &Outbox, ids: &[String], json: bool) -> anyhow::Result<Exit> {
    let mut dropped = Vec::new();
    for id in ids {
        match outbox.find(id) {
            None => return Err(no_such_entry(id)),
            Some(true) => outbox.drop_failed(id)?,
            Some(false) => match outbox.lock(id)? {
                Some(locked) => locked.remove()?,
                None if outbox.find(id).is_none() => return Err(no_such_entry(id)),
                None => crate::bail_with!(
                    Exit::TempFail,
                    "{id} is being sent right now; try again later"
                ),
            },
        }
        dropped.push(id);
    }
    if json {
        print_line(&json!({ "dropped": dropped }).to_string())?;
    }
    Ok(Exit::Ok)
}

/// How a `queue run` went.
#[derive(Debug, Default)]
struct Tally {
    sent: usize,
    failed: usize,
    deferred: usize,
    /// Failures of a whole account's settings or session (not of one
    /// message), in order.
    errors: Vec<anyhow::Error>,
}

/// `queue run` and `queue flush` (`force`: ignoring back-off), once or, with `--watch`, until a signal.
fn send_queue(
    outbox: &Outbox,
    run: &RunArgs,
    force: bool,
    json: bool,
    globals: Globals,
) -> anyhow::Result<Exit> {
    let stop = if run.watch {
        Some(super::fetch::drive::catch_signals()?)
    } else {
        None
    };
    let mut tally = Tally::default();
    // Per connection setting, for `rate` across the batches of a watch.
    let mut starts: HashMap<Connection, smtp::LastStart> = HashMap::new();
    loop {
        let control = smtp::BatchControl {
            stop: stop.as_deref(),
            ..Default::default()
        };
        let due = Due {
            account: run.account.as_deref(),
            force,
        };
        send_due(outbox, due, globals, control, &mut starts, &mut tally)?;
        let Some(stop) = &stop else { break };
        // A watch runs for days: its errors are said as they come, not kept.
        for err in tally.errors.drain(..) {
            say_error(&err);
        }
        let mut waited = Duration::ZERO;
        while waited < Duration::from_secs(5) && stop.load(Ordering::SeqCst) == 0 {
            if any_due(outbox, run.account.as_deref())? {
                break;
            }
            std::thread::sleep(WATCH_POLL);
            waited += WATCH_POLL;
        }
        if stop.load(Ordering::SeqCst) != 0 {
            break;
        }
    }
    let remaining = outbox.ids(false)?.len();
    if json {
        print_line(
            &json!({
                "sent": tally.sent,
                "failed": tally.failed,
                "deferred": tally.deferred,
                "remaining": remaining,
                "errors": tally.errors.iter().map(|e| printable(format!("{e:#}").as_bytes())).collect::<Vec<_>>(),
            })
            .to_string(),
        )?;
    }
    finish_run(tally, remaining, run.watch)
}

/// Prints `mailctl: error: ...` for a failure that is not the run's result.
fn say_error(err: &anyhow::Error) {
    let _ = writeln!(
        std::io::stderr(),
        "mailctl: error: {}",
        printable(format!("{err:#}").as_bytes())
    );
}

/// The exit status of a run: a settings failure (authentication,
/// configuration) first, then 75 when entries remain.
fn finish_run(tally: Tally, remaining: usize, watched: bool) -> anyhow::Result<Exit> {
    let mut errors = tally.errors.into_iter();
    let first = errors.next();
    for err in errors {
        say_error(&err);
    }
    match first {
        Some(err) if !is_temporary(&err) => Err(err),
        Some(err) if remaining > 0 && !watched => Err(err),
        _ if remaining > 0 && !watched => Err(fail(
            Exit::TempFail,
            format!("{remaining} message(s) remain in the outbox; `mailctl queue list` shows why"),
        )),
        _ => Ok(Exit::Ok),
    }
}

/// Which entries a run takes.
#[derive(Clone, Copy)]
struct Due<'a> {
    /// Only this account's (any, when `None`).
    account: Option<&'a str>,
    /// Every entry, whatever its back-off.
    force: bool,
}

/// Whether an entry (of `account`, if given) is due.
fn any_due(outbox: &Outbox, account: Option<&str>) -> anyhow::Result<bool> {
    let now = outbox::now();
    for id in outbox.ids(false)? {
        if let Ok(entry) = outbox.read(&id, false) {
            if entry.next_attempt <= now && of_account(&entry, account) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Whether `entry` belongs to `account` (any, when `None`).
fn of_account(entry: &Entry, account: Option<&str>) -> bool {
    account.is_none_or(|a| entry.connection.account.as_deref() == Some(a))
}

/// Locks every due entry (every entry with `force`) and sends them, one
/// session per connection setting.
fn send_due(
    outbox: &Outbox,
    due: Due<'_>,
    globals: Globals,
    control: smtp::BatchControl<'_>,
    starts: &mut HashMap<Connection, smtp::LastStart>,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let Due { account, force } = due;
    let now = outbox::now();
    let mut groups: Vec<(Connection, Vec<Locked>)> = Vec::new();
    let mut index: HashMap<Connection, usize> = HashMap::new();
    for id in outbox.ids(false)? {
        let locked = match outbox.lock(&id) {
            Ok(Some(locked)) => locked,
            Ok(None) => continue,
            // One unreadable entry must not hold up the others.
            Err(err) => {
                tally.errors.push(err.into());
                continue;
            }
        };
        if !of_account(&locked.entry, account) || (!force && locked.entry.next_attempt > now) {
            continue;
        }
        let key = locked.entry.connection.clone();
        let slot = *index.entry(key.clone()).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[slot].1.push(locked);
    }
    for (connection, entries) in groups {
        if control.stop.is_some_and(|s| s.load(Ordering::SeqCst) != 0) {
            break;
        }
        let last_start = starts.entry(connection.clone()).or_default();
        let control = smtp::BatchControl {
            last_start: Some(last_start),
            ..control
        };
        send_group(&connection, entries, globals, control, tally)?;
    }
    Ok(())
}

/// The command-line settings an entry recorded, for resolving again.
fn connect_args(connection: &Connection) -> anyhow::Result<ConnectArgs> {
    let tls = connection
        .tls
        .as_deref()
        .map(|t| <crate::endpoint::TlsMode as clap::ValueEnum>::from_str(t, true))
        .transpose()
        .map_err(|e| fail(Exit::Config, format!("queued tls setting: {e}")))?;
    Ok(ConnectArgs {
        account: connection.account.clone(),
        server: connection.server.clone(),
        tls,
        ca_file: connection.ca_file.clone(),
        insecure: connection.insecure,
        cert: connection.cert.clone(),
        key: connection.key.clone(),
        user: connection.user.clone(),
        password_command: connection.password_command.clone(),
        timeout: connection.timeout,
    })
}

/// The session settings and outbox settings for one connection record.
fn resolve(
    connection: &Connection,
    globals: Globals,
) -> anyhow::Result<(smtp::Settings, QueueSettings)> {
    let args = connect_args(connection)?;
    let server = config::resolve_smtp(&args, globals.config)?;
    let queue = config::queue_settings(server.account.as_deref(), globals.config)?;
    let mechanism = match &connection.auth {
        Some(name) if name != "auto" => crate::proto::sasl::Mechanism::from_name(name),
        Some(_) => None,
        None => server.smtp_mechanism(),
    };
    let settings = super::send::smtp_settings(&server, mechanism, connection.helo.clone())?;
    Ok((settings, queue))
}

/// The DSN requests an entry recorded, checked again.
fn dsn_of(request: &DsnRequest) -> anyhow::Result<Dsn> {
    super::send::dsn_from(
        request.notify.as_deref(),
        request.ret.as_deref(),
        request.envid.as_deref(),
    )
}

/// The DSN requests to record in an entry.
pub fn dsn_request(dsn: &Dsn) -> DsnRequest {
    DsnRequest {
        notify: dsn.notify.clone(),
        ret: dsn.ret.map(|r| r.name().to_string()),
        envid: dsn.envid.clone(),
    }
}

/// A queued message read back for sending.
struct Loaded {
    envelope: Envelope,
    message: Message,
    /// For each envelope recipient, its index in the entry.
    positions: Vec<usize>,
}

/// Reads a locked entry's message and the envelope of its pending recipients.
fn load(locked: &Locked) -> anyhow::Result<Loaded> {
    let bytes = std::fs::read(locked.message_path()).map_err(|source| crate::store::Error::Io {
        path: locked.message_path(),
        source,
    })?;
    let mut message = Message::from_bytes(bytes, locked.entry.message_id.clone());
    message.set_eight_bit(locked.entry.eight_bit);
    let positions: Vec<usize> = (0..locked.entry.recipients.len())
        .filter(|&i| locked.entry.recipients[i].state == RecipientState::Pending)
        .collect();
    let envelope = Envelope {
        from: locked.entry.from.clone(),
        recipients: positions
            .iter()
            .map(|&i| locked.entry.recipients[i].address.clone())
            .collect(),
        dsn: dsn_of(&locked.entry.dsn)?,
    };
    Ok(Loaded {
        envelope,
        message,
        positions,
    })
}

/// Sends the entries of one connection setting in one batch and records each outcome.
fn send_group(
    connection: &Connection,
    entries: Vec<Locked>,
    globals: Globals,
    control: smtp::BatchControl<'_>,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let (settings, queue) = match resolve(connection, globals) {
        Ok(resolved) => resolved,
        Err(err) => {
            let reason = printable(format!("{err:#}").as_bytes());
            for locked in entries {
                defer(locked, &reason, DEFAULT_MAX_AGE, tally)?;
            }
            tally.errors.push(err);
            return Ok(());
        }
    };
    let max_age = queue.max_age.unwrap_or(DEFAULT_MAX_AGE);
    let mut slots: Vec<Option<Locked>> = Vec::new();
    let mut loaded = Vec::new();
    for locked in entries {
        let message = match load(&locked) {
            Ok(message) => message,
            Err(err) => {
                // A message that cannot be read back can never be sent.
                let reason =
                    printable(format!("cannot read the queued message: {err:#}").as_bytes());
                let mut locked = locked;
                fail_pending(&mut locked, &reason);
                settle(locked, tally)?;
                continue;
            }
        };
        if message.envelope.recipients.is_empty() {
            // Every recipient was dealt with before a crash.
            settle(locked, tally)?;
            continue;
        }
        loaded.push(message);
        slots.push(Some(locked));
    }
    let outgoing: Vec<Outgoing<'_>> = loaded
        .iter()
        .map(|l| Outgoing {
            envelope: &l.envelope,
            message: &l.message,
        })
        .collect();
    let transcript = Transcript::stderr(globals.verbose > 0);
    let mut sink = Recorder {
        slots: &mut slots,
        loaded: &loaded,
        max_age,
        tally,
        error: None,
    };
    let control = smtp::BatchControl {
        pace: queue.rate.map(|r| r.interval()),
        ..control
    };
    let untried = smtp::submit_batch(&settings, &outgoing, &transcript, control, &mut sink);
    if let Some(err) = sink.error.take() {
        return Err(err);
    }
    if let Some((from, err)) = untried {
        let reason = printable(format!("{err:#}").as_bytes());
        for locked in slots.iter_mut().skip(from).filter_map(Option::take) {
            defer(locked, &reason, max_age, tally)?;
        }
        tally.errors.push(err);
    }
    Ok(())
}

/// Records each message's outcome in its entry as the batch goes.
struct Recorder<'a> {
    slots: &'a mut Vec<Option<Locked>>,
    loaded: &'a [Loaded],
    max_age: Duration,
    tally: &'a mut Tally,
    /// The first failure to record (the outbox itself failing).
    error: Option<anyhow::Error>,
}

impl Recorder<'_> {
    /// Keeps the first failure to write the outbox.
    fn keep(&mut self, result: anyhow::Result<()>) {
        if let Err(err) = result {
            self.error.get_or_insert(err);
        }
    }
}

impl BatchSink for Recorder<'_> {
    fn delivered(&mut self, index: usize, recipients: &[usize]) {
        let Some(locked) = self.slots[index].as_mut() else {
            return;
        };
        let first = !locked
            .entry
            .recipients
            .iter()
            .any(|r| r.state == RecipientState::Delivered);
        if let (true, Some(spec)) = (first, &locked.entry.save_copy) {
            match super::copy::parse_target(spec) {
                Ok(target) => super::send::keep_copy(&target, &self.loaded[index].message),
                Err(err) => self.error = self.error.take().or(Some(err)),
            }
        }
        for &r in recipients {
            let position = self.loaded[index].positions[r];
            locked.entry.recipients[position].state = RecipientState::Delivered;
        }
        if locked.entry.pending().is_empty() {
            let locked = self.slots[index].take().expect("entry present");
            let result = settle(locked, self.tally);
            self.keep(result);
        } else {
            let result = locked.save().map_err(Into::into);
            self.keep(result);
        }
    }

    fn finished(&mut self, index: usize, outcome: Result<SubmitReport, SubmitError>) {
        let Some(mut locked) = self.slots[index].take() else {
            return;
        };
        let failure = match outcome {
            Ok(report) => {
                note_answers(&mut locked, &self.loaded[index], &report.recipients);
                None
            }
            Err(failed) => {
                note_answers(&mut locked, &self.loaded[index], &failed.report.recipients);
                Some(failed.error)
            }
        };
        let result = match failure {
            _ if locked.entry.pending().is_empty() => settle(locked, self.tally),
            Some(err) if !is_temporary(&err) && !refused_recipients_only(&err) => {
                let reason = printable(format!("{err:#}").as_bytes());
                fail_pending(&mut locked, &reason);
                settle(locked, self.tally)
            }
            Some(err) => defer(
                locked,
                &printable(format!("{err:#}").as_bytes()),
                self.max_age,
                self.tally,
            ),
            None => {
                let reason = locked
                    .entry
                    .recipients
                    .iter()
                    .filter(|r| r.state == RecipientState::Pending)
                    .find_map(|r| {
                        r.reply
                            .as_ref()
                            .map(|reply| format!("<{}>: {reply}", r.address))
                    })
                    .unwrap_or_else(|| "not accepted".into());
                defer(locked, &reason, self.max_age, self.tally)
            }
        };
        self.keep(result);
    }
}

/// Whether the failure is only some recipients refused (the others then
/// stay pending, or are already marked failed).
fn refused_recipients_only(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        matches!(
            c.downcast_ref::<crate::proto::smtp::Error>(),
            Some(crate::proto::smtp::Error::RecipientsRefused { .. })
        )
    })
}

/// Records the server's answer to each recipient: 5xx fails it for good,
/// 4xx leaves it pending with the reply.
fn note_answers(locked: &mut Locked, loaded: &Loaded, answers: &[RecipientStatus]) {
    for (r, status) in answers.iter().enumerate() {
        let position = loaded.positions[r];
        let recipient = &mut locked.entry.recipients[position];
        if let Some(reply) = &status.reply {
            recipient.reply = Some(printable(reply.summary().as_bytes()));
        }
        if status.delivered {
            recipient.state = RecipientState::Delivered;
        } else if status.state == Answer::PermFailed {
            recipient.state = RecipientState::Failed;
        }
    }
}

/// Fails every recipient still pending, with `reason`.
fn fail_pending(locked: &mut Locked, reason: &str) {
    for r in &mut locked.entry.recipients {
        if r.state == RecipientState::Pending {
            r.state = RecipientState::Failed;
            r.reply = Some(reason.to_string());
        }
    }
    locked.entry.last_reply = Some(reason.to_string());
}

/// An entry with no recipient pending: removed when every one got it,
/// else moved to failed/ with the replies.
fn settle(locked: Locked, tally: &mut Tally) -> anyhow::Result<()> {
    if locked.entry.any_failed() {
        tally.failed += 1;
        let id = locked.id.clone();
        let reason = locked
            .entry
            .recipients
            .iter()
            .filter(|r| r.state == RecipientState::Failed)
            .map(|r| {
                format!(
                    "<{}>: {}",
                    r.address,
                    r.reply.as_deref().unwrap_or("refused")
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let mut locked = locked;
        locked.entry.last_reply = Some(reason.clone());
        locked.fail()?;
        let _ = writeln!(
            std::io::stderr(),
            "failed: {id} ({})",
            printable(reason.as_bytes())
        );
    } else {
        tally.sent += 1;
        locked.remove()?;
    }
    Ok(())
}

/// The wait before try number `attempts + 1`: a minute, doubling, at most
/// an hour.
fn back_off(attempts: u32) -> u64 {
    let doublings = attempts.saturating_sub(1).min(16);
    (FIRST_RETRY << doublings).min(LONGEST_RETRY)
}

/// A try that failed for now: counted, scheduled again, or failed for
/// good past the maximum age.
fn defer(
    mut locked: Locked,
    reason: &str,
    max_age: Duration,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let now = outbox::now();
    locked.entry.attempts += 1;
    locked.entry.last_reply = Some(reason.to_string());
    if now.saturating_sub(locked.entry.created) >= max_age.as_secs() {
        let reason = format!(
            "not delivered after {} attempts in {}s: {reason}",
            locked.entry.attempts,
            max_age.as_secs()
        );
        fail_pending(&mut locked, &reason);
        return settle(locked, tally);
    }
    locked.entry.next_attempt = now + back_off(locked.entry.attempts);
    tally.deferred += 1;
    locked.save()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_from_a_minute_to_an_hour() {
        let waits: Vec<u64> = (1..=8).map(back_off).collect();
        assert_eq!(waits, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(back_off(1000), 3600);
    }
}
