//! Where retrieved messages go: a folder per message, a Maildir, an mbox
//! file, or standard output (a delivery program: [`super::mda`]).
//!
//! Every sink streams a message as it arrives; [`Sink::finish`] hands back a
//! [`Commit`] that makes it durable (fsync, link into place, directory
//! fsync) and may run on another thread, so that the disk and the network
//! work at the same time. Only after a commit succeeds may the message be
//! deleted on the server. A message that is not finished (the connection
//! broke, a write failed) leaves nothing that looks complete.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;

use crate::exit::{fail, Exit};
use crate::mail::extract::Limits;
use crate::store::durable::{self, PendingFile};
use crate::store::journal::{Journal, Line};
use crate::store::maildir::{Delivery, Maildir};

/// What a sink knows about the message it is given.
#[derive(Clone, Debug)]
pub struct Meta {
    /// Message number in this session.
    pub number: u32,
    /// The server's unique id, if it has one.
    pub uidl: Option<String>,
    /// Size announced by LIST.
    pub size: u64,
}

/// Where one message was saved.
#[derive(Clone, Debug)]
pub struct Saved {
    /// The path (or `-` for standard output).
    pub location: String,
    /// Something that went wrong after the message itself was safe (such as
    /// MIME extraction in `--save-dir`).
    pub warning: Option<String>,
}

/// A destination for messages, one at a time.
pub trait Sink {
    /// Starts a message.
    fn begin(&mut self, meta: &Meta) -> anyhow::Result<()>;
    /// Appends bytes of the current message, exactly as received.
    fn write(&mut self, data: &[u8]) -> anyhow::Result<()>;
    /// Ends the current message; the returned commit makes it durable.
    fn finish(&mut self) -> anyhow::Result<Box<dyn Commit>>;
    /// Discards the current message, leaving no trace of it.
    fn abort(&mut self);
    /// Whether commits of different messages may run at the same time
    /// (separate files); otherwise they run one after another, in order.
    fn parallel(&self) -> bool;
    /// Gives the sink the run's journal. Returns whether the sink writes
    /// its own lines, naming where each message will be before it becomes
    /// visible there; otherwise the caller records each delivery once it
    /// is done.
    fn use_journal(&mut self, journal: Arc<Journal>) -> bool {
        let _ = journal;
        false
    }
}

/// Writes a journal line before a message becomes visible; a message that
/// cannot be recorded is not saved (exit 74).
fn journal_line(journal: Option<&Arc<Journal>>, line: impl FnOnce() -> Line) -> anyhow::Result<()> {
    match journal {
        Some(j) => j
            .record(&line())
            .map_err(|e| local_error(e, "the journal of fetched messages", false)),
        None => Ok(()),
    }
}

/// `path` made absolute, as the journal names it (unchanged if the
/// working directory is unknown).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The last step of saving one message: makes it durable and says where
/// it is.
pub trait Commit: Send {
    /// Syncs and links the message into place.
    fn run(self: Box<Self>) -> anyhow::Result<Saved>;
}

/// A commit with nothing left to do.
pub(super) struct Done(pub(super) Saved);

impl Commit for Done {
    fn run(self: Box<Self>) -> anyhow::Result<Saved> {
        Ok(self.0)
    }
}

/// An error writing local files: 73 if a file could not be created, 74
/// otherwise.
pub(super) fn local_error(
    err: io::Error,
    what: impl std::fmt::Display,
    create: bool,
) -> anyhow::Error {
    let exit = if create {
        Exit::CantCreate
    } else {
        Exit::IoErr
    };
    fail(exit, format!("{what}: {err}"))
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn tmp_name() -> String {
    format!(
        ".mailctl-{}-{}.tmp",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Makes a directory (and its parents) if missing, mode 0700.
fn ensure_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| local_error(e, dir.display(), true))
}

/// Checks now, before anything is retrieved, that files can be created in
/// `dir`.
fn probe_writable(dir: &Path) -> anyhow::Result<()> {
    let probe = dir.join(tmp_name());
    let file = durable::create_new(&probe).map_err(|e| local_error(e, dir.display(), true))?;
    drop(file);
    let _ = fs::remove_file(&probe);
    Ok(())
}

// ---------------------------------------------------------------------------
// --save-dir

/// `--save-dir DIR`: one new folder per message holding `message.eml` (the
/// exact bytes) and the decoded parts.
pub struct SaveDir {
    dir: PathBuf,
    current: Option<(Meta, BufWriter<PendingFile>)>,
    extractor: Option<Extractor>,
    journal: Option<Arc<Journal>>,
}

/// Decoding needs a whole message in memory, so it happens on one thread,
/// one message at a time, however many commits run in parallel: memory stays
/// bounded by the largest message (and only one thread's allocator holds it).
struct Extractor {
    jobs: Option<mpsc::Sender<ExtractJob>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct ExtractJob {
    eml: PathBuf,
    folder: PathBuf,
    reply: mpsc::Sender<Option<String>>,
}

impl Extractor {
    fn start(limits: Limits) -> Self {
        let (jobs, rx) = mpsc::channel::<ExtractJob>();
        let thread = std::thread::spawn(move || {
            for job in rx {
                let warning = extract_parts(&job.eml, &job.folder, limits)
                    .unwrap_or_else(|e| Some(format!("{e:#}")));
                let _ = job.reply.send(warning);
            }
        });
        Extractor {
            jobs: Some(jobs),
            thread: Some(thread),
        }
    }
}

impl Drop for Extractor {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl SaveDir {
    /// Opens (creating if needed) the folder that receives message folders.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        Self::open_with(dir, Limits::default())
    }

    /// [`Self::open`], decoding each message within `limits`.
    pub fn open_with(dir: &Path, limits: Limits) -> anyhow::Result<Self> {
        ensure_dir(dir)?;
        probe_writable(dir)?;
        remove_abandoned(dir);
        Ok(SaveDir {
            dir: dir.to_path_buf(),
            current: None,
            extractor: Some(Extractor::start(limits)),
            journal: None,
        })
    }
}

/// Removes the temporary folders (`.mailctl-PID-N.tmp`) that a killed run
/// of a process now gone left in `dir`.
fn remove_abandoned(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(".mailctl-"))
            .filter(|n| n.ends_with(".tmp"))
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
            .and_then(rustix::process::Pid::from_raw)
        else {
            continue;
        };
        let gone = rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH);
        if gone && entry.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Moves the complete folder `tmp` into `dir` under a fresh name, never
/// reusing one: ` (2)`, ` (3)`... is added when the name is taken, as
/// `parse` names its folders and attachments. The
/// journal line naming it is written first.
fn place_folder(
    dir: &Path,
    tmp: &Path,
    meta: &Meta,
    journal: Option<&Arc<Journal>>,
) -> anyhow::Result<PathBuf> {
    let base = folder_name(meta);
    for attempt in 1..10_000u32 {
        let name = if attempt == 1 {
            base.clone()
        } else {
            crate::mail::extract::filename::numbered(&base, attempt as usize)
        };
        let path = dir.join(&name);
        if fs::symlink_metadata(&path).is_ok() {
            continue;
        }
        if let Some(uidl) = &meta.uidl {
            journal_line(journal, || Line::File {
                uidl: uidl.clone(),
                path: absolute(&path.join("message.eml")),
            })?;
        }
        match durable::rename_no_replace(tmp, &path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(local_error(e, path.display(), true)),
        }
    }
    Err(fail(
        Exit::CantCreate,
        format!("{}: too many folders named {base}", dir.display()),
    ))
}

/// A safe folder name for a message: its UIDL with anything outside
/// `[A-Za-z0-9._-]` replaced by `_`, or `message-N` without one.
pub fn folder_name(meta: &Meta) -> String {
    let cleaned: Option<String> = meta.uidl.as_deref().map(|uid| {
        uid.chars()
            .take(100)
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    });
    match cleaned {
        Some(name) if !name.is_empty() && !name.starts_with('.') => name,
        Some(name) if !name.is_empty() => format!("_{name}"),
        _ => format!("message-{}", meta.number),
    }
}

impl Sink for SaveDir {
    fn begin(&mut self, meta: &Meta) -> anyhow::Result<()> {
        self.abort();
        let tmp = self.dir.join(tmp_name());
        let pending =
            PendingFile::create(tmp).map_err(|e| local_error(e, self.dir.display(), true))?;
        self.current = Some((meta.clone(), BufWriter::with_capacity(64 * 1024, pending)));
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> anyhow::Result<()> {
        let (_, w) = self.current.as_mut().expect("message begun");
        w.write_all(data)
            .map_err(|e| local_error(e, self.dir.display(), false))
    }

    fn finish(&mut self) -> anyhow::Result<Box<dyn Commit>> {
        let (meta, w) = self.current.take().expect("message begun");
        let pending = w
            .into_inner()
            .map_err(|e| local_error(e.into_error(), self.dir.display(), false))?;
        Ok(Box::new(SaveDirCommit {
            dir: self.dir.clone(),
            meta,
            pending,
            journal: self.journal.clone(),
            extract: self
                .extractor
                .as_ref()
                .and_then(|e| e.jobs.clone())
                .expect("extractor running"),
        }))
    }

    fn abort(&mut self) {
        self.current = None;
    }

    fn parallel(&self) -> bool {
        true
    }

    fn use_journal(&mut self, journal: Arc<Journal>) -> bool {
        self.journal = Some(journal);
        true
    }
}

struct SaveDirCommit {
    dir: PathBuf,
    meta: Meta,
    pending: PendingFile,
    journal: Option<Arc<Journal>>,
    extract: mpsc::Sender<ExtractJob>,
}

impl Commit for SaveDirCommit {
    fn run(self: Box<Self>) -> anyhow::Result<Saved> {
        // The folder is complete (its message synced) under a temporary
        // name before it appears under its own: a kill never leaves a
        // folder without its message.
        let tmp = self.dir.join(tmp_name());
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&tmp)
            .map_err(|e| local_error(e, tmp.display(), true))?;
        if let Err(e) = self.pending.commit(&tmp.join("message.eml")) {
            let _ = fs::remove_dir(&tmp);
            return Err(local_error(e, self.dir.display(), false));
        }
        let folder = match place_folder(&self.dir, &tmp, &self.meta, self.journal.as_ref()) {
            Ok(folder) => folder,
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        durable::sync_dir(&self.dir).map_err(|e| local_error(e, self.dir.display(), false))?;
        let eml = folder.join("message.eml");
        let (reply, answer) = mpsc::channel();
        let job = ExtractJob {
            eml,
            folder: folder.clone(),
            reply,
        };
        let warning = match self.extract.send(job) {
            Ok(()) => answer
                .recv()
                .unwrap_or_else(|_| Some("MIME extraction stopped".into())),
            Err(_) => Some("MIME extraction stopped".into()),
        };
        Ok(Saved {
            location: folder.display().to_string(),
            warning,
        })
    }
}

/// Decodes the saved message into its folder. The message itself is safe
/// already; a failure here is only a warning, and so are parts left out
/// (returned).
fn extract_parts(eml: &Path, folder: &Path, limits: Limits) -> anyhow::Result<Option<String>> {
    let raw = fs::read(eml).with_context(|| format!("reading {}", eml.display()))?;
    let manifest = crate::mail::extract::extract_to_dir_with(&raw, folder, limits)
        .with_context(|| format!("decoding {}", eml.display()))?;
    let left_out = crate::mail::extract::limit::left_out_warning(limits.max_parts);
    Ok(manifest.warnings.into_iter().find(|w| *w == left_out))
}

// ---------------------------------------------------------------------------
// --maildir

/// `--maildir DIR`: delivery into `tmp/`, then `new/` (crate::store::maildir).
pub struct MaildirSink {
    maildir: Maildir,
    current: Option<(Option<String>, BufWriter<Delivery>)>,
    journal: Option<Arc<Journal>>,
}

impl MaildirSink {
    /// Opens the Maildir, creating `tmp`, `new` and `cur` if needed.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        let maildir = Maildir::create(dir).map_err(|e| local_error(e, dir.display(), true))?;
        probe_writable(&dir.join("tmp"))?;
        Ok(MaildirSink {
            maildir,
            current: None,
            journal: None,
        })
    }
}

impl Sink for MaildirSink {
    fn begin(&mut self, meta: &Meta) -> anyhow::Result<()> {
        self.abort();
        let delivery = self
            .maildir
            .deliver()
            .map_err(|e| local_error(e, self.maildir.root().display(), true))?;
        self.current = Some((
            meta.uidl.clone(),
            BufWriter::with_capacity(64 * 1024, delivery),
        ));
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> anyhow::Result<()> {
        let (_, w) = self.current.as_mut().expect("message begun");
        w.write_all(data)
            .map_err(|e| local_error(e, self.maildir.root().display(), false))
    }

    fn finish(&mut self) -> anyhow::Result<Box<dyn Commit>> {
        let (uidl, w) = self.current.take().expect("message begun");
        let root = self.maildir.root().display().to_string();
        let delivery = w
            .into_inner()
            .map_err(|e| local_error(e.into_error(), &root, false))?;
        if let Some(uidl) = uidl {
            journal_line(self.journal.as_ref(), || Line::File {
                uidl,
                path: absolute(delivery.path()),
            })?;
        }
        Ok(Box::new(MaildirCommit { root, delivery }))
    }

    fn abort(&mut self) {
        self.current = None;
    }

    fn parallel(&self) -> bool {
        true
    }

    fn use_journal(&mut self, journal: Arc<Journal>) -> bool {
        self.journal = Some(journal);
        true
    }
}

struct MaildirCommit {
    root: String,
    delivery: Delivery,
}

impl Commit for MaildirCommit {
    fn run(self: Box<Self>) -> anyhow::Result<Saved> {
        let path = self
            .delivery
            .commit()
            .map_err(|e| local_error(e, &self.root, false))?;
        Ok(Saved {
            location: path.display().to_string(),
            warning: None,
        })
    }
}

// ---------------------------------------------------------------------------
// mboxrd

/// Streaming mboxrd encoder: CRLF becomes LF, and every line matching
/// `^>*From ` gets one more `>` (so the quoting can be undone exactly).
/// Results do not depend on how the input is cut into chunks.
#[derive(Clone, Debug, Default)]
pub struct MboxrdEncoder {
    phase: Phase,
    pending_cr: bool,
    last: Option<u8>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    /// At the start of a line, possibly inside a run of `>`.
    #[default]
    Start,
    /// This many bytes of `From ` matched at the start of the line (after
    /// any `>`), held back.
    Match(usize),
    /// Elsewhere in a line.
    Rest,
}

const FROM_: &[u8] = b"From ";

impl MboxrdEncoder {
    /// Encodes `input`, appending to `out`.
    pub fn encode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            self.byte(b, out);
        }
    }

    fn push(&mut self, b: u8, out: &mut Vec<u8>) {
        out.push(b);
        self.last = Some(b);
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        if self.pending_cr {
            self.pending_cr = false;
            if b == b'\n' {
                self.push(b'\n', out);
                self.phase = Phase::Start;
                return;
            }
            self.push(b'\r', out);
        }
        if b == b'\r' {
            self.flush_held(out);
            self.pending_cr = true;
            self.phase = Phase::Rest;
            return;
        }
        match self.phase {
            Phase::Start if b == b'>' => self.push(b, out),
            Phase::Start if b == b'F' => self.phase = Phase::Match(1),
            Phase::Match(k) if b == FROM_[k] => {
                if k + 1 == FROM_.len() {
                    out.push(b'>');
                    for &c in FROM_ {
                        self.push(c, out);
                    }
                    self.phase = Phase::Rest;
                } else {
                    self.phase = Phase::Match(k + 1);
                }
            }
            _ => {
                self.flush_held(out);
                self.push(b, out);
                self.phase = if b == b'\n' {
                    Phase::Start
                } else {
                    Phase::Rest
                };
            }
        }
    }

    fn flush_held(&mut self, out: &mut Vec<u8>) {
        if let Phase::Match(k) = self.phase {
            for &c in &FROM_[..k] {
                self.push(c, out);
            }
            self.phase = Phase::Rest;
        }
    }

    /// Ends the message: pending bytes, a final newline if missing, and the
    /// blank line that separates messages.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.flush_held(out);
        if self.pending_cr {
            self.pending_cr = false;
            self.push(b'\r', out);
        }
        if self.last != Some(b'\n') {
            self.push(b'\n', out);
        }
        self.push(b'\n', out);
        *self = MboxrdEncoder::default();
    }
}

/// The `From ` separator line that starts an mbox message.
pub fn from_line(now: SystemTime) -> Vec<u8> {
    format!("From MAILER-DAEMON {}\n", asctime(now)).into_bytes()
}

/// `Www Mmm dd hh:mm:ss yyyy` in UTC, as mbox separator lines use.
fn asctime(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let t = crate::system::utc(secs);
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {}",
        t.weekday, t.month, t.day, t.hour, t.minute, t.second, t.year
    )
}

/// `--mbox FILE`: messages appended in mboxrd format under the locks of
/// [`crate::store::lock::lock_mbox`] (dotlock, `fcntl`, `flock`) held for
/// the whole run; each message is synced before it counts as saved, and a
/// message that fails half-way is cut off again.
pub struct MboxSink {
    path: PathBuf,
    _lock: crate::store::lock::MboxLock,
    file: std::sync::Arc<File>,
    encoder: MboxrdEncoder,
    buf: Vec<u8>,
    start: Option<u64>,
    /// The UIDL of the message being appended.
    uidl: Option<String>,
    journal: Option<Arc<Journal>>,
}

impl MboxSink {
    /// Opens (creating, mode 0600) and locks the mbox file, waiting up to
    /// [`crate::store::lock::WAIT`] for another holder. `torn` is where a
    /// killed run left part of a message at the end: it is cut off again
    /// if a message separator of ours is still there.
    pub fn open(path: &Path, torn: Option<u64>) -> anyhow::Result<Self> {
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(crate::store::durable::NO_FOLLOW)
            .open(path)
            .map_err(|e| local_error(e, path.display(), true))?;
        let lock = crate::store::lock::lock_mbox(path, &file, crate::store::lock::WAIT)?;
        if let Some(at) = torn {
            cut_torn(&file, at).map_err(|e| local_error(e, path.display(), false))?;
        }
        if !existed {
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
            durable::sync_dir(dir.unwrap_or(Path::new(".")))
                .map_err(|e| local_error(e, path.display(), false))?;
        }
        Ok(MboxSink {
            path: path.to_path_buf(),
            _lock: lock,
            file: std::sync::Arc::new(file),
            encoder: MboxrdEncoder::default(),
            buf: Vec::with_capacity(128 * 1024),
            start: None,
            uidl: None,
            journal: None,
        })
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        let result = (&*self.file).write_all(&self.buf);
        self.buf.clear();
        result
    }

    fn io(&self, err: io::Error) -> anyhow::Error {
        local_error(err, self.path.display(), false)
    }
}

impl Sink for MboxSink {
    fn begin(&mut self, meta: &Meta) -> anyhow::Result<()> {
        self.abort();
        let start = self.file.metadata().map_err(|e| self.io(e))?.len();
        self.uidl = meta.uidl.clone();
        if self.uidl.is_some() {
            journal_line(self.journal.as_ref(), || Line::Begin {
                path: absolute(&self.path),
                start,
            })?;
        }
        self.start = Some(start);
        self.encoder = MboxrdEncoder::default();
        self.buf.clear();
        self.buf.extend_from_slice(&from_line(SystemTime::now()));
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> anyhow::Result<()> {
        self.encoder.encode(data, &mut self.buf);
        if self.buf.len() >= 64 * 1024 {
            self.flush_buf().map_err(|e| self.io(e))?;
        }
        Ok(())
    }

    fn finish(&mut self) -> anyhow::Result<Box<dyn Commit>> {
        self.encoder.finish(&mut self.buf);
        if let Err(e) = self.flush_buf() {
            let err = self.io(e);
            self.abort();
            return Err(err);
        }
        if let (Some(uidl), Some(start)) = (self.uidl.take(), self.start) {
            let end = match self.file.metadata() {
                Ok(m) => m.len(),
                Err(e) => {
                    let err = self.io(e);
                    self.abort();
                    return Err(err);
                }
            };
            let path = absolute(&self.path);
            if let Err(e) = journal_line(self.journal.as_ref(), || Line::Mbox {
                uidl,
                path,
                start,
                end,
            }) {
                self.abort();
                return Err(e);
            }
        }
        self.start = None;
        Ok(Box::new(MboxCommit {
            path: self.path.clone(),
            file: self.file.clone(),
        }))
    }

    fn parallel(&self) -> bool {
        false
    }

    fn use_journal(&mut self, journal: Arc<Journal>) -> bool {
        self.journal = Some(journal);
        true
    }

    fn abort(&mut self) {
        self.buf.clear();
        if let Some(start) = self.start.take() {
            // Cut the partial message off again.
            let _ = self.file.set_len(start);
            let _ = self.file.sync_data();
        }
    }
}

/// Cuts off what a killed run left of a message from offset `at` on, if
/// the bytes there still start one of our separator lines and no other
/// message follows it (another program may have appended one since).
fn cut_torn(file: &File, at: u64) -> io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    if len <= at {
        return Ok(());
    }
    let mut tail = Vec::new();
    let mut reader = file;
    reader.seek(SeekFrom::Start(at))?;
    reader.read_to_end(&mut tail)?;
    let sep = b"From MAILER-DAEMON ";
    let ours = tail.starts_with(sep) || sep.starts_with(&tail);
    let another = memchr::memmem::find(&tail, b"\n\nFrom ").is_some();
    if ours && !another {
        file.set_len(at)?;
        file.sync_data()?;
    }
    Ok(())
}

/// Syncs the mbox file: everything appended so far, this message
/// included, is on disk afterwards. Commits run in order, so a failure
/// stops every later message from counting as saved.
struct MboxCommit {
    path: PathBuf,
    file: std::sync::Arc<File>,
}

impl Commit for MboxCommit {
    fn run(self: Box<Self>) -> anyhow::Result<Saved> {
        self.file
            .sync_data()
            .map_err(|e| local_error(e, self.path.display(), false))?;
        Ok(Saved {
            location: self.path.display().to_string(),
            warning: None,
        })
    }
}

// ---------------------------------------------------------------------------
// --stdout

/// Makes message bytes safe to show on a terminal: C0 controls other than
/// tab and line feed, DEL, and C1 controls written as UTF-8 (which some
/// terminals obey like ESC sequences) become visible escapes such as
/// `\x1b`; a CR is kept only before LF. Its state survives chunk
/// boundaries.
#[derive(Debug, Default)]
pub struct TerminalFilter {
    pending: Option<u8>,
}

impl TerminalFilter {
    /// Filters `data` onto `out`.
    pub fn filter(&mut self, data: &[u8], out: &mut Vec<u8>) {
        for &b in data {
            match (self.pending.take(), b) {
                (Some(b'\r'), b'\n') => {
                    out.extend_from_slice(b"\r\n");
                    continue;
                }
                (Some(0xc2), 0x80..=0x9f) => {
                    out.extend_from_slice(format!("\\u{{{b:x}}}").as_bytes());
                    continue;
                }
                (Some(p), _) => self.flush_pending(p, out),
                (None, _) => {}
            }
            match b {
                b'\r' | 0xc2 => self.pending = Some(b),
                b'\n' | b'\t' => out.push(b),
                0x00..=0x1f | 0x7f => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
                _ => out.push(b),
            }
        }
    }

    /// Writes what is held back at the end of the data.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if let Some(p) = self.pending.take() {
            self.flush_pending(p, out);
        }
    }

    fn flush_pending(&self, p: u8, out: &mut Vec<u8>) {
        if p == b'\r' {
            out.extend_from_slice(b"\\r");
        } else {
            out.push(p);
        }
    }
}

/// `--stdout`: one message is written exactly as received; several are
/// framed as mboxrd (as `--mbox` writes them) so a reader can split them.
/// On a terminal, control characters are neutralised (see
/// [`TerminalFilter`]): a message must not be able to drive the terminal.
pub struct StdoutSink {
    out: BufWriter<io::Stdout>,
    framed: bool,
    encoder: MboxrdEncoder,
    buf: Vec<u8>,
    terminal: Option<(TerminalFilter, Vec<u8>)>,
}

impl StdoutSink {
    /// Writes to standard output; `framed` selects mboxrd framing;
    /// `terminal` neutralises control characters.
    pub fn new(framed: bool, terminal: bool) -> Self {
        StdoutSink {
            out: BufWriter::with_capacity(64 * 1024, io::stdout()),
            framed,
            encoder: MboxrdEncoder::default(),
            buf: Vec::new(),
            terminal: terminal.then(|| (TerminalFilter::default(), Vec::new())),
        }
    }

    /// Writes bytes, through the terminal filter when there is one.
    fn emit(&mut self, bytes: &[u8], last: bool) -> io::Result<()> {
        match &mut self.terminal {
            Some((filter, shown)) => {
                shown.clear();
                filter.filter(bytes, shown);
                if last {
                    filter.finish(shown);
                }
                self.out.write_all(shown)
            }
            None => self.out.write_all(bytes),
        }
    }

    fn io(err: io::Error) -> anyhow::Error {
        fail(Exit::IoErr, format!("writing to standard output: {err}"))
    }
}

impl Sink for StdoutSink {
    fn begin(&mut self, _meta: &Meta) -> anyhow::Result<()> {
        if let Some((filter, _)) = &mut self.terminal {
            *filter = TerminalFilter::default();
        }
        if self.framed {
            self.encoder = MboxrdEncoder::default();
            self.out
                .write_all(&from_line(SystemTime::now()))
                .map_err(Self::io)?;
        }
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> anyhow::Result<()> {
        if self.framed {
            let mut buf = std::mem::take(&mut self.buf);
            buf.clear();
            self.encoder.encode(data, &mut buf);
            let result = self.emit(&buf, false);
            self.buf = buf;
            result.map_err(Self::io)
        } else {
            self.emit(data, false).map_err(Self::io)
        }
    }

    fn finish(&mut self) -> anyhow::Result<Box<dyn Commit>> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        if self.framed {
            self.encoder.finish(&mut buf);
        }
        let result = self.emit(&buf, true);
        self.buf = buf;
        result.map_err(Self::io)?;
        self.out.flush().map_err(Self::io)?;
        Ok(Box::new(Done(Saved {
            location: "-".into(),
            warning: None,
        })))
    }

    fn parallel(&self) -> bool {
        false
    }

    fn abort(&mut self) {
        // Bytes already written to a pipe cannot be taken back; make sure
        // nothing more of this message follows.
        self.buf.clear();
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_filter_neutralises_controls_in_any_chunking() {
        let input = "Subject: hi\x1b]0;pwned\x07\r\nbody\rover\tx \u{9b}31m é\x7f\r".as_bytes();
        let expected = "Subject: hi\\x1b]0;pwned\\x07\r\nbody\\rover\tx \\u{9b}31m é\\x7f\\r";
        for chunk in 1..=input.len() {
            let mut f = TerminalFilter::default();
            let mut out = Vec::new();
            for piece in input.chunks(chunk) {
                f.filter(piece, &mut out);
            }
            f.finish(&mut out);
            assert_eq!(String::from_utf8(out).unwrap(), expected, "chunk {chunk}");
        }
    }

    fn mboxrd(input: &[u8], chunk: usize) -> Vec<u8> {
        let mut enc = MboxrdEncoder::default();
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            enc.encode(piece, &mut out);
        }
        enc.finish(&mut out);
        out
    }

    #[test]
    fn mboxrd_quoting() {
        let input = b"From: a\r\n\r\nFrom here\r\n>From there\r\n>>From x\r\nFro\r\n>Fr\r\nFrom\r\n From \r\nbare\rcr\r\nlast";
        let expected = b"From: a\n\n>From here\n>>From there\n>>>From x\nFro\n>Fr\nFrom\n From \nbare\rcr\nlast\n\n";
        for chunk in [1, 2, 3, 5, 7, input.len()] {
            assert_eq!(
                String::from_utf8_lossy(&mboxrd(input, chunk)),
                String::from_utf8_lossy(expected),
                "chunk {chunk}"
            );
        }
        assert_eq!(mboxrd(b"x\r\n", 1), b"x\n\n");
        assert_eq!(mboxrd(b"x\r", 1), b"x\r\n\n");
    }

    #[test]
    fn asctime_format() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(0);
        assert_eq!(asctime(t), "Thu Jan  1 00:00:00 1970");
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_709_210_096);
        assert_eq!(asctime(t), "Thu Feb 29 12:34:56 2024");
    }

    #[test]
    fn folder_names_are_safe() {
        let meta = |uidl: Option<&str>| Meta {
            number: 7,
            uidl: uidl.map(str::to_string),
            size: 0,
        };
        assert_eq!(folder_name(&meta(Some("abc-1.2_x"))), "abc-1.2_x");
        assert_eq!(folder_name(&meta(Some("../etc/passwd"))), "_.._etc_passwd");
        assert_eq!(folder_name(&meta(Some("a/b:c"))), "a_b_c");
        assert_eq!(folder_name(&meta(Some(".."))), "_..");
        assert_eq!(folder_name(&meta(None)), "message-7");
    }

    #[test]
    fn save_dir_never_reuses_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = SaveDir::open(dir.path()).unwrap();
        let meta = Meta {
            number: 1,
            uidl: Some("same".into()),
            size: 0,
        };
        let mut locations = Vec::new();
        for body in [&b"one\r\n"[..], b"two\r\n"] {
            sink.begin(&meta).unwrap();
            sink.write(body).unwrap();
            locations.push(sink.finish().unwrap().run().unwrap().location);
        }
        assert!(locations[0].ends_with("/same"));
        assert!(locations[1].ends_with("/same (2)"));
        assert_eq!(
            fs::read(Path::new(&locations[1]).join("message.eml")).unwrap(),
            b"two\r\n"
        );
        // An aborted message leaves nothing behind.
        sink.begin(&meta).unwrap();
        sink.write(b"partial").unwrap();
        sink.abort();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn mbox_abort_cuts_partial_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("box");
        let mut sink = MboxSink::open(&path, None).unwrap();
        sink.begin(&Meta {
            number: 1,
            uidl: None,
            size: 0,
        })
        .unwrap();
        sink.write(b"Subject: a\r\n\r\nFrom me\r\n").unwrap();
        sink.finish().unwrap().run().unwrap();
        let after_first = fs::read(&path).unwrap();
        sink.begin(&Meta {
            number: 2,
            uidl: None,
            size: 0,
        })
        .unwrap();
        sink.write(&vec![b'x'; 100_000]).unwrap();
        sink.abort();
        assert_eq!(fs::read(&path).unwrap(), after_first);
        assert!(after_first.starts_with(b"From MAILER-DAEMON "));
        assert!(after_first.ends_with(b"Subject: a\n\n>From me\n\n"));
        // A second opener cannot take the lock.
        let err = MboxSink::open(&path, None).err().unwrap();
        assert_eq!(crate::exit::exit_status(&err), Exit::TempFail);
    }
}
