//! `mailctl serve`.

use clap::Args;

use super::Globals;
use crate::exit::Exit;

/// Options of `mailctl serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {}

/// Runs `mailctl serve`.
pub fn run(_args: ServeArgs, _globals: Globals) -> anyhow::Result<Exit> {
    Err(crate::exit::fail(Exit::Software, "not implemented yet"))
}
