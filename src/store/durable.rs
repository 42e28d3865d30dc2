//! Files that appear complete or not at all: written unnamed (Linux
//! `O_TMPFILE`) or under a temporary name, synced, then linked into place
//! without ever overwriting, and the directory synced.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Open flags for a file that must not be reached through a symbolic link
/// (`O_NOFOLLOW | O_CLOEXEC`), for [`OpenOptionsExt::custom_flags`].
pub const NO_FOLLOW: i32 = rustix::fs::OFlags::NOFOLLOW
    .union(rustix::fs::OFlags::CLOEXEC)
    .bits() as i32;

/// Opens `path` for writing only if nothing (not even a symbolic link) is
/// there yet. Mode 0600 before the umask.
pub fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(NO_FOLLOW)
        .open(path)
}

/// Opens a new file in `dir`, for reading and writing, that has no name
/// yet (Linux `O_TMPFILE`, mode 0600 before the umask). It gets one only through [`link_unnamed`],
/// so a crash or an error before that leaves nothing behind. `Ok(None)`
/// where the kernel or the file system cannot make such files.
pub fn create_unnamed(dir: &Path) -> io::Result<Option<File>> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{Mode, OFlags};
        use rustix::io::Errno;
        let opened = rustix::fs::open(
            dir,
            OFlags::RDWR | OFlags::TMPFILE | OFlags::CLOEXEC,
            Mode::RUSR | Mode::WUSR,
        );
        match opened {
            Ok(fd) => Ok(Some(File::from(fd))),
            // No O_TMPFILE in this kernel (EISDIR: flag read as
            // O_DIRECTORY) or file system.
            Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        Ok(None)
    }
}

/// Gives a file made by [`create_unnamed`] the name `path`, which must not
/// exist: fails with `AlreadyExists` rather than replacing anything. Uses
/// `/proc/self/fd`, as open(2) describes for `O_TMPFILE`.
pub fn link_unnamed(file: &File, path: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{AtFlags, CWD};
        use std::os::fd::AsRawFd;
        let from = format!("/proc/self/fd/{}", file.as_raw_fd());
        Ok(rustix::fs::linkat(
            CWD,
            from.as_str(),
            CWD,
            path,
            AtFlags::SYMLINK_FOLLOW,
        )?)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, path);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "unnamed files are not supported here",
        ))
    }
}

/// Whether files made by [`create_unnamed`] can be given a name here: it
/// goes through `/proc/self/fd`, which a chroot or container may lack.
pub fn unnamed_files_work() -> bool {
    static WORKS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WORKS.get_or_init(|| cfg!(target_os = "linux") && Path::new("/proc/self/fd").is_dir())
}

/// Moves `from` to `to`, failing with `AlreadyExists` rather than replacing
/// anything at `to`. One `renameat2(RENAME_NOREPLACE)` call where the kernel
/// and file system support it (one directory operation instead of a link
/// and an unlink); otherwise a hard link, then the old name removed.
pub fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::fs::{RenameFlags, CWD};
        use rustix::io::Errno;
        match rustix::fs::renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {}
            Err(e) => return Err(e.into()),
        }
    }
    link_then_unlink(from, to)
}

/// [`rename_no_replace`] without `renameat2`: a hard link, which never
/// replaces, then the old name removed.
fn link_then_unlink(from: &Path, to: &Path) -> io::Result<()> {
    fs::hard_link(from, to)?;
    let _ = fs::remove_file(from);
    Ok(())
}

/// Flushes a directory's entries to disk, so a rename or link in it survives
/// a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A file being written that appears under its final name only through
/// [`PendingFile::commit`]. It has no name at all until then where the
/// system allows ([`create_unnamed`]), else the temporary name given; if
/// dropped first, nothing is left.
pub struct PendingFile {
    file: Option<File>,
    /// The temporary name, `None` for an unnamed file.
    tmp_path: Option<PathBuf>,
    committed: bool,
}

impl PendingFile {
    /// Starts a file in the folder of `tmp_path`: unnamed if possible, else
    /// as `tmp_path` (which must not exist).
    pub fn create(tmp_path: PathBuf) -> io::Result<Self> {
        if unnamed_files_work() {
            if let Some(file) = create_unnamed(parent_dir(&tmp_path))? {
                return Ok(PendingFile {
                    file: Some(file),
                    tmp_path: None,
                    committed: false,
                });
            }
        }
        Self::create_named(tmp_path)
    }

    /// Starts a file under the temporary name `tmp_path` (which must not
    /// exist).
    pub fn create_named(tmp_path: PathBuf) -> io::Result<Self> {
        let file = create_new(&tmp_path)?;
        Ok(PendingFile {
            file: Some(file),
            tmp_path: Some(tmp_path),
            committed: false,
        })
    }

    /// Syncs the data, links the file to `final_path` (failing with
    /// `AlreadyExists` rather than overwriting), removes any temporary name
    /// and syncs the directories involved.
    pub fn commit(mut self, final_path: &Path) -> io::Result<()> {
        let file = self.file.take().expect("file present until commit");
        file.sync_data()?;
        let final_dir = parent_dir(final_path);
        let Some(tmp_path) = self.tmp_path.clone() else {
            link_unnamed(&file, final_path)?;
            self.committed = true;
            return sync_dir(final_dir);
        };
        drop(file);
        fs::hard_link(&tmp_path, final_path)?;
        self.committed = true;
        fs::remove_file(&tmp_path)?;
        sync_dir(final_dir)?;
        let tmp_dir = parent_dir(&tmp_path);
        if tmp_dir != final_dir {
            sync_dir(tmp_dir)?;
        }
        Ok(())
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

impl Write for PendingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.as_mut().expect("file present").write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().expect("file present").flush()
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if let (false, Some(tmp_path)) = (self.committed, &self.tmp_path) {
            let _ = fs::remove_file(tmp_path);
        }
    }
}

/// Writes `bytes` to `path` durably, never overwriting: a temporary file
/// next to it, synced, then linked into place.
pub fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let mut pending = PendingFile::create(tmp)?;
    pending.write_all(bytes)?;
    pending.commit(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_never_overwrites_and_drop_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.txt");
        write_new(&target, b"one").unwrap();
        let err = write_new(&target, b"two").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&target).unwrap(), b"one");

        let tmp = dir.path().join("pending.tmp");
        for named in [true, false] {
            let mut p = if named {
                PendingFile::create_named(tmp.clone()).unwrap()
            } else {
                PendingFile::create(tmp.clone()).unwrap()
            };
            p.write_all(b"partial").unwrap();
            // A named file is there while it is written.
            assert_eq!(tmp.exists(), named || !unnamed_files_work());
            drop(p);
            assert!(!tmp.exists());
            assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        }
    }

    #[test]
    fn named_and_unnamed_commits() {
        let dir = tempfile::tempdir().unwrap();
        for (named, name) in [(true, "named.txt"), (false, "unnamed.txt")] {
            let tmp = dir.path().join(format!("{name}.tmp"));
            let mut p = if named {
                PendingFile::create_named(tmp.clone()).unwrap()
            } else {
                PendingFile::create(tmp.clone()).unwrap()
            };
            p.write_all(name.as_bytes()).unwrap();
            let target = dir.path().join(name);
            p.commit(&target).unwrap();
            assert_eq!(fs::read(&target).unwrap(), name.as_bytes());
            assert!(!tmp.exists());
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn unnamed_files_appear_only_when_linked_and_never_replace() {
        let dir = tempfile::tempdir().unwrap();
        if !unnamed_files_work() {
            eprintln!("no O_TMPFILE support here; nothing to test");
            return;
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        let mut file = create_unnamed(dir.path()).unwrap().unwrap();
        file.write_all(b"message").unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        let target = dir.path().join("named");
        fs::write(&target, b"old").unwrap();
        let err = link_unnamed(&file, &target).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&target).unwrap(), b"old");
        fs::remove_file(&target).unwrap();
        link_unnamed(&file, &target).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"message");
        // Dropped without a name, a file leaves nothing.
        drop(create_unnamed(dir.path()).unwrap().unwrap());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn moves_never_replace() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        for rename in [rename_no_replace, link_then_unlink] {
            fs::write(&a, b"new").unwrap();
            fs::write(&b, b"old").unwrap();
            let err = rename(&a, &b).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
            assert_eq!(fs::read(&b).unwrap(), b"old");
            assert_eq!(fs::read(&a).unwrap(), b"new");
            fs::remove_file(&b).unwrap();
            rename(&a, &b).unwrap();
            assert!(!a.exists());
            assert_eq!(fs::read(&b).unwrap(), b"new");
            fs::remove_file(&b).unwrap();
        }
    }

    #[test]
    fn create_new_refuses_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &link).unwrap();
        assert!(create_new(&link).is_err());
        assert!(!dir.path().join("elsewhere").exists());
    }
}
