//! Drives the POP3 state machine over a connection: connecting, STLS,
//! login, listings, and pipelined TOP and RETR/DELE flights.

use std::time::{Duration, Instant};

use anyhow::Context;

use crate::net::connection::{Connection, Endpoint, TlsMode, TlsOptions};
use crate::proto::pop3::login::{self, Login, Method, Request, Step};
use crate::proto::pop3::{Client, Command, Error, Event, Kind, Reply, State};
use crate::secret::Secret;
use crate::transcript::Transcript;

/// Commands kept in flight when the server offers PIPELINING. Each RETR is
/// a dozen bytes, so the window never fills a socket buffer, and at 50 ms
/// round-trip time 64 messages arrive per round trip.
pub const WINDOW: usize = 64;

/// A whole reply may take the time-out once, plus once more for each of
/// these many bytes of its size (announced, or received so far if more):
/// with `--timeout 60`, at least 4.4 KB/s, so a server trickling bytes
/// cannot hold a session forever.
pub const BYTES_PER_TIMEOUT: u64 = 256 * 1024;

/// How to log in (`--auth`); the policy is [`crate::proto::pop3::login`]'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMethod {
    /// EXTERNAL when offered and a client certificate is given, else
    /// SCRAM-SHA-256-PLUS or SCRAM-SHA-1-PLUS over TLS, else
    /// SCRAM-SHA-256 or SCRAM-SHA-1 when offered (over TLS or to a
    /// loopback server), else AUTH PLAIN when offered, else USER/PASS;
    /// APOP on an unencrypted connection when the greeting carries a valid
    /// timestamp. For an account with OAuth 2: OAUTHBEARER when offered,
    /// else XOAUTH2.
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
    /// AUTH OAUTHBEARER (RFC 7628) with an OAuth 2 bearer token.
    #[value(name = "oauthbearer")]
    OAuthBearer,
    /// AUTH SCRAM-SHA-1 (RFC 5802): the password is not sent and the
    /// server proves it knows it.
    #[value(name = "scram-sha-1")]
    ScramSha1,
    /// AUTH SCRAM-SHA-256 (RFC 7677), preferred by `auto` when offered.
    #[value(name = "scram-sha-256")]
    ScramSha256,
    /// AUTH SCRAM-SHA-1-PLUS: SCRAM-SHA-1 bound to the TLS session
    /// (tls-server-end-point).
    #[value(name = "scram-sha-1-plus")]
    ScramSha1Plus,
    /// AUTH SCRAM-SHA-256-PLUS, preferred by `auto` over TLS when offered.
    #[value(name = "scram-sha-256-plus")]
    ScramSha256Plus,
    /// AUTH EXTERNAL (RFC 4422): the identity of the TLS client
    /// certificate (--cert, --key), no password; `auto` uses it when
    /// offered and a certificate is given.
    External,
}

impl From<AuthMethod> for Method {
    fn from(method: AuthMethod) -> Method {
        match method {
            AuthMethod::Auto => Method::Auto,
            AuthMethod::User => Method::User,
            AuthMethod::Apop => Method::Apop,
            AuthMethod::Plain => Method::Plain,
            AuthMethod::Xoauth2 => Method::Xoauth2,
            AuthMethod::OAuthBearer => Method::OAuthBearer,
            AuthMethod::ScramSha1 => Method::ScramSha1,
            AuthMethod::ScramSha256 => Method::ScramSha256,
            AuthMethod::ScramSha1Plus => Method::ScramSha1Plus,
            AuthMethod::ScramSha256Plus => Method::ScramSha256Plus,
            AuthMethod::External => Method::External,
        }
    }
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
    /// How long one read may wait (`--timeout`).
    timeout: Duration,
    /// The read time-out currently set on the socket.
    read_timeout: Duration,
    /// The reply being read: when it started, and its bytes so far.
    reply: Option<(Instant, u64)>,
    /// The size announced for the next reply (see [`Session::expect_size`]).
    expected: u64,
    /// Whether a TLS client certificate was offered to the server.
    client_cert: bool,
}

/// Refuses, before anything is sent, a password or token that would travel
/// unencrypted to a remote server (see [`login::plaintext_check`]).
pub fn plaintext_check(
    requested: AuthMethod,
    method: AuthMethod,
    encrypted: bool,
    endpoint: &Endpoint,
) -> Result<(), Error> {
    login::plaintext_check(
        requested.into(),
        method.into(),
        encrypted,
        endpoint.is_loopback(),
        &endpoint.to_string(),
    )
}

/// An event that does not fit where it came.
fn unexpected(event: &Event, context: &str) -> Error {
    Error::Unexpected(format!("unexpected {event:?}{context}"))
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
            timeout,
            read_timeout: timeout,
            reply: None,
            expected: 0,
            client_cert: tls_options.client_cert.is_some(),
        };
        match session.next_event()? {
            Event::Reply(r) if r.ok => {}
            Event::Reply(r) => return Err(Error::refused(&r, "server greeting").into()),
            _ => return Err(Error::Unexpected("unexpected greeting".into()).into()),
        }
        session.capa()?;
        let offered = session.client.capabilities().map(|c| c.stls);
        let upgrade = match tls {
            TlsMode::Starttls => true,
            // A loopback server with no mode named: STLS if it offers it.
            TlsMode::StarttlsIfOffered => offered == Some(true),
            TlsMode::Implicit | TlsMode::None => false,
        };
        if upgrade {
            if offered == Some(false) {
                return Err(Error::Unexpected(format!(
                    "{endpoint} does not offer STLS; refusing to log in without TLS (use --tls implicit, or --tls none to allow plaintext)"
                ))
                .into());
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
    pub fn queue(&mut self, command: &Command) -> Result<(), Error> {
        let wire = self.client.send(command)?;
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
        result.with_context(|| format!("sending to {}", self.endpoint))
    }

    /// Waits for the next event: the bytes received so far go to the state
    /// machine, as they came, and more are read only when they complete
    /// nothing. Message bytes land in `self.out` (appended; the caller
    /// clears it).
    pub fn next_event(&mut self) -> anyhow::Result<Event> {
        let (started, mut received) = *self.reply.get_or_insert((Instant::now(), 0));
        loop {
            let conn = self.conn.as_mut().expect("connection present");
            let before = self.out.len();
            let (used, event) = self.client.feed(conn.buffered(), &mut self.out)?;
            conn.consume(used);
            received += used as u64;
            if let Some(event) = event {
                self.reply = match event {
                    Event::Reply(_) | Event::BodyEnd(_) | Event::Challenge(_) => {
                        self.expected = 0;
                        None
                    }
                    _ => Some((started, received)),
                };
                self.note(&event, before);
                return Ok(event);
            }
            self.reply = Some((started, received));
            self.limit_read(started, received)?;
            let conn = self.conn.as_mut().expect("connection present");
            let read = match conn.fill() {
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    // The shortened wait ran out: say which limit it was.
                    self.limit_read(started, received)?;
                    Err(e)
                }
                other => other,
            };
            let read = read.with_context(|| format!("reading from {}", self.endpoint))?;
            if read == 0 {
                let what = if self.client.in_message_body() {
                    "connection closed in the middle of a message"
                } else {
                    "connection closed by peer"
                };
                let eof = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, what);
                return Err(anyhow::Error::new(eof))
                    .with_context(|| format!("reading from {}", self.endpoint));
            }
        }
    }

    /// Announces the size of the next reply (a message about to be
    /// retrieved), which widens the time that reply may take.
    pub fn expect_size(&mut self, bytes: u64) {
        if self.reply.is_none() {
            self.expected = bytes;
        }
    }

    /// The time a reply of `bytes` may take: the time-out, plus the
    /// time-out again per [`BYTES_PER_TIMEOUT`].
    fn reply_budget(&self, bytes: u64) -> Duration {
        let per = self.timeout.as_secs_f64() / BYTES_PER_TIMEOUT as f64;
        let extra = Duration::try_from_secs_f64(per * bytes as f64).unwrap_or(Duration::MAX);
        self.timeout.saturating_add(extra)
    }

    /// Fails once the reply being read has used up its time; otherwise lets
    /// the next read wait no longer than what is left.
    fn limit_read(&mut self, started: Instant, received: u64) -> anyhow::Result<()> {
        let budget = self.reply_budget(self.expected.max(received));
        let left = budget.saturating_sub(started.elapsed());
        if left.is_zero() {
            let err = std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "reply too slow: {received} bytes in {:.0} s (a reply may take --timeout plus --timeout per 256 KiB of its size)",
                    started.elapsed().as_secs_f64()
                ),
            );
            return Err(anyhow::Error::new(err))
                .with_context(|| format!("reading from {}", self.endpoint));
        }
        let wanted = left.min(self.timeout).max(Duration::from_millis(1));
        if wanted != self.read_timeout
            && (wanted < self.timeout || self.read_timeout < self.timeout)
        {
            self.conn()
                .set_timeout(wanted)
                .with_context(|| format!("reading from {}", self.endpoint))?;
            self.read_timeout = wanted;
        }
        Ok(())
    }

    /// Writes what the server said to the transcript: status and listing
    /// lines as they came, message bodies as their size.
    fn note(&mut self, event: &Event, before: usize) {
        if !self.transcript.enabled() {
            return;
        }
        match event {
            Event::Data => self.body_bytes += (self.out.len() - before) as u64,
            Event::BodyEnd(kind @ (Kind::Retr(n) | Kind::Top(n))) => {
                let bytes = std::mem::take(&mut self.body_bytes);
                let note = format!("<{} {n} body, {bytes} bytes>", kind.name());
                self.transcript.note("S", &note);
                self.transcript.server(b".\r\n");
            }
            Event::Challenge(_) => self.transcript.server(b"+ <challenge>"),
            _ => self.transcript.server(self.client.last_line()),
        }
    }

    /// Sends one single-line command and waits for its reply.
    pub fn command(&mut self, command: &Command) -> anyhow::Result<Reply> {
        self.queue(command)?;
        self.flush()?;
        match self.next_event()? {
            Event::Reply(r) => Ok(r),
            other => {
                let context = format!(" in reply to {}", command.kind().name());
                Err(unexpected(&other, &context).into())
            }
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
            return Err(Error::Unexpected(format!(
                "{} refused STLS: -ERR {}; refusing to log in without TLS",
                self.endpoint,
                crate::proto::pop3::quoted(&reply.text)
            ))
            .into());
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

    /// Logs in, and says which method did (`auto` resolved). `secret`
    /// yields a password, or an OAuth 2 access token when `token` is set
    /// (or the method is XOAUTH2 or OAUTHBEARER); it is not called for
    /// EXTERNAL. What to send is [`Login`]'s decision; this only carries
    /// the bytes.
    pub fn login(
        &mut self,
        method: AuthMethod,
        user: &str,
        secret: &dyn Fn() -> anyhow::Result<Secret>,
        token: bool,
    ) -> anyhow::Result<Method> {
        let server = self.endpoint.to_string();
        let nonce = crate::crypto::nonce()?;
        let none = Secret::new("");
        let binding = self.conn.as_ref().and_then(Connection::server_end_point);
        let mut request = Request {
            method: method.into(),
            user,
            secret: &none,
            server: &server,
            loopback: self.endpoint.is_loopback(),
            token,
            nonce: &nonce,
            client_cert: self.client_cert,
            channel_binding: binding.as_deref(),
        };
        // The password source is consulted only for a method that needs it.
        let obtained;
        if login::resolve(&request, &self.client).needs_secret() {
            obtained = secret()?;
            request.secret = &obtained;
        }
        let (mut login, mut commands) = Login::start(&request, &self.client)?;
        loop {
            for command in commands.drain(..) {
                self.queue(&command)?;
            }
            self.flush()?;
            loop {
                let event = self.next_event()?;
                match login.on_event(event)? {
                    Step::Send(more) => {
                        commands = more;
                        break;
                    }
                    Step::Wait => {}
                    Step::Done => return Ok(login.method()),
                }
            }
        }
    }

    fn expect_reply(&mut self) -> anyhow::Result<Reply> {
        match self.next_event()? {
            Event::Reply(r) => Ok(r),
            other => Err(unexpected(&other, "").into()),
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
        let mut entries = match self.read_list() {
            Ok(entries) => entries,
            Err(err) => {
                if pipelining
                    && err
                        .downcast_ref::<Error>()
                        .is_some_and(|e| e.refusal().is_some())
                {
                    // Read the UIDL reply before giving up.
                    self.skip_response()?;
                }
                return Err(err);
            }
        };
        if !pipelining {
            self.queue(&Command::Uidl(None))?;
            self.flush()?;
        }
        self.read_uidl(&mut entries)?;
        entries.sort_by_key(|e| e.number);
        entries.dedup_by_key(|e| e.number);
        Ok(entries)
    }

    fn read_stat(&mut self) -> anyhow::Result<()> {
        let r = self.expect_reply()?;
        if !r.ok {
            return Err(Error::refused(&r, "STAT").into());
        }
        Ok(())
    }

    /// The LIST response.
    fn read_list(&mut self) -> anyhow::Result<Vec<Entry>> {
        let mut entries = Vec::new();
        match self.next_event()? {
            Event::BodyStart(_) => {}
            Event::Reply(r) => return Err(Error::refused(&r, "LIST").into()),
            other => return Err(unexpected(&other, "").into()),
        }
        loop {
            match self.next_event()? {
                Event::ListEntry(number, size) => entries.push(Entry {
                    number,
                    size,
                    uidl: None,
                }),
                Event::BodyEnd(_) => return Ok(entries),
                other => return Err(unexpected(&other, " in LIST").into()),
            }
        }
    }

    /// The UIDL response, filling in `entries`; a refusal leaves them
    /// without ids.
    fn read_uidl(&mut self, entries: &mut [Entry]) -> anyhow::Result<()> {
        match self.next_event()? {
            Event::BodyStart(_) => {}
            Event::Reply(_) => return Ok(()),
            other => return Err(unexpected(&other, "").into()),
        }
        let index: std::collections::HashMap<u32, usize> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.number, i))
            .collect();
        loop {
            match self.next_event()? {
                Event::UidlEntry(number, uid) => {
                    if let Some(&i) = index.get(&number) {
                        entries[i].uidl = Some(String::from_utf8_lossy(&uid).into_owned());
                    }
                }
                Event::BodyEnd(_) => return Ok(()),
                other => return Err(unexpected(&other, " in UIDL").into()),
            }
        }
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
                other => return Err(unexpected(&other, " in TOP").into()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_quote_a_bounded_amount_of_server_text() {
        let reply = Reply {
            kind: Kind::Stat,
            ok: false,
            text: vec![b'x'; 8000],
        };
        let err = Error::refused(&reply, "STAT");
        assert!(err.to_string().len() < 400, "{}", err.to_string().len());
        assert!(err.to_string().ends_with("..."));
        assert_eq!(
            crate::proto::pop3::quoted(b"short \x1b[2J"),
            "short \\x1b[2J"
        );
    }

    #[test]
    fn no_password_in_clear_to_a_remote_server() {
        let remote = Endpoint::parse("192.0.2.7:110", 110).unwrap();
        let local = Endpoint::parse("127.0.0.1:110", 110).unwrap();
        for method in [AuthMethod::User, AuthMethod::Plain, AuthMethod::Xoauth2] {
            let err = plaintext_check(method, method, false, &remote).unwrap_err();
            assert!(
                matches!(err, Error::Unencrypted { no_apop: false, .. }),
                "{method:?}"
            );
            plaintext_check(method, method, true, &remote).unwrap();
            plaintext_check(method, method, false, &local).unwrap();
        }
        // APOP sends a digest, not the password.
        plaintext_check(AuthMethod::Apop, AuthMethod::Apop, false, &remote).unwrap();
        // auto without an APOP timestamp falls back to USER/PASS: refused.
        let err = plaintext_check(AuthMethod::Auto, AuthMethod::User, false, &remote).unwrap_err();
        assert!(matches!(err, Error::Unencrypted { no_apop: true, .. }));
    }
}
