//! A scripted fake SMTP server for the `mailctl send` integration tests:
//! one connection, on 127.0.0.1, in a thread, recording what the client
//! sent.

#![allow(dead_code)]

#[path = "../fake/mod.rs"]
mod fake;

use std::io::{Read, Write};

use base64::Engine;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How the server protects the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerTls {
    /// Never.
    None,
    /// Offers STARTTLS.
    Starttls,
    /// TLS from the first byte.
    Implicit,
}

/// What the fake server says. Replies are full lines without CRLF
/// (multi-line replies use "\r\n" inside).
#[derive(Clone)]
pub struct Script {
    pub tls: ServerTls,
    pub greeting: String,
    /// EHLO keywords after the first line (STARTTLS is added when offered
    /// and the connection is still plain).
    pub extensions: Vec<String>,
    pub ehlo_reply: Option<String>,
    pub auth_reply: String,
    pub mail_reply: String,
    /// Reply to RCPT for an address.
    pub rcpt_reply: fn(&str) -> String,
    pub data_reply: String,
    pub final_reply: String,
    /// Close the connection, without replying, on receiving a command
    /// starting with this (or "." for the end of the message).
    pub drop_on: Option<String>,
    /// Bytes written in the same write as the 220 reply to STARTTLS.
    pub inject_after_starttls: Vec<u8>,
    /// With PIPELINING: wait for the whole MAIL..DATA group before replying.
    pub expect_flight: bool,
    /// The SCRAM server-final message (decoded) answering the client-final
    /// one; the server-first message is made from the client's nonce.
    pub scram_final: String,
    /// Recipients taken per transaction: RCPTs after them get
    /// `452 4.5.3 Error: too many recipients`.
    pub rcpt_limit: Option<usize>,
    /// Verify SCRAM as a real server would, with this password: the
    /// client's proof, and its channel binding against this connection's
    /// `tls-server-end-point` (native-tls's, not mailctl's); a wrong one
    /// gets 535. `scram_final` is then not used.
    pub scram_password: Option<String>,
}

fn accept_all(_: &str) -> String {
    "250 2.1.5 Ok".to_string()
}

/// The reply to RCPT for `addr`, applying the script's recipient limit.
fn rcpt_answer(script: &Script, rec: &mut Recorded, addr: &str) -> String {
    if script
        .rcpt_limit
        .is_some_and(|limit| rec.accepted_now.len() >= limit)
    {
        return "452 4.5.3 Error: too many recipients".into();
    }
    let reply = (script.rcpt_reply)(addr);
    if reply.starts_with('2') {
        rec.accepted_now.push(addr.to_string());
    }
    reply
}

impl Default for Script {
    fn default() -> Self {
        Script {
            tls: ServerTls::None,
            greeting: "220 fake.example ESMTP ready".into(),
            extensions: vec![
                "PIPELINING".into(),
                "SIZE 100000000".into(),
                "8BITMIME".into(),
                "ENHANCEDSTATUSCODES".into(),
                "AUTH PLAIN LOGIN".into(),
            ],
            ehlo_reply: None,
            auth_reply: "235 2.7.0 Authentication successful".into(),
            mail_reply: "250 2.1.0 Ok".into(),
            rcpt_reply: accept_all,
            data_reply: "354 End data with <CR><LF>.<CR><LF>".into(),
            final_reply: "250 2.0.0 Ok: queued as 4QX1abc".into(),
            drop_on: None,
            inject_after_starttls: Vec::new(),
            expect_flight: false,
            scram_final: "v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
            rcpt_limit: None,
            scram_password: None,
        }
    }
}

/// What the client did.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Every command line (without CRLF); AUTH payload lines included.
    pub commands: Vec<String>,
    /// The DATA bytes exactly as received, final dot line included.
    pub data: Option<Vec<u8>>,
    /// MAIL FROM / RCPT TO addresses.
    pub mail_from: Option<String>,
    pub rcpt_to: Vec<String>,
    /// Whether MAIL, every RCPT and DATA arrived before the first reply.
    pub flight_before_reply: Option<bool>,
    /// Whether the connection had been upgraded to TLS when MAIL came.
    pub tls_at_mail: Option<bool>,
    /// The client's peak memory (VmHWM, kB) when the final dot arrived.
    pub client_vmhwm_kb: Option<u64>,
    /// Every message received: the recipients accepted in its transaction
    /// and its DATA bytes.
    pub transactions: Vec<(Vec<String>, Vec<u8>)>,
    /// The recipients accepted in the current transaction.
    accepted_now: Vec<String>,
    /// The decoded SCRAM client-first message, GS2 header included.
    pub scram_client_first: Option<String>,
    /// With `scram_password`: whether the client's proof and channel
    /// binding checked out.
    pub scram_verified: Option<bool>,
}

impl Recorded {
    pub fn saw(&self, prefix: &str) -> bool {
        self.commands
            .iter()
            .any(|c| c.to_ascii_uppercase().starts_with(prefix))
    }

    /// The message as delivered: DATA bytes with dot-stuffing removed and
    /// the final dot line dropped.
    pub fn message(&self) -> Vec<u8> {
        let data = self.data.as_ref().expect("a message was received");
        let body = data.strip_suffix(b".\r\n").expect("final dot");
        let mut out = Vec::with_capacity(body.len());
        for line in body.split_inclusive(|&b| b == b'\n') {
            out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        }
        out
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<native_tls::TlsStream<TcpStream>>),
    Gone,
}

struct Conn {
    stream: Stream,
    buf: Vec<u8>,
}

impl Conn {
    fn read_more(&mut self) -> std::io::Result<usize> {
        let mut chunk = [0u8; 65536];
        let n = match &mut self.stream {
            Stream::Plain(s) => s.read(&mut chunk)?,
            Stream::Tls(s) => s.read(&mut chunk)?,
            Stream::Gone => 0,
        };
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// One line with its CRLF, or None at end of stream / time-out.
    fn line(&mut self) -> Option<Vec<u8>> {
        let mut scanned = 0;
        loop {
            if let Some(p) = self.buf[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + p + 1;
                return Some(self.buf.drain(..end).collect());
            }
            scanned = self.buf.len();
            match self.read_more() {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Whether a complete line is already buffered, reading (with the
    /// stream's time-out) if not.
    fn has_line(&mut self) -> bool {
        loop {
            if self.buf.contains(&b'\n') {
                return true;
            }
            match self.read_more() {
                Ok(0) | Err(_) => return false,
                Ok(_) => {}
            }
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        let _ = match &mut self.stream {
            Stream::Plain(s) => s.write_all(bytes),
            Stream::Tls(s) => s.write_all(bytes).and_then(|_| s.flush()),
            Stream::Gone => Ok(()),
        };
    }

    fn reply(&mut self, text: &str) {
        self.write(format!("{text}\r\n").as_bytes());
    }

    fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// The connection's `tls-server-end-point` channel binding (RFC 5929).
    fn server_end_point(&self) -> Vec<u8> {
        match &self.stream {
            Stream::Tls(s) => s.tls_server_end_point().ok().flatten().unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

/// A SCRAM exchange seen from the server's side.
struct ScramServer {
    digest: openssl::hash::MessageDigest,
    /// The client-first message: GS2 header and the bare part.
    gs2_header: String,
    first_bare: String,
    server_first: String,
}

impl ScramServer {
    /// From the decoded client-first message of `AUTH mechanism`.
    fn new(mechanism: &str, client_first: &str) -> ScramServer {
        let digest = if mechanism.contains("SHA-256") {
            openssl::hash::MessageDigest::sha256()
        } else {
            openssl::hash::MessageDigest::sha1()
        };
        let split = client_first
            .match_indices(',')
            .nth(1)
            .map_or(0, |(i, _)| i + 1);
        let (gs2_header, first_bare) = client_first.split_at(split);
        let nonce = first_bare.split(",r=").nth(1).unwrap_or_default();
        ScramServer {
            digest,
            gs2_header: gs2_header.to_string(),
            first_bare: first_bare.to_string(),
            server_first: format!("r={nonce}fake,s=QSXCR+Q6sek8bf92,i=4096"),
        }
    }

    fn hmac(&self, key: &[u8], data: &[u8]) -> Vec<u8> {
        let key = openssl::pkey::PKey::hmac(key).unwrap();
        let mut signer = openssl::sign::Signer::new(self.digest, &key).unwrap();
        signer.sign_oneshot_to_vec(data).unwrap()
    }

    /// The server-final message for the decoded client-final message, or
    /// `None` when its proof or channel binding is wrong.
    fn server_final(&self, password: &str, client_final: &str, end_point: &[u8]) -> Option<String> {
        let engine = base64::engine::general_purpose::STANDARD;
        let (without_proof, proof) = client_final.rsplit_once(",p=")?;
        let mut binding = self.gs2_header.as_bytes().to_vec();
        if self.gs2_header.starts_with("p=") {
            binding.extend_from_slice(end_point);
        }
        if without_proof.split(',').next()? != format!("c={}", engine.encode(&binding)) {
            return None;
        }
        let mut salted = vec![0u8; self.digest.size()];
        let salt = engine.decode("QSXCR+Q6sek8bf92").unwrap();
        openssl::pkcs5::pbkdf2_hmac(password.as_bytes(), &salt, 4096, self.digest, &mut salted)
            .unwrap();
        let auth_message = format!("{},{},{without_proof}", self.first_bare, self.server_first);
        let client_key = self.hmac(&salted, b"Client Key");
        let stored_key = openssl::hash::hash(self.digest, &client_key).unwrap();
        let signature = self.hmac(&stored_key, auth_message.as_bytes());
        let expected: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        if engine.decode(proof).ok()? != expected {
            return None;
        }
        let server_key = self.hmac(&salted, b"Server Key");
        let verifier = self.hmac(&server_key, auth_message.as_bytes());
        Some(format!("v={}", engine.encode(verifier)))
    }
}

/// Answers the line after a SCRAM challenge (`step` 2: the client-final
/// message, 3: the answer to the server-final one); returns the next step,
/// 0 once the exchange is over.
fn scram_answer(
    c: &mut Conn,
    script: &Script,
    rec: &mut Recorded,
    step: u32,
    server: &Option<ScramServer>,
    text: &str,
) -> u32 {
    if let (2, Some(password), Some(server)) = (step, &script.scram_password, server) {
        let client_final = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .unwrap_or_default();
        let client_final = String::from_utf8_lossy(&client_final);
        let end_point = c.server_end_point();
        let answer = server.server_final(password, &client_final, &end_point);
        rec.scram_verified = Some(answer.is_some());
        return match answer {
            Some(server_final) => {
                c.reply(&format!("334 {}", b64(&server_final)));
                step
            }
            None => {
                c.reply("535 5.7.8 Error: authentication failed");
                0
            }
        };
    }
    if step == 2 {
        c.reply(&format!("334 {}", b64(&script.scram_final)));
        return step;
    }
    c.reply(if text == "*" {
        "501 5.7.0 Authentication cancelled"
    } else {
        &script.auth_reply
    });
    0
}

fn vmhwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A running fake server.
pub struct FakeServer {
    /// The address clients reach it at (127.0.0.1 unless [`FakeServer::start_on`]).
    pub host: String,
    pub port: u16,
    pub ca_file: Option<PathBuf>,
    /// Set to the client's pid to have its memory recorded.
    pub client_pid: Arc<AtomicU32>,
    handle: Option<JoinHandle<Recorded>>,
    /// Set when the test is done with the server: it stops waiting.
    stop: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

impl FakeServer {
    pub fn start(script: Script) -> FakeServer {
        Self::start_on("127.0.0.1", script)
    }

    /// A server listening on `host` (an IP address of this machine).
    pub fn start_on(host: &str, script: Script) -> FakeServer {
        let listener = TcpListener::bind((host, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let mut ca_file = None;
        let acceptor = if script.tls == ServerTls::None {
            None
        } else {
            let path = dir.path().join("ca.pem");
            std::fs::write(&path, fake::CERT_PEM).unwrap();
            ca_file = Some(path);
            Some(fake::acceptor())
        };
        let client_pid = Arc::new(AtomicU32::new(0));
        let pid = client_pid.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let handle = std::thread::spawn(move || {
            let Some(tcp) = fake::accept(&listener, &stopped) else {
                return Recorded::default();
            };
            tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            serve(tcp, &script, acceptor, &pid)
        });
        FakeServer {
            host: host.to_string(),
            port,
            ca_file,
            client_pid,
            handle: Some(handle),
            stop,
            _dir: dir,
        }
    }

    /// `HOST:PORT`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Waits for the session to end and returns what the client did; fails
    /// when no client connected within [`fake::ACCEPT_LIMIT`].
    pub fn finish(mut self) -> Recorded {
        let handle = self.handle.take().expect("finished once");
        handle.join().expect("fake server thread")
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(
    tcp: TcpStream,
    script: &Script,
    acceptor: Option<native_tls::TlsAcceptor>,
    client_pid: &AtomicU32,
) -> Recorded {
    let mut rec = Recorded::default();
    let stream = match script.tls {
        ServerTls::Implicit => match acceptor.as_ref().unwrap().accept(tcp) {
            Ok(s) => Stream::Tls(Box::new(s)),
            Err(_) => return rec,
        },
        _ => Stream::Plain(tcp),
    };
    let mut c = Conn {
        stream,
        buf: Vec::new(),
    };
    c.reply(&script.greeting);
    let pipelining = script.extensions.iter().any(|e| e == "PIPELINING");
    let mut login_step = 0;
    let mut scram_step = 0;
    let mut scram_server: Option<ScramServer> = None;
    while let Some(line) = c.line() {
        let text = String::from_utf8_lossy(&line)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        rec.commands.push(text.clone());
        let upper = text.to_ascii_uppercase();
        if let Some(drop) = &script.drop_on {
            if upper.starts_with(drop.as_str()) {
                return rec;
            }
        }
        if login_step > 0 {
            login_step += 1;
            if login_step == 2 {
                c.reply("334 UGFzc3dvcmQ6");
            } else {
                login_step = 0;
                c.reply(&script.auth_reply);
            }
            continue;
        }
        if scram_step > 0 {
            scram_step = scram_answer(
                &mut c,
                script,
                &mut rec,
                scram_step + 1,
                &scram_server,
                &text,
            );
            continue;
        }
        if upper.starts_with("EHLO") {
            if let Some(r) = &script.ehlo_reply {
                c.reply(r);
                continue;
            }
            let mut lines = vec!["fake.example".to_string()];
            if script.tls == ServerTls::Starttls && !c.is_tls() {
                lines.push("STARTTLS".into());
            }
            lines.extend(script.extensions.iter().cloned());
            let n = lines.len();
            let reply: String = lines
                .iter()
                .enumerate()
                .map(|(i, l)| format!("250{}{l}\r\n", if i + 1 == n { ' ' } else { '-' }))
                .collect();
            c.write(reply.as_bytes());
        } else if upper.starts_with("HELO") {
            c.reply("250 fake.example");
        } else if upper == "STARTTLS" {
            let mut bytes = b"220 2.0.0 Ready to start TLS\r\n".to_vec();
            bytes.extend_from_slice(&script.inject_after_starttls);
            c.write(&bytes);
            let tcp = match std::mem::replace(&mut c.stream, Stream::Gone) {
                Stream::Plain(t) => t,
                _ => return rec,
            };
            match acceptor.as_ref().unwrap().accept(tcp) {
                Ok(s) => c.stream = Stream::Tls(Box::new(s)),
                Err(_) => return rec,
            }
            c.buf.clear();
        } else if upper.starts_with("AUTH LOGIN") {
            login_step = 1;
            c.reply("334 VXNlcm5hbWU6");
        } else if upper.starts_with("AUTH SCRAM-") {
            // The server-first message extends the client's nonce.
            let first = text.rsplit(' ').next().unwrap_or_default();
            let first = base64::engine::general_purpose::STANDARD
                .decode(first)
                .unwrap_or_default();
            let first = String::from_utf8_lossy(&first);
            let mechanism = text.split(' ').nth(1).unwrap_or_default();
            let server = ScramServer::new(mechanism, &first);
            rec.scram_client_first = Some(first.to_string());
            scram_step = 1;
            c.reply(&format!("334 {}", b64(&server.server_first)));
            scram_server = Some(server);
        } else if upper.starts_with("AUTH") {
            c.reply(&script.auth_reply);
        } else if upper.starts_with("MAIL FROM:") {
            rec.tls_at_mail = Some(c.is_tls());
            rec.mail_from = Some(path_of(&text));
            rec.accepted_now.clear();
            if pipelining && script.expect_flight {
                // Read RCPT... DATA before replying to anything.
                let mut group = vec![text.clone()];
                let mut complete = false;
                while c.has_line() {
                    let l = c.line().unwrap();
                    let t = String::from_utf8_lossy(&l)
                        .trim_end_matches(['\r', '\n'])
                        .to_string();
                    rec.commands.push(t.clone());
                    let done = t.eq_ignore_ascii_case("DATA");
                    group.push(t);
                    if done {
                        complete = true;
                        break;
                    }
                }
                rec.flight_before_reply = Some(complete);
                let mut replies = String::new();
                let mut any_rcpt_ok = false;
                let mut data_open = false;
                for cmd in &group {
                    let up = cmd.to_ascii_uppercase();
                    if up.starts_with("MAIL") {
                        replies.push_str(&format!("{}\r\n", script.mail_reply));
                    } else if up.starts_with("RCPT TO:") {
                        let addr = path_of(cmd);
                        let r = rcpt_answer(script, &mut rec, &addr);
                        any_rcpt_ok |= r.starts_with('2');
                        rec.rcpt_to.push(addr);
                        replies.push_str(&format!("{r}\r\n"));
                    } else if up == "DATA" {
                        if any_rcpt_ok && script.mail_reply.starts_with('2') {
                            data_open = script.data_reply.starts_with("354");
                            replies.push_str(&format!("{}\r\n", script.data_reply));
                        } else {
                            replies.push_str("554 5.5.1 Error: no valid recipients\r\n");
                        }
                    }
                }
                c.write(replies.as_bytes());
                if data_open && !receive_data(&mut c, script, &mut rec, client_pid) {
                    return rec;
                }
                continue;
            }
            c.reply(&script.mail_reply);
        } else if upper.starts_with("RCPT TO:") {
            let addr = path_of(&text);
            let r = rcpt_answer(script, &mut rec, &addr);
            rec.rcpt_to.push(addr);
            c.reply(&r);
        } else if upper == "DATA" {
            c.reply(&script.data_reply);
            if script.data_reply.starts_with("354")
                && !receive_data(&mut c, script, &mut rec, client_pid)
            {
                return rec;
            }
        } else if upper == "RSET" || upper == "NOOP" {
            rec.accepted_now.clear();
            c.reply("250 2.0.0 Ok");
        } else if upper == "QUIT" {
            c.reply("221 2.0.0 Bye");
            return rec;
        } else {
            c.reply("502 5.5.2 Error: command not recognized");
        }
    }
    rec
}

/// Reads the message up to the final dot; false if the connection ended
/// or the script drops it there.
fn receive_data(c: &mut Conn, script: &Script, rec: &mut Recorded, client_pid: &AtomicU32) -> bool {
    let mut data = Vec::new();
    loop {
        let Some(line) = c.line() else {
            rec.data = None;
            return false;
        };
        data.extend_from_slice(&line);
        if line == b".\r\n" {
            break;
        }
    }
    rec.transactions
        .push((std::mem::take(&mut rec.accepted_now), data.clone()));
    rec.data = Some(data);
    let pid = client_pid.load(Ordering::SeqCst);
    if pid != 0 {
        rec.client_vmhwm_kb = vmhwm_kb(pid);
    }
    if script.drop_on.as_deref() == Some(".") {
        return false;
    }
    c.reply(&script.final_reply);
    true
}

fn path_of(command: &str) -> String {
    let start = command.find('<').map_or(0, |p| p + 1);
    let end = command[start..]
        .find('>')
        .map_or(command.len(), |p| start + p);
    command[start..end].to_string()
}

/// Runs `mailctl` with `args`, `stdin` as standard input, and a password in
/// MAILCTL_PASSWORD.
/// An IPv4 address of this machine that is not loopback, if it has one
/// (the source address a route to a documentation address would use; no
/// packet is sent).
pub fn non_loopback_address() -> Option<String> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then(|| ip.to_string())
}

pub fn mailctl(args: &[&str], stdin: &[u8]) -> Output {
    run_with(args, stdin, |_| {})
}

/// Like [`mailctl`], calling `spawned` with the child's pid.
pub fn run_with(args: &[&str], stdin: &[u8], spawned: impl FnOnce(u32)) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailctl"))
        .args(args)
        .env("MAILCTL_PASSWORD", PASSWORD)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mailctl runs");
    spawned(child.id());
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    output
}

/// The password every test uses.
pub const PASSWORD: &str = "s3cret-Pa55w0rd";

pub fn code(output: &Output) -> i32 {
    output.status.code().expect("exited normally")
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Base64 of a text, as SASL carries it.
fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}
