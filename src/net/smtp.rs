//! One submission over the network: connect, drive [`Client`] with replies
//! read from a [`Connection`], stream the message, report.
//!
//! [`submit`] is the library entry point for everything that sends mail
//! (`mailctl send`, the examples, other front ends): it takes settings that
//! are already resolved (no command line, no prompts) and returns a
//! [`SubmitReport`] whether or not the message went through.

use std::fmt;
use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};

use crate::mail::compose::Message;
use crate::net;
use crate::net::connection::{Connection, Endpoint, TlsMode, TlsOptions};
use crate::proto::sasl::Mechanism;
use crate::secret::Secret;
use crate::text::printable;
use crate::transcript::Transcript;

use crate::proto::smtp::client::{
    Client, ClientConfig, Credentials, Event, RecipientStatus, Report, TlsPolicy,
};
use crate::proto::smtp::data::DataEncoder;
use crate::proto::smtp::ehlo::Capabilities;
use crate::proto::smtp::reply::{Reply, ReplyReader};
use crate::proto::smtp::Error;

/// How long to wait for the reply to a pipelined QUIT once the message has
/// been accepted.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connection settings, fully resolved.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The server.
    pub endpoint: Endpoint,
    /// Implicit TLS, required STARTTLS, or none.
    pub tls: TlsMode,
    /// Certificate verification.
    pub tls_options: TlsOptions,
    /// Connect, read and write time-out.
    pub timeout: Duration,
    /// The EHLO name; `None` uses the host name if it is fully qualified,
    /// else `localhost`.
    pub helo_name: Option<String>,
    /// User, password or token, and mechanism (`None` = strongest offered).
    pub credentials: Option<Credentials>,
    /// Where the password comes from when the credentials hold none and
    /// the mechanism chosen needs one (not EXTERNAL).
    pub secret_source: Option<SecretSource>,
}

/// Obtains the password (or token) the moment a session needs it, so a
/// login with EXTERNAL never consults the password source.
#[derive(Clone)]
pub struct SecretSource(pub Arc<dyn Fn() -> anyhow::Result<Secret> + Send + Sync>);

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretSource")
    }
}

pub use crate::proto::smtp::envelope::Envelope;

/// What happened during a submission.
#[derive(Clone, Debug)]
pub struct SubmitReport {
    /// The server, as `host:port`.
    pub server: String,
    /// The Message-ID, without angle brackets, when known.
    pub message_id: Option<String>,
    /// The message size in bytes.
    pub size: u64,
    /// Per recipient: accepted, refused (with the reply), or not tried.
    pub recipients: Vec<RecipientStatus>,
    /// The reply to the final dot.
    pub final_reply: Option<Reply>,
    /// The queue id found in the final reply, if it names one.
    pub queue_id: Option<String>,
    /// Whether the message was accepted.
    pub accepted: bool,
    /// Whether the connection was encrypted.
    pub tls: bool,
    /// The AUTH mechanism used.
    pub auth: Option<Mechanism>,
}

/// A failed submission: the error (its exit status inside) and the report.
#[derive(Debug)]
pub struct SubmitError {
    /// What went wrong.
    pub error: anyhow::Error,
    /// What is known about each recipient.
    pub report: Box<SubmitReport>,
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl From<SubmitError> for anyhow::Error {
    fn from(e: SubmitError) -> Self {
        e.error
    }
}

fn reply_json(reply: &Reply) -> Value {
    json!({
        "code": reply.code,
        "enhanced": reply.enhanced.map(|e| e.to_string()),
        "text": reply.text(),
    })
}

impl SubmitReport {
    /// The JSON object printed by `--json`; `error` is the failure, if any,
    /// and `exit_code` the status the program exits with.
    pub fn to_json(&self, error: Option<&anyhow::Error>, exit_code: u8) -> Value {
        let recipients: Vec<Value> = self
            .recipients
            .iter()
            .map(|r| {
                let mut v = json!({
                    "address": r.address,
                    "status": r.state.name(),
                    "code": null,
                    "enhanced": null,
                    "text": null,
                    "delivered": r.delivered,
                });
                if let Some(reply) = &r.reply {
                    v["code"] = json!(reply.code);
                    v["enhanced"] = json!(reply.enhanced.map(|e| e.to_string()));
                    v["text"] = json!(reply.text());
                }
                v
            })
            .collect();
        json!({
            "status": if error.is_none() && self.accepted { "sent" } else { "failed" },
            "exit_code": exit_code,
            "error": error.map(|e| printable(format!("{e:#}").as_bytes())),
            "server": self.server,
            "tls": self.tls,
            "auth": self.auth.map(Mechanism::name),
            "message_id": self.message_id.as_ref().map(|id| format!("<{id}>")),
            "size": self.size,
            "recipients": recipients,
            "final_reply": self.final_reply.as_ref().map(reply_json),
            "queue_id": self.queue_id,
        })
    }
}

/// The queue id in a reply such as Postfix's `2.0.0 Ok: queued as 4Xyz` or
/// Exim's `OK id=1abc-0001`.
pub fn queue_id(reply: &Reply) -> Option<String> {
    let text = reply.text();
    let lower = text.to_ascii_lowercase();
    let start = lower
        .find("queued as ")
        .map(|p| p + "queued as ".len())
        .or_else(|| lower.find("id=").map(|p| p + 3))?;
    let id: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .collect();
    let id = id.trim_end_matches('.').to_string();
    (!id.is_empty()).then_some(id)
}

/// Reads until `reader` holds a complete reply, feeding it whatever the
/// socket delivers, and records the reply's lines in the transcript.
fn read_reply(
    conn: &mut Connection,
    reader: &mut ReplyReader,
    transcript: &Transcript,
) -> anyhow::Result<Reply> {
    loop {
        if let Some((reply, lines)) = reader.next_reply_with_lines() {
            for line in &lines {
                transcript.server(line);
            }
            return Ok(reply);
        }
        if conn.fill().map_err(net::Error::from)? == 0 {
            return Err(net::Error::Closed.into());
        }
        let received = conn.buffered().len();
        let fed = reader.feed(conn.buffered());
        conn.consume(received);
        fed?;
    }
}

fn stream_message(
    conn: &mut Connection,
    message: &Message,
    then: Option<&[u8]>,
) -> anyhow::Result<()> {
    let mut writer = BufWriter::with_capacity(64 * 1024, conn.writer());
    let mut encoder = DataEncoder::new(&mut writer);
    message.write_to(&mut encoder)?;
    let writer = encoder.finish()?;
    if let Some(then) = then {
        writer.write_all(then)?;
    }
    writer.flush()?;
    Ok(())
}

/// The machine's settings for `settings`; the envelope and message size
/// are filled in by the caller.
fn client_config(settings: &Settings) -> ClientConfig {
    ClientConfig {
        helo_name: settings
            .helo_name
            .clone()
            .unwrap_or_else(crate::system::helo_name),
        tls: match settings.tls {
            TlsMode::Implicit => TlsPolicy::Implicit,
            TlsMode::Starttls => TlsPolicy::StartTls,
            TlsMode::None => TlsPolicy::Plain,
            TlsMode::StarttlsIfOffered => TlsPolicy::StartTlsIfOffered,
        },
        credentials: settings.credentials.clone(),
        plaintext_auth_allowed: settings.endpoint.is_loopback(),
        from: String::new(),
        recipients: Vec::new(),
        message_size: 0,
        eight_bit: false,
        probe: false,
        keep_open: false,
        partial: false,
        dsn: Default::default(),
    }
}

/// Submits `message` to the server in `settings` for the recipients in
/// `envelope`, writing the protocol exchange to `transcript` (secrets
/// redacted, the message summarised by its size).
///
/// Returns the report when the server accepted the message for every
/// recipient; otherwise a [`SubmitError`] whose error carries the exit
/// status (see [`crate::exit::exit_status`]) and whose report says what the
/// server answered for each recipient. If any recipient is refused, the
/// message is not sent at all.
pub fn submit(
    settings: &Settings,
    envelope: &Envelope,
    message: &Message,
    transcript: &Transcript,
) -> Result<SubmitReport, SubmitError> {
    let endpoint = &settings.endpoint;
    let client = Client::new(ClientConfig {
        from: envelope.from.clone(),
        recipients: envelope.recipients.clone(),
        message_size: message.size(),
        eight_bit: message.eight_bit(),
        dsn: envelope.dsn.clone(),
        ..client_config(settings)
    });
    let mut single = Single(Some(message));
    let finished = drive(settings, client, &mut single, transcript);
    submit_outcome(endpoint, message, finished.outcome())
}

/// The [`SubmitReport`] of `message` from the machine's outcome.
fn submit_outcome(
    endpoint: &Endpoint,
    message: &Message,
    outcome: Result<Report, Box<(anyhow::Error, Report)>>,
) -> Result<SubmitReport, SubmitError> {
    let wrap = |r: Report| SubmitReport {
        server: endpoint.to_string(),
        message_id: message.message_id().map(str::to_string),
        size: message.size(),
        queue_id: r.final_reply.as_ref().and_then(queue_id),
        recipients: r.recipients,
        final_reply: r.final_reply,
        accepted: r.accepted,
        tls: r.tls,
        auth: r.auth,
    };
    match outcome {
        Ok(report) => Ok(wrap(report)),
        Err(failed) => {
            let (error, report) = *failed;
            Err(SubmitError {
                error,
                report: Box::new(wrap(report)),
            })
        }
    }
}

/// One message of a batch: its envelope and content.
#[derive(Clone, Copy)]
pub struct Outgoing<'a> {
    /// Sender and recipients.
    pub envelope: &'a Envelope,
    /// The message.
    pub message: &'a Message,
}

/// What [`submit_batch`] reports as it goes, in order.
pub trait BatchSink {
    /// The server accepted message `index` for `recipients` (indices in
    /// its envelope): called as soon as the final dot got its 2xx, before
    /// anything else is sent.
    fn delivered(&mut self, index: usize, recipients: &[usize]);
    /// Message `index` is done with: its report, or its failure.
    fn finished(&mut self, index: usize, outcome: Result<SubmitReport, SubmitError>);
}

/// Submits `messages` in order over as few connections as possible: one
/// session, a transaction per message (RSET after a refused one), a new
/// connection when the server closes it or gives up on one. Each message's
/// outcome goes to `sink`; `control` paces and stops the batch (messages
/// left when it stops get no outcome). Returns `Some(error)` when a
/// session failed before its first transaction: the messages from the one
/// it names (`index`) on were not tried.
pub fn submit_batch(
    settings: &Settings,
    messages: &[Outgoing<'_>],
    transcript: &Transcript,
    control: BatchControl<'_>,
    sink: &mut dyn BatchSink,
) -> Option<(usize, anyhow::Error)> {
    let mut next = 0;
    let own_start = LastStart::default();
    let last_start = control.last_start.unwrap_or(&own_start);
    while next < messages.len() && !control.stopped() {
        wait_turn(control.pace, last_start);
        let first = messages[next];
        let client = Client::new(ClientConfig {
            from: first.envelope.from.clone(),
            recipients: first.envelope.recipients.clone(),
            message_size: first.message.size(),
            eight_bit: first.message.eight_bit(),
            dsn: first.envelope.dsn.clone(),
            keep_open: true,
            partial: true,
            ..client_config(settings)
        });
        let mut batch = Batch {
            messages,
            current: next,
            in_flight: true,
            sink,
            endpoint: &settings.endpoint,
            control,
            last_start,
        };
        let finished = drive(settings, client, &mut batch, transcript);
        let (current, in_flight) = (batch.current, batch.in_flight);
        if !in_flight {
            return None;
        }
        if current == next && !finished.client.message_started() {
            // The session failed before its first transaction (connect,
            // TLS, AUTH): the same would happen to the others now.
            let error = match finished.outcome() {
                Err(failed) => failed.0,
                Ok(_) => anyhow::anyhow!("the session ended before the first message"),
            };
            return Some((current, error));
        }
        if current > next && server_gave_up(&finished.client) {
            // The server closed (or said 421) after taking other messages
            // on this connection, as servers limiting messages per
            // connection do: this one goes again on a new connection.
            next = current;
            continue;
        }
        let message = messages[current].message;
        sink.finished(
            current,
            submit_outcome(&settings.endpoint, message, finished.outcome()),
        );
        next = current + 1;
    }
    None
}

/// What a [`probe`] found out.
#[derive(Clone, Debug)]
pub struct ProbeReport {
    /// The server, as `host:port`.
    pub server: String,
    /// Whether the connection was encrypted.
    pub tls: bool,
    /// Bytes received before the STARTTLS handshake and discarded (a sign
    /// of injection).
    pub discarded: usize,
    /// The server's greeting.
    pub greeting: Option<Reply>,
    /// The keyword lines of the last EHLO reply, as sent (printable); empty
    /// after a HELO fallback.
    pub keywords: Vec<String>,
    /// The AUTH mechanism that succeeded, if credentials were given.
    pub auth: Option<Mechanism>,
    /// The extensions of the last EHLO, the offered mechanisms among them.
    pub capabilities: Capabilities,
}

/// Checks `settings` without sending mail: connects, negotiates TLS as
/// configured, authenticates if credentials are given, then says QUIT.
/// Errors carry the same exit statuses as [`submit`].
pub fn probe(settings: &Settings, transcript: &Transcript) -> anyhow::Result<ProbeReport> {
    let client = Client::new(ClientConfig {
        probe: true,
        ..client_config(settings)
    });
    let finished = drive(settings, client, &mut Single(None), transcript);
    let discarded = finished.discarded;
    match finished.outcome() {
        Ok(report) => Ok(ProbeReport {
            server: settings.endpoint.to_string(),
            tls: report.tls,
            discarded,
            greeting: report.greeting,
            keywords: report
                .ehlo
                .map(|ehlo| ehlo.lines.iter().skip(1).map(|l| printable(l)).collect())
                .unwrap_or_default(),
            auth: report.auth,
            capabilities: report.capabilities.unwrap_or_default(),
        }),
        Err(failed) => Err(failed.0),
    }
}

/// What a session sends, and what it does between messages.
trait Session {
    /// The message being sent, if any.
    fn message(&self) -> Option<&Message>;
    /// After [`Event::Idle`]: the next message's first event, or QUIT.
    fn idle(&mut self, client: &mut Client) -> Event;
    /// After each reply: passes on the recipients just delivered.
    fn after_reply(&mut self, client: &mut Client);
}

/// A session for one message (or none: a probe).
struct Single<'a>(Option<&'a Message>);

impl Session for Single<'_> {
    fn message(&self) -> Option<&Message> {
        self.0
    }

    fn idle(&mut self, client: &mut Client) -> Event {
        client.quit()
    }

    fn after_reply(&mut self, _client: &mut Client) {}
}

/// A session of [`submit_batch`]: the messages from `current` on.
struct Batch<'a, 's> {
    messages: &'a [Outgoing<'a>],
    /// The message being sent.
    current: usize,
    /// Whether `current` is being sent (false once the last is done).
    in_flight: bool,
    sink: &'s mut dyn BatchSink,
    endpoint: &'a Endpoint,
    control: BatchControl<'s>,
    /// When the last message started.
    last_start: &'s LastStart,
}

/// Whether the session ended because the server closed the connection or
/// said 421, with nothing of the current message delivered.
fn server_gave_up(client: &Client) -> bool {
    let closed = match client.failure() {
        Some(Error::ConnectionLost) => true,
        Some(Error::Refused { reply, .. }) => reply.code == 421,
        _ => false,
    };
    closed && !client.report().recipients.iter().any(|r| r.delivered)
}

/// How a batch is paced and stopped.
#[derive(Clone, Copy, Debug, Default)]
pub struct BatchControl<'a> {
    /// The least time between the starts of two messages.
    pub pace: Option<Duration>,
    /// Once non-zero (a signal number), no further message is started.
    pub stop: Option<&'a std::sync::atomic::AtomicUsize>,
    /// When the last message to this server started, kept across batches
    /// (a long-running sender pacing one account); `None`: this batch only.
    pub last_start: Option<&'a LastStart>,
}

impl BatchControl<'_> {
    /// Whether the stop flag is set.
    fn stopped(&self) -> bool {
        self.stop
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst) != 0)
    }
}

/// When the last message of a paced series started.
pub type LastStart = std::cell::Cell<Option<std::time::Instant>>;

/// Sleeps until `pace` has passed since `last_start`, then records the new
/// start.
fn wait_turn(pace: Option<Duration>, last_start: &LastStart) {
    if let (Some(pace), Some(last)) = (pace, last_start.get()) {
        if let Some(rest) = pace.checked_sub(last.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    last_start.set(Some(std::time::Instant::now()));
}

impl Session for Batch<'_, '_> {
    fn message(&self) -> Option<&Message> {
        self.in_flight.then(|| self.messages[self.current].message)
    }

    fn idle(&mut self, client: &mut Client) -> Event {
        let outcome = client
            .take_outcome()
            .map_err(|failed| Box::new((anyhow::Error::new(failed.0), failed.1)));
        let message = self.messages[self.current].message;
        self.sink.finished(
            self.current,
            submit_outcome(self.endpoint, message, outcome),
        );
        if self.current + 1 >= self.messages.len() || self.control.stopped() {
            self.in_flight = false;
            return client.quit();
        }
        self.current += 1;
        wait_turn(self.control.pace, self.last_start);
        let next = self.messages[self.current];
        client.next_message(next.envelope, next.message.size(), next.message.eight_bit())
    }

    fn after_reply(&mut self, client: &mut Client) {
        let delivered = client.take_delivered();
        if self.in_flight && !delivered.is_empty() {
            self.sink.delivered(self.current, &delivered);
        }
    }
}

/// A session that is over.
struct Finished {
    /// The machine, its outcome recorded inside.
    client: Client,
    /// Why the connection failed or could not be opened, if it did.
    lost: Option<anyhow::Error>,
    /// Bytes received before the STARTTLS handshake and discarded.
    discarded: usize,
}

impl Finished {
    /// The report, or the failure (the connection's own error when losing
    /// the connection decided the outcome) and the report.
    fn outcome(self) -> Result<Report, Box<(anyhow::Error, Report)>> {
        self.client.finish().map_err(|failed| {
            let (err, report) = *failed;
            let err = match (err, self.lost) {
                (Error::ConnectionLost, Some(cause)) => cause,
                (err, _) => anyhow::Error::new(err),
            };
            Box::new((err, report))
        })
    }
}

/// A reply reader that keeps the lines as received when the transcript
/// shows them.
fn reply_reader(transcript: &Transcript) -> ReplyReader {
    if transcript.enabled() {
        ReplyReader::keeping_lines()
    } else {
        ReplyReader::new()
    }
}

/// The connection and reply reader of a running session.
struct Wire {
    conn: Connection,
    reader: ReplyReader,
    discarded: usize,
}

/// Performs one event of the machine: writes, upgrades to TLS or streams
/// the message. Returns the next event when it comes without a reply
/// (after the TLS handshake), `Ok(None)` to read a reply next, or
/// `Err(None)` when the session is over without an error.
fn perform(
    settings: &Settings,
    wire: &mut Option<Wire>,
    client: &mut Client,
    event: Event,
    session: &dyn Session,
    transcript: &Transcript,
) -> Result<Option<Event>, Option<anyhow::Error>> {
    let endpoint = &settings.endpoint;
    let Some(w) = wire.as_mut() else {
        return Err(None);
    };
    match event {
        Event::Send(flight) => {
            for line in &flight.log {
                transcript.client(line.as_bytes());
            }
            w.conn
                .send(&flight.wire)
                .map_err(net::Error::from)
                .with_context(|| format!("sending to {endpoint}"))
                .map_err(Some)?;
        }
        Event::Wait => {}
        Event::StartTls => {
            // RFC 3207 section 4.2: nothing received before the handshake
            // is trusted.
            let held = w.reader.discard();
            let Wire { conn, .. } = wire.take().expect("connection present");
            let (conn, discarded) = conn
                .start_tls(&settings.tls_options)
                .map_err(|e| Some(e.into()))?;
            let discarded = discarded + held;
            if discarded > 0 {
                transcript.note(
                    "C",
                    &format!("<discarded {discarded} bytes received before the TLS handshake>"),
                );
            }
            client.set_channel_binding(conn.server_end_point());
            *wire = Some(Wire {
                conn,
                reader: reply_reader(transcript),
                discarded,
            });
            return Ok(Some(client.tls_established()));
        }
        Event::SendMessage { size, then } => {
            transcript.note("C", &format!("<message, {size} bytes>"));
            transcript.client(b".");
            if let Some(then) = &then {
                for line in &then.log {
                    transcript.client(line.as_bytes());
                }
            }
            let message = session
                .message()
                .ok_or_else(|| Some(anyhow::anyhow!("no message to send")))?;
            stream_message(&mut w.conn, message, then.as_ref().map(|f| &f.wire[..]))
                .with_context(|| format!("sending the message to {endpoint}"))
                .map_err(Some)?;
        }
        Event::Abort(note) => {
            transcript.note("C", &note);
            return Err(None);
        }
        Event::NeedSecret => {
            let source = settings
                .secret_source
                .as_ref()
                .ok_or_else(|| Some(anyhow::anyhow!("no password source for {endpoint}")))?;
            let secret = (source.0)().map_err(Some)?;
            return Ok(Some(client.provide_secret(secret)));
        }
        Event::Close => return Err(None),
        Event::Idle => return Err(Some(anyhow::anyhow!("the session has no next message"))),
    }
    Ok(None)
}

/// Runs a session: connects, feeds replies to `client`, performs its
/// events, and returns it finished.
fn drive(
    settings: &Settings,
    mut client: Client,
    session: &mut dyn Session,
    transcript: &Transcript,
) -> Finished {
    let endpoint = &settings.endpoint;
    let finished = |mut client: Client, lost: Option<anyhow::Error>, discarded| {
        if lost.is_some() {
            client.connection_lost();
        }
        Finished {
            client,
            lost,
            discarded,
        }
    };
    if let Some(err) = client.refuses_to_start() {
        return finished(client, Some(anyhow::Error::new(err)), 0);
    }
    let connected = match settings.tls {
        TlsMode::Implicit => {
            Connection::connect_tls(endpoint, &settings.tls_options, settings.timeout)
        }
        TlsMode::Starttls | TlsMode::None | TlsMode::StarttlsIfOffered => {
            Connection::connect(endpoint, settings.timeout)
        }
    };
    if let Ok(conn) = &connected {
        client.set_channel_binding(conn.server_end_point());
    }
    let mut wire = match connected {
        Ok(conn) => Some(Wire {
            conn,
            reader: reply_reader(transcript),
            discarded: 0,
        }),
        Err(err) => return finished(client, Some(err.into()), 0),
    };
    let mut event = Event::Wait; // the greeting comes first
    let lost = loop {
        match perform(settings, &mut wire, &mut client, event, session, transcript) {
            Ok(Some(next)) => {
                event = next;
                continue;
            }
            Ok(None) => {}
            Err(lost) => break lost,
        }
        let Some(w) = wire.as_mut() else {
            break None;
        };
        if client.is_finishing() {
            let _ = w.conn.set_timeout(settings.timeout.min(QUIT_TIMEOUT));
        }
        match read_reply(&mut w.conn, &mut w.reader, transcript)
            .with_context(|| format!("reading the reply from {endpoint}"))
        {
            Ok(reply) => {
                event = client.on_reply(reply);
                session.after_reply(&mut client);
                while event == Event::Idle {
                    event = session.idle(&mut client);
                    session.after_reply(&mut client);
                }
            }
            Err(err) => break Some(err),
        }
    };
    let discarded = wire.as_ref().map_or(0, |w| w.discarded);
    if let Some(w) = wire {
        w.conn.close();
    }
    finished(client, lost, discarded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::smtp::reply::MAX_LINE;
    use std::net::TcpListener;

    /// A connection to a server that writes `bytes` and closes.
    fn server_sending(bytes: Vec<u8>) -> (Connection, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let _ = s.write_all(&bytes);
        });
        let ep = Endpoint::parse(&format!("127.0.0.1:{port}"), 25).unwrap();
        let conn = Connection::connect(&ep, Duration::from_secs(5)).unwrap();
        (conn, server)
    }

    /// Replies come whole whatever the reads return, the bytes after one
    /// reply wait for the next, and the transcript gets each line as sent.
    #[test]
    fn replies_are_read_from_the_bytes_received() {
        let (mut conn, server) = server_sending(b"250-a\r\n250 b\r\n220 half".to_vec());
        server.join().unwrap();
        let (transcript, lines) = Transcript::memory();
        let mut reader = ReplyReader::keeping_lines();
        let reply = read_reply(&mut conn, &mut reader, &transcript).unwrap();
        assert_eq!(reply.lines, [b"a".to_vec(), b"b".to_vec()]);
        let shown = String::from_utf8(lines.lock().unwrap().clone()).unwrap();
        assert_eq!(shown, "S: 250-a\nS: 250 b\n");
        // The connection closes in the middle of the next reply.
        let err = read_reply(&mut conn, &mut reader, &transcript).unwrap_err();
        assert!(matches!(
            err.downcast_ref::<net::Error>(),
            Some(net::Error::Closed)
        ));
    }

    #[test]
    fn an_endless_reply_line_is_refused() {
        let (mut conn, server) = server_sending(vec![b'x'; MAX_LINE + 10]);
        let err = read_reply(&mut conn, &mut ReplyReader::new(), &Transcript::off()).unwrap_err();
        assert_eq!(err.downcast_ref::<Error>(), Some(&Error::ReplyTooLong));
        server.join().unwrap();
    }

    #[test]
    fn queue_ids() {
        let parse = |b: &[u8]| {
            let mut r = ReplyReader::new();
            r.feed(b).unwrap();
            queue_id(&r.next_reply().unwrap())
        };
        assert_eq!(
            parse(b"250 2.0.0 Ok: queued as 4XyZ12abc\r\n").as_deref(),
            Some("4XyZ12abc")
        );
        assert_eq!(
            parse(b"250 OK id=1abc-0001-XY\r\n").as_deref(),
            Some("1abc-0001-XY")
        );
        assert_eq!(parse(b"250 2.0.0 Message accepted\r\n"), None);
    }
}
