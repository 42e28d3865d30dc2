//! A retrieval run over an open session: the messages go to the sink,
//! QUIT commits the deletions, and the UIDLs of what was saved are
//! recorded, even after a failure.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;

use super::plan::Plan;
use super::progress::Progress;
use super::retrieve::{self, Outcome};
use super::sink::Sink;
use crate::exit::{fail, Exit};
use crate::net::connection::Endpoint;
use crate::net::pop3::{Entry, Session};
use crate::store::uidl::{self as state, UidlState};

/// The record of fetched UIDLs for one server and user.
pub struct Record {
    path: PathBuf,
    state: UidlState,
}

impl Record {
    /// Reads the record, so that a damaged file stops the run before the
    /// server is contacted.
    pub fn load(endpoint: &Endpoint, user: &str) -> anyhow::Result<Record> {
        let path = state::state_path(&endpoint.to_string(), user)?;
        state::prepare_dir(&path)?;
        let state = UidlState::load(&path, &endpoint.to_string(), user)?;
        Ok(Record { path, state })
    }

    /// The UIDLs fetched before.
    pub fn fetched(&self) -> &BTreeSet<String> {
        &self.state.fetched
    }

    /// Keeps the UIDLs still on the server plus those just saved.
    fn update(&mut self, entries: &[Entry], saved: Vec<String>) -> anyhow::Result<()> {
        if !entries.iter().any(|e| e.uidl.is_some()) {
            return Ok(());
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
        if fetched != self.state.fetched {
            self.state.fetched = fetched;
            self.state.save(&self.path)?;
        }
        Ok(())
    }
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
}

/// Retrieves the plan into `sink`, deleting saved messages if `delete`,
/// then ends the session and records the UIDLs.
pub fn drive(
    session: &mut Session,
    plan: Plan,
    mut sink: Box<dyn Sink>,
    delete: bool,
    verbose: bool,
    entries: &[Entry],
    mut record: Record,
) -> Finished {
    let Plan {
        fetch,
        skipped,
        mut failure,
    } = plan;
    let total_bytes: u64 = fetch.iter().map(|e| e.size).sum();
    let progress = Progress::new(fetch.len(), total_bytes, verbose);
    let mut newly_saved: Vec<String> = Vec::new();
    let report = retrieve::retrieve(session, &fetch, sink.as_mut(), delete, &progress, |e| {
        if let Some(u) = &e.uidl {
            newly_saved.push(u.clone());
        }
    });
    progress.finish();
    drop(sink);

    let marked = report.outcomes.iter().filter(|o| o.marked).count();
    let (committed, quit_problem) = quit(session, report.connection_ok, marked);

    // Record what was saved, even after a failure: those messages are safe.
    if let Err(e) = record.update(entries, newly_saved) {
        say!("mailctl: error: recording fetched messages: {e:#}");
        failure.get_or_insert(e);
    }

    let mut outcomes = report.outcomes;
    for o in &mut outcomes {
        o.deleted = o.marked && committed;
    }
    outcomes.extend(skipped);
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
    }
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
                "mailctl: warning: the connection failed before QUIT: the {marked} deletions may not have happened"
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
                        "the server refused QUIT: the {marked} deletions may not have happened"
                    ),
                )
            });
            (false, problem)
        }
        Err(e) => {
            let problem = (marked > 0).then(|| {
                e.context(format!(
                    "the connection failed before QUIT was answered: the {marked} deletions may not have happened"
                ))
            });
            (false, problem)
        }
    }
}
