//! `mailctl fetch`.

use clap::Args;

use super::Globals;
use crate::exit::Exit;

/// Options of `mailctl fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {}

/// Runs `mailctl fetch`.
pub fn run(_args: FetchArgs, _globals: Globals) -> anyhow::Result<Exit> {
    Err(crate::exit::fail(Exit::Software, "not implemented yet"))
}
