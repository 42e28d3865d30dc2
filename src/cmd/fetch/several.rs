//! `fetch --account a,b` and `fetch --all-accounts`: one run per account,
//! each to its configured destination (or the one on the command line),
//! then one summary, and the exit status of the worst run.

use std::io::Write as _;

use super::output::Tally;
use super::FetchArgs;
use crate::cmd::Globals;
use crate::exit::{exit_status, Exit};
use crate::text::printable;

/// The accounts to fetch from when several are asked for; `None` for a
/// run of one account (or of the command line alone).
pub fn accounts(args: &FetchArgs, globals: Globals) -> anyhow::Result<Option<Vec<String>>> {
    if args.all_accounts {
        return crate::config::pop3_accounts(globals.config).map(Some);
    }
    let Some(list) = args.connect.account.as_deref().filter(|a| a.contains(',')) else {
        return Ok(None);
    };
    let names: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect();
    if args.json {
        crate::bail_with!(Exit::Usage, "--json takes one account at a time");
    }
    if args.connect.server.is_some() {
        crate::bail_with!(
            Exit::Usage,
            "--server names one server: give one account with it"
        );
    }
    Ok(Some(names))
}

/// What one account's run came to.
struct AccountRun {
    name: String,
    tally: Tally,
    exit: Exit,
}

/// Fetches from each account in turn, then prints one summary; stops early
/// on SIGINT or SIGTERM. Exits with the worst status of the runs.
pub fn run(args: FetchArgs, accounts: &[String], globals: Globals) -> anyhow::Result<Exit> {
    let listing = args.list || !(args.all || args.new || !args.retr.is_empty());
    let mut runs = Vec::new();
    for name in accounts {
        let mut one = args.clone();
        one.all_accounts = false;
        one.connect.account = Some(name.clone());
        if listing {
            super::output::print_stdout(|out| writeln!(out, "account {name}:"))?;
        }
        let mut tally = Tally {
            one_of_several: true,
            ..Tally::default()
        };
        let exit = match super::fetch(one, globals, &mut tally) {
            Ok(exit) => exit,
            Err(err) => {
                let text = printable(format!("{err:#}").as_bytes());
                say!("mailctl: error: account {name}: {text}");
                exit_status(&err)
            }
        };
        let stop = matches!(exit, Exit::Interrupted | Exit::Terminated);
        runs.push(AccountRun {
            name: name.clone(),
            tally,
            exit,
        });
        if stop {
            break;
        }
    }
    if !listing {
        say!("mailctl: {}", summary(&runs));
    }
    Ok(worst(runs.iter().map(|r| r.exit)))
}

/// `a: 2 saved, 1 deleted; b: failed (exit 77)`.
fn summary(runs: &[AccountRun]) -> String {
    runs.iter()
        .map(|run| match run.exit {
            Exit::Ok => format!(
                "{}: {} saved, {} deleted",
                run.name, run.tally.saved, run.tally.deleted
            ),
            exit => format!(
                "{}: {} saved, {} deleted, failed (exit {})",
                run.name,
                run.tally.saved,
                run.tally.deleted,
                exit.code()
            ),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The status of the worst run: an interruption, else the highest failure
/// code, else success.
fn worst(exits: impl Iterator<Item = Exit>) -> Exit {
    exits
        .max_by_key(|exit| match exit {
            Exit::Ok => 0,
            Exit::Interrupted | Exit::Terminated => u16::MAX,
            other => u16::from(other.code()),
        })
        .unwrap_or(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_status_wins() {
        let worst_of = |exits: &[Exit]| worst(exits.iter().copied());
        assert_eq!(worst_of(&[]), Exit::Ok);
        assert_eq!(worst_of(&[Exit::Ok, Exit::Ok]), Exit::Ok);
        assert_eq!(
            worst_of(&[Exit::Ok, Exit::TempFail, Exit::Ok]),
            Exit::TempFail
        );
        assert_eq!(worst_of(&[Exit::NoPerm, Exit::TempFail]), Exit::NoPerm);
        assert_eq!(
            worst_of(&[Exit::NoPerm, Exit::Interrupted]),
            Exit::Interrupted
        );
    }
}
