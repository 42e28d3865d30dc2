//! The retrieval loop: RETR flights, each message streamed into the sink
//! and made durable before its DELE is queued.
//!
//! With PIPELINING, up to [`WINDOW`] RETR commands are outstanding and
//! messages are committed (synced) on worker threads while the next ones
//! arrive; DELE n joins the next flight only once message n and every
//! message before it are synced. Without PIPELINING, one command at a time,
//! and each message is synced before the next command. After a failure to
//! save a message, no more RETR are sent and no DELE for that message or
//! any later one (messages saved before it are still deleted): responses
//! already on their way are read and discarded.

use serde::Serialize;

use super::commit::Committer;
use super::sink::{Meta, Sink};
use crate::cmd::progress::Progress;
use crate::exit::{fail, Exit, Failure};
use crate::net::pop3::{Entry, Session, WINDOW};
use crate::proto::pop3::{Command, Error, Event, Kind, Reply};
use crate::text::printable;

/// What happened to one message (the `--json` report).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Outcome {
    /// Message number in this session.
    pub number: u32,
    /// Unique id, if known.
    pub uidl: Option<String>,
    /// Size announced by LIST.
    pub size: u64,
    /// Where it was saved (`-` for standard output).
    pub saved: Option<String>,
    /// Whether the server confirmed its deletion (DELE and QUIT answered
    /// `+OK`).
    pub deleted: bool,
    /// Why it was skipped, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// What went wrong, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A problem after the message was safely saved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// DELE answered +OK (confirmed only by QUIT).
    #[serde(skip)]
    pub marked: bool,
}

/// The result of a retrieval run.
pub struct Report {
    /// One outcome per planned message, in order.
    pub outcomes: Vec<Outcome>,
    /// The first failure that should decide the exit status.
    pub failure: Option<anyhow::Error>,
    /// Whether the connection is still usable (so QUIT can be sent).
    pub connection_ok: bool,
    /// The signal that stopped the run early, if one did.
    pub interrupted: Option<i32>,
}

/// Where each planned message stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// Not yet received (or being received).
    Waiting,
    /// Received; its commit is running.
    Committing,
    /// Durable.
    Saved,
    /// The server refused RETR: nothing to delete.
    Refused,
    /// Saving failed, or was abandoned after an earlier failure.
    Failed,
}

/// Commits running at once before the network loop waits for the disk.
const MAX_COMMITS_IN_FLIGHT: usize = 64;

/// Everything the loop keeps between events.
struct Run<'a> {
    plan: &'a [Entry],
    index: std::collections::HashMap<u32, usize>,
    outcomes: Vec<Outcome>,
    slots: Vec<Slot>,
    failure: Option<anyhow::Error>,
    /// After a local failure: no new RETR, and no DELE from the failed
    /// message on (`dele_cursor` never passes it).
    stopped: bool,
    /// After SIGINT or SIGTERM (its number): no new RETR, and the messages
    /// whose RETR was already sent are read and dropped; the one being
    /// received is finished.
    interrupted: Option<i32>,
    delete: bool,
    /// The next message (plan order) whose DELE is still to be decided;
    /// DELEs go out in message order, so no message is deleted after one
    /// that failed to save.
    dele_cursor: usize,
}

impl Run<'_> {
    fn commit_done(
        &mut self,
        i: usize,
        result: anyhow::Result<super::sink::Saved>,
        progress: &Progress,
        saved: &mut dyn FnMut(&Entry),
    ) {
        match result {
            Ok(s) => {
                if let Some(w) = &s.warning {
                    progress.eprintln(&format!(
                        "mailctl: warning: message {} saved to {} but {}",
                        self.plan[i].number,
                        printable(s.location.as_bytes()),
                        printable(w.as_bytes())
                    ));
                }
                self.outcomes[i].saved = Some(s.location);
                self.outcomes[i].warning = s.warning;
                self.slots[i] = Slot::Saved;
                saved(&self.plan[i]);
                progress.message_done();
            }
            Err(e) => self.fail_local(i, e, progress),
        }
    }

    /// A local failure (sink, disk) on message `i`: stops the run.
    fn fail_local(&mut self, i: usize, err: anyhow::Error, progress: &Progress) {
        local_failure(
            &mut self.outcomes[i],
            err,
            &mut self.failure,
            self.stopped,
            progress,
        );
        self.slots[i] = Slot::Failed;
        self.stopped = true;
    }

    /// Queues the DELEs that may go out now.
    fn queue_deletes(&mut self, session: &mut Session) -> anyhow::Result<()> {
        if !self.delete {
            return Ok(());
        }
        // The cursor stops at the first message not saved: after a failure,
        // only the messages saved before it are deleted.
        while self.dele_cursor < self.slots.len() {
            match self.slots[self.dele_cursor] {
                Slot::Saved => {
                    if !session.in_transaction()
                        || !(session.client().pipelining() || session.client().outstanding() == 0)
                    {
                        return Ok(());
                    }
                    session.queue(&Command::Dele(self.plan[self.dele_cursor].number))?;
                }
                Slot::Refused => {}
                Slot::Waiting | Slot::Committing | Slot::Failed => return Ok(()),
            }
            self.dele_cursor += 1;
        }
        Ok(())
    }
}

/// Retrieves `plan` into `sink`, deleting each saved message if `delete`.
/// `saved` is called for every message once it is durable.
pub fn retrieve(
    session: &mut Session,
    plan: &[Entry],
    sink: &mut dyn Sink,
    delete: bool,
    progress: &Progress,
    stop: &std::sync::atomic::AtomicUsize,
    mut saved: impl FnMut(&Entry),
) -> Report {
    let mut run = Run {
        plan,
        index: plan
            .iter()
            .enumerate()
            .map(|(i, e)| (e.number, i))
            .collect(),
        outcomes: plan
            .iter()
            .map(|e| Outcome {
                number: e.number,
                uidl: e.uidl.clone(),
                size: e.size,
                ..Outcome::default()
            })
            .collect(),
        slots: vec![Slot::Waiting; plan.len()],
        failure: None,
        stopped: false,
        interrupted: None,
        delete,
        dele_cursor: 0,
    };
    let threads = if sink.parallel() { 16 } else { 1 };
    let mut committer = Committer::new(threads);
    let result = run_loop(
        session,
        sink,
        &mut committer,
        &mut run,
        progress,
        stop,
        &mut saved,
    );
    let connection_ok = match result {
        Ok(()) => true,
        Err(err) => {
            sink.abort();
            // Messages already handed to the disk still count once durable.
            while let Some((i, r)) = committer.wait_next() {
                run.commit_done(i, r, progress, &mut saved);
            }
            if let Some(i) = run.slots.iter().position(|s| *s == Slot::Waiting) {
                run.outcomes[i].error = Some(format!("{err:#}"));
            }
            // A broken connection outranks per-message problems.
            run.failure = Some(err);
            false
        }
    };
    let why = run.not_taken("not retrieved");
    for (o, slot) in run.outcomes.iter_mut().zip(&run.slots) {
        if *slot == Slot::Waiting && o.error.is_none() && connection_ok {
            o.error = Some(why.clone());
        }
    }
    Report {
        outcomes: run.outcomes,
        failure: run.failure,
        connection_ok,
        interrupted: run.interrupted,
    }
}

/// What the loop works with besides the session.
struct Io<'a> {
    sink: &'a mut dyn Sink,
    committer: &'a mut Committer,
    progress: &'a Progress,
    saved: &'a mut dyn FnMut(&Entry),
}

/// Where the flight of RETR commands stands.
struct Flight {
    pipelining: bool,
    /// The next message (plan order) to ask for.
    next: usize,
    /// RETR commands sent and not yet answered.
    in_flight: usize,
    /// The message being received, and whether its bytes are being kept.
    receiving: Option<(usize, bool)>,
    /// RETR commands answered so far: the next RETR reply is for
    /// `plan[answered]`.
    answered: usize,
}

fn run_loop(
    session: &mut Session,
    sink: &mut dyn Sink,
    committer: &mut Committer,
    run: &mut Run<'_>,
    progress: &Progress,
    stop: &std::sync::atomic::AtomicUsize,
    saved: &mut dyn FnMut(&Entry),
) -> anyhow::Result<()> {
    let mut io = Io {
        sink,
        committer,
        progress,
        saved,
    };
    let pipelining = session.client().pipelining();
    let window = if pipelining { WINDOW } else { 1 };
    let mut flight = Flight {
        pipelining,
        next: 0,
        in_flight: 0,
        receiving: None,
        answered: 0,
    };
    loop {
        if run.interrupted.is_none() {
            let signal = stop.load(std::sync::atomic::Ordering::Relaxed);
            if signal != 0 {
                run.interrupted = Some(i32::try_from(signal).unwrap_or(i32::MAX));
            }
        }
        while let Some((i, r)) = io.committer.try_next() {
            run.commit_done(i, r, io.progress, io.saved);
        }
        run.queue_deletes(session)?;
        while !run.stopped
            && run.interrupted.is_none()
            && flight.next < run.plan.len()
            && flight.in_flight < window
            && (pipelining || session.client().outstanding() == 0)
        {
            session.queue(&Command::Retr(run.plan[flight.next].number))?;
            flight.next += 1;
            flight.in_flight += 1;
        }
        session.flush()?;
        if session.client().outstanding() == 0 {
            // Nothing on the wire: wait for the disk, which may allow
            // more DELEs, or finish.
            match io.committer.wait_next() {
                Some((i, r)) => {
                    run.commit_done(i, r, io.progress, io.saved);
                    continue;
                }
                None => return Ok(()),
            }
        }
        session.out.clear();
        // The time the next reply may take grows with its announced size.
        session.expect_size(run.plan.get(flight.answered).map_or(0, |e| e.size));
        match session.next_event()? {
            Event::BodyStart(reply) => {
                let Kind::Retr(n) = reply.kind else {
                    return Err(unexpected(&reply.kind));
                };
                flight.receiving = Some(run.body_start(n, &mut io)?);
            }
            Event::Data => run.data(&session.out, &mut flight, &mut io),
            Event::BodyEnd(Kind::Retr(n)) => {
                flight.in_flight -= 1;
                flight.answered += 1;
                run.body_end(n, &mut flight, &mut io)?;
            }
            Event::Reply(reply) => {
                if let Kind::Retr(_) = reply.kind {
                    flight.in_flight -= 1;
                    flight.answered += 1;
                }
                run.reply(&reply, io.progress)?;
            }
            Event::BodyEnd(other) => return Err(unexpected(&other)),
            other => {
                return Err(
                    Error::Unexpected(format!("unexpected {other:?} during retrieval")).into(),
                )
            }
        }
    }
}

impl Run<'_> {
    /// A message begins: returns its index and whether it is kept.
    fn body_start(&mut self, n: u32, io: &mut Io<'_>) -> anyhow::Result<(usize, bool)> {
        let i = lookup(&self.index, n)?;
        if self.stopped || self.interrupted.is_some() {
            return Ok((i, false));
        }
        let meta = Meta {
            number: n,
            uidl: self.plan[i].uidl.clone(),
            size: self.plan[i].size,
        };
        match io.sink.begin(&meta) {
            Ok(()) => Ok((i, true)),
            Err(e) => {
                self.fail_local(i, e, io.progress);
                Ok((i, false))
            }
        }
    }

    /// Message bytes arrived.
    fn data(&mut self, bytes: &[u8], flight: &mut Flight, io: &mut Io<'_>) {
        io.progress.add_bytes(bytes.len() as u64);
        if let Some((i, true)) = flight.receiving {
            if let Err(e) = io.sink.write(bytes) {
                io.sink.abort();
                self.fail_local(i, e, io.progress);
                flight.receiving = Some((i, false));
            }
        }
    }

    /// Message `n` is complete: its commit starts, or it is dropped.
    fn body_end(&mut self, n: u32, flight: &mut Flight, io: &mut Io<'_>) -> anyhow::Result<()> {
        let (i, keep) = match flight.receiving.take() {
            Some(r) => r,
            None => (lookup(&self.index, n)?, false),
        };
        if !keep || self.stopped {
            if keep {
                io.sink.abort();
            }
            if self.slots[i] == Slot::Waiting {
                self.slots[i] = Slot::Failed;
                self.outcomes[i].error = Some(self.not_taken("not saved"));
            }
            return Ok(());
        }
        match io.sink.finish() {
            Ok(commit) => {
                self.slots[i] = Slot::Committing;
                io.committer.submit(i, commit);
                // Without pipelining every command costs a round trip
                // anyway: commit now, so DELE n goes out before RETR n+1.
                if !flight.pipelining || io.committer.in_flight() >= MAX_COMMITS_IN_FLIGHT {
                    if let Some((j, r)) = io.committer.wait_next() {
                        self.commit_done(j, r, io.progress, io.saved);
                    }
                }
            }
            Err(e) => self.fail_local(i, e, io.progress),
        }
        Ok(())
    }

    /// Why a message was left: `what` after an interruption or a failure.
    fn not_taken(&self, what: &str) -> String {
        match self.interrupted {
            Some(_) => format!("{what}: interrupted"),
            None => format!("{what} after an earlier failure"),
        }
    }

    /// A single-line reply: RETR refused, or DELE answered.
    fn reply(&mut self, reply: &Reply, progress: &Progress) -> anyhow::Result<()> {
        let (n, what) = match reply.kind {
            Kind::Retr(n) => (n, "RETR"),
            Kind::Dele(n) => (n, "DELE"),
            other => return Err(unexpected(&other)),
        };
        let i = lookup(&self.index, n)?;
        if reply.ok && what == "DELE" {
            self.outcomes[i].marked = true;
            return Ok(());
        }
        let err = anyhow::Error::new(Error::refused(reply, &format!("{what} {n}")));
        progress.eprintln(&format!("mailctl: error: message {n}: {err}"));
        self.outcomes[i].error = Some(err.to_string());
        if what == "RETR" {
            self.slots[i] = Slot::Refused;
        }
        self.failure.get_or_insert(err);
        Ok(())
    }
}

fn lookup(index: &std::collections::HashMap<u32, usize>, n: u32) -> anyhow::Result<usize> {
    index
        .get(&n)
        .copied()
        .ok_or_else(|| fail(Exit::Software, format!("reply for unplanned message {n}")))
}

fn unexpected(kind: &Kind) -> anyhow::Error {
    Error::Unexpected(format!(
        "unexpected reply to {} during retrieval",
        kind.name()
    ))
    .into()
}

/// Records a failure to save a message. Its status is the one the sink
/// chose (such as a delivery agent's sysexits code), or 74 for an error
/// that carries none. The first local failure decides the exit status,
/// over any refusal by the server; `stopped` says one happened already.
fn local_failure(
    outcome: &mut Outcome,
    err: anyhow::Error,
    failure: &mut Option<anyhow::Error>,
    stopped: bool,
    progress: &Progress,
) {
    progress.eprintln(&format!(
        "mailctl: error: message {}: {}; not deleting it or any later message",
        outcome.number,
        printable(format!("{err:#}").as_bytes())
    ));
    outcome.error = Some(format!("{err:#}"));
    let chosen = err.chain().any(|c| c.downcast_ref::<Failure>().is_some());
    let err = if chosen {
        err
    } else {
        fail(Exit::IoErr, format!("{err:#}"))
    };
    if !stopped || failure.is_none() {
        *failure = Some(err);
    }
}
