//! One submission over the network: connect, drive [`Client`] with replies
//! read from a [`Connection`], stream the message, report.
//!
//! [`submit`] is the library entry point for everything that sends mail
//! (`mailctl send`, the examples, other front ends): it takes settings that
//! are already resolved (no command line, no prompts) and returns a
//! [`SubmitReport`] whether or not the message went through.

use std::fmt;
use std::io::{BufWriter, Write};
use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};

use crate::exit::{exit_status, fail, Exit};
use crate::mail::compose::Message;
use crate::net::connection::{Connection, Endpoint, TlsMode, TlsOptions};
use crate::proto::sasl::Mechanism;
use crate::text::printable;
use crate::transcript::Transcript;

use crate::proto::smtp::client::{Client, ClientConfig, Credentials, Event, RecipientStatus};
use crate::proto::smtp::data::DataEncoder;
use crate::proto::smtp::ehlo::Capabilities;
use crate::proto::smtp::reply::{Reply, ReplyParser, MAX_LINE};

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
}

/// The SMTP envelope (RFC 5321 section 2.3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse-path (MAIL FROM).
    pub from: String,
    /// The forward-paths (RCPT TO), each once.
    pub recipients: Vec<String>,
}

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
    /// The JSON object printed by `--json`; `error` is the failure, if any.
    pub fn to_json(&self, error: Option<&anyhow::Error>) -> Value {
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
                });
                if let Some(reply) = &r.reply {
                    v["code"] = json!(reply.code);
                    v["enhanced"] = json!(reply.enhanced.map(|e| e.to_string()));
                    v["text"] = json!(reply.text());
                }
                v
            })
            .collect();
        let exit = error.map_or(Exit::Ok, exit_status);
        json!({
            "status": if error.is_none() && self.accepted { "sent" } else { "failed" },
            "exit_code": exit.code(),
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

/// The EHLO name: the host name when it looks fully qualified, else
/// `localhost`.
pub fn default_helo_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let name = name.trim();
    let valid = name.contains('.')
        && !name.starts_with('.')
        && !name.ends_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if valid {
        name.to_string()
    } else {
        "localhost".to_string()
    }
}

fn read_reply(
    conn: &mut Connection,
    parser: &mut ReplyParser,
    transcript: &Transcript,
) -> anyhow::Result<Reply> {
    loop {
        let line = conn.read_line(MAX_LINE)?;
        transcript.server(line);
        if let Some(reply) = parser.push_line(line)? {
            return Ok(reply);
        }
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
        helo_name: settings.helo_name.clone().unwrap_or_else(default_helo_name),
        tls: settings.tls,
        credentials: settings.credentials.clone(),
        plaintext_auth_allowed: endpoint.is_loopback(),
        from: envelope.from.clone(),
        recipients: envelope.recipients.clone(),
        message_size: message.size(),
        eight_bit: message.eight_bit(),
        probe: false,
    });
    let client = drive(settings, client, Some(message), transcript);
    let wrap = |r: crate::proto::smtp::client::Report| SubmitReport {
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
    match client.finish() {
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

/// What a [`probe`] found out.
#[derive(Clone, Debug)]
pub struct ProbeReport {
    /// The server, as `host:port`.
    pub server: String,
    /// Whether the connection was encrypted.
    pub tls: bool,
    /// The AUTH mechanism that succeeded, if credentials were given.
    pub auth: Option<Mechanism>,
    /// The extensions of the last EHLO.
    pub capabilities: Capabilities,
}

/// Checks `settings` without sending mail: connects, negotiates TLS as
/// configured, authenticates if credentials are given, then says QUIT.
/// Errors carry the same exit statuses as [`submit`].
pub fn probe(settings: &Settings, transcript: &Transcript) -> anyhow::Result<ProbeReport> {
    let client = Client::new(ClientConfig {
        helo_name: settings.helo_name.clone().unwrap_or_else(default_helo_name),
        tls: settings.tls,
        credentials: settings.credentials.clone(),
        plaintext_auth_allowed: settings.endpoint.is_loopback(),
        from: String::new(),
        recipients: Vec::new(),
        message_size: 0,
        eight_bit: false,
        probe: true,
    });
    let client = drive(settings, client, None, transcript);
    match client.finish() {
        Ok(report) => Ok(ProbeReport {
            server: settings.endpoint.to_string(),
            tls: report.tls,
            auth: report.auth,
            capabilities: report.capabilities.unwrap_or_default(),
        }),
        Err(failed) => Err(failed.0),
    }
}

/// Runs a session: connects, feeds replies to `client`, performs its
/// events, and returns it finished (its outcome recorded inside).
fn drive(
    settings: &Settings,
    mut client: Client,
    message: Option<&Message>,
    transcript: &Transcript,
) -> Client {
    let endpoint = &settings.endpoint;
    if settings.credentials.is_some() && settings.tls == TlsMode::None && !endpoint.is_loopback() {
        client.connection_lost(fail(
            Exit::Config,
            format!(
                "refusing to send credentials unencrypted to {endpoint} \
                 (only loopback servers may use --tls none with --user)"
            ),
        ));
        return client;
    }

    let connected = match settings.tls {
        TlsMode::Implicit => {
            Connection::connect_tls(endpoint, &settings.tls_options, settings.timeout)
        }
        TlsMode::Starttls | TlsMode::None => Connection::connect(endpoint, settings.timeout),
    };
    let mut conn = match connected {
        Ok(conn) => conn,
        Err(err) => {
            client.connection_lost(err.into());
            return client;
        }
    };
    let mut parser = ReplyParser::new();
    let mut event = Event::Wait; // the greeting comes first
    loop {
        let step: anyhow::Result<()> = match event {
            Event::Send(flight) => {
                for line in &flight.log {
                    transcript.client(line.as_bytes());
                }
                conn.send(&flight.wire)
                    .with_context(|| format!("sending to {endpoint}"))
            }
            Event::Wait => Ok(()),
            Event::StartTls => match conn.start_tls(&settings.tls_options) {
                Ok((upgraded, discarded)) => {
                    if discarded > 0 {
                        transcript.note(
                            "C",
                            &format!(
                                "<discarded {discarded} bytes received before the TLS handshake>"
                            ),
                        );
                    }
                    conn = upgraded;
                    event = client.tls_established();
                    continue;
                }
                Err(err) => {
                    client.connection_lost(err.into());
                    return client;
                }
            },
            Event::SendMessage { size, then } => {
                transcript.note("C", &format!("<message, {size} bytes>"));
                transcript.client(b".");
                if let Some(then) = &then {
                    for line in &then.log {
                        transcript.client(line.as_bytes());
                    }
                }
                match message {
                    Some(message) => {
                        stream_message(&mut conn, message, then.as_ref().map(|f| &f.wire[..]))
                            .with_context(|| format!("sending the message to {endpoint}"))
                    }
                    None => Err(fail(Exit::Software, "no message to send")),
                }
            }
            Event::Abort(note) => {
                transcript.note("C", &note);
                break;
            }
            Event::Close => break,
        };
        if let Err(err) = step {
            client.connection_lost(err);
            break;
        }
        if client.is_finishing() {
            let _ = conn.set_timeout(settings.timeout.min(QUIT_TIMEOUT));
        }
        match read_reply(&mut conn, &mut parser, transcript)
            .with_context(|| format!("reading the reply from {endpoint}"))
        {
            Ok(reply) => event = client.on_reply(reply),
            Err(err) => {
                client.connection_lost(err);
                break;
            }
        }
    }
    conn.close();
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::smtp::reply::ReplyReader;

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

    #[test]
    fn helo_name_is_the_qualified_host_name_or_localhost() {
        let name = default_helo_name();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let host = host.trim();
        let qualified = host.contains('.') && !host.starts_with('.') && !host.ends_with('.');
        if qualified
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            assert_eq!(name, host, "a fully qualified host name is used as it is");
        } else {
            assert_eq!(
                name, "localhost",
                "host name {host:?} is not fully qualified"
            );
        }
    }
}
