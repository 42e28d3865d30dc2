//! Drives the SMTP and POP3 machines over one accepted connection: reads
//! command lines (bounded), sends replies (batched while the client
//! pipelines, flushed before the server would wait), performs the machines'
//! actions and logs the transcript with credentials redacted.

use std::io::{self, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use super::listener::{Shared, Stop};
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
    conn: &mut Connection,
    out: &mut Vec<u8>,
    t: &Transcript,
    machine: &mut impl Interruptions,
) -> Next {
    loop {
        match read_command(conn, out, MAX_COMMAND_LINE) {
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
/// TLS handshake.
fn read_command(conn: &mut Connection, out: &mut Vec<u8>, max: usize) -> Input {
    let mut reader = LineReader::new(max);
    loop {
        let (used, line) = reader.push(conn.buffered());
        conn.consume(used);
        match line {
            Some(Ok(line)) => return Input::Line(line),
            Some(Err(_)) => return Input::TooLong,
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
    let acceptor = shared.tls.as_ref()?;
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

/// The connection of an accepted socket, after the TLS handshake when
/// `implicit_tls`.
fn accepted(
    shared: &Shared,
    tcp: TcpStream,
    implicit_tls: bool,
    t: &Transcript,
) -> Option<Connection> {
    let conn = Connection::accepted(tcp, shared.idle_timeout).ok()?;
    if implicit_tls {
        upgrade(shared, conn, t)
    } else {
        Some(conn)
    }
}

/// Serves one SMTP connection to its end; `implicit_tls`: TLS from the
/// first byte (RFC 8314).
pub fn smtp_session(
    shared: &Shared,
    tcp: TcpStream,
    peer: SocketAddr,
    id: u64,
    implicit_tls: bool,
) {
    let t = shared.transcript.with_prefix(format!("[{id}] "));
    t.note("*", &format!("SMTP connection from {peer}"));
    let Some(mut conn) = accepted(shared, tcp, implicit_tls, &t) else {
        return;
    };
    let mut machine = if implicit_tls {
        SmtpServer::new_tls(shared.policy.clone(), peer.ip().is_loopback())
    } else {
        SmtpServer::new(shared.policy.clone(), peer.ip().is_loopback())
    };
    let mut out = Vec::new();
    if let Some(reply) = shared
        .hooks
        .fault(Stage::Connect, &[&peer.ip().to_string()])
    {
        emit(&t, &mut out, &reply);
        let _ = flush(&mut conn, &mut out);
        return conn.close();
    }
    emit(&t, &mut out, &machine.greeting().to_bytes());
    loop {
        let line = match next_command(shared, &mut conn, &mut out, &t, &mut machine) {
            Next::Line(line) => line,
            Next::End => break,
            Next::Broken => return,
        };
        t.client(&machine.redacted(&line));
        if let Some(reply) = shared.hooks.command_fault(&machine, &line) {
            emit(&t, &mut out, &reply);
            continue;
        }
        let step = machine.command(&line);
        emit(&t, &mut out, &step.reply.to_bytes());
        match step.action {
            Action::Continue => {}
            Action::Close => break,
            Action::StartTls => {
                if flush(&mut conn, &mut out).is_err() {
                    return;
                }
                conn = match upgrade(shared, conn, &t) {
                    Some(c) => c,
                    None => return,
                };
                machine.tls_started();
            }
            Action::ReceiveData => {
                if flush(&mut conn, &mut out).is_err() {
                    return;
                }
                let receiver = DataReceiver::after_command_line(line.ends_with(b"\r\n"));
                match receive_data(shared, &mut conn, &machine, receiver, &t, peer, id) {
                    Ok(Ok(outcome)) => emit(&t, &mut out, &machine.data_done(outcome).to_bytes()),
                    Ok(Err(fault)) => {
                        machine.data_done(DataOutcome::Failed);
                        emit(&t, &mut out, &fault);
                    }
                    Err(e) => {
                        t.note("*", &format!("message abandoned: {e}"));
                        return;
                    }
                }
            }
        }
    }
    let _ = flush(&mut conn, &mut out);
    conn.close();
}

/// Receives one message's data into its mailboxes; an error means the
/// connection was lost and nothing was kept, an inner error is the reply of
/// a fault rule that discarded the message.
fn receive_data(
    shared: &Shared,
    conn: &mut Connection,
    machine: &SmtpServer,
    mut receiver: DataReceiver,
    t: &Transcript,
    peer: SocketAddr,
    id: u64,
) -> io::Result<Result<DataOutcome, Vec<u8>>> {
    let envelope = machine
        .envelope()
        .ok_or_else(|| io::Error::other("no envelope in the data phase"))?;
    let number = shared.received.fetch_add(1, Ordering::SeqCst) + 1;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let queue_id = format!("{:X}C{id}M{number}", now.as_secs());
    let mut incoming = Incoming::start(&shared.store, &envelope.mailboxes, shared.policy.max_size);
    incoming.write_headers(&envelope.trace_headers(
        &shared.policy.hostname,
        &peer.ip().to_string(),
        &queue_id,
        &crate::system::rfc5322_date(now.as_secs()),
    ));
    let mut content = Vec::with_capacity(128 * 1024);
    loop {
        if conn.buffered().is_empty() && conn.fill()? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed during DATA",
            ));
        }
        content.clear();
        let used = receiver.feed(conn.buffered(), &mut content);
        conn.consume(used);
        incoming.write(&content);
        if receiver.is_done() {
            break;
        }
    }
    t.note("C", &format!("<message data, {} bytes>", incoming.size()));
    let recipients: Vec<&str> = envelope.recipients.iter().map(String::as_str).collect();
    if let Some(reply) = shared.hooks.fault(Stage::Dot, &recipients) {
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
            shared.hooks.delivered(&paths);
            let delivered = shared.delivered.fetch_add(1, Ordering::SeqCst) + 1;
            if shared.exit_after == Some(delivered) {
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
    peer: SocketAddr,
    id: u64,
    implicit_tls: bool,
) {
    let t = shared.transcript.with_prefix(format!("[{id}] "));
    t.note("*", &format!("POP3 connection from {peer}"));
    let Some(mut conn) = accepted(shared, tcp, implicit_tls, &t) else {
        return;
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let timestamp = format!(
        "<{}.{nanos}.{id}@{}>",
        std::process::id(),
        shared.policy.hostname
    );
    let mut machine = Pop3Server::new(shared.policy.clone(), timestamp, peer.ip().is_loopback());
    if implicit_tls {
        machine.tls_started();
    }
    let mut mailbox: Option<MailboxSession> = None;
    let mut out = Vec::new();
    emit(&t, &mut out, &machine.greeting());
    loop {
        let line = match next_command(shared, &mut conn, &mut out, &t, &mut machine) {
            Next::Line(line) => line,
            Next::End => break,
            Next::Broken => return,
        };
        t.client(&machine.redacted(&line));
        let step = machine.command(&line);
        match step.action {
            Pop3Action::Continue => emit(&t, &mut out, &step.reply),
            Pop3Action::Close => {
                emit(&t, &mut out, &step.reply);
                break;
            }
            Pop3Action::StartTls => {
                emit(&t, &mut out, &step.reply);
                if flush(&mut conn, &mut out).is_err() {
                    return;
                }
                conn = match upgrade(shared, conn, &t) {
                    Some(c) => c,
                    None => return,
                };
                machine.tls_started();
            }
            Pop3Action::Open(name) => {
                let result = shared.store.lock(&name).map(|session| {
                    let messages = session.messages();
                    mailbox = Some(session);
                    messages
                });
                if let Err(OpenError::Io) = result {
                    eprintln!("mailctl: error: cannot open mailbox {name}");
                }
                emit(&t, &mut out, &machine.opened(result));
            }
            Pop3Action::Send { index, body_lines } => {
                let file = match mailbox.as_ref().map(|m| m.open(index)) {
                    Some(Ok(f)) => f,
                    _ => {
                        emit(&t, &mut out, b"-ERR [SYS/TEMP] cannot read message\r\n");
                        continue;
                    }
                };
                emit(&t, &mut out, &step.reply);
                match send_message(&mut conn, &mut out, file, body_lines) {
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
                emit(&t, &mut out, &machine.updated(ok));
                break;
            }
        }
    }
    drop(mailbox);
    let _ = flush(&mut conn, &mut out);
    conn.close();
}

/// Streams a message file after the queued replies, byte-stuffed, and the
/// final `.` line; returns the file bytes read.
fn send_message(
    conn: &mut Connection,
    out: &mut Vec<u8>,
    mut file: std::fs::File,
    body_lines: Option<u64>,
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
        writer.write_all(&stuffed)?;
        if stuffer.is_done() {
            break;
        }
    }
    stuffed.clear();
    stuffer.finish(&mut stuffed);
    writer.write_all(&stuffed)?;
    writer.flush()?;
    Ok(total)
}
