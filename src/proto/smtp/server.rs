//! The SMTP server state machine (RFC 5321) with the extensions SIZE
//! (RFC 1870), PIPELINING (RFC 2920), 8BITMIME (RFC 6152),
//! ENHANCEDSTATUSCODES (RFC 2034, codes from RFC 3463), STARTTLS (RFC 3207),
//! SMTPUTF8 (RFC 6531) and AUTH PLAIN / LOGIN (RFC 4954, RFC 4616).
//!
//! Pure: no sockets, no clock, no files. The driver feeds one command line at
//! a time to [`SmtpServer::command`] and gets a [`Step`]: the reply to send
//! and what to do next (carry on, upgrade to TLS, receive the message data,
//! close). After the data, [`SmtpServer::data_done`] turns the delivery
//! outcome into the final reply. Command lines are read by
//! [`super::command::parse`], the inverse of what the client renders, and
//! answered with the one [`Reply`] type the client reads.

use super::command::{self, Command, ParseError, Parsed};
use super::reply::Reply;
use crate::proto::sasl::{self, Mechanism, ResponseError};
use crate::proto::users::Policy;

pub use super::command::{MAX_DOMAIN, MAX_PATH};

/// The most recipients accepted in one transaction (RFC 5321 section
/// 4.5.3.1.8 asks for at least 100).
pub const MAX_RECIPIENTS: usize = 100;

/// Failed AUTH attempts allowed before the connection is closed.
pub const MAX_AUTH_FAILURES: u32 = 3;

/// What the driver does after sending a step's reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read the next command.
    Continue,
    /// Start the TLS handshake now, discarding anything already buffered,
    /// then call [`SmtpServer::tls_started`].
    StartTls,
    /// Receive the message data (see [`super::receive::DataReceiver`]), deliver
    /// it to [`SmtpServer::envelope`], then call [`SmtpServer::data_done`].
    ReceiveData,
    /// Close the connection.
    Close,
}

/// A reply and the action that follows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The reply to send.
    pub reply: Reply,
    /// What to do after sending it.
    pub action: Action,
}

impl Step {
    fn reply(code: u16, text: impl Into<String>) -> Self {
        Step {
            reply: Reply::new(code, text),
            action: Action::Continue,
        }
    }

    fn then(mut self, action: Action) -> Self {
        self.action = action;
        self
    }
}

/// The result of delivering one message, reported by the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataOutcome {
    /// Synced into every recipient's Maildir, under this id.
    Delivered(String),
    /// Larger than the size limit (the rest was read and discarded).
    TooLarge,
    /// A local error (disk full, permissions): temporary failure.
    Failed,
}

/// The sender, recipients and session facts of the message being received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The EHLO/HELO argument.
    pub helo: String,
    /// Whether EHLO (not HELO) was used.
    pub esmtp: bool,
    /// Whether the session is protected by TLS.
    pub tls: bool,
    /// The authenticated mailbox, if any.
    pub authenticated: Option<String>,
    /// Whether MAIL asked for SMTPUTF8.
    pub smtputf8: bool,
    /// The reverse path (empty for the null sender `<>`).
    pub from: String,
    /// The forward paths as given.
    pub recipients: Vec<String>,
    /// The mailboxes to deliver to, without duplicates.
    pub mailboxes: Vec<String>,
}

impl Envelope {
    /// The `Return-Path` and `Received` header lines prepended to the
    /// message (RFC 5321 section 4.4; protocol names from RFC 3848). `peer`
    /// is the client's address, `id` the delivery id, `date` an RFC 5322
    /// date-time.
    pub fn trace_headers(&self, hostname: &str, peer: &str, id: &str, date: &str) -> Vec<u8> {
        let protocol = format!(
            "{}{}{}",
            match (self.smtputf8, self.esmtp) {
                (true, _) => "UTF8SMTP",
                (false, true) => "ESMTP",
                (false, false) => "SMTP",
            },
            if self.tls { "S" } else { "" },
            if self.authenticated.is_some() {
                "A"
            } else {
                ""
            }
        );
        let mut out = format!("Return-Path: <{}>\r\n", self.from);
        out.push_str(&format!(
            "Received: from {} ({peer})\r\n\tby {hostname} (mailctl) with {protocol} id {id}",
            header_safe(&self.helo)
        ));
        if let [one] = self.recipients.as_slice() {
            out.push_str(&format!("\r\n\tfor <{one}>"));
        }
        out.push_str(&format!("; {date}\r\n"));
        out.into_bytes()
    }
}

fn header_safe(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

/// Where the session is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading commands.
    Command,
    /// `AUTH PLAIN` sent without initial response; waiting for it.
    AuthPlain,
    /// `AUTH LOGIN`: waiting for the user name.
    AuthLoginUser,
    /// `AUTH LOGIN`: waiting for the password of this user.
    AuthLoginPassword(String),
    /// Receiving message data.
    Data,
    /// QUIT sent or the connection is being dropped.
    Closed,
}

/// One SMTP server session.
#[derive(Clone, Debug)]
pub struct SmtpServer {
    policy: Policy,
    tls: bool,
    loopback: bool,
    phase: Phase,
    helo: Option<(String, bool)>,
    authenticated: Option<String>,
    from: Option<String>,
    recipients: Vec<String>,
    mailboxes: Vec<String>,
    smtputf8: bool,
    auth_failures: u32,
    failed_login: Option<String>,
}

impl SmtpServer {
    /// A session on a new connection. `loopback` says the client connected
    /// over the loopback interface, where AUTH without TLS cannot be
    /// overheard.
    pub fn new(policy: Policy, loopback: bool) -> Self {
        SmtpServer {
            policy,
            tls: false,
            loopback,
            phase: Phase::Command,
            helo: None,
            authenticated: None,
            from: None,
            recipients: Vec::new(),
            mailboxes: Vec::new(),
            smtputf8: false,
            auth_failures: 0,
            failed_login: None,
        }
    }

    /// The user name of the login that the last command failed, if any
    /// (taken: the next call returns `None`).
    pub fn take_failed_login(&mut self) -> Option<String> {
        self.failed_login.take()
    }

    /// A session on a connection that is TLS from the start.
    pub fn new_tls(policy: Policy, loopback: bool) -> Self {
        let mut s = Self::new(policy, loopback);
        s.tls = true;
        s
    }

    /// The 220 greeting (RFC 5321 section 4.3.1).
    pub fn greeting(&self) -> Reply {
        Reply::new(220, format!("{} ESMTP mailctl ready", self.policy.hostname))
    }

    /// 421 for an idle connection being closed.
    pub fn timeout_reply(&self) -> Reply {
        Reply::new(421, "4.4.2 Idle timeout, closing connection")
    }

    /// 421 for a server that is shutting down.
    pub fn shutdown_reply(&self) -> Reply {
        Reply::new(421, "4.3.2 Server shutting down, closing connection")
    }

    /// 500 for a command line over the length limit (already discarded).
    pub fn line_too_long(&mut self) -> Reply {
        self.phase = Phase::Command;
        Reply::new(500, "5.5.6 Line too long")
    }

    /// The envelope of the message being received (in the data phase).
    pub fn envelope(&self) -> Option<Envelope> {
        if self.phase != Phase::Data {
            return None;
        }
        let (helo, esmtp) = self.helo.clone().unwrap_or_default();
        Some(Envelope {
            helo,
            esmtp,
            tls: self.tls,
            authenticated: self.authenticated.clone(),
            smtputf8: self.smtputf8,
            from: self.from.clone().unwrap_or_default(),
            recipients: self.recipients.clone(),
            mailboxes: self.mailboxes.clone(),
        })
    }

    /// The recipients accepted so far in this transaction.
    pub fn recipients(&self) -> &[String] {
        &self.recipients
    }

    /// Whether an AUTH exchange is in progress (the next line is a SASL
    /// response, not a command).
    pub fn in_auth_exchange(&self) -> bool {
        matches!(
            self.phase,
            Phase::AuthPlain | Phase::AuthLoginUser | Phase::AuthLoginPassword(_)
        )
    }

    /// The form of a client line that may be logged: SASL responses and AUTH
    /// initial responses are replaced by `<redacted>`.
    pub fn redacted(&self, line: &[u8]) -> Vec<u8> {
        if self.in_auth_exchange() {
            return b"<redacted>".to_vec();
        }
        let text = trim_eol(line);
        let mut words = text.splitn(3, |&b| b == b' ');
        let verb = words.next().unwrap_or_default();
        let mechanism = words.next();
        if verb.eq_ignore_ascii_case(b"AUTH") && words.next().is_some() {
            let mut out = b"AUTH ".to_vec();
            out.extend_from_slice(mechanism.unwrap_or_default());
            out.extend_from_slice(b" <redacted>");
            return out;
        }
        text.to_vec()
    }

    /// Call after the TLS handshake that followed STARTTLS: the session
    /// starts over (RFC 3207 section 4.2).
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.phase = Phase::Command;
        self.helo = None;
        self.authenticated = None;
        self.reset_transaction();
    }

    /// The reply after the message data, given how delivery went. The
    /// transaction is reset either way.
    pub fn data_done(&mut self, outcome: DataOutcome) -> Reply {
        self.phase = Phase::Command;
        self.reset_transaction();
        match outcome {
            DataOutcome::Delivered(id) => Reply::new(250, format!("2.0.0 OK: queued as {id}")),
            DataOutcome::TooLarge => Reply::new(
                552,
                format!(
                    "5.3.4 Message too big (limit {} bytes)",
                    self.policy.max_size
                ),
            ),
            DataOutcome::Failed => Reply::new(451, "4.3.0 Local error in processing"),
        }
    }

    /// Handles one line from the client (with or without its CRLF).
    pub fn command(&mut self, line: &[u8]) -> Step {
        let line = trim_eol(line);
        match std::mem::replace(&mut self.phase, Phase::Command) {
            Phase::Command => {}
            Phase::AuthPlain => return self.auth_plain_response(line),
            Phase::AuthLoginUser => return self.auth_login_user(line),
            Phase::AuthLoginPassword(user) => return self.auth_login_password(&user, line),
            Phase::Data => {
                self.phase = Phase::Data;
                return Step::reply(503, "5.5.1 Receiving message data");
            }
            Phase::Closed => {
                self.phase = Phase::Closed;
                return Step::reply(503, "5.5.1 Connection is closing").then(Action::Close);
            }
        }
        let Parsed { verb, command } = command::parse(line);
        if command == Err(ParseError::InvalidCharacters) {
            return Step::reply(501, "5.5.2 Invalid characters in arguments");
        }
        match verb.as_str() {
            "EHLO" | "HELO" => self.hello(&verb, command),
            "MAIL" => self.mail(command),
            "RCPT" => self.rcpt(command),
            "DATA" => self.data(command),
            "RSET" => {
                if command.is_err() {
                    return Step::reply(501, "5.5.4 RSET takes no arguments");
                }
                self.reset_transaction();
                Step::reply(250, "2.0.0 OK")
            }
            "NOOP" => Step::reply(250, "2.0.0 OK"),
            "QUIT" => {
                self.phase = Phase::Closed;
                Step::reply(221, "2.0.0 Bye").then(Action::Close)
            }
            "VRFY" => match command {
                Ok(_) => Step::reply(
                    252,
                    "2.5.0 Cannot VRFY user, but will accept message and attempt delivery",
                ),
                Err(_) => Step::reply(501, "5.5.4 Syntax: VRFY <address>"),
            },
            "HELP" => Step::reply(214, format!("2.0.0 Commands: {}", self.commands())),
            "STARTTLS" => self.starttls(command),
            "AUTH" => self.auth(command),
            _ => match command {
                Err(ParseError::NotImplemented) => {
                    Step::reply(502, "5.5.1 Command not implemented")
                }
                Err(ParseError::Empty) => Step::reply(500, "5.5.2 Syntax error, empty command"),
                _ => Step::reply(500, "5.5.2 Command unrecognized"),
            },
        }
    }

    fn reset_transaction(&mut self) {
        self.from = None;
        self.smtputf8 = false;
        self.recipients.clear();
        self.mailboxes.clear();
    }

    /// The commands HELP lists: those this session can use now.
    fn commands(&self) -> String {
        let mut commands = String::from("EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP");
        if self.policy.tls_available && !self.tls {
            commands.push_str(" STARTTLS");
        }
        if self.auth_offered() {
            commands.push_str(" AUTH");
        }
        commands
    }

    fn auth_offered(&self) -> bool {
        self.policy.users.exist() && (self.tls || self.loopback)
    }

    fn hello(&mut self, verb: &str, command: Result<Command, ParseError>) -> Step {
        let (domain, esmtp) = match command {
            Ok(Command::Ehlo(domain)) => (domain, true),
            Ok(Command::Helo(domain)) => (domain, false),
            Err(ParseError::DomainTooLong) => {
                return Step::reply(501, "5.5.4 Domain name too long")
            }
            _ => return Step::reply(501, format!("5.5.4 Syntax: {verb} <domain>")),
        };
        self.reset_transaction();
        self.helo = Some((domain.to_string(), esmtp));
        let host = &self.policy.hostname;
        if !esmtp {
            return Step::reply(250, host.clone());
        }
        let mut lines = vec![
            format!("{host} greets {domain}"),
            "PIPELINING".to_string(),
            format!("SIZE {}", self.policy.max_size),
            "8BITMIME".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
            "SMTPUTF8".to_string(),
        ];
        if self.policy.tls_available && !self.tls {
            lines.push("STARTTLS".to_string());
        }
        if self.auth_offered() {
            lines.push("AUTH PLAIN LOGIN".to_string());
        }
        lines.push("HELP".to_string());
        Step {
            reply: Reply::multiline(250, lines),
            action: Action::Continue,
        }
    }

    fn mail(&mut self, command: Result<Command, ParseError>) -> Step {
        if self.helo.is_none() {
            return Step::reply(503, "5.5.1 Send EHLO or HELO first");
        }
        if self.policy.users.exist() && self.authenticated.is_none() {
            return Step::reply(530, "5.7.0 Authentication required");
        }
        if self.from.is_some() {
            return Step::reply(503, "5.5.1 Sender already given (nested MAIL)");
        }
        let (from, params) = match command {
            Ok(Command::Mail { from, params }) => (from, params),
            Err(ParseError::BadSize) => return Step::reply(501, "5.5.4 Bad SIZE value"),
            Err(ParseError::BadBody) => return Step::reply(501, "5.5.4 Bad BODY value"),
            Err(ParseError::UnsupportedParameter) => {
                return Step::reply(555, "5.5.4 Unsupported MAIL parameter")
            }
            _ => return Step::reply(501, "5.5.4 Syntax: MAIL FROM:<address>"),
        };
        if !params.smtputf8 && !from.is_ascii() {
            return non_ascii_refused();
        }
        if params.size.is_some_and(|n| n > self.policy.max_size) {
            return Step::reply(
                552,
                format!(
                    "5.3.4 Message size exceeds limit of {} bytes",
                    self.policy.max_size
                ),
            );
        }
        self.from = Some(from.to_string());
        self.smtputf8 = params.smtputf8;
        Step::reply(250, "2.1.0 Sender OK")
    }

    fn rcpt(&mut self, command: Result<Command, ParseError>) -> Step {
        if self.from.is_none() {
            return Step::reply(503, "5.5.1 Need MAIL before RCPT");
        }
        let path = match command {
            Ok(Command::Rcpt(path)) => path.to_string(),
            Err(ParseError::UnsupportedParameter) => {
                return Step::reply(555, "5.5.4 Unsupported RCPT parameter")
            }
            Err(ParseError::EmptyRecipient) => {
                return Step::reply(501, "5.1.3 Empty recipient address")
            }
            _ => return Step::reply(501, "5.5.4 Syntax: RCPT TO:<address>"),
        };
        if self.recipients.len() >= MAX_RECIPIENTS {
            return Step::reply(452, "4.5.3 Too many recipients");
        }
        if !self.smtputf8 && !path.is_ascii() {
            return non_ascii_refused();
        }
        let mailbox = match self.policy.users.recipient_mailbox(&path) {
            Some(m) => m,
            None if self.policy.users.exist() => {
                let path = header_safe(&path);
                return Step::reply(550, format!("5.1.1 <{path}>: no such mailbox here"));
            }
            None => {
                return Step::reply(
                    553,
                    format!(
                        "5.1.3 <{}>: local part is not a valid mailbox name",
                        header_safe(&path)
                    ),
                )
            }
        };
        if !self.mailboxes.contains(&mailbox) {
            self.mailboxes.push(mailbox);
        }
        self.recipients.push(path);
        Step::reply(250, "2.1.5 Recipient OK")
    }

    fn data(&mut self, command: Result<Command, ParseError>) -> Step {
        if command.is_err() {
            return Step::reply(501, "5.5.4 DATA takes no arguments");
        }
        if self.from.is_none() {
            return Step::reply(503, "5.5.1 Need MAIL before DATA");
        }
        if self.recipients.is_empty() {
            return Step::reply(503, "5.5.1 Need RCPT before DATA");
        }
        self.phase = Phase::Data;
        Step::reply(354, "End data with <CR><LF>.<CR><LF>").then(Action::ReceiveData)
    }

    fn starttls(&mut self, command: Result<Command, ParseError>) -> Step {
        if self.tls {
            return Step::reply(503, "5.5.1 TLS already active");
        }
        if !self.policy.tls_available {
            return Step::reply(502, "5.5.1 STARTTLS not available");
        }
        if command.is_err() {
            return Step::reply(501, "5.5.4 STARTTLS takes no arguments");
        }
        Step::reply(220, "2.0.0 Ready to start TLS").then(Action::StartTls)
    }

    fn auth(&mut self, command: Result<Command, ParseError>) -> Step {
        if !self.policy.users.exist() {
            return Step::reply(502, "5.5.1 Authentication not enabled");
        }
        if self.helo.is_none() {
            return Step::reply(503, "5.5.1 Send EHLO first");
        }
        if self.authenticated.is_some() {
            return Step::reply(503, "5.5.1 Already authenticated");
        }
        if self.from.is_some() {
            return Step::reply(503, "5.5.1 AUTH not allowed during a mail transaction");
        }
        if !self.tls && !self.loopback {
            return Step::reply(538, "5.7.11 Encryption required: use STARTTLS first");
        }
        let unrecognized = || Step::reply(504, "5.5.4 Unrecognized authentication type");
        let (mechanism, initial) = match command {
            Ok(Command::Auth { mechanism, initial }) => (mechanism, initial),
            Err(ParseError::UnknownMechanism) => return unrecognized(),
            _ => return Step::reply(501, "5.5.4 Syntax: AUTH mechanism [initial-response]"),
        };
        match (mechanism, initial) {
            (Mechanism::Plain, None) => {
                self.phase = Phase::AuthPlain;
                Step::reply(334, "")
            }
            (Mechanism::Plain, Some(response)) => self.auth_plain_response(response.as_bytes()),
            (Mechanism::Login, None) => {
                self.phase = Phase::AuthLoginUser;
                Step::reply(334, sasl::LOGIN_CHALLENGES[0])
            }
            (Mechanism::Login, Some(user)) => self.auth_login_user(user.as_bytes()),
            _ => unrecognized(),
        }
    }

    /// Decodes a SASL response line, or the reply refusing it.
    fn sasl_decode(line: &[u8]) -> Result<Vec<u8>, Step> {
        sasl::decode_response(line).map_err(|e| match e {
            ResponseError::Cancelled => Step::reply(501, "5.7.0 Authentication cancelled"),
            ResponseError::BadBase64 => Step::reply(501, "5.5.2 Cannot decode base64 response"),
        })
    }

    fn auth_plain_response(&mut self, line: &[u8]) -> Step {
        match Self::sasl_decode(line) {
            Ok(message) => match sasl::plain_credentials(&message) {
                Some((user, password)) => self.auth_check(user, password),
                None => self.auth_failed(""),
            },
            Err(step) => step,
        }
    }

    fn auth_login_user(&mut self, line: &[u8]) -> Step {
        match Self::sasl_decode(line) {
            Ok(user) => {
                self.phase = Phase::AuthLoginPassword(String::from_utf8_lossy(&user).into_owned());
                Step::reply(334, sasl::LOGIN_CHALLENGES[1])
            }
            Err(step) => step,
        }
    }

    fn auth_login_password(&mut self, user: &str, line: &[u8]) -> Step {
        match Self::sasl_decode(line) {
            Ok(password) => self.auth_check(user, &password),
            Err(step) => step,
        }
    }

    fn auth_check(&mut self, user: &str, password: &[u8]) -> Step {
        match self.policy.users.check(user, password) {
            Some(mailbox) => {
                self.authenticated = Some(mailbox);
                Step::reply(235, "2.7.0 Authentication successful")
            }
            None => self.auth_failed(user),
        }
    }

    fn auth_failed(&mut self, user: &str) -> Step {
        self.auth_failures += 1;
        self.failed_login = Some(user.to_string());
        if self.auth_failures >= MAX_AUTH_FAILURES {
            self.phase = Phase::Closed;
            return Step::reply(421, "4.7.0 Too many failed authentication attempts")
                .then(Action::Close);
        }
        Step::reply(535, "5.7.8 Authentication credentials invalid")
    }
}

/// 553 for a UTF-8 address in a transaction without SMTPUTF8 (RFC 6531
/// section 3.5).
fn non_ascii_refused() -> Step {
    Step::reply(
        553,
        "5.6.7 A non-ASCII address needs SMTPUTF8 (MAIL FROM:<...> SMTPUTF8)",
    )
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

    fn policy(users: &[(&str, &str)], tls: bool) -> Policy {
        let mut u = Users::none();
        for (name, pw) in users {
            u.add(name, Secret::new(*pw)).unwrap();
        }
        Policy {
            hostname: "mx.test".to_string(),
            max_size: 1000,
            tls_available: tls,
            users: Arc::new(u),
        }
    }

    /// Runs a script of (client line, expected reply prefix) pairs.
    fn script(server: &mut SmtpServer, steps: &[(&str, &str)]) {
        for (line, expected) in steps {
            let step = server.command(format!("{line}\r\n").as_bytes());
            let wire = String::from_utf8(step.reply.to_bytes()).unwrap();
            assert!(
                wire.starts_with(expected),
                "after {line:?}: got {wire:?}, wanted {expected:?}"
            );
        }
    }

    fn catch_all() -> SmtpServer {
        SmtpServer::new(policy(&[], false), true)
    }

    #[test]
    fn hello_refuses_a_domain_over_255_octets() {
        // Echoed in the reply, it would make a line over the 512 octets of
        // RFC 5321 section 4.5.3.1.5 (the smtp_server fuzz target checks it).
        let mut s = SmtpServer::new(policy(&[], false), true);
        let long = "a".repeat(MAX_DOMAIN + 1);
        for verb in ["EHLO", "HELO"] {
            let step = s.command(format!("{verb} {long}\r\n").as_bytes());
            assert_eq!(step.reply, Reply::new(501, "5.5.4 Domain name too long"));
        }
        let ok = "a".repeat(MAX_DOMAIN);
        let step = s.command(format!("EHLO {ok}\r\n").as_bytes());
        assert_eq!(step.reply.code, 250);
        assert!(step
            .reply
            .to_bytes()
            .split(|&b| b == b'\n')
            .all(|l| l.len() <= 512));
        // Nothing was accepted from the refused greetings.
        let mut s = SmtpServer::new(policy(&[], false), true);
        s.command(format!("EHLO {long}\r\n").as_bytes());
        assert_eq!(s.command(b"MAIL FROM:<a@b>\r\n").reply.code, 503);
    }

    #[test]
    fn full_transaction_and_envelope() {
        let mut s = catch_all();
        assert_eq!(
            s.greeting().to_bytes(),
            b"220 mx.test ESMTP mailctl ready\r\n"
        );
        let ehlo = s.command(b"EHLO client.test\r\n");
        assert_eq!(
            String::from_utf8(ehlo.reply.to_bytes()).unwrap(),
            "250-mx.test greets client.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n\
             250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250 HELP\r\n"
        );
        script(
            &mut s,
            &[
                ("MAIL FROM:<a@x.test> SIZE=999 BODY=8BITMIME", "250 2.1.0"),
                ("RCPT TO:<Bob@y.test>", "250 2.1.5"),
                ("rcpt to: <bob@z.test>", "250 2.1.5"),
                ("RCPT TO:<carol@y.test>", "250 2.1.5"),
            ],
        );
        let step = s.command(b"DATA\r\n");
        assert_eq!(
            step.reply.to_bytes(),
            b"354 End data with <CR><LF>.<CR><LF>\r\n"
        );
        assert_eq!(step.action, Action::ReceiveData);
        let env = s.envelope().unwrap();
        assert_eq!(env.from, "a@x.test");
        assert_eq!(env.recipients, ["Bob@y.test", "bob@z.test", "carol@y.test"]);
        assert_eq!(env.mailboxes, ["bob", "carol"]);
        assert_eq!(
            s.data_done(DataOutcome::Delivered("X1".into())).to_bytes(),
            b"250 2.0.0 OK: queued as X1\r\n"
        );
        assert!(s.envelope().is_none());
        // The transaction was reset: a new MAIL is fine, RCPT alone is not.
        script(
            &mut s,
            &[("RCPT TO:<b@y>", "503 5.5.1"), ("MAIL FROM:<>", "250")],
        );
        let quit = s.command(b"QUIT\r\n");
        assert_eq!(quit.reply.to_bytes(), b"221 2.0.0 Bye\r\n");
        assert_eq!(quit.action, Action::Close);
    }

    #[test]
    fn bad_sequences_are_503() {
        let mut s = catch_all();
        script(
            &mut s,
            &[
                ("MAIL FROM:<a@b>", "503 5.5.1"),
                ("RCPT TO:<a@b>", "503 5.5.1"),
                ("DATA", "503 5.5.1"),
                ("HELO me", "250 mx.test"),
                ("DATA", "503 5.5.1 Need MAIL"),
                ("MAIL FROM:<a@b>", "250"),
                ("MAIL FROM:<a@b>", "503 5.5.1"),
                ("DATA", "503 5.5.1 Need RCPT"),
                ("RSET", "250 2.0.0"),
                ("RCPT TO:<a@b>", "503 5.5.1"),
            ],
        );
    }

    #[test]
    fn unknown_and_unimplemented_commands() {
        let mut s = catch_all();
        script(
            &mut s,
            &[
                ("FOO bar", "500 5.5.2"),
                ("", "500 5.5.2"),
                ("EXPN list", "502 5.5.1"),
                ("BDAT 10 LAST", "502 5.5.1"),
                ("STARTTLS", "502 5.5.1"),
                ("AUTH PLAIN", "502 5.5.1"),
                ("VRFY bob", "252 2.5.0"),
                ("VRFY", "501 5.5.4"),
                (
                    "HELP",
                    "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\r\n",
                ),
                ("NOOP", "250 2.0.0"),
                ("noop anything", "250 2.0.0"),
            ],
        );
        assert_eq!(s.line_too_long().to_bytes(), b"500 5.5.6 Line too long\r\n");
    }

    #[test]
    fn help_lists_starttls_and_auth_only_when_they_are_offered() {
        let mut s = SmtpServer::new(policy(&[("ann", "pw")], true), true);
        script(&mut s, &[("HELP", "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS AUTH\r\n")]);
        // Not on loopback, without TLS: no AUTH offered yet.
        let mut s = SmtpServer::new(policy(&[("ann", "pw")], true), false);
        script(&mut s, &[("HELP", "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS\r\n")]);
    }

    #[test]
    fn smtputf8_transactions_reach_escaped_mailboxes() {
        let mut s = catch_all();
        script(
            &mut s,
            &[
                ("EHLO me", "250-"),
                ("MAIL FROM:<a@b>", "250"),
                ("RCPT TO:<jos\u{e9}@x>", "553 5.6.7"),
                ("RSET", "250"),
                ("MAIL FROM:<\u{e9}@b> SMTPUTF8", "250"),
                ("RCPT TO:<Jos\u{c9}@x>", "250"),
                ("RCPT TO:<a\u{85}@x>", "501 5.5.2"),
                ("DATA", "354"),
            ],
        );
        let envelope = s.envelope().unwrap();
        assert_eq!(envelope.mailboxes, ["jos%C3%A9"]);
        assert!(
            String::from_utf8(envelope.trace_headers("h", "p", "i", "d"))
                .unwrap()
                .contains("with UTF8SMTP id i")
        );
        assert!(s.data_done(DataOutcome::Failed).code == 451);
        script(
            &mut s,
            &[
                ("MAIL FROM:<b@c>", "250"),
                ("RCPT TO:<\u{e9}@x>", "553 5.6.7"),
            ],
        );
    }

    #[test]
    fn bad_arguments_are_501_or_555() {
        let mut s = catch_all();
        script(
            &mut s,
            &[
                ("EHLO", "501 5.5.4"),
                ("HELO", "501 5.5.4"),
                ("EHLO a b", "501 5.5.4"),
                ("EHLO me", "250-"),
                ("MAIL TO:<a@b>", "501 5.5.4"),
                ("MAIL FROM:a@b", "501 5.5.4"),
                ("MAIL FROM:<a@b", "501 5.5.4"),
                ("MAIL FROM:<a b@c>", "501 5.5.4"),
                ("MAIL FROM:<nodomain>", "501 5.5.4"),
                ("MAIL FROM:<a@b>x", "501 5.5.4"),
                ("MAIL FROM:<a@b> SIZE=abc", "501 5.5.4"),
                ("MAIL FROM:<a@b> BODY=BINARYMIME", "501 5.5.4"),
                ("MAIL FROM:<a\u{e9}@b>", "553 5.6.7"),
                ("MAIL FROM:<a\u{85}@b>", "501 5.5.2"),
                ("MAIL FROM:<@relay.test:a@b>", "250"),
                ("RCPT TO:<>", "501 5.1.3"),
                ("RCPT TO:<a@b> NOTIFY=NEVER", "555 5.5.4"),
                ("RCPT TO:<../etc@b>", "553 5.1.3"),
                ("RCPT TO:<.hidden@b>", "553 5.1.3"),
                ("RCPT TO:<postmaster>", "250"),
                ("DATA now", "501 5.5.4"),
                ("RSET x", "501 5.5.4"),
                ("STARTTLS", "502"),
            ],
        );
        let step = s.command(b"MAIL FROM:<a\rb@c>\r\n");
        assert_eq!(step.reply.code, 501);
    }

    #[test]
    fn size_limit_in_mail_and_after_data() {
        let mut s = catch_all();
        script(
            &mut s,
            &[
                ("EHLO me", "250"),
                ("MAIL FROM:<a@b> SIZE=1001", "552 5.3.4"),
                ("MAIL FROM:<a@b> SIZE=99999999999999999999999", "552 5.3.4"),
                ("MAIL FROM:<a@b> SIZE=-1", "501 5.5.4"),
                ("MAIL FROM:<a@b> SIZE=", "501 5.5.4"),
                ("MAIL FROM:<a@b> SIZE=1000", "250"),
                ("RCPT TO:<c@d>", "250"),
                ("DATA", "354"),
            ],
        );
        assert_eq!(
            s.data_done(DataOutcome::TooLarge).to_bytes(),
            b"552 5.3.4 Message too big (limit 1000 bytes)\r\n"
        );
        script(
            &mut s,
            &[("MAIL FROM:<a@b>", "250"), ("RCPT TO:<c@d>", "250")],
        );
        s.command(b"DATA\r\n");
        assert_eq!(s.data_done(DataOutcome::Failed).code, 451);
    }

    #[test]
    fn too_many_recipients() {
        let mut s = catch_all();
        script(&mut s, &[("EHLO me", "250"), ("MAIL FROM:<a@b>", "250")]);
        for i in 0..MAX_RECIPIENTS {
            assert_eq!(
                s.command(format!("RCPT TO:<u{i}@d>").as_bytes()).reply.code,
                250
            );
        }
        script(&mut s, &[("RCPT TO:<x@d>", "452 4.5.3")]);
    }

    #[test]
    fn users_require_auth_plain() {
        let mut s = SmtpServer::new(policy(&[("alice", "pw")], false), true);
        let ehlo = String::from_utf8(s.command(b"EHLO me").reply.to_bytes()).unwrap();
        assert!(ehlo.contains("250-AUTH PLAIN LOGIN\r\n"), "{ehlo}");
        let good = BASE64.encode("\0alice\0pw");
        let bad = BASE64.encode("\0alice\0nope");
        let other = BASE64.encode("bob\0alice\0pw");
        script(
            &mut s,
            &[
                ("MAIL FROM:<a@b>", "530 5.7.0"),
                ("AUTH", "501 5.5.4"),
                ("AUTH CRAM-MD5", "504 5.5.4"),
                (&format!("AUTH PLAIN {bad}"), "535 5.7.8"),
                (&format!("AUTH PLAIN {other}"), "535 5.7.8"),
                ("AUTH PLAIN", "334 "),
                ("*", "501 5.7.0"),
                ("AUTH PLAIN", "334 "),
                ("!!notbase64", "501 5.5.2"),
                ("AUTH PLAIN", "334 "),
                (&good, "235 2.7.0"),
                (&format!("AUTH PLAIN {good}"), "503 5.5.1"),
                ("MAIL FROM:<a@b>", "250"),
                ("RCPT TO:<carol@x>", "550 5.1.1"),
                ("RCPT TO:<Alice@x>", "250"),
            ],
        );
    }

    #[test]
    fn auth_login_and_failure_limit() {
        let mut s = SmtpServer::new(policy(&[("alice", "pw")], false), true);
        s.command(b"EHLO me");
        let step = s.command(b"AUTH LOGIN");
        assert_eq!(step.reply.to_bytes(), b"334 VXNlcm5hbWU6\r\n");
        assert!(s.in_auth_exchange());
        assert_eq!(s.redacted(b"YWxpY2U=\r\n"), b"<redacted>");
        let step = s.command(BASE64.encode("alice").as_bytes());
        assert_eq!(step.reply.to_bytes(), b"334 UGFzc3dvcmQ6\r\n");
        assert_eq!(s.command(BASE64.encode("wrong").as_bytes()).reply.code, 535);
        let initial = format!("AUTH LOGIN {}", BASE64.encode("alice"));
        assert_eq!(s.command(initial.as_bytes()).reply.code, 334);
        assert_eq!(s.command(BASE64.encode("wrong").as_bytes()).reply.code, 535);
        let last = s.command(format!("AUTH PLAIN {}", BASE64.encode("\0a\0b")).as_bytes());
        assert_eq!(last.reply.code, 421);
        assert_eq!(last.action, Action::Close);

        let mut s = SmtpServer::new(policy(&[("alice", "pw")], false), true);
        s.command(b"EHLO me");
        s.command(b"AUTH LOGIN");
        s.command(BASE64.encode("alice").as_bytes());
        assert_eq!(s.command(BASE64.encode("pw").as_bytes()).reply.code, 235);
    }

    #[test]
    fn auth_needs_tls_off_loopback() {
        let mut s = SmtpServer::new(policy(&[("alice", "pw")], true), false);
        let ehlo = String::from_utf8(s.command(b"EHLO me").reply.to_bytes()).unwrap();
        assert!(ehlo.contains("250-STARTTLS\r\n"));
        assert!(!ehlo.contains("AUTH"));
        script(
            &mut s,
            &[
                ("AUTH PLAIN AGFsaWNlAHB3", "538 5.7.11"),
                ("STARTTLS x", "501"),
            ],
        );
        let step = s.command(b"STARTTLS\r\n");
        assert_eq!(step.reply.to_bytes(), b"220 2.0.0 Ready to start TLS\r\n");
        assert_eq!(step.action, Action::StartTls);
        s.tls_started();
        // After TLS the client must greet again; AUTH is then offered.
        script(&mut s, &[("MAIL FROM:<a@b>", "503 5.5.1")]);
        let ehlo = String::from_utf8(s.command(b"EHLO me").reply.to_bytes()).unwrap();
        assert!(!ehlo.contains("STARTTLS"));
        assert!(ehlo.contains("AUTH PLAIN LOGIN"));
        script(
            &mut s,
            &[
                ("STARTTLS", "503 5.5.1"),
                ("AUTH PLAIN AGFsaWNlAHB3", "235"),
            ],
        );
    }

    #[test]
    fn redaction_of_auth_lines() {
        let s = catch_all();
        assert_eq!(
            s.redacted(b"AUTH PLAIN AGFsaWNlAHB3\r\n"),
            b"AUTH PLAIN <redacted>"
        );
        assert_eq!(
            s.redacted(b"auth login YWxpY2U=\r\n"),
            b"AUTH login <redacted>"
        );
        assert_eq!(s.redacted(b"AUTH PLAIN\r\n"), b"AUTH PLAIN");
        assert_eq!(s.redacted(b"MAIL FROM:<a@b>\r\n"), b"MAIL FROM:<a@b>");
    }

    /// The command-line limit of the transcripts below.
    const MAX_LINE: usize = 512;

    /// Drives a session over a client byte stream that arrives in chunks of
    /// `size` bytes, as the socket driver does: command lines framed by
    /// [`LineReader`], message data read by the DATA receiver from the same
    /// buffer. Returns the server's bytes and the messages received.
    fn session(server: &mut SmtpServer, input: &[u8], size: usize) -> (String, Vec<Vec<u8>>) {
        use crate::proto::line::LineReader;
        use crate::proto::smtp::receive::DataReceiver;
        let mut out = server.greeting().to_bytes();
        let mut messages = Vec::new();
        let mut lines = LineReader::new(MAX_LINE);
        let mut data: Option<(DataReceiver, Vec<u8>)> = None;
        let mut buffered = Vec::new();
        'chunks: for chunk in input.chunks(size) {
            buffered.extend_from_slice(chunk);
            loop {
                if let Some((receiver, body)) = &mut data {
                    let used = receiver.feed(&buffered, body);
                    buffered.drain(..used);
                    if !receiver.is_done() {
                        break;
                    }
                    let body = std::mem::take(body);
                    data = None;
                    let outcome = if body.len() as u64 > server.policy.max_size {
                        DataOutcome::TooLarge
                    } else {
                        messages.push(body);
                        DataOutcome::Delivered(format!("Q{}", messages.len()))
                    };
                    out.extend(server.data_done(outcome).to_bytes());
                    continue;
                }
                let (used, line) = lines.push(&buffered);
                buffered.drain(..used);
                let line = match line {
                    None => break,
                    Some(Err(_)) => {
                        out.extend(server.line_too_long().to_bytes());
                        continue;
                    }
                    Some(Ok(line)) => line,
                };
                let step = server.command(&line);
                out.extend(step.reply.to_bytes());
                match step.action {
                    Action::ReceiveData => {
                        let receiver = DataReceiver::after_command_line(line.ends_with(b"\r\n"));
                        data = Some((receiver, Vec::new()));
                    }
                    Action::StartTls => {
                        // What was pipelined after STARTTLS is discarded.
                        buffered.clear();
                        server.tls_started();
                    }
                    Action::Close => break 'chunks,
                    Action::Continue => {}
                }
            }
        }
        (String::from_utf8(out).unwrap(), messages)
    }

    /// Runs `input` through a fresh server from `make` in every chunk size
    /// from 1 byte to all of it; every run must give the same replies and
    /// messages, which are returned.
    fn every_chunk_size(make: impl Fn() -> SmtpServer, input: &[u8]) -> (String, Vec<Vec<u8>>) {
        let whole = session(&mut make(), input, input.len());
        for size in 1..input.len() {
            assert_eq!(
                session(&mut make(), input, size),
                whole,
                "chunk size {size}"
            );
        }
        whole
    }

    #[test]
    fn whole_session_transcript() {
        let big = "y".repeat(1200);
        let long = "z".repeat(MAX_LINE);
        let input = format!(
            "HELO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<d@e>\r\nDATA\r\n..x\r\n\
             .\r\nMAIL FROM:<a@b>\r\nRCPT TO:<d@e>\r\nDATA\r\n{big}\r\n.\r\n\
             NOOP {long}\r\nDATA\r\nQUIT\r\nNOOP\r\n"
        );
        let (out, messages) = every_chunk_size(catch_all, input.as_bytes());
        assert_eq!(
            out,
            "220 mx.test ESMTP mailctl ready\r\n\
             250 mx.test\r\n\
             250 2.1.0 Sender OK\r\n\
             250 2.1.5 Recipient OK\r\n\
             354 End data with <CR><LF>.<CR><LF>\r\n\
             250 2.0.0 OK: queued as Q1\r\n\
             250 2.1.0 Sender OK\r\n\
             250 2.1.5 Recipient OK\r\n\
             354 End data with <CR><LF>.<CR><LF>\r\n\
             552 5.3.4 Message too big (limit 1000 bytes)\r\n\
             500 5.5.6 Line too long\r\n\
             503 5.5.1 Need MAIL before DATA\r\n\
             221 2.0.0 Bye\r\n"
        );
        assert_eq!(messages, [b".x\r\n".to_vec()]);
    }

    #[test]
    fn pipelined_session_with_auth_and_smuggling_in_every_chunk_size() {
        let plain = BASE64.encode("\0alice\0pw");
        let input = format!(
            "EHLO client.test\r\nAUTH PLAIN\r\n{plain}\r\n\
             MAIL FROM:<a@x.test> BODY=8BITMIME\r\nRCPT TO:<alice@y.test>\r\n\
             RCPT TO:<bob@y.test>\r\nDATA\r\n\
             Subject: s\r\n\r\n..dot\r\na\n.\nMAIL FROM:<evil@x>\r\n\
             b\r.\r\nc\r\n.\nd\r\n.\r\n\
             RSET\r\nVRFY alice\r\nMAIL FROM:<> SIZE=5000\r\nQUIT\r\nNOOP\r\n"
        );
        let make = || SmtpServer::new(policy(&[("alice", "pw")], false), true);
        let (out, messages) = every_chunk_size(make, input.as_bytes());
        assert_eq!(
            out,
            "220 mx.test ESMTP mailctl ready\r\n\
             250-mx.test greets client.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n\
             250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250-AUTH PLAIN LOGIN\r\n\
             250 HELP\r\n\
             334 \r\n\
             235 2.7.0 Authentication successful\r\n\
             250 2.1.0 Sender OK\r\n\
             250 2.1.5 Recipient OK\r\n\
             550 5.1.1 <bob@y.test>: no such mailbox here\r\n\
             354 End data with <CR><LF>.<CR><LF>\r\n\
             250 2.0.0 OK: queued as Q1\r\n\
             250 2.0.0 OK\r\n\
             252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n\
             552 5.3.4 Message size exceeds limit of 1000 bytes\r\n\
             221 2.0.0 Bye\r\n"
        );
        assert_eq!(
            messages,
            [
                b"Subject: s\r\n\r\n.dot\r\na\r\n.\r\nMAIL FROM:<evil@x>\r\n\
               b\r.\r\nc\r\n.\r\nd\r\n"
                    .to_vec()
            ]
        );
    }

    #[test]
    fn trace_headers() {
        let mut s = SmtpServer::new(policy(&[], false), true);
        script(
            &mut s,
            &[
                ("EHLO client\u{7f}x", "501"),
                ("EHLO client", "250"),
                ("MAIL FROM:<a@b>", "250"),
                ("RCPT TO:<c@d>", "250"),
                ("DATA", "354"),
            ],
        );
        let headers = s.envelope().unwrap().trace_headers(
            "mx.test",
            "127.0.0.1",
            "ID1",
            "Thu, 1 Jan 2026 00:00:00 +0000",
        );
        assert_eq!(
            String::from_utf8(headers).unwrap(),
            "Return-Path: <a@b>\r\nReceived: from client (127.0.0.1)\r\n\tby mx.test (mailctl) \
             with ESMTP id ID1\r\n\tfor <c@d>; Thu, 1 Jan 2026 00:00:00 +0000\r\n"
        );
        assert_eq!(s.command(b"MAIL FROM:<a@b>").reply.code, 503);
    }
}
