//! Helpers for tests/serve.rs: run `mailctl serve` on port 0 and talk to it.
//!
//! The server prints `mailctl: smtp listening on ADDR` and
//! `mailctl: pop3 listening on ADDR` on stderr at start-up; [`Server::start`]
//! reads those lines to learn the ports the kernel chose.

#![allow(dead_code)]

#[path = "../fake/mod.rs"]
mod fake;

#[allow(unused_imports)] // Each test file uses some of them.
pub use fake::{apop_digest, CERT_PEM, KEY_PEM};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Guard against a hung server; never used to wait for something to happen.
pub const LIMIT: Duration = Duration::from_secs(60);

/// A running `mailctl serve`.
pub struct Server {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub smtp: u16,
    pub pop3: u16,
    /// The web inbox's port, with `--http` (0 without).
    pub http: u16,
    log: Arc<Mutex<Vec<String>>>,
    lines: Receiver<String>,
    reader: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts a server with a fresh maildir and extra arguments.
    pub fn start(extra: &[&str]) -> Server {
        Self::start_in(tempfile::tempdir().unwrap(), extra)
    }

    /// Starts a server whose maildir is `dir/mail`.
    pub fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> Server {
        Self::start_through(dir, mailctl(), "127.0.0.1:0", extra)
    }

    /// Starts a server that may open at most `files` descriptors
    /// (`ulimit -n`, set by a shell that then becomes the server).
    pub fn start_with_file_limit(files: u32, extra: &[&str]) -> Server {
        let mut shell = Command::new("bash");
        shell.args(["-c", &format!("ulimit -n {files} && exec \"$0\" \"$@\"")]);
        shell.arg(env!("CARGO_BIN_EXE_mailctl"));
        Self::start_through(tempfile::tempdir().unwrap(), shell, "127.0.0.1:0", extra)
    }

    /// Starts a server with a fresh maildir, SMTP on `smtp` (such as
    /// `127.0.0.1:2525`).
    pub fn start_on(smtp: &str, extra: &[&str]) -> Server {
        Self::start_through(tempfile::tempdir().unwrap(), mailctl(), smtp, extra)
    }

    /// Starts `mailctl serve` through `command` (the program or a
    /// wrapper), SMTP on `smtp`.
    fn start_through(
        dir: tempfile::TempDir,
        mut command: Command,
        smtp: &str,
        extra: &[&str],
    ) -> Server {
        let maildir = dir.path().join("mail");
        let mut child = command
            .arg("serve")
            .arg("--maildir")
            .arg(&maildir)
            .args(["--smtp", smtp, "--pop3", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mailctl runs");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, lines) = mpsc::channel();
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let mut server = Server {
            child: Some(child),
            dir,
            smtp: 0,
            pop3: 0,
            http: 0,
            log,
            lines,
            reader: Some(reader),
        };
        while server.smtp == 0 || server.pop3 == 0 {
            let line = server
                .lines
                .recv_timeout(LIMIT)
                .unwrap_or_else(|_| panic!("server did not start: {:?}", server.log()));
            let port = |l: &str| l.rsplit(':').next().unwrap().parse::<u16>().unwrap();
            if line.starts_with("mailctl: smtp listening on ") {
                server.smtp = port(&line);
            } else if line.starts_with("mailctl: pop3 listening on ") {
                server.pop3 = port(&line);
            } else if line.starts_with("mailctl: http listening on ")
                || line.starts_with("mailctl: https listening on ")
            {
                server.http = port(&line);
            }
        }
        server
    }

    /// The maildir root.
    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// Files in `mail/<mailbox>/<sub>`, sorted.
    pub fn files(&self, mailbox: &str, sub: &str) -> Vec<PathBuf> {
        files_in(&self.maildir().join(mailbox).join(sub))
    }

    /// stderr so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until a line of stderr contains `needle`; panics after [`LIMIT`].
    pub fn wait_for_log(&self, needle: &str) {
        let started = std::time::Instant::now();
        while !self.log().iter().any(|l| l.contains(needle)) {
            assert!(
                started.elapsed() < LIMIT,
                "no {needle:?} in {:?}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends SIGTERM and waits for the exit; returns status and the temp dir.
    pub fn terminate(self) -> (ExitStatus, Vec<String>, tempfile::TempDir) {
        self.signal("-TERM")
    }

    /// Sends a signal (`-INT`, `-TERM`) and waits for the exit.
    pub fn signal(self, signal: &str) -> (ExitStatus, Vec<String>, tempfile::TempDir) {
        let status = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.wait()
    }

    /// Waits for the server to exit by itself.
    pub fn wait(mut self) -> (ExitStatus, Vec<String>, tempfile::TempDir) {
        let status = self.child.take().unwrap().wait().unwrap();
        self.reader.take().unwrap().join().unwrap();
        let log = self.log();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        (status, log, dir)
    }

    pub fn smtp(&self) -> Client {
        Client::connect(self.smtp)
    }

    pub fn pop3(&self) -> Client {
        Client::connect(self.pop3)
    }

    /// An SMTP client whose message to `rcpt` is at its data (354 read).
    pub fn smtp_in_data(&self, rcpt: &str) -> Client {
        let mut c = self.smtp();
        c.expect_reply("220");
        c.send(
            format!("EHLO s\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n").as_bytes(),
        );
        c.expect_replies(&["250", "250", "250", "354"]);
        c
    }

    /// A POP3 client logged in (USER / PASS) as `user`.
    pub fn pop3_login(&self, user: &str, password: &str) -> Client {
        let mut c = self.pop3();
        c.expect_line("+OK");
        c.send(format!("USER {user}\r\nPASS {password}\r\n").as_bytes());
        c.expect_line("+OK");
        c.expect_line("+OK");
        c
    }

    /// Delivers one message over SMTP and checks every reply.
    pub fn deliver(&self, from: &str, to: &[&str], message: &[u8]) {
        let mut c = self.smtp();
        c.expect_reply("220");
        c.send(b"EHLO test\r\n");
        c.expect_reply("250");
        c.send(format!("MAIL FROM:<{from}>\r\n").as_bytes());
        c.expect_reply("250");
        for rcpt in to {
            c.send(format!("RCPT TO:<{rcpt}>\r\n").as_bytes());
            c.expect_reply("250");
        }
        c.send(b"DATA\r\n");
        c.expect_reply("354");
        c.send(&dot_stuff(message));
        c.send(b".\r\nQUIT\r\n");
        c.expect_reply("250");
        c.expect_reply("221");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Dot-stuffs a CRLF message for SMTP DATA.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    out
}

pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// A raw protocol client.
pub struct Client {
    pub reader: BufReader<TcpStream>,
    pub stream: TcpStream,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        Self::with(TcpStream::connect(("127.0.0.1", port)).unwrap())
    }

    /// Connects from another loopback address, `127.0.0.N`: to the server,
    /// another client.
    pub fn connect_from(source: [u8; 4], port: u16) -> Client {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let source = std::net::SocketAddr::from((source, 0));
        socket.bind(&source.into()).unwrap();
        let server = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        socket.connect(&server.into()).unwrap();
        Self::with(socket.into())
    }

    fn with(stream: TcpStream) -> Client {
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            stream,
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// One line, with its CRLF; empty at end of stream.
    pub fn line(&mut self) -> String {
        let mut buf = Vec::new();
        self.reader.read_until(b'\n', &mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }

    /// A complete SMTP reply (all its lines).
    pub fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let line = self.line();
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return all;
            }
        }
    }

    /// Reads a reply and checks how it starts.
    pub fn expect_reply(&mut self, prefix: &str) -> String {
        let reply = self.reply();
        assert!(
            reply.starts_with(prefix),
            "wanted {prefix:?}, got {reply:?}"
        );
        reply
    }

    /// Reads one reply per prefix and checks how each starts.
    pub fn expect_replies(&mut self, prefixes: &[&str]) {
        for prefix in prefixes {
            self.expect_reply(prefix);
        }
    }

    /// Reads a line and checks how it starts.
    pub fn expect_line(&mut self, prefix: &str) -> String {
        let line = self.line();
        assert!(line.starts_with(prefix), "wanted {prefix:?}, got {line:?}");
        line
    }

    /// A POP3 multi-line body up to and including the `.` line, raw.
    pub fn multiline(&mut self) -> String {
        let mut all = String::new();
        loop {
            let line = self.line();
            assert!(!line.is_empty(), "end of stream in multi-line response");
            all.push_str(&line);
            if line == ".\r\n" {
                return all;
            }
        }
    }

    /// Reads until the server closes the connection; an error if it has
    /// not after [`LIMIT`].
    pub fn until_closed(&mut self) -> std::io::Result<String> {
        let mut bytes = Vec::new();
        self.reader.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Reads until the server closes the connection.
    pub fn rest(&mut self) -> String {
        let mut s = String::new();
        let _ = self.reader.read_to_string(&mut s);
        s
    }
}

/// Runs a command; returns (success, stdout, stderr).
pub fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A stored message's bytes.
pub fn stored(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// The stored message without the two trace headers the server prepends.
pub fn body_of(stored: &[u8]) -> Vec<u8> {
    let text = stored;
    assert!(
        text.starts_with(b"Return-Path: <"),
        "{:?}",
        String::from_utf8_lossy(text)
    );
    let received = text.windows(10).position(|w| w == b"Received: ").unwrap();
    let mut i = received;
    // The Received header ends at the first CRLF not followed by a tab.
    loop {
        let eol = i + text[i..].windows(2).position(|w| w == b"\r\n").unwrap() + 2;
        if text[eol] != b'\t' {
            return text[eol..].to_vec();
        }
        i = eol;
    }
}

/// A server with a self-signed certificate; returns it and the CA file.
pub fn tls_server(extra: &[&str]) -> (Server, String) {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem").to_str().unwrap().to_string();
    let mut args = vec!["--tls-self-signed", ca.as_str()];
    args.extend_from_slice(extra);
    let server = Server::start_in(dir, &args);
    (server, ca)
}

/// The mailctl binary under test.
fn mailctl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mailctl"))
}
