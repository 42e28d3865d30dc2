//! Ctrl-C and SIGTERM as a byte on a socket pair (the self-pipe trick), so
//! that a normal thread, not the signal handler, runs the shutdown.
//!
//! The unsafe code here is the `signal(2)` call in `install_handler` (the
//! crate denies unsafe code; each exception is marked and explained where
//! it is). The handler itself is safe code that does nothing
//! but an atomic load and one `write(2)`, both async-signal-safe
//! (signal-safety(7)).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::OnceLock;

/// The write end of the self-pipe, set before the handler is installed.
static PIPE: OnceLock<UnixStream> = OnceLock::new();

/// The signal handler: one non-blocking write of one byte.
extern "C" fn on_signal(_signal: libc::c_int) {
    if let Some(mut pipe) = PIPE.get() {
        let _ = pipe.write(&[1]);
    }
}

/// Points SIGINT and SIGTERM at [`on_signal`].
#[allow(unsafe_code)]
fn install_handler() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: `on_signal` is an `extern "C"` function that only does
    // async-signal-safe work; `signal` has no other preconditions.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// Installs the handlers. The first signal runs `notify` (on a thread of
/// its own); a second one exits at once with status 130 (the user insisted).
pub fn on_shutdown_signal(notify: Box<dyn Fn() + Send>) -> std::io::Result<()> {
    let (mut reader, writer) = UnixStream::pair()?;
    writer.set_nonblocking(true)?;
    if PIPE.set(writer).is_err() {
        return Err(std::io::Error::other("signal handlers already installed"));
    }
    install_handler();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut byte = [0u8; 1];
            let mut seen = 0;
            while let Ok(1) = reader.read(&mut byte) {
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
