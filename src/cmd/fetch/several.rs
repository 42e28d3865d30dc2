//! `fetch --account a,b` and `fetch --all-accounts`: one run per account,
//! each to its configured destination (or the one on the command line),
//! then one summary, and the exit status of the worst run. With `--json`,
//! one document: `{"accounts": [{"account", "exit_code", "error",
//! "messages"}], "exit_code"}`, where `messages` is what the run of one
//! account prints.

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
    /// The failure, as printed.
    error: Option<String>,
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
        if listing && !args.json {
            super::output::print_stdout(|out| writeln!(out, "account {name}:"))?;
        }
        let mut tally = Tally {
            one_of_several: true,
            ..Tally::default()
        };
        let mut error = None;
        let exit = match super::fetch(one, globals, &mut tally) {
            Ok(exit) => exit,
            Err(err) => {
                let text = printable(format!("{err:#}").as_bytes());
                say!("mailctl: error: account {name}: {text}");
                error = Some(text);
                exit_status(&err)
            }
        };
        let stop = matches!(exit, Exit::Interrupted | Exit::Terminated);
        runs.push(AccountRun {
            name: name.clone(),
            tally,
            exit,
            error,
        });
        if stop {
            break;
        }
    }
    if !listing {
        say!("mailctl: {}", summary(&runs));
    }
    let exit = worst(runs.iter().map(|r| r.exit));
    if args.json {
        let document = combined_json(&mut runs, exit);
        super::output::print_stdout(|out| {
            serde_json::to_writer_pretty(&mut *out, &document)?;
            writeln!(out)
        })?;
    }
    Ok(exit)
}

/// The one JSON document of several runs: each account's report (`null`
/// when it failed before one) with its status, and the overall status.
fn combined_json(runs: &mut [AccountRun], exit: Exit) -> serde_json::Value {
    let accounts: Vec<serde_json::Value> = runs
        .iter_mut()
        .map(|run| {
            serde_json::json!({
                "account": run.name,
                "exit_code": run.exit.code(),
                "error": run.error,
                "messages": run.tally.json.take(),
            })
        })
        .collect();
    serde_json::json!({"accounts": accounts, "exit_code": exit.code()})
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
