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
    Ok(written)
}

fn write_tree(
    command: clap::Command,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    let page = clap_mangen::Man::new(command.clone());
    let path = dir.join(page.get_filename());
    let mut bytes = Vec::new();
    page.render(&mut bytes)
        .map_err(|e| fail(Exit::Software, format!("rendering {}: {e}", path.display())))?;
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

/// Runs `mailctl man`.
pub fn run(args: ManArgs) -> anyhow::Result<Exit> {
    for path in write_pages(&args.dir)? {
        println!("{}", path.display());
    }
    Ok(Exit::Ok)
}
