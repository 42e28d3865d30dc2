//! Whole sessions of the client machine: against a recorded server, the
//! server's bytes cut into chunks of every size; and against the server
//! machine of [`super::server`], bytes passed from one to the other with no
//! socket in between.

use std::sync::Arc;

use crate::proto::sasl::Mechanism;
use crate::proto::users::{Policy, Users};
use crate::secret::Secret;

use super::client::{Client, ClientConfig, Credentials, Event, RecipientState, Report, TlsPolicy};
use super::data;
use super::receive::DataReceiver;
use super::reply::ReplyReader;
use super::server::{Action, DataOutcome, Envelope, SmtpServer};
use super::Error;

/// The message of both tests: leading dots, a lone dot line, 8-bit text.
const MESSAGE: &[u8] = b"From: a@example.org\r\nTo: tim@mx.test\r\nSubject: dots\r\n\r\n\
.leading dot\r\n.\r\n..two dots\r\nnon-ASCII: \xc3\xa9t\xc3\xa9\r\n\r\nend\r\n";

fn config(recipients: &[&str]) -> ClientConfig {
    ClientConfig {
        helo_name: "client.example".into(),
        tls: TlsPolicy::StartTls,
        credentials: Some(Credentials {
            user: "tim".into(),
            secret: Some(Secret::new("tanstaafl")),
            client_cert: false,
            mechanism: None,
            token: false,
            nonce: "nonce".into(),
        }),
        plaintext_auth_allowed: false,
        from: "a@example.org".into(),
        recipients: recipients.iter().map(|r| r.to_string()).collect(),
        message_size: data::normalized_len(MESSAGE),
        eight_bit: true,
        probe: false,
        keep_open: false,
        partial: false,
        dsn: Default::default(),
    }
}

/// The server of the recorded session, before and after the TLS handshake.
const BEFORE_TLS: &[u8] = b"220 mx.test ESMTP\r\n\
250-mx.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 SIZE 10000\r\n\
220 2.0.0 ready\r\n";
const AFTER_TLS: &[u8] = b"250-mx.test greets client.example\r\n250-PIPELINING\r\n\
250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250 SIZE 10000\r\n\
235 2.7.0 ok\r\n\
250 2.1.0 ok\r\n250 2.1.5 ok\r\n250-2.1.5 forwarded\r\n250 2.1.5 to ann\r\n354 go ahead\r\n\
250 2.0.0 Ok: queued as 4XyZ\r\n221 2.0.0 bye\r\n";

/// Everything the client did, in order, and how the session ended.
#[derive(Debug, PartialEq)]
struct Run {
    /// The client's bytes, with `<TLS>` where the handshake happened.
    output: Vec<u8>,
    /// The transcript lines of every flight.
    log: Vec<String>,
    /// The report or the error, as text.
    outcome: String,
}

/// Runs the client against `BEFORE_TLS` then `AFTER_TLS`, each fed in
/// chunks of `chunk` bytes.
fn recorded_session(chunk: usize) -> Run {
    let config = config(&["tim@mx.test", "ann@mx.test"]);
    session_against(config, &[BEFORE_TLS, AFTER_TLS], chunk)
}

/// Runs a client with `config` against the server bytes of each phase (the
/// next one after a TLS handshake), fed in chunks of `chunk` bytes.
fn session_against(config: ClientConfig, phases: &[&'static [u8]], chunk: usize) -> Run {
    let mut client = Client::new(config);
    let mut run = Run {
        output: Vec::new(),
        log: Vec::new(),
        outcome: String::new(),
    };
    let mut reader = ReplyReader::new();
    let mut phases = phases.iter().copied();
    let mut pending: &[u8] = phases.next().unwrap_or_default();
    let mut closed = false;
    while !closed {
        let Some(reply) = reader.next_reply() else {
            if pending.is_empty() {
                break;
            }
            let take = chunk.min(pending.len());
            reader.feed(&pending[..take]).expect("well-formed replies");
            pending = &pending[take..];
            continue;
        };
        let mut event = client.on_reply(reply);
        loop {
            match event {
                Event::Send(flight) => {
                    run.output.extend_from_slice(&flight.wire);
                    run.log.extend(flight.log);
                }
                Event::Wait => {}
                Event::StartTls => {
                    // The recorded server said nothing more before the
                    // handshake, in whatever chunks it came.
                    assert_eq!(reader.discard(), 0);
                    assert!(pending.is_empty());
                    pending = phases.next().unwrap_or_default();
                    run.output.extend_from_slice(b"<TLS>");
                    event = client.tls_established();
                    continue;
                }
                Event::SendMessage { then, .. } => {
                    run.output.extend_from_slice(&data::encode(MESSAGE));
                    if let Some(then) = then {
                        run.output.extend_from_slice(&then.wire);
                        run.log.extend(then.log);
                    }
                }
                Event::Abort(_) | Event::Close | Event::Idle | Event::NeedSecret => closed = true,
            }
            break;
        }
    }
    assert!(!reader.has_partial() && reader.next_reply().is_none());
    run.outcome = match client.finish() {
        Ok(report) => describe(&report),
        Err(failed) => format!("{}: {}", failed.0, describe(&failed.1)),
    };
    run
}

/// What a report says, in one line.
fn describe(report: &Report) -> String {
    let states: Vec<&str> = report.recipients.iter().map(|r| r.state.name()).collect();
    format!(
        "accepted {} tls {} auth {:?} recipients {states:?} final {:?} offers {:?}",
        report.accepted,
        report.tls,
        report.auth,
        report.final_reply.as_ref().map(|r| r.summary()),
        report.capabilities,
    )
}

/// The whole session: EHLO, STARTTLS, EHLO again, AUTH PLAIN, MAIL, RCPT
/// and DATA in one flight, the message and QUIT in another. Cutting the
/// server's bytes differently changes nothing the client does.
#[test]
fn recorded_session_in_every_chunk_size() {
    let whole = recorded_session(usize::MAX);
    let mut expected = b"EHLO client.example\r\nSTARTTLS\r\n<TLS>EHLO client.example\r\n\
AUTH PLAIN AHRpbQB0YW5zdGFhZmw=\r\n"
        .to_vec();
    expected.extend_from_slice(
        format!(
            "MAIL FROM:<a@example.org> SIZE={} BODY=8BITMIME\r\nRCPT TO:<tim@mx.test>\r\n\
             RCPT TO:<ann@mx.test>\r\nDATA\r\n",
            data::normalized_len(MESSAGE)
        )
        .as_bytes(),
    );
    expected.extend_from_slice(&data::encode(MESSAGE));
    expected.extend_from_slice(b"QUIT\r\n");
    assert_eq!(
        String::from_utf8_lossy(&whole.output),
        String::from_utf8_lossy(&expected)
    );
    assert!(whole.log.contains(&"AUTH PLAIN <redacted>".to_string()));
    assert!(!whole.log.iter().any(|l| l.contains("AHRpbQ")));
    assert!(
        whole
            .outcome
            .starts_with("accepted true tls true auth Some(Plain)"),
        "{}",
        whole.outcome
    );
    assert!(whole.outcome.contains("250 2.0.0 Ok: queued as 4XyZ"));
    let longest = BEFORE_TLS.len().max(AFTER_TLS.len());
    for chunk in 1..=longest {
        assert_eq!(recorded_session(chunk), whole, "chunks of {chunk} bytes");
    }
}

/// A server that offers no STARTTLS, for a client that wants it only if
/// offered (a loopback server with no mode named).
const NO_STARTTLS: &[u8] =
    b"220 mx.test ESMTP\r\n250-mx.test\r\n250-8BITMIME\r\n250 SIZE 10000\r\n\
250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n250 2.0.0 Ok\r\n221 2.0.0 bye\r\n";

/// STARTTLS if offered: the upgrade when the server offers it, exactly as
/// when required; plain text when it does not, in every chunk size.
#[test]
fn starttls_if_offered_in_every_chunk_size() {
    let if_offered = |credentials: bool| {
        let mut config = config(&["tim@mx.test", "ann@mx.test"]);
        config.tls = TlsPolicy::StartTlsIfOffered;
        if !credentials {
            config.credentials = None;
            config.recipients.truncate(1);
        }
        config
    };
    let required = config(&["tim@mx.test", "ann@mx.test"]);
    let upgraded = session_against(if_offered(true), &[BEFORE_TLS, AFTER_TLS], usize::MAX);
    assert_eq!(
        upgraded,
        session_against(required, &[BEFORE_TLS, AFTER_TLS], usize::MAX)
    );
    assert!(
        upgraded.outcome.contains("tls true"),
        "{}",
        upgraded.outcome
    );

    let plain = session_against(if_offered(false), &[NO_STARTTLS], usize::MAX);
    let output = String::from_utf8_lossy(&plain.output);
    assert!(
        output.starts_with("EHLO client.example\r\nMAIL FROM:<a@example.org>"),
        "{output}"
    );
    assert!(!output.contains("STARTTLS"), "{output}");
    assert!(
        plain.outcome.starts_with("accepted true tls false"),
        "{}",
        plain.outcome
    );
    for chunk in 1..=NO_STARTTLS.len() {
        let run = session_against(if_offered(false), &[NO_STARTTLS], chunk);
        assert_eq!(run, plain, "chunks of {chunk} bytes");
    }
}

/// The server side of an in-memory conversation.
struct ServerSide {
    server: SmtpServer,
    /// Bytes of an unfinished command line.
    line: Vec<u8>,
    /// Receiving message data.
    data: Option<DataReceiver>,
    /// The message received so far.
    message: Vec<u8>,
    /// What was delivered, with its envelope.
    delivered: Vec<(Envelope, Vec<u8>)>,
    /// Waiting for the client's TLS handshake.
    tls_pending: bool,
    closed: bool,
}

impl ServerSide {
    fn new() -> Self {
        let mut users = Users::none();
        users.add("tim", Secret::new("tanstaafl")).unwrap();
        users.add("ann", Secret::new("other")).unwrap();
        let policy = Policy {
            hostname: "mx.test".into(),
            max_size: 10_000,
            tls_available: true,
            users: Arc::new(users),
        };
        ServerSide {
            server: SmtpServer::new(policy, false),
            line: Vec::new(),
            data: None,
            message: Vec::new(),
            delivered: Vec::new(),
            tls_pending: false,
            closed: false,
        }
    }

    /// Takes client bytes; appends the replies to `out`.
    fn receive(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() && !self.closed {
            assert!(!self.tls_pending, "client bytes before the handshake");
            if let Some(receiver) = &mut self.data {
                let used = receiver.feed(input, &mut self.message);
                input = &input[used..];
                if receiver.is_done() {
                    self.data = None;
                    let envelope = self.server.envelope().expect("in the data phase");
                    let message = std::mem::take(&mut self.message);
                    self.delivered.push((envelope, message));
                    let id = format!("ID{}", self.delivered.len());
                    let reply = self.server.data_done(DataOutcome::Delivered(id));
                    out.extend_from_slice(&reply.to_bytes());
                }
                continue;
            }
            let Some(end) = input.iter().position(|&b| b == b'\n') else {
                self.line.extend_from_slice(input);
                break;
            };
            self.line.extend_from_slice(&input[..=end]);
            input = &input[end + 1..];
            let line = std::mem::take(&mut self.line);
            let step = self.server.command(&line);
            out.extend_from_slice(&step.reply.to_bytes());
            match step.action {
                Action::Continue => {}
                Action::StartTls => self.tls_pending = true,
                Action::ReceiveData => self.data = Some(DataReceiver::new()),
                Action::Close => self.closed = true,
            }
        }
    }
}

/// Our client and our server, bytes handed over in chunks of `chunk`.
fn conversation(chunk: usize) -> (ServerSide, Result<Report, Box<(Error, Report)>>) {
    let mut server = ServerSide::new();
    let mut client = Client::new(config(&["tim@mx.test", "ann@mx.test"]));
    let mut reader = ReplyReader::new();
    let mut to_client = server.server.greeting().to_bytes();
    let mut to_server: Vec<u8> = Vec::new();
    let mut rounds = 0;
    'session: loop {
        rounds += 1;
        assert!(rounds < 100, "no progress");
        for piece in to_client.chunks(chunk) {
            reader
                .feed(piece)
                .expect("the server's replies are well-formed");
        }
        to_client.clear();
        while let Some(reply) = reader.next_reply() {
            let mut event = client.on_reply(reply);
            if event == Event::StartTls {
                assert!(server.tls_pending && to_server.is_empty());
                assert_eq!(reader.discard(), 0);
                server.tls_pending = false;
                server.server.tls_started();
                event = client.tls_established();
            }
            match event {
                Event::Send(flight) => to_server.extend_from_slice(&flight.wire),
                Event::SendMessage { then, .. } => {
                    to_server.extend_from_slice(&data::encode(MESSAGE));
                    to_server.extend(then.map(|f| f.wire).unwrap_or_default());
                }
                Event::Wait => {}
                Event::StartTls => unreachable!("handled above"),
                Event::Abort(_) | Event::Close | Event::Idle | Event::NeedSecret => break 'session,
            }
        }
        if server.closed || to_server.is_empty() {
            break;
        }
        for piece in to_server.chunks(chunk) {
            server.receive(piece, &mut to_client);
        }
        to_server.clear();
    }
    (server, client.finish())
}

/// The client machine and the server machine agree: STARTTLS, AUTH PLAIN,
/// a pipelined envelope, and the message arrives byte for byte.
#[test]
fn client_and_server_machines_talk() {
    for chunk in [1, 2, 3, 7, 64, usize::MAX] {
        let (server, outcome) = conversation(chunk);
        let report = outcome.unwrap_or_else(|e| panic!("chunks of {chunk}: {e:?}"));
        assert!(report.accepted && report.tls);
        assert_eq!(report.auth, Some(Mechanism::Plain));
        assert!(report
            .recipients
            .iter()
            .all(|r| r.state == RecipientState::Accepted));
        assert_eq!(
            report.final_reply.map(|r| r.text()).as_deref(),
            Some("OK: queued as ID1")
        );
        assert!(server.closed, "QUIT reached the server");
        let [(envelope, message)] = &server.delivered[..] else {
            panic!("one message delivered: {:?}", server.delivered.len());
        };
        assert_eq!(message, MESSAGE, "chunks of {chunk}");
        assert_eq!(envelope.from, "a@example.org");
        assert_eq!(envelope.mailboxes, ["tim", "ann"]);
        assert_eq!(envelope.authenticated.as_deref(), Some("tim"));
        assert!(envelope.tls && envelope.esmtp);
    }
}

/// A refusal by our server reaches our client as a typed error: a wrong
/// password is [`Error::AuthRefused`], and no mail is sent.
#[test]
fn refused_login_between_the_machines() {
    let mut server = ServerSide::new();
    let mut cfg = config(&["tim@mx.test"]);
    if let Some(c) = cfg.credentials.as_mut() {
        c.secret = Some(Secret::new("wrong"));
        c.mechanism = Some(Mechanism::Login);
    }
    let mut client = Client::new(cfg);
    let mut reader = ReplyReader::new();
    let mut to_client = server.server.greeting().to_bytes();
    while !to_client.is_empty() {
        reader.feed(&to_client).unwrap();
        to_client.clear();
        while let Some(reply) = reader.next_reply() {
            let event = match client.on_reply(reply) {
                Event::StartTls => {
                    server.tls_pending = false;
                    server.server.tls_started();
                    client.tls_established()
                }
                other => other,
            };
            if let Event::Send(flight) = event {
                server.receive(&flight.wire, &mut to_client);
            }
        }
    }
    let (err, report) = *client.finish().unwrap_err();
    assert!(
        matches!(&err, Error::AuthRefused { mechanism: Some(Mechanism::Login), reply } if reply.code == 535),
        "{err:?}"
    );
    assert!(!report.accepted && server.delivered.is_empty() && server.closed);
}
