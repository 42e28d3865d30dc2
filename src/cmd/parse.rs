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
    let several = inputs.len() > 1;
    let limits = Limits {
        max_parts: args.max_parts as usize,
    };
    let mut out = Output {
        out: io::BufWriter::new(io::stdout().lock()),
        json: args.json,
        first: true,
    };
    let mut status = Exit::Ok;
    if args.json && several {
        out.out.write_all(b"[")?;
    }
    for (i, input) in inputs.iter().enumerate() {
        let label = input.display().to_string();
        let raw = read_input(input)?;
        let result = match &args.save_dir {
            Some(dir) => save_one(input, &raw, dir, limits).map(|(folder, manifest)| {
                let shown = printable(folder.display().to_string().as_bytes());
                out.report(&label, Some(&folder), &manifest.warnings, &manifest, |w| {
                    writeln!(w, "{}: {shown}", printable(label.as_bytes()))
                })
            }),
            None => extract::summarize_with(&raw, limits).map(|summary| {
                let text = summary.render();
                out.report(&label, None, &summary.warnings, &summary, |w| {
                    if several {
                        let gap = if i > 0 { "\n" } else { "" };
                        writeln!(w, "{gap}==> {} <==", printable(label.as_bytes()))?;
                    }
                    w.write_all(text.as_bytes())
                })
            }),
        };
        match result {
            Ok(written) => written?,
            Err(e) if exit_status(&e) == Exit::DataErr && several => {
                out.out.flush()?;
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
        out.out.write_all(if several { b"]\n" } else { b"\n" })?;
    }
    out.out.flush()?;
    Ok(status)
}

/// Where `parse` writes its results: text, or JSON items (an array when
/// there are several inputs).
struct Output<W: Write> {
    out: W,
    json: bool,
    /// No JSON item written yet.
    first: bool,
}

impl<W: Write> Output<W> {
    /// Prints one input's warnings on standard error and its result:
    /// `content` as JSON, or what `text` writes.
    fn report<T: Serialize>(
        &mut self,
        label: &str,
        folder: Option<&Path>,
        warnings: &[String],
        content: T,
        text: impl FnOnce(&mut W) -> io::Result<()>,
    ) -> anyhow::Result<()> {
        for w in warnings {
            warn(label, w);
        }
        if !self.json {
            return text(&mut self.out).map_err(Into::into);
        }
        if !self.first {
            self.out.write_all(b",\n")?;
        }
        self.first = false;
        let item = Report {
            file: label.to_string(),
            folder: folder.map(|f| f.display().to_string()),
            content,
        };
        serde_json::to_writer_pretty(&mut self.out, &item)?;
        Ok(())
    }
}

fn warn(label: &str, warning: &str) {
    eprintln!(
        "mailctl: warning: {}: {}",
        printable(label.as_bytes()),
        printable(warning.as_bytes())
    );
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
