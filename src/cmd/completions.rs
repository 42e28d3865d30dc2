//! `mailctl completions SHELL`: a completion script on stdout.

use std::io::Write;

use clap::Args;
use clap_complete::Shell;

use crate::exit::Exit;

/// Options of `mailctl completions`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  mailctl completions bash > ~/.local/share/bash-completion/completions/mailctl
  mailctl completions zsh > ~/.zfunc/_mailctl        # with fpath+=(~/.zfunc)
  mailctl completions fish > ~/.config/fish/completions/mailctl.fish
  mailctl completions powershell >> $PROFILE")]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Writes the completion script for `shell` to `out`.
pub fn write_script(shell: Shell, out: &mut dyn Write) {
    let mut command = crate::cli::command();
    clap_complete::generate(shell, &mut command, "mailctl", out);
}

/// Runs `mailctl completions`.
pub fn run(args: CompletionsArgs) -> anyhow::Result<Exit> {
    let mut script = Vec::new();
    write_script(args.shell, &mut script);
    let mut stdout = std::io::stdout().lock();
    crate::net::connection::during(
        stdout.write_all(&script).and_then(|()| stdout.flush()),
        "writing the completion script",
    )?;
    Ok(Exit::Ok)
}
