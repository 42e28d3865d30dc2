//! What `mailctl fetch` prints: the `--list` listing, the retrieval report
//! (JSON or a summary line), and the exit status it ends with.

use std::io::Write;

use super::drive::Finished;
use super::listing;
use crate::exit::{exit_status, fail, Exit};
use crate::net::pop3::{Entry, Session};
use crate::text::printable;

/// What a run printed and did, for its caller (one of several accounts is
/// summed up by the caller).
#[derive(Debug, Default)]
pub struct Tally {
    /// The JSON output has been written.
    pub reported: bool,
    /// Messages saved (or delivered).
    pub saved: usize,
    /// Messages deleted on the server.
    pub deleted: usize,
    /// The run is one of several: its summary line is left to the caller,
    /// and its JSON report is kept in `json` for the combined document.
    pub one_of_several: bool,
    /// The JSON report of one of several runs, not printed.
    pub json: Option<serde_json::Value>,
}

/// Prints the JSON report `value`, or keeps it in `tally` when the run is
/// one of several (the caller prints them all as one document).
fn emit_json(value: &impl serde::Serialize, tally: &mut Tally) -> anyhow::Result<()> {
    tally.reported = true;
    if tally.one_of_several {
        tally.json = Some(serde_json::to_value(value)?);
        return Ok(());
    }
    print_stdout(|out| {
        serde_json::to_writer_pretty(&mut *out, value)?;
        writeln!(out)
    })
}

/// What `--list` shows.
pub struct Listing {
    /// `--json`.
    pub json: bool,
    /// `--uidl`: a UIDL column in the table.
    pub uidl: bool,
    /// `--new`: the entries are the new messages only.
    pub only_new: bool,
}

/// `--list`: TOP n 0 for each message, then a table or JSON on stdout; a
/// table of nothing is one line saying so.
pub fn list(
    session: &mut Session,
    entries: &[Entry],
    listing: &Listing,
    tally: &mut Tally,
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
    if listing.json {
        emit_json(&rows, tally)?;
        return Ok(Exit::Ok);
    }
    tally.reported = true;
    print_stdout(|out| {
        if rows.is_empty() {
            let empty = match listing.only_new {
                true => "no new mail",
                false => "no messages",
            };
            writeln!(out, "{empty}")
        } else {
            listing::print_table(&rows, &listing::Layout::for_stdout(listing.uidl), out)
        }
    })?;
    Ok(Exit::Ok)
}

/// How the report is printed.
pub struct Style {
    /// `--json`.
    pub json: bool,
    /// Messages went to standard output, so no summary unless verbose.
    pub quiet: bool,
    /// `--mda`: messages are "delivered" rather than "saved".
    pub delivered: bool,
}

/// Prints the report of a retrieval run and says how it ends.
pub fn report(finished: Finished, style: &Style, tally: &mut Tally) -> anyhow::Result<Exit> {
    let outcomes = &finished.outcomes;
    tally.saved = outcomes.iter().filter(|o| o.saved.is_some()).count();
    tally.deleted = outcomes.iter().filter(|o| o.deleted).count();
    if style.json {
        emit_json(outcomes, tally)?;
    } else if !style.quiet && !tally.one_of_several {
        let (saved, deleted) = (tally.saved, tally.deleted);
        let verb = if style.delivered {
            "delivered"
        } else {
            "saved"
        };
        if saved > 0 || deleted > 0 {
            say!("mailctl: {saved} {verb}, {deleted} deleted");
        }
    }

    if let Some(err) = finished.quit_problem {
        return Err(err);
    }
    if let Some(err) = finished.broken {
        let saved = outcomes.iter().filter(|o| o.saved.is_some()).count();
        let saved = crate::text::count(saved, "message");
        return Err(err.context(format!("{saved} saved before the failure")));
    }
    match finished.failure {
        Some(err) => {
            let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
            if failed > 0 {
                say!(
                    "mailctl: error: {failed} of {} not fetched",
                    crate::text::count(outcomes.len(), "message")
                );
            }
            Ok(exit_status(&err))
        }
        None => Ok(Exit::Ok),
    }
}

/// Writes a report on stdout. A reader that went away (`| head`) is not an
/// error; any other failure is (exit 74).
pub fn print_stdout(
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
