//! The message index behind `serve --http`: one short summary per stored
//! message (never its body), over every mailbox under the `--maildir`
//! directory, kept up to date by rescanning the Maildirs' `new/` and `cur/`.
//!
//! A message's id is its POP3 UIDL ([`crate::store::mailbox::uidl`]) when that
//! is safe in a URL, its MD5 otherwise: it comes from the file name alone, so
//! it stays the same across restarts, and a message removed by POP3 `DELE`
//! is gone from the index at the next scan.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::mail::extract::{Limits, Role};
use crate::proto::users::mailbox_name;
use crate::store::mailbox::uidl;
use crate::store::maildir::{Maildir, MaildirEntry};

/// Only this much of a message is decoded for its summary.
const SUMMARY_BYTES: u64 = 4 * 1024 * 1024;

/// A folder stamp younger than this is not trusted to show every change
/// (file times have a coarse clock): the folder is listed again.
const STAMP_MARGIN: Duration = Duration::from_secs(2);

/// What the message list shows of one message.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Listing {
    /// Stable id (see the module documentation).
    pub id: String,
    /// The mailbox holding it.
    pub mailbox: String,
    /// `From`, decoded.
    pub from: Option<String>,
    /// `To`, decoded.
    pub to: Option<String>,
    /// `Subject`, decoded.
    pub subject: Option<String>,
    /// `Date`, as the sender wrote it.
    pub date: Option<String>,
    /// When it was stored, RFC 3339 UTC.
    pub received: String,
    /// Size in bytes as stored.
    pub size: u64,
    /// Attachments and inline parts (pictures referenced by the HTML).
    pub attachments: usize,
}

/// One indexed message: its listing and where it is.
#[derive(Debug)]
pub struct Indexed {
    /// What lists show.
    pub listing: Listing,
    /// The message file.
    pub path: PathBuf,
    /// When it was stored, seconds after the epoch.
    pub received_secs: u64,
    /// Maildir arrival order: the file name's unique part.
    unique: String,
}

/// The messages of every mailbox, oldest first.
#[derive(Default)]
struct Entries {
    /// By id.
    by_id: HashMap<String, Arc<Indexed>>,
    /// Folder stamps (modification times of `new/` and `cur/`) at the last
    /// listing, by mailbox.
    stamps: HashMap<String, (SystemTime, SystemTime)>,
}

/// The index over the directory of mailboxes.
pub struct MessageIndex {
    root: PathBuf,
    entries: Mutex<Entries>,
    /// Held while scanning, so that two scans do not decode the same files.
    scanning: Mutex<()>,
}

/// What to list ([`MessageIndex::query`]).
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Only this mailbox.
    pub mailbox: Option<String>,
    /// `From` contains this (ignoring case).
    pub from: Option<String>,
    /// `To` or the mailbox name contains this (ignoring case): a message
    /// without `To` is found by the recipient's mailbox.
    pub to: Option<String>,
    /// `Subject` contains this (ignoring case).
    pub subject: Option<String>,
    /// Stored at or after this time (seconds after the epoch).
    pub since: Option<u64>,
}

impl Filter {
    /// Whether a message passes the filter.
    pub fn accepts(&self, m: &Indexed) -> bool {
        let contains = |field: &Option<String>, needle: &Option<String>| match needle {
            None => true,
            Some(n) => field
                .as_deref()
                .is_some_and(|f| f.to_lowercase().contains(&n.to_lowercase())),
        };
        let l = &m.listing;
        self.mailbox.as_ref().is_none_or(|b| *b == l.mailbox)
            && contains(&l.from, &self.from)
            && (contains(&l.to, &self.to) || contains(&Some(l.mailbox.clone()), &self.to))
            && contains(&l.subject, &self.subject)
            && self.since.is_none_or(|s| m.received_secs >= s)
    }
}

impl MessageIndex {
    /// An empty index over `root`; call [`MessageIndex::scan`] to fill it.
    pub fn new(root: &Path) -> MessageIndex {
        MessageIndex {
            root: root.to_path_buf(),
            entries: Mutex::new(Entries::default()),
            scanning: Mutex::new(()),
        }
    }

    fn entries(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The mailboxes present, sorted.
    pub fn mailboxes(&self) -> Vec<String> {
        let mut names: Vec<String> = match fs::read_dir(&self.root) {
            Ok(dir) => dir
                .filter_map(Result::ok)
                .filter(|e| e.path().join("new").is_dir())
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| mailbox_name(n).as_deref() == Some(n.as_str()))
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
    }

    /// Brings the index up to date with the folders; returns the messages
    /// added, oldest first.
    pub fn scan(&self) -> Vec<Arc<Indexed>> {
        let _scanning = self.scanning.lock().unwrap_or_else(|e| e.into_inner());
        let mut added = Vec::new();
        let mailboxes = self.mailboxes();
        for name in &mailboxes {
            added.extend(self.scan_mailbox(name));
        }
        let mut entries = self.entries();
        let gone: Vec<String> = entries
            .stamps
            .keys()
            .filter(|m| !mailboxes.contains(m))
            .cloned()
            .collect();
        for name in gone {
            entries.stamps.remove(&name);
            entries.by_id.retain(|_, m| m.listing.mailbox != name);
        }
        added
    }

    fn scan_mailbox(&self, name: &str) -> Vec<Arc<Indexed>> {
        let folder = self.root.join(name);
        let stamp = |sub: &str| fs::metadata(folder.join(sub)).and_then(|m| m.modified());
        let (Ok(new), Ok(cur)) = (stamp("new"), stamp("cur")) else {
            return Vec::new();
        };
        let settled = SystemTime::now()
            .duration_since(new.max(cur))
            .is_ok_and(|age| age > STAMP_MARGIN);
        if settled && self.entries().stamps.get(name) == Some(&(new, cur)) {
            return Vec::new();
        }
        let Ok(listed) = Maildir::create(&folder).and_then(|m| m.list()) else {
            return Vec::new();
        };
        // Files not indexed yet, or moved (new/ to cur/), and whether each
        // is new to the index.
        let changed: Vec<(&MaildirEntry, bool)> = {
            let entries = self.entries();
            listed
                .iter()
                .filter_map(|e| match entries.by_id.get(&message_id(&e.unique)) {
                    Some(m) if m.path == e.path => None,
                    known => Some((e, known.is_none())),
                })
                .collect()
        };
        let mut added = Vec::new();
        let mut moved = Vec::new();
        for (entry, fresh) in changed {
            if let Some(indexed) = summarize(name, entry) {
                if fresh { &mut added } else { &mut moved }.push(Arc::new(indexed));
            }
        }
        let present: HashSet<&str> = listed.iter().map(|e| e.unique.as_str()).collect();
        let mut entries = self.entries();
        entries
            .by_id
            .retain(|_, m| m.listing.mailbox != name || present.contains(m.unique.as_str()));
        for m in added.iter().chain(&moved) {
            entries.by_id.insert(m.listing.id.clone(), m.clone());
        }
        entries.stamps.insert(name.to_string(), (new, cur));
        added
    }

    /// Indexes messages just delivered (`root/MAILBOX/new/NAME`) without
    /// listing their folders; returns those that were not indexed yet.
    pub fn add_delivered(&self, paths: &[PathBuf]) -> Vec<Arc<Indexed>> {
        let _scanning = self.scanning.lock().unwrap_or_else(|e| e.into_inner());
        let mut added = Vec::new();
        for path in paths {
            let mailbox = path
                .parent()
                .and_then(Path::parent)
                .and_then(Path::file_name);
            let (Some(mailbox), Some(name)) = (mailbox.and_then(|m| m.to_str()), path.file_name())
            else {
                continue;
            };
            let name = name.to_string_lossy();
            let entry = MaildirEntry {
                path: path.clone(),
                unique: name.split(':').next().unwrap_or(&name).to_string(),
                size: fs::metadata(path).map_or(0, |m| m.len()),
            };
            if self
                .entries()
                .by_id
                .contains_key(&message_id(&entry.unique))
            {
                continue;
            }
            if let Some(indexed) = summarize(mailbox, &entry) {
                let indexed = Arc::new(indexed);
                self.entries()
                    .by_id
                    .insert(indexed.listing.id.clone(), indexed.clone());
                added.push(indexed);
            }
        }
        added
    }

    /// The messages passing `filter`, newest first: the total and the
    /// `limit` of them after skipping `offset`.
    pub fn query(
        &self,
        filter: &Filter,
        offset: usize,
        limit: usize,
    ) -> (usize, Vec<Arc<Indexed>>) {
        let mut hits: Vec<Arc<Indexed>> = self
            .entries()
            .by_id
            .values()
            .filter(|m| filter.accepts(m))
            .cloned()
            .collect();
        hits.sort_by(|a, b| newest_first(a, b));
        let total = hits.len();
        (total, hits.into_iter().skip(offset).take(limit).collect())
    }

    /// The message with this id.
    pub fn get(&self, id: &str) -> Option<Arc<Indexed>> {
        self.entries().by_id.get(id).cloned()
    }

    /// Forgets a message (after its file was removed).
    pub fn forget(&self, id: &str) {
        self.entries().by_id.remove(id);
    }
}

/// Orders by time stored, then by Maildir arrival, newest first.
fn newest_first(a: &Indexed, b: &Indexed) -> std::cmp::Ordering {
    let key = |m: &Indexed| (m.received_secs, arrival(&m.unique));
    key(b).cmp(&key(a))
}

/// The `SECONDS.M<micros>` start of a Maildir name, as numbers.
fn arrival(unique: &str) -> (u64, u64) {
    let mut parts = unique.splitn(3, '.');
    let secs = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let micros = parts
        .next()
        .and_then(|p| p.strip_prefix('M'))
        .and_then(|p| {
            let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .unwrap_or(0);
    (secs, micros)
}

/// The id of a Maildir unique name.
pub fn message_id(unique: &str) -> String {
    let uid = uidl(unique);
    let safe = |b: u8| b.is_ascii_alphanumeric() || b"._-,=".contains(&b);
    if uid.bytes().all(safe) {
        uid
    } else {
        crate::crypto::md5_hex(unique.as_bytes())
    }
}

/// Reads and decodes the start of a message into its index entry; `None`
/// when the file is gone.
fn summarize(mailbox: &str, entry: &MaildirEntry) -> Option<Indexed> {
    let file = fs::File::open(&entry.path).ok()?;
    let modified = file.metadata().and_then(|m| m.modified()).ok()?;
    let mut raw = Vec::new();
    file.take(SUMMARY_BYTES).read_to_end(&mut raw).ok()?;
    let received_secs = modified
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut listing = Listing {
        id: message_id(&entry.unique),
        mailbox: mailbox.to_string(),
        from: None,
        to: None,
        subject: None,
        date: None,
        received: rfc3339(received_secs),
        size: entry.size,
        attachments: 0,
    };
    if let Ok(summary) = crate::mail::extract::summarize_with(&raw, Limits { max_parts: 200 }) {
        let h = summary.headers;
        (listing.from, listing.to, listing.subject, listing.date) =
            (h.from, h.to, h.subject, h.date);
        listing.attachments = summary
            .parts
            .iter()
            .filter(|p| matches!(p.role, Role::Attachment | Role::Inline | Role::Message))
            .count();
    }
    Some(Indexed {
        listing,
        path: entry.path.clone(),
        received_secs,
        unique: entry.unique.clone(),
    })
}

/// `secs` after the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(secs: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = crate::system::utc(secs);
    let month = MONTHS.iter().position(|m| *m == t.month).unwrap_or(0) + 1;
    format!(
        "{:04}-{month:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year, t.day, t.hour, t.minute, t.second
    )
}

/// Parses `since`: seconds after the epoch, or `YYYY-MM-DDTHH:MM:SSZ`
/// (a date alone means its midnight UTC).
pub fn parse_since(text: &str) -> Option<u64> {
    if let Ok(secs) = text.parse::<u64>() {
        return Some(secs);
    }
    let text = text.trim_end_matches('Z');
    let (date, time) = text.split_once(['T', ' ']).unwrap_or((text, "00:00:00"));
    let d: Vec<i64> = date
        .split('-')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let t: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let ([y, m, day], [hh, mm, ss]) = (d.as_slice(), t.as_slice()) else {
        return None;
    };
    if !(1..=12).contains(m) || !(1..=31).contains(day) || *hh > 23 || *mm > 59 || *ss > 60 {
        return None;
    }
    // Days from civil (H. Hinnant), the inverse of crate::system::utc.
    let y = if *m <= 2 { y - 1 } else { *y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

/// Removes a message file, unless a POP3 session holds its mailbox (then
/// the error is [`io::ErrorKind::ResourceBusy`]).
pub fn remove(store: &Arc<crate::store::mailbox::MailStore>, m: &Indexed) -> io::Result<()> {
    let session = store
        .lock(&m.listing.mailbox)
        .map_err(|_| io::Error::new(io::ErrorKind::ResourceBusy, "mailbox in use"))?;
    let index = session
        .messages()
        .iter()
        .position(|info| info.uid == uidl(&m.unique));
    match index {
        Some(i) => session.delete(&[i]),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for secs in [0, 951_782_400, 1_733_200_000, 4_102_444_799] {
            assert_eq!(parse_since(&rfc3339(secs)), Some(secs), "{secs}");
        }
        assert_eq!(rfc3339(1_733_200_000), "2024-12-03T04:26:40Z");
        assert_eq!(parse_since("2024-12-03"), Some(1_733_184_000));
        assert_eq!(parse_since("17"), Some(17));
        assert_eq!(parse_since("2024-13-03"), None);
        assert_eq!(parse_since("yesterday"), None);
    }

    #[test]
    fn ids_are_url_safe() {
        assert_eq!(
            message_id("1733200000.M5P7Q1.host"),
            "1733200000.M5P7Q1.host"
        );
        let odd = message_id("a/b?c#d");
        assert_eq!(odd.len(), 32);
    }

    #[test]
    fn scans_finds_and_forgets() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Maildir::create(dir.path().join("alice")).unwrap();
        let message = b"From: =?utf-8?B?5byg5LiJ?= <z@example.cn>\r\nTo: alice@x\r\n\
Subject: =?utf-8?B?5rWL6K+V?=\r\n\r\nhello\r\n";
        let mut d = inbox.deliver().unwrap();
        std::io::Write::write_all(&mut d, message).unwrap();
        let path = d.commit().unwrap();
        let index = MessageIndex::new(dir.path());
        let added = index.scan();
        assert_eq!(added.len(), 1);
        let l = &added[0].listing;
        assert_eq!(l.from.as_deref(), Some("张三 <z@example.cn>"));
        assert_eq!(l.subject.as_deref(), Some("测试"));
        assert_eq!(l.size, message.len() as u64);
        assert!(index.scan().is_empty());
        let filter = Filter {
            subject: Some("测".into()),
            ..Filter::default()
        };
        assert_eq!(index.query(&filter, 0, 10).0, 1);
        assert!(index.add_delivered(std::slice::from_ref(&path)).is_empty());
        let id = added[0].listing.id.clone();
        let seen = dir.path().join("alice/cur").join(format!("{id}:2,S"));
        fs::rename(&path, &seen).unwrap();
        assert!(
            index.scan().is_empty(),
            "a message read elsewhere is not new"
        );
        assert_eq!(index.get(&id).unwrap().path, seen);
        fs::remove_file(seen).unwrap();
        index.scan();
        assert_eq!(index.query(&Filter::default(), 0, 10).0, 0);
    }
}
