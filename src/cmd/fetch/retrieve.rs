//! The retrieval loop: RETR flights, each message streamed into the sink
//! and made durable before its DELE is queued.
//!
//! With PIPELINING, up to [`WINDOW`] RETR commands are outstanding; DELE n
//! joins the next flight only once message n is synced. Without it, one
//! command at a time. After any failure to save, no more RETR and no DELE at
//! all are sent: responses already on their way are read and discarded.

use serde::Serialize;

use super::progress::Progress;
use super::session::{refused, Entry, Session, WINDOW};
use super::sink::{Meta, Sink};
use crate::exit::{exit_status, fail, Exit};
use crate::pop3::{Command, Event, Kind};
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
}

/// Retrieves `plan` into `sink`, deleting each saved message if `delete`.
/// `saved` is called for every message once it is durable.
pub fn retrieve(
    session: &mut Session,
    plan: &[Entry],
    sink: &mut dyn Sink,
    delete: bool,
    progress: &Progress,
    mut saved: impl FnMut(&Entry),
) -> Report {
    let mut outcomes: Vec<Outcome> = plan
        .iter()
        .map(|e| Outcome {
            number: e.number,
            uidl: e.uidl.clone(),
            size: e.size,
            ..Outcome::default()
        })
        .collect();
    let index: std::collections::HashMap<u32, usize> = plan
        .iter()
        .enumerate()
        .map(|(i, e)| (e.number, i))
        .collect();
    let mut failure: Option<anyhow::Error> = None;
    let result = run_loop(
        session,
        plan,
        &index,
        sink,
        delete,
        progress,
        &mut outcomes,
        &mut failure,
        &mut saved,
    );
    let connection_ok = match result {
        Ok(()) => true,
        Err(err) => {
            sink.abort();
            if let Some(o) = outcomes
                .iter_mut()
                .find(|o| o.saved.is_none() && o.error.is_none() && o.skipped.is_none())
            {
                o.error = Some(format!("{err:#}"));
            }
            // A broken connection outranks per-message problems.
            failure = Some(err);
            false
        }
    };
    Report {
        outcomes,
        failure,
        connection_ok,
    }
}

#[allow(clippy::too_many_arguments)]
fn run_loop(
    session: &mut Session,
    plan: &[Entry],
    index: &std::collections::HashMap<u32, usize>,
    sink: &mut dyn Sink,
    delete: bool,
    progress: &Progress,
    outcomes: &mut [Outcome],
    failure: &mut Option<anyhow::Error>,
    saved: &mut dyn FnMut(&Entry),
) -> anyhow::Result<()> {
    let pipelining = session.client().pipelining();
    let window = if pipelining { WINDOW } else { 1 };
    let mut next = 0;
    let mut retr_in_flight = 0usize;
    // After a local failure: no new RETR, no DELE at all.
    let mut stopped = false;
    // The message being received, and whether its bytes are being kept.
    let mut receiving: Option<(usize, bool)> = None;

    loop {
        while !stopped
            && next < plan.len()
            && retr_in_flight < window
            && (pipelining || session.client().outstanding() == 0)
        {
            session.queue(&Command::Retr(plan[next].number))?;
            next += 1;
            retr_in_flight += 1;
        }
        session.flush()?;
        if session.client().outstanding() == 0 {
            return Ok(());
        }
        session.out.clear();
        match session.next_event()? {
            Event::BodyStart(reply) => {
                let Kind::Retr(n) = reply.kind else {
                    return Err(unexpected(&reply.kind));
                };
                let i = lookup(index, n)?;
                let keep = !stopped && {
                    let meta = Meta {
                        number: n,
                        uidl: plan[i].uidl.clone(),
                    };
                    match sink.begin(&meta) {
                        Ok(()) => true,
                        Err(e) => {
                            local_failure(&mut outcomes[i], e, failure);
                            stopped = true;
                            false
                        }
                    }
                };
                receiving = Some((i, keep));
            }
            Event::Data => {
                progress.add_bytes(session.out.len() as u64);
                if let Some((i, true)) = receiving {
                    if let Err(e) = sink.write(&session.out) {
                        sink.abort();
                        local_failure(&mut outcomes[i], e, failure);
                        stopped = true;
                        receiving = Some((i, false));
                    }
                }
            }
            Event::BodyEnd(Kind::Retr(n)) => {
                retr_in_flight -= 1;
                let (i, keep) = receiving.take().unwrap_or((lookup(index, n)?, false));
                if keep {
                    match sink.finish() {
                        Ok(s) => {
                            if let Some(w) = &s.warning {
                                eprintln!(
                                    "mailctl: warning: message {n} saved to {} but {}",
                                    printable(s.location.as_bytes()),
                                    printable(w.as_bytes())
                                );
                            }
                            outcomes[i].saved = Some(s.location);
                            outcomes[i].warning = s.warning;
                            saved(&plan[i]);
                            progress.message_done();
                            if delete && !stopped && session.in_transaction() {
                                session.queue(&Command::Dele(n))?;
                            }
                        }
                        Err(e) => {
                            local_failure(&mut outcomes[i], e, failure);
                            stopped = true;
                        }
                    }
                } else if outcomes[i].error.is_none() {
                    outcomes[i].error = Some("not saved after an earlier failure".into());
                }
            }
            Event::Reply(reply) => match reply.kind {
                Kind::Retr(n) => {
                    retr_in_flight -= 1;
                    let i = lookup(index, n)?;
                    let err = refused(&reply, &format!("RETR {n}"));
                    eprintln!("mailctl: error: message {n}: {err}");
                    outcomes[i].error = Some(err.to_string());
                    failure.get_or_insert(err);
                }
                Kind::Dele(n) => {
                    let i = lookup(index, n)?;
                    if reply.ok {
                        outcomes[i].marked = true;
                    } else {
                        let err = refused(&reply, &format!("DELE {n}"));
                        eprintln!("mailctl: error: message {n}: {err}");
                        outcomes[i].error = Some(err.to_string());
                        failure.get_or_insert(err);
                    }
                }
                other => return Err(unexpected(&other)),
            },
            Event::BodyEnd(other) => return Err(unexpected(&other)),
            other => {
                return Err(fail(
                    Exit::Protocol,
                    format!("unexpected {other:?} during retrieval"),
                ))
            }
        }
    }
}

fn lookup(index: &std::collections::HashMap<u32, usize>, n: u32) -> anyhow::Result<usize> {
    index
        .get(&n)
        .copied()
        .ok_or_else(|| fail(Exit::Software, format!("reply for unplanned message {n}")))
}

fn unexpected(kind: &Kind) -> anyhow::Error {
    fail(
        Exit::Protocol,
        format!("unexpected reply to {} during retrieval", kind.name()),
    )
}

fn local_failure(outcome: &mut Outcome, err: anyhow::Error, failure: &mut Option<anyhow::Error>) {
    eprintln!(
        "mailctl: error: message {}: {}; not deleting it or any later message",
        outcome.number,
        printable(format!("{err:#}").as_bytes())
    );
    outcome.error = Some(format!("{err:#}"));
    let status = exit_status(&err);
    let err = if matches!(status, Exit::CantCreate | Exit::IoErr) {
        err
    } else {
        fail(Exit::IoErr, format!("{err:#}"))
    };
    // A local failure decides the exit status over refusals by the server.
    let earlier_local = failure
        .as_ref()
        .is_some_and(|f| matches!(exit_status(f), Exit::CantCreate | Exit::IoErr));
    if !earlier_local {
        *failure = Some(err);
    }
}
