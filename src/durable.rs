//! Files that appear complete or not at all: written under a temporary name,
//! synced, then linked into place without ever overwriting, and the
//! directory synced.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Opens `path` for writing only if nothing (not even a symbolic link) is
/// there yet. Mode 0600 before the umask.
pub fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Flushes a directory's entries to disk, so a rename or link in it survives
/// a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A file being written under a temporary name. It becomes visible under its
/// final name only through [`PendingFile::commit`]; if dropped first, the
/// temporary file is removed.
pub struct PendingFile {
    file: Option<File>,
    tmp_path: PathBuf,
    committed: bool,
}

impl PendingFile {
    /// Creates `tmp_path` (which must not exist) for writing.
    pub fn create(tmp_path: PathBuf) -> io::Result<Self> {
        let file = create_new(&tmp_path)?;
        Ok(PendingFile {
            file: Some(file),
            tmp_path,
            committed: false,
        })
    }

    /// The temporary path being written.
    pub fn tmp_path(&self) -> &Path {
        &self.tmp_path
    }

    /// Syncs the data, links the file to `final_path` (failing with
    /// `AlreadyExists` rather than overwriting), removes the temporary name
    /// and syncs the directories involved.
    pub fn commit(mut self, final_path: &Path) -> io::Result<()> {
        let file = self.file.take().expect("file present until commit");
        file.sync_all()?;
        drop(file);
        fs::hard_link(&self.tmp_path, final_path)?;
        self.committed = true;
        fs::remove_file(&self.tmp_path)?;
        let final_dir = parent_dir(final_path);
        sync_dir(final_dir)?;
        let tmp_dir = parent_dir(&self.tmp_path);
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
        if !self.committed {
            let _ = fs::remove_file(&self.tmp_path);
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
        let mut p = PendingFile::create(tmp.clone()).unwrap();
        p.write_all(b"partial").unwrap();
        drop(p);
        assert!(!tmp.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
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
