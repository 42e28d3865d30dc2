//! The SMTP submission client as a state machine (RFC 5321 section 3,
//! RFC 3207 STARTTLS, RFC 4954 AUTH, RFC 2920 PIPELINING, RFC 1870 SIZE).
//!
//! [`Client`] does no I/O. The driver reads one reply at a time and passes
//! it to [`Client::on_reply`], which answers with an [`Event`]: bytes to
//! send, "read another reply", "upgrade to TLS now", "stream the message
//! now", or "close". The states, in order:
//!
//! ```text
//! Greeting -> Ehlo (-> Helo if EHLO is refused) -> StartTls -> Ehlo
//!   -> Auth (SCRAM-* | EXTERNAL | CRAM-MD5 | PLAIN | LOGIN | OAUTHBEARER | XOAUTH2)
//!   -> MAIL, RCPT..., DATA   (one flight with PIPELINING, else one by one)
//!   -> message, final dot (+ QUIT in the same flight with PIPELINING)
//!   -> Quit -> Closed
//! ```
//!
//! Failures are recorded, not thrown: the machine then says goodbye politely
//! where that is safe (RSET, QUIT) and [`Client::finish`] returns the error
//! together with what is known about every recipient.

use std::collections::VecDeque;

use crate::proto::sasl::scram::{self, Scram};
use crate::proto::sasl::{self, Mechanism};
use crate::secret::Secret;
use crate::text::printable;

use super::command::{Command, DsnRet, MailParams};
use super::ehlo::Capabilities;
use super::envelope::Envelope;
use super::reply::Reply;
use super::Error;

/// How the session is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsPolicy {
    /// TLS from the first byte: the driver completed the handshake before
    /// the greeting.
    Implicit,
    /// STARTTLS is required before anything else is sent after EHLO.
    StartTls,
    /// No encryption.
    Plain,
    /// STARTTLS when the server offers it, else no encryption (the driver
    /// asks for it for loopback servers only).
    StartTlsIfOffered,
}

/// A user name and password (or OAuth token), and the mechanism to use.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password, or the access token for XOAUTH2; `None` until the
    /// driver obtains it: the machine asks with [`Event::NeedSecret`] once
    /// it has chosen a mechanism that needs one (all but EXTERNAL).
    pub secret: Option<Secret>,
    /// Whether a TLS client certificate is presented: with no mechanism
    /// asked for, EXTERNAL is then used when offered.
    pub client_cert: bool,
    /// A mechanism the user asked for; `None` picks the strongest offered.
    pub mechanism: Option<Mechanism>,
    /// Whether the secret is an OAuth 2 access token: with no mechanism
    /// asked for, OAUTHBEARER is then used, else XOAUTH2.
    pub token: bool,
    /// A fresh random printable string (no comma) for SCRAM's client nonce.
    pub nonce: String,
}

/// What the state machine needs to know up front.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The name to announce in EHLO / HELO.
    pub helo_name: String,
    /// Transport security: with [`TlsPolicy::StartTls`] the upgrade is
    /// required.
    pub tls: TlsPolicy,
    /// Credentials, if the server wants authentication.
    pub credentials: Option<Credentials>,
    /// Whether credentials may be sent without TLS (loopback servers only).
    pub plaintext_auth_allowed: bool,
    /// The envelope sender (reverse-path); may be empty.
    pub from: String,
    /// The envelope recipients.
    pub recipients: Vec<String>,
    /// The message size in bytes, CRLF line endings, before dot-stuffing.
    pub message_size: u64,
    /// Whether the message has bytes above 127 (asks for BODY=8BITMIME).
    pub eight_bit: bool,
    /// Stop after authentication with QUIT: a check of the settings that
    /// sends no mail. The envelope is then ignored.
    pub probe: bool,
    /// Keep the session open after the message: the machine then says
    /// [`Event::Idle`] instead of QUIT, and the driver hands it the next
    /// message ([`Client::next_message`]) or ends ([`Client::quit`]).
    pub keep_open: bool,
    /// Send the message to the recipients the server accepted even when it
    /// refused others (their state says how); otherwise any refusal stops
    /// the message.
    pub partial: bool,
    /// Delivery status notifications to ask for (RFC 3461).
    pub dsn: Dsn,
}

/// Delivery status notification requests (RFC 3461): a checked `NOTIFY`
/// value for every recipient, `RET` and `ENVID` for the message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dsn {
    /// `NEVER` or a list of `SUCCESS`, `FAILURE`, `DELAY`
    /// (see [`super::command::notify_value`]).
    pub notify: Option<String>,
    /// `RET=`.
    pub ret: Option<DsnRet>,
    /// `ENVID=` (plain text; encoded when sent).
    pub envid: Option<String>,
}

impl Dsn {
    /// Whether anything is asked for.
    pub fn is_requested(&self) -> bool {
        self.notify.is_some() || self.ret.is_some() || self.envid.is_some()
    }
}

/// Bytes to write in one go, and the lines they stand for in the
/// transcript (secrets already replaced by `<redacted>`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flight {
    /// The wire bytes.
    pub wire: Vec<u8>,
    /// One transcript line per command.
    pub log: Vec<String>,
}

impl Flight {
    fn push(&mut self, command: Command<'_>) -> Result<(), Error> {
        self.wire.extend_from_slice(&command.render()?);
        self.log.push(command.redacted());
        Ok(())
    }

    fn of(command: Command<'_>) -> Result<Self, Error> {
        let mut flight = Flight::default();
        flight.push(command)?;
        Ok(flight)
    }
}

/// What the driver should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// Write these bytes (one write), then read the next reply.
    Send(Flight),
    /// Read the next reply: more replies to a pipelined flight are due.
    Wait,
    /// The server agreed to STARTTLS: discard anything buffered, perform the
    /// TLS handshake, then call [`Client::tls_established`].
    StartTls,
    /// Stream the message through the DATA encoder with its final dot,
    /// write `then` (QUIT, when pipelining) in the same flush, then read the
    /// next reply.
    SendMessage {
        /// The message size, for the transcript.
        size: u64,
        /// Bytes that follow the final dot without waiting.
        then: Option<Flight>,
    },
    /// Close the connection without sending the message: the server
    /// already said 354, so closing before the final dot is the only way to
    /// make it discard the transaction (RFC 5321 section 3.8).
    Abort(String),
    /// Close the connection; the session is over.
    Close,
    /// With [`ClientConfig::keep_open`]: the message's transactions are
    /// over and the session is ready for another; take the outcome with
    /// [`Client::take_outcome`], then call [`Client::next_message`] or
    /// [`Client::quit`].
    Idle,
    /// The chosen mechanism needs the password (or token), which the
    /// credentials do not hold yet: obtain it and call
    /// [`Client::provide_secret`].
    NeedSecret,
}

/// What became of one recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecipientState {
    /// RCPT was not answered (the session ended earlier).
    NotTried,
    /// The server accepted the recipient (2xx).
    Accepted,
    /// The server refused it for now (4xx).
    TempFailed,
    /// The server refused it permanently (5xx).
    PermFailed,
}

impl RecipientState {
    /// The name used in JSON output.
    pub fn name(self) -> &'static str {
        match self {
            RecipientState::NotTried => "not_tried",
            RecipientState::Accepted => "accepted",
            RecipientState::TempFailed => "temp",
            RecipientState::PermFailed => "perm",
        }
    }
}

/// One envelope recipient and the server's answer to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientStatus {
    /// The address.
    pub address: String,
    /// Accepted or refused.
    pub state: RecipientState,
    /// The reply to RCPT, if any.
    pub reply: Option<Reply>,
    /// Whether the server accepted a message for this recipient (the
    /// final dot of its transaction got 2xx).
    pub delivered: bool,
}

/// Everything learnt during the session.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// One entry per envelope recipient, in order.
    pub recipients: Vec<RecipientStatus>,
    /// The reply to the final dot.
    pub final_reply: Option<Reply>,
    /// Whether the message was accepted for delivery (with
    /// [`ClientConfig::probe`]: whether the server could have been sent
    /// mail).
    pub accepted: bool,
    /// Whether the session ran over TLS.
    pub tls: bool,
    /// The mechanism that authenticated the session.
    pub auth: Option<Mechanism>,
    /// The extensions of the last EHLO.
    pub capabilities: Option<Capabilities>,
    /// The server's greeting.
    pub greeting: Option<Reply>,
    /// The reply to the last EHLO (none after a HELO fallback).
    pub ehlo: Option<Reply>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AuthStep {
    /// Waiting for 235 after the last response.
    Final,
    /// LOGIN: the server asks for the user name.
    LoginUser,
    /// LOGIN: the server asks for the password.
    LoginPassword,
    /// CRAM-MD5: the server sends its challenge.
    CramChallenge,
    /// XOAUTH2 or OAUTHBEARER: a 334 here carries an error report to
    /// acknowledge.
    TokenError,
    /// PLAIN, XOAUTH2 or OAUTHBEARER sent without its initial response (too long for
    /// one command line): the server's empty 334 asks for it.
    Initial,
    /// SCRAM: the server sends its first message (salt, iterations).
    ScramServerFirst,
    /// SCRAM: the server sends its signature, which must be verified
    /// before its 235 counts.
    ScramServerFinal,
    /// The exchange was cancelled with `*`; whatever the server answers,
    /// QUIT follows.
    Cancelled,
    /// The mechanism is chosen; the driver is obtaining the secret.
    AwaitSecret(Mechanism),
}

/// The longest command line, CRLF included (RFC 5321 section 4.5.3.1.4).
const MAX_COMMAND_LINE: usize = 512;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Mail,
    Rcpt(usize),
    Data,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    Auth(AuthStep),
    Mail,
    Rcpt(usize),
    Data,
    Pipelined(VecDeque<Expect>),
    Message,
    Rset,
    Idle,
    Quit,
    Closed,
}

/// The client state machine. See the module documentation.
pub struct Client {
    config: ClientConfig,
    state: State,
    tls_active: bool,
    upgraded: bool,
    pipelining: bool,
    mail_reply: Option<Reply>,
    data_reply: Option<Reply>,
    /// The recipients (indices into the report) of the current
    /// transaction: all of them at first, then those a server limiting
    /// recipients per transaction put off (RFC 5321 section 4.5.3.1.10).
    transaction: Vec<usize>,
    /// Recipients whose transaction completed since the driver last asked.
    newly_delivered: Vec<usize>,
    /// Whether the current message's first MAIL went out (or the message
    /// was refused before it).
    started: bool,
    report: Report,
    failure: Option<Error>,
    /// The SCRAM exchange in progress, if any.
    scram: Option<Scram>,
    /// The TLS session's `tls-server-end-point` data, as the driver
    /// handed it in after the handshake.
    channel_binding: Option<Vec<u8>>,
}

/// The base64 initial response of PLAIN, XOAUTH2, OAUTHBEARER or EXTERNAL.
fn initial_response(mechanism: Mechanism, user: &str, secret: &str) -> String {
    if mechanism == Mechanism::External {
        sasl::EXTERNAL_RESPONSE.to_string()
    } else if mechanism.takes_token() {
        sasl::token_response(mechanism, user, secret)
    } else {
        sasl::plain_response(user, secret)
    }
}

/// The step after the initial response of PLAIN, EXTERNAL or a token
/// mechanism.
fn after_initial(mechanism: Mechanism) -> AuthStep {
    if mechanism.takes_token() {
        AuthStep::TokenError
    } else {
        AuthStep::Final
    }
}

/// The mechanism to use: the one asked for if offered, else EXTERNAL when
/// a client certificate is presented and the server offers it, else the
/// preferred token mechanism offered for a token, or the strongest
/// password mechanism offered for a password.
/// `can_bind`: whether the session has a TLS channel binding for -PLUS.
fn choose_mechanism(
    caps: &Capabilities,
    credentials: &Credentials,
    can_bind: bool,
) -> Result<Mechanism, Error> {
    let wanted = credentials.mechanism;
    if caps.auth_names.is_empty() {
        return Err(Error::AuthNotOffered);
    }
    let offered = || printable(caps.auth_names.join(" ").as_bytes());
    match wanted {
        Some(m) if caps.auth.contains(&m) => Ok(m),
        Some(mechanism) => Err(Error::MechanismNotOffered {
            mechanism,
            offered: offered(),
        }),
        None if credentials.client_cert && caps.auth.contains(&Mechanism::External) => {
            Ok(Mechanism::External)
        }
        None if credentials.token => Mechanism::preferred_for_token(&caps.auth)
            .ok_or_else(|| Error::NoUsableMechanism { offered: offered() }),
        None => Mechanism::strongest_for_password(&caps.auth, can_bind)
            .ok_or_else(|| Error::NoUsableMechanism { offered: offered() }),
    }
}

/// Whether a reply to RCPT says "too many recipients" (452, enhanced code
/// 4.5.3 or none): RFC 5321 section 4.5.3.1.10 asks the client to send the
/// message to the recipients accepted so far, then the others in another
/// transaction.
fn over_recipient_limit(reply: &Reply) -> bool {
    reply.code == 452
        && reply
            .enhanced
            .is_none_or(|e| (e.subject, e.detail) == (5, 3))
}

/// The report entries of recipients not tried yet.
fn untried(recipients: &[String]) -> Vec<RecipientStatus> {
    recipients
        .iter()
        .map(|address| RecipientStatus {
            address: address.clone(),
            state: RecipientState::NotTried,
            reply: None,
            delivered: false,
        })
        .collect()
}

fn failure_for(what: &'static str, reply: &Reply) -> Error {
    Error::Refused {
        what,
        reply: reply.clone(),
    }
}

impl Client {
    /// A client about to read the server's greeting. With implicit TLS the
    /// driver has already completed the handshake.
    pub fn new(config: ClientConfig) -> Self {
        let tls_active = config.tls == TlsPolicy::Implicit;
        let recipients = untried(&config.recipients);
        let transaction = (0..config.recipients.len()).collect();
        Client {
            config,
            state: State::Greeting,
            tls_active,
            upgraded: false,
            pipelining: false,
            mail_reply: None,
            data_reply: None,
            transaction,
            newly_delivered: Vec::new(),
            started: false,
            report: Report {
                recipients,
                tls: tls_active,
                ..Report::default()
            },
            failure: None,
            scram: None,
            channel_binding: None,
        }
    }

    /// Why the machine refuses the session before it starts, if it does
    /// (credentials and no encryption where that is not allowed); the
    /// driver then does not even connect.
    pub fn refuses_to_start(&self) -> Option<Error> {
        let unprotected = self.config.tls == TlsPolicy::Plain;
        (unprotected && self.config.credentials.is_some() && !self.config.plaintext_auth_allowed)
            .then_some(Error::PlaintextAuth)
    }

    /// Whether the session is over (only a QUIT reply or nothing is left).
    pub fn is_finishing(&self) -> bool {
        matches!(self.state, State::Quit | State::Closed)
    }

    /// The report so far.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// Handles the next complete reply.
    pub fn on_reply(&mut self, reply: Reply) -> Event {
        match self.step(reply) {
            Ok(event) => event,
            Err(err) => {
                self.record(err);
                self.state = State::Closed;
                Event::Close
            }
        }
    }

    /// Call after the TLS handshake that followed [`Event::StartTls`]:
    /// EHLO is sent again, and nothing learnt before it is trusted.
    pub fn tls_established(&mut self) -> Event {
        self.tls_active = true;
        self.upgraded = true;
        self.report.tls = true;
        self.report.capabilities = None;
        self.report.ehlo = None;
        self.state = State::Ehlo;
        match Flight::of(Command::Ehlo(&self.config.helo_name)) {
            Ok(flight) => Event::Send(flight),
            Err(err) => {
                self.record(err);
                self.state = State::Closed;
                Event::Close
            }
        }
    }

    /// Call after each TLS handshake (implicit, or before
    /// [`Client::tls_established`]) with the session's
    /// `tls-server-end-point` channel binding, if it has one: SCRAM then
    /// binds to it (-PLUS) or says it could (`y,,`).
    pub fn set_channel_binding(&mut self, data: Option<Vec<u8>>) {
        self.channel_binding = data;
    }

    /// Call after [`Event::NeedSecret`] with the password (or token): the
    /// chosen mechanism starts.
    pub fn provide_secret(&mut self, secret: Secret) -> Event {
        let State::Auth(AuthStep::AwaitSecret(mechanism)) = self.state else {
            return Event::Wait;
        };
        let Some(credentials) = self.config.credentials.as_mut() else {
            return Event::Wait;
        };
        credentials.secret = Some(secret);
        let credentials = credentials.clone();
        match self.start_auth(mechanism, &credentials) {
            Ok(event) => event,
            Err(err) => {
                self.record(err);
                self.state = State::Closed;
                Event::Close
            }
        }
    }

    /// The connection failed (connect, read, write or TLS error; the
    /// driver keeps the cause). Returns whether that decides the outcome:
    /// not after the message was accepted, nor once the machine is only
    /// waiting for the QUIT reply, nor after an earlier failure, and then
    /// [`Client::finish`] does not report [`Error::ConnectionLost`].
    pub fn connection_lost(&mut self) -> bool {
        let decides = self.state != State::Quit && self.failure.is_none();
        if decides {
            self.record(Error::ConnectionLost);
        }
        self.state = State::Closed;
        decides
    }

    /// The first failure recorded for the current message, if any.
    pub fn failure(&self) -> Option<&Error> {
        self.failure.as_ref()
    }

    /// The outcome: the report, or the first failure and the report.
    pub fn finish(mut self) -> Result<Report, Box<(Error, Report)>> {
        if !self.report.accepted && self.failure.is_none() {
            self.failure = Some(Error::Incomplete);
        }
        match self.failure.take() {
            Some(err) => Err(Box::new((err, self.report))),
            None => Ok(self.report),
        }
    }

    /// The recipients (indices in the envelope) the server accepted a
    /// message for since the last call: for callers that record delivery
    /// as it happens, before the session ends.
    pub fn take_delivered(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.newly_delivered)
    }

    /// After [`Event::Idle`]: the outcome of the message just sent (as
    /// [`Client::finish`] gives it); the session-wide parts of the report
    /// (TLS, AUTH, capabilities) stay for the next message.
    pub fn take_outcome(&mut self) -> Result<Report, Box<(Error, Report)>> {
        let session = Report {
            recipients: Vec::new(),
            final_reply: None,
            accepted: false,
            ..self.report.clone()
        };
        let report = std::mem::replace(&mut self.report, session);
        if !report.accepted && self.failure.is_none() {
            self.failure = Some(Error::Incomplete);
        }
        match self.failure.take() {
            Some(err) => Err(Box::new((err, report))),
            None => Ok(report),
        }
    }

    /// After [`Event::Idle`] and [`Client::take_outcome`]: starts the
    /// transaction of the next message.
    pub fn next_message(
        &mut self,
        envelope: &Envelope,
        message_size: u64,
        eight_bit: bool,
    ) -> Event {
        let recipients = envelope.recipients.clone();
        self.report.recipients = untried(&recipients);
        self.transaction = (0..recipients.len()).collect();
        self.config.from = envelope.from.clone();
        self.config.recipients = recipients;
        self.config.dsn = envelope.dsn.clone();
        self.config.message_size = message_size;
        self.config.eight_bit = eight_bit;
        self.failure = None;
        self.newly_delivered.clear();
        self.started = false;
        match self.start_transaction() {
            Ok(event) => event,
            Err(err) => {
                self.record(err);
                self.state = State::Closed;
                Event::Close
            }
        }
    }

    /// After [`Event::Idle`]: ends the session with QUIT.
    pub fn quit(&mut self) -> Event {
        self.state = State::Quit;
        match Flight::of(Command::Quit) {
            Ok(flight) => Event::Send(flight),
            Err(_) => Event::Close,
        }
    }

    /// Whether the current message got as far as its transaction (MAIL
    /// sent, or refused before it for its size or addresses): a failure
    /// before that is the session's, not the message's.
    pub fn message_started(&self) -> bool {
        self.started
    }

    /// The session is ready for the next message.
    fn idle(&mut self) -> Result<Event, Error> {
        self.state = State::Idle;
        Ok(Event::Idle)
    }

    /// A failure that ends this message's transaction: with
    /// [`ClientConfig::keep_open`] the session goes on (after RSET when
    /// `rset`), otherwise it ends with QUIT.
    fn abandon(&mut self, err: Error, rset: bool) -> Result<Event, Error> {
        if !self.config.keep_open {
            return self.fail_and_quit(err);
        }
        self.record(err);
        if rset {
            return self.send(State::Rset, Command::Rset);
        }
        self.idle()
    }

    fn record(&mut self, err: Error) {
        if self.failure.is_none() {
            self.failure = Some(err);
        }
    }

    /// Records a failure in the middle of an AUTH exchange and cancels it
    /// with `*` (RFC 4954 section 4); QUIT follows the server's 501.
    fn cancel_auth(&mut self, err: Error) -> Result<Event, Error> {
        self.record(err);
        self.send(State::Auth(AuthStep::Cancelled), Command::AuthResponse("*"))
    }

    /// Records a failure and ends the session with QUIT.
    fn fail_and_quit(&mut self, err: Error) -> Result<Event, Error> {
        self.record(err);
        self.state = State::Quit;
        Ok(Event::Send(Flight::of(Command::Quit)?))
    }

    fn send(&mut self, state: State, command: Command<'_>) -> Result<Event, Error> {
        let flight = Flight::of(command)?;
        self.state = state;
        Ok(Event::Send(flight))
    }

    fn step(&mut self, reply: Reply) -> Result<Event, Error> {
        match self.state.clone() {
            State::Greeting => match reply.code {
                220 => {
                    self.report.greeting = Some(reply);
                    let name = self.config.helo_name.clone();
                    self.send(State::Ehlo, Command::Ehlo(&name))
                }
                421 => Err(failure_for("server not available", &reply)),
                554 => self.fail_and_quit(failure_for("server refused the connection", &reply)),
                _ => Err(Error::Unexpected {
                    what: "greeting",
                    reply,
                }),
            },
            State::Ehlo => {
                if reply.code == 250 {
                    let caps = Capabilities::from_ehlo(&reply);
                    self.pipelining = caps.pipelining;
                    self.report.capabilities = Some(caps);
                    self.report.ehlo = Some(reply);
                    self.after_ehlo()
                } else if reply.is_permanent() && !self.upgraded {
                    // RFC 5321 section 3.2: fall back to HELO.
                    let name = self.config.helo_name.clone();
                    self.send(State::Helo, Command::Helo(&name))
                } else if reply.code == 421 {
                    Err(failure_for("EHLO refused", &reply))
                } else {
                    self.fail_and_quit(failure_for("EHLO refused", &reply))
                }
            }
            State::Helo => {
                if reply.code == 250 {
                    self.pipelining = false;
                    self.report.capabilities = Some(Capabilities::default());
                    self.after_ehlo()
                } else {
                    self.fail_and_quit(failure_for("HELO refused", &reply))
                }
            }
            State::StartTls => match reply.class() {
                2 => Ok(Event::StartTls),
                _ => self.fail_and_quit(Error::StartTlsRefused(reply)),
            },
            State::Auth(step) => self.auth_step(step, reply),
            State::Mail => {
                if reply.is_positive() {
                    self.mail_reply = Some(reply);
                    self.next_rcpt(0)
                } else {
                    self.abandon(failure_for("sender refused (MAIL FROM)", &reply), false)
                }
            }
            State::Rcpt(position) => {
                let limited = over_recipient_limit(&reply);
                self.record_rcpt(self.transaction[position], reply)?;
                if limited && self.any_accepted_in_transaction() {
                    // The server takes no more in this transaction.
                    return self.end_envelope();
                }
                self.next_rcpt(position + 1)
            }
            State::Data => {
                if reply.code == 354 {
                    self.data_reply = Some(reply);
                    self.send_message()
                } else {
                    self.abandon(failure_for("DATA refused", &reply), true)
                }
            }
            State::Pipelined(mut queue) => {
                match queue.pop_front() {
                    Some(Expect::Mail) => self.mail_reply = Some(reply),
                    Some(Expect::Rcpt(i)) => self.record_rcpt(i, reply)?,
                    Some(Expect::Data) => self.data_reply = Some(reply),
                    None => unreachable!("the queue is never left empty"),
                }
                if queue.is_empty() {
                    self.after_pipelined_envelope()
                } else {
                    self.state = State::Pipelined(queue);
                    Ok(Event::Wait)
                }
            }
            State::Message => self.after_dot(reply),
            State::Rset if self.config.keep_open && reply.is_positive() => self.idle(),
            State::Rset => self.send(State::Quit, Command::Quit),
            State::Idle => Err(Error::Unexpected {
                what: "nothing (no command was sent)",
                reply,
            }),
            State::Quit => {
                self.state = State::Closed;
                Ok(Event::Close)
            }
            State::Closed => Ok(Event::Close),
        }
    }

    /// The reply to the final dot: the next transaction for recipients
    /// put off, else the end of the message.
    fn after_dot(&mut self, reply: Reply) -> Result<Event, Error> {
        let deferred = self.deferred();
        let quit_sent = self.quit_follows_dot();
        if reply.is_positive() {
            for &i in &self.transaction {
                let recipient = &mut self.report.recipients[i];
                if recipient.state == RecipientState::Accepted {
                    recipient.delivered = true;
                    self.newly_delivered.push(i);
                }
            }
            if !deferred.is_empty() {
                self.report.final_reply = Some(reply);
                self.transaction = deferred;
                return self.start_transaction();
            }
            self.report.accepted = true;
        } else {
            self.record(failure_for("message refused after DATA", &reply));
        }
        self.report.final_reply = Some(reply);
        if self.config.keep_open {
            self.idle()
        } else if quit_sent {
            // QUIT followed the final dot; its reply is next.
            self.state = State::Quit;
            Ok(Event::Wait)
        } else {
            self.send(State::Quit, Command::Quit)
        }
    }

    fn after_ehlo(&mut self) -> Result<Event, Error> {
        let caps = self.report.capabilities.clone().unwrap_or_default();
        let wants_tls = matches!(
            self.config.tls,
            TlsPolicy::StartTls | TlsPolicy::StartTlsIfOffered
        );
        if wants_tls && !self.tls_active {
            if caps.starttls {
                return self.send(State::StartTls, Command::StartTls);
            }
            if self.config.tls == TlsPolicy::StartTls {
                // Nothing else is sent: no QUIT, no MAIL, no credentials.
                return Err(Error::StartTlsNotOffered);
            }
        }
        if let Some(credentials) = self.config.credentials.clone() {
            if !self.tls_active && !self.config.plaintext_auth_allowed {
                return Err(Error::PlaintextAuth);
            }
            let can_bind = self.tls_active && self.channel_binding.is_some();
            return match choose_mechanism(&caps, &credentials, can_bind) {
                Ok(mechanism) => self.start_auth(mechanism, &credentials),
                Err(err) => self.fail_and_quit(err),
            };
        }
        self.start_transaction()
    }

    fn start_auth(
        &mut self,
        mechanism: Mechanism,
        credentials: &Credentials,
    ) -> Result<Event, Error> {
        self.report.auth = Some(mechanism);
        let none = Secret::new("");
        let password = match &credentials.secret {
            Some(password) => password,
            None if mechanism.needs_secret() => {
                self.state = State::Auth(AuthStep::AwaitSecret(mechanism));
                return Ok(Event::NeedSecret);
            }
            None => &none,
        };
        let (user, secret) = (credentials.user.as_str(), password.expose());
        match mechanism {
            Mechanism::Plain
            | Mechanism::XOAuth2
            | Mechanism::OAuthBearer
            | Mechanism::External => {
                let initial = initial_response(mechanism, user, secret);
                // RFC 4954 section 4: a response that would make the
                // command too long is sent after the server's empty 334.
                if "AUTH ".len() + mechanism.name().len() + 1 + initial.len() + 2 > MAX_COMMAND_LINE
                {
                    return self.send(
                        State::Auth(AuthStep::Initial),
                        Command::Auth {
                            mechanism,
                            initial: None,
                        },
                    );
                }
                self.send(
                    State::Auth(after_initial(mechanism)),
                    Command::Auth {
                        mechanism,
                        initial: Some(&initial),
                    },
                )
            }
            Mechanism::Login => self.send(
                State::Auth(AuthStep::LoginUser),
                Command::Auth {
                    mechanism,
                    initial: None,
                },
            ),
            Mechanism::CramMd5 => self.send(
                State::Auth(AuthStep::CramChallenge),
                Command::Auth {
                    mechanism,
                    initial: None,
                },
            ),
            Mechanism::ScramSha1
            | Mechanism::ScramSha256
            | Mechanism::ScramSha1Plus
            | Mechanism::ScramSha256Plus => {
                let hash = mechanism.scram_hash().expect("a SCRAM mechanism");
                let binding = self.scram_binding(mechanism);
                let scram = match binding.and_then(|binding| {
                    Scram::new(hash, user, password, &credentials.nonce)
                        .map(|scram| scram.with_binding(binding))
                }) {
                    Ok(scram) => scram,
                    Err(e) => return self.fail_and_quit(Error::Scram(e)),
                };
                let initial = scram.client_first();
                self.scram = Some(scram);
                self.send(
                    State::Auth(AuthStep::ScramServerFirst),
                    Command::Auth {
                        mechanism,
                        initial: Some(&initial),
                    },
                )
            }
        }
    }

    /// The channel binding for `mechanism` in this session
    /// (see [`scram::Binding::choose`]).
    fn scram_binding(&self, mechanism: Mechanism) -> Result<scram::Binding, scram::Error> {
        let data = self.channel_binding.as_ref().filter(|_| self.tls_active);
        let caps = self.report.capabilities.as_ref();
        let plus_offered = caps.is_some_and(|c| c.auth.iter().any(|m| m.binds_channel()));
        scram::Binding::choose(
            mechanism.binds_channel(),
            data.map(Vec::as_slice),
            plus_offered,
        )
    }

    /// The next SCRAM step: the client-final message answering the
    /// server-first one, then the check of the server's signature.
    fn scram_step(&mut self, step: AuthStep, reply: &Reply) -> Result<Event, Error> {
        let challenge = reply.lines.first().cloned().unwrap_or_default();
        let Some(scram) = self.scram.as_mut() else {
            return Err(Error::Incomplete);
        };
        if step == AuthStep::ScramServerFirst {
            return match scram.client_final(&challenge) {
                Ok(answer) => self.send(
                    State::Auth(AuthStep::ScramServerFinal),
                    Command::AuthResponse(answer.expose()),
                ),
                Err(e) => self.cancel_auth(Error::Scram(e)),
            };
        }
        match scram.verify_server_final(&challenge) {
            // RFC 4954 section 4: the server's last data comes in a 334,
            // answered with an empty line.
            Ok(()) => {
                self.scram = None;
                self.send(State::Auth(AuthStep::Final), Command::AuthResponse(""))
            }
            Err(e) => self.cancel_auth(Error::Scram(e)),
        }
    }

    fn auth_step(&mut self, step: AuthStep, reply: Reply) -> Result<Event, Error> {
        if reply.code == 235 && matches!(step, AuthStep::Final | AuthStep::TokenError) {
            return self.start_transaction();
        }
        if step == AuthStep::Cancelled {
            self.state = State::Quit;
            return Ok(Event::Send(Flight::of(Command::Quit)?));
        }
        // A 235 that skips the server's SCRAM signature proves nothing.
        if reply.code == 235 && step == AuthStep::ScramServerFinal {
            return self.fail_and_quit(Error::Scram(scram::Error::NotProven));
        }
        let credentials = match &self.config.credentials {
            Some(credentials) if reply.code == 334 => credentials.clone(),
            _ => {
                let mechanism = self.report.auth;
                return self.fail_and_quit(Error::AuthRefused { mechanism, reply });
            }
        };
        let secret = credentials.secret.as_ref().map_or("", Secret::expose);
        let user = credentials.user.as_str();
        match step {
            AuthStep::Initial => {
                let mechanism = self.report.auth.unwrap_or(Mechanism::Plain);
                let response = initial_response(mechanism, user, secret);
                self.send(
                    State::Auth(after_initial(mechanism)),
                    Command::AuthResponse(&response),
                )
            }
            AuthStep::LoginUser => {
                let response = sasl::login_step(user);
                self.send(
                    State::Auth(AuthStep::LoginPassword),
                    Command::AuthResponse(&response),
                )
            }
            AuthStep::LoginPassword => {
                let response = sasl::login_step(secret);
                self.send(
                    State::Auth(AuthStep::Final),
                    Command::AuthResponse(&response),
                )
            }
            AuthStep::CramChallenge => {
                let challenge = reply.lines.first().cloned().unwrap_or_default();
                let Some(response) = sasl::cram_md5_response(user, secret, &challenge) else {
                    return Err(Error::BadChallenge(reply));
                };
                self.send(
                    State::Auth(AuthStep::Final),
                    Command::AuthResponse(&response),
                )
            }
            // The server reports a refused token in a 334 (base64 JSON);
            // the mechanism's answer acknowledges it and the 5xx follows.
            AuthStep::TokenError => {
                let mechanism = self.report.auth.unwrap_or(Mechanism::XOAuth2);
                self.send(
                    State::Auth(AuthStep::Final),
                    Command::AuthResponse(sasl::token_error_answer(mechanism)),
                )
            }
            AuthStep::ScramServerFirst | AuthStep::ScramServerFinal => {
                self.scram_step(step, &reply)
            }
            AuthStep::Final | AuthStep::Cancelled | AuthStep::AwaitSecret(_) => {
                Err(Error::Unexpected {
                    what: "challenge after the last response",
                    reply,
                })
            }
        }
    }

    fn start_transaction(&mut self) -> Result<Event, Error> {
        if self.config.probe {
            // Everything up to a mail transaction worked.
            self.report.accepted = true;
            return self.send(State::Quit, Command::Quit);
        }
        let caps = self.report.capabilities.clone().unwrap_or_default();
        self.started = true;
        if self.config.recipients.is_empty() {
            return Err(Error::NoRecipients);
        }
        if let Some(limit) = caps.size_limit() {
            if self.config.message_size > limit {
                return self.abandon(
                    Error::TooBig {
                        size: self.config.message_size,
                        limit,
                    },
                    false,
                );
            }
        }
        let recipients: Vec<String> = self
            .transaction
            .iter()
            .map(|&i| self.config.recipients[i].clone())
            .collect();
        let non_ascii = std::iter::once(&self.config.from)
            .chain(&recipients)
            .find(|a| !a.is_ascii())
            .cloned();
        if let Some(address) = &non_ascii {
            if !caps.smtputf8 {
                return self.abandon(
                    Error::NeedsSmtpUtf8 {
                        address: address.clone(),
                    },
                    false,
                );
            }
        }
        if self.config.dsn.is_requested() && !caps.dsn {
            // Before MAIL: the message must not go without the notices.
            return self.abandon(Error::DsnNotOffered, false);
        }
        let params = MailParams {
            size: caps.size.map(|_| self.config.message_size),
            eight_bit: self.config.eight_bit && caps.eight_bit_mime,
            smtputf8: non_ascii.is_some(),
            ret: self.config.dsn.ret,
            envid: self.config.dsn.envid.clone(),
        };
        let mail = Command::Mail {
            from: &self.config.from,
            params,
        };
        if !self.pipelining {
            let flight = Flight::of(mail)?;
            self.state = State::Mail;
            return Ok(Event::Send(flight));
        }
        // RFC 2920 section 3.1: MAIL, every RCPT and DATA in one group.
        let mut flight = Flight::default();
        flight.push(mail)?;
        let mut queue = VecDeque::from([Expect::Mail]);
        for (&i, rcpt) in self.transaction.iter().zip(&recipients) {
            flight.push(self.rcpt(rcpt))?;
            queue.push_back(Expect::Rcpt(i));
        }
        flight.push(Command::Data)?;
        queue.push_back(Expect::Data);
        self.state = State::Pipelined(queue);
        Ok(Event::Send(flight))
    }

    fn record_rcpt(&mut self, i: usize, reply: Reply) -> Result<(), Error> {
        let state = match reply.class() {
            2 => RecipientState::Accepted,
            4 => RecipientState::TempFailed,
            5 => RecipientState::PermFailed,
            _ => {
                return Err(Error::Unexpected {
                    what: "reply to RCPT",
                    reply,
                })
            }
        };
        let entry = &mut self.report.recipients[i];
        entry.state = state;
        entry.reply = Some(reply);
        Ok(())
    }

    fn next_rcpt(&mut self, position: usize) -> Result<Event, Error> {
        if let Some(&i) = self.transaction.get(position) {
            let rcpt = self.config.recipients[i].clone();
            let flight = Flight::of(self.rcpt(&rcpt))?;
            self.state = State::Rcpt(position);
            return Ok(Event::Send(flight));
        }
        self.end_envelope()
    }

    /// The RCPT command for `to`, with NOTIFY when asked for.
    fn rcpt<'a>(&'a self, to: &'a str) -> Command<'a> {
        match &self.config.dsn.notify {
            Some(notify) => Command::RcptNotify { to, notify },
            None => Command::Rcpt(to),
        }
    }

    /// Whether a recipient of the current transaction was accepted.
    fn any_accepted_in_transaction(&self) -> bool {
        self.transaction
            .iter()
            .any(|&i| self.report.recipients[i].state == RecipientState::Accepted)
    }

    /// When the server accepted some recipients of this transaction and
    /// said "too many" to others, puts those off to the next transaction.
    fn defer_over_limit(&mut self) {
        if !self.any_accepted_in_transaction() {
            return;
        }
        for &i in &self.transaction {
            let recipient = &mut self.report.recipients[i];
            if recipient.state == RecipientState::TempFailed
                && recipient.reply.as_ref().is_some_and(over_recipient_limit)
            {
                recipient.state = RecipientState::NotTried;
            }
        }
    }

    /// The recipients still waiting for a transaction, in order.
    fn deferred(&self) -> Vec<usize> {
        (0..self.report.recipients.len())
            .filter(|&i| self.report.recipients[i].state == RecipientState::NotTried)
            .collect()
    }

    /// Whether QUIT goes in the same flight as the final dot: with
    /// PIPELINING, when no transaction follows.
    fn quit_follows_dot(&self) -> bool {
        self.pipelining && !self.config.keep_open && self.deferred().is_empty()
    }

    /// Every RCPT of a one-by-one transaction is answered: DATA, or RSET
    /// when a recipient was refused.
    fn end_envelope(&mut self) -> Result<Event, Error> {
        self.defer_over_limit();
        if let Some(err) = self.refused_recipients() {
            self.record(err);
            return self.send(State::Rset, Command::Rset);
        }
        self.send(State::Data, Command::Data)
    }

    /// The failure to report when any recipient was refused (none with
    /// [`ClientConfig::partial`] when some of this transaction's were
    /// accepted).
    fn refused_recipients(&self) -> Option<Error> {
        if self.config.partial && self.any_accepted_in_transaction() {
            return None;
        }
        let refused: Vec<RecipientStatus> = self
            .report
            .recipients
            .iter()
            .filter(|r| {
                matches!(
                    r.state,
                    RecipientState::TempFailed | RecipientState::PermFailed
                )
            })
            .cloned()
            .collect();
        if refused.is_empty() {
            return None;
        }
        let all = refused.len() == self.report.recipients.len();
        Some(Error::RecipientsRefused { refused, all })
    }

    fn after_pipelined_envelope(&mut self) -> Result<Event, Error> {
        let mail = self.mail_reply.clone().expect("MAIL reply recorded");
        let data = self.data_reply.clone().expect("DATA reply recorded");
        let data_open = data.code == 354;
        let abort = "<closing the connection before the final dot so the server discards the \
                     message>"
            .to_string();
        if !mail.is_positive() {
            self.record(failure_for("sender refused (MAIL FROM)", &mail));
            if data_open {
                self.state = State::Closed;
                return Ok(Event::Abort(abort));
            }
            if self.config.keep_open {
                return self.send(State::Rset, Command::Rset);
            }
            return self.send(State::Quit, Command::Quit);
        }
        self.defer_over_limit();
        if let Some(err) = self.refused_recipients() {
            self.record(err);
            if data_open {
                self.state = State::Closed;
                return Ok(Event::Abort(abort));
            }
            return self.send(State::Rset, Command::Rset);
        }
        if !data_open {
            return self.abandon(failure_for("DATA refused", &data), true);
        }
        self.send_message()
    }

    fn send_message(&mut self) -> Result<Event, Error> {
        self.state = State::Message;
        let then = if self.quit_follows_dot() {
            Some(Flight::of(Command::Quit)?)
        } else {
            None
        };
        Ok(Event::SendMessage {
            size: self.config.message_size,
            then,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::proto::smtp::reply::ReplyReader;

    fn config(tls: TlsPolicy) -> ClientConfig {
        ClientConfig {
            helo_name: "client.example".into(),
            tls,
            credentials: None,
            plaintext_auth_allowed: false,
            from: "a@example.org".into(),
            recipients: vec!["b@example.org".into(), "c@example.org".into()],
            message_size: 100,
            eight_bit: false,
            probe: false,
            keep_open: false,
            partial: false,
            dsn: Default::default(),
        }
    }

    fn with_auth(mut c: ClientConfig, mechanism: Option<Mechanism>) -> ClientConfig {
        c.credentials = Some(Credentials {
            user: "tim".into(),
            secret: Some(Secret::new("tanstaaftanstaaf")),
            mechanism,
            token: false,
            client_cert: false,
            nonce: "rOprNGfwEbeRWgbNEkqO".into(),
        });
        c
    }

    /// The SCRAM-SHA-256 exchange of RFC 7677 section 3 (user `user`,
    /// password `pencil`), as SMTP carries it, up to the server's last
    /// message `server_final`; returns the client and the event that
    /// answers it.
    fn scram_session(server_final: &[u8]) -> (Client, Event) {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let mut cfg = config(TlsPolicy::Plain);
        cfg.plaintext_auth_allowed = true;
        cfg.credentials = Some(Credentials {
            user: "user".into(),
            secret: Some(Secret::new("pencil")),
            mechanism: None,
            token: false,
            client_cert: false,
            nonce: "rOprNGfwEbeRWgbNEkqO".into(),
        });
        let mut c = Client::new(cfg);
        c.on_reply(reply(b"220 hi\r\n"));
        let e = c.on_reply(reply(
            b"250-mx.example\r\n250-AUTH PLAIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256\r\n250 OK\r\n",
        ));
        let first = format!(
            "AUTH SCRAM-SHA-256 {}\r\n",
            b64("n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
        );
        assert_eq!(String::from_utf8(wire(&e)).unwrap(), first);
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let e = c.on_reply(reply(format!("334 {}\r\n", b64(server_first)).as_bytes()));
        let client_final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        match &e {
            Event::Send(f) => {
                assert_eq!(f.wire, format!("{}\r\n", b64(client_final)).into_bytes());
                assert_eq!(f.log, vec!["<redacted>"]);
            }
            other => panic!("{other:?}"),
        }
        let e = c.on_reply(reply(server_final));
        (c, e)
    }

    /// RFC 7677's SCRAM-SHA-256 exchange over implicit TLS whose channel
    /// binding is the bytes 0x00..0x1f, with `offered` in EHLO: returns
    /// the decoded client-first and client-final messages, and the outcome
    /// once the server sent `server_final` (decoded) and 235.
    fn bound_scram(offered: &str, server_final: &str) -> (String, String, Result<(), Error>) {
        use base64::Engine;
        let engine = base64::engine::general_purpose::STANDARD;
        let decoded = |e: &Event| String::from_utf8(engine.decode(wire(e).trim_ascii()).unwrap());
        let mut cfg = with_auth(config(TlsPolicy::Implicit), None);
        cfg.probe = true;
        let credentials = cfg.credentials.as_mut().unwrap();
        credentials.user = "user".into();
        credentials.secret = Some(Secret::new("pencil"));
        let mut c = Client::new(cfg);
        c.set_channel_binding(Some((0u8..32).collect()));
        c.on_reply(reply(b"220 hi\r\n"));
        let e = c.on_reply(reply(
            format!("250-mx\r\n250 AUTH {offered}\r\n").as_bytes(),
        ));
        let first = String::from_utf8(wire(&e)).unwrap();
        let first = first.rsplit(' ').next().unwrap().trim_end();
        let first = String::from_utf8(engine.decode(first).unwrap()).unwrap();
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let e = c.on_reply(reply(
            format!("334 {}\r\n", engine.encode(server_first)).as_bytes(),
        ));
        let client_final = decoded(&e).unwrap();
        let e = c.on_reply(reply(
            format!("334 {}\r\n", engine.encode(server_final)).as_bytes(),
        ));
        if wire(&e) == b"\r\n" {
            c.on_reply(reply(b"235 2.7.0 ok\r\n"));
            c.on_reply(reply(b"221 bye\r\n"));
        } else {
            c.on_reply(reply(b"501 cancelled\r\n"));
            c.on_reply(reply(b"221 bye\r\n"));
        }
        let outcome = c.finish().map(|_| ()).map_err(|failed| failed.0);
        (first, client_final, outcome)
    }

    /// Over TLS, `auto` prefers SCRAM-SHA-256-PLUS: the GS2 header and the
    /// channel binding enter the proof (computed independently), and the
    /// server's signature covers them.
    #[test]
    fn scram_plus_is_preferred_over_tls_and_binds_the_channel() {
        let (first, client_final, outcome) = bound_scram(
            "SCRAM-SHA-256 SCRAM-SHA-256-PLUS PLAIN",
            "v=RwppMGddhz/J0lFYaRReBjXcQeNUFP5Qc76Lo5Exrig=",
        );
        assert_eq!(
            first,
            "p=tls-server-end-point,,n=user,r=rOprNGfwEbeRWgbNEkqO"
        );
        assert_eq!(
            client_final,
            "c=cD10bHMtc2VydmVyLWVuZC1wb2ludCwsAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,\
             r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=nY1Wus9a+gM2DrbQ1msXFgyhW6KM5ktOxWiU+/P/EGY="
        );
        outcome.unwrap();
        // The signature of the unbound exchange does not do.
        let (_, _, outcome) = bound_scram(
            "SCRAM-SHA-256-PLUS",
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
        );
        assert_eq!(outcome.unwrap_err(), Error::Scram(scram::Error::NotProven));
    }

    /// A server that offers only SCRAM-SHA-256 over TLS gets `y,,`: the
    /// client could bind, so a server that does support -PLUS (its offer
    /// stripped by a man in the middle) sees the downgrade.
    #[test]
    fn scram_without_plus_over_tls_says_it_could_bind() {
        let (first, client_final, outcome) = bound_scram(
            "SCRAM-SHA-256 PLAIN",
            "v=dI4KpiQJwBr1+V+K6U1dA6l6I4I9DUNXWND4pcpRU3U=",
        );
        assert_eq!(first, "y,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        assert_eq!(
            client_final,
            "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=FoqiHTtQEDE8lz1CdaEe3tK4mS+iMDTl77SPyDS53DY="
        );
        outcome.unwrap();
    }

    /// -PLUS asked for on a session with nothing to bind to fails before
    /// AUTH; `auto` then never picks it.
    #[test]
    fn scram_plus_needs_a_channel_binding() {
        let mut cfg = with_auth(
            config(TlsPolicy::Implicit),
            Some(Mechanism::ScramSha256Plus),
        );
        cfg.probe = true;
        let server = b"220 mx\r\n250-mx\r\n250 AUTH SCRAM-SHA-256-PLUS\r\n221 bye\r\n";
        let (sent, outcome) = chunked_session(cfg.clone(), server, server.len());
        assert_eq!(sent, b"EHLO client.example\r\nQUIT\r\n");
        assert!(outcome.contains("SCRAM -PLUS needs"), "{outcome}");
        cfg.credentials.as_mut().unwrap().mechanism = None;
        let server = b"220 mx\r\n250-mx\r\n250 AUTH SCRAM-SHA-256-PLUS SCRAM-SHA-1\r\n";
        let mut c = Client::new(cfg);
        c.on_reply(reply(b"220 mx\r\n"));
        let e = c.on_reply(reply(&server[8..]));
        assert!(wire(&e).starts_with(b"AUTH SCRAM-SHA-1 "), "{e:?}");
    }

    #[test]
    fn scram_is_preferred_and_the_server_signature_checked() {
        let (mut c, e) = scram_session(
            b"334 dj02cnJpVFJCaTIzV3BSUi93dHVwK21NaFVaVW4vZEI1bkxUSlJzamw5NUc0PQ==\r\n",
        );
        assert_eq!(wire(&e), b"\r\n");
        let e = c.on_reply(reply(b"235 2.7.0 ok\r\n"));
        assert!(wire(&e).starts_with(b"MAIL FROM:<a@example.org>"));
        assert_eq!(c.report().auth, Some(Mechanism::ScramSha256));
    }

    #[test]
    fn a_wrong_scram_signature_cancels_and_fails() {
        // The signature of RFC 5802's SHA-1 example: valid base64, wrong.
        let (mut c, e) = scram_session(b"334 dj1ybUY5cHFWOFM3c3VBb1pXamE0ZEpSa0ZzS1E9\r\n");
        assert_eq!(wire(&e), b"*\r\n");
        let e = c.on_reply(reply(b"501 5.7.0 cancelled\r\n"));
        assert_eq!(wire(&e), b"QUIT\r\n");
        assert_eq!(c.on_reply(reply(b"221 bye\r\n")), Event::Close);
        let (err, report) = *c.finish().unwrap_err();
        assert_eq!(err, Error::Scram(scram::Error::NotProven));
        assert!(!report.accepted);
    }

    #[test]
    fn a_235_without_the_scram_signature_proves_nothing() {
        let (mut c, e) = scram_session(b"235 2.7.0 ok\r\n");
        assert_eq!(wire(&e), b"QUIT\r\n");
        c.on_reply(reply(b"221 bye\r\n"));
        let (err, _) = *c.finish().unwrap_err();
        assert_eq!(err, Error::Scram(scram::Error::NotProven));
    }

    fn reply(bytes: &[u8]) -> Reply {
        let mut r = ReplyReader::new();
        r.feed(bytes).unwrap();
        let reply = r.next_reply().expect("a complete reply");
        assert!(r.next_reply().is_none() && !r.has_partial());
        reply
    }

    fn wire(event: &Event) -> Vec<u8> {
        match event {
            Event::Send(f) => f.wire.clone(),
            other => panic!("expected Send, got {other:?}"),
        }
    }

    const EHLO_PLAIN: &[u8] = b"250-mx.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n";
    const EHLO_STARTTLS: &[u8] = b"250-mx.example\r\n250-STARTTLS\r\n250 SIZE\r\n";
    const EHLO_AUTH: &[u8] =
        b"250-mx.example\r\n250-AUTH LOGIN PLAIN CRAM-MD5 XOAUTH2\r\n250 PIPELINING\r\n";

    #[test]
    fn pipelined_session_without_tls() {
        let mut c = Client::new(config(TlsPolicy::Plain));
        let e = c.on_reply(reply(b"220 mx.example ESMTP\r\n"));
        assert_eq!(wire(&e), b"EHLO client.example\r\n");
        let e = c.on_reply(reply(EHLO_PLAIN));
        assert_eq!(
            wire(&e),
            b"MAIL FROM:<a@example.org> SIZE=100\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n"
        );
        assert_eq!(c.on_reply(reply(b"250 2.1.0 ok\r\n")), Event::Wait);
        assert_eq!(c.on_reply(reply(b"250 2.1.5 ok\r\n")), Event::Wait);
        assert_eq!(c.on_reply(reply(b"251 2.1.5 forwarded\r\n")), Event::Wait);
        match c.on_reply(reply(b"354 go ahead\r\n")) {
            Event::SendMessage { size, then } => {
                assert_eq!(size, 100);
                assert_eq!(then.unwrap().wire, b"QUIT\r\n");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            c.on_reply(reply(b"250 2.0.0 Ok: queued as ABC123\r\n")),
            Event::Wait
        );
        assert_eq!(c.on_reply(reply(b"221 2.0.0 bye\r\n")), Event::Close);
        let report = c.finish().unwrap();
        assert!(report.accepted && !report.tls);
        assert_eq!(report.final_reply.unwrap().text(), "Ok: queued as ABC123");
        assert!(report
            .recipients
            .iter()
            .all(|r| r.state == RecipientState::Accepted));
    }

    #[test]
    fn one_by_one_without_pipelining_and_eight_bit() {
        let mut cfg = config(TlsPolicy::Plain);
        cfg.eight_bit = true;
        cfg.recipients.truncate(1);
        let mut c = Client::new(cfg);
        c.on_reply(reply(b"220 hi\r\n"));
        let e = c.on_reply(reply(b"250-mx\r\n250 8BITMIME\r\n"));
        assert_eq!(wire(&e), b"MAIL FROM:<a@example.org> BODY=8BITMIME\r\n");
        let e = c.on_reply(reply(b"250 ok\r\n"));
        assert_eq!(wire(&e), b"RCPT TO:<b@example.org>\r\n");
        let e = c.on_reply(reply(b"250 ok\r\n"));
        assert_eq!(wire(&e), b"DATA\r\n");
        let e = c.on_reply(reply(b"354 go\r\n"));
        assert_eq!(
            e,
            Event::SendMessage {
                size: 100,
                then: None
            }
        );
        let e = c.on_reply(reply(b"250 queued\r\n"));
        assert_eq!(wire(&e), b"QUIT\r\n");
        assert_eq!(c.on_reply(reply(b"221 bye\r\n")), Event::Close);
        assert!(c.finish().unwrap().accepted);
    }

    #[test]
    fn helo_fallback() {
        let mut c = Client::new(config(TlsPolicy::Plain));
        c.on_reply(reply(b"220 old\r\n"));
        let e = c.on_reply(reply(b"502 5.5.2 what?\r\n"));
        assert_eq!(wire(&e), b"HELO client.example\r\n");
        let e = c.on_reply(reply(b"250 old\r\n"));
        assert_eq!(wire(&e), b"MAIL FROM:<a@example.org>\r\n");
    }

    #[test]
    fn helo_fallback_cannot_satisfy_starttls() {
        let mut c = Client::new(config(TlsPolicy::StartTls));
        c.on_reply(reply(b"220 old\r\n"));
        c.on_reply(reply(b"500 what?\r\n"));
        assert_eq!(c.on_reply(reply(b"250 old\r\n")), Event::Close);
        let (err, _) = *c.finish().unwrap_err();
        assert_eq!(err, Error::StartTlsNotOffered);
    }

    #[test]
    fn starttls_then_ehlo_again_then_auth_plain() {
        let mut c = Client::new(with_auth(config(TlsPolicy::StartTls), None));
        c.on_reply(reply(b"220 hi\r\n"));
        let e = c.on_reply(reply(EHLO_STARTTLS));
        assert_eq!(wire(&e), b"STARTTLS\r\n");
        assert_eq!(c.on_reply(reply(b"220 2.0.0 ready\r\n")), Event::StartTls);
        let e = c.tls_established();
        assert_eq!(wire(&e), b"EHLO client.example\r\n");
        let e = c.on_reply(reply(b"250-mx\r\n250-AUTH LOGIN PLAIN\r\n250 SIZE 0\r\n"));
        match &e {
            Event::Send(f) => {
                assert_eq!(f.wire, b"AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n");
                assert_eq!(f.log, vec!["AUTH PLAIN <redacted>"]);
            }
            other => panic!("{other:?}"),
        }
        let e = c.on_reply(reply(b"235 2.7.0 ok\r\n"));
        assert_eq!(wire(&e), b"MAIL FROM:<a@example.org> SIZE=100\r\n");
        assert!(c.report().tls);
        assert_eq!(c.report().auth, Some(Mechanism::Plain));
    }

    #[test]
    fn starttls_missing_fails_before_anything_else() {
        let mut c = Client::new(with_auth(config(TlsPolicy::StartTls), None));
        c.on_reply(reply(b"220 hi\r\n"));
        assert_eq!(c.on_reply(reply(EHLO_PLAIN)), Event::Close);
        let (err, report) = *c.finish().unwrap_err();
        assert_eq!(err, Error::StartTlsNotOffered);
        assert!(err.to_string().contains("STARTTLS"));
        assert!(report.auth.is_none());
    }

    #[test]
    fn plaintext_auth_refused_unless_allowed() {
        let mut c = Client::new(with_auth(config(TlsPolicy::Plain), None));
        c.on_reply(reply(b"220 hi\r\n"));
        assert_eq!(c.on_reply(reply(EHLO_AUTH)), Event::Close);
        let (err, _) = *c.finish().unwrap_err();
        assert_eq!(err, Error::PlaintextAuth);

        let mut cfg = with_auth(config(TlsPolicy::Plain), Some(Mechanism::Login));
        cfg.plaintext_auth_allowed = true;
        let mut c = Client::new(cfg);
        c.on_reply(reply(b"220 hi\r\n"));
        let e = c.on_reply(reply(EHLO_AUTH));
        assert_eq!(wire(&e), b"AUTH LOGIN\r\n");
        let e = c.on_reply(reply(b"334 VXNlcm5hbWU6\r\n"));
        match &e {
            Event::Send(f) => {
                assert_eq!(f.wire, b"dGlt\r\n");
                assert_eq!(f.log, vec!["<redacted>"]);
            }
            other => panic!("{other:?}"),
        }
        let e = c.on_reply(reply(b"334 UGFzc3dvcmQ6\r\n"));
        assert_eq!(wire(&e), b"dGFuc3RhYWZ0YW5zdGFhZg==\r\n");
        let e = c.on_reply(reply(b"535 5.7.8 bad credentials\r\n"));
        assert_eq!(wire(&e), b"QUIT\r\n");
        c.on_reply(reply(b"221 bye\r\n"));
        let (err, _) = *c.finish().unwrap_err();
        assert!(matches!(
            err,
            Error::AuthRefused {
                mechanism: Some(Mechanism::Login),
                ..
            }
        ));
        assert!(err.to_string().contains("535 5.7.8 bad credentials"));
    }

    #[test]
    fn credentials_in_clear_refused_before_connecting() {
        let cfg = with_auth(config(TlsPolicy::Plain), None);
        assert_eq!(
            Client::new(cfg.clone()).refuses_to_start(),
            Some(Error::PlaintextAuth)
        );
        let allowed = ClientConfig {
            plaintext_auth_allowed: true,
            ..cfg
        };
        assert_eq!(Client::new(allowed).refuses_to_start(), None);
        let tls = with_auth(config(TlsPolicy::StartTls), None);
        assert_eq!(Client::new(tls).refuses_to_start(), None);
        assert_eq!(
            Client::new(config(TlsPolicy::Plain)).refuses_to_start(),
            None
        );
    }

    #[test]
    fn auto_picks_cram_md5_and_answers_the_challenge() {
        let mut c = Client::new(with_auth(config(TlsPolicy::Implicit), None));
        c.on_reply(reply(b"220 hi\r\n"));
        let e = c.on_reply(reply(EHLO_AUTH));
        assert_eq!(wire(&e), b"AUTH CRAM-MD5\r\n");
        let e = c.on_reply(reply(
            b"334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n",
        ));
        assert_eq!(
            wire(&e),
            b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n"
        );
        let e = c.on_reply(reply(b"235 ok\r\n"));
        assert!(wire(&e).starts_with(b"MAIL FROM:<a@example.org>\r\nRCPT TO:"));
        let mut c = Client::new(with_auth(config(TlsPolicy::Implicit), None));
        c.on_reply(reply(b"220 hi\r\n"));
        c.on_reply(reply(EHLO_AUTH));
        assert_eq!(c.on_reply(reply(b"334 !!!notbase64\r\n")), Event::Close);
        assert!(matches!(c.finish().unwrap_err().0, Error::BadChallenge(_)));
    }

    #[test]
    fn xoauth2_error_is_acknowledged() {
        let mut c = Client::new(with_auth(
            config(TlsPolicy::Implicit),
            Some(Mechanism::XOAuth2),
        ));
        c.on_reply(reply(b"220 hi\r\n"));
        let e = c.on_reply(reply(EHLO_AUTH));
        assert!(wire(&e).starts_with(b"AUTH XOAUTH2 dXNlcj10aW0B"));
        let e = c.on_reply(reply(b"334 eyJzdGF0dXMiOiI0MDEifQ==\r\n"));
        assert_eq!(wire(&e), b"\r\n");
        let e = c.on_reply(reply(b"535 5.7.8 invalid token\r\n"));
        assert_eq!(wire(&e), b"QUIT\r\n");
        assert!(matches!(
            c.finish().unwrap_err().0,
            Error::AuthRefused { .. }
        ));
    }

    /// A token with no mechanism asked for goes with OAUTHBEARER when the
    /// server offers it; a refused token's error report (RFC 7628 section
    /// 3.2.2) is answered with a single 0x01 and the 535 follows.
    #[test]
    fn token_prefers_oauthbearer_and_acknowledges_its_error() {
        let mut cfg = with_auth(config(TlsPolicy::Implicit), None);
        cfg.credentials.as_mut().unwrap().token = true;
        let mut c = Client::new(cfg.clone());
        c.on_reply(reply(b"220 hi\r\n"));
        let e = c.on_reply(reply(
            b"250-mx\r\n250-AUTH PLAIN XOAUTH2 OAUTHBEARER SCRAM-SHA-256\r\n250 OK\r\n",
        ));
        let expected = format!(
            "AUTH OAUTHBEARER {}\r\n",
            sasl::oauthbearer_response("tim", "tanstaaftanstaaf")
        );
        assert_eq!(wire(&e), expected.as_bytes());
        let error = b"334 eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=\r\n";
        assert_eq!(wire(&c.on_reply(reply(error))), b"AQ==\r\n");
        assert_eq!(
            wire(&c.on_reply(reply(b"535 5.7.8 invalid token\r\n"))),
            b"QUIT\r\n"
        );
        let failed = c.finish().unwrap_err().0;
        assert!(matches!(
            failed,
            Error::AuthRefused {
                mechanism: Some(Mechanism::OAuthBearer),
                ..
            }
        ));

        // Without OAUTHBEARER, XOAUTH2; never a password mechanism.
        let mut c = Client::new(cfg.clone());
        c.on_reply(reply(b"220 hi\r\n"));
        let e = c.on_reply(reply(b"250-mx\r\n250 AUTH PLAIN XOAUTH2\r\n"));
        assert!(wire(&e).starts_with(b"AUTH XOAUTH2 "));
        let mut c = Client::new(cfg);
        c.on_reply(reply(b"220 hi\r\n"));
        c.on_reply(reply(b"250-mx\r\n250 AUTH PLAIN LOGIN\r\n"));
        assert!(matches!(
            c.finish().unwrap_err().0,
            Error::NoUsableMechanism { .. }
        ));
    }

    /// Runs a client against the server's bytes fed `chunk` at a time:
    /// what the client sent, and how the session ended.
    fn chunked_session(cfg: ClientConfig, server: &[u8], chunk: usize) -> (Vec<u8>, String) {
        let mut client = Client::new(cfg);
        let mut reader = ReplyReader::new();
        let (mut sent, mut rest) = (Vec::new(), server);
        let mut asked = "";
        loop {
            let Some(reply) = reader.next_reply() else {
                assert!(!rest.is_empty(), "the server script ended");
                let take = chunk.min(rest.len());
                reader.feed(&rest[..take]).expect("well-formed replies");
                rest = &rest[take..];
                continue;
            };
            let mut event = client.on_reply(reply);
            if event == Event::NeedSecret {
                asked = ", password asked";
                event = client.provide_secret(Secret::new("tanstaaftanstaaf"));
            }
            match event {
                Event::Send(flight) => sent.extend_from_slice(&flight.wire),
                Event::Wait => {}
                Event::Close | Event::Abort(_) => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(rest.is_empty() && !reader.has_partial());
        let outcome = match client.finish() {
            Ok(report) => format!("ok {:?}{asked}", report.auth),
            Err(failed) => format!("{}{asked}", failed.0),
        };
        (sent, outcome)
    }

    /// The OAUTHBEARER error dance of RFC 7628 section 3.2.2 as Postfix
    /// (through Dovecot) performs it, the server's bytes in every chunk
    /// size; then a probe the token passes.
    #[test]
    fn oauthbearer_transcript_in_every_chunk_size() {
        let mut cfg = with_auth(config(TlsPolicy::Implicit), None);
        cfg.credentials.as_mut().unwrap().token = true;
        let refused: &[u8] = b"220 mx ESMTP\r\n250-mx\r\n250-AUTH PLAIN OAUTHBEARER XOAUTH2\r\n\
            250 CHUNKING\r\n334 eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=\r\n\
            535 5.7.8 Error: authentication failed\r\n221 2.0.0 Bye\r\n";
        let expected = format!(
            "EHLO client.example\r\nAUTH OAUTHBEARER {}\r\nAQ==\r\nQUIT\r\n",
            sasl::oauthbearer_response("tim", "tanstaaftanstaaf")
        );
        for chunk in 1..=refused.len() {
            let (sent, outcome) = chunked_session(cfg.clone(), refused, chunk);
            assert_eq!(String::from_utf8(sent).unwrap(), expected, "chunk {chunk}");
            assert!(outcome.contains("535"), "chunk {chunk}: {outcome}");
        }
        cfg.probe = true;
        let accepted: &[u8] = b"220 mx ESMTP\r\n250-mx\r\n250 AUTH OAUTHBEARER\r\n\
            235 2.7.0 ok\r\n221 2.0.0 Bye\r\n";
        for chunk in 1..=accepted.len() {
            let (_, outcome) = chunked_session(cfg.clone(), accepted, chunk);
            assert_eq!(outcome, "ok Some(OAuthBearer)", "chunk {chunk}");
        }
    }

    /// Credentials whose password is not obtained yet, with or without a
    /// client certificate.
    fn deferred_auth(
        mut c: ClientConfig,
        mechanism: Option<Mechanism>,
        cert: bool,
    ) -> ClientConfig {
        c = with_auth(c, mechanism);
        let credentials = c.credentials.as_mut().unwrap();
        credentials.secret = None;
        credentials.client_cert = cert;
        c
    }

    /// With a client certificate, `auto` sends AUTH EXTERNAL with the empty
    /// initial response and never asks for the password; the server's bytes
    /// in every chunk size. A refusal is an authentication failure.
    #[test]
    fn external_with_a_client_certificate_needs_no_password() {
        let mut cfg = deferred_auth(config(TlsPolicy::Implicit), None, true);
        cfg.probe = true;
        let accepted: &[u8] = b"220 mx ESMTP\r\n250-mx\r\n\
            250 AUTH SCRAM-SHA-256 PLAIN EXTERNAL\r\n235 2.7.0 ok\r\n221 2.0.0 Bye\r\n";
        let refused: &[u8] = b"220 mx ESMTP\r\n250-mx\r\n250 AUTH EXTERNAL\r\n\
            535 5.7.8 no identity\r\n221 2.0.0 Bye\r\n";
        let expected = "EHLO client.example\r\nAUTH EXTERNAL =\r\nQUIT\r\n";
        for chunk in 1..=accepted.len() {
            let (sent, outcome) = chunked_session(cfg.clone(), accepted, chunk);
            assert_eq!(String::from_utf8(sent).unwrap(), expected, "chunk {chunk}");
            assert_eq!(outcome, "ok Some(External)", "chunk {chunk}");
        }
        for chunk in 1..=refused.len() {
            let (sent, outcome) = chunked_session(cfg.clone(), refused, chunk);
            assert_eq!(String::from_utf8(sent).unwrap(), expected, "chunk {chunk}");
            assert!(outcome.contains("535") && !outcome.contains("password asked"));
        }
    }

    /// Without a certificate `auto` never picks EXTERNAL; with one but no
    /// EXTERNAL offered, the password is asked for only then. EXTERNAL
    /// asked for but not offered fails before anything is sent.
    #[test]
    fn external_only_with_a_certificate_and_when_offered() {
        let script: &[u8] = b"220 mx\r\n250-mx\r\n250 AUTH EXTERNAL PLAIN\r\n\
            235 ok\r\n221 Bye\r\n";
        let plain = format!(
            "EHLO client.example\r\nAUTH PLAIN {}\r\nQUIT\r\n",
            sasl::plain_response("tim", "tanstaaftanstaaf")
        );
        let no_external: &[u8] = b"220 mx\r\n250-mx\r\n250 AUTH PLAIN\r\n235 ok\r\n221 Bye\r\n";
        /// Server script, certificate, mechanism asked for, bytes sent, outcome.
        type Case<'a> = (&'a [u8], bool, Option<Mechanism>, &'a str, &'a str);
        let cases: [Case<'_>; 4] = [
            (
                script,
                false,
                None,
                &plain,
                "ok Some(Plain), password asked",
            ),
            (
                no_external,
                true,
                None,
                &plain,
                "ok Some(Plain), password asked",
            ),
            (
                script,
                true,
                Some(Mechanism::External),
                "EHLO client.example\r\nAUTH EXTERNAL =\r\nQUIT\r\n",
                "ok Some(External)",
            ),
            (
                b"220 mx\r\n250-mx\r\n250 AUTH PLAIN\r\n221 Bye\r\n",
                true,
                Some(Mechanism::External),
                "EHLO client.example\r\nQUIT\r\n",
                "the server does not offer AUTH EXTERNAL",
            ),
        ];
        for (server, cert, mechanism, sent_expected, outcome_expected) in cases {
            let mut cfg = deferred_auth(config(TlsPolicy::Implicit), mechanism, cert);
            cfg.probe = true;
            for chunk in [1, 7, server.len()] {
                let (sent, outcome) = chunked_session(cfg.clone(), server, chunk);
                assert_eq!(String::from_utf8(sent).unwrap(), sent_expected);
                assert!(outcome.starts_with(outcome_expected), "{outcome}");
            }
        }
    }

    /// RFC 4954 section 4: an initial response that would make the AUTH
    /// command longer than 512 octets waits for the server's empty 334.
    #[test]
    fn long_token_is_sent_after_the_empty_challenge() {
        let mut cfg = with_auth(config(TlsPolicy::Implicit), Some(Mechanism::XOAuth2));
        let token = "t".repeat(1500);
        cfg.credentials.as_mut().unwrap().secret = Some(Secret::new(token.as_str()));
        let mut c = Client::new(cfg);
        c.on_reply(reply(b"220 hi\r\n"));
        let e = c.on_reply(reply(EHLO_AUTH));
        assert_eq!(wire(&e), b"AUTH XOAUTH2\r\n");
        let e = c.on_reply(reply(b"334 \r\n"));
        let expected = format!("{}\r\n", sasl::xoauth2_response("tim", &token));
        match &e {
            Event::Send(f) => {
                assert_eq!(f.wire, expected.as_bytes());
                assert_eq!(f.log, vec!["<redacted>"]);
            }
            other => panic!("{other:?}"),
        }
        // An error report still gets its empty acknowledgement.
        assert_eq!(wire(&c.on_reply(reply(b"334 eyJ9\r\n"))), b"\r\n");
        c.on_reply(reply(b"535 5.7.8 invalid token\r\n"));
        assert!(matches!(
            c.finish().unwrap_err().0,
            Error::AuthRefused { .. }
        ));

        // A short PLAIN response still goes with the command.
        let mut c = Client::new(with_auth(
            config(TlsPolicy::Implicit),
            Some(Mechanism::Plain),
        ));
        c.on_reply(reply(b"220 hi\r\n"));
        assert!(wire(&c.on_reply(reply(EHLO_AUTH))).starts_with(b"AUTH PLAIN AHRpbQB0"));
    }

    /// A server that wants AUTH from a client without credentials: 77, so
    /// a script knows to supply them rather than give up on the mail.
    #[test]
    fn authentication_required_is_77() {
        let mut c = Client::new(config(TlsPolicy::Plain));
        c.on_reply(reply(b"220 hi\r\n"));
        c.on_reply(reply(EHLO_PLAIN));
        c.on_reply(reply(b"530 5.7.0 Authentication required\r\n"));
        c.on_reply(reply(b"503 5.5.1 need MAIL\r\n"));
        c.on_reply(reply(b"503 5.5.1 need MAIL\r\n"));
        c.on_reply(reply(b"503 5.5.1 need MAIL\r\n"));
        let (err, _) = *c.finish().unwrap_err();
        assert!(
            matches!(&err, Error::Refused { reply, .. } if reply.code == 530),
            "{err}"
        );
        assert!(err
            .to_string()
            .contains("530 5.7.0 Authentication required"));
    }

    #[test]
    fn mechanism_not_offered() {
        let mut c = Client::new(with_auth(
            config(TlsPolicy::Implicit),
            Some(Mechanism::CramMd5),
        ));
        c.on_reply(reply(b"220 hi\r\n"));
        let e = c.on_reply(reply(b"250-mx\r\n250 AUTH PLAIN\r\n"));
        assert_eq!(wire(&e), b"QUIT\r\n");
        let (err, _) = *c.finish().unwrap_err();
        assert!(matches!(err, Error::MechanismNotOffered { .. }));
        assert!(err.to_string().contains("offers: PLAIN"));
    }

    #[test]
    fn one_recipient_refused_without_pipelining_resets() {
        let mut c = Client::new(config(TlsPolicy::Plain));
        c.on_reply(reply(b"220 hi\r\n"));
        c.on_reply(reply(b"250 mx\r\n"));
        c.on_reply(reply(b"250 ok\r\n"));
        let e = c.on_reply(reply(b"550 5.1.1 no such user\r\n"));
        assert_eq!(wire(&e), b"RCPT TO:<c@example.org>\r\n");
        let e = c.on_reply(reply(b"250 ok\r\n"));
        assert_eq!(wire(&e), b"RSET\r\n");
        let e = c.on_reply(reply(b"250 reset\r\n"));
        assert_eq!(wire(&e), b"QUIT\r\n");
        assert_eq!(c.on_reply(reply(b"221 bye\r\n")), Event::Close);
        let (err, report) = *c.finish().unwrap_err();
        assert!(
            matches!(&err, Error::RecipientsRefused { all: false, refused } if Error::any_permanent(refused))
        );
        assert!(err
            .to_string()
            .contains("<b@example.org>: 550 5.1.1 no such user"));
        assert_eq!(report.recipients[0].state, RecipientState::PermFailed);
        assert_eq!(report.recipients[1].state, RecipientState::Accepted);
        assert!(!report.accepted);
    }

    #[test]
    fn refused_recipient_with_pipelining_aborts_before_the_dot() {
        let mut c = Client::new(config(TlsPolicy::Plain));
        c.on_reply(reply(b"220 hi\r\n"));
        c.on_reply(reply(EHLO_PLAIN));
        c.on_reply(reply(b"250 ok\r\n"));
        c.on_reply(reply(b"250 ok\r\n"));
        c.on_reply(reply(b"450 4.2.0 greylisted\r\n"));
        assert!(matches!(c.on_reply(reply(b"354 go\r\n")), Event::Abort(_)));
        let (err, _) = *c.finish().unwrap_err();
        assert!(
            matches!(&err, Error::RecipientsRefused { all: false, refused } if !Error::any_permanent(refused))
        );
    }

    #[test]
    fn every_recipient_refused_with_pipelining() {
        let mut c = Client::new(config(TlsPolicy::Plain));
        c.on_reply(reply(b"220 hi\r\n"));
        c.on_reply(reply(EHLO_PLAIN));
        c.on_reply(reply(b"250 ok\r\n"));
        c.on_reply(reply(b"550 5.1.1 unknown\r\n"));
        c.on_reply(reply(b"550 5.1.1 unknown\r\n"));
        let e = c.on_reply(reply(b"554 5.5.1 no valid recipients\r\n"));
        assert_eq!(wire(&e), b"RSET\r\n");
        c.on_reply(reply(b"250 ok\r\n"));
        c.on_reply(reply(b"221 bye\r\n"));
        let (err, report) = *c.finish().unwrap_err();
        assert!(matches!(err, Error::RecipientsRefused { all: true, .. }));
        assert!(err.to_string().contains("<c@example.org>"));
        assert!(report
            .recipients
            .iter()
            .all(|r| r.state == RecipientState::PermFailed));
    }

    #[test]
    fn size_checked_before_mail() {
        let mut cfg = config(TlsPolicy::Plain);
        cfg.message_size = 1001;
        let mut c = Client::new(cfg);
        c.on_reply(reply(b"220 hi\r\n"));
        let e = c.on_reply(reply(EHLO_PLAIN));
        assert_eq!(wire(&e), b"QUIT\r\n");
        let (err, _) = *c.finish().unwrap_err();
        assert!(matches!(
            err,
            Error::TooBig {
                size: 1001,
                limit: 1000
            }
        ));
        assert!(err.to_string().contains("at most 1000"));
    }

    #[test]
    fn failures_after_the_dot_and_greeting() {
        for (final_reply, exit) in [
            (&b"451 4.3.0 try later\r\n"[..], 4),
            (b"554 5.7.1 spam\r\n", 5),
        ] {
            let mut c = Client::new(config(TlsPolicy::Plain));
            c.on_reply(reply(b"220 hi\r\n"));
            c.on_reply(reply(b"250 mx\r\n"));
            c.on_reply(reply(b"250 ok\r\n"));
            c.on_reply(reply(b"250 ok\r\n"));
            c.on_reply(reply(b"250 ok\r\n"));
            c.on_reply(reply(b"354 go\r\n"));
            let e = c.on_reply(reply(final_reply));
            assert_eq!(wire(&e), b"QUIT\r\n");
            let (err, report) = *c.finish().unwrap_err();
            assert!(matches!(&err, Error::Refused { reply, .. } if reply.class() == exit));
            assert!(!report.accepted);
        }
        let mut c = Client::new(config(TlsPolicy::Plain));
        assert_eq!(c.on_reply(reply(b"421 busy\r\n")), Event::Close);
        assert!(
            matches!(c.finish().unwrap_err().0, Error::Refused { reply, .. } if reply.code == 421)
        );
        let mut c = Client::new(config(TlsPolicy::Plain));
        assert_eq!(wire(&c.on_reply(reply(b"554 go away\r\n"))), b"QUIT\r\n");
        assert!(
            matches!(c.finish().unwrap_err().0, Error::Refused { reply, .. } if reply.code == 554)
        );
        let mut c = Client::new(config(TlsPolicy::Plain));
        assert_eq!(c.on_reply(reply(b"250 huh\r\n")), Event::Close);
        assert!(matches!(
            c.finish().unwrap_err().0,
            Error::Unexpected { .. }
        ));
    }

    #[test]
    fn lost_connection_is_temporary_unless_only_quit_was_pending() {
        let mut c = Client::new(config(TlsPolicy::Plain));
        c.on_reply(reply(b"220 hi\r\n"));
        assert!(c.connection_lost());
        assert_eq!(c.finish().unwrap_err().0, Error::ConnectionLost);

        let mut c = Client::new(config(TlsPolicy::Plain));
        c.on_reply(reply(b"220 hi\r\n"));
        c.on_reply(reply(EHLO_PLAIN));
        for r in [
            &b"250 ok\r\n"[..],
            b"250 ok\r\n",
            b"250 ok\r\n",
            b"354 go\r\n",
        ] {
            c.on_reply(reply(r));
        }
        assert_eq!(c.on_reply(reply(b"250 queued\r\n")), Event::Wait);
        assert!(c.is_finishing());
        assert!(!c.connection_lost());
        assert!(c.finish().unwrap().accepted);
    }

    /// Whatever the server answers, in any order, the machine neither
    /// panics nor claims success without a positive reply to the final dot.
    #[test]
    fn random_replies_never_panic() {
        let codes: [&[u8]; 14] = [
            b"220 hi\r\n",
            b"221 bye\r\n",
            b"235 ok\r\n",
            b"250-mx\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN CRAM-MD5\r\n",
            b"250 ok\r\n",
            b"251 forwarded\r\n",
            b"334 VXNlcm5hbWU6\r\n",
            b"334 !!!\r\n",
            b"354 go\r\n",
            b"421 closing\r\n",
            b"450 later\r\n",
            b"500 what\r\n",
            b"535 no\r\n",
            b"554 no\r\n",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..3000 {
            let tls = [TlsPolicy::Plain, TlsPolicy::StartTls, TlsPolicy::Implicit][round % 3];
            let mut cfg = config(tls);
            if round % 2 == 0 {
                cfg = with_auth(cfg, None);
                cfg.plaintext_auth_allowed = round % 4 == 0;
            }
            let mut c = Client::new(cfg);
            let mut positive_after_dot = false;
            let mut awaiting_dot_reply = false;
            for _ in 0..40 {
                let r = reply(codes[(next() % codes.len() as u64) as usize]);
                let positive = r.is_positive();
                let event = c.on_reply(r);
                if awaiting_dot_reply {
                    positive_after_dot |= positive;
                    awaiting_dot_reply = false;
                }
                match event {
                    Event::Close | Event::Abort(_) | Event::Idle | Event::NeedSecret => break,
                    Event::StartTls => {
                        c.tls_established();
                    }
                    Event::SendMessage { .. } => awaiting_dot_reply = true,
                    Event::Send(_) | Event::Wait => {}
                }
            }
            if let Ok(report) = c.finish() {
                assert!(report.accepted && positive_after_dot, "round {round}");
            }
        }
    }

    #[test]
    fn probe_stops_after_authentication() {
        let mut cfg = with_auth(config(TlsPolicy::StartTls), None);
        cfg.probe = true;
        cfg.recipients.clear();
        let mut c = Client::new(cfg);
        c.on_reply(reply(b"220 hi\r\n"));
        c.on_reply(reply(EHLO_STARTTLS));
        assert_eq!(c.on_reply(reply(b"220 go\r\n")), Event::StartTls);
        c.tls_established();
        let e = c.on_reply(reply(b"250-mx\r\n250 AUTH PLAIN\r\n"));
        assert!(wire(&e).starts_with(b"AUTH PLAIN "));
        assert_eq!(wire(&c.on_reply(reply(b"235 ok\r\n"))), b"QUIT\r\n");
        assert_eq!(c.on_reply(reply(b"221 bye\r\n")), Event::Close);
        let report = c.finish().unwrap();
        assert!(report.accepted && report.tls);
        assert_eq!(report.auth, Some(Mechanism::Plain));
    }

    #[test]
    fn smtputf8_needed_for_non_ascii_addresses() {
        let mut cfg = config(TlsPolicy::Plain);
        cfg.recipients = vec!["用户@例子.广告".into()];
        let mut c = Client::new(cfg.clone());
        c.on_reply(reply(b"220 hi\r\n"));
        assert_eq!(wire(&c.on_reply(reply(b"250 mx\r\n"))), b"QUIT\r\n");
        assert!(matches!(
            c.finish().unwrap_err().0,
            Error::NeedsSmtpUtf8 { .. }
        ));
        let mut c = Client::new(cfg);
        c.on_reply(reply(b"220 hi\r\n"));
        let e = c.on_reply(reply(b"250-mx\r\n250 SMTPUTF8\r\n"));
        assert_eq!(wire(&e), b"MAIL FROM:<a@example.org> SMTPUTF8\r\n");
    }

    fn recipients(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("r{i}@example.org")).collect()
    }

    /// Answers a pipelined envelope like a server taking `limit`
    /// recipients per transaction; returns the RCPTs it saw.
    fn answer_limited_flight(c: &mut Client, flight: &[u8], limit: usize) -> Vec<String> {
        let text = String::from_utf8(flight.to_vec()).unwrap();
        let rcpts: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("RCPT TO:<"))
            .map(|l| l.trim_end_matches('>').to_string())
            .collect();
        assert!(text.starts_with("MAIL FROM:") && text.ends_with("DATA\r\n"));
        assert_eq!(c.on_reply(reply(b"250 2.1.0 ok\r\n")), Event::Wait);
        for i in 0..rcpts.len() {
            let r: &[u8] = if i < limit {
                b"250 2.1.5 ok\r\n"
            } else {
                b"452 4.5.3 Error: too many recipients\r\n"
            };
            assert_eq!(c.on_reply(reply(r)), Event::Wait);
        }
        rcpts
    }

    /// A server taking 2 recipients per transaction: 5 recipients go out
    /// in 3 pipelined transactions, each recipient once, QUIT after the
    /// last dot only.
    #[test]
    fn too_many_recipients_means_further_transactions() {
        let mut cfg = config(TlsPolicy::Plain);
        cfg.recipients = recipients(5);
        let mut c = Client::new(cfg);
        c.on_reply(reply(b"220 mx\r\n"));
        let mut event = c.on_reply(reply(EHLO_PLAIN));
        let mut seen = Vec::new();
        for round in 0..3 {
            let rcpts = answer_limited_flight(&mut c, &wire(&event), 2);
            assert_eq!(rcpts.len(), 5 - 2 * round);
            seen.extend(rcpts.into_iter().take(2));
            let last = round == 2;
            match c.on_reply(reply(b"354 go\r\n")) {
                Event::SendMessage { then, .. } => assert_eq!(then.is_some(), last),
                other => panic!("{other:?}"),
            }
            event = c.on_reply(reply(b"250 2.0.0 queued\r\n"));
            if last {
                assert_eq!(event, Event::Wait);
            }
        }
        assert_eq!(seen, recipients(5));
        assert_eq!(c.on_reply(reply(b"221 bye\r\n")), Event::Close);
        let report = c.finish().unwrap();
        assert!(report.accepted);
        assert!(report.recipients.iter().all(|r| r.delivered));
    }

    /// Without PIPELINING, RCPTs stop at the first "too many"; DATA
    /// follows; the rest go in the next transaction.
    #[test]
    fn too_many_recipients_one_by_one() {
        let mut cfg = config(TlsPolicy::Plain);
        cfg.recipients = recipients(3);
        let mut c = Client::new(cfg);
        c.on_reply(reply(b"220 mx\r\n"));
        assert_eq!(
            wire(&c.on_reply(reply(b"250 mx\r\n"))),
            b"MAIL FROM:<a@example.org>\r\n"
        );
        let steps: [(&[u8], &[u8]); 4] = [
            (b"250 ok\r\n", b"RCPT TO:<r1@example.org>\r\n"),
            (b"250 ok\r\n", b"RCPT TO:<r2@example.org>\r\n"),
            (b"452 too many recipients\r\n", b"DATA\r\n"),
            (b"354 go\r\n", b""),
        ];
        for (answer, expected) in steps {
            let e = c.on_reply(reply(answer));
            if expected.is_empty() {
                assert!(matches!(e, Event::SendMessage { then: None, .. }));
            } else {
                assert_eq!(wire(&e), expected);
            }
        }
        assert_eq!(
            wire(&c.on_reply(reply(b"250 queued\r\n"))),
            b"MAIL FROM:<a@example.org>\r\n"
        );
        assert_eq!(
            wire(&c.on_reply(reply(b"250 ok\r\n"))),
            b"RCPT TO:<r2@example.org>\r\n"
        );
        assert_eq!(
            wire(&c.on_reply(reply(b"250 ok\r\n"))),
            b"RCPT TO:<r3@example.org>\r\n"
        );
    }

    /// A 452 that is not about the number of recipients, or one with no
    /// recipient accepted, still refuses the message as before.
    #[test]
    fn other_temporary_refusals_still_abort() {
        for (first, second) in [
            (
                &b"250 ok\r\n"[..],
                &b"452 4.3.1 Insufficient system storage\r\n"[..],
            ),
            (
                b"452 4.5.3 too many recipients\r\n",
                b"452 4.5.3 too many recipients\r\n",
            ),
            (b"250 ok\r\n", b"450 4.2.1 mailbox busy\r\n"),
        ] {
            let mut c = Client::new(config(TlsPolicy::Plain));
            c.on_reply(reply(b"220 mx\r\n"));
            c.on_reply(reply(EHLO_PLAIN));
            c.on_reply(reply(b"250 ok\r\n"));
            c.on_reply(reply(first));
            c.on_reply(reply(second));
            assert_eq!(
                c.on_reply(reply(b"554 no valid recipients\r\n")),
                Event::Send(Flight::of(Command::Rset).unwrap())
            );
            c.on_reply(reply(b"250 ok\r\n"));
            c.on_reply(reply(b"221 bye\r\n"));
            let (err, report) = *c.finish().unwrap_err();
            assert!(matches!(err, Error::RecipientsRefused { .. }), "{err:?}");
            assert!(!report.recipients.iter().any(|r| r.delivered));
        }
    }

    /// A session kept open sends one message after another: Idle after
    /// each (after RSET when one was refused), QUIT only when asked.
    #[test]
    fn kept_open_session_sends_several_messages() {
        let mut cfg = config(TlsPolicy::Plain);
        cfg.keep_open = true;
        cfg.recipients.truncate(1);
        let mut c = Client::new(cfg);
        c.on_reply(reply(b"220 mx\r\n"));
        c.on_reply(reply(EHLO_PLAIN));
        c.on_reply(reply(b"250 ok\r\n"));
        c.on_reply(reply(b"250 ok\r\n"));
        let e = c.on_reply(reply(b"354 go\r\n"));
        assert_eq!(
            e,
            Event::SendMessage {
                size: 100,
                then: None
            }
        );
        assert_eq!(c.on_reply(reply(b"250 queued\r\n")), Event::Idle);
        assert_eq!(c.take_delivered(), [0]);
        assert!(c.take_outcome().unwrap().accepted);
        let envelope = Envelope {
            from: "a@example.org".into(),
            recipients: vec!["x@example.org".into()],
            dsn: Dsn::default(),
        };
        let e = c.next_message(&envelope, 5, false);
        assert_eq!(
            wire(&e),
            b"MAIL FROM:<a@example.org> SIZE=5\r\nRCPT TO:<x@example.org>\r\nDATA\r\n"
        );
        c.on_reply(reply(b"250 ok\r\n"));
        c.on_reply(reply(b"550 5.1.1 unknown\r\n"));
        assert_eq!(
            wire(&c.on_reply(reply(b"554 no valid recipients\r\n"))),
            b"RSET\r\n"
        );
        assert_eq!(c.on_reply(reply(b"250 ok\r\n")), Event::Idle);
        let (err, report) = *c.take_outcome().unwrap_err();
        assert!(matches!(err, Error::RecipientsRefused { all: true, .. }));
        assert_eq!(report.recipients[0].state, RecipientState::PermFailed);
        assert!(report.tls == c.report().tls && c.report().capabilities.is_some());
        assert_eq!(wire(&c.quit()), b"QUIT\r\n");
        assert_eq!(c.on_reply(reply(b"221 bye\r\n")), Event::Close);
    }

    /// DSN parameters go on MAIL and every RCPT when the server offers
    /// DSN; without it nothing is sent after EHLO but QUIT.
    #[test]
    fn dsn_parameters_or_a_refusal_before_mail() {
        let dsn = Dsn {
            notify: Some("SUCCESS,FAILURE".into()),
            ret: Some(DsnRet::Hdrs),
            envid: Some("id+1 x".into()),
        };
        let mut cfg = config(TlsPolicy::Plain);
        cfg.dsn = dsn.clone();
        let mut c = Client::new(cfg.clone());
        c.on_reply(reply(b"220 mx\r\n"));
        let e = c.on_reply(reply(b"250-mx\r\n250-DSN\r\n250 PIPELINING\r\n"));
        assert_eq!(
            wire(&e),
            b"MAIL FROM:<a@example.org> RET=HDRS ENVID=id+2B1+20x\r\n\
              RCPT TO:<b@example.org> NOTIFY=SUCCESS,FAILURE\r\n\
              RCPT TO:<c@example.org> NOTIFY=SUCCESS,FAILURE\r\nDATA\r\n"
        );
        let mut c = Client::new(cfg);
        c.on_reply(reply(b"220 mx\r\n"));
        assert_eq!(wire(&c.on_reply(reply(EHLO_PLAIN))), b"QUIT\r\n");
        c.on_reply(reply(b"221 bye\r\n"));
        assert_eq!(c.finish().unwrap_err().0, Error::DsnNotOffered);
    }
}
