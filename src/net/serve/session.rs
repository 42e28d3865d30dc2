//! Drives the SMTP and POP3 machines over one accepted connection: reads
//! command lines (bounded), sends replies (batched while the client
//! pipelines, flushed before the server would wait), performs the machines'
//! actions and logs the transcript with credentials redacted.

use std::io::{self, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use super::listener::{Shared, Stop, Watch};
use super::summary;
use crate::net::connection::Connection;
use crate::proto::line::LineReader;
use crate::proto::pop3::server::{MessageStuffer, OpenError, Pop3Action, Pop3Server};
use crate::proto::smtp::fault::Stage;
use crate::proto::smtp::receive::DataReceiver;
use crate::proto::smtp::server::{Action, DataOutcome, SmtpServer};
use crate::store::mailbox::{Incoming, MailboxSession, Received};
use crate::text::printable;
use crate::transcript::Transcript;

/// The longest command line accepted (RFC 5321 asks for 512, RFC 2449 for
/// 255; longer lines from lenient clients are still fine up to this).
pub const MAX_COMMAND_LINE: usize = 4096;

/// Message data must arrive at this many bytes per `--command-timeout` at
/// least: each chunk of this size restarts the clock (and each chunk read
/// from a file when a message is sent).
pub const DATA_CHUNK: usize = 64 * 1024;

/// Summaries are made only for messages up to this size.
const MAX_SUMMARY_SIZE: u64 = 32 * 1024 * 1024;

/// Why reading a command stopped.
enum Input {
    Line(Vec<u8>),
    TooLong,
    Eof,
    TimedOut,
    Failed(io::Error),
}

/// What a server machine answers when a session's input is not a command
/// line.
trait Interruptions {
    /// To a line over the length limit (discarded; the session goes on).
    fn too_long(&mut self) -> Vec<u8>;
    /// To an idle client, before closing.
    fn timed_out(&self) -> Vec<u8>;
    /// To a client cut off by the server shutting down.
    fn shutdown(&self) -> Vec<u8>;
}

impl Interruptions for SmtpServer {
    fn too_long(&mut self) -> Vec<u8> {
        self.line_too_long().to_bytes()
    }
    fn timed_out(&self) -> Vec<u8> {
        self.timeout_reply().to_bytes()
    }
    fn shutdown(&self) -> Vec<u8> {
        self.shutdown_reply().to_bytes()
    }
}

impl Interruptions for Pop3Server {
    fn too_long(&mut self) -> Vec<u8> {
        self.line_too_long()
    }
    fn timed_out(&self) -> Vec<u8> {
        self.timeout_reply()
    }
    fn shutdown(&self) -> Vec<u8> {
        self.shutdown_reply()
    }
}

/// How a session goes on after reading its input.
enum Next {
    /// A command line to handle.
    Line(Vec<u8>),
    /// The session is over: send what is queued and close.
    End,
    /// The connection failed: nothing more can be sent.
    Broken,
}

/// The next command line of a session. A line too long is answered and
/// skipped; a time-out, a shutdown or the client leaving ends the session,
/// answered where the protocol has something to say.
fn next_command(
    shared: &Shared,
    session: &mut Session,
    out: &mut Vec<u8>,
    machine: &mut impl Interruptions,
) -> Next {
    let t = &session.t;
    loop {
        match read_command(&mut session.conn, out, session.watch) {
            Input::Line(line) => return Next::Line(line),
            Input::TooLong => {
                t.client(b"<line too long, discarded>");
                emit(t, out, &machine.too_long());
            }
            Input::TimedOut => {
                emit(t, out, &machine.timed_out());
                return Next::End;
            }
            Input::Eof if shared.stopping.load(Ordering::SeqCst) => {
                emit(t, out, &machine.shutdown());
                return Next::End;
            }
            Input::Eof => {
                t.note("*", "client closed the connection");
                return Next::End;
            }
            Input::Failed(e) => {
                t.note("*", &format!("connection error: {e}"));
                return Next::Broken;
            }
        }
    }
}

/// Reads one command line through [`LineReader`], first sending the
/// replies queued in `out` if the client has nothing more buffered (so
/// pipelined commands get their replies in one write, in order). An
/// over-long line is discarded up to its end. Whatever follows the line
/// stays in the connection's buffer (the reader keeps nothing once it has
/// returned a line), ready for the next command, the message data or the
/// TLS handshake. Once part of a line has come, the rest must come before
/// the [`Watch`] deadline.
fn read_command(conn: &mut Connection, out: &mut Vec<u8>, watch: &Watch) -> Input {
    let mut reader = LineReader::new(MAX_COMMAND_LINE);
    loop {
        let (used, line) = reader.push(conn.buffered());
        conn.consume(used);
        match line {
            Some(Ok(line)) => {
                watch.disarm();
                return Input::Line(line);
            }
            Some(Err(_)) => {
                watch.disarm();
                return Input::TooLong;
            }
            None if reader.has_partial() => watch.arm_once(),
            None => {}
        }
        if let Err(e) = flush(conn, out) {
            return Input::Failed(e);
        }
        match conn.fill() {
            Ok(0) => return Input::Eof,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Input::TimedOut,
            Err(e) => return Input::Failed(e),
        }
    }
}

fn flush(conn: &mut Connection, out: &mut Vec<u8>) -> io::Result<()> {
    if !out.is_empty() {
        conn.send(out)?;
        out.clear();
    }
    Ok(())
}

/// Queues reply bytes and logs each of their lines.
fn emit(t: &Transcript, out: &mut Vec<u8>, reply: &[u8]) {
    if t.enabled() {
        for line in reply.split_inclusive(|&b| b == b'\n') {
            t.server(line);
        }
    }
    out.extend_from_slice(reply);
}

/// Upgrades to TLS after STARTTLS / STLS; `None` if the handshake failed.
fn upgrade(shared: &Shared, conn: Connection, t: &Transcript) -> Option<Connection> {
    let acceptor = shared.options.tls.as_ref()?;
    match conn.accept_tls(acceptor) {
        Ok((conn, discarded)) => {
            t.note("*", "TLS handshake done");
            if discarded > 0 {
                t.note(
                    "*",
                    &format!("discarded {discarded} bytes the client sent before TLS"),
                );
            }
            Some(conn)
        }
        Err(e) => {
            t.note("*", &format!("TLS handshake failed: {e:#}"));
            None
        }
    }
}

/// One accepted connection and what its session needs besides its machine.
struct Session<'a> {
    /// The connection.
    conn: Connection,
    /// The transcript, prefixed with the connection number.
    t: Transcript,
    /// The client's address.
    peer: SocketAddr,
    /// The connection number.
    id: u64,
    /// The deadline the watchdog enforces.
    watch: &'a Watch,
}

impl<'a> Session<'a> {
    /// Logs the new connection and sets its time-outs, then runs the TLS
    /// handshake when `implicit_tls` (RFC 8314); `None` if that fails.
    fn open(
        shared: &Shared,
        tcp: TcpStream,
        (peer, id): (SocketAddr, u64),
        watch: &'a Watch,
        protocol: &str,
        implicit_tls: bool,
    ) -> Option<Self> {
        let t = shared.options.transcript.with_prefix(format!("[{id}] "));
        t.note("*", &format!("{protocol} connection from {peer}"));
        let conn = Connection::accepted(tcp, shared.options.limits.idle_timeout).ok()?;
        let session = Session {
            conn,
            t,
            peer,
            id,
            watch,
        };
        match implicit_tls {
            true => session.start_tls(shared, &mut Vec::new()),
            false => Some(session),
        }
    }

    /// Sends the queued replies, then switches to TLS; false if the
    /// connection is lost. The handshake must end before the deadline.
    fn start_tls(self, shared: &Shared, out: &mut Vec<u8>) -> Option<Self> {
        let Session {
            mut conn,
            t,
            peer,
            id,
            watch,
        } = self;
        flush(&mut conn, out).ok()?;
        watch.arm();
        let conn = upgrade(shared, conn, &t);
        watch.disarm();
        Some(Session {
            conn: conn?,
            t,
            peer,
            id,
            watch,
        })
    }

    /// Logs a failed login without its password, and makes the client wait
    /// as long as the throttle says.
    fn login_failed(&self, shared: &Shared, protocol: &str, user: &str) {
        eprintln!(
            "mailctl: warning: {protocol} login failed from {} as '{}'",
            self.peer.ip(),
            printable(user.as_bytes())
        );
        std::thread::sleep(shared.throttle.failed(self.peer.ip()));
    }

    /// Sends what is queued and closes the connection.
    fn end(mut self, out: &mut Vec<u8>) {
        let _ = flush(&mut self.conn, out);
        self.conn.close();
    }
}

/// Serves one SMTP connection to its end; `implicit_tls`: TLS from the
/// first byte (RFC 8314).
pub fn smtp_session(
    shared: &Shared,
    tcp: TcpStream,
    (peer, id): (SocketAddr, u64),
    watch: &Watch,
    implicit_tls: bool,
) {
    let Some(mut session) = Session::open(shared, tcp, (peer, id), watch, "SMTP", implicit_tls)
    else {
        return;
    };
    let policy = shared.options.policy.clone();
    let mut machine = match implicit_tls {
        true => SmtpServer::new_tls(policy, peer.ip().is_loopback()),
        false => SmtpServer::new(policy, peer.ip().is_loopback()),
    };
    let mut out = Vec::new();
    let hooks = &shared.options.hooks;
    if let Some(reply) = hooks.fault(Stage::Connect, &[&peer.ip().to_string()]) {
        emit(&session.t, &mut out, &reply);
        return session.end(&mut out);
    }
    emit(&session.t, &mut out, &machine.greeting().to_bytes());
    loop {
        let line = match next_command(shared, &mut session, &mut out, &mut machine) {
            Next::Line(line) => line,
            Next::End => break,
            Next::Broken => return,
        };
        session.t.client(&machine.redacted(&line));
        if let Some(reply) = hooks.command_fault(&machine, &line) {
            emit(&session.t, &mut out, &reply);
            continue;
        }
        let step = machine.command(&line);
        if let Some(user) = machine.take_failed_login() {
            session.login_failed(shared, "smtp", &user);
        }
        emit(&session.t, &mut out, &step.reply.to_bytes());
        match step.action {
            Action::Continue => {}
            Action::Close => break,
            Action::StartTls => {
                let Some(upgraded) = session.start_tls(shared, &mut out) else {
                    return;
                };
                session = upgraded;
                machine.tls_started();
            }
            Action::ReceiveData => {
                if flush(&mut session.conn, &mut out).is_err() {
                    return;
                }
                let receiver = DataReceiver::after_command_line(line.ends_with(b"\r\n"));
                match receive_data(shared, &mut session, &machine, receiver) {
                    Ok(Ok(outcome)) => {
                        let reply = machine.data_done(outcome).to_bytes();
                        emit(&session.t, &mut out, &reply);
                    }
                    Ok(Err(fault)) => {
                        machine.data_done(DataOutcome::Failed);
                        emit(&session.t, &mut out, &fault);
                    }
                    Err(e) => {
                        session.t.note("*", &format!("message abandoned: {e}"));
                        return;
                    }
                }
            }
        }
    }
    session.end(&mut out);
}

/// Receives one message's data into its mailboxes; an error means the
/// connection was lost and nothing was kept, an inner error is the reply of
/// a fault rule that discarded the message.
fn receive_data(
    shared: &Shared,
    session: &mut Session,
    machine: &SmtpServer,
    mut receiver: DataReceiver,
) -> io::Result<Result<DataOutcome, Vec<u8>>> {
    let (conn, t, watch) = (&mut session.conn, &session.t, session.watch);
    let (peer, id) = (session.peer, session.id);
    let policy = &shared.options.policy;
    let envelope = machine
        .envelope()
        .ok_or_else(|| io::Error::other("no envelope in the data phase"))?;
    let number = shared.received.fetch_add(1, Ordering::SeqCst) + 1;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let queue_id = format!("{:X}C{id}M{number}", now.as_secs());
    let mut incoming = Incoming::start(&shared.options.store, &envelope.mailboxes, policy.max_size);
    incoming.write_headers(&envelope.trace_headers(
        &policy.hostname,
        &peer.ip().to_string(),
        &queue_id,
        &crate::system::rfc5322_date(now.as_secs()),
    ));
    let mut content = Vec::with_capacity(128 * 1024);
    let mut chunk = 0;
    watch.arm();
    loop {
        if conn.buffered().is_empty() {
            let n = conn.fill()?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed during DATA",
                ));
            }
            chunk += n;
            if chunk >= DATA_CHUNK {
                chunk = 0;
                watch.arm();
            }
        }
        content.clear();
        let used = receiver.feed(conn.buffered(), &mut content);
        conn.consume(used);
        incoming.write(&content);
        if receiver.is_done() {
            break;
        }
    }
    watch.disarm();
    t.note("C", &format!("<message data, {} bytes>", incoming.size()));
    let recipients: Vec<&str> = envelope.recipients.iter().map(String::as_str).collect();
    if let Some(reply) = shared.options.hooks.fault(Stage::Dot, &recipients) {
        t.note("*", "message discarded by a fault rule");
        return Ok(Err(reply));
    }
    Ok(Ok(match incoming.commit() {
        Received::Delivered(paths) => {
            if t.enabled() {
                t.note(
                    "*",
                    &format!("delivered {queue_id} to {}", envelope.mailboxes.join(", ")),
                );
                if let Some(message) = paths.first().and_then(|p| read_bounded(p)) {
                    for line in summary::describe(&envelope, &message) {
                        t.note("*", &format!("  {line}"));
                    }
                }
            }
            shared.options.hooks.delivered(&paths);
            let delivered = shared.delivered.fetch_add(1, Ordering::SeqCst) + 1;
            if shared.options.exit_after == Some(delivered) {
                let _ = shared.stop.send(Stop::ExitAfter);
            }
            DataOutcome::Delivered(queue_id)
        }
        Received::TooLarge => {
            t.note("*", "message too large, discarded");
            DataOutcome::TooLarge
        }
        Received::Failed(e) => {
            eprintln!(
                "mailctl: error: delivery failed: {}",
                printable(e.to_string().as_bytes())
            );
            DataOutcome::Failed
        }
    }))
}

fn read_bounded(path: &std::path::Path) -> Option<Vec<u8>> {
    let file = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_SUMMARY_SIZE).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// Serves one POP3 connection to its end; `implicit_tls`: TLS from the
/// first byte (RFC 8314).
pub fn pop3_session(
    shared: &Shared,
    tcp: TcpStream,
    (peer, id): (SocketAddr, u64),
    watch: &Watch,
    implicit_tls: bool,
) {
    let Some(mut session) = Session::open(shared, tcp, (peer, id), watch, "POP3", implicit_tls)
    else {
        return;
    };
    let policy = &shared.options.policy;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let timestamp = format!("<{}.{nanos}.{id}@{}>", std::process::id(), policy.hostname);
    let mut machine = Pop3Server::new(policy.clone(), timestamp, peer.ip().is_loopback());
    if implicit_tls {
        machine.tls_started();
    }
    let mut mailbox: Option<MailboxSession> = None;
    let mut out = Vec::new();
    emit(&session.t, &mut out, &machine.greeting());
    loop {
        let line = match next_command(shared, &mut session, &mut out, &mut machine) {
            Next::Line(line) => line,
            Next::End => break,
            Next::Broken => return,
        };
        let t = &session.t;
        t.client(&machine.redacted(&line));
        let step = machine.command(&line);
        if let Some(user) = machine.take_failed_login() {
            session.login_failed(shared, "pop3", &user);
        }
        match step.action {
            Pop3Action::Continue => emit(t, &mut out, &step.reply),
            Pop3Action::Close => {
                emit(t, &mut out, &step.reply);
                break;
            }
            Pop3Action::StartTls => {
                emit(t, &mut out, &step.reply);
                let Some(upgraded) = session.start_tls(shared, &mut out) else {
                    return;
                };
                session = upgraded;
                machine.tls_started();
            }
            Pop3Action::Open(name) => {
                let result = shared.options.store.lock(&name).map(|opened| {
                    let messages = opened.messages();
                    mailbox = Some(opened);
                    messages
                });
                if let Err(OpenError::Io) = result {
                    eprintln!("mailctl: error: cannot open mailbox {name}");
                }
                emit(t, &mut out, &machine.opened(result));
            }
            Pop3Action::Send { index, body_lines } => {
                let file = match mailbox.as_ref().map(|m| m.open(index)) {
                    Some(Ok(f)) => f,
                    _ => {
                        emit(t, &mut out, b"-ERR [SYS/TEMP] cannot read message\r\n");
                        continue;
                    }
                };
                emit(t, &mut out, &step.reply);
                let sent = send_message(&mut session.conn, &mut out, file, body_lines, watch);
                match sent {
                    Ok(n) => t.note("S", &format!("<message {}, {n} bytes>", index + 1)),
                    Err(e) => {
                        t.note("*", &format!("sending message failed: {e}"));
                        return;
                    }
                }
            }
            Pop3Action::Update(indexes) => {
                let ok = match &mailbox {
                    Some(m) => m.delete(&indexes).is_ok(),
                    None => false,
                };
                emit(t, &mut out, &machine.updated(ok));
                break;
            }
        }
    }
    drop(mailbox);
    session.end(&mut out);
}

/// Streams a message file after the queued replies, byte-stuffed, and the
/// final `.` line; returns the file bytes read. Each chunk read from the
/// file must be taken by the client before the [`Watch`] deadline.
fn send_message(
    conn: &mut Connection,
    out: &mut Vec<u8>,
    mut file: std::fs::File,
    body_lines: Option<u64>,
    watch: &Watch,
) -> io::Result<u64> {
    let mut writer = BufWriter::with_capacity(64 * 1024, conn.writer());
    writer.write_all(out)?;
    out.clear();
    let mut stuffer = MessageStuffer::new(body_lines);
    let mut buf = vec![0u8; 64 * 1024];
    let mut stuffed = Vec::with_capacity(130 * 1024);
    let mut total = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        total += n as u64;
        stuffed.clear();
        stuffer.feed(&buf[..n], &mut stuffed);
        watch.arm();
        writer.write_all(&stuffed)?;
        if stuffer.is_done() {
            break;
        }
    }
    stuffed.clear();
    stuffer.finish(&mut stuffed);
    watch.arm();
    writer.write_all(&stuffed)?;
    writer.flush()?;
    watch.disarm();
    Ok(total)
}
