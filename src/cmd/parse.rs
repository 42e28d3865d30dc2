//! `mailctl parse`.

use clap::Args;

use super::Globals;
use crate::exit::Exit;

/// Options of `mailctl parse`.
#[derive(Debug, Args)]
pub struct ParseArgs {}

/// Runs `mailctl parse`.
pub fn run(_args: ParseArgs, _globals: Globals) -> anyhow::Result<Exit> {
    Err(crate::exit::fail(Exit::Software, "not implemented yet"))
}
