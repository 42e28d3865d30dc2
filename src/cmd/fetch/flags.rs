//! From the command line to what to do: which messages, where they go,
//! and the checks that need no server.

use std::ops::RangeInclusive;
use std::path::PathBuf;

use super::FetchArgs;
use crate::cmd::Globals;
use crate::config::Delivery;
use crate::exit::Exit;

/// Which messages to retrieve.
pub enum Selection {
    /// Every message.
    All,
    /// Those whose UIDL was not fetched before.
    New,
    /// These numbers.
    Numbers(Vec<RangeInclusive<u32>>),
}

/// Where retrieved messages go.
pub enum Destination {
    /// `--save-dir`.
    SaveDir(PathBuf),
    /// `--maildir`.
    Maildir(PathBuf),
    /// `--mbox`.
    Mbox(PathBuf),
    /// `--stdout`.
    Stdout,
    /// `--mda`.
    Mda(String),
}

/// How much of each message `--save-dir` decodes (`--max-parts`).
pub fn extract_limits(args: &FetchArgs) -> crate::mail::extract::Limits {
    match args.max_parts {
        Some(n) => crate::mail::extract::Limits {
            max_parts: n as usize,
        },
        None => crate::mail::extract::Limits::default(),
    }
}

/// What to retrieve and where to; `None` for `--list`.
pub type Retrieval = Option<(Selection, Destination)>;

/// With a selection (`--new`, `--all`, `--retr`) and no destination on the
/// command line, takes the account's configured one (`[accounts.NAME.fetch]`),
/// if any. A command line naming a `--server` alone reads no file.
pub fn fill_destination(args: &mut FetchArgs, globals: Globals) -> anyhow::Result<()> {
    let selected = args.all || args.new || !args.retr.is_empty();
    let has_destination = args.save_dir.is_some()
        || args.maildir.is_some()
        || args.mbox.is_some()
        || args.stdout
        || args.mda.is_some();
    let flags_only = args.connect.account.is_none() && args.connect.server.is_some();
    if args.list || !selected || has_destination || flags_only {
        return Ok(());
    }
    let server = crate::config::resolve_pop3(&args.connect, globals.config)?;
    let Some(name) = server.account else {
        return Ok(());
    };
    match crate::config::account_delivery(globals.config, &name)? {
        Some(Delivery::Maildir(dir)) => args.maildir = Some(dir),
        Some(Delivery::Mbox(file)) => args.mbox = Some(file),
        Some(Delivery::SaveDir(dir)) => args.save_dir = Some(dir),
        Some(Delivery::Mda(command)) => args.mda = Some(command),
        None => {}
    }
    Ok(())
}

/// Reads the action flags: a selection needs a destination, a
/// destination alone takes every message, neither means `--list`
/// (`--list --new` lists the new messages only).
pub fn retrieval(args: &FetchArgs) -> anyhow::Result<Retrieval> {
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
    if args.max_parts.is_some() && args.save_dir.is_none() {
        crate::bail_with!(Exit::Usage, "--max-parts needs --save-dir");
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
    Ok(match (selection, destination) {
        (None, None) => {
            let deleting = [
                (args.delete, "--delete"),
                (args.keep_days.is_some(), "--keep-days"),
                (args.delete_oversized, "--delete-oversized"),
            ];
            if let Some((_, flag)) = deleting.iter().find(|(given, _)| *given) {
                crate::bail_with!(
                    Exit::Usage,
                    "{flag} needs a destination: --save-dir, --maildir, --mbox, --stdout or --mda"
                );
            }
            None
        }
        (Some(Selection::New), None) if args.list => None,
        (Some(_), None) => crate::bail_with!(
            Exit::Usage,
            "choose where to save messages: --save-dir, --maildir, --mbox, --stdout or --mda"
        ),
        (selection, Some(dest)) => Some((selection.unwrap_or(Selection::All), dest)),
    })
}

/// Parses `1,4-6` into ranges.
pub fn parse_ranges(text: &str) -> Result<Vec<RangeInclusive<u32>>, String> {
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
pub fn parse_size(text: &str) -> Result<u64, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
