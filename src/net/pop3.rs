//! Drives the POP3 state machine over a connection: connecting, STLS,
//! login, listings, and pipelined TOP and RETR/DELE flights.

use std::time::Duration;

use base64::Engine;

use crate::exit::{fail, Exit};
use crate::net::connection::{Connection, Endpoint, TlsMode, TlsOptions};
use crate::proto::pop3::{Client, Command, Event, Kind, Reply, State};
use crate::proto::sasl;
use crate::secret::Secret;
use crate::text::printable;
use crate::transcript::Transcript;

/// Commands kept in flight when the server offers PIPELINING. Each RETR is
/// a dozen bytes, so the window never fills a socket buffer, and at 50 ms
/// round-trip time 64 messages arrive per round trip.
pub const WINDOW: usize = 64;

/// How to log in (`--auth`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMethod {
    /// AUTH PLAIN when offered, else USER/PASS; APOP on an unencrypted
    /// connection when the greeting carries a valid timestamp.
    Auto,
    /// USER and PASS (RFC 1939 section 7).
    User,
    /// APOP (RFC 1939 section 7): MD5 digest, refused unless the greeting's
    /// timestamp is a well-formed msg-id (CVE-2007-1558).
    Apop,
    /// AUTH PLAIN with an initial response (RFC 5034, RFC 4616).
    Plain,
    /// AUTH XOAUTH2 with an OAuth 2 bearer token as the password.
    Xoauth2,
}

/// One message as the server lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Message number.
    pub number: u32,
    /// Size announced by LIST.
    pub size: u64,
    /// Unique id from UIDL.
    pub uidl: Option<String>,
}

/// A POP3 session over a live connection.
pub struct Session {
    conn: Option<Connection>,
    client: Client,
    transcript: Transcript,
    outbox: Vec<u8>,
    /// Message bytes handed back by the last event.
    pub out: Vec<u8>,
    endpoint: Endpoint,
    /// Bytes of the multi-line body being read, for the transcript.
    body_bytes: u64,
}

/// The most characters of server text quoted in an error message.
const MAX_QUOTED: usize = 300;

/// Server text made printable and cut to 300 characters, so an
/// error stays one readable line whatever the server sent.
pub fn quoted(text: &[u8]) -> String {
    let text = printable(text);
    match text.char_indices().nth(MAX_QUOTED) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text,
    }
}

/// An `-ERR` turned into an error with the right exit status.
pub fn refused(reply: &Reply, what: &str) -> anyhow::Error {
    let exit = if reply.is_temporary() {
        Exit::TempFail
    } else if matches!(
        reply.kind,
        Kind::User | Kind::Pass | Kind::Apop | Kind::Auth
    ) || reply.code().as_deref() == Some("AUTH")
    {
        Exit::NoPerm
    } else {
        Exit::Unavailable
    };
    fail(
        exit,
        format!("{what}: server said -ERR {}", quoted(&reply.text)),
    )
}

fn protocol(err: crate::proto::pop3::Error) -> anyhow::Error {
    match err {
        crate::proto::pop3::Error::BadArgument(m) => fail(Exit::Usage, m),
        crate::proto::pop3::Error::NotAllowed(m) => fail(Exit::Software, m),
        other => fail(Exit::Protocol, other.to_string()),
    }
}

/// Refuses to send a password or token over an unencrypted connection,
/// unless the server is on this machine (loopback) or the method is APOP,
/// which sends only a digest. Nothing has been sent when this fails.
/// `method` is the one that would be used, `requested` the one asked for.
pub fn plaintext_check(
    requested: AuthMethod,
    method: AuthMethod,
    encrypted: bool,
    endpoint: &Endpoint,
) -> anyhow::Result<()> {
    if encrypted || method == AuthMethod::Apop || endpoint.is_loopback() {
        return Ok(());
    }
    let why = if requested == AuthMethod::Auto {
        " (the greeting offers no usable APOP timestamp)"
    } else {
        ""
    };
    crate::bail_with!(
        Exit::Config,
        "refusing to send credentials unencrypted to {endpoint}{why}: \
         --tls none allows only APOP, except for loopback servers"
    )
}

impl Session {
    /// Connects, reads the greeting, asks for capabilities and (unless
    /// `tls` is `None` or implicit) upgrades with STLS, failing before any
    /// credential is sent if STLS is not available.
    pub fn open(
        endpoint: &Endpoint,
        tls: TlsMode,
        tls_options: &TlsOptions,
        timeout: Duration,
        transcript: Transcript,
    ) -> anyhow::Result<Self> {
        let conn = match tls {
            TlsMode::Implicit => Connection::connect_tls(endpoint, tls_options, timeout)?,
            _ => Connection::connect(endpoint, timeout)?,
        };
        let mut session = Session {
            client: Client::new(conn.is_tls()),
            conn: Some(conn),
            transcript,
            outbox: Vec::new(),
            out: Vec::new(),
            endpoint: endpoint.clone(),
            body_bytes: 0,
        };
        match session.next_event()? {
            Event::Reply(r) if r.ok => {}
            Event::Reply(r) => return Err(refused(&r, "server greeting")),
            _ => return Err(fail(Exit::Protocol, "unexpected greeting")),
        }
        session.capa()?;
        if tls == TlsMode::Starttls {
            let offered = session.client.capabilities().map(|c| c.stls);
            if offered == Some(false) {
                crate::bail_with!(
                    Exit::Protocol,
                    "{} does not offer STLS; refusing to log in without TLS (use --tls implicit, or --tls none to allow plaintext)",
                    endpoint
                );
            }
            session.stls(tls_options)?;
            session.capa()?;
        }
        Ok(session)
    }

    /// The protocol state machine.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn conn(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("connection present")
    }

    /// Queues a command (sent by the next [`Session::flush`]).
    pub fn queue(&mut self, command: &Command) -> anyhow::Result<()> {
        let wire = self.client.send(command).map_err(protocol)?;
        if self.transcript.enabled() {
            self.transcript.client(command.shown().as_bytes());
        }
        self.outbox.extend_from_slice(&wire);
        Ok(())
    }

    /// Sends everything queued in one write.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        if self.outbox.is_empty() {
            return Ok(());
        }
        let bytes = std::mem::take(&mut self.outbox);
        let result = self.conn().send(&bytes);
        self.outbox = bytes;
        self.outbox.clear();
        result.map_err(|e| {
            let exit = crate::exit::io_exit_status(&e);
            fail(exit, format!("sending to {}: {e}", self.endpoint))
        })
    }

    /// Reads one line and interprets it. Message bytes land in `self.out`
    /// (appended; the caller clears it).
    pub fn next_event(&mut self) -> anyhow::Result<Event> {
        if self.client.in_message_body() {
            return self.message_data();
        }
        let max = self.client.max_line();
        let conn = self.conn.as_mut().expect("connection present");
        let line = conn
            .read_line(max)
            .map_err(|e| read_error(&self.endpoint, e))?;
        let before = self.out.len();
        let event = self.client.on_line(line, &mut self.out).map_err(protocol)?;
        if self.transcript.enabled() {
            match &event {
                Event::Data => self.body_bytes += (self.out.len() - before) as u64,
                Event::BodyEnd(kind @ (Kind::Retr(n) | Kind::Top(n))) => {
                    let bytes = std::mem::take(&mut self.body_bytes);
                    let note = format!("<{} {n} body, {bytes} bytes>", kind.name());
                    self.transcript.note("S", &note);
                    self.transcript.server(line);
                }
                Event::Challenge(_) => self.transcript.server(b"+ <challenge>"),
                _ => self.transcript.server(line),
            }
        }
        Ok(event)
    }

    /// Inside a RETR or TOP body: hands everything already read (reading
    /// more only when nothing is buffered) to the state machine at once,
    /// rather than line by line, so a large message costs a few events per
    /// read buffer instead of one per line.
    fn message_data(&mut self) -> anyhow::Result<Event> {
        let conn = self.conn.as_mut().expect("connection present");
        if conn.buffered().is_empty() && !self.client.message_body_ended() {
            let n = conn
                .fill()
                .map_err(|e| read_error(&self.endpoint, anyhow::Error::new(e)))?;
            if n == 0 {
                let eof = std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed in the middle of a message",
                );
                return Err(read_error(&self.endpoint, anyhow::Error::new(eof)));
            }
        }
        let before = self.out.len();
        let (used, event) = self
            .client
            .on_message_data(conn.buffered(), &mut self.out)
            .map_err(protocol)?;
        conn.consume(used);
        if self.transcript.enabled() {
            self.body_bytes += (self.out.len() - before) as u64;
        }
        if let Event::BodyEnd(kind) = event {
            self.note_body_end(kind);
        }
        Ok(event)
    }

    /// Notes the end of a message body in the transcript.
    fn note_body_end(&mut self, kind: Kind) {
        if let (true, Kind::Retr(n) | Kind::Top(n)) = (self.transcript.enabled(), kind) {
            let bytes = std::mem::take(&mut self.body_bytes);
            let note = format!("<{} {n} body, {bytes} bytes>", kind.name());
            self.transcript.note("S", &note);
            self.transcript.server(b".\r\n");
        }
    }

    /// Sends one single-line command and waits for its reply.
    pub fn command(&mut self, command: &Command) -> anyhow::Result<Reply> {
        self.queue(command)?;
        self.flush()?;
        match self.next_event()? {
            Event::Reply(r) => Ok(r),
            other => Err(fail(
                Exit::Protocol,
                format!("unexpected {other:?} in reply to {}", command.kind().name()),
            )),
        }
    }

    /// CAPA; a refusal just means the server lists nothing.
    fn capa(&mut self) -> anyhow::Result<()> {
        self.queue(&Command::Capa)?;
        self.flush()?;
        loop {
            match self.next_event()? {
                Event::Reply(_) | Event::BodyEnd(_) => return Ok(()),
                _ => {}
            }
        }
    }

    fn stls(&mut self, tls_options: &TlsOptions) -> anyhow::Result<()> {
        let reply = self.command(&Command::Stls)?;
        if !reply.ok {
            return Err(fail(
                Exit::Protocol,
                format!(
                    "{} refused STLS: -ERR {}; refusing to log in without TLS",
                    self.endpoint,
                    quoted(&reply.text)
                ),
            ));
        }
        let conn = self.conn.take().expect("connection present");
        let (conn, discarded) = conn.start_tls(tls_options)?;
        self.conn = Some(conn);
        self.client.tls_started();
        if discarded > 0 {
            let note = format!("discarded {discarded} bytes received before the TLS handshake");
            if self.transcript.enabled() {
                self.transcript.note("*", &note);
            } else {
                let _ = std::io::Write::write_fmt(
                    &mut std::io::stderr(),
                    format_args!("mailctl: warning: {note}\n"),
                );
            }
        }
        Ok(())
    }

    /// Logs in. The secret is a password, or a token for XOAUTH2.
    pub fn login(&mut self, method: AuthMethod, user: &str, secret: &Secret) -> anyhow::Result<()> {
        let caps = self.client.capabilities().cloned();
        let valid_stamp = self
            .client
            .apop_timestamp()
            .is_some_and(sasl::valid_apop_timestamp);
        let requested = method;
        let method = match method {
            AuthMethod::Auto => {
                let encrypted = self.client.is_tls();
                match &caps {
                    _ if !encrypted && valid_stamp => AuthMethod::Apop,
                    Some(c) if c.has_sasl("PLAIN") => AuthMethod::Plain,
                    Some(c) if !c.user && valid_stamp => AuthMethod::Apop,
                    _ => AuthMethod::User,
                }
            }
            m => m,
        };
        plaintext_check(requested, method, self.client.is_tls(), &self.endpoint)?;
        match method {
            AuthMethod::User => {
                self.queue(&Command::User(user.to_string()))?;
                if self.client.pipelining() {
                    self.queue(&Command::Pass(secret.clone()))?;
                    self.flush()?;
                    let user_reply = self.expect_reply()?;
                    let pass_reply = self.expect_reply()?;
                    if !user_reply.ok {
                        return Err(refused(&user_reply, "USER"));
                    }
                    if !pass_reply.ok {
                        return Err(refused(&pass_reply, "login"));
                    }
                } else {
                    self.flush()?;
                    let user_reply = self.expect_reply()?;
                    if !user_reply.ok {
                        return Err(refused(&user_reply, "USER"));
                    }
                    let pass_reply = self.command(&Command::Pass(secret.clone()))?;
                    if !pass_reply.ok {
                        return Err(refused(&pass_reply, "login"));
                    }
                }
            }
            AuthMethod::Apop => {
                let command = self
                    .client
                    .apop(user, secret.expose())
                    .map_err(|e| fail(Exit::Protocol, format!("{e}; nothing was sent")))?;
                let reply = self.command(&command)?;
                if !reply.ok {
                    return Err(refused(&reply, "APOP login"));
                }
            }
            AuthMethod::Plain | AuthMethod::Xoauth2 => {
                let (mechanism, initial) = if method == AuthMethod::Plain {
                    ("PLAIN", sasl::plain_response(user, secret.expose()))
                } else {
                    ("XOAUTH2", sasl::xoauth2_response(user, secret.expose()))
                };
                // RFC 5034 section 4: an AUTH command with its initial
                // response must fit in 255 octets; a longer response (an
                // OAuth token, typically) answers the server's empty "+"
                // challenge instead.
                let fits = "AUTH ".len() + mechanism.len() + 1 + initial.len() + 2 <= 255;
                let mut held = if fits {
                    self.queue(&Command::Auth {
                        mechanism: mechanism.to_string(),
                        initial: Some(Secret::new(initial)),
                    })?;
                    None
                } else {
                    self.queue(&Command::Auth {
                        mechanism: mechanism.to_string(),
                        initial: None,
                    })?;
                    Some(Secret::new(initial))
                };
                self.flush()?;
                let mut detail = String::new();
                for _ in 0..4 {
                    match self.next_event()? {
                        Event::Reply(r) if r.ok => return Ok(()),
                        Event::Reply(r) => {
                            let err = refused(&r, &format!("AUTH {mechanism}"));
                            return Err(if detail.is_empty() {
                                err
                            } else {
                                err.context(detail)
                            });
                        }
                        Event::Challenge(c) => {
                            if let Some(response) = held.take() {
                                self.queue(&Command::SaslResponse(response))?;
                                self.flush()?;
                                continue;
                            }
                            // XOAUTH2 reports errors as a challenge to be
                            // answered with an empty line; anything else is
                            // cancelled.
                            let decoded = base64::engine::general_purpose::STANDARD
                                .decode(&c)
                                .unwrap_or(c);
                            detail = format!("server said {}", quoted(&decoded));
                            let answer = if method == AuthMethod::Xoauth2 {
                                ""
                            } else {
                                "*"
                            };
                            self.queue(&Command::SaslResponse(Secret::new(answer)))?;
                            self.flush()?;
                        }
                        other => {
                            return Err(fail(
                                Exit::Protocol,
                                format!("unexpected {other:?} during AUTH"),
                            ))
                        }
                    }
                }
                crate::bail_with!(Exit::Protocol, "AUTH {mechanism}: too many challenges");
            }
            AuthMethod::Auto => unreachable!("resolved above"),
        }
        Ok(())
    }

    fn expect_reply(&mut self) -> anyhow::Result<Reply> {
        match self.next_event()? {
            Event::Reply(r) => Ok(r),
            other => Err(fail(Exit::Protocol, format!("unexpected {other:?}"))),
        }
    }

    /// STAT, LIST and UIDL (pipelined when possible). UIDL ids are `None`
    /// when the server refuses UIDL.
    pub fn listing(&mut self) -> anyhow::Result<Vec<Entry>> {
        let pipelining = self.client.pipelining();
        self.queue(&Command::Stat)?;
        if !pipelining {
            self.flush()?;
            self.read_stat()?;
        }
        self.queue(&Command::List(None))?;
        if pipelining {
            self.queue(&Command::Uidl(None))?;
            self.flush()?;
            self.read_stat()?;
        } else {
            self.flush()?;
        }
        let mut entries: Vec<Entry> = Vec::new();
        match self.next_event()? {
            Event::BodyStart(_) => loop {
                match self.next_event()? {
                    Event::ListEntry(number, size) => entries.push(Entry {
                        number,
                        size,
                        uidl: None,
                    }),
                    Event::BodyEnd(_) => break,
                    other => {
                        return Err(fail(
                            Exit::Protocol,
                            format!("unexpected {other:?} in LIST"),
                        ))
                    }
                }
            },
            Event::Reply(r) => {
                if pipelining {
                    // Read the UIDL reply before giving up.
                    self.skip_response()?;
                }
                return Err(refused(&r, "LIST"));
            }
            other => return Err(fail(Exit::Protocol, format!("unexpected {other:?}"))),
        }
        if !pipelining {
            self.queue(&Command::Uidl(None))?;
            self.flush()?;
        }
        match self.next_event()? {
            Event::BodyStart(_) => {
                let mut index = std::collections::HashMap::new();
                for (i, e) in entries.iter().enumerate() {
                    index.insert(e.number, i);
                }
                loop {
                    match self.next_event()? {
                        Event::UidlEntry(number, uid) => {
                            if let Some(&i) = index.get(&number) {
                                entries[i].uidl = Some(String::from_utf8_lossy(&uid).into_owned());
                            }
                        }
                        Event::BodyEnd(_) => break,
                        other => {
                            return Err(fail(
                                Exit::Protocol,
                                format!("unexpected {other:?} in UIDL"),
                            ))
                        }
                    }
                }
            }
            Event::Reply(_) => {}
            other => return Err(fail(Exit::Protocol, format!("unexpected {other:?}"))),
        }
        entries.sort_by_key(|e| e.number);
        entries.dedup_by_key(|e| e.number);
        Ok(entries)
    }

    fn read_stat(&mut self) -> anyhow::Result<()> {
        let r = self.expect_reply()?;
        if !r.ok {
            return Err(refused(&r, "STAT"));
        }
        Ok(())
    }

    /// Reads and discards one whole response.
    fn skip_response(&mut self) -> anyhow::Result<()> {
        loop {
            self.out.clear();
            match self.next_event()? {
                Event::Reply(_) | Event::BodyEnd(_) => return Ok(()),
                _ => {}
            }
        }
    }

    /// `TOP n 0` for each message, pipelined; hands each header block to
    /// `each` as it completes, with its index in `numbers` (at most
    /// `max_keep` bytes of it; `None` where TOP was refused). Only one
    /// block is held at a time.
    pub fn headers(
        &mut self,
        numbers: &[u32],
        max_keep: usize,
        mut each: impl FnMut(usize, Option<&[u8]>),
    ) -> anyhow::Result<()> {
        if self.client.capabilities().is_some_and(|c| !c.top) {
            (0..numbers.len()).for_each(|i| each(i, None));
            return Ok(());
        }
        let window = if self.client.pipelining() { WINDOW } else { 1 };
        let mut done = 0;
        let mut sent = 0;
        let mut current: Option<Vec<u8>> = None;
        while done < numbers.len() {
            while sent < numbers.len() && sent - done < window {
                self.queue(&Command::Top(numbers[sent], 0))?;
                sent += 1;
            }
            self.flush()?;
            self.out.clear();
            match self.next_event()? {
                Event::BodyStart(_) => current = Some(Vec::new()),
                Event::Data => {
                    if let Some(buf) = &mut current {
                        let room = max_keep.saturating_sub(buf.len());
                        buf.extend_from_slice(&self.out[..self.out.len().min(room)]);
                    }
                }
                Event::BodyEnd(_) => {
                    each(done, current.take().as_deref());
                    done += 1;
                }
                Event::Reply(r) if !r.ok => {
                    each(done, None);
                    done += 1;
                }
                other => return Err(fail(Exit::Protocol, format!("unexpected {other:?} in TOP"))),
            }
        }
        Ok(())
    }

    /// Sends QUIT and waits for its reply. Returns whether the server
    /// confirmed (which commits any deletions).
    pub fn quit(&mut self) -> anyhow::Result<bool> {
        let reply = self.command(&Command::Quit)?;
        if let Some(conn) = self.conn.take() {
            conn.close();
        }
        Ok(reply.ok)
    }

    /// Whether DELE may still be sent: the session is in TRANSACTION.
    pub fn in_transaction(&self) -> bool {
        self.client.state() == State::Transaction
    }
}

/// A failed read, with the exit status its cause calls for (a malformed
/// stream is a protocol error).
fn read_error(endpoint: &Endpoint, e: anyhow::Error) -> anyhow::Error {
    let exit = crate::exit::exit_status(&e);
    let exit = if exit == Exit::Software {
        Exit::Protocol
    } else {
        exit
    };
    fail(exit, format!("reading from {endpoint}: {e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::exit_status;

    #[test]
    fn refusals_quote_a_bounded_amount_of_server_text() {
        let reply = Reply {
            kind: Kind::Stat,
            ok: false,
            text: vec![b'x'; 8000],
        };
        let err = refused(&reply, "STAT");
        assert!(err.to_string().len() < 400, "{}", err.to_string().len());
        assert!(err.to_string().ends_with("..."));
        assert_eq!(quoted(b"short \x1b[2J"), "short \\x1b[2J");
    }

    #[test]
    fn no_password_in_clear_to_a_remote_server() {
        let remote = Endpoint::parse("192.0.2.7:110", 110).unwrap();
        let local = Endpoint::parse("127.0.0.1:110", 110).unwrap();
        for method in [AuthMethod::User, AuthMethod::Plain, AuthMethod::Xoauth2] {
            let err = plaintext_check(method, method, false, &remote).unwrap_err();
            assert_eq!(exit_status(&err), Exit::Config, "{method:?}");
            plaintext_check(method, method, true, &remote).unwrap();
            plaintext_check(method, method, false, &local).unwrap();
        }
        // APOP sends a digest, not the password.
        plaintext_check(AuthMethod::Apop, AuthMethod::Apop, false, &remote).unwrap();
        // auto without an APOP timestamp falls back to USER/PASS: refused.
        let err = plaintext_check(AuthMethod::Auto, AuthMethod::User, false, &remote).unwrap_err();
        assert!(err.to_string().contains("APOP timestamp"), "{err}");
    }
}
