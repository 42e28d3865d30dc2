//! The outbox: messages waiting to be sent, kept so that none is lost.
//!
//! Each entry is a folder `ID/` holding `message.eml` (the exact bytes to
//! send) and `entry.json` (envelope, connection settings without any
//! password, attempts and each recipient's state). An entry is built in
//! `tmp/`, every file synced, then renamed into place and the folders
//! synced: it appears whole or not at all.
//!
//! A sender takes an exclusive `flock` on the entry's folder
//! ([`Outbox::lock`]); a second sender skips a locked entry, and one that
//! gets the lock after the first finished finds `entry.json` gone. An
//! entry is done when `entry.json` is unlinked and the folder synced (the
//! commit point); the message file and folder are removed after, and a
//! folder left without `entry.json` by a crash is cleaned up later.
//! Entries that cannot be delivered move to `failed/`.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::durable;
use super::Error;

/// The message file of an entry.
const MESSAGE: &str = "message.eml";
/// The description file of an entry; its presence makes the entry live.
const ENTRY: &str = "entry.json";
/// Where entries are assembled.
const TMP: &str = "tmp";
/// How old a half-built entry in `tmp/` must be to be removed.
const STALE_TMP: std::time::Duration = std::time::Duration::from_secs(3600);
/// Where entries that cannot be delivered go.
pub const FAILED: &str = "failed";

/// How to reach the server again: what the command line or the account
/// said, never a password.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Connection {
    /// The account in the configuration file, if one was used.
    pub account: Option<String>,
    /// `HOST[:PORT]` given on the command line.
    pub server: Option<String>,
    /// `implicit`, `starttls` or `none`, given on the command line.
    pub tls: Option<String>,
    /// CA file given on the command line.
    pub ca_file: Option<PathBuf>,
    /// Whether certificate checks were turned off on the command line.
    pub insecure: bool,
    /// Client certificate given on the command line.
    pub cert: Option<PathBuf>,
    /// Its private key, given on the command line.
    pub key: Option<PathBuf>,
    /// User name given on the command line.
    pub user: Option<String>,
    /// Password command given on the command line (the command, not its
    /// output).
    pub password_command: Option<String>,
    /// Time-out in seconds given on the command line.
    pub timeout: Option<u64>,
    /// AUTH mechanism given on the command line.
    pub auth: Option<String>,
    /// EHLO name given on the command line.
    pub helo: Option<String>,
}

/// Where a recipient stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientState {
    /// Still to be sent to.
    Pending,
    /// The server accepted the message for it: never sent to again.
    Delivered,
    /// Refused for good.
    Failed,
}

/// One recipient of an entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// The address.
    pub address: String,
    /// Pending, delivered or failed.
    pub state: RecipientState,
    /// The server's last reply about it.
    pub reply: Option<String>,
}

/// Delivery Status Notification requests (RFC 3461) to repeat on each try.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DsnRequest {
    /// `NOTIFY=` value for every recipient.
    pub notify: Option<String>,
    /// `RET=` value.
    pub ret: Option<String>,
    /// `ENVID=` value.
    pub envid: Option<String>,
}

/// The description of a queued message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// When it was queued (seconds since the epoch).
    pub created: u64,
    /// How to reach the server.
    pub connection: Connection,
    /// The envelope sender.
    pub from: String,
    /// The envelope recipients and their state.
    pub recipients: Vec<Recipient>,
    /// The message size in bytes.
    pub size: u64,
    /// The Message-ID, without angle brackets.
    pub message_id: Option<String>,
    /// Whether the message has bytes above 127.
    pub eight_bit: bool,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Not to be tried before this time (seconds since the epoch).
    pub next_attempt: u64,
    /// The last failure or reply, one line.
    pub last_reply: Option<String>,
    /// DSN parameters.
    #[serde(default)]
    pub dsn: DsnRequest,
    /// A copy of the message to keep once sent (`maildir:DIR`, `mbox:FILE`).
    #[serde(default)]
    pub save_copy: Option<String>,
}

impl Entry {
    /// The recipients still to be sent to.
    pub fn pending(&self) -> Vec<String> {
        self.recipients
            .iter()
            .filter(|r| r.state == RecipientState::Pending)
            .map(|r| r.address.clone())
            .collect()
    }

    /// Whether any recipient was refused for good.
    pub fn any_failed(&self) -> bool {
        self.recipients
            .iter()
            .any(|r| r.state == RecipientState::Failed)
    }
}

/// Seconds since the epoch, now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An outbox folder.
#[derive(Clone, Debug)]
pub struct Outbox {
    root: PathBuf,
}

/// An entry locked by this process: nobody else sends it meanwhile.
#[derive(Debug)]
pub struct Locked {
    /// The entry's id.
    pub id: String,
    /// Its description, as last saved.
    pub entry: Entry,
    dir: PathBuf,
    /// Holds the `flock` on the folder.
    _lock: File,
}

/// Creates `dir` (and parents) with mode 0700.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// A new entry id: the time, then random hex (sorts by age).
fn new_id() -> io::Result<String> {
    let mut random = [0u8; 5];
    crate::crypto::random_bytes(&mut random)?;
    Ok(format!("{}-{}", now(), crate::proto::sasl::hex(&random)))
}

/// Whether `id` can name an entry (no path tricks).
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id != TMP
        && id != FAILED
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Outbox {
    /// Opens (creating if needed, mode 0700) the outbox at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Outbox, Error> {
        let root = root.into();
        for dir in [root.clone(), root.join(TMP), root.join(FAILED)] {
            create_private_dir(&dir).map_err(|source| Error::CreateDir {
                dir: dir.clone(),
                source,
            })?;
        }
        Ok(Outbox { root })
    }

    /// The default outbox: `$XDG_STATE_HOME/mailctl/outbox`.
    pub fn default_root() -> Option<PathBuf> {
        crate::system::state_dir().map(|d| d.join("outbox"))
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// An I/O error about `path`.
    fn io(&self, path: &Path) -> impl FnOnce(io::Error) -> Error {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    }

    /// Adds an entry: `write_message` writes the message bytes; returns
    /// the new id once the entry is durably in place.
    pub fn add(
        &self,
        entry: &Entry,
        write_message: &mut dyn FnMut(&mut dyn Write) -> anyhow::Result<()>,
    ) -> anyhow::Result<String> {
        let id = new_id().map_err(self.io(&self.root))?;
        let building = self.root.join(TMP).join(&id);
        let result = self.build(&building, entry, write_message);
        if let Err(err) = result {
            let _ = fs::remove_dir_all(&building);
            return Err(err);
        }
        let target = self.root.join(&id);
        durable::rename_no_replace(&building, &target).map_err(self.io(&target))?;
        durable::sync_dir(&self.root).map_err(self.io(&self.root))?;
        durable::sync_dir(&self.root.join(TMP)).map_err(self.io(&self.root))?;
        Ok(id)
    }

    /// Writes the entry's two files into `dir`, synced.
    fn build(
        &self,
        dir: &Path,
        entry: &Entry,
        write_message: &mut dyn FnMut(&mut dyn Write) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        create_private_dir(dir).map_err(self.io(dir))?;
        let message = dir.join(MESSAGE);
        let mut file = durable::create_new(&message).map_err(self.io(&message))?;
        {
            let mut out = io::BufWriter::new(&mut file);
            write_message(&mut out)?;
            out.flush().map_err(self.io(&message))?;
        }
        file.sync_all().map_err(self.io(&message))?;
        let description = dir.join(ENTRY);
        let json = serde_json::to_vec_pretty(entry)?;
        let mut file = durable::create_new(&description).map_err(self.io(&description))?;
        file.write_all(&json).map_err(self.io(&description))?;
        file.sync_all().map_err(self.io(&description))?;
        durable::sync_dir(dir).map_err(self.io(dir))?;
        Ok(())
    }

    /// The ids of the live entries (`failed`: of those in `failed/`),
    /// oldest first. Folders left half-removed by a crash are cleaned up.
    pub fn ids(&self, failed: bool) -> Result<Vec<String>, Error> {
        let dir = if failed {
            self.root.join(FAILED)
        } else {
            self.root.clone()
        };
        if !failed {
            self.clean_tmp();
        }
        let mut ids = Vec::new();
        for item in fs::read_dir(&dir).map_err(self.io(&dir))? {
            let item = item.map_err(self.io(&dir))?;
            let name = item.file_name().to_string_lossy().into_owned();
            if !valid_id(&name) || !item.path().is_dir() {
                continue;
            }
            if item.path().join(ENTRY).exists() {
                ids.push(name);
            } else if !failed {
                self.clean_up(&name);
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Removes what a process killed while adding an entry left in `tmp/`
    /// (an hour old: no add takes that long).
    fn clean_tmp(&self) {
        let Ok(items) = fs::read_dir(self.root.join(TMP)) else {
            return;
        };
        for item in items.flatten() {
            let old = item
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE_TMP);
            if old {
                let _ = fs::remove_dir_all(item.path());
            }
        }
    }

    /// Removes an entry folder that lost its `entry.json` (a removal cut
    /// short), unless someone holds it.
    fn clean_up(&self, id: &str) {
        if let Ok(Some(folder)) = self.lock_folder(id) {
            if !self.root.join(id).join(ENTRY).exists() {
                let _ = remove_folder(&self.root.join(id));
            }
            drop(folder);
        }
    }

    /// The entry folder, locked; `None` if it is gone or someone holds it.
    fn lock_folder(&self, id: &str) -> io::Result<Option<File>> {
        let folder = match File::open(self.root.join(id)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(super::lock::try_flock(&folder)?.then_some(folder))
    }

    /// Reads an entry (live, or in `failed/` when `failed`).
    pub fn read(&self, id: &str, failed: bool) -> Result<Entry, Error> {
        let dir = if failed {
            self.root.join(FAILED).join(id)
        } else {
            self.root.join(id)
        };
        read_entry(&dir.join(ENTRY))
    }

    /// Where an entry's message is (live, or in `failed/`).
    pub fn message_path(&self, id: &str, failed: bool) -> PathBuf {
        let dir = if failed {
            self.root.join(FAILED).join(id)
        } else {
            self.root.join(id)
        };
        dir.join(MESSAGE)
    }

    /// Finds an entry by id, live or failed: `Some(failed)` if it exists.
    pub fn find(&self, id: &str) -> Option<bool> {
        if !valid_id(id) {
            return None;
        }
        [false, true]
            .into_iter()
            .find(|&failed| self.message_path(id, failed).with_file_name(ENTRY).exists())
    }

    /// Locks a live entry for sending: `None` when another process holds
    /// it or it is gone (sent, dropped or failed meanwhile).
    pub fn lock(&self, id: &str) -> Result<Option<Locked>, Error> {
        if !valid_id(id) {
            return Ok(None);
        }
        let dir = self.root.join(id);
        let Some(folder) = self.lock_folder(id).map_err(self.io(&dir))? else {
            return Ok(None);
        };
        let path = dir.join(ENTRY);
        if !path.exists() {
            return Ok(None);
        }
        Ok(Some(Locked {
            id: id.to_string(),
            entry: read_entry(&path)?,
            dir,
            _lock: folder,
        }))
    }

    /// Removes a failed entry (`queue drop`).
    pub fn drop_failed(&self, id: &str) -> Result<(), Error> {
        let dir = self.root.join(FAILED).join(id);
        remove_folder(&dir).map_err(self.io(&dir))
    }
}

/// Reads and parses an `entry.json`.
fn read_entry(path: &Path) -> Result<Entry, Error> {
    let bytes = fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| Error::Unreadable {
        path: path.to_path_buf(),
        source,
    })
}

/// Removes a folder: `entry.json` first (then synced: the entry is gone
/// from then on), then the rest.
fn remove_folder(dir: &Path) -> io::Result<()> {
    match fs::remove_file(dir.join(ENTRY)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    durable::sync_dir(dir)?;
    fs::remove_dir_all(dir)?;
    if let Some(parent) = dir.parent() {
        durable::sync_dir(parent)?;
    }
    Ok(())
}

impl Locked {
    /// The message file.
    pub fn message_path(&self) -> PathBuf {
        self.dir.join(MESSAGE)
    }

    /// Saves the description durably (replacing `entry.json` atomically).
    pub fn save(&self) -> Result<(), Error> {
        let path = self.dir.join(ENTRY);
        let json = serde_json::to_vec_pretty(&self.entry).map_err(|source| Error::Unreadable {
            path: path.clone(),
            source,
        })?;
        durable::replace(&path, &json).map_err(|source| Error::Io { path, source })
    }

    /// Removes the entry: it was delivered (or dropped).
    pub fn remove(self) -> Result<(), Error> {
        remove_folder(&self.dir).map_err(|source| Error::Io {
            path: self.dir.clone(),
            source,
        })
    }

    /// Saves the description and moves the entry to `failed/`.
    pub fn fail(self) -> Result<(), Error> {
        self.save()?;
        let root = self.dir.parent().unwrap_or(Path::new(".")).to_path_buf();
        let target = root.join(FAILED).join(&self.id);
        let io = |source| Error::Io {
            path: target.clone(),
            source,
        };
        durable::rename_no_replace(&self.dir, &target).map_err(io)?;
        durable::sync_dir(&root).map_err(io)?;
        durable::sync_dir(&root.join(FAILED)).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            created: now(),
            connection: Connection::default(),
            from: "a@example.org".into(),
            recipients: vec![Recipient {
                address: "b@example.org".into(),
                state: RecipientState::Pending,
                reply: None,
            }],
            size: 3,
            message_id: None,
            eight_bit: false,
            attempts: 0,
            next_attempt: 0,
            last_reply: None,
            dsn: DsnRequest::default(),
            save_copy: None,
        }
    }

    #[test]
    fn add_lock_save_remove_and_fail() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path().join("out")).unwrap();
        let id = outbox
            .add(&entry(), &mut |w| Ok(w.write_all(b"hi\n")?))
            .unwrap();
        assert_eq!(outbox.ids(false).unwrap(), std::slice::from_ref(&id));
        assert_eq!(fs::read(outbox.message_path(&id, false)).unwrap(), b"hi\n");
        let mut locked = outbox.lock(&id).unwrap().unwrap();
        // A second lock (another open file description) is refused.
        assert!(outbox.lock(&id).unwrap().is_none());
        locked.entry.attempts = 2;
        locked.save().unwrap();
        assert_eq!(outbox.read(&id, false).unwrap().attempts, 2);
        locked.fail().unwrap();
        assert!(outbox.ids(false).unwrap().is_empty());
        assert_eq!(outbox.ids(true).unwrap(), std::slice::from_ref(&id));
        assert_eq!(outbox.find(&id), Some(true));
        outbox.drop_failed(&id).unwrap();
        assert_eq!(outbox.find(&id), None);

        let id = outbox.add(&entry(), &mut |_| Ok(())).unwrap();
        outbox.lock(&id).unwrap().unwrap().remove().unwrap();
        assert!(outbox.lock(&id).unwrap().is_none());
        assert!(!outbox.root().join(&id).exists());
    }

    #[test]
    fn a_folder_without_its_description_is_cleaned_up() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        let id = outbox.add(&entry(), &mut |_| Ok(())).unwrap();
        fs::remove_file(outbox.root().join(&id).join(ENTRY)).unwrap();
        assert!(outbox.ids(false).unwrap().is_empty());
        assert!(!outbox.root().join(&id).exists());
        assert!(outbox.lock("../etc").unwrap().is_none());
    }
}
