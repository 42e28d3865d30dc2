//! A scripted fake POP3 server for the `fetch` integration tests: a std
//! `TcpListener` on 127.0.0.1 in a thread, serving a mailbox that persists
//! across connections, recording every line the client sent.

#![allow(dead_code)]

#[path = "../fake/mod.rs"]
mod fake;

pub use fake::{acceptor, CERT_PEM, KEY_PEM};

use std::collections::{BTreeSet, VecDeque};
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine;
use native_tls::{TlsAcceptor, TlsStream};

/// How the fake server protects the connection.
#[derive(Clone)]
pub enum Tls {
    /// Plain TCP, no STLS.
    None,
    /// STLS offered in CAPA (and honoured).
    Stls(Arc<TlsAcceptor>),
    /// TLS from the first byte.
    Implicit(Arc<TlsAcceptor>),
}

/// A hook run by the server thread when a RETR for message n arrives,
/// before it is answered.
pub type Hook = Arc<dyn Fn(u32) + Send + Sync>;

/// The server's behaviour.
#[derive(Clone)]
pub struct Config {
    pub greeting: String,
    /// CAPA lines; `None` answers CAPA with -ERR.
    pub capa: Option<Vec<String>>,
    pub user: String,
    pub password: String,
    /// Whether UIDL is answered.
    pub uidl: bool,
    pub tls: Tls,
    /// Replies that replace the normal one: (command word, reply line).
    /// For "RETR 2" style keys, the number must match too.
    pub fail: Vec<(String, String)>,
    /// Cut the connection after sending this many bytes of RETR n's body.
    pub cut_retr: Option<(u32, usize)>,
    /// Bytes sent right after STLS's +OK, before the handshake.
    pub inject_after_stls: Vec<u8>,
    /// Do not answer the first RETR before this many RETR have arrived.
    pub pipeline_gate: usize,
    pub on_retr: Option<Hook>,
    /// Run when a DELE for message n arrives, before it is answered.
    pub on_dele: Option<Hook>,
    /// Sizes LIST reports instead of the real ones: (number, size).
    pub lie_size: Option<(u32, u64)>,
    /// Connections to serve before the thread ends.
    pub connections: usize,
    /// Send RETR replies one byte at a time, with this pause between bytes.
    pub trickle: Option<Duration>,
    /// Pause before answering each RETR.
    pub retr_delay: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            greeting: "+OK fake POP3 ready <1896.697170952@fake.example>".into(),
            capa: Some(
                ["TOP", "USER", "UIDL", "RESP-CODES", "SASL PLAIN"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            ),
            user: "alice".into(),
            password: "s3cret-pw".into(),
            uidl: true,
            tls: Tls::None,
            fail: Vec::new(),
            cut_retr: None,
            inject_after_stls: Vec::new(),
            pipeline_gate: 0,
            on_retr: None,
            on_dele: None,
            lie_size: None,
            connections: 1,
            trickle: None,
            retr_delay: None,
        }
    }
}

/// One stored message.
#[derive(Clone, Debug)]
pub struct Stored {
    pub uid: String,
    pub bytes: Vec<u8>,
}

/// What the server saw.
#[derive(Clone, Debug, Default)]
pub struct Log {
    /// Every client line, lossily decoded, without CRLF, per connection in
    /// order ("--- connection" separates connections; "--- tls" marks the
    /// handshake).
    pub lines: Vec<String>,
    /// How many RETR had arrived when the first RETR was answered.
    pub retr_before_first_answer: usize,
    /// Whether any command arrived while an earlier one was unanswered.
    pub pipelined_seen: bool,
}

impl Log {
    pub fn commands(&self, word: &str) -> Vec<String> {
        self.lines
            .iter()
            .filter(|l| {
                l.split(' ')
                    .next()
                    .is_some_and(|w| w.eq_ignore_ascii_case(word))
            })
            .cloned()
            .collect()
    }
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

/// A running fake server.
pub struct Server {
    pub port: u16,
    pub log: Arc<Mutex<Log>>,
    pub mailbox: Arc<Mutex<Vec<Stored>>>,
    handle: Option<JoinHandle<()>>,
    /// Set when the test is done with the server: it stops waiting.
    stop: Arc<AtomicBool>,
}

impl Server {
    pub fn start(config: Config, messages: Vec<Vec<u8>>) -> Server {
        let mailbox: Vec<Stored> = messages
            .into_iter()
            .enumerate()
            .map(|(i, bytes)| Stored {
                uid: format!("uid-{}", i + 1),
                bytes,
            })
            .collect();
        Self::start_with(config, mailbox)
    }

    pub fn start_with(config: Config, mailbox: Vec<Stored>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Log::default()));
        let mailbox = Arc::new(Mutex::new(mailbox));
        let (log2, mailbox2) = (log.clone(), mailbox.clone());
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let handle = std::thread::spawn(move || {
            for _ in 0..config.connections {
                let Some(tcp) = fake::accept(&listener, &stopped) else {
                    return;
                };
                tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                log2.lock().unwrap().lines.push("--- connection".into());
                let mut session = ServerSession::new(&config, tcp, &log2, &mailbox2);
                let _ = session.run();
            }
        });
        Server {
            port,
            log,
            mailbox,
            handle: Some(handle),
            stop,
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn localhost(&self) -> String {
        format!("localhost:{}", self.port)
    }

    /// Waits for the server thread (every connection of the config) and
    /// returns what it saw; fails when a client did not come within
    /// [`fake::ACCEPT_LIMIT`].
    pub fn finish(mut self) -> Log {
        if let Some(h) = self.handle.take() {
            h.join().unwrap();
        }
        self.log.lock().unwrap().clone()
    }

    /// What the server saw, without waiting for more clients: a client
    /// that connected before this call is served first.
    pub fn stop(self) -> Log {
        self.stop.store(true, Ordering::SeqCst);
        self.finish()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Gone,
}

impl Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
            Conn::Gone => Ok(0),
        }
    }
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.write_all(bytes).and_then(|_| s.flush()),
            Conn::Tls(s) => s.write_all(bytes).and_then(|_| s.flush()),
            Conn::Gone => Ok(()),
        }
    }
}

struct ServerSession<'a> {
    config: &'a Config,
    conn: Conn,
    buf: Vec<u8>,
    queued: VecDeque<String>,
    log: &'a Arc<Mutex<Log>>,
    mailbox: &'a Arc<Mutex<Vec<Stored>>>,
    /// Indices into the mailbox of this session's messages.
    view: Vec<usize>,
    marked: BTreeSet<u32>,
    user_ok: bool,
    authed: bool,
    first_retr_answered: bool,
}

fn stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

impl<'a> ServerSession<'a> {
    fn new(
        config: &'a Config,
        tcp: TcpStream,
        log: &'a Arc<Mutex<Log>>,
        mailbox: &'a Arc<Mutex<Vec<Stored>>>,
    ) -> Self {
        ServerSession {
            config,
            conn: Conn::Plain(tcp),
            buf: Vec::new(),
            queued: VecDeque::new(),
            log,
            mailbox,
            view: Vec::new(),
            marked: BTreeSet::new(),
            user_ok: false,
            authed: false,
            first_retr_answered: false,
        }
    }

    fn read_line(&mut self) -> Option<String> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                let text = String::from_utf8_lossy(&line)
                    .trim_end_matches(['\r', '\n'])
                    .to_string();
                self.log.lock().unwrap().lines.push(text.clone());
                return Some(text);
            }
            let mut chunk = [0u8; 4096];
            match self.conn.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn next_command(&mut self) -> Option<String> {
        let line = match self.queued.pop_front() {
            Some(l) => l,
            None => self.read_line()?,
        };
        if !self.queued.is_empty() || self.buf.contains(&b'\n') {
            self.log.lock().unwrap().pipelined_seen = true;
        }
        Some(line)
    }

    fn send(&mut self, bytes: &[u8]) {
        let _ = self.conn.write(bytes);
    }

    fn ok(&mut self, text: &str) {
        self.send(format!("+OK {text}\r\n").as_bytes());
    }

    fn err(&mut self, text: &str) {
        self.send(format!("-ERR {text}\r\n").as_bytes());
    }

    fn override_reply(&self, line: &str) -> Option<String> {
        let upper = line.to_ascii_uppercase();
        self.config.fail.iter().find_map(|(key, reply)| {
            let key = key.to_ascii_uppercase();
            let matches = if key.contains(' ') {
                upper == key || upper.starts_with(&format!("{key} "))
            } else {
                upper.split(' ').next() == Some(key.as_str())
            };
            matches.then(|| reply.clone())
        })
    }

    fn message(&self, arg: Option<&str>) -> Option<(u32, Vec<u8>, String)> {
        let n: u32 = arg?.parse().ok()?;
        if n == 0 || self.marked.contains(&n) {
            return None;
        }
        let idx = *self.view.get(n as usize - 1)?;
        let m = self.mailbox.lock().unwrap()[idx].clone();
        Some((n, m.bytes, m.uid))
    }

    fn size_of(&self, n: u32, real: usize) -> u64 {
        match self.config.lie_size {
            Some((m, size)) if m == n => size,
            _ => real as u64,
        }
    }

    fn run(&mut self) -> Option<()> {
        if let Tls::Implicit(acceptor) = &self.config.tls {
            let Conn::Plain(tcp) = std::mem::replace(&mut self.conn, Conn::Gone) else {
                unreachable!()
            };
            self.conn = Conn::Tls(Box::new(acceptor.accept(tcp).ok()?));
        }
        let greeting = format!("{}\r\n", self.config.greeting);
        self.send(greeting.as_bytes());
        if self.config.greeting.starts_with("-ERR") {
            return None;
        }
        loop {
            let line = self.next_command()?;
            if let Some(reply) = self.override_reply(&line) {
                self.send(format!("{reply}\r\n").as_bytes());
                if line.eq_ignore_ascii_case("QUIT") {
                    return Some(());
                }
                continue;
            }
            let mut words = line.splitn(3, ' ');
            let cmd = words.next().unwrap_or("").to_ascii_uppercase();
            let arg1 = words.next();
            let arg2 = words.next();
            match cmd.as_str() {
                "CAPA" => match &self.config.capa {
                    Some(lines) => {
                        let mut text = String::from("+OK capabilities\r\n");
                        let tls_now = matches!(self.conn, Conn::Tls(_));
                        for l in lines {
                            if l == "STLS" && tls_now {
                                continue;
                            }
                            text.push_str(l);
                            text.push_str("\r\n");
                        }
                        if matches!(self.config.tls, Tls::Stls(_)) && !tls_now {
                            text.push_str("STLS\r\n");
                        }
                        text.push_str(".\r\n");
                        self.send(text.as_bytes());
                    }
                    None => self.err("unknown command"),
                },
                "STLS" => {
                    let Tls::Stls(acceptor) = self.config.tls.clone() else {
                        self.err("no TLS here");
                        continue;
                    };
                    let mut reply = b"+OK begin TLS\r\n".to_vec();
                    reply.extend_from_slice(&self.config.inject_after_stls);
                    self.send(&reply);
                    let Conn::Plain(tcp) = std::mem::replace(&mut self.conn, Conn::Gone) else {
                        return None;
                    };
                    self.buf.clear();
                    self.conn = Conn::Tls(Box::new(acceptor.accept(tcp).ok()?));
                    self.log.lock().unwrap().lines.push("--- tls".into());
                }
                "USER" => {
                    self.user_ok = arg1 == Some(self.config.user.as_str());
                    if self.user_ok {
                        self.ok("send PASS")
                    } else {
                        self.err("[AUTH] unknown user")
                    }
                }
                "PASS" => {
                    let pw = line.get(5..).unwrap_or("");
                    if self.user_ok && pw == self.config.password {
                        self.login();
                    } else {
                        self.err("[AUTH] invalid login");
                    }
                }
                "APOP" => {
                    let want = fake::apop_digest(&self.config.greeting, &self.config.password);
                    if arg1 == Some(self.config.user.as_str()) && arg2 == Some(want.as_str()) {
                        self.login();
                    } else {
                        self.err("[AUTH] bad digest");
                    }
                }
                "AUTH" => {
                    // RFC 5034 section 4: at most 255 octets with the CRLF.
                    if line.len() + 2 > 255 {
                        self.err("command line too long");
                        continue;
                    }
                    let mech = arg1.unwrap_or("").to_ascii_uppercase();
                    // Without an initial response: an empty challenge.
                    let response = match arg2 {
                        Some(b) => b.to_string(),
                        None => {
                            self.send(b"+ \r\n");
                            self.next_command()?
                        }
                    };
                    let data = base64::engine::general_purpose::STANDARD
                        .decode(&response)
                        .unwrap_or_default();
                    let good = match mech.as_str() {
                        "PLAIN" => {
                            data == format!("\0{}\0{}", self.config.user, self.config.password)
                                .into_bytes()
                        }
                        "XOAUTH2" => {
                            let good = format!(
                                "user={}\x01auth=Bearer {}\x01\x01",
                                self.config.user, self.config.password
                            );
                            if data != good.into_bytes() {
                                self.send(b"+ eyJzdGF0dXMiOiI0MDEifQ==\r\n");
                                self.next_command()?;
                                self.err("[AUTH] token refused");
                                continue;
                            }
                            true
                        }
                        // The identity comes from the TLS client certificate.
                        "EXTERNAL" => response == "=",
                        _ => false,
                    };
                    if good {
                        self.login();
                    } else {
                        self.err("[AUTH] authentication failed");
                    }
                }
                "QUIT" => {
                    if self.authed {
                        let mut mailbox = self.mailbox.lock().unwrap();
                        let doomed: BTreeSet<usize> = self
                            .marked
                            .iter()
                            .map(|n| self.view[*n as usize - 1])
                            .collect();
                        let mut i = 0;
                        mailbox.retain(|_| {
                            let keep = !doomed.contains(&i);
                            i += 1;
                            keep
                        });
                    }
                    self.ok("bye");
                    return Some(());
                }
                _ if !self.authed => self.err("log in first"),
                "STAT" => {
                    let (count, total) = self.stat();
                    self.ok(&format!("{count} {total}"));
                }
                "LIST" => {
                    if let Some(a) = arg1 {
                        match self.message(Some(a)) {
                            Some((n, bytes, _)) => {
                                let s = self.size_of(n, bytes.len());
                                self.ok(&format!("{n} {s}"))
                            }
                            None => self.err("no such message"),
                        }
                        continue;
                    }
                    let mut text = String::from("+OK scan listing\r\n");
                    for n in 1..=self.view.len() as u32 {
                        if let Some((n, bytes, _)) = self.message(Some(&n.to_string())) {
                            text.push_str(&format!("{n} {}\r\n", self.size_of(n, bytes.len())));
                        }
                    }
                    text.push_str(".\r\n");
                    self.send(text.as_bytes());
                }
                "UIDL" => {
                    if !self.config.uidl {
                        self.err("UIDL not supported");
                        continue;
                    }
                    let mut text = String::from("+OK\r\n");
                    for n in 1..=self.view.len() as u32 {
                        if let Some((n, _, uid)) = self.message(Some(&n.to_string())) {
                            text.push_str(&format!("{n} {uid}\r\n"));
                        }
                    }
                    text.push_str(".\r\n");
                    self.send(text.as_bytes());
                }
                "TOP" => match self.message(arg1) {
                    Some((_, bytes, _)) => {
                        let end = bytes
                            .windows(4)
                            .position(|w| w == b"\r\n\r\n")
                            .map_or(bytes.len(), |p| p + 4);
                        let mut reply = b"+OK\r\n".to_vec();
                        reply.extend_from_slice(&stuff(&bytes[..end]));
                        self.send(&reply);
                    }
                    None => self.err("no such message"),
                },
                "RETR" => {
                    if !self.first_retr_answered {
                        self.first_retr_answered = true;
                        let mut seen = 1 + self.queued.iter().filter(|l| is_retr(l)).count();
                        while seen < self.config.pipeline_gate {
                            let next = self.read_line()?;
                            if is_retr(&next) {
                                seen += 1;
                            }
                            self.queued.push_back(next);
                        }
                        self.log.lock().unwrap().retr_before_first_answer = seen;
                    }
                    let n: u32 = arg1.and_then(|a| a.parse().ok()).unwrap_or(0);
                    if let Some(hook) = &self.config.on_retr {
                        hook(n);
                    }
                    if let Some(pause) = self.config.retr_delay {
                        std::thread::sleep(pause);
                    }
                    match self.message(arg1) {
                        Some((n, bytes, _)) => {
                            let mut reply = format!("+OK {} octets\r\n", bytes.len()).into_bytes();
                            let body = stuff(&bytes);
                            if let Some((cut_n, cut_at)) = self.config.cut_retr {
                                if cut_n == n {
                                    reply.extend_from_slice(&body[..cut_at.min(body.len())]);
                                    self.send(&reply);
                                    self.conn = Conn::Gone;
                                    return None;
                                }
                            }
                            reply.extend_from_slice(&body);
                            if let Some(pause) = self.config.trickle {
                                for b in reply.chunks(1) {
                                    self.conn.write(b).ok()?;
                                    std::thread::sleep(pause);
                                }
                                continue;
                            }
                            self.send(&reply);
                        }
                        None => self.err("no such message"),
                    }
                }
                "DELE" => match self.message(arg1) {
                    Some((n, _, _)) => {
                        if let Some(hook) = &self.config.on_dele {
                            hook(n);
                        }
                        self.marked.insert(n);
                        self.ok("marked");
                    }
                    None => self.err("no such message"),
                },
                "RSET" => {
                    self.marked.clear();
                    self.ok("");
                }
                "NOOP" => self.ok(""),
                _ => self.err("unknown command"),
            }
        }
    }

    fn login(&mut self) {
        self.authed = true;
        self.view = (0..self.mailbox.lock().unwrap().len()).collect();
        self.ok("maildrop locked and ready");
    }

    fn stat(&self) -> (usize, usize) {
        let mailbox = self.mailbox.lock().unwrap();
        let live: Vec<&Stored> = self
            .view
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.marked.contains(&(*i as u32 + 1)))
            .map(|(_, &idx)| &mailbox[idx])
            .collect();
        (live.len(), live.iter().map(|m| m.bytes.len()).sum())
    }
}

fn is_retr(line: &str) -> bool {
    line.to_ascii_uppercase().starts_with("RETR ")
}

/// Runs the built binary with a password in the environment and a private
/// state directory.
/// Runs mailctl with `args`, the configured password and its state under
/// `state_home`.
pub fn mailctl<S: AsRef<OsStr>>(args: &[S], state_home: &Path) -> Output {
    mailctl_env(args, state_home, &[])
}

/// [`mailctl`] with more environment variables.
pub fn mailctl_env<S: AsRef<OsStr>>(args: &[S], state_home: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailctl"));
    cmd.args(args)
        .env("MAILCTL_PASSWORD", "s3cret-pw")
        .env("XDG_STATE_HOME", state_home)
        .env_remove("HOME");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// The exit code of a finished run.
pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A small message with the given subject and body lines.
pub fn message(subject: &str, body: &[u8]) -> Vec<u8> {
    let mut m = format!(
        "From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nDate: Fri, 01 Mar 2024 10:00:00 +0100\r\nSubject: {subject}\r\nMessage-ID: <{}@example.org>\r\n\r\n",
        subject.len()
    )
    .into_bytes();
    m.extend_from_slice(body);
    m
}
