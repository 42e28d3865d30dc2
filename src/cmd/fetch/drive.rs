//! A retrieval run over an open session: the messages go to the sink,
//! QUIT commits the deletions, and the UIDLs of what was saved are
//! recorded, even after a failure.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use super::plan::Plan;
use super::retrieve::{self, Outcome};
use super::sink::Sink;
use crate::cmd::progress::Progress;
use crate::exit::{fail, Exit};
use crate::net::connection::Endpoint;
use crate::net::pop3::{Entry, Session};
use crate::store::journal::{self, Journal, Line};
use crate::store::lock::{self, StateLock};
use crate::store::uidl::{self as state, UidlState};

/// The record of fetched UIDLs for one server and user: the state file,
/// and its journal, to which each message is added as it is saved (see
/// [`crate::store::journal`]). Only one run at a time holds it.
pub struct Record {
    path: PathBuf,
    state: UidlState,
    journal: Arc<Journal>,
    /// Whether a killed run left a journal to fold into the state file.
    left_over: bool,
    /// mbox files a killed run left with part of a message at their end.
    torn: Vec<(PathBuf, u64)>,
    _lock: StateLock,
}

impl Record {
    /// Takes the state file's lock (waiting up to [`lock::WAIT`] for
    /// another run), reads the record and adds what the journal of a killed
    /// run shows was saved, so that a damaged file stops the run before the
    /// server is contacted.
    pub fn load(endpoint: &Endpoint, user: &str) -> anyhow::Result<Record> {
        let path = state::state_path(&endpoint.to_string(), user)?;
        state::prepare_dir(&path)?;
        let lock = lock::lock_state(&path, lock::WAIT)?;
        let mut state = UidlState::load(&path, &endpoint.to_string(), user)?;
        let journal_path = journal::journal_path(&path);
        let left_over = std::fs::metadata(&journal_path).is_ok_and(|m| m.len() > 0);
        let recovered = journal::recover(&journal_path)?;
        state.fetched.extend(recovered.uidls);
        let journal = Arc::new(Journal::open(&journal_path)?);
        Ok(Record {
            path,
            state,
            journal,
            left_over,
            torn: recovered.torn,
            _lock: lock,
        })
    }

    /// The journal this run appends to.
    pub fn journal(&self) -> Arc<Journal> {
        self.journal.clone()
    }

    /// Where a killed run left part of a message at the end of `mbox`.
    pub fn torn(&self, mbox: &Path) -> Option<u64> {
        let mbox = std::path::absolute(mbox).ok()?;
        self.torn
            .iter()
            .find(|(p, _)| *p == mbox)
            .map(|(_, at)| *at)
    }

    /// Writes what a killed run left in the journal into the state file,
    /// then empties the journal (once the destination is repaired).
    pub fn fold(&mut self) -> anyhow::Result<()> {
        if self.left_over {
            self.state.save(&self.path)?;
            self.journal.clear()?;
            self.left_over = false;
            self.torn.clear();
        }
        Ok(())
    }

    /// The UIDLs fetched before.
    pub fn fetched(&self) -> &BTreeSet<String> {
        &self.state.fetched
    }

    /// Whether `uidl` was fetched before, `days` days ago or more.
    fn fetched_days_ago(&self, uidl: &str, days: u32, now: u64) -> bool {
        self.state.fetched.contains(uidl) && self.state.fetched_days_ago(uidl, days, now)
    }

    /// Keeps the UIDLs still on the server plus those just saved.
    fn update(&mut self, entries: &[Entry], saved: Vec<String>) -> anyhow::Result<()> {
        if !entries.iter().any(|e| e.uidl.is_some()) {
            return Ok(self.journal.remove()?);
        }
        let on_server: HashSet<&str> = entries.iter().filter_map(|e| e.uidl.as_deref()).collect();
        let mut fetched: BTreeSet<String> = self
            .state
            .fetched
            .iter()
            .filter(|u| on_server.contains(u.as_str()))
            .cloned()
            .collect();
        fetched.extend(saved);
        if self.state.set_fetched(fetched, state::now_seconds()) {
            self.state.save(&self.path)?;
        }
        self.journal.remove()?;
        Ok(())
    }
}

/// The UIDLs fetched before from this server and user, as [`Record::load`]
/// reads them, without taking the lock: for a listing, which changes
/// nothing.
pub fn fetched_before(endpoint: &Endpoint, user: &str) -> anyhow::Result<BTreeSet<String>> {
    let path = state::state_path(&endpoint.to_string(), user)?;
    let mut state = UidlState::load(&path, &endpoint.to_string(), user)?;
    let recovered = journal::recover(&journal::journal_path(&path))?;
    state.fetched.extend(recovered.uidls);
    Ok(state.fetched)
}

/// How a run ended.
pub struct Finished {
    /// Every message chosen, in number order, skipped ones included.
    pub outcomes: Vec<Outcome>,
    /// QUIT refused or unanswered while deletions were pending.
    pub quit_problem: Option<anyhow::Error>,
    /// The connection broke during the retrieval.
    pub broken: Option<anyhow::Error>,
    /// The first failure that decides the exit status otherwise.
    pub failure: Option<anyhow::Error>,
    /// The signal that stopped the run early, if one did.
    pub interrupted: Option<i32>,
}

/// How a run is told to stop: the number of the signal received (SIGINT
/// or SIGTERM), 0 until then.
pub type StopFlag = Arc<AtomicUsize>;

/// Makes SIGINT and SIGTERM set the returned flag, which the retrieval
/// checks between events: it stops taking new messages, finishes the one
/// being received, records and QUITs. A second signal ends the program at
/// once (130 or 143), after clearing the terminal's line of a progress bar;
/// the journal keeps what was saved.
pub fn catch_signals() -> anyhow::Result<StopFlag> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use std::sync::atomic::Ordering;
    let flag = StopFlag::default();
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    let seen = flag.clone();
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if seen.swap(signal as usize, Ordering::SeqCst) != 0 {
                crate::cmd::progress::clear_line();
                std::process::exit(128 + signal);
            }
        }
    });
    Ok(flag)
}

/// How a run goes besides what it fetches.
pub struct Settings<'a> {
    /// Delete each message once it is saved.
    pub delete: bool,
    /// Show progress.
    pub verbose: bool,
    /// Set by SIGINT or SIGTERM (see [`catch_signals`]).
    pub stop: &'a AtomicUsize,
    /// `--keep-days N`: delete the messages first fetched N days ago or more.
    pub keep_days: Option<u32>,
    /// `--delete-oversized`: delete the messages over `--max-size`, once
    /// their UIDLs are recorded.
    pub delete_oversized: bool,
}

/// Retrieves the plan into `sink`, deleting saved messages if
/// `settings.delete`, then ends the session and records the UIDLs.
pub fn drive(
    session: &mut Session,
    plan: Plan,
    mut sink: Box<dyn Sink>,
    settings: Settings<'_>,
    entries: &[Entry],
    mut record: Record,
) -> Finished {
    let Settings {
        delete,
        verbose,
        stop,
        keep_days,
        delete_oversized,
    } = settings;
    let sink_records = sink.use_journal(record.journal());
    let Plan {
        fetch,
        skipped,
        mut failure,
    } = plan;
    let total_bytes: u64 = fetch.iter().map(|e| e.size).sum();
    let progress = Progress::new(fetch.len(), total_bytes, verbose);
    let mut newly_saved: Vec<String> = Vec::new();
    let journal = record.journal();
    let report = retrieve::retrieve(
        session,
        &fetch,
        sink.as_mut(),
        delete,
        &progress,
        stop,
        |e| {
            if let Some(u) = &e.uidl {
                if !sink_records {
                    // Delivered where it cannot be checked: recorded now.
                    let _ = journal.record(&Line::Delivered { uidl: u.clone() });
                }
                newly_saved.push(u.clone());
            }
        },
    );
    progress.finish();
    drop(sink);

    let mut report = report;
    let mut skipped = skipped;
    if report.connection_ok && report.interrupted.is_none() {
        let removal = Removal {
            keep_days,
            delete_oversized,
            entries,
            record: &record,
        };
        let extra = removal.run(session, &mut skipped, &mut newly_saved, &report.outcomes);
        match extra {
            Ok(expired) => report.outcomes.extend(expired),
            Err(e) => {
                report.connection_ok = false;
                report.failure.get_or_insert(e);
            }
        }
    }

    let marked = (report.outcomes.iter().chain(&skipped))
        .filter(|o| o.marked)
        .count();
    let (committed, quit_problem) = quit(session, report.connection_ok, marked);

    // Record what was saved, even after a failure: those messages are safe.
    if let Err(e) = record.update(entries, newly_saved) {
        say!("mailctl: error: recording fetched messages: {e:#}");
        failure.get_or_insert(e);
    }

    let mut outcomes = report.outcomes;
    outcomes.extend(skipped);
    for o in &mut outcomes {
        o.deleted = o.marked && committed;
    }
    outcomes.sort_by_key(|o| o.number);
    let (broken, failure) = if report.connection_ok {
        (None, report.failure.or(failure))
    } else {
        (report.failure, None)
    };
    Finished {
        outcomes,
        quit_problem,
        broken,
        failure,
        interrupted: report.interrupted,
    }
}

/// The deletions besides those of `--delete`: `--keep-days` and
/// `--delete-oversized`.
struct Removal<'a> {
    keep_days: Option<u32>,
    delete_oversized: bool,
    entries: &'a [Entry],
    record: &'a Record,
}

impl Removal<'_> {
    /// Marks for deletion (DELE) the messages over `--max-size` among
    /// `skipped`, once their UIDLs are journaled and added to `recorded`, and
    /// those fetched `--keep-days` days ago or more and not taken again in
    /// this run (`done`). Returns an outcome for each of the latter.
    fn run(
        &self,
        session: &mut Session,
        skipped: &mut [Outcome],
        recorded: &mut Vec<String>,
        done: &[Outcome],
    ) -> anyhow::Result<Vec<Outcome>> {
        if self.delete_oversized {
            for outcome in skipped.iter_mut() {
                // Recorded first: a message deleted unseen is never new again.
                if let Some(uidl) = outcome.uidl.clone() {
                    self.record
                        .journal
                        .record(&Line::Delivered { uidl: uidl.clone() })?;
                    recorded.push(uidl);
                }
                outcome.marked = mark_deleted(session, outcome.number)?;
            }
        }
        let Some(days) = self.keep_days else {
            return Ok(Vec::new());
        };
        let now = state::now_seconds();
        let mut expired = Vec::new();
        for entry in self.entries {
            let Some(uidl) = &entry.uidl else { continue };
            // What this run took is deleted (or kept) by the retrieval itself.
            let this_run = done.iter().any(|o| o.number == entry.number);
            if this_run || !self.record.fetched_days_ago(uidl, days, now) {
                continue;
            }
            expired.push(Outcome {
                number: entry.number,
                uidl: Some(uidl.clone()),
                size: entry.size,
                skipped: Some(format!("fetched {days} days ago or more")),
                marked: mark_deleted(session, entry.number)?,
                ..Default::default()
            });
        }
        Ok(expired)
    }
}

/// DELE `number`: whether the server agreed.
fn mark_deleted(session: &mut Session, number: u32) -> anyhow::Result<bool> {
    let reply = session.command(&crate::proto::pop3::Command::Dele(number))?;
    if !reply.ok {
        say!("mailctl: warning: the server refused to delete message {number}");
    }
    Ok(reply.ok)
}

/// `the 1 deletion`, `the 3 deletions`.
fn deletions(marked: usize) -> String {
    format!("the {}", crate::text::count(marked, "deletion"))
}

/// Ends the session after a retrieval. Returns whether the deletions are
/// committed, and the problem to report when `marked` deletions may not
/// have happened.
fn quit(
    session: &mut Session,
    connection_ok: bool,
    marked: usize,
) -> (bool, Option<anyhow::Error>) {
    if !connection_ok {
        if marked > 0 {
            say!(
                "mailctl: warning: the connection failed before QUIT: {} may not have happened",
                deletions(marked)
            );
        }
        return (false, None);
    }
    match session.quit() {
        Ok(true) => (true, None),
        Ok(false) => {
            let problem = (marked > 0).then(|| {
                fail(
                    Exit::Unavailable,
                    format!(
                        "the server refused QUIT: {} may not have happened",
                        deletions(marked)
                    ),
                )
            });
            (false, problem)
        }
        Err(e) => {
            let problem = (marked > 0).then(|| {
                e.context(format!(
                    "the connection failed before QUIT was answered: {} may not have happened",
                    deletions(marked)
                ))
            });
            (false, problem)
        }
    }
}
