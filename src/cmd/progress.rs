//! A progress bar on stderr for long transfers (`fetch` and `send`), shown
//! only when stderr is a terminal, no transcript is printed, and the work is
//! long. It fits the terminal's width and is cleared when the work ends,
//! however it ends (an error, or SIGINT, which `fetch` handles).

use std::cell::Cell;
use std::io::IsTerminal;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Work at least this large gets a progress bar.
const LONG_BYTES: u64 = 4 * 1024 * 1024;
/// Or at least this many messages.
const LONG_MESSAGES: usize = 50;

/// The widest `{bytes}/{total_bytes}` (`1023.99 MiB/1023.99 MiB`).
const BYTES_COLUMNS: usize = 23;
/// The widest `{bytes_per_sec}` with its space (` 1023.99 MiB/s`).
const SPEED_COLUMNS: usize = 14;
/// ` eta HH:MM:SS`.
const ETA_COLUMNS: usize = 13;
/// The narrowest bar worth drawing.
const MIN_BAR: usize = 10;
/// The widest bar.
const MAX_BAR: usize = 40;

/// Progress of a transfer; does nothing when hidden.
pub struct Progress {
    bar: Option<ProgressBar>,
    total_messages: usize,
    done: Cell<usize>,
}

impl Progress {
    /// A bar for `messages` messages totalling `bytes` (retrieval), if
    /// worth showing.
    pub fn new(messages: usize, bytes: u64, verbose: bool) -> Self {
        let long = bytes >= LONG_BYTES || messages >= LONG_MESSAGES;
        let label = format!("0/{}", crate::text::count(messages, "message"));
        let widest = format!("{messages}/{}", crate::text::count(messages, "message")).len();
        Progress {
            bar: shown(long, verbose).then(|| bar(bytes, label, widest)),
            total_messages: messages,
            done: Cell::new(0),
        }
    }

    /// A bar for sending a message of `bytes`, if worth showing.
    pub fn sending(bytes: u64, verbose: bool) -> Self {
        let label = "sending";
        Progress {
            bar: shown(bytes >= LONG_BYTES, verbose).then(|| bar(bytes, label.into(), label.len())),
            total_messages: 1,
            done: Cell::new(0),
        }
    }

    /// A function counting bytes as they are written, for code that knows
    /// nothing of terminals; `None` when no bar is shown.
    pub fn byte_counter(&self) -> Option<Arc<dyn Fn(u64) + Send + Sync>> {
        let bar = self.bar.clone()?;
        Some(Arc::new(move |n| bar.inc(n)))
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
            bar.set_message(format!(
                "{done}/{}",
                crate::text::count(self.total_messages, "message")
            ));
        }
    }

    /// Prints a line on stderr without garbling the bar.
    pub fn eprintln(&self, line: &str) {
        use std::io::Write as _;
        let say = || {
            let _ = writeln!(std::io::stderr(), "{line}");
        };
        match &self.bar {
            Some(bar) => bar.suspend(say),
            None => say(),
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    /// A bar never outlives its work half-drawn, whatever path ends it.
    fn drop(&mut self) {
        self.finish();
    }
}

/// Clears the line a bar may be drawn on, when stderr is a terminal: for a
/// program about to end at once, with no time to finish its bar.
pub fn clear_line() {
    use std::io::Write as _;
    let mut stderr = std::io::stderr();
    if stderr.is_terminal() {
        let _ = stderr.write_all(b"\r\x1b[2K");
        let _ = stderr.flush();
    }
}

/// Whether a bar is shown for work that is `long`.
fn shown(long: bool, verbose: bool) -> bool {
    long && !verbose && std::io::stderr().is_terminal()
}

/// A bar for `bytes` starting with `label`, fitted to stderr's width;
/// `widest` is the most columns the label takes.
fn bar(bytes: u64, label: String, widest: usize) -> ProgressBar {
    let columns = super::terminal::columns(std::io::stderr()).unwrap_or(80);
    let style = ProgressStyle::with_template(&template(columns, widest))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let bar = ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::stderr());
    bar.set_style(style);
    bar.set_message(label);
    bar
}

/// The bar's template for a terminal `columns` wide and a label up to
/// `label` columns: the speed is left out first, then the bar, so that
/// the line never reaches the last column (where a terminal would wrap it).
fn template(columns: usize, label: usize) -> String {
    let room = columns.saturating_sub(1);
    let fixed = label + 3 + 1 + BYTES_COLUMNS + ETA_COLUMNS;
    if room >= fixed + SPEED_COLUMNS + MIN_BAR {
        let width = (room - fixed - SPEED_COLUMNS).min(MAX_BAR);
        format!("{{msg}} [{{bar:{width}}}] {{bytes}}/{{total_bytes}} {{bytes_per_sec}} eta {{eta_precise}}")
    } else if room >= fixed + MIN_BAR {
        let width = (room - fixed).min(MAX_BAR);
        format!("{{msg}} [{{bar:{width}}}] {{bytes}}/{{total_bytes}} eta {{eta_precise}}")
    } else if room >= label + 1 + BYTES_COLUMNS {
        "{msg} {bytes}/{total_bytes}".to_string()
    } else {
        "{msg} {percent}%".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The widest line a template draws, with every field at its widest.
    fn widest_line(template: &str, width_of_bar: usize, label: usize) -> usize {
        let mut line = template
            .replace("{msg}", &"m".repeat(label))
            .replace("{bytes}/{total_bytes}", &"b".repeat(BYTES_COLUMNS))
            .replace("{bytes_per_sec}", &"s".repeat(SPEED_COLUMNS - 1))
            .replace("{eta_precise}", "00:00:00")
            .replace("{percent}", "100");
        if let (Some(start), Some(end)) = (line.find("{bar:"), line.find('}')) {
            line.replace_range(start..=end, &"=".repeat(width_of_bar));
        }
        line.len()
    }

    fn bar_width(template: &str) -> usize {
        template
            .split("{bar:")
            .nth(1)
            .and_then(|rest| rest.split('}').next())
            .map_or(0, |n| n.parse().unwrap())
    }

    #[test]
    fn templates_fit_every_width() {
        for columns in 30..200 {
            for label in [7, 18] {
                let template = template(columns, label);
                let widest = widest_line(&template, bar_width(&template), label);
                assert!(widest < columns, "{columns}: {template} draws {widest}");
            }
        }
        assert!(template(132, 18).contains("bytes_per_sec"));
        assert!(!template(80, 18).contains("bytes_per_sec"));
        assert!(template(80, 18).contains("{bar:"));
        assert_eq!(template(40, 18), "{msg} {percent}%");
    }
}
