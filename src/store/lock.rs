//! Locks on files that other programs share: an mbox file (a dotlock, an
//! `fcntl` lock and an `flock` lock, the three that mutt, procmail and
//! Postfix `local` take between them) and the lock that keeps two runs of
//! `fetch` from using one UIDL state file at the same time.
//!
//! Both wait a bounded time ([`WAIT`]) for a holder to finish, then give
//! up with [`Error::Locked`] (exit 75: try again later).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::store::Error;

/// How long a lock held by someone else is waited for.
pub const WAIT: Duration = Duration::from_secs(5);

/// A dotlock older than this is taken to be left behind by a program that
/// crashed (Postfix uses 500 s).
const STALE_DOTLOCK: Duration = Duration::from_secs(300);

/// How long to sleep between attempts.
const RETRY: Duration = Duration::from_millis(100);

/// The locks held on an mbox file: the `fcntl` and `flock` locks live as
/// long as the file stays open; the dotlock is removed when this is
/// dropped.
#[derive(Debug)]
pub struct MboxLock {
    dotlock: Option<PathBuf>,
}

impl Drop for MboxLock {
    fn drop(&mut self) {
        if let Some(path) = self.dotlock.take() {
            let _ = fs::remove_file(path);
        }
    }
}

/// Which lock was in the way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// `FILE.lock` exists.
    Dotlock,
    /// A POSIX record lock (`fcntl`).
    Fcntl,
    /// An `flock` lock.
    Flock,
}

impl std::fmt::Display for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Held::Dotlock => "a dotlock",
            Held::Fcntl => "an fcntl lock",
            Held::Flock => "an flock lock",
        })
    }
}

/// Takes a dotlock, then an `fcntl` lock, then an `flock` lock on the mbox
/// `path`, open as `file` (for writing), waiting up to `wait` for other
/// holders. A dotlock that cannot be created for lack of permission on the
/// folder is skipped, as mutt does.
pub fn lock_mbox(path: &Path, file: &File, wait: Duration) -> Result<MboxLock, Error> {
    let deadline = Instant::now() + wait;
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    loop {
        let held = match take_dotlock(path).map_err(io)? {
            Attempt::Busy => Held::Dotlock,
            Attempt::Taken(dotlock) => {
                let lock = MboxLock { dotlock };
                match try_fcntl(file).map_err(io)? {
                    false => Held::Fcntl,
                    true => match try_flock(file).map_err(io)? {
                        true => return Ok(lock),
                        false => {
                            let _ = rustix::fs::fcntl_lock(
                                file,
                                rustix::fs::FlockOperation::NonBlockingUnlock,
                            );
                            Held::Flock
                        }
                    },
                }
                // `lock` drops here, removing the dotlock before waiting.
            }
        };
        if Instant::now() >= deadline {
            return Err(Error::Locked {
                path: path.to_path_buf(),
                held: held.to_string(),
            });
        }
        std::thread::sleep(RETRY);
    }
}

enum Attempt {
    /// Locked (with the dotlock's path, if one was made).
    Taken(Option<PathBuf>),
    /// Someone else holds it.
    Busy,
}

/// `FILE.lock`, created exclusively and holding our process id; a stale
/// one (its process gone, or older than [`STALE_DOTLOCK`]) is removed.
fn take_dotlock(path: &Path) -> io::Result<Attempt> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let dotlock = PathBuf::from(name);
    for _ in 0..2 {
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&dotlock)
        {
            Ok(mut f) => {
                let _ = writeln!(f, "{}", std::process::id());
                return Ok(Attempt::Taken(Some(dotlock)));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if !stale(&dotlock) {
                    return Ok(Attempt::Busy);
                }
                let _ = fs::remove_file(&dotlock);
            }
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return Ok(Attempt::Taken(None))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Attempt::Busy)
}

/// Whether a dotlock was left behind: the process it names is gone, or it
/// is older than [`STALE_DOTLOCK`].
fn stale(dotlock: &Path) -> bool {
    let old = fs::metadata(dotlock)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age > STALE_DOTLOCK);
    if old {
        return true;
    }
    let pid = fs::read_to_string(dotlock)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .and_then(rustix::process::Pid::from_raw);
    match pid {
        Some(pid) => rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH),
        None => false,
    }
}

/// A non-blocking exclusive `fcntl` lock on the whole file.
fn try_fcntl(file: &File) -> io::Result<bool> {
    use rustix::io::Errno;
    match rustix::fs::fcntl_lock(file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(Errno::AGAIN | Errno::ACCESS) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A non-blocking exclusive `flock` lock: whether it was taken.
pub fn try_flock(file: &File) -> io::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(fs::TryLockError::WouldBlock) => Ok(false),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

/// The lock that lets one run at a time use a UIDL state file: `flock` on
/// `STATE.lock`, held while the value lives.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

/// Takes the lock for the state file `state`, waiting up to `wait`.
pub fn lock_state(state: &Path, wait: Duration) -> Result<StateLock, Error> {
    let mut name = state.as_os_str().to_owned();
    name.push(".lock");
    let path = PathBuf::from(name);
    let io = |source| Error::Io {
        path: path.clone(),
        source,
    };
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io)?;
    let deadline = Instant::now() + wait;
    loop {
        if try_flock(&file).map_err(io)? {
            return Ok(StateLock { _file: file });
        }
        if Instant::now() >= deadline {
            return Err(Error::Busy { path });
        }
        std::thread::sleep(RETRY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(path: &Path) -> File {
        OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .unwrap()
    }

    #[test]
    fn a_live_dotlock_blocks_and_a_dead_one_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("box");
        let file = open(&mbox);
        let dotlock = dir.path().join("box.lock");
        fs::write(&dotlock, format!("{}\n", std::process::id())).unwrap();
        let err = lock_mbox(&mbox, &file, Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, Error::Locked { .. }), "{err}");
        // A process id nobody has.
        fs::write(&dotlock, "2147483600\n").unwrap();
        let lock = lock_mbox(&mbox, &file, Duration::ZERO).unwrap();
        assert!(dotlock.exists());
        drop(lock);
        assert!(!dotlock.exists());
    }

    #[test]
    fn a_second_state_lock_waits_then_gives_up() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s.json");
        let held = lock_state(&state, Duration::ZERO).unwrap();
        let err = lock_state(&state, Duration::from_millis(150)).unwrap_err();
        assert!(matches!(err, Error::Busy { .. }));
        drop(held);
        lock_state(&state, Duration::ZERO).unwrap();
    }
}
