//! Ctrl-C and SIGTERM as a byte on a pipe (the self-pipe trick), so that a
//! normal thread, not the signal handler, runs the shutdown.
//!
//! This is the only unsafe code in mailctl: installing the handler with
//! `signal(2)` and calling `write(2)` from it, which is async-signal-safe.
//! Both sit in two small functions below.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicI32, Ordering};

/// The write end of the self-pipe, read by the handler (-1: none yet).
static PIPE_WRITE_FD: AtomicI32 = AtomicI32::new(-1);

/// The signal handler: writes one byte to the pipe. It only touches an
/// atomic and calls `write(2)`, both allowed in a handler (signal-safety(7)).
#[allow(unsafe_code)]
extern "C" fn on_signal(_signal: libc::c_int) {
    let fd = PIPE_WRITE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = 1u8;
        // SAFETY: `fd` is a valid descriptor kept open for the whole process
        // (leaked below) and the buffer is one live byte on the stack.
        unsafe {
            libc::write(fd, (&byte as *const u8).cast(), 1);
        }
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
    let writer: OwnedFd = writer.into();
    PIPE_WRITE_FD.store(writer.as_raw_fd(), Ordering::Relaxed);
    // The write end must stay open as long as the handler may run.
    std::mem::forget(writer);
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
