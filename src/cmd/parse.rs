//! `mailctl parse`: decode saved messages offline.
//!
//! Without `--save-dir`, prints each message's headers, text body and list
//! of parts (`--json`: the same as JSON). With `--save-dir DIR`, decodes
//! each input into its own new folder under DIR (named after the file,
//! `stdin` for standard input, ` (2)`... when taken), holding a copy of the
//! message as `message.eml` and what [`crate::mail::extract::extract_to_dir`]
//! writes. At most `--max-parts` parts of each message are decoded.
//!
//! Exit status: 0; 66 when an input cannot be read (nothing after it is
//! processed); 73 when an output folder or file cannot be created; 65 when
//! some input is not a message at all (the others are still processed).

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;

use super::Globals;
use crate::exit::{exit_status, fail, Exit};
use crate::mail::extract::{self, filename, Limits, Manifest};
use crate::text::printable;

/// Options of `mailctl parse`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  mailctl parse message.eml
  mailctl parse --json message.eml | jq .headers.subject
  mailctl parse --save-dir out/ *.eml
  mailctl fetch --retr 1 --stdout | mailctl parse -")]
pub struct ParseArgs {
    /// Message files to decode; `-` or none reads standard input.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Decode each message into its own new folder under DIR (created if
    /// missing).
    #[arg(long, value_name = "DIR")]
    pub save_dir: Option<PathBuf>,

    /// Print JSON: one object per message (an array when several), the
    /// summary or, with --save-dir, the manifest.
    #[arg(long)]
    pub json: bool,

    /// Decode at most N parts of each message; the rest are left out with
    /// a warning (with --save-dir, message.eml still holds the whole
    /// message).
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_parts: u32,
}

/// One input's result, as printed by `--json`.
#[derive(Serialize)]
struct Report<T: Serialize> {
    /// The input, `-` for standard input.
    file: String,
    /// The folder written, with `--save-dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    folder: Option<String>,
    #[serde(flatten)]
    content: T,
}

/// Runs `mailctl parse`.
pub fn run(args: ParseArgs, _globals: Globals) -> anyhow::Result<Exit> {
    match run_inputs(&args) {
        // The reader went away (`mailctl parse big.eml | head`): not an error.
        Err(e) if is_broken_pipe(&e) => Ok(Exit::Ok),
        other => other,
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn run_inputs(args: &ParseArgs) -> anyhow::Result<Exit> {
    let inputs: Vec<PathBuf> = if args.files.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        args.files.clone()
    };
    if let Some(dir) = &args.save_dir {
        std::fs::create_dir_all(dir).map_err(|e| {
            fail(
                Exit::CantCreate,
                format!("cannot create {}: {e}", dir.display()),
            )
        })?;
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let several = inputs.len() > 1;
    let limits = Limits {
        max_parts: args.max_parts as usize,
    };
    let mut status = Exit::Ok;
    let mut first_json = true;
    if args.json && several {
        out.write_all(b"[")?;
    }
    for (i, input) in inputs.iter().enumerate() {
        let label = input.display().to_string();
        let raw = read_input(input)?;
        let result = match &args.save_dir {
            Some(dir) => save_one(input, &raw, dir, limits).map(|(folder, manifest)| {
                for w in &manifest.warnings {
                    warn(&label, w);
                }
                if args.json {
                    json_item(
                        &mut out,
                        &mut first_json,
                        &Report {
                            file: label.clone(),
                            folder: Some(folder.display().to_string()),
                            content: manifest,
                        },
                    )
                } else {
                    writeln!(
                        out,
                        "{}: {}",
                        printable(label.as_bytes()),
                        printable(folder.display().to_string().as_bytes())
                    )
                    .map_err(Into::into)
                }
            }),
            None => extract::summarize_with(&raw, limits).map(|summary| {
                for w in &summary.warnings {
                    warn(&label, w);
                }
                if args.json {
                    json_item(
                        &mut out,
                        &mut first_json,
                        &Report {
                            file: label.clone(),
                            folder: None,
                            content: summary,
                        },
                    )
                } else {
                    let sep = if several {
                        format!(
                            "{}==> {} <==\n",
                            if i > 0 { "\n" } else { "" },
                            printable(label.as_bytes())
                        )
                    } else {
                        String::new()
                    };
                    out.write_all(sep.as_bytes())
                        .and_then(|()| out.write_all(summary.render().as_bytes()))
                        .map_err(Into::into)
                }
            }),
        };
        match result {
            Ok(written) => written?,
            Err(e) if exit_status(&e) == Exit::DataErr && several => {
                out.flush()?;
                eprintln!(
                    "mailctl: error: {}: {}",
                    printable(label.as_bytes()),
                    printable(format!("{e:#}").as_bytes())
                );
                status = Exit::DataErr;
            }
            Err(e) => return Err(e.context(label)),
        }
    }
    if args.json {
        out.write_all(if several { b"]\n" } else { b"\n" })?;
    }
    out.flush()?;
    Ok(status)
}

fn warn(label: &str, warning: &str) {
    eprintln!(
        "mailctl: warning: {}: {}",
        printable(label.as_bytes()),
        printable(warning.as_bytes())
    );
}

fn json_item<T: Serialize>(out: &mut impl Write, first: &mut bool, item: &T) -> anyhow::Result<()> {
    if !*first {
        out.write_all(b",\n")?;
    }
    *first = false;
    serde_json::to_writer_pretty(&mut *out, item)?;
    Ok(())
}

fn read_input(input: &Path) -> anyhow::Result<Vec<u8>> {
    if input == Path::new("-") {
        let mut raw = Vec::new();
        io::stdin()
            .lock()
            .read_to_end(&mut raw)
            .map_err(|e| fail(Exit::NoInput, format!("cannot read standard input: {e}")))?;
        return Ok(raw);
    }
    std::fs::read(input).map_err(|e| {
        fail(
            Exit::NoInput,
            format!("cannot read {}: {e}", input.display()),
        )
    })
}

/// Creates a new folder for `input` under `dir`, copies the message there
/// as `message.eml` and extracts it. A folder left with nothing useful (the
/// input was not a message) is removed again.
fn save_one(
    input: &Path,
    raw: &[u8],
    dir: &Path,
    limits: Limits,
) -> anyhow::Result<(PathBuf, Manifest)> {
    let base = if input == Path::new("-") {
        "stdin".to_string()
    } else {
        input
            .file_stem()
            .and_then(|s| filename::sanitize(&s.to_string_lossy()))
            .unwrap_or_else(|| "message".to_string())
    };
    let folder = create_unique_dir(dir, &base)?;
    let eml = folder.join("message.eml");
    let written = crate::store::durable::create_new(&eml)
        .map_err(|e| {
            fail(
                Exit::CantCreate,
                format!("cannot create {}: {e}", eml.display()),
            )
        })
        .and_then(|mut f| {
            f.write_all(raw)
                .map_err(|e| anyhow::Error::new(e).context(format!("writing {}", eml.display())))
        });
    let result = written.and_then(|()| extract::extract_to_dir_with(raw, &folder, limits));
    if let Err(e) = &result {
        if exit_status(e) == Exit::DataErr {
            let _ = std::fs::remove_file(&eml);
            let _ = std::fs::remove_dir(&folder);
        }
    }
    result.map(|manifest| (folder, manifest))
}

/// Creates `dir/base`, or `dir/base (2)`... whichever does not exist yet.
fn create_unique_dir(dir: &Path, base: &str) -> anyhow::Result<PathBuf> {
    for k in 1..=100_000 {
        let name = if k == 1 {
            base.to_string()
        } else {
            filename::numbered(base, k)
        };
        let path = dir.join(&name);
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(fail(
                    Exit::CantCreate,
                    format!("cannot create {}: {e}", path.display()),
                ))
            }
        }
    }
    Err(fail(
        Exit::CantCreate,
        format!("no free folder name for {base:?} in {}", dir.display()),
    ))
}
