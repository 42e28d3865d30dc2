//! The record of which messages were already fetched, by UIDL, per server
//! and user: `$XDG_STATE_HOME/mailctl/uidl/<server>_<user>_<hash>.json`
//! (`~/.local/state` when the variable is unset).
//!
//! The file is replaced durably (temporary file, fsync, rename, directory
//! fsync), and only ever lists messages whose files were complete and synced.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::Error;

/// The fetched UIDLs of one mailbox.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UidlState {
    /// Format version.
    pub version: u32,
    /// `host:port` of the server.
    pub server: String,
    /// The user name.
    pub user: String,
    /// Unique ids already fetched and still on the server when last seen.
    pub fetched: BTreeSet<String>,
    /// When each fetched message was first fetched, in seconds since the
    /// Unix epoch (for `--keep-days`). Files written before this was kept
    /// have none: their messages count as first fetched when next loaded.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub first_fetched: BTreeMap<String, u64>,
}

/// Seconds since the Unix epoch, now.
pub fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl UidlState {
    /// Makes `fetched` the fetched UIDLs: the times of those no longer in
    /// it are dropped, and those without one get `now`. Returns whether
    /// anything changed.
    pub fn set_fetched(&mut self, fetched: BTreeSet<String>, now: u64) -> bool {
        let mut changed = fetched != self.fetched;
        self.first_fetched.retain(|uidl, _| fetched.contains(uidl));
        for uidl in &fetched {
            if !self.first_fetched.contains_key(uidl) {
                self.first_fetched.insert(uidl.clone(), now);
                changed = true;
            }
        }
        self.fetched = fetched;
        changed
    }

    /// Whether `uidl` was first fetched at least `days` days before `now`;
    /// a message without a recorded time counts as fetched `now`.
    pub fn fetched_days_ago(&self, uidl: &str, days: u32, now: u64) -> bool {
        let first = self.first_fetched.get(uidl).copied().unwrap_or(now);
        now.saturating_sub(first) >= u64::from(days) * 86_400
    }
}

/// Where the state for `server` and `user` lives.
pub fn state_path(server: &str, user: &str) -> Result<PathBuf, Error> {
    let base = crate::system::state_dir().ok_or(Error::NoStateDir)?;
    Ok(base.join("uidl").join(file_name(server, user)))
}

/// A file name that is safe, readable and unique for the pair: readable
/// parts plus a hash of the exact pair, so distinct pairs never collide.
fn file_name(server: &str, user: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .take(60)
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '@') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let key = format!("{server}\0{user}");
    format!(
        "{}_{}_{:016x}.json",
        clean(server),
        clean(user),
        fnv1a(key.as_bytes())
    )
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

impl UidlState {
    /// Reads the state; a missing file is an empty state.
    pub fn load(path: &Path, server: &str, user: &str) -> Result<Self, Error> {
        match fs::read(path) {
            Ok(bytes) => {
                let state: UidlState =
                    serde_json::from_slice(&bytes).map_err(|source| Error::Unreadable {
                        path: path.to_path_buf(),
                        source,
                    })?;
                Ok(state)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(UidlState {
                version: 1,
                server: server.to_string(),
                user: user.to_string(),
                fetched: BTreeSet::new(),
                first_fetched: BTreeMap::new(),
            }),
            Err(source) => Err(Error::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Replaces the file durably.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        serde_json::to_vec_pretty(self)
            .map_err(io::Error::other)
            .and_then(|bytes| write_replace(path, &bytes))
            .map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })
    }
}

/// Creates `dir` and its parents, mode 0700.
fn create_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Creates the directory of the state file `path` (mode 0700) if needed,
/// so that a run which could not record what it fetched fails before
/// fetching anything (exit 73).
pub fn prepare_dir(path: &Path) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_dir(dir).map_err(|source| Error::CreateDir {
        dir: dir.to_path_buf(),
        source,
    })
}

/// Creates the directory if needed, then replaces the file durably.
pub(crate) fn write_replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    create_dir(path.parent().unwrap_or(Path::new(".")))?;
    crate::store::durable::replace(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        let mut state = UidlState::load(&path, "h:995", "u").unwrap();
        assert!(state.fetched.is_empty());
        state.fetched.insert("a".into());
        state.save(&path).unwrap();
        state.fetched.insert("b".into());
        state.save(&path).unwrap();
        let again = UidlState::load(&path, "h:995", "u").unwrap();
        assert_eq!(again, state);
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn files_without_fetch_times_still_load_and_get_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(
            &path,
            r#"{"version": 1, "server": "h:995", "user": "u", "fetched": ["a", "b"]}"#,
        )
        .unwrap();
        let mut state = UidlState::load(&path, "h:995", "u").unwrap();
        assert!(state.first_fetched.is_empty());
        // Without a time, a message counts as fetched now.
        assert!(!state.fetched_days_ago("a", 1, 1_000_000));
        assert!(state.fetched_days_ago("a", 0, 1_000_000));
        let fetched: BTreeSet<String> = ["b".to_string(), "c".to_string()].into();
        assert!(state.set_fetched(fetched.clone(), 1_000_000));
        assert!(!state.set_fetched(fetched, 2_000_000), "nothing new");
        assert_eq!(state.first_fetched.len(), 2);
        state.save(&path).unwrap();
        let again = UidlState::load(&path, "h:995", "u").unwrap();
        assert_eq!(again.first_fetched["b"], 1_000_000);
        assert!(again.fetched_days_ago("b", 3, 1_000_000 + 3 * 86_400));
        assert!(!again.fetched_days_ago("b", 3, 1_000_000 + 3 * 86_400 - 1));
        assert!(!again.fetched.contains("a"));
    }

    #[test]
    fn names_are_safe_and_distinct() {
        let a = file_name("mail.example.org:995", "bob");
        assert!(a.starts_with("mail.example.org_995_bob_"));
        assert_ne!(file_name("h", "a_b"), file_name("h", "a/b"));
        assert!(!file_name("../x", "../../y").contains('/'));
    }
}
