//! The Maildir side of the server: one Maildir per mailbox under the
//! `--maildir` directory, deliveries streamed into `tmp/` and committed to
//! `new/`, and POP3 sessions over a locked snapshot.
//!
//! The lock is per mailbox and held for the life of a POP3 session: within
//! this process, and against other `mailctl serve` processes on the same
//! directory by an exclusive `flock(2)` on the mailbox folder. A second
//! session gets `-ERR [IN-USE]`. Deliveries do not take it: they only add
//! files, which a session's snapshot does not see.
//!
//! Durability: deliveries go through the Maildir writer
//! ([`crate::store::maildir`]): written in `tmp/`, data synced, moved into
//! `new/` (never overwriting), and `new/` synced before the delivery counts
//! as done. Concurrent deliveries into the same mailbox share that directory
//! sync (group commit): a delivery whose link is covered by a sync that
//! started after it waits for that sync instead of issuing its own.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::proto::pop3::server::{MessageInfo, OpenError};
use crate::proto::users::is_mailbox_name;
use crate::store::maildir::{Delivery, Maildir, MaildirEntry};

/// Most mailboxes whose delivery state (an open `new/` directory) is kept
/// between deliveries; beyond, those not in use are let go, so descriptors
/// stay bounded whatever the number of mailbox names.
pub const MAX_OPEN_MAILBOXES: usize = 64;

/// The directory holding every mailbox.
#[derive(Debug)]
pub struct MailStore {
    root: PathBuf,
    locked: Mutex<HashSet<String>>,
    boxes: Mutex<HashMap<String, Arc<DirSync>>>,
    /// Unnamed `tmp/` files forced on or off (`None`: the Maildir default).
    unnamed: Option<bool>,
}

/// A mailbox that has been delivered to, with the group commit of its
/// `new/` directory entries.
#[derive(Debug)]
struct DirSync {
    /// The mailbox's Maildir.
    maildir: Maildir,
    /// `new/`, kept open for syncing.
    new_dir: File,
    /// Links completed so far (a ticket per link).
    linked: AtomicU64,
    /// The highest ticket known to be on disk; held while syncing.
    synced: Mutex<u64>,
    /// Set when a delivery failed: the folders are checked (and created)
    /// again before the next one.
    broken: AtomicBool,
    /// Message sizes as POP3 sends them, by unique name: (size on disk,
    /// size sent). Known at delivery for this server's messages; counted
    /// once for files other programs put there.
    wire_sizes: Mutex<HashMap<String, (u64, u64)>>,
}

impl DirSync {
    /// The size of a stored message as POP3 sends it, where every bare LF
    /// goes out as CRLF (RFC 1939 section 3): the same as on disk for the
    /// messages this server stores, larger for LF files other programs
    /// wrote.
    fn wire_size(&self, entry: &MaildirEntry) -> io::Result<u64> {
        let cached = self.sizes().get(&entry.unique).copied();
        if let Some((disk, wire)) = cached {
            if disk == entry.size {
                return Ok(wire);
            }
        }
        let mut count = LineEnds::default();
        io::copy(&mut File::open(&entry.path)?, &mut count)?;
        let wire = count.octets + count.bare_lf;
        self.remember_size(&entry.unique, count.octets, wire);
        Ok(wire)
    }

    fn remember_size(&self, unique: &str, disk: u64, wire: u64) {
        self.sizes().insert(unique.to_string(), (disk, wire));
    }

    fn sizes(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, u64)>> {
        self.wire_sizes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes sure the link just made in `new/` is on disk.
    fn sync_after_link(&self) -> io::Result<()> {
        let ticket = self.linked.fetch_add(1, Ordering::SeqCst) + 1;
        let mut synced = self.synced.lock().unwrap_or_else(|e| e.into_inner());
        if *synced >= ticket {
            return Ok(());
        }
        // Every link with a ticket up to `covered` finished before this sync.
        let covered = self.linked.load(Ordering::SeqCst);
        self.new_dir.sync_all()?;
        *synced = covered;
        Ok(())
    }
}

impl MailStore {
    /// Opens (creating with mode 0700 if needed) the directory of mailboxes.
    pub fn open(root: &Path) -> io::Result<Arc<Self>> {
        Self::open_with(root, None)
    }

    /// [`MailStore::open`], with unnamed `tmp/` files forced on or off
    /// (`None`: used if they work here).
    fn open_with(root: &Path, unnamed: Option<bool>) -> io::Result<Arc<Self>> {
        if !root.is_dir() {
            use std::os::unix::fs::DirBuilderExt;
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(root)?;
        }
        Ok(Arc::new(MailStore {
            root: root.to_path_buf(),
            locked: Mutex::new(HashSet::new()),
            boxes: Mutex::new(HashMap::new()),
            unnamed,
        }))
    }

    /// The delivery state of a mailbox, creating its Maildir the first time
    /// (or again, if `fresh` and it was removed meanwhile).
    fn mailbox(&self, name: &str, fresh: bool) -> io::Result<Arc<DirSync>> {
        let mut boxes = self.boxes.lock().unwrap_or_else(|e| e.into_inner());
        if !fresh {
            if let Some(b) = boxes.get(name) {
                if !b.broken.load(Ordering::SeqCst) {
                    return Ok(b.clone());
                }
            }
        }
        let mut maildir = self.maildir(name)?;
        if let Some(unnamed) = self.unnamed {
            maildir = maildir.with_unnamed(unnamed);
        }
        let state = Arc::new(DirSync {
            new_dir: File::open(maildir.root().join("new"))?,
            maildir,
            linked: AtomicU64::new(0),
            synced: Mutex::new(0),
            broken: AtomicBool::new(false),
            wire_sizes: Mutex::new(HashMap::new()),
        });
        if boxes.len() >= MAX_OPEN_MAILBOXES && !boxes.contains_key(name) {
            make_room(&mut boxes);
        }
        boxes.insert(name.to_string(), state.clone());
        Ok(state)
    }

    /// Starts writing a message into a mailbox's `tmp/`.
    fn start_delivery(&self, name: &str) -> io::Result<Pending> {
        let mut mailbox = self.mailbox(name, false)?;
        let delivery = match mailbox.maildir.deliver() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                mailbox = self.mailbox(name, true)?;
                mailbox.maildir.deliver()?
            }
            other => other?,
        };
        Ok(Pending {
            writer: Some(BufWriter::with_capacity(64 * 1024, delivery)),
            sync: mailbox,
        })
    }

    /// The Maildir of a mailbox, created if needed. The name is checked
    /// again here, so no caller can reach outside the root.
    pub fn maildir(&self, name: &str) -> io::Result<Maildir> {
        if !is_mailbox_name(name) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "invalid mailbox name",
            ));
        }
        Maildir::create(self.root.join(name))
    }

    /// Removes a mailbox that no delivery is using, if it is empty (a
    /// Maildir created for a message that was not kept).
    fn remove_if_unused(&self, name: &str) {
        let mut boxes = self.boxes.lock().unwrap_or_else(|e| e.into_inner());
        if boxes.get(name).is_some_and(|b| Arc::strong_count(b) > 1) {
            return;
        }
        boxes.remove(name);
        let root = self.root.join(name);
        for sub in ["new", "cur", "tmp"] {
            if fs::remove_dir(root.join(sub)).is_err() {
                return;
            }
        }
        let _ = fs::remove_dir(&root);
    }

    /// Locks a mailbox for a POP3 session and takes its snapshot. A mailbox
    /// never delivered to is empty, and is not created.
    pub fn lock(self: &Arc<Self>, name: &str) -> Result<MailboxSession, OpenError> {
        let exists = self.root.join(name).is_dir();
        let maildir = match exists {
            true => Some(self.maildir(name).map_err(|_| OpenError::Io)?),
            false if is_mailbox_name(name) => None,
            false => return Err(OpenError::Io),
        };
        {
            let mut locked = self.locked.lock().unwrap_or_else(|e| e.into_inner());
            if !locked.insert(name.to_string()) {
                return Err(OpenError::InUse);
            }
        }
        let mut session = MailboxSession {
            store: self.clone(),
            name: name.to_string(),
            entries: Vec::new(),
            _folder_lock: None,
        };
        let Some(maildir) = maildir else {
            return Ok(session);
        };
        // On error the session is dropped, which releases the locks.
        let folder = File::open(maildir.root()).map_err(|_| OpenError::Io)?;
        match folder.try_lock() {
            Ok(()) => session._folder_lock = Some(folder),
            Err(fs::TryLockError::WouldBlock) => return Err(OpenError::InUse),
            Err(fs::TryLockError::Error(_)) => return Err(OpenError::Io),
        }
        let sizes = self.mailbox(name, false).map_err(|_| OpenError::Io)?;
        let mut entries = maildir.list().map_err(|_| OpenError::Io)?;
        for entry in &mut entries {
            entry.size = sizes.wire_size(entry).map_err(|_| OpenError::Io)?;
        }
        session.entries = entries;
        Ok(session)
    }
}

/// Lets go of the delivery state of mailboxes not in use (each holds a
/// descriptor), or of one in use if all are: a delivery under way keeps its
/// own reference.
fn make_room(boxes: &mut HashMap<String, Arc<DirSync>>) {
    boxes.retain(|_, state| Arc::strong_count(state) > 1);
    if boxes.len() >= MAX_OPEN_MAILBOXES {
        if let Some(name) = boxes.keys().next().cloned() {
            boxes.remove(&name);
        }
    }
}

/// A locked mailbox and the messages it held at login.
#[derive(Debug)]
pub struct MailboxSession {
    store: Arc<MailStore>,
    name: String,
    entries: Vec<MaildirEntry>,
    /// The mailbox folder, open and `flock`ed until the session ends.
    _folder_lock: Option<File>,
}

impl MailboxSession {
    /// The snapshot as the POP3 machine sees it.
    pub fn messages(&self) -> Vec<MessageInfo> {
        self.entries
            .iter()
            .map(|e| MessageInfo {
                size: e.size,
                uid: uidl(&e.unique),
            })
            .collect()
    }

    /// Opens message `index` for reading.
    pub fn open(&self, index: usize) -> io::Result<File> {
        let entry = self
            .entries
            .get(index)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such message"))?;
        File::open(&entry.path)
    }

    /// Removes these messages (the UPDATE state); a message already gone is
    /// not an error. The directories are synced afterwards.
    pub fn delete(&self, indexes: &[usize]) -> io::Result<()> {
        let mut first_error = None;
        for &i in indexes {
            if let Some(entry) = self.entries.get(i) {
                match fs::remove_file(&entry.path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        if !indexes.is_empty() {
            let root = self.store.root.join(&self.name);
            for sub in ["new", "cur"] {
                let _ = crate::store::durable::sync_dir(&root.join(sub));
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for MailboxSession {
    fn drop(&mut self) {
        let mut locked = self.store.locked.lock().unwrap_or_else(|e| e.into_inner());
        locked.remove(&self.name);
    }
}

/// The UIDL of a Maildir unique name: the name itself when it fits RFC 1939
/// (1 to 70 characters from 0x21 to 0x7E), otherwise its MD5 in hex.
pub fn uidl(unique: &str) -> String {
    if !unique.is_empty()
        && unique.len() <= 70
        && unique.bytes().all(|b| (0x21..=0x7e).contains(&b))
    {
        unique.to_string()
    } else {
        crate::crypto::md5_hex(unique.as_bytes())
    }
}

/// One copy of a message in `tmp/`; removed if dropped before commit.
struct Pending {
    writer: Option<BufWriter<Delivery>>,
    sync: Arc<DirSync>,
}

impl Pending {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.writer {
            Some(w) => w.write_all(bytes),
            None => Err(io::Error::other("delivery already finished")),
        }
    }

    /// Data synced, moved into `new/` (never overwriting), `new/` synced.
    /// On error nothing is left in `new/`.
    fn commit(self) -> io::Result<PathBuf> {
        let sync = self.sync.clone();
        self.try_commit()
            .inspect_err(|_| sync.broken.store(true, Ordering::SeqCst))
    }

    fn try_commit(mut self) -> io::Result<PathBuf> {
        let writer = self.writer.take().expect("writer present until commit");
        let delivery = writer.into_inner().map_err(|e| e.into_error())?;
        // Stored with CRLF line ends: sent as it is.
        let size = delivery.len();
        let path = delivery.link()?;
        if let Err(e) = self.sync.sync_after_link() {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        if let Some(unique) = path.file_name().and_then(|n| n.to_str()) {
            self.sync.remember_size(unique, size, size);
        }
        Ok(path)
    }
}

/// Counts what is written to it: octets, and LFs not preceded by a CR.
#[derive(Default)]
struct LineEnds {
    octets: u64,
    bare_lf: u64,
    after_cr: bool,
}

impl io::Write for LineEnds {
    fn write(&mut self, chunk: &[u8]) -> io::Result<usize> {
        for at in memchr::memchr_iter(b'\n', chunk) {
            let after_cr = match at {
                0 => self.after_cr,
                _ => chunk[at - 1] == b'\r',
            };
            self.bare_lf += u64::from(!after_cr);
        }
        if let Some(&last) = chunk.last() {
            self.after_cr = last == b'\r';
        }
        self.octets += chunk.len() as u64;
        Ok(chunk.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A message being received for one or more mailboxes: written to every
/// mailbox's `tmp/` as it arrives, committed to `new/` at the end. Dropped
/// before [`Incoming::commit`], or not delivered, it leaves nothing behind:
/// not even the Maildirs it created.
pub struct Incoming {
    store: Arc<MailStore>,
    /// Mailboxes that did not exist before this message.
    created: Vec<String>,
    /// Set once the message is in `new/`.
    kept: bool,
    targets: Vec<Pending>,
    size: u64,
    limit: u64,
    too_large: bool,
    error: Option<io::Error>,
}

/// How a received message ended.
#[derive(Debug)]
pub enum Received {
    /// In `new/` of each mailbox; the paths.
    Delivered(Vec<PathBuf>),
    /// Over the size limit; nothing kept.
    TooLarge,
    /// A local error; nothing kept.
    Failed(io::Error),
}

impl Incoming {
    /// Starts deliveries into `mailboxes`, with `limit` on the content size
    /// (trace headers not counted). A failure here is remembered and
    /// reported at the end, so the data is still read to its end.
    pub fn start(store: &Arc<MailStore>, mailboxes: &[String], limit: u64) -> Self {
        let mut incoming = Incoming {
            store: store.clone(),
            created: Vec::new(),
            kept: false,
            targets: Vec::new(),
            size: 0,
            limit,
            too_large: false,
            error: None,
        };
        for name in mailboxes {
            if !store.root.join(name).exists() {
                incoming.created.push(name.clone());
            }
            match store.start_delivery(name) {
                Ok(p) => incoming.targets.push(p),
                Err(e) => {
                    incoming.fail(e);
                    break;
                }
            }
        }
        incoming
    }

    fn fail(&mut self, e: io::Error) {
        self.error.get_or_insert(e);
        self.targets.clear();
    }

    /// Writes the trace headers (not counted against the limit).
    pub fn write_headers(&mut self, bytes: &[u8]) {
        self.write_all(bytes);
    }

    /// Writes message content.
    pub fn write(&mut self, bytes: &[u8]) {
        self.size += bytes.len() as u64;
        if self.size > self.limit && !self.too_large {
            self.too_large = true;
            self.targets.clear();
        }
        self.write_all(bytes);
    }

    fn write_all(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut error = None;
        for target in &mut self.targets {
            if let Err(e) = target.write_all(bytes) {
                error = Some(e);
                break;
            }
        }
        if let Some(e) = error {
            self.fail(e);
        }
    }

    /// Content bytes received so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Syncs every copy into `new/`.
    pub fn commit(mut self) -> Received {
        if self.too_large {
            return Received::TooLarge;
        }
        if let Some(e) = self.error.take() {
            return Received::Failed(e);
        }
        let mut paths = Vec::new();
        for pending in std::mem::take(&mut self.targets) {
            match pending.commit() {
                Ok(p) => paths.push(p),
                Err(e) => {
                    // All or nothing: the client will retry the whole
                    // message, so no mailbox may keep a copy.
                    for p in &paths {
                        let _ = fs::remove_file(p);
                    }
                    return Received::Failed(e);
                }
            }
        }
        self.kept = true;
        Received::Delivered(paths)
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.kept {
            self.targets.clear();
            for name in &self.created {
                self.store.remove_if_unused(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Both ways of writing into `tmp/`.
    const SCRATCH_MODES: [Option<bool>; 2] = [Some(false), Some(true)];

    #[test]
    fn deliver_lock_snapshot_delete() {
        for unnamed in SCRATCH_MODES {
            deliver_lock_snapshot_delete_with(unnamed);
        }
    }

    fn deliver_lock_snapshot_delete_with(unnamed: Option<bool>) {
        let dir = tempfile::tempdir().unwrap();
        let store = MailStore::open_with(&dir.path().join("mail"), unnamed).unwrap();
        let mut inc = Incoming::start(&store, &["bob".into(), "carol".into()], 100);
        inc.write_headers(b"Return-Path: <a@b>\r\n");
        inc.write(b"Subject: x\r\n\r\nhi\r\n");
        let paths = match inc.commit() {
            Received::Delivered(p) => p,
            other => panic!("{other:?}"),
        };
        assert_eq!(paths.len(), 2);
        assert!(paths[0].starts_with(dir.path().join("mail/bob/new")));

        let session = store.lock("bob").unwrap();
        assert_eq!(store.lock("bob").unwrap_err(), OpenError::InUse);
        let msgs = session.messages();
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].size, 38);
        let mut text = String::new();
        session.open(0).unwrap().read_to_string(&mut text).unwrap();
        assert!(text.starts_with("Return-Path"));
        // A delivery during the session is not in its snapshot.
        let mut inc = Incoming::start(&store, &["bob".into()], 100);
        inc.write(b"x\r\n");
        assert!(matches!(inc.commit(), Received::Delivered(_)));
        assert_eq!(session.messages().len(), 1);
        session.delete(&[0]).unwrap();
        drop(session);
        let session = store.lock("bob").unwrap();
        assert_eq!(session.messages().len(), 1);
        assert_eq!(session.messages()[0].size, 3);
    }

    #[test]
    fn lock_holds_against_another_server_on_the_same_directory() {
        let dir = tempfile::tempdir().unwrap();
        let one = MailStore::open(dir.path()).unwrap();
        let other = MailStore::open(dir.path()).unwrap();
        one.maildir("bob").unwrap();
        let session = one.lock("bob").unwrap();
        assert_eq!(other.lock("bob").unwrap_err(), OpenError::InUse);
        assert!(other.lock("carol").is_ok());
        drop(session);
        assert!(other.lock("bob").is_ok());
    }

    #[test]
    fn logins_create_nothing_and_open_mailboxes_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = MailStore::open(dir.path()).unwrap();
        let session = store.lock("nobody").unwrap();
        assert!(session.messages().is_empty());
        assert_eq!(store.lock("nobody").unwrap_err(), OpenError::InUse);
        assert!(store.lock("../x").is_err());
        assert!(!dir.path().join("nobody").exists());
        for n in 0..(MAX_OPEN_MAILBOXES * 2) {
            let mut inc = Incoming::start(&store, &[format!("box{n}")], 100);
            inc.write(b"x\r\n");
            assert!(matches!(inc.commit(), Received::Delivered(_)));
            let _ = store.lock(&format!("box{n}")).unwrap();
        }
        assert!(store.boxes.lock().unwrap().len() <= MAX_OPEN_MAILBOXES);
    }

    #[test]
    fn too_large_and_abandoned_leave_nothing() {
        for unnamed in SCRATCH_MODES {
            too_large_and_abandoned_leave_nothing_with(unnamed);
        }
    }

    fn too_large_and_abandoned_leave_nothing_with(unnamed: Option<bool>) {
        let dir = tempfile::tempdir().unwrap();
        let store = MailStore::open_with(dir.path(), unnamed).unwrap();
        let mut inc = Incoming::start(&store, &["bob".into()], 10);
        inc.write_headers(b"Return-Path: <>\r\n");
        inc.write(b"0123456789");
        inc.write(b"a");
        assert_eq!(inc.size(), 11);
        assert!(matches!(inc.commit(), Received::TooLarge));
        // The Maildir made for it went with it.
        assert!(!dir.path().join("bob").exists());
        store.maildir("bob").unwrap();
        let inc = Incoming::start(&store, &["bob".into()], 10);
        // A named scratch file is visible in tmp/ while it is written.
        let in_tmp = fs::read_dir(dir.path().join("bob/tmp")).unwrap().count();
        assert_eq!(in_tmp, usize::from(unnamed == Some(false)));
        drop(inc);
        for sub in ["tmp", "new", "cur"] {
            assert_eq!(
                fs::read_dir(dir.path().join("bob").join(sub))
                    .unwrap()
                    .count(),
                0
            );
        }
        assert!(store.maildir("../x").is_err());
        assert!(store.maildir("Bob").is_err());
    }

    #[test]
    fn failed_commit_leaves_no_copy_anywhere() {
        for unnamed in SCRATCH_MODES {
            failed_commit_leaves_no_copy_anywhere_with(unnamed);
        }
    }

    fn failed_commit_leaves_no_copy_anywhere_with(unnamed: Option<bool>) {
        let dir = tempfile::tempdir().unwrap();
        let store = MailStore::open_with(dir.path(), unnamed).unwrap();
        for name in ["ann", "ben"] {
            store.maildir(name).unwrap();
        }
        let mut inc = Incoming::start(&store, &["ann".into(), "ben".into()], 100);
        inc.write(b"Subject: x\r\n\r\nhi\r\n");
        // Linking into ben's new/ will fail.
        fs::remove_dir(dir.path().join("ben/new")).unwrap();
        assert!(matches!(inc.commit(), Received::Failed(_)));
        for sub in ["ann/new", "ann/tmp", "ben/tmp"] {
            assert_eq!(
                fs::read_dir(dir.path().join(sub)).unwrap().count(),
                0,
                "{sub}"
            );
        }
        // The next delivery recreates the missing folder.
        let mut inc = Incoming::start(&store, &["ben".into()], 100);
        inc.write(b"x\r\n");
        assert!(matches!(inc.commit(), Received::Delivered(_)));
    }

    #[test]
    fn bare_lf_count_is_the_same_whatever_the_chunks() {
        let text = b"a\r\nb\nc\r\r\n\n\r\nend\n\r";
        let whole = {
            let mut count = LineEnds::default();
            count.write_all(text).unwrap();
            (count.octets, count.bare_lf)
        };
        assert_eq!(whole, (text.len() as u64, 3));
        for size in 1..text.len() {
            let mut count = LineEnds::default();
            for chunk in text.chunks(size) {
                count.write_all(chunk).unwrap();
            }
            assert_eq!((count.octets, count.bare_lf), whole, "chunks of {size}");
        }
    }

    #[test]
    fn uidl_forms() {
        assert_eq!(uidl("1700.M1P2Q3.host"), "1700.M1P2Q3.host");
        assert_eq!(uidl(&"x".repeat(71)).len(), 32);
        assert_eq!(uidl("a b").len(), 32);
    }
}
