//! Runs mailctl on a pseudo-terminal of a chosen width (through python3's
//! `pty` module), for what it shows only on a terminal.

// Shared by several test files, each using part of it.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::process::{Command, Output};

/// What a run on the terminal showed (stdout and stderr together, with
/// the terminal's CRLF line endings), and its exit code.
pub struct Shown {
    /// Everything written to the terminal.
    pub text: String,
    /// The exit code.
    pub code: i32,
}

/// Runs `program` with `args` on a terminal `columns` wide, with `env`
/// set and `COLUMNS` unset; `None` (after printing "skipped") when python3
/// cannot be run. With `sigint_on`, a SIGINT is sent once that text shows.
pub fn run<S: AsRef<OsStr>>(
    columns: u16,
    sigint_on: Option<&str>,
    program: &str,
    args: &[S],
    env: &[(&str, &str)],
) -> Option<Shown> {
    run_typing(columns, sigint_on, &[], program, args, env)
}

/// [`run`], sending two SIGINTs 0.3 s apart once `sigint_on` shows.
pub fn run_interrupted_twice<S: AsRef<OsStr>>(
    columns: u16,
    sigint_on: &str,
    program: &str,
    args: &[S],
    env: &[(&str, &str)],
) -> Option<Shown> {
    run_full(columns, Some((sigint_on, 2)), &[], program, args, env)
}

/// [`run`], typing each of `answers` at the terminal as a prompt (output
/// not ending in a line feed) shows.
pub fn run_typing<S: AsRef<OsStr>>(
    columns: u16,
    sigint_on: Option<&str>,
    answers: &[&str],
    program: &str,
    args: &[S],
    env: &[(&str, &str)],
) -> Option<Shown> {
    run_full(
        columns,
        sigint_on.map(|text| (text, 1)),
        answers,
        program,
        args,
        env,
    )
}

/// [`run`], typing `keys` at once (Ctrl-D as `\x04`) when `text` shows.
pub fn run_typing_on<S: AsRef<OsStr>>(
    text: &str,
    keys: &str,
    program: &str,
    args: &[S],
    env: &[(&str, &str)],
) -> Option<Shown> {
    let typing = ["--type-on", text, keys];
    run_with(80, None, &[], &typing, program, args, env)
}

/// The runs above: `sigints` is the text to wait for and how many SIGINTs
/// to send then, 0.3 s apart.
fn run_full<S: AsRef<OsStr>>(
    columns: u16,
    sigints: Option<(&str, u32)>,
    answers: &[&str],
    program: &str,
    args: &[S],
    env: &[(&str, &str)],
) -> Option<Shown> {
    run_with(columns, sigints, answers, &[], program, args, env)
}

/// [`run_full`] with `extra` options for run.py.
fn run_with<S: AsRef<OsStr>>(
    columns: u16,
    sigints: Option<(&str, u32)>,
    answers: &[&str],
    extra: &[&str],
    program: &str,
    args: &[S],
    env: &[(&str, &str)],
) -> Option<Shown> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pty_support/run.py");
    let mut command = Command::new("python3");
    command.arg(script).arg(columns.to_string());
    if let Some((text, count)) = sigints {
        command.args(["--sigint-on", text, "--sigints", &count.to_string()]);
    }
    if !answers.is_empty() {
        command.arg("--input").arg(answers.join("\n"));
    }
    command.args(extra);
    command.arg("--").arg(program).args(args);
    command.env_remove("COLUMNS");
    for (name, value) in env {
        command.env(name, value);
    }
    let out: Output = match command.output() {
        Ok(out) => out,
        Err(e) => {
            println!("skipped: python3 cannot be run: {e}");
            return None;
        }
    };
    Some(Shown {
        text: String::from_utf8_lossy(&out.stdout).into_owned(),
        code: out.status.code().unwrap_or(-1),
    })
}

/// The lines left on a screen after `text` was written to it: carriage
/// returns, line feeds and the erase and cursor-up controls a progress bar
/// uses are applied; other control sequences are dropped. Also returns the
/// widest line ever drawn, in characters (trailing blanks aside).
pub fn screen(text: &str) -> (Vec<String>, usize) {
    let mut lines: Vec<Vec<char>> = vec![Vec::new()];
    let (mut row, mut col, mut widest) = (0usize, 0usize, 0usize);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => col = 0,
            '\n' => {
                row += 1;
                col = 0;
                if lines.len() <= row {
                    lines.push(Vec::new());
                }
            }
            '\x1b' if chars.peek() == Some(&'[') => {
                chars.next();
                let mut parameter = String::new();
                let mut command = ' ';
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        command = c;
                        break;
                    }
                    parameter.push(c);
                }
                let n: usize = parameter.parse().unwrap_or(0);
                match command {
                    'K' if n == 2 => lines[row].clear(),
                    'K' => lines[row].truncate(col),
                    'A' => row = row.saturating_sub(n.max(1)),
                    'J' => {
                        lines[row].truncate(col);
                        lines.truncate(row + 1);
                    }
                    _ => {}
                }
            }
            c if c.is_control() => {}
            c => {
                let line = &mut lines[row];
                while line.len() < col {
                    line.push(' ');
                }
                if col < line.len() {
                    line[col] = c;
                } else {
                    line.push(c);
                }
                col += 1;
                if c != ' ' {
                    widest = widest.max(col);
                }
            }
        }
    }
    let lines = lines
        .into_iter()
        .map(|l| l.into_iter().collect::<String>().trim_end().to_string())
        .collect();
    (lines, widest)
}
