//! From the server's listing to the messages to retrieve: the selection
//! applied, and those over `--max-size` set aside with a note.

use std::collections::BTreeSet;

use super::flags::Selection;
use super::retrieve::Outcome;
use crate::exit::{fail, Exit};
use crate::net::pop3::Entry;

/// The messages to retrieve, and what was left out.
pub struct Plan {
    /// To retrieve, in message order.
    pub fetch: Vec<Entry>,
    /// Skipped for their size (already reported).
    pub skipped: Vec<Outcome>,
    /// Numbers asked for that the server does not have (already
    /// reported): the run still happens, but fails.
    pub failure: Option<anyhow::Error>,
}

/// Applies the selection and `--max-size` to the listing. `fetched` holds
/// the UIDLs retrieved before; `server` names the server in messages.
/// Fails only when `--new` meets a server without UIDL.
pub fn plan(
    selection: Selection,
    entries: &[Entry],
    fetched: &BTreeSet<String>,
    max_size: Option<u64>,
    server: &str,
) -> anyhow::Result<Plan> {
    let mut failure = None;
    let chosen: Vec<Entry> = match selection {
        Selection::All => entries.to_vec(),
        Selection::New => {
            if entries.iter().any(|e| e.uidl.is_none()) {
                crate::bail_with!(
                    Exit::Unavailable,
                    "{server} does not give unique ids (UIDL), which --new needs"
                );
            }
            entries
                .iter()
                .filter(|e| !fetched.contains(e.uidl.as_deref().unwrap_or_default()))
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
                    let has = crate::text::count(entries.len(), "message");
                    say!("mailctl: error: no {what} on the server, which has {has}");
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
    let (fetch, skipped) = size_limit(chosen, max_size);
    Ok(Plan {
        fetch,
        skipped,
        failure,
    })
}

/// Sets aside the messages over `max_size`, saying so.
fn size_limit(chosen: Vec<Entry>, max_size: Option<u64>) -> (Vec<Entry>, Vec<Outcome>) {
    let mut skipped = Vec::new();
    let mut fetch = Vec::new();
    for e in chosen {
        match max_size {
            Some(max) if e.size > max => {
                say!(
                    "mailctl: skipping message {} ({} bytes, over --max-size {max})",
                    e.number,
                    e.size
                );
                skipped.push(Outcome {
                    number: e.number,
                    uidl: e.uidl.clone(),
                    size: e.size,
                    skipped: Some(format!("larger than --max-size {max}")),
                    ..Default::default()
                });
            }
            _ => fetch.push(e),
        }
    }
    (fetch, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(number: u32, size: u64, uidl: Option<&str>) -> Entry {
        Entry {
            number,
            size,
            uidl: uidl.map(str::to_string),
        }
    }

    #[test]
    fn selections_and_size_limit() {
        let entries = [
            entry(1, 10, Some("a")),
            entry(2, 5000, Some("b")),
            entry(3, 20, Some("c")),
        ];
        let fetched: BTreeSet<String> = ["a".to_string()].into();
        let p = plan(Selection::New, &entries, &fetched, Some(1000), "s").unwrap();
        let numbers: Vec<u32> = p.fetch.iter().map(|e| e.number).collect();
        assert_eq!(numbers, [3]);
        assert_eq!(p.skipped.len(), 1);
        assert_eq!(p.skipped[0].number, 2);

        let p = plan(
            Selection::Numbers(vec![2..=3, 7..=7]),
            &entries,
            &fetched,
            None,
            "s",
        )
        .unwrap();
        assert_eq!(p.fetch.len(), 2);
        assert!(p.failure.is_some(), "no message 7");

        let no_uidl = [entry(1, 10, None)];
        assert!(plan(Selection::New, &no_uidl, &fetched, None, "s").is_err());
        assert_eq!(
            plan(Selection::All, &no_uidl, &fetched, None, "s")
                .unwrap()
                .fetch
                .len(),
            1
        );
    }
}
