//! The POP3 client session as a state machine (RFC 1939 section 3).
//!
//! The session moves through the RFC's states: the greeting, then
//! [`State::Authorization`] (CAPA, STLS, USER/PASS, APOP, AUTH), then
//! [`State::Transaction`] once a login succeeds, then [`State::Update`] when
//! QUIT is sent from the transaction state, where the server commits the
//! deletions. [`Client::send`] checks that a command is allowed now and
//! renders it; [`Client::feed`] takes the server's bytes in whatever chunks
//! they arrive and says what they mean. Commands may be sent ahead only
//! when the server offered PIPELINING (RFC 2449 section 6.6); responses are
//! matched to commands in order, so the machine always knows whether a
//! response is single-line or multi-line, and frames it accordingly:
//! status and listing lines through [`crate::proto::line::LineReader`],
//! message bodies through the unstuffing [`MultiLine`] reader.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::capability::Capabilities;
use super::command::{Command, Kind};
use super::response::{self, Limits, MultiLine, Status, MAX_STATUS_LINE};
use super::Error;
use crate::proto::line::LineReader;

/// The longest line accepted inside a message body (RETR, TOP). Lines this
/// long are far beyond RFC 5322's 998 octets; the cap only keeps memory
/// bounded.
pub const MAX_BODY_LINE: usize = 4 * 1024 * 1024;

/// The longest line of a CAPA, LIST or UIDL listing.
pub const MAX_LISTING_LINE: usize = 1024;

/// The most entries a LIST or UIDL listing may have, whatever STAT says
/// (a maildrop of a million messages is already extraordinary).
pub const MAX_LISTED: u64 = 1 << 20;

/// How much larger than LIST announced a message may turn out to be
/// (twice the size plus this): servers count sizes loosely, but not this
/// loosely.
pub const SIZE_SLACK: u64 = 64 * 1024;

/// The RFC 1939 session states, plus the moments before the greeting and
/// after the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Waiting for the server's greeting.
    Greeting,
    /// AUTHORIZATION: the client must identify itself.
    Authorization,
    /// TRANSACTION: the maildrop is open.
    Transaction,
    /// UPDATE: QUIT was sent from TRANSACTION; the server is committing the
    /// deletions.
    Update,
    /// The session is over (QUIT answered, or the greeting refused).
    Closed,
}

/// A complete status line, matched with the command it answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The command answered.
    pub kind: Kind,
    /// `+OK` (true) or `-ERR` (false).
    pub ok: bool,
    /// The text after the status indicator.
    pub text: Vec<u8>,
}

impl Reply {
    /// The extended response code of an `-ERR`, such as `AUTH`, `IN-USE`,
    /// `SYS/TEMP` (RFC 2449 section 8, RFC 3206).
    pub fn code(&self) -> Option<String> {
        response::response_code(&self.text)
    }

    /// Whether the failure is temporary by its response code.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self.code().as_deref(),
            Some("IN-USE") | Some("LOGIN-DELAY") | Some("SYS/TEMP")
        )
    }
}

/// What one line from the server meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A complete single-line response; also a `-ERR` to a multi-line
    /// command, which has no body.
    Reply(Reply),
    /// The `+OK` line of a multi-line response; body lines follow.
    BodyStart(Reply),
    /// Message bytes (RETR, TOP), unstuffed, were appended to `out`.
    Data,
    /// One CAPA line, recorded in [`Client::capabilities`].
    Capability,
    /// One LIST entry: message number and size.
    ListEntry(u32, u64),
    /// One UIDL entry: message number and unique id.
    UidlEntry(u32, Vec<u8>),
    /// The end of a multi-line response.
    BodyEnd(Kind),
    /// A SASL challenge (`+ base64`): answer with [`Command::SaslResponse`].
    Challenge(Vec<u8>),
}

struct Body {
    kind: Kind,
    reader: MultiLine,
    max_line: usize,
    entries: u64,
}

/// A POP3 client session that does no I/O.
pub struct Client {
    state: State,
    timestamp: Option<Vec<u8>>,
    capabilities: Option<Capabilities>,
    tls: bool,
    tls_pending: bool,
    user_given: bool,
    sasl_challenge: bool,
    pending: VecDeque<Kind>,
    body: Option<Body>,
    lines: LineReader,
    /// Bytes of the line being collected, to refuse an over-long one
    /// before its end arrives.
    partial: usize,
    /// The last complete line, for a transcript.
    line: Vec<u8>,
    scratch: Vec<u8>,
    message_count: Option<u32>,
    sizes: BTreeMap<u32, u64>,
    marked: BTreeSet<u32>,
    deletions_committed: bool,
    max_unlisted: u64,
}

impl Default for Client {
    fn default() -> Self {
        Self::new(false)
    }
}

impl Client {
    /// A session waiting for the greeting; `tls` says whether the
    /// connection is already encrypted (implicit TLS).
    pub fn new(tls: bool) -> Self {
        Client {
            state: State::Greeting,
            timestamp: None,
            capabilities: None,
            tls,
            tls_pending: false,
            user_given: false,
            sasl_challenge: false,
            pending: VecDeque::from([Kind::Greeting]),
            body: None,
            lines: LineReader::new(MAX_STATUS_LINE),
            partial: 0,
            line: Vec::new(),
            scratch: Vec::new(),
            message_count: None,
            sizes: BTreeMap::new(),
            marked: BTreeSet::new(),
            deletions_committed: false,
            max_unlisted: 1 << 30,
        }
    }

    /// Sets the size limit for messages whose size LIST did not announce.
    pub fn set_max_unlisted(&mut self, bytes: u64) {
        self.max_unlisted = bytes;
    }

    /// The current session state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The greeting's APOP timestamp, if it had one.
    pub fn apop_timestamp(&self) -> Option<&[u8]> {
        self.timestamp.as_deref()
    }

    /// What the last CAPA said; `None` if CAPA was not sent or was refused.
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.capabilities.as_ref()
    }

    /// Whether commands may be sent ahead of responses.
    pub fn pipelining(&self) -> bool {
        self.capabilities.as_ref().is_some_and(|c| c.pipelining)
    }

    /// Whether the connection is encrypted, as far as the session knows.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Commands sent and not yet fully answered.
    pub fn outstanding(&self) -> usize {
        self.pending
            .iter()
            .filter(|k| **k != Kind::Greeting)
            .count()
    }

    /// Whether STLS succeeded and the TLS handshake must happen now.
    pub fn tls_pending(&self) -> bool {
        self.tls_pending
    }

    /// The message count from STAT, if known.
    pub fn message_count(&self) -> Option<u32> {
        self.message_count
    }

    /// The size LIST gave for a message, if known.
    pub fn size_of(&self, number: u32) -> Option<u64> {
        self.sizes.get(&number).copied()
    }

    /// Whether the server confirmed QUIT from the transaction state, which
    /// commits the deletions (RFC 1939 section 6).
    pub fn deletions_committed(&self) -> bool {
        self.deletions_committed
    }

    /// Messages marked deleted (DELE sent and not refused).
    pub fn marked(&self) -> &BTreeSet<u32> {
        &self.marked
    }

    /// The longest line accepted next ([`Client::feed`] applies it), so
    /// memory stays bounded.
    pub fn max_line(&self) -> usize {
        self.body.as_ref().map_or(MAX_STATUS_LINE, |b| b.max_line)
    }

    /// Records that the TLS handshake after STLS completed: capabilities
    /// are forgotten and must be asked for again (RFC 2595 section 4).
    pub fn tls_started(&mut self) {
        self.tls_pending = false;
        self.tls = true;
        self.capabilities = None;
    }

    /// The APOP command for `user` (RFC 1939 section 7), built from the
    /// greeting's timestamp. Refused when the greeting had no timestamp or
    /// when it is not a well-formed msg-id (CVE-2007-1558): a server that
    /// picks the timestamp freely can recover the password.
    pub fn apop(&self, user: &str, password: &str) -> Result<Command, Error> {
        let stamp = self
            .timestamp
            .as_deref()
            .ok_or_else(|| Error::NotAllowed("the greeting has no APOP timestamp".into()))?;
        if !crate::proto::sasl::valid_apop_timestamp(stamp) {
            return Err(Error::NotAllowed(format!(
                "APOP refused: the greeting timestamp '{}' is not a well-formed msg-id (CVE-2007-1558)",
                crate::text::printable(stamp)
            )));
        }
        Ok(Command::Apop {
            user: user.to_string(),
            digest: crate::secret::Secret::new(crate::proto::sasl::apop_digest(stamp, password)),
        })
    }

    /// Checks that `command` may be sent now and returns its wire bytes.
    pub fn send(&mut self, command: &Command) -> Result<Vec<u8>, Error> {
        let kind = command.kind();
        let refuse = |why: String| Err(Error::NotAllowed(why));
        if self.tls_pending {
            return refuse("the TLS handshake must follow STLS".into());
        }
        if let Command::Apop { .. } = command {
            if !self
                .timestamp
                .as_deref()
                .is_some_and(crate::proto::sasl::valid_apop_timestamp)
            {
                return refuse("APOP needs a well-formed greeting timestamp".into());
            }
        }
        if let Command::SaslResponse(_) = command {
            if !self.sasl_challenge {
                return refuse("no SASL challenge to answer".into());
            }
            let wire = command.render()?;
            self.sasl_challenge = false;
            return Ok(wire);
        }
        if self.sasl_challenge {
            return refuse("a SASL challenge must be answered first".into());
        }
        match self.state {
            State::Greeting => return refuse("the greeting has not arrived".into()),
            State::Update | State::Closed => return refuse("the session is over".into()),
            State::Authorization | State::Transaction => {}
        }
        if self.pending.contains(&Kind::Quit) {
            return refuse("QUIT was already sent".into());
        }
        if self.pending.contains(&Kind::Stls) {
            return refuse("nothing may follow STLS before its reply".into());
        }
        if !self.pending.is_empty() && !self.pipelining() {
            return refuse(format!(
                "cannot send {} before the previous reply: the server did not offer PIPELINING",
                kind.name()
            ));
        }
        let allowed = match self.state {
            State::Authorization => match kind {
                Kind::Capa | Kind::User | Kind::Apop | Kind::Auth | Kind::Quit => true,
                Kind::Stls => !self.tls && !self.user_given,
                Kind::Pass => self.user_given,
                _ => false,
            },
            State::Transaction => !matches!(
                kind,
                Kind::Greeting | Kind::Stls | Kind::User | Kind::Pass | Kind::Apop | Kind::Auth
            ),
            _ => false,
        };
        if !allowed {
            return refuse(format!(
                "{} is not allowed in the {:?} state",
                kind.name(),
                self.state
            ));
        }
        if let Kind::List(Some(n))
        | Kind::Uidl(Some(n))
        | Kind::Top(n)
        | Kind::Retr(n)
        | Kind::Dele(n) = kind
        {
            if n == 0 {
                return refuse("message numbers start at 1".into());
            }
            if self.marked.contains(&n) {
                return refuse(format!("message {n} is marked as deleted"));
            }
        }
        let wire = command.render()?;
        match kind {
            Kind::User => self.user_given = true,
            Kind::Dele(n) => {
                self.marked.insert(n);
            }
            Kind::Quit if self.state == State::Transaction => self.state = State::Update,
            _ => {}
        }
        self.pending.push_back(kind);
        Ok(wire)
    }

    /// Feeds bytes received from the server, cut anywhere. Returns how many
    /// were used and the event they completed, if any: the machine stops
    /// right after one event, so the rest of `input` (the next reply, or
    /// bytes sent before a TLS handshake) stays with the caller. Status and
    /// listing lines are collected here up to [`Client::max_line`]; RETR
    /// and TOP bodies go through the unstuffing reader, their bytes
    /// appended to `out` ([`Event::Data`]). `None` means: feed more bytes.
    /// Call again with an empty `input` after an event before reading more:
    /// an [`Event::BodyEnd`] may be due without further input.
    pub fn feed(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(usize, Option<Event>), Error> {
        if self.in_message_body() {
            if input.is_empty() && !self.message_body_ended() {
                return Ok((0, None));
            }
            let before = out.len();
            let (used, event) = self.on_message_data(input, out)?;
            if event == Event::Data && out.len() == before {
                return Ok((used, None));
            }
            return Ok((used, Some(event)));
        }
        let max = self.max_line();
        if self.lines.max() != max && !self.lines.has_partial() {
            self.lines = LineReader::new(max);
        }
        self.line.clear();
        let (used, line) = self.lines.push(input);
        let too_long =
            |max| Error::TooLarge(format!("the server sent a line longer than {max} bytes"));
        let line = match line {
            None => {
                // No server gets to make us wait for the end of a line
                // that is refused anyway.
                self.partial += used;
                if self.partial >= max {
                    return Err(too_long(max));
                }
                return Ok((used, None));
            }
            Some(Ok(line)) => line,
            Some(Err(e)) => return Err(too_long(e.max)),
        };
        self.partial = 0;
        let event = self.on_line(&line, out)?;
        self.line = line;
        Ok((used, Some(event)))
    }

    /// The last complete line [`Client::feed`] interpreted, for a
    /// transcript.
    pub fn last_line(&self) -> &[u8] {
        &self.line
    }

    /// Interprets one line from the server (line ending included). Message
    /// bytes are appended to `out`.
    pub fn on_line(&mut self, line: &[u8], out: &mut Vec<u8>) -> Result<Event, Error> {
        if self.body.is_some() {
            return self.body_line(line, out);
        }
        let Some(&kind) = self.pending.front() else {
            return Err(Error::Malformed(format!(
                "unexpected line from server: '{}'",
                crate::text::printable_line(&line[..line.len().min(200)])
            )));
        };
        if !line.ends_with(b"\n") {
            return Err(Error::Malformed("incomplete status line".into()));
        }
        let status = response::parse_status(line)?;
        let (ok, text) = match status {
            Status::Ok(t) => (true, t.to_vec()),
            Status::Err(t) => (false, t.to_vec()),
            Status::Continue(t) => {
                if kind != Kind::Auth {
                    return Err(Error::Malformed(format!(
                        "continuation '+' in reply to {}",
                        kind.name()
                    )));
                }
                self.sasl_challenge = true;
                return Ok(Event::Challenge(t.to_vec()));
            }
        };
        let reply = Reply { kind, ok, text };
        if ok && kind.is_multiline() {
            self.start_body(kind);
            return Ok(Event::BodyStart(reply));
        }
        self.pending.pop_front();
        self.apply(&reply)?;
        Ok(Event::Reply(reply))
    }

    /// Whether a RETR or TOP body is being received, so that
    /// [`Client::on_message_data`] may be fed raw bytes instead of lines.
    pub fn in_message_body(&self) -> bool {
        matches!(
            &self.body,
            Some(Body {
                kind: Kind::Top(_) | Kind::Retr(_),
                ..
            })
        )
    }

    /// Whether the terminating line of the RETR or TOP body in progress
    /// has been read: [`Client::on_message_data`] then needs no more input
    /// to report [`Event::BodyEnd`].
    pub fn message_body_ended(&self) -> bool {
        self.in_message_body() && self.body.as_ref().is_some_and(|b| b.reader.is_done())
    }

    /// Feeds any number of bytes of a RETR or TOP body (RFC 1939 section 3),
    /// split anywhere, appending the unstuffed message bytes to `out`.
    /// Returns how many input bytes were used (fewer than given when the
    /// terminating `.` CRLF ends inside `input`: the rest belongs to the
    /// next reply) and the event: [`Event::Data`] while message bytes come,
    /// including the last ones, then [`Event::BodyEnd`] on its own, so that
    /// no message byte arrives with the end.
    pub fn on_message_data(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(usize, Event), Error> {
        if !self.in_message_body() {
            return Err(Error::Malformed("no message body in progress".into()));
        }
        let body = self.body.as_mut().expect("body in progress");
        let kind = body.kind;
        let before = out.len();
        let fed = body.reader.feed(input, out)?;
        if fed.done && out.len() == before {
            self.body = None;
            self.pending.pop_front();
            return Ok((fed.consumed, Event::BodyEnd(kind)));
        }
        Ok((fed.consumed, Event::Data))
    }

    fn start_body(&mut self, kind: Kind) {
        let (max_line, max_total) = match kind {
            Kind::Capa => (MAX_LISTING_LINE, 64 * 1024),
            Kind::List(None) | Kind::Uidl(None) => (MAX_LISTING_LINE, u64::MAX),
            Kind::Top(n) => (
                MAX_BODY_LINE,
                self.size_of(n)
                    .map_or(self.max_unlisted, |s| s.saturating_add(SIZE_SLACK)),
            ),
            Kind::Retr(n) => (
                MAX_BODY_LINE,
                self.size_of(n).map_or(self.max_unlisted, |s| {
                    s.saturating_mul(2).saturating_add(SIZE_SLACK)
                }),
            ),
            _ => (MAX_LISTING_LINE, 0),
        };
        if kind == Kind::Capa {
            self.capabilities = Some(Capabilities::default());
        }
        self.body = Some(Body {
            kind,
            reader: MultiLine::new(Limits {
                max_line: max_line as u64,
                max_total,
            }),
            max_line,
            entries: 0,
        });
    }

    fn body_line(&mut self, line: &[u8], out: &mut Vec<u8>) -> Result<Event, Error> {
        let body = self.body.as_mut().expect("body in progress");
        let kind = body.kind;
        let data_out = if matches!(kind, Kind::Top(_) | Kind::Retr(_)) {
            &mut *out
        } else {
            self.scratch.clear();
            &mut self.scratch
        };
        let fed = body.reader.feed(line, data_out)?;
        if fed.consumed != line.len() {
            return Err(Error::Malformed(
                "bytes after the end of a response line".into(),
            ));
        }
        if fed.done {
            self.body = None;
            self.pending.pop_front();
            return Ok(Event::BodyEnd(kind));
        }
        if !line.ends_with(b"\n") {
            // The caller hands over whole lines; a partial one is only
            // possible for the last bytes of a listing.
            if !matches!(kind, Kind::Top(_) | Kind::Retr(_)) {
                return Err(Error::Malformed("incomplete listing line".into()));
            }
            return Ok(Event::Data);
        }
        match kind {
            Kind::Top(_) | Kind::Retr(_) => Ok(Event::Data),
            Kind::Capa => {
                if let Some(caps) = &mut self.capabilities {
                    caps.add_line(&self.scratch);
                }
                Ok(Event::Capability)
            }
            Kind::List(None) | Kind::Uidl(None) => {
                body.entries += 1;
                // STAT's count bounds the listing, but the count itself
                // comes from the server: cap it too.
                let limit = self
                    .message_count
                    .map_or(MAX_LISTED, |n| u64::from(n).min(MAX_LISTED));
                if body.entries > limit {
                    return Err(Error::TooLarge(format!(
                        "{} listed more than {limit} messages",
                        kind.name()
                    )));
                }
                if kind == Kind::List(None) {
                    let (n, size) = response::parse_list_entry(&self.scratch)?;
                    self.sizes.insert(n, size);
                    Ok(Event::ListEntry(n, size))
                } else {
                    let (n, uid) = response::parse_uidl_entry(&self.scratch)?;
                    Ok(Event::UidlEntry(n, uid.to_vec()))
                }
            }
            _ => Err(Error::Malformed(format!(
                "unexpected body for {}",
                kind.name()
            ))),
        }
    }

    fn apply(&mut self, reply: &Reply) -> Result<(), Error> {
        let ok = reply.ok;
        match reply.kind {
            Kind::Greeting => {
                if ok {
                    self.state = State::Authorization;
                    self.timestamp = response::greeting_timestamp(&reply.text).map(<[u8]>::to_vec);
                } else {
                    self.state = State::Closed;
                }
            }
            Kind::Capa => self.capabilities = None,
            Kind::Stls if ok => self.tls_pending = true,
            Kind::User if !ok => self.user_given = false,
            Kind::Pass | Kind::Apop | Kind::Auth => {
                self.sasl_challenge = false;
                if ok {
                    self.state = State::Transaction;
                } else {
                    self.user_given = false;
                }
            }
            Kind::Stat if ok => {
                let (count, _) = response::parse_stat(&reply.text)?;
                self.message_count = Some(count);
            }
            Kind::List(Some(_)) if ok => {
                let (n, size) = response::parse_list_entry(&reply.text)?;
                self.sizes.insert(n, size);
            }
            Kind::Uidl(Some(_)) if ok => {
                response::parse_uidl_entry(&reply.text)?;
            }
            Kind::Dele(n) if !ok => {
                self.marked.remove(&n);
            }
            Kind::Rset if ok => self.marked.clear(),
            Kind::Quit => {
                if self.state == State::Update && ok {
                    self.deletions_committed = true;
                }
                self.state = State::Closed;
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    /// Feeds a server transcript line by line, collecting the events and
    /// the message bytes.
    fn feed(client: &mut Client, server: &[u8]) -> (Vec<Event>, Vec<u8>) {
        let mut events = Vec::new();
        let mut out = Vec::new();
        for line in server.split_inclusive(|&b| b == b'\n') {
            events.push(client.on_line(line, &mut out).unwrap());
        }
        (events, out)
    }

    fn reply(kind: Kind, ok: bool, text: &[u8]) -> Reply {
        Reply {
            kind,
            ok,
            text: text.to_vec(),
        }
    }

    fn logged_in(pipelining: bool) -> Client {
        let mut c = Client::new(true);
        feed(&mut c, b"+OK ready\r\n");
        c.send(&Command::Capa).unwrap();
        let caps: &[u8] = if pipelining {
            b"+OK\r\nUSER\r\nPIPELINING\r\n.\r\n"
        } else {
            b"+OK\r\nUSER\r\n.\r\n"
        };
        feed(&mut c, caps);
        c.send(&Command::User("u".into())).unwrap();
        feed(&mut c, b"+OK\r\n");
        c.send(&Command::Pass(Secret::new("p"))).unwrap();
        feed(&mut c, b"+OK maildrop ready\r\n");
        assert_eq!(c.state(), State::Transaction);
        c
    }

    #[test]
    fn greeting_keeps_apop_timestamp() {
        let mut c = Client::new(false);
        assert_eq!(c.state(), State::Greeting);
        assert!(c.send(&Command::Capa).is_err());
        let (ev, _) = feed(
            &mut c,
            b"+OK POP3 ready <1896.697170952@dbc.mtview.ca.us>\r\n",
        );
        assert_eq!(
            ev,
            [Event::Reply(reply(
                Kind::Greeting,
                true,
                b"POP3 ready <1896.697170952@dbc.mtview.ca.us>"
            ))]
        );
        assert_eq!(c.state(), State::Authorization);
        assert_eq!(
            c.apop_timestamp(),
            Some(&b"<1896.697170952@dbc.mtview.ca.us>"[..])
        );
        // Nothing may be sent in AUTHORIZATION that needs a maildrop.
        assert!(c.send(&Command::Retr(1)).is_err());
        assert!(c.send(&Command::Pass(Secret::new("x"))).is_err());
    }

    #[test]
    fn apop_only_with_a_safe_timestamp() {
        let mut c = Client::new(false);
        feed(
            &mut c,
            b"+OK POP3 ready <1896.697170952@dbc.mtview.ca.us>\r\n",
        );
        let cmd = c.apop("mrose", "tanstaaf").unwrap();
        assert_eq!(
            c.send(&cmd).unwrap(),
            b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n"
        );
        assert_eq!(cmd.shown(), "APOP mrose <redacted>");
        feed(&mut c, b"+OK mrose's maildrop has 2 messages\r\n");
        assert_eq!(c.state(), State::Transaction);

        for greeting in [
            &b"+OK ready <1896.697170952>\r\n"[..],
            b"+OK ready <a@b\xff>\r\n",
            b"+OK ready <a b@c>\r\n",
            b"+OK ready\r\n",
        ] {
            let mut c = Client::new(false);
            feed(&mut c, greeting);
            assert!(c.apop("u", "p").is_err());
            let forged = Command::Apop {
                user: "u".into(),
                digest: Secret::new("00"),
            };
            assert!(matches!(c.send(&forged), Err(Error::NotAllowed(_))));
        }
    }

    #[test]
    fn greeting_refused() {
        let mut c = Client::new(false);
        let (ev, _) = feed(&mut c, b"-ERR [SYS/TEMP] go away\r\n");
        let Event::Reply(r) = &ev[0] else { panic!() };
        assert!(!r.ok && r.is_temporary());
        assert_eq!(c.state(), State::Closed);
        assert!(c.send(&Command::Quit).is_err());
    }

    #[test]
    fn authorization_capa_stls_capa_user_pass() {
        let mut c = Client::new(false);
        feed(&mut c, b"+OK hi\r\n");
        assert_eq!(c.send(&Command::Capa).unwrap(), b"CAPA\r\n");
        let (ev, _) = feed(
            &mut c,
            b"+OK list follows\r\nSTLS\r\nUSER\r\nPIPELINING\r\n.\r\n",
        );
        assert_eq!(ev.len(), 5);
        assert_eq!(ev[4], Event::BodyEnd(Kind::Capa));
        assert!(c.capabilities().unwrap().stls);
        assert_eq!(c.send(&Command::Stls).unwrap(), b"STLS\r\n");
        // Nothing may be pipelined behind STLS.
        assert!(c.send(&Command::Capa).is_err());
        feed(&mut c, b"+OK begin TLS\r\n");
        assert!(c.tls_pending());
        assert!(c.send(&Command::Capa).is_err());
        c.tls_started();
        assert!(c.capabilities().is_none());
        assert!(c.send(&Command::Stls).is_err(), "STLS twice");
        c.send(&Command::Capa).unwrap();
        feed(&mut c, b"+OK\r\nUSER\r\nSASL PLAIN\r\nPIPELINING\r\n.\r\n");
        assert!(c.pipelining());
        c.send(&Command::User("tim".into())).unwrap();
        c.send(&Command::Pass(Secret::new("pw"))).unwrap();
        assert_eq!(c.outstanding(), 2);
        let (ev, _) = feed(&mut c, b"+OK\r\n+OK in\r\n");
        assert_eq!(ev[1], Event::Reply(reply(Kind::Pass, true, b"in")));
        assert_eq!(c.state(), State::Transaction);
    }

    #[test]
    fn pass_refused_stays_in_authorization() {
        let mut c = Client::new(true);
        feed(&mut c, b"+OK\r\n");
        c.send(&Command::User("u".into())).unwrap();
        feed(&mut c, b"+OK\r\n");
        c.send(&Command::Pass(Secret::new("bad"))).unwrap();
        let (ev, _) = feed(&mut c, b"-ERR [AUTH] invalid\r\n");
        let Event::Reply(r) = &ev[0] else { panic!() };
        assert_eq!(r.code().as_deref(), Some("AUTH"));
        assert_eq!(c.state(), State::Authorization);
        assert!(c.send(&Command::Pass(Secret::new("again"))).is_err());
    }

    #[test]
    fn no_pipelining_without_capability() {
        let mut c = logged_in(false);
        c.send(&Command::Retr(1)).unwrap();
        let err = c.send(&Command::Retr(2)).unwrap_err();
        assert!(matches!(err, Error::NotAllowed(_)));
    }

    #[test]
    fn stls_not_after_user() {
        let mut c = Client::new(false);
        feed(&mut c, b"+OK\r\n");
        c.send(&Command::User("u".into())).unwrap();
        feed(&mut c, b"+OK\r\n");
        assert!(c.send(&Command::Stls).is_err());
    }

    #[test]
    fn auth_with_continuation() {
        let mut c = Client::new(true);
        feed(&mut c, b"+OK\r\n");
        c.send(&Command::Auth {
            mechanism: "XOAUTH2".into(),
            initial: Some(Secret::new("dG9r")),
        })
        .unwrap();
        let (ev, _) = feed(&mut c, b"+ eyJzdGF0dXMiOiI0MDEifQ==\r\n");
        assert_eq!(
            ev[0],
            Event::Challenge(b"eyJzdGF0dXMiOiI0MDEifQ==".to_vec())
        );
        assert!(c.send(&Command::Quit).is_err());
        assert_eq!(
            c.send(&Command::SaslResponse(Secret::new(""))).unwrap(),
            b"\r\n"
        );
        let (ev, _) = feed(&mut c, b"-ERR [AUTH] bad token\r\n");
        assert_eq!(
            ev[0],
            Event::Reply(reply(Kind::Auth, false, b"[AUTH] bad token"))
        );
        assert_eq!(c.state(), State::Authorization);
        c.send(&Command::Auth {
            mechanism: "PLAIN".into(),
            initial: Some(Secret::new("AHUAcA==")),
        })
        .unwrap();
        feed(&mut c, b"+OK\r\n");
        assert_eq!(c.state(), State::Transaction);
    }

    #[test]
    fn transaction_listings_and_pipelined_retrieval() {
        let mut c = logged_in(true);
        c.send(&Command::Stat).unwrap();
        c.send(&Command::List(None)).unwrap();
        c.send(&Command::Uidl(None)).unwrap();
        let (ev, _) = feed(
            &mut c,
            b"+OK 2 320\r\n+OK\r\n1 120\r\n2 200\r\n.\r\n+OK\r\n1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\n.\r\n",
        );
        assert_eq!(c.message_count(), Some(2));
        assert_eq!(
            ev.iter()
                .filter(|e| matches!(e, Event::ListEntry(..) | Event::UidlEntry(..)))
                .count(),
            4
        );
        assert!(ev.contains(&Event::UidlEntry(2, b"QhdPYR:00WBw1Ph7x7".to_vec())));
        assert_eq!(c.size_of(2), Some(200));

        c.send(&Command::Retr(1)).unwrap();
        c.send(&Command::Retr(2)).unwrap();
        let (ev, out) = feed(
            &mut c,
            b"+OK 120 octets\r\nA: b\r\n\r\n..dot\r\n.\r\n-ERR no such message\r\n",
        );
        assert_eq!(out, b"A: b\r\n\r\n.dot\r\n");
        assert_eq!(
            ev[0],
            Event::BodyStart(reply(Kind::Retr(1), true, b"120 octets"))
        );
        assert_eq!(ev[4], Event::BodyEnd(Kind::Retr(1)));
        assert_eq!(
            ev[5],
            Event::Reply(reply(Kind::Retr(2), false, b"no such message"))
        );

        c.send(&Command::Dele(1)).unwrap();
        assert!(c.send(&Command::Retr(1)).is_err(), "marked as deleted");
        c.send(&Command::Dele(2)).unwrap();
        feed(&mut c, b"+OK\r\n-ERR\r\n");
        assert_eq!(c.marked().iter().copied().collect::<Vec<_>>(), [1]);
        c.send(&Command::Quit).unwrap();
        assert_eq!(c.state(), State::Update);
        assert!(c.send(&Command::Noop).is_err());
        feed(&mut c, b"+OK bye\r\n");
        assert_eq!(c.state(), State::Closed);
        assert!(c.deletions_committed());
    }

    /// Drives a client the way a session does: status lines through
    /// `on_line`, message bodies as raw chunks of `chunk` bytes.
    fn drive_in_chunks(client: &mut Client, server: &[u8], chunk: usize) -> (Vec<Event>, Vec<u8>) {
        let mut events = Vec::new();
        let mut out = Vec::new();
        let mut rest = server;
        while !rest.is_empty() || client.message_body_ended() {
            if client.in_message_body() {
                let take = rest.len().min(chunk);
                let (used, event) = client.on_message_data(&rest[..take], &mut out).unwrap();
                rest = &rest[used..];
                events.push(event);
            } else {
                let end = rest.iter().position(|&b| b == b'\n').unwrap() + 1;
                events.push(client.on_line(&rest[..end], &mut out).unwrap());
                rest = &rest[end..];
            }
        }
        (events, out)
    }

    #[test]
    fn message_bodies_in_raw_chunks_of_any_size() {
        let wire: &[u8] = b"+OK\r\nA: b\r\n\r\n..dot\r\n.\r\r\nx\r\n.\r\n+OK\r\n.\r\n-ERR gone\r\n";
        for chunk in 1..=wire.len() {
            let mut c = logged_in(true);
            for n in 1..=3 {
                c.send(&Command::Retr(n)).unwrap();
            }
            let (ev, out) = drive_in_chunks(&mut c, wire, chunk);
            assert_eq!(out, b"A: b\r\n\r\n.dot\r\n\r\r\nx\r\n", "chunk {chunk}");
            let ends: Vec<_> = ev
                .iter()
                .filter(|e| matches!(e, Event::BodyEnd(_)))
                .collect();
            assert_eq!(
                ends,
                [
                    &Event::BodyEnd(Kind::Retr(1)),
                    &Event::BodyEnd(Kind::Retr(2))
                ]
            );
            assert_eq!(
                ev.last(),
                Some(&Event::Reply(reply(Kind::Retr(3), false, b"gone")))
            );
            assert_eq!(c.outstanding(), 0);
        }
        let mut c = logged_in(true);
        assert!(c.on_message_data(b"x", &mut Vec::new()).is_err());
    }

    #[test]
    fn over_long_lines_are_refused_before_their_end() {
        for chunk in [1, 7, 4096, 20_000] {
            let mut c = Client::new(false);
            let flood = vec![b'x'; 3 * MAX_STATUS_LINE];
            let mut rest = &flood[..];
            let err = loop {
                let take = chunk.min(rest.len());
                match c.feed(&rest[..take], &mut Vec::new()) {
                    Ok((used, None)) => rest = &rest[used..],
                    Ok((_, Some(e))) => panic!("{e:?}"),
                    Err(e) => break e,
                }
                assert!(!rest.is_empty(), "chunk {chunk}: no error");
            };
            assert!(matches!(err, Error::TooLarge(_)), "{err:?}");
        }
        // A long line with its end in the same chunk.
        let mut c = Client::new(false);
        let mut line = vec![b'x'; MAX_STATUS_LINE];
        line.extend_from_slice(b"\r\n");
        assert!(matches!(
            c.feed(&line, &mut Vec::new()),
            Err(Error::TooLarge(_))
        ));
    }

    #[test]
    fn quit_refused_in_update_means_not_committed() {
        let mut c = logged_in(false);
        c.send(&Command::Dele(1)).unwrap();
        feed(&mut c, b"+OK\r\n");
        c.send(&Command::Quit).unwrap();
        feed(&mut c, b"-ERR some deleted messages not removed\r\n");
        assert!(!c.deletions_committed());
        assert_eq!(c.state(), State::Closed);
    }

    #[test]
    fn rset_unmarks() {
        let mut c = logged_in(false);
        c.send(&Command::Dele(3)).unwrap();
        feed(&mut c, b"+OK\r\n");
        c.send(&Command::Rset).unwrap();
        feed(&mut c, b"+OK\r\n");
        assert!(c.marked().is_empty());
        c.send(&Command::Top(3, 0)).unwrap();
        let (_, out) = feed(&mut c, b"+OK\r\nSubject: x\r\n\r\n.\r\n");
        assert_eq!(out, b"Subject: x\r\n\r\n");
        c.send(&Command::Noop).unwrap();
        feed(&mut c, b"+OK\r\n");
    }

    #[test]
    fn oversized_message_is_a_protocol_error() {
        let mut c = logged_in(false);
        c.send(&Command::List(Some(1))).unwrap();
        feed(&mut c, b"+OK 1 10\r\n");
        c.send(&Command::Retr(1)).unwrap();
        let mut out = Vec::new();
        c.on_line(b"+OK\r\n", &mut out).unwrap();
        let line = vec![b'x'; 1000];
        let mut line = line;
        line.extend_from_slice(b"\r\n");
        let mut failed = None;
        for _ in 0..200 {
            if let Err(e) = c.on_line(&line, &mut out) {
                failed = Some(e);
                break;
            }
        }
        assert!(matches!(failed, Some(Error::TooLarge(_))));
        assert!(out.len() as u64 <= 2 * 10 + SIZE_SLACK);
    }

    #[test]
    fn listing_longer_than_stat_is_refused() {
        let mut c = logged_in(false);
        c.send(&Command::Stat).unwrap();
        feed(&mut c, b"+OK 1 10\r\n");
        c.send(&Command::List(None)).unwrap();
        let mut out = Vec::new();
        c.on_line(b"+OK\r\n", &mut out).unwrap();
        c.on_line(b"1 10\r\n", &mut out).unwrap();
        assert!(c.on_line(b"2 10\r\n", &mut out).is_err());
    }

    /// A server claiming four billion messages cannot make the listing
    /// grow without end.
    #[test]
    fn huge_stat_count_does_not_lift_the_listing_cap() {
        let mut c = logged_in(false);
        c.send(&Command::Stat).unwrap();
        feed(&mut c, b"+OK 4000000000 10\r\n");
        c.send(&Command::List(None)).unwrap();
        let mut out = Vec::new();
        c.on_line(b"+OK\r\n", &mut out).unwrap();
        let mut failed = None;
        for _ in 0..=MAX_LISTED {
            if let Err(e) = c.on_line(b"1 10\r\n", &mut out) {
                failed = Some(e);
                break;
            }
        }
        assert!(matches!(failed, Some(Error::TooLarge(_))), "{failed:?}");
    }

    #[test]
    fn malformed_and_unsolicited() {
        let mut c = Client::new(false);
        assert!(c.on_line(b"HELLO\r\n", &mut Vec::new()).is_err());
        let mut c = logged_in(false);
        assert!(c.on_line(b"+OK surprise\r\n", &mut Vec::new()).is_err());
        c.send(&Command::Noop).unwrap();
        assert!(c.on_line(b"+ challenge\r\n", &mut Vec::new()).is_err());
    }
}
