//! Maildir delivery and listing (<https://cr.yp.to/proto/maildir.html>):
//! the one Maildir writer, used by `fetch --maildir` and by the server.
//!
//! A message is written into `tmp/` under a unique name, its data synced,
//! moved into `new/` (never overwriting) and `new/` synced. Where Linux and
//! the file system allow it, the file in `tmp/` has no name (`O_TMPFILE`,
//! see [`crate::store::durable`]) and is linked into `new/` once synced: a
//! crash mid-delivery then leaves nothing to clean up. Elsewhere it is a
//! named file in `tmp/`, renamed without replacing.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::store::durable::PendingFile;

static DELIVERY_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A Maildir folder with its `tmp`, `new` and `cur` subfolders.
#[derive(Clone, Debug)]
pub struct Maildir {
    root: PathBuf,
    /// Whether deliveries start as unnamed files.
    unnamed: bool,
}

/// One message found in a Maildir.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaildirEntry {
    /// Full path of the message file.
    pub path: PathBuf,
    /// The unique part of the file name (before any `:2,` flags), stable
    /// for the life of the message.
    pub unique: String,
    /// Size in bytes.
    pub size: u64,
}

impl Maildir {
    /// Opens a Maildir, creating it and its subfolders (mode 0700) if needed.
    pub fn create(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        for sub in ["tmp", "new", "cur"] {
            let dir = root.join(sub);
            if !dir.is_dir() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode_private()
                    .create(&dir)?;
            }
        }
        Ok(Maildir {
            root,
            unnamed: crate::store::durable::unnamed_files_work(),
        })
    }

    /// The same Maildir, with deliveries written as unnamed files in `tmp/`
    /// (`true`, where the system allows) or under a name there (`false`).
    pub fn with_unnamed(mut self, unnamed: bool) -> Self {
        self.unnamed = unnamed && crate::store::durable::unnamed_files_work();
        self
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Starts a delivery: write the message into the returned value, then
    /// [`Delivery::commit`] it.
    pub fn deliver(&self) -> io::Result<Delivery> {
        let unique = unique_name();
        let tmp = self.root.join("tmp").join(&unique);
        let pending = if self.unnamed {
            PendingFile::create(tmp)?
        } else {
            PendingFile::create_named(tmp)?
        };
        Ok(Delivery {
            pending,
            final_path: self.root.join("new").join(&unique),
            len: 0,
        })
    }

    /// Lists the messages in `new/` and `cur/`, oldest first (by the
    /// delivery time their names start with).
    pub fn list(&self) -> io::Result<Vec<MaildirEntry>> {
        let mut entries = Vec::new();
        for sub in ["new", "cur"] {
            for item in fs::read_dir(self.root.join(sub))? {
                let item = item?;
                let name = item.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                let meta = match item.metadata() {
                    Ok(m) if m.is_file() => m,
                    _ => continue,
                };
                let unique = name.split(':').next().unwrap_or(&name).to_string();
                entries.push(MaildirEntry {
                    path: item.path(),
                    unique,
                    size: meta.len(),
                });
            }
        }
        entries.sort_by_cached_key(|e| arrival_key(&e.unique));
        Ok(entries)
    }
}

/// Orders Maildir names by delivery time: `SECONDS.M<micros>...` compared
/// numerically (a plain string sort puts `M99` after `M100`); names of
/// another form come last, by name.
fn arrival_key(unique: &str) -> (u64, u64, String) {
    let mut parts = unique.splitn(3, '.');
    let secs = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX);
    let micros = parts
        .next()
        .and_then(|p| p.strip_prefix('M'))
        .map(|p| {
            p.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|d| d.parse().ok())
        .unwrap_or(u64::MAX);
    (secs, micros, unique.to_string())
}

trait PrivateDir {
    fn mode_private(&mut self) -> &mut Self;
}

impl PrivateDir for fs::DirBuilder {
    fn mode_private(&mut self) -> &mut Self {
        use std::os::unix::fs::DirBuilderExt;
        self.mode(0o700)
    }
}

/// A message being delivered into a Maildir; dropped before it is
/// committed, it leaves nothing behind.
pub struct Delivery {
    pending: PendingFile,
    final_path: PathBuf,
    len: u64,
}

impl Delivery {
    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where the message will be once committed.
    pub fn path(&self) -> &Path {
        &self.final_path
    }

    /// Syncs the message, moves it into `new/` and syncs `new/`; returns
    /// its path.
    pub fn commit(self) -> io::Result<PathBuf> {
        self.pending.commit(&self.final_path)?;
        Ok(self.final_path)
    }

    /// Syncs the message and moves it into `new/` without syncing `new/`:
    /// for a caller that syncs the folder once for several deliveries.
    pub fn link(self) -> io::Result<PathBuf> {
        self.pending.link(&self.final_path)?;
        Ok(self.final_path)
    }
}

impl Write for Delivery {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.pending.write(buf)?;
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.pending.flush()
    }
}

/// A file name unique across processes and hosts:
/// `SECONDS.M<micros>P<pid>Q<counter>.<host>`.
fn unique_name() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let counter = DELIVERY_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{}.M{}P{}Q{}.{}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        counter,
        crate::system::hostname()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliver_then_list() {
        for unnamed in [false, true] {
            deliver_then_list_with(unnamed);
        }
    }

    fn deliver_then_list_with(unnamed: bool) {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::create(dir.path().join("box"))
            .unwrap()
            .with_unnamed(unnamed);
        let mut d = md.deliver().unwrap();
        d.write_all(b"Subject: a\r\n\r\nbody\r\n").unwrap();
        assert_eq!(d.len(), 20);
        let path = d.commit().unwrap();
        assert!(path.starts_with(dir.path().join("box/new")));
        let abandoned = md.deliver().unwrap();
        drop(abandoned);
        assert_eq!(fs::read_dir(md.root().join("tmp")).unwrap().count(), 0);
        let list = md.list().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].size, 20);
        assert!(!list[0].unique.contains('/'));
        assert_ne!(unique_name(), unique_name());
    }

    #[test]
    fn arrival_order_is_numeric() {
        let mut names = vec![
            "100.M99P1Q2.h",
            "100.M100P1Q1.h",
            "99.M5P1Q0.h",
            "weird",
            "100.M100P1Q0.h",
        ];
        names.sort_by_cached_key(|n| arrival_key(n));
        assert_eq!(
            names,
            [
                "99.M5P1Q0.h",
                "100.M99P1Q2.h",
                "100.M100P1Q0.h",
                "100.M100P1Q1.h",
                "weird"
            ]
        );
    }
}
