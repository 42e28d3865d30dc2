//! A progress bar (bytes and messages) on stderr, shown only when stderr is
//! a terminal, no transcript is printed, and the work is long.

use std::cell::Cell;
use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Work at least this large gets a progress bar.
const LONG_BYTES: u64 = 4 * 1024 * 1024;
/// Or at least this many messages.
const LONG_MESSAGES: usize = 50;

/// Progress of a retrieval; does nothing when hidden.
pub struct Progress {
    bar: Option<ProgressBar>,
    total_messages: usize,
    done: Cell<usize>,
}

impl Progress {
    /// A bar for `messages` messages totalling `bytes`, if worth showing.
    pub fn new(messages: usize, bytes: u64, verbose: bool) -> Self {
        let long = bytes >= LONG_BYTES || messages >= LONG_MESSAGES;
        let show = long && !verbose && std::io::stderr().is_terminal();
        let bar = show.then(|| {
            let bar = ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(format!("0/{messages} messages"));
            bar
        });
        Progress {
            bar,
            total_messages: messages,
            done: Cell::new(0),
        }
    }

    /// Counts received bytes.
    pub fn add_bytes(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    /// Counts one saved message.
    pub fn message_done(&self) {
        self.done.set(self.done.get() + 1);
        if let Some(bar) = &self.bar {
            let done = self.done.get();
            bar.set_message(format!("{done}/{} messages", self.total_messages));
        }
    }

    /// Prints a line on stderr without garbling the bar.
    pub fn eprintln(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
