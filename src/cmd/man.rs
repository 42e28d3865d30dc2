//! `mailctl man [DIR]`: man pages for mailctl and each command.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::exit::{fail, Exit};

/// Options of `mailctl man`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  mailctl man                       # mailctl.1, mailctl-send.1, ... here
  mailctl man ~/.local/share/man/man1 && man mailctl-send")]
pub struct ManArgs {
    /// Directory to write the pages into (created if missing).
    #[arg(value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
}

/// Writes `mailctl.1` and `mailctl-COMMAND.1` (and deeper, such as
/// `mailctl-config-check.1`) into `dir`; returns the paths written.
pub fn write_pages(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| {
        fail(
            Exit::CantCreate,
            format!("cannot create {}: {e}", dir.display()),
        )
    })?;
    let mut command = crate::cli::definition().disable_help_subcommand(true);
    command.build();
    let mut written = Vec::new();
    write_tree(command, dir, &mut written)?;
    written.push(write_format_page(dir)?);
    Ok(written)
}

fn write_tree(
    command: clap::Command,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    let bare = command
        .clone()
        .after_help(None::<&str>)
        .after_long_help(None::<&str>);
    let page = clap_mangen::Man::new(bare);
    let path = dir.join(page.get_filename());
    let mut bytes = Vec::new();
    page.render(&mut bytes)
        .map_err(|e| fail(Exit::Software, format!("rendering {}: {e}", path.display())))?;
    if let Some(after) = command.get_after_long_help().or(command.get_after_help()) {
        bytes = with_sections(&bytes, &after_help_sections(&after.to_string()));
    }
    std::fs::write(&path, bytes).map_err(|e| {
        fail(
            Exit::CantCreate,
            format!("cannot write {}: {e}", path.display()),
        )
    })?;
    written.push(path);
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_tree(sub.clone(), dir, written)?;
    }
    Ok(())
}

/// Writes `mailctl.toml.5`, the configuration file's format.
fn write_format_page(dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join("mailctl.toml.5");
    let mut head = roff::Roff::new();
    head.control(
        "TH",
        [
            "mailctl.toml",
            "5",
            "",
            &format!("mailctl {}", env!("CARGO_PKG_VERSION")),
        ],
    )
    .control("SH", ["NAME"])
    .text([roff::roman("mailctl.toml - the mailctl configuration file")]);
    let (description, rest) = super::config::FORMAT
        .split_once("\n\n")
        .unwrap_or((super::config::FORMAT, ""));
    head.control("SH", ["DESCRIPTION"])
        .text([roff::roman(description.replace('\n', " "))]);
    let page = format!("{}{}", head.render(), after_help_sections(rest));
    std::fs::write(&path, page).map_err(|e| {
        fail(
            Exit::CantCreate,
            format!("cannot write {}: {e}", path.display()),
        )
    })?;
    Ok(path)
}

/// `page` with `sections` (roff) put before its VERSION section, or at
/// its end.
fn with_sections(page: &[u8], sections: &str) -> Vec<u8> {
    let page = String::from_utf8_lossy(page);
    let at = page.find("\n.SH VERSION").map_or(page.len(), |at| at + 1);
    format!("{}{sections}{}", &page[..at], &page[at..]).into_bytes()
}

/// The text after a command's options in its help, as man page sections:
/// a block headed `Examples:` becomes EXAMPLES, kept line for line (so its
/// columns stay aligned); one starting `Exit status:` becomes EXIT STATUS;
/// the other paragraphs go under NOTES.
fn after_help_sections(text: &str) -> String {
    use roff::{roman, Roff};
    let mut roff = Roff::new();
    let mut notes_open = false;
    for block in text
        .split("\n\n")
        .map(str::trim_end)
        .filter(|b| !b.trim().is_empty())
    {
        let mut lines = block.lines();
        let first = lines.next().unwrap_or_default();
        if let Some(heading) = first.strip_suffix(':') {
            roff.control("SH", [heading.to_uppercase().as_str()]);
            roff.control("nf", []);
            for line in lines {
                roff.text([roman(line.strip_prefix("  ").unwrap_or(line))]);
            }
            roff.control("fi", []);
            notes_open = false;
            continue;
        }
        let paragraph = block.lines().map(str::trim).collect::<Vec<_>>().join(" ");
        if let Some(rest) = paragraph.strip_prefix("Exit status:") {
            roff.control("SH", ["EXIT STATUS"]);
            roff.text([roman(rest.trim())]);
            notes_open = false;
        } else {
            match notes_open {
                true => roff.control("PP", []),
                false => roff.control("SH", ["NOTES"]),
            };
            roff.text([roman(paragraph)]);
            notes_open = true;
        }
    }
    // The preamble that defines the apostrophe string is in the page already.
    let rendered = roff.render();
    rendered
        .split_once("\n.SH")
        .map_or(rendered.clone(), |(_, rest)| format!(".SH{rest}"))
}

/// Runs `mailctl man`.
pub fn run(args: ManArgs) -> anyhow::Result<Exit> {
    for path in write_pages(&args.dir)? {
        println!("{}", path.display());
    }
    Ok(Exit::Ok)
}
