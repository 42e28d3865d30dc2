//! The journal of `fetch`: one line per message, appended as the message
//! becomes durable, beside the UIDL state file (`STATE.journal`). A run
//! folds it into the state file when it ends; a run that was killed leaves
//! it behind, and the next run folds it in first ([`recover`]), so nothing
//! saved is fetched again.
//!
//! Where the destination can be checked, the line is written *before* the
//! message becomes visible and names where it will be: the next run counts
//! the message as fetched only if it is there. A kill at any moment then
//! neither loses a message nor saves one twice. Where it cannot be checked
//! (a delivery program, standard output) the line is written once the
//! delivery succeeded, so a kill in between delivers that one message
//! again.
//!
//! Lines are words separated by spaces, each word percent-encoded:
//! - `D uidl`: delivered.
//! - `F uidl path`: will be at `path` (a Maildir message may since have
//!   moved from `new/` to `cur/`).
//! - `B path start`: a message is being appended to the mbox `path` at
//!   offset `start`.
//! - `M uidl path start end`: appended to the mbox `path`, bytes `start`
//!   to `end`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::store::Error;

/// The journal of a state file, open for appending.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

/// One line of the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// Delivered where it cannot be checked.
    Delivered {
        /// The message's UIDL.
        uidl: String,
    },
    /// About to appear at `path`.
    File {
        /// The message's UIDL.
        uidl: String,
        /// Where it will be.
        path: PathBuf,
    },
    /// An mbox append starts.
    Begin {
        /// The mbox file.
        path: PathBuf,
        /// Its length before the message.
        start: u64,
    },
    /// An mbox append is complete.
    Mbox {
        /// The message's UIDL.
        uidl: String,
        /// The mbox file.
        path: PathBuf,
        /// Where the message starts.
        start: u64,
        /// Where it ends.
        end: u64,
    },
}

/// What an interrupted run left: the UIDLs of messages that are safely at
/// their destination, and mbox files with a message cut off at their end.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Messages saved.
    pub uidls: Vec<String>,
    /// `(mbox, offset)`: the mbox holds part of a message from `offset` on.
    pub torn: Vec<(PathBuf, u64)>,
}

/// `STATE.journal` for the state file `state`.
pub fn journal_path(state: &Path) -> PathBuf {
    let mut name = state.as_os_str().to_owned();
    name.push(".journal");
    PathBuf::from(name)
}

impl Journal {
    /// Opens (creating, mode 0600) the journal for appending.
    pub fn open(path: &Path) -> Result<Journal, Error> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Journal {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// Appends a line, in one write.
    pub fn record(&self, line: &Line) -> io::Result<()> {
        let text = line.encode();
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(&text)
    }

    /// Removes the journal at the end of a run, once the state file holds
    /// what it said.
    pub fn remove(&self) -> Result<(), Error> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Empties the journal, once the state file holds what it said.
    pub fn clear(&self) -> Result<(), Error> {
        let file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.set_len(0).map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })
    }
}

impl Line {
    fn encode(&self) -> Vec<u8> {
        let text = |s: &str| s.as_bytes().to_vec();
        let path = |p: &Path| p.as_os_str().as_bytes().to_vec();
        let number = |n: &u64| n.to_string().into_bytes();
        let words = match self {
            Line::Delivered { uidl } => vec![text("D"), text(uidl)],
            Line::File { uidl, path: p } => vec![text("F"), text(uidl), path(p)],
            Line::Begin { path: p, start } => vec![text("B"), path(p), number(start)],
            Line::Mbox {
                uidl,
                path: p,
                start,
                end,
            } => {
                vec![text("M"), text(uidl), path(p), number(start), number(end)]
            }
        };
        let mut out = Vec::with_capacity(128);
        for (i, word) in words.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            for &b in word {
                if b.is_ascii_graphic() && b != b'%' {
                    out.push(b);
                } else {
                    out.extend_from_slice(format!("%{b:02x}").as_bytes());
                }
            }
        }
        out.push(b'\n');
        out
    }

    /// Parses one line; `None` for anything else (such as a line cut off
    /// by a crash).
    fn decode(line: &[u8]) -> Option<Line> {
        let words: Vec<Vec<u8>> = line
            .split(|&b| b == b' ')
            .map(unescape)
            .collect::<Option<_>>()?;
        let text = |w: &Vec<u8>| String::from_utf8(w.clone()).ok();
        let path = |w: &Vec<u8>| PathBuf::from(std::ffi::OsString::from_vec(w.clone()));
        let number = |w: &Vec<u8>| text(w)?.parse::<u64>().ok();
        Some(match words.as_slice() {
            [k, u] if k == b"D" => Line::Delivered { uidl: text(u)? },
            [k, u, p] if k == b"F" => Line::File {
                uidl: text(u)?,
                path: path(p),
            },
            [k, p, s] if k == b"B" => Line::Begin {
                path: path(p),
                start: number(s)?,
            },
            [k, u, p, s, e] if k == b"M" => Line::Mbox {
                uidl: text(u)?,
                path: path(p),
                start: number(s)?,
                end: number(e)?,
            },
            _ => return None,
        })
    }
}

fn unescape(word: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(word.len());
    let mut i = 0;
    while i < word.len() {
        if word[i] == b'%' {
            let hex = std::str::from_utf8(word.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(word[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Reads the journal at `path` (missing: nothing to recover) and checks
/// each line against the destination.
pub fn recover(path: &Path) -> Result<Recovered, Error> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Recovered::default()),
        Err(source) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let mut found = Recovered::default();
    // Per mbox: the append in progress when the journal ends, if any.
    let mut open_append: Vec<(PathBuf, Option<u64>)> = Vec::new();
    let mut set_open =
        |p: &Path, start: Option<u64>| match open_append.iter_mut().find(|(q, _)| q == p) {
            Some(entry) => entry.1 = start,
            None => open_append.push((p.to_path_buf(), start)),
        };
    for line in bytes.split(|&b| b == b'\n').filter_map(Line::decode) {
        match line {
            Line::Delivered { uidl } => found.uidls.push(uidl),
            Line::File { uidl, path } => {
                if present(&path) {
                    found.uidls.push(uidl);
                }
            }
            Line::Begin { path, start } => set_open(&path, Some(start)),
            Line::Mbox {
                uidl,
                path,
                start,
                end,
            } => {
                let len = fs::metadata(&path).map_or(0, |m| m.len());
                if len >= end {
                    found.uidls.push(uidl);
                    set_open(&path, None);
                } else {
                    set_open(&path, Some(start));
                }
            }
        }
    }
    for (path, start) in open_append {
        if let Some(start) = start {
            if fs::metadata(&path).is_ok_and(|m| m.len() > start) {
                found.torn.push((path, start));
            }
        }
    }
    Ok(found)
}

/// Whether a message file is there: at `path`, or, for a Maildir message
/// in `new/`, moved to `cur/` with flags added to its name.
fn present(path: &Path) -> bool {
    if fs::symlink_metadata(path).is_ok() {
        return true;
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return false;
    };
    if dir.file_name() != Some(std::ffi::OsStr::new("new")) {
        return false;
    }
    let Some(root) = dir.parent() else {
        return false;
    };
    let mut prefix = name.as_bytes().to_vec();
    prefix.push(b':');
    fs::read_dir(root.join("cur")).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().as_bytes().starts_with(&prefix))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_torn_lines_are_ignored() {
        let lines = [
            Line::Delivered {
                uidl: "a%b c".into(),
            },
            Line::File {
                uidl: "u".into(),
                path: PathBuf::from(std::ffi::OsString::from_vec(b"/x y/\n\xff".to_vec())),
            },
            Line::Begin {
                path: "/m".into(),
                start: 7,
            },
            Line::Mbox {
                uidl: "v".into(),
                path: "/m".into(),
                start: 7,
                end: 9,
            },
        ];
        for l in &lines {
            let text = l.encode();
            assert_eq!(text.iter().filter(|&&b| b == b'\n').count(), 1);
            assert_eq!(Line::decode(&text[..text.len() - 1]).as_ref(), Some(l));
        }
        assert_eq!(Line::decode(b"M v /m 7"), None);
        assert_eq!(Line::decode(b"F u"), None);
    }

    #[test]
    fn recovery_counts_only_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let md = dir.path().join("md");
        for sub in ["new", "cur"] {
            fs::create_dir_all(md.join(sub)).unwrap();
        }
        fs::write(md.join("new/one"), "x").unwrap();
        fs::write(md.join("cur/two:2,S"), "x").unwrap();
        let mbox = dir.path().join("mbox");
        fs::write(&mbox, vec![b'x'; 150]).unwrap();
        let jpath = dir.path().join("s.journal");
        let j = Journal::open(&jpath).unwrap();
        let file = |u: &str, p: PathBuf| Line::File {
            uidl: u.into(),
            path: p,
        };
        j.record(&file("one", md.join("new/one"))).unwrap();
        j.record(&file("two", md.join("new/two"))).unwrap();
        j.record(&file("gone", md.join("new/three"))).unwrap();
        j.record(&Line::Delivered { uidl: "d".into() }).unwrap();
        j.record(&Line::Begin {
            path: mbox.clone(),
            start: 0,
        })
        .unwrap();
        j.record(&Line::Mbox {
            uidl: "m1".into(),
            path: mbox.clone(),
            start: 0,
            end: 100,
        })
        .unwrap();
        j.record(&Line::Begin {
            path: mbox.clone(),
            start: 100,
        })
        .unwrap();
        let r = recover(&jpath).unwrap();
        assert_eq!(r.uidls, ["one", "two", "d", "m1"]);
        assert_eq!(r.torn, [(mbox, 100)]);
        j.clear().unwrap();
        assert!(recover(&jpath).unwrap().uidls.is_empty());
        assert!(recover(&dir.path().join("none")).unwrap().uidls.is_empty());
    }
}
