//! The size of the terminal a command writes to.

use std::os::fd::AsFd;

/// The columns to fit output to: `COLUMNS` when it holds a positive
/// number (as shells and `ls` honour it), else the width of the terminal
/// `stream` is, else `None` (not a terminal: nothing is cut).
pub fn columns(stream: impl AsFd) -> Option<usize> {
    let from_env = std::env::var("COLUMNS")
        .ok()
        .and_then(|text| text.trim().parse::<usize>().ok())
        .filter(|&n| n > 0);
    from_env.or_else(|| {
        terminal_size::terminal_size_of(stream)
            .map(|(width, _)| usize::from(width.0))
            .filter(|&n| n > 0)
    })
}
