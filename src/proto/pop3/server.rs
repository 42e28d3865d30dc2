//! The POP3 server state machine (RFC 1939) with CAPA and response codes
//! (RFC 2449), STLS (RFC 2595), AUTH PLAIN (RFC 5034, RFC 4616) and APOP.
//!
//! Pure: no sockets, files or clock. The driver feeds command lines to
//! [`Pop3Server::command`] and performs the [`Pop3Action`] of each step:
//! opening (locking and listing) a mailbox, sending a message through a
//! [`MessageStuffer`], removing deleted messages at QUIT, or the TLS
//! handshake. Messages are seen as a snapshot taken at login.

use super::command::{self, Command, ParseError, Parsed};
use super::response::Status;
use crate::proto::dot::Stuffer;
use crate::proto::sasl::{self, ResponseError};
use crate::proto::users::{mailbox_name, Policy};

/// Failed logins allowed before the connection is closed.
pub const MAX_AUTH_FAILURES: u32 = 3;

/// What the session knows of one message in the maildrop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageInfo {
    /// Size in octets, as sent (the stored file uses CRLF line ends).
    pub size: u64,
    /// The unique id for UIDL (RFC 1939 section 7: 1 to 70 printable
    /// characters), stable across sessions and restarts.
    pub uid: String,
}

/// Why a mailbox could not be opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// Another session holds the lock (RFC 2449 `[IN-USE]`).
    InUse,
    /// A local error reading the Maildir.
    Io,
}

/// What the driver does with a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pop3Action {
    /// Send the reply, read the next command.
    Continue,
    /// Send the reply, then do the TLS handshake (discarding buffered input)
    /// and call [`Pop3Server::tls_started`].
    StartTls,
    /// Lock and list this mailbox, then send [`Pop3Server::opened`]'s reply.
    Open(String),
    /// Send the reply (a `+OK` status line), then message `index` (0-based)
    /// through a [`MessageStuffer`] with this body-line limit.
    Send {
        /// Position in the snapshot.
        index: usize,
        /// `TOP`'s line count, or `None` for the whole message.
        body_lines: Option<u64>,
    },
    /// Remove these messages (0-based), then send
    /// [`Pop3Server::updated`]'s reply and close (the UPDATE state).
    Update(Vec<usize>),
    /// Send the reply and close.
    Close,
}

/// A reply (possibly empty, see [`Pop3Action`]) and what follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pop3Step {
    /// Bytes to send.
    pub reply: Vec<u8>,
    /// What to do after sending them.
    pub action: Pop3Action,
}

impl Pop3Step {
    fn ok(text: impl AsRef<str>) -> Self {
        Self::status(Status::Ok(text.as_ref().as_bytes()))
    }

    fn err(text: impl AsRef<str>) -> Self {
        Self::status(Status::Err(text.as_ref().as_bytes()))
    }

    fn status(status: Status) -> Self {
        Pop3Step {
            reply: status.to_bytes(),
            action: Pop3Action::Continue,
        }
    }

    fn multi(first: &str, lines: &[String]) -> Self {
        let mut reply = ok(first);
        for line in lines {
            reply.extend_from_slice(line.as_bytes());
            reply.extend_from_slice(b"\r\n");
        }
        reply.extend_from_slice(b".\r\n");
        Pop3Step {
            reply,
            action: Pop3Action::Continue,
        }
    }

    fn then(mut self, action: Pop3Action) -> Self {
        self.action = action;
        self
    }
}

/// A `+OK` status line.
fn ok(text: &str) -> Vec<u8> {
    Status::Ok(text.as_bytes()).to_bytes()
}

/// A `-ERR` status line.
fn err(text: &str) -> Vec<u8> {
    Status::Err(text.as_bytes()).to_bytes()
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// RFC 1939 AUTHORIZATION; `user` is the name from USER.
    Authorization { user: Option<String> },
    /// `AUTH PLAIN` without initial response: waiting for it.
    AuthPlain,
    /// Waiting for the driver to open this mailbox.
    Opening,
    /// RFC 1939 TRANSACTION over a snapshot.
    Transaction {
        messages: Vec<MessageInfo>,
        deleted: Vec<bool>,
    },
    /// QUIT received in TRANSACTION; waiting for the driver's removals.
    Update { removed: usize },
    /// Closing.
    Closed,
}

/// One POP3 server session.
#[derive(Clone, Debug)]
pub struct Pop3Server {
    policy: Policy,
    timestamp: String,
    tls: bool,
    loopback: bool,
    state: State,
    auth_failures: u32,
    failed_login: Option<String>,
}

impl Pop3Server {
    /// A session on a new connection. `timestamp` is the APOP msg-id
    /// (`<pid.nanos@host>`, unique per connection).
    pub fn new(policy: Policy, timestamp: String, loopback: bool) -> Self {
        Pop3Server {
            policy,
            timestamp,
            tls: false,
            loopback,
            state: State::Authorization { user: None },
            auth_failures: 0,
            failed_login: None,
        }
    }

    /// The user name of the login that the last command failed, if any
    /// (taken: the next call returns `None`).
    pub fn take_failed_login(&mut self) -> Option<String> {
        self.failed_login.take()
    }

    /// The greeting, with the APOP timestamp (RFC 1939 section 7).
    pub fn greeting(&self) -> Vec<u8> {
        ok(&format!("mailctl POP3 server ready {}", self.timestamp))
    }

    /// Sent when an idle session is closed (RFC 1939 section 3: no UPDATE).
    pub fn timeout_reply(&self) -> Vec<u8> {
        err("[SYS/TEMP] idle timeout, closing connection")
    }

    /// Sent when the server is shutting down.
    pub fn shutdown_reply(&self) -> Vec<u8> {
        err("[SYS/TEMP] server shutting down")
    }

    /// The reply to a command line over the length limit (discarded).
    pub fn line_too_long(&mut self) -> Vec<u8> {
        if self.state == State::AuthPlain {
            self.state = State::Authorization { user: None };
        }
        err("line too long")
    }

    /// Whether a SASL response is expected next.
    pub fn in_auth_exchange(&self) -> bool {
        self.state == State::AuthPlain
    }

    /// The form of a client line that may be logged: passwords, APOP
    /// digests and SASL responses become `<redacted>`.
    pub fn redacted(&self, line: &[u8]) -> Vec<u8> {
        if self.in_auth_exchange() {
            return b"<redacted>".to_vec();
        }
        let text = trim_eol(line);
        let words: Vec<&[u8]> = text.splitn(3, |&b| b == b' ').collect();
        let verb = words[0].to_ascii_uppercase();
        let keep = match verb.as_slice() {
            b"PASS" => 1,
            b"APOP" | b"AUTH" => 2,
            _ => return text.to_vec(),
        };
        if words.len() <= keep {
            return text.to_vec();
        }
        let mut out = words[..keep].join(&b' ');
        out.extend_from_slice(b" <redacted>");
        out
    }

    /// Call after the handshake that followed STLS.
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.state = State::Authorization { user: None };
    }

    /// The driver's answer to [`Pop3Action::Open`]: the snapshot or why it
    /// could not be taken.
    pub fn opened(&mut self, result: Result<Vec<MessageInfo>, OpenError>) -> Vec<u8> {
        match result {
            Ok(messages) => {
                let (count, size) = (messages.len(), messages.iter().map(|m| m.size).sum::<u64>());
                self.state = State::Transaction {
                    deleted: vec![false; messages.len()],
                    messages,
                };
                ok(&format!("maildrop has {count} messages ({size} octets)"))
            }
            Err(e) => {
                self.state = State::Authorization { user: None };
                match e {
                    OpenError::InUse => err("[IN-USE] mailbox is in use by another session"),
                    OpenError::Io => err("[SYS/TEMP] cannot open mailbox"),
                }
            }
        }
    }

    /// The driver's answer to [`Pop3Action::Update`].
    pub fn updated(&mut self, ok: bool) -> Vec<u8> {
        let removed = match self.state {
            State::Update { removed } => removed,
            _ => 0,
        };
        self.state = State::Closed;
        if ok {
            self::ok(&format!("mailctl signing off ({removed} messages deleted)"))
        } else {
            err("[SYS/TEMP] some deleted messages were not removed")
        }
    }

    /// Handles one command line (with or without CRLF).
    pub fn command(&mut self, line: &[u8]) -> Pop3Step {
        let line = trim_eol(line);
        if self.state == State::AuthPlain {
            self.state = State::Authorization { user: None };
            return self.auth_plain_response(line);
        }
        let Parsed { verb, command } = command::parse(line);
        let command = match command {
            Err(ParseError::InvalidCharacters) => {
                return Pop3Step::err("invalid characters in arguments")
            }
            Err(ParseError::Unknown) => return Pop3Step::err("unknown command"),
            other => other,
        };
        let transaction = matches!(self.state, State::Transaction { .. });
        let authorization = matches!(self.state, State::Authorization { .. });
        match verb.as_str() {
            "CAPA" => self.capa(),
            "QUIT" if authorization => {
                self.state = State::Closed;
                Pop3Step::ok("mailctl signing off").then(Pop3Action::Close)
            }
            "QUIT" if transaction => self.quit(),
            "USER" | "PASS" | "APOP" | "AUTH" | "STLS" if authorization => {
                self.authorization(&verb, command)
            }
            "STAT" | "LIST" | "UIDL" | "RETR" | "TOP" | "DELE" | "RSET" | "NOOP" if transaction => {
                self.transaction(&verb, command)
            }
            _ => Pop3Step::err("command not valid in this state"),
        }
    }

    /// A command of the AUTHORIZATION state.
    fn authorization(&mut self, verb: &str, command: Result<Command, ParseError>) -> Pop3Step {
        match (verb, command) {
            ("STLS", Ok(_)) => self.stls(),
            ("STLS", Err(_)) => Pop3Step::err("STLS takes no arguments"),
            ("USER", command) => self.user(command),
            ("PASS", Ok(Command::Pass(password))) => self.pass(password.expose()),
            ("APOP", Ok(Command::Apop { user, digest })) => self.apop(&user, digest.expose()),
            ("APOP", _) => Pop3Step::err("syntax: APOP name digest"),
            ("AUTH", Ok(Command::Auth { mechanism, initial })) => {
                self.auth(&mechanism, initial.as_ref().map(|i| i.expose()))
            }
            _ => Pop3Step::err("syntax: AUTH mechanism [initial-response]"),
        }
    }

    /// A command of the TRANSACTION state.
    fn transaction(&mut self, verb: &str, command: Result<Command, ParseError>) -> Pop3Step {
        match command {
            Ok(Command::Stat) => self.stat(),
            Ok(Command::List(n)) => self.list(n, false),
            Ok(Command::Uidl(n)) => self.list(n, true),
            Ok(Command::Retr(n)) => self.retr(n),
            Ok(Command::Top(n, lines)) => self.top(n, lines),
            Ok(Command::Dele(n)) => self.dele(n),
            Ok(Command::Rset) => self.rset(),
            Ok(_) => Pop3Step::ok(""),
            Err(ParseError::BadNumber) => Pop3Step::err("invalid message number"),
            Err(_) if verb == "TOP" => Pop3Step::err("syntax: TOP msg n"),
            Err(_) => Pop3Step::err(format!("{verb} takes no arguments")),
        }
    }

    fn plaintext_allowed(&self) -> bool {
        !self.policy.users.exist() || self.tls || self.loopback
    }

    fn capa(&self) -> Pop3Step {
        let mut lines: Vec<String> = ["TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if self.plaintext_allowed() {
            lines.push("USER".to_string());
            lines.push("SASL PLAIN".to_string());
        }
        if self.policy.tls_available && !self.tls {
            lines.push("STLS".to_string());
        }
        lines.push("IMPLEMENTATION mailctl".to_string());
        Pop3Step::multi("capability list follows", &lines)
    }

    fn stls(&mut self) -> Pop3Step {
        if self.tls {
            return Pop3Step::err("already using TLS");
        }
        if !self.policy.tls_available {
            return Pop3Step::err("STLS not available");
        }
        Pop3Step::ok("begin TLS negotiation").then(Pop3Action::StartTls)
    }

    fn user(&mut self, command: Result<Command, ParseError>) -> Pop3Step {
        if !self.plaintext_allowed() {
            return Pop3Step::err("[AUTH] plaintext login needs TLS: use STLS first");
        }
        let name = match command {
            Ok(Command::User(name)) => name,
            _ => return Pop3Step::err("syntax: USER name"),
        };
        if mailbox_name(&name).is_none() {
            return Pop3Step::err("[AUTH] not a valid mailbox name");
        }
        self.state = State::Authorization { user: Some(name) };
        Pop3Step::ok("send PASS")
    }

    fn pass(&mut self, password: &str) -> Pop3Step {
        let user = match &self.state {
            State::Authorization { user: Some(u) } => u.clone(),
            _ => return Pop3Step::err("USER first"),
        };
        self.state = State::Authorization { user: None };
        self.login(&user, password.as_bytes())
    }

    fn login(&mut self, user: &str, password: &[u8]) -> Pop3Step {
        match self.policy.users.check(user, password) {
            Some(mailbox) => self.open(mailbox),
            None => self.auth_failed(user),
        }
    }

    fn open(&mut self, mailbox: String) -> Pop3Step {
        self.state = State::Opening;
        Pop3Step {
            reply: Vec::new(),
            action: Pop3Action::Open(mailbox),
        }
    }

    fn auth_failed(&mut self, user: &str) -> Pop3Step {
        self.auth_failures += 1;
        self.failed_login = Some(user.to_string());
        self.state = State::Authorization { user: None };
        if self.auth_failures >= MAX_AUTH_FAILURES {
            self.state = State::Closed;
            return Pop3Step::err("[AUTH] too many failed logins").then(Pop3Action::Close);
        }
        Pop3Step::err("[AUTH] invalid user name or password")
    }

    fn apop(&mut self, name: &str, digest: &str) -> Pop3Step {
        if !self.policy.users.exist() {
            return match mailbox_name(name) {
                Some(mailbox) => self.open(mailbox),
                None => self.auth_failed(name),
            };
        }
        let timestamp = self.timestamp.as_bytes();
        match self.policy.users.lookup(name) {
            Some((mailbox, secret)) if sasl::apop_matches(timestamp, secret.expose(), digest) => {
                let mailbox = mailbox.to_string();
                self.open(mailbox)
            }
            _ => self.auth_failed(name),
        }
    }

    fn auth(&mut self, mechanism: &str, initial: Option<&str>) -> Pop3Step {
        if mechanism.is_empty() {
            let names = if self.plaintext_allowed() {
                vec!["PLAIN".to_string()]
            } else {
                Vec::new()
            };
            return Pop3Step::multi("SASL mechanisms follow", &names);
        }
        if mechanism != "PLAIN" {
            return Pop3Step::err("unsupported authentication mechanism");
        }
        if !self.plaintext_allowed() {
            return Pop3Step::err("[AUTH] plaintext login needs TLS: use STLS first");
        }
        match initial {
            None => {
                self.state = State::AuthPlain;
                Pop3Step::status(Status::Continue(b""))
            }
            Some(initial) => self.auth_plain_response(initial.as_bytes()),
        }
    }

    fn auth_plain_response(&mut self, line: &[u8]) -> Pop3Step {
        let message = match sasl::decode_response(line) {
            Ok(message) => message,
            Err(ResponseError::Cancelled) => return Pop3Step::err("authentication cancelled"),
            Err(ResponseError::BadBase64) => return Pop3Step::err("cannot decode base64 response"),
        };
        match sasl::plain_credentials(&message) {
            Some((user, password)) => self.login(user, password),
            None => self.auth_failed(""),
        }
    }

    fn snapshot(&self) -> (&[MessageInfo], &[bool]) {
        match &self.state {
            State::Transaction { messages, deleted } => (messages, deleted),
            _ => (&[], &[]),
        }
    }

    /// Checks that message `n` (1-based) is a live message; its index.
    fn message(&self, n: u32) -> Result<usize, Pop3Step> {
        let (messages, deleted) = self.snapshot();
        let n = n as usize;
        if n == 0 || n > messages.len() {
            return Err(Pop3Step::err("no such message"));
        }
        if deleted[n - 1] {
            return Err(Pop3Step::err(format!("message {n} already deleted")));
        }
        Ok(n - 1)
    }

    fn stat(&self) -> Pop3Step {
        let (count, size) = self.live_totals();
        Pop3Step::ok(format!("{count} {size}"))
    }

    fn live_totals(&self) -> (usize, u64) {
        let (messages, deleted) = self.snapshot();
        messages
            .iter()
            .zip(deleted)
            .filter(|(_, d)| !**d)
            .fold((0, 0), |(c, s), (m, _)| (c + 1, s + m.size))
    }

    fn list(&self, n: Option<u32>, uidl: bool) -> Pop3Step {
        let item = |i: usize, m: &MessageInfo| {
            if uidl {
                format!("{} {}", i + 1, m.uid)
            } else {
                format!("{} {}", i + 1, m.size)
            }
        };
        if let Some(n) = n {
            return match self.message(n) {
                Ok(i) => Pop3Step::ok(item(i, &self.snapshot().0[i])),
                Err(step) => step,
            };
        }
        let (messages, deleted) = self.snapshot();
        let lines: Vec<String> = messages
            .iter()
            .enumerate()
            .filter(|(i, _)| !deleted[*i])
            .map(|(i, m)| item(i, m))
            .collect();
        if uidl {
            Pop3Step::multi("unique-id listing follows", &lines)
        } else {
            let (count, size) = self.live_totals();
            Pop3Step::multi(&format!("{count} messages ({size} octets)"), &lines)
        }
    }

    fn retr(&self, n: u32) -> Pop3Step {
        match self.message(n) {
            Ok(index) => Pop3Step::ok(format!("{} octets", self.snapshot().0[index].size)).then(
                Pop3Action::Send {
                    index,
                    body_lines: None,
                },
            ),
            Err(step) => step,
        }
    }

    fn top(&self, n: u32, lines: u32) -> Pop3Step {
        match self.message(n) {
            Ok(index) => Pop3Step::ok("top of message follows").then(Pop3Action::Send {
                index,
                body_lines: Some(u64::from(lines)),
            }),
            Err(step) => step,
        }
    }

    fn dele(&mut self, n: u32) -> Pop3Step {
        let index = match self.message(n) {
            Ok(i) => i,
            Err(step) => return step,
        };
        if let State::Transaction { deleted, .. } = &mut self.state {
            deleted[index] = true;
        }
        Pop3Step::ok(format!("message {} deleted", index + 1))
    }

    fn rset(&mut self) -> Pop3Step {
        if let State::Transaction { deleted, .. } = &mut self.state {
            deleted.iter_mut().for_each(|d| *d = false);
        }
        let (count, size) = self.live_totals();
        Pop3Step::ok(format!("maildrop has {count} messages ({size} octets)"))
    }

    fn quit(&mut self) -> Pop3Step {
        let (_, deleted) = self.snapshot();
        let indexes: Vec<usize> = (0..deleted.len()).filter(|&i| deleted[i]).collect();
        self.state = State::Update {
            removed: indexes.len(),
        };
        Pop3Step {
            reply: Vec::new(),
            action: Pop3Action::Update(indexes),
        }
    }
}

/// Writes a stored message as a POP3 multi-line response body (RFC 1939
/// section 3) through [`Stuffer::keeping_bare_cr`]: lines starting with
/// `.` get another `.`, bare LF becomes CRLF, a bare CR is data (so the
/// size LIST gave is the size sent), and for TOP only the header, the blank
/// line and `n` body lines are sent (a line of CRs is not blank).
/// Incremental: fed file contents in chunks of any size.
#[derive(Clone, Debug)]
pub struct MessageStuffer {
    stuffer: Stuffer,
    body_lines: Option<u64>,
    in_header: bool,
    done: bool,
}

impl MessageStuffer {
    /// A stuffer for the whole message (`None`) or its header and the first
    /// `n` body lines.
    pub fn new(body_lines: Option<u64>) -> Self {
        MessageStuffer {
            stuffer: Stuffer::keeping_bare_cr(),
            body_lines,
            in_header: true,
            done: false,
        }
    }

    /// Whether TOP's limit has been reached (further input is ignored).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Appends the stuffed form of `input` to `out`.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        if self.body_lines.is_none() {
            self.stuffer.feed(input, out);
            return;
        }
        while !input.is_empty() && !self.done {
            let (used, ended) = self.stuffer.feed_line(input, out);
            input = &input[used..];
            if let Some(empty) = ended {
                self.end_of_line(empty);
            }
        }
    }

    fn end_of_line(&mut self, empty: bool) {
        if self.in_header {
            if empty {
                self.in_header = false;
                if self.body_lines == Some(0) {
                    self.done = true;
                }
            }
        } else if let Some(n) = &mut self.body_lines {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.done = true;
            }
        }
    }

    /// Ends the response: a CRLF if the last line was unterminated, then the
    /// `.` line.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.stuffer.finish(out);
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::users::Users;
    use crate::secret::Secret;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use base64::Engine;
    use std::sync::Arc;

    const TS: &str = "<1896.697170952@dbc.mtview.ca.us>";

    fn server(users: &[(&str, &str)], tls: bool, loopback: bool) -> Pop3Server {
        let mut u = Users::none();
        for (name, pw) in users {
            u.add(name, Secret::new(*pw)).unwrap();
        }
        let policy = Policy {
            hostname: "mx.test".to_string(),
            max_size: 1000,
            tls_available: tls,
            users: Arc::new(u),
        };
        Pop3Server::new(policy, TS.to_string(), loopback)
    }

    fn text(step: &Pop3Step) -> String {
        String::from_utf8(step.reply.clone()).unwrap()
    }

    fn messages() -> Vec<MessageInfo> {
        vec![
            MessageInfo {
                size: 120,
                uid: "100.a".to_string(),
            },
            MessageInfo {
                size: 200,
                uid: "200.b".to_string(),
            },
        ]
    }

    fn logged_in() -> Pop3Server {
        let mut s = server(&[], false, true);
        s.command(b"USER bob\r\n");
        assert_eq!(
            s.command(b"PASS x\r\n").action,
            Pop3Action::Open("bob".into())
        );
        s.opened(Ok(messages()));
        s
    }

    fn script(s: &mut Pop3Server, steps: &[(&str, &str)]) {
        for (line, expected) in steps {
            let got = text(&s.command(line.as_bytes()));
            assert!(
                got.starts_with(expected),
                "{line:?}: got {got:?}, wanted {expected:?}"
            );
        }
    }

    #[test]
    fn greeting_has_apop_timestamp() {
        let s = server(&[], false, true);
        assert_eq!(
            s.greeting(),
            format!("+OK mailctl POP3 server ready {TS}\r\n").into_bytes()
        );
    }

    #[test]
    fn capa_lists_extensions() {
        let s = &mut server(&[], true, true);
        assert_eq!(
            text(&s.command(b"CAPA")),
            "+OK capability list follows\r\nTOP\r\nUIDL\r\nPIPELINING\r\nRESP-CODES\r\n\
             AUTH-RESP-CODE\r\nUSER\r\nSASL PLAIN\r\nSTLS\r\nIMPLEMENTATION mailctl\r\n.\r\n"
        );
        let step = s.command(b"STLS");
        assert_eq!(text(&step), "+OK begin TLS negotiation\r\n");
        assert_eq!(step.action, Pop3Action::StartTls);
        s.tls_started();
        assert!(!text(&s.command(b"CAPA")).contains("STLS"));
        script(s, &[("STLS", "-ERR already")]);
    }

    #[test]
    fn authorization_errors() {
        let mut s = server(&[("alice", "pw")], false, true);
        script(
            &mut s,
            &[
                ("STAT", "-ERR command not valid"),
                ("RETR 1", "-ERR command not valid"),
                ("NOOP", "-ERR command not valid"),
                ("XYZZY", "-ERR unknown command"),
                ("PASS pw", "-ERR USER first"),
                ("USER", "-ERR syntax"),
                ("USER ../etc", "-ERR [AUTH] not a valid"),
                ("STLS", "-ERR STLS not available"),
                ("APOP alice short", "-ERR syntax"),
                ("AUTH CRAM-MD5", "-ERR unsupported"),
                ("AUTH", "+OK SASL mechanisms follow\r\nPLAIN\r\n.\r\n"),
                ("USER alice", "+OK"),
                ("PASS wrong", "-ERR [AUTH] invalid"),
                ("USER carol", "+OK"),
                ("PASS pw", "-ERR [AUTH] invalid"),
            ],
        );
        // The third failure closes the session.
        s.command(b"USER alice");
        let step = s.command(b"PASS nope");
        assert_eq!(step.action, Pop3Action::Close);
        assert!(text(&step).starts_with("-ERR [AUTH] too many"));
    }

    #[test]
    fn user_pass_with_password_containing_spaces() {
        let mut s = server(&[("alice", "p w:x")], false, true);
        script(&mut s, &[("USER Alice", "+OK")]);
        let step = s.command(b"PASS p w:x\r\n");
        assert_eq!(step.action, Pop3Action::Open("alice".into()));
        assert!(step.reply.is_empty());
        assert_eq!(
            s.opened(Err(OpenError::InUse)),
            b"-ERR [IN-USE] mailbox is in use by another session\r\n"
        );
        script(&mut s, &[("STAT", "-ERR command not valid")]);
    }

    #[test]
    fn plaintext_login_needs_tls_off_loopback() {
        let mut s = server(&[("alice", "pw")], true, false);
        assert!(!text(&s.command(b"CAPA")).contains("USER"));
        script(
            &mut s,
            &[
                ("USER alice", "-ERR [AUTH] plaintext login needs TLS"),
                (
                    "AUTH PLAIN AGFsaWNlAHB3",
                    "-ERR [AUTH] plaintext login needs TLS",
                ),
            ],
        );
        // APOP never sends the password, so it is allowed.
        let digest = crate::proto::sasl::apop_digest(TS.as_bytes(), "pw");
        let step = s.command(format!("APOP alice {digest}").as_bytes());
        assert_eq!(step.action, Pop3Action::Open("alice".into()));
    }

    #[test]
    fn apop_and_auth_plain() {
        let mut s = server(&[("alice", "tanstaaf")], false, true);
        script(
            &mut s,
            &[("APOP alice 00000000000000000000000000000000", "-ERR [AUTH]")],
        );
        let step = s.command(b"APOP alice C4C9334BAC560ECC979E58001B3E22FB");
        assert_eq!(step.action, Pop3Action::Open("alice".into()));
        s.opened(Err(OpenError::Io));

        script(&mut s, &[("AUTH PLAIN", "+ \r\n")]);
        assert!(s.in_auth_exchange());
        assert_eq!(s.redacted(b"AGFsaWNlAHRhbnN0YWFm\r\n"), b"<redacted>");
        let step = s.command(BASE64.encode("\0alice\0tanstaaf").as_bytes());
        assert_eq!(step.action, Pop3Action::Open("alice".into()));
        s.opened(Ok(vec![]));
        script(
            &mut s,
            &[
                ("STAT", "+OK 0 0"),
                ("AUTH PLAIN", "-ERR command not valid"),
            ],
        );

        let mut s = server(&[("alice", "tanstaaf")], false, true);
        script(
            &mut s,
            &[("AUTH PLAIN", "+ "), ("*", "-ERR authentication cancelled")],
        );
        let step = s.command(format!("AUTH PLAIN {}", BASE64.encode("\0alice\0x")).as_bytes());
        assert!(text(&step).starts_with("-ERR [AUTH]"));
    }

    #[test]
    fn catch_all_accepts_any_password_and_apop() {
        let mut s = server(&[], false, false);
        let step = s.command(b"APOP Bob@example.org 0123456789abcdef0123456789abcdef");
        assert_eq!(step.action, Pop3Action::Open("bob".into()));
    }

    #[test]
    fn redaction() {
        let s = server(&[], false, true);
        assert_eq!(s.redacted(b"PASS secret word\r\n"), b"PASS <redacted>");
        assert_eq!(s.redacted(b"pass x\r\n"), b"pass <redacted>");
        assert_eq!(s.redacted(b"APOP bob 0123\r\n"), b"APOP bob <redacted>");
        assert_eq!(
            s.redacted(b"AUTH PLAIN AGFsaWNl\r\n"),
            b"AUTH PLAIN <redacted>"
        );
        assert_eq!(s.redacted(b"USER bob\r\n"), b"USER bob");
        assert_eq!(s.redacted(b"PASS\r\n"), b"PASS");
    }

    #[test]
    fn transaction_commands() {
        let mut s = logged_in();
        script(
            &mut s,
            &[
                ("STAT", "+OK 2 320\r\n"),
                (
                    "LIST",
                    "+OK 2 messages (320 octets)\r\n1 120\r\n2 200\r\n.\r\n",
                ),
                ("LIST 2", "+OK 2 200\r\n"),
                (
                    "UIDL",
                    "+OK unique-id listing follows\r\n1 100.a\r\n2 200.b\r\n.\r\n",
                ),
                ("UIDL 1", "+OK 1 100.a\r\n"),
                ("LIST 3", "-ERR no such message"),
                ("LIST 0", "-ERR no such message"),
                ("LIST x", "-ERR invalid message number"),
                ("RETR -1", "-ERR invalid message number"),
                ("TOP 1", "-ERR syntax"),
                ("TOP 1 x", "-ERR syntax"),
                ("USER bob", "-ERR command not valid"),
                ("STLS", "-ERR command not valid"),
                ("NOOP", "+OK"),
                ("STAT x", "-ERR"),
                ("DELE 1", "+OK message 1 deleted"),
                ("DELE 1", "-ERR message 1 already deleted"),
                ("RETR 1", "-ERR message 1 already deleted"),
                ("STAT", "+OK 1 200"),
                ("LIST", "+OK 1 messages (200 octets)\r\n2 200\r\n.\r\n"),
                ("RSET", "+OK maildrop has 2 messages (320 octets)"),
                ("DELE 2", "+OK"),
            ],
        );
        let step = s.command(b"RETR 1\r\n");
        assert_eq!(text(&step), "+OK 120 octets\r\n");
        assert_eq!(
            step.action,
            Pop3Action::Send {
                index: 0,
                body_lines: None
            }
        );
        let step = s.command(b"TOP 1 5\r\n");
        assert_eq!(
            step.action,
            Pop3Action::Send {
                index: 0,
                body_lines: Some(5)
            }
        );
        let step = s.command(b"QUIT\r\n");
        assert_eq!(step.action, Pop3Action::Update(vec![1]));
        assert_eq!(
            s.updated(true),
            b"+OK mailctl signing off (1 messages deleted)\r\n"
        );
    }

    #[test]
    fn quit_in_authorization_deletes_nothing() {
        let mut s = server(&[], false, true);
        let step = s.command(b"QUIT");
        assert_eq!(step.action, Pop3Action::Close);
        assert_eq!(text(&step), "+OK mailctl signing off\r\n");
    }

    fn stuff(input: &[u8], lines: Option<u64>) -> Vec<u8> {
        let mut st = MessageStuffer::new(lines);
        let mut out = Vec::new();
        st.feed(input, &mut out);
        st.finish(&mut out);
        out
    }

    #[test]
    fn stuffing_and_top() {
        let msg = b"Subject: x\r\n\r\n.a\r\n..\r\n.\r\nline\r\nlast";
        assert_eq!(
            stuff(msg, None),
            b"Subject: x\r\n\r\n..a\r\n...\r\n..\r\nline\r\nlast\r\n.\r\n"
        );
        assert_eq!(stuff(msg, Some(0)), b"Subject: x\r\n\r\n.\r\n");
        assert_eq!(
            stuff(msg, Some(2)),
            b"Subject: x\r\n\r\n..a\r\n...\r\n.\r\n"
        );
        assert_eq!(stuff(msg, Some(99)), stuff(msg, None));
        assert_eq!(stuff(b"a\nb\n.c\n", None), b"a\r\nb\r\n..c\r\n.\r\n");
        assert_eq!(stuff(b"", None), b".\r\n");
        assert_eq!(stuff(b"a\r\n", None), b"a\r\n.\r\n");
        // A line of CRs is not the end of the header.
        assert_eq!(
            stuff(b"A: 1\r\n\r\r\nB: 2\r\n\r\nbody\r\n", Some(0)),
            b"A: 1\r\n\r\r\nB: 2\r\n\r\n.\r\n"
        );
        // Bare CRs are data, a `.` after one is not at a line start.
        assert_eq!(
            stuff(b"A: 1\rB\r\n\r\n\r.x\rbody\r", None),
            b"A: 1\rB\r\n\r\n\r.x\rbody\r\n.\r\n"
        );
    }

    /// The stored messages of the transcript below.
    const STORED: [&[u8]; 3] = [
        b"Subject: one\r\n\r\n.leading dot\r\n..two\r\n.\r\nend\r\n",
        b"Subject: two\n\nbare LF\n.\nlast",
        b"Subject: three\r\n\r\r\nX: y\r\n\r\nbody\r\n\r.\r\nmore\r\n",
    ];

    /// Drives a session over a client byte stream arriving in chunks of
    /// `size` bytes, as the socket driver does: command lines framed by
    /// [`LineReader`], a maildrop of [`STORED`] opened on request, messages
    /// streamed through [`MessageStuffer`] in chunks of `size` bytes.
    /// Returns the server's bytes and the messages removed at QUIT.
    fn session(input: &[u8], size: usize) -> (String, Vec<usize>) {
        use crate::proto::line::LineReader;
        let mut s = server(&[("alice", "pw")], true, true);
        let mut out = s.greeting();
        let mut lines = LineReader::new(255);
        let mut buffered = Vec::new();
        let mut removed = Vec::new();
        'chunks: for chunk in input.chunks(size) {
            buffered.extend_from_slice(chunk);
            loop {
                let (used, line) = lines.push(&buffered);
                buffered.drain(..used);
                let line = match line {
                    None => break,
                    Some(Err(_)) => {
                        out.extend(s.line_too_long());
                        continue;
                    }
                    Some(Ok(line)) => line,
                };
                let step = s.command(&line);
                out.extend(&step.reply);
                match step.action {
                    Pop3Action::Continue => {}
                    Pop3Action::Close => break 'chunks,
                    Pop3Action::StartTls => {
                        buffered.clear();
                        s.tls_started();
                    }
                    Pop3Action::Open(_) => {
                        let infos = STORED
                            .iter()
                            .enumerate()
                            .map(|(i, m)| MessageInfo {
                                size: m.len() as u64,
                                uid: format!("u{i}"),
                            })
                            .collect();
                        out.extend(s.opened(Ok(infos)));
                    }
                    Pop3Action::Send { index, body_lines } => {
                        let mut stuffer = MessageStuffer::new(body_lines);
                        for piece in STORED[index].chunks(size) {
                            stuffer.feed(piece, &mut out);
                        }
                        stuffer.finish(&mut out);
                    }
                    Pop3Action::Update(indexes) => {
                        removed = indexes;
                        out.extend(s.updated(true));
                        break 'chunks;
                    }
                }
            }
        }
        (String::from_utf8(out).unwrap(), removed)
    }

    #[test]
    fn whole_session_transcript_in_every_chunk_size() {
        let plain = BASE64.encode("\0alice\0pw");
        let long = "x".repeat(300);
        let input = format!(
            "CAPA\r\nUSER alice\r\nPASS nope\r\nAUTH PLAIN\r\n{plain}\r\n\
             STAT\r\nLIST\r\nUIDL 2\r\nRETR 1\r\nTOP 3 1\r\nRETR 2\nNOOP {long}\r\n\
             DELE 1\r\nRETR 1\r\nTOP 2 0\r\nDELE 3\r\nQUIT\r\nNOOP\r\n"
        );
        let input = input.as_bytes();
        let whole = session(input, input.len());
        for size in 1..input.len() {
            assert_eq!(session(input, size), whole, "chunk size {size}");
        }
        let (out, removed) = whole;
        assert_eq!(removed, [0, 2]);
        assert_eq!(
            out,
            format!(
                "+OK mailctl POP3 server ready {TS}\r\n\
                 +OK capability list follows\r\nTOP\r\nUIDL\r\nPIPELINING\r\n\
                 RESP-CODES\r\nAUTH-RESP-CODE\r\nUSER\r\nSASL PLAIN\r\nSTLS\r\n\
                 IMPLEMENTATION mailctl\r\n.\r\n\
                 +OK send PASS\r\n\
                 -ERR [AUTH] invalid user name or password\r\n\
                 + \r\n\
                 +OK maildrop has 3 messages (116 octets)\r\n\
                 +OK 3 116\r\n\
                 +OK 3 messages (116 octets)\r\n1 45\r\n2 28\r\n3 43\r\n.\r\n\
                 +OK 2 u1\r\n\
                 +OK 45 octets\r\n\
                 Subject: one\r\n\r\n..leading dot\r\n...two\r\n..\r\nend\r\n.\r\n\
                 +OK top of message follows\r\n\
                 Subject: three\r\n\r\r\nX: y\r\n\r\nbody\r\n.\r\n\
                 +OK 28 octets\r\n\
                 Subject: two\r\n\r\nbare LF\r\n..\r\nlast\r\n.\r\n\
                 -ERR line too long\r\n\
                 +OK message 1 deleted\r\n\
                 -ERR message 1 already deleted\r\n\
                 +OK top of message follows\r\n\
                 Subject: two\r\n\r\n.\r\n\
                 +OK message 3 deleted\r\n\
                 +OK mailctl signing off (2 messages deleted)\r\n"
            )
        );
    }

    #[test]
    fn stuffing_chunk_size_invariance() {
        let msg: &[u8] = b"A: b\n\r\n.x\r\n\r\n..\n.\r\nend";
        for lines in [None, Some(0), Some(1), Some(3)] {
            let whole = stuff(msg, lines);
            for size in 1..msg.len() {
                let mut st = MessageStuffer::new(lines);
                let mut out = Vec::new();
                for chunk in msg.chunks(size) {
                    st.feed(chunk, &mut out);
                }
                st.finish(&mut out);
                assert_eq!(out, whole, "size {size} lines {lines:?}");
            }
        }
    }
}
