//! `mailctl send`.

use clap::Args;

use super::Globals;
use crate::exit::Exit;

/// Options of `mailctl send`.
#[derive(Debug, Args)]
pub struct SendArgs {}

/// Runs `mailctl send`.
pub fn run(_args: SendArgs, _globals: Globals) -> anyhow::Result<Exit> {
    Err(crate::exit::fail(Exit::Software, "not implemented yet"))
}
