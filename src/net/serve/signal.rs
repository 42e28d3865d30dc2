//! Ctrl-C and SIGTERM handled by a normal thread, not in a signal handler:
//! `signal-hook` forwards them (through its own self-pipe) to an iterator.

use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Set once the handlers are installed.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Installs the handlers. The first signal runs `notify` (on a thread of
/// its own); a second one exits at once with status 130 (the user insisted).
pub fn on_shutdown_signal(notify: Box<dyn Fn() + Send>) -> std::io::Result<()> {
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return Err(std::io::Error::other("signal handlers already installed"));
    }
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut seen = 0;
            for _ in signals.forever() {
                seen += 1;
                if seen == 1 {
                    notify();
                } else {
                    eprintln!("mailctl: second signal, exiting at once");
                    std::process::exit(130);
                }
            }
        })?;
    Ok(())
}
