//! `mailctl send`: turn the command line into a message, an envelope and
//! connection settings, and hand them to [`crate::net::smtp::submit`].

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, ValueEnum};

use super::Globals;
use crate::cli::ConnectArgs;
use crate::config::ResolvedServer;
use crate::exit::{fail, Exit};
use crate::mail::compose::text::{self, Charset, ReadTextError, TextBody};
use crate::mail::compose::{self, address, Draft, Mailbox, Message};
use crate::mail::raw;
use crate::net::smtp::{self, Envelope, Settings};
use crate::proto::sasl::Mechanism;
use crate::store::outbox::Connection;
use crate::transcript::Transcript;
use encoding_rs::Encoding;

/// `--auth` choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuthChoice {
    /// The strongest password mechanism the server offers (SCRAM-*-PLUS
    /// first over TLS); EXTERNAL first with --cert; for an account with
    /// OAuth 2, OAUTHBEARER, then XOAUTH2.
    Auto,
    /// PLAIN (RFC 4616), sent as an initial response.
    Plain,
    /// LOGIN.
    Login,
    /// CRAM-MD5 (RFC 2195): the password itself is not sent.
    CramMd5,
    /// XOAUTH2: the password source yields an OAuth 2 access token.
    #[value(name = "xoauth2")]
    XOAuth2,
    /// OAUTHBEARER (RFC 7628): an OAuth 2 access token, as XOAUTH2.
    #[value(name = "oauthbearer")]
    OAuthBearer,
    /// SCRAM-SHA-1 (RFC 5802): the password is not sent and the server
    /// proves it knows it.
    #[value(name = "scram-sha-1")]
    ScramSha1,
    /// SCRAM-SHA-256 (RFC 7677), preferred by `auto` when offered.
    #[value(name = "scram-sha-256")]
    ScramSha256,
    /// SCRAM-SHA-1-PLUS: SCRAM-SHA-1 bound to the TLS session
    /// (tls-server-end-point), so a man in the middle cannot relay it.
    #[value(name = "scram-sha-1-plus")]
    ScramSha1Plus,
    /// SCRAM-SHA-256-PLUS, preferred by `auto` over TLS when offered.
    #[value(name = "scram-sha-256-plus")]
    ScramSha256Plus,
    /// EXTERNAL (RFC 4422): the identity of the TLS client certificate
    /// (--cert, --key), no password; `auto` uses it when offered and a
    /// certificate is given.
    External,
}

impl AuthChoice {
    fn mechanism(self) -> Option<Mechanism> {
        match self {
            AuthChoice::Auto => None,
            AuthChoice::Plain => Some(Mechanism::Plain),
            AuthChoice::Login => Some(Mechanism::Login),
            AuthChoice::CramMd5 => Some(Mechanism::CramMd5),
            AuthChoice::XOAuth2 => Some(Mechanism::XOAuth2),
            AuthChoice::OAuthBearer => Some(Mechanism::OAuthBearer),
            AuthChoice::ScramSha1 => Some(Mechanism::ScramSha1),
            AuthChoice::ScramSha256 => Some(Mechanism::ScramSha256),
            AuthChoice::ScramSha1Plus => Some(Mechanism::ScramSha1Plus),
            AuthChoice::ScramSha256Plus => Some(Mechanism::ScramSha256Plus),
            AuthChoice::External => Some(Mechanism::External),
        }
    }
}

const COMPOSE_ONLY: &[&str] = &[
    "subject",
    "header",
    "body",
    "body_file",
    "charset",
    "html",
    "attach",
    "reply_to",
    "date",
    "message_id",
];

/// Options of `mailctl send`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  mailctl send --to bob@example.org --subject Report --body-file report.txt
  mailctl send --account work --to '\"Zhang San\" <z@example.net>' --attach a.pdf < note.txt
  df -h | mailctl send --server smtp.example.org:465 --user me --from me@example.org \\
      --to ops@example.org --subject 'disk usage'
  mailctl send --raw -t < message.eml
  mailctl send --dry-run --from a@example.org --to b@example.org --subject test --body x

The password comes from MAILCTL_PASSWORD, the first line printed by --password-command, \
or a prompt on the terminal; never from an argument.

Exit status: 0 sent; 64 usage; 65 bad message data; 66 input file missing; 67 every \
recipient refused; 68 host not found; 69 permanent refusal (5xx); 75 temporary failure \
(4xx, time-out, dropped connection: retry later); 76 malformed reply or TLS failure; \
77 authentication refused; 78 configuration. With --queue, a temporary failure exits 0 once the \
message is in the outbox (see `mailctl queue`).")]
pub struct SendArgs {
    /// Where and how to connect.
    #[command(flatten)]
    pub connect: ConnectArgs,

    /// SASL mechanism (with --user).
    #[arg(long, value_enum, value_name = "MECH", requires = "user")]
    pub auth: Option<AuthChoice>,

    /// Sender address; also the envelope sender.
    #[arg(long, value_name = "ADDR")]
    pub from: Option<String>,

    /// Recipient; repeat the option or separate addresses with commas;
    /// `"Name" <addr>` keeps a display name.
    #[arg(long, value_name = "ADDR")]
    pub to: Vec<String>,

    /// Copy recipient (repeatable, comma-separated).
    #[arg(long, value_name = "ADDR")]
    pub cc: Vec<String>,

    /// Blind copy recipient: gets the mail, never appears in the header.
    #[arg(long, value_name = "ADDR")]
    pub bcc: Vec<String>,

    /// Reply-To address.
    #[arg(long, value_name = "ADDR")]
    pub reply_to: Option<String>,

    /// Subject line (non-ASCII is RFC 2047 encoded).
    #[arg(long, value_name = "TEXT")]
    pub subject: Option<String>,

    /// Extra header field (repeatable).
    #[arg(long, value_name = "'Name: value'")]
    pub header: Vec<String>,

    /// Plain-text body.
    #[arg(long, value_name = "TEXT", conflicts_with = "body_file")]
    pub body: Option<String>,

    /// The charset of the body from --body-file or standard input, such as
    /// latin1 or windows-1252 [default: UTF-8 when it is valid UTF-8, else
    /// detected]; the body is sent transcoded to UTF-8.
    #[arg(long, value_name = "NAME", conflicts_with = "body")]
    pub charset: Option<String>,

    /// Read the plain-text body from FILE. Without --body or --body-file,
    /// the body is read from standard input; on a terminal, typed up to a
    /// Ctrl-D on a line of its own. A body over 1 MiB is spooled to an
    /// unlinked file in $TMPDIR, not held in memory.
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,

    /// HTML alternative to the text body (multipart/alternative), from a
    /// regular file in UTF-8; over 1 MiB it is spooled like --body-file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Attach a file (repeatable); its MIME type is guessed from its name.
    #[arg(long, value_name = "FILE")]
    pub attach: Vec<PathBuf>,

    /// Send standard input as a complete, ready-made message (its Bcc and
    /// Resent-Bcc fields removed).
    #[arg(long, conflicts_with_all = COMPOSE_ONLY)]
    pub raw: bool,

    /// With --raw: take the recipients from the message's To, Cc and Bcc.
    #[arg(short = 't', long = "read-recipients", requires = "raw")]
    pub read_recipients: bool,

    /// Print the complete message on standard output; do not connect.
    #[arg(long, conflicts_with = "json")]
    pub dry_run: bool,

    /// Print one JSON object describing the outcome on standard output.
    #[arg(long)]
    pub json: bool,

    /// Fixed Date header (RFC 5322), for reproducible messages.
    #[arg(long, value_name = "DATE")]
    pub date: Option<String>,

    /// Fixed Message-ID, for reproducible messages.
    #[arg(long, value_name = "ID")]
    pub message_id: Option<String>,

    /// Name to announce in EHLO (default: the host name if fully
    /// qualified, else localhost).
    #[arg(long, value_name = "NAME")]
    pub helo: Option<String>,

    /// Queueing in the outbox.
    #[command(flatten)]
    pub queueing: super::queue::QueueFlags,

    /// Delivery status notifications (RFC 3461) for every recipient:
    /// `never`, or a list of `success`, `failure`, `delay`. The server must
    /// offer DSN, else nothing is sent (exit 69).
    #[arg(long, value_name = "WHEN")]
    pub notify: Option<String>,

    /// What a delivery status notification returns: the `full` message or
    /// its `hdrs` (header).
    #[arg(long, value_enum, value_name = "WHAT")]
    pub ret: Option<RetChoice>,

    /// An envelope id that delivery status notifications quote (printable
    /// ASCII, at most 100 characters).
    #[arg(long, value_name = "ID")]
    pub envid: Option<String>,

    /// Keep a copy of the message once the server accepted it:
    /// `maildir:DIR` (the exact bytes sent) or `mbox:FILE` [default: the
    /// account's `save_copy`]. Queued messages get theirs when sent.
    #[arg(long, value_name = "maildir:DIR|mbox:FILE")]
    pub save_copy: Option<String>,
}

/// `--ret` choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RetChoice {
    /// The whole message.
    Full,
    /// The header only.
    Hdrs,
}

/// The DSN requests of `--notify`, `--ret`, `--envid` (sendmail's `-N`,
/// `-R`, `-V`), checked: a usage error (64) names a bad value.
pub fn dsn_from(
    notify: Option<&str>,
    ret: Option<&str>,
    envid: Option<&str>,
) -> anyhow::Result<crate::proto::smtp::client::Dsn> {
    use crate::proto::smtp::command::{notify_value, DsnRet};
    let notify = notify
        .map(notify_value)
        .transpose()
        .map_err(|e| fail(Exit::Usage, e.to_string()))?;
    let ret = match ret {
        None => None,
        Some(r) if r.eq_ignore_ascii_case("full") => Some(DsnRet::Full),
        Some(r) if r.eq_ignore_ascii_case("hdrs") => Some(DsnRet::Hdrs),
        Some(r) => crate::bail_with!(
            Exit::Usage,
            "RET '{}': expected full or hdrs",
            crate::text::printable(r.as_bytes())
        ),
    };
    if let Some(id) = envid {
        if id.is_empty() || id.len() > 100 || !id.bytes().all(|b| (b' '..=b'~').contains(&b)) {
            crate::bail_with!(
                Exit::Usage,
                "ENVID '{}': expected 1 to 100 printable ASCII characters",
                crate::text::printable(id.as_bytes())
            );
        }
    }
    Ok(crate::proto::smtp::client::Dsn {
        notify,
        ret,
        envid: envid.map(str::to_string),
    })
}

fn input_error(e: &std::io::Error) -> Exit {
    match e.kind() {
        std::io::ErrorKind::NotFound
        | std::io::ErrorKind::PermissionDenied
        | std::io::ErrorKind::IsADirectory => Exit::NoInput,
        _ => Exit::IoErr,
    }
}

/// The encoding a `--charset` NAME stands for (any WHATWG label, such as
/// `latin1`, `iso-8859-15`, `cp1252`, `shift_jis`, `gb18030`).
pub fn charset_named(name: &str) -> anyhow::Result<&'static Encoding> {
    Encoding::for_label(name.trim().as_bytes()).ok_or_else(|| {
        fail(
            Exit::Usage,
            format!(
                "--charset {}: not a charset mailctl knows",
                crate::text::printable(name.as_bytes())
            ),
        )
    })
}

/// Reads the text body from `--body-file` or standard input: small bodies
/// in memory, large ones spooled, in the charset `declared` or else UTF-8
/// or the one detected (see [`text::read_text_in`]), transcoded to UTF-8.
/// With `verbose`, says on stderr what a body not in UTF-8 was read as.
pub fn read_text_body(
    path: Option<&Path>,
    declared: Option<&'static Encoding>,
    verbose: bool,
) -> anyhow::Result<TextBody> {
    let result = match path {
        Some(path) => {
            let mut file = std::fs::File::open(path).map_err(|e| {
                fail(
                    input_error(&e),
                    format!("body file {}: {e}", path.display()),
                )
            })?;
            text::read_text_in(&mut file, declared)
        }
        None => text::read_text_in(&mut std::io::stdin().lock(), declared),
    };
    let source = match path {
        Some(path) => format!("body file {}", path.display()),
        None => "the body on standard input".to_string(),
    };
    match &result {
        Ok((_, Charset::Detected(encoding))) if verbose => eprintln!(
            "mailctl: {source} is not UTF-8: read as {} (detected; --charset names another), sent as UTF-8",
            encoding.name()
        ),
        Ok((_, Charset::Declared(encoding))) if verbose => eprintln!(
            "mailctl: {source} read as {} (--charset), sent as UTF-8",
            encoding.name()
        ),
        _ => {}
    }
    result.map(|(body, _)| body).map_err(|e| match (e, path) {
        (ReadTextError::Io(e), Some(path)) => fail(
            input_error(&e),
            format!("body file {}: {e}", path.display()),
        ),
        (ReadTextError::Io(e), None) => fail(Exit::IoErr, format!("reading standard input: {e}")),
        (ReadTextError::NotUtf8, Some(path)) => fail(
            Exit::DataErr,
            format!(
                "body file {} is not UTF-8 (give its charset with --charset)",
                path.display()
            ),
        ),
        (ReadTextError::NotUtf8, None) => fail(
            Exit::DataErr,
            "the body on standard input is not UTF-8 (give its charset with --charset)",
        ),
    })
}

/// Reads the `--html` file like a body file (small in memory, large
/// spooled); like an attachment, it must be a regular file, so that a
/// device or a pipe cannot feed it without end.
fn read_html(path: &Path) -> anyhow::Result<TextBody> {
    let shown = || path.display();
    let open_error =
        |e: std::io::Error| fail(input_error(&e), format!("HTML file {}: {e}", shown()));
    let mut file = std::fs::File::open(path).map_err(open_error)?;
    if !file.metadata().map_err(open_error)?.is_file() {
        crate::bail_with!(Exit::NoInput, "HTML file {}: not a regular file", shown());
    }
    text::read_text(&mut file).map_err(|e| match e {
        ReadTextError::Io(e) => fail(input_error(&e), format!("HTML file {}: {e}", shown())),
        ReadTextError::NotUtf8 => {
            fail(Exit::DataErr, format!("HTML file {} is not UTF-8", shown()))
        }
    })
}

fn mailboxes(values: &[String]) -> anyhow::Result<Vec<Mailbox>> {
    let mut out = Vec::new();
    for v in values {
        out.extend(address::parse_list(v)?);
    }
    Ok(out)
}

/// `--raw`: the message on standard input as it is (Bcc and Resent-Bcc
/// removed), to the recipients `given` on the command line and, with `-t`,
/// those of its header.
fn build_raw(
    args: &SendArgs,
    from: Option<&Mailbox>,
    given: impl Iterator<Item = String>,
) -> anyhow::Result<(Message, Envelope)> {
    let raw = raw::read(&mut std::io::stdin().lock(), raw::End::Eof)?;
    if raw.is_empty() {
        crate::bail_with!(Exit::DataErr, "the message on standard input is empty");
    }
    let sender = match (&from, &raw.from) {
        (Some(m), _) => m.address.clone(),
        (None, Some(a)) => address::ascii_domain(a)?,
        (None, None) => crate::bail_with!(
            Exit::Usage,
            "no sender: give --from or a From header in the message"
        ),
    };
    let mut recipients: Vec<String> = Vec::new();
    let header = if args.read_recipients {
        raw.header_recipients.clone()
    } else {
        Vec::new()
    };
    for a in header.into_iter().chain(given) {
        address::check_address(&a)?;
        let a = address::ascii_domain(&a)?;
        if !recipients.iter().any(|r| r.eq_ignore_ascii_case(&a)) {
            recipients.push(a);
        }
    }
    if recipients.is_empty() {
        crate::bail_with!(
            Exit::Usage,
            "no recipients: give --to, or -t to read them from the message"
        );
    }
    Ok((
        raw.into_message(b""),
        Envelope {
            from: sender,
            recipients,
            dsn: Default::default(),
        },
    ))
}

/// The message and envelope the command line describes.
fn build(
    args: &SendArgs,
    account_from: Option<&str>,
    verbose: bool,
) -> anyhow::Result<(Message, Envelope)> {
    let to = mailboxes(&args.to)?;
    let cc = mailboxes(&args.cc)?;
    let bcc = mailboxes(&args.bcc)?;
    let from = args
        .from
        .as_deref()
        .or(account_from)
        .map(Mailbox::parse)
        .transpose()?;

    if args.raw {
        let given = to.iter().chain(&cc).chain(&bcc);
        return build_raw(args, from.as_ref(), given.map(|m| m.address.clone()));
    }

    let charset = args.charset.as_deref().map(charset_named).transpose()?;
    let body = match (&args.body, &args.body_file) {
        (Some(body), _) => Some(TextBody::Memory(body.clone())),
        (None, Some(path)) => Some(read_text_body(Some(path), charset, verbose)?),
        // On a terminal with an HTML part: HTML only, as before.
        (None, None) if std::io::stdin().is_terminal() && args.html.is_some() => None,
        (None, None) => {
            if std::io::stdin().is_terminal() {
                eprintln!("(enter the message, end with Ctrl-D on a line of its own)");
            }
            match read_text_body(None, charset, verbose)? {
                // An empty pipe with an HTML part means "HTML only".
                TextBody::Memory(body) if body.is_empty() && args.html.is_some() => None,
                body => Some(body),
            }
        }
    };
    let (text, spooled_text) = match body {
        Some(TextBody::Memory(text)) => (Some(text), None),
        Some(TextBody::Spooled(spooled)) => (None, Some(Arc::new(spooled))),
        None => (None, None),
    };
    let (html, spooled_html) = match args.html.as_deref().map(read_html).transpose()? {
        Some(TextBody::Memory(html)) => (Some(html), None),
        Some(TextBody::Spooled(spooled)) => (None, Some(Arc::new(spooled.into_html()))),
        None => (None, None),
    };
    let headers = args
        .header
        .iter()
        .map(|h| compose::parse_header(h))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let reply_to = match &args.reply_to {
        Some(r) => address::parse_list(r)?,
        None => Vec::new(),
    };
    let draft = Draft {
        from,
        to,
        cc,
        bcc,
        reply_to,
        subject: args.subject.clone(),
        headers,
        text,
        spooled_text,
        html,
        spooled_html,
        attachments: args.attach.clone(),
        date: args.date.clone(),
        message_id: args.message_id.clone(),
    };
    let envelope = draft.envelope()?;
    Ok((draft.build()?, envelope))
}

/// The mechanism and EHLO name for the resolved server: `--auth` wins over
/// the account's `auth`.
fn settings(
    args: &SendArgs,
    server: &ResolvedServer,
) -> anyhow::Result<(Option<Mechanism>, Option<String>)> {
    if let Some(helo) = &args.helo {
        crate::proto::smtp::command::Command::Ehlo(helo).render()?;
    }
    let mechanism = match args.auth {
        Some(choice) => choice.mechanism(),
        None => server.smtp_mechanism(),
    };
    Ok((mechanism, args.helo.clone()))
}

/// Settings for [`crate::net::smtp::submit`] from a resolved server: the
/// login ([`ResolvedServer::login`]) with `mechanism` (`None`: the
/// strongest offered) and `helo_name` as the EHLO name (`None`: default).
/// An account with OAuth 2 logs in with its access token unless a password
/// mechanism is asked for.
pub(crate) fn smtp_settings(
    server: &ResolvedServer,
    mechanism: Option<Mechanism>,
    helo_name: Option<String>,
) -> anyhow::Result<Settings> {
    Ok(smtp_login(server, mechanism, helo_name, &Transcript::off())?.0)
}

/// [`smtp_settings`], and whether the secret is a cached OAuth 2 token
/// (which a refusal makes worth one retry with a fresh one).
fn smtp_login(
    server: &ResolvedServer,
    mechanism: Option<Mechanism>,
    helo_name: Option<String>,
    transcript: &Transcript,
) -> anyhow::Result<(Settings, bool)> {
    let mut cached = false;
    let client_cert = server.tls_options.client_cert.is_some();
    super::require_client_cert(mechanism == Some(Mechanism::External), server)?;
    let mut secret_source = None;
    let credentials = match server.login_user()? {
        Some(user) => {
            let wants_token = mechanism.is_none_or(Mechanism::takes_token);
            let (secret, token) = match super::oauth2::token_for(server, wants_token, transcript)? {
                Some(access) => {
                    cached = access.cached;
                    (Some(access.secret), true)
                }
                // EXTERNAL may be chosen: the password only if it is not.
                None if client_cert && mechanism.is_none_or(|m| !m.needs_secret()) => {
                    secret_source = Some(password_source(server));
                    (None, false)
                }
                None => (
                    Some(server.obtain_password()?),
                    mechanism.is_some_and(Mechanism::takes_token),
                ),
            };
            Some(crate::proto::smtp::client::Credentials {
                user,
                secret,
                mechanism,
                token,
                client_cert,
                nonce: crate::crypto::nonce()?,
            })
        }
        None => None,
    };
    let settings = Settings {
        endpoint: server.endpoint.clone(),
        tls: server.tls,
        tls_options: server.tls_options.clone(),
        timeout: server.checked_timeout()?,
        helo_name,
        credentials,
        secret_source,
    };
    Ok((settings, cached))
}

/// The account's password source, consulted only when the session needs it.
fn password_source(server: &ResolvedServer) -> smtp::SecretSource {
    let server = server.clone();
    smtp::SecretSource(Arc::new(move || server.obtain_password()))
}

/// Submits the message; when the server refuses a cached OAuth 2 token,
/// once more with a fresh one (nothing was sent: AUTH comes before MAIL).
pub(crate) fn submit_with_login(
    server: &ResolvedServer,
    mechanism: Option<Mechanism>,
    helo_name: Option<String>,
    envelope: &smtp::Envelope,
    message: &Message,
    transcript: &Transcript,
) -> anyhow::Result<Result<smtp::SubmitReport, smtp::SubmitError>> {
    let (mut settings, cached) = smtp_login(server, mechanism, helo_name, transcript)?;
    let first = smtp::submit(&settings, envelope, message, transcript);
    let refused = |e: &smtp::SubmitError| {
        matches!(
            e.error.downcast_ref::<crate::proto::smtp::Error>(),
            Some(crate::proto::smtp::Error::AuthRefused { .. })
        )
    };
    match (&first, &server.oauth2, settings.credentials.as_mut()) {
        (Err(e), Some(oauth2), Some(credentials)) if cached && credentials.token && refused(e) => {
            credentials.secret = Some(super::oauth2::fresh_token(oauth2, transcript)?);
            Ok(smtp::submit(&settings, envelope, message, transcript))
        }
        _ => Ok(first),
    }
}

/// Prints the JSON report. A reader that went away (`| head -c0`) is not
/// an error: above all it must not turn a sent message into a failure that
/// a wrapper would retry, sending the message twice.
fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{value}").and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(fail(Exit::IoErr, format!("writing standard output: {e}")))
        }
        _ => Ok(()),
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// What `send` records to reach the server again: the flags and the
/// account, never a password.
fn connection_record(args: &SendArgs, server: &ResolvedServer) -> Connection {
    let connect = &args.connect;
    Connection {
        account: server.account.clone(),
        server: connect.server.clone(),
        tls: connect
            .tls
            .and_then(|t| t.to_possible_value())
            .map(|v| v.get_name().to_string()),
        ca_file: connect.ca_file.clone(),
        insecure: connect.insecure,
        cert: connect.cert.clone(),
        key: connect.key.clone(),
        user: connect.user.clone(),
        password_command: connect.password_command.clone(),
        timeout: connect.timeout,
        auth: args
            .auth
            .and_then(|a| a.to_possible_value())
            .map(|v| v.get_name().to_string()),
        helo: args.helo.clone(),
    }
}

/// Where a message goes besides the server: the account's outbox
/// settings and the sent copy.
struct Outgoing<'a> {
    server: &'a ResolvedServer,
    queueing: &'a crate::config::QueueSettings,
    /// `--save-copy` or the file's `save_copy`.
    copy: Option<String>,
}

/// Puts the message in the outbox for `envelope`'s recipients and says so
/// on stderr; `reason` is why sending now failed, if it was tried.
fn queue_message(
    args: &SendArgs,
    outgoing: &Outgoing<'_>,
    envelope: &Envelope,
    message: &Message,
    reason: Option<String>,
) -> anyhow::Result<String> {
    let root = super::queue::outbox_root(args.queueing.outbox.as_deref(), outgoing.queueing)?;
    let id = super::queue::enqueue(
        &root,
        super::queue::ToQueue {
            connection: connection_record(args, outgoing.server),
            envelope,
            message,
            reason: reason.clone(),
            dsn: super::queue::dsn_request(&envelope.dsn),
            save_copy: outgoing.copy.clone(),
        },
    )?;
    super::queue::say_queued(&id, reason.as_deref());
    Ok(id)
}

/// Runs `mailctl send`.
pub fn run(args: SendArgs, globals: Globals) -> anyhow::Result<Exit> {
    let json = args.json;
    match send(args, globals) {
        Ok(exit) => Ok(exit),
        Err(Failed::Reported(err)) => Err(err),
        Err(Failed::Early(err)) => {
            if json {
                // Failures before the attempt (bad options, missing files)
                // still give one JSON object: scripts never parse prose.
                print_json(&serde_json::json!({
                    "status": "failed",
                    "exit_code": crate::exit::exit_status(&err).code(),
                    "error": crate::text::printable(format!("{err:#}").as_bytes()),
                    "server": null,
                    "tls": false,
                    "auth": null,
                    "message_id": null,
                    "size": null,
                    "recipients": [],
                    "final_reply": null,
                    "queue_id": null,
                }))?;
            }
            Err(err)
        }
    }
}

/// A failure, and whether its JSON report was printed already.
enum Failed {
    /// Before the attempt: nothing printed yet.
    Early(anyhow::Error),
    /// The attempt's JSON report (if asked for) is out.
    Reported(anyhow::Error),
}

/// `--dry-run`: the envelope on stderr, as the commands that would carry it
/// (every recipient, Bcc included), before the message goes to stdout.
fn print_envelope(envelope: &smtp::Envelope) {
    use std::io::Write as _;
    let mut lines = vec![format!("MAIL FROM:<{}>", envelope.from)];
    lines.extend(envelope.recipients.iter().map(|r| format!("RCPT TO:<{r}>")));
    let mut err = std::io::stderr().lock();
    for line in lines {
        let _ = writeln!(
            err,
            "mailctl: dry run: {}",
            crate::text::printable(line.as_bytes())
        );
    }
}

fn send(args: SendArgs, globals: Globals) -> Result<Exit, Failed> {
    // Resolved before reading a message from standard input, so a missing
    // server or a broken config file is reported first.
    let server = match crate::config::resolve_smtp(&args.connect, globals.config) {
        Ok(server) => Some(server),
        Err(_) if args.dry_run => None,
        Err(err) => return Err(Failed::Early(err)),
    };
    let account_from = server.as_ref().and_then(|s| s.from.as_deref());
    let (message, mut envelope) =
        build(&args, account_from, globals.verbose > 0).map_err(Failed::Early)?;
    let ret = args.ret.map(|r| match r {
        RetChoice::Full => "full",
        RetChoice::Hdrs => "hdrs",
    });
    envelope.dsn =
        dsn_from(args.notify.as_deref(), ret, args.envid.as_deref()).map_err(Failed::Early)?;
    let transcript = Transcript::stderr(globals.verbose > 0);

    if args.dry_run {
        print_envelope(&envelope);
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        return match message
            .write_to(&mut out)
            .and_then(|_| out.flush().map_err(Into::into))
        {
            Ok(()) => Ok(Exit::Ok),
            // `mailctl send --dry-run ... | head`: the reader has seen enough.
            Err(e) if is_broken_pipe(&e) => Ok(Exit::Ok),
            Err(e) => Err(Failed::Early(fail(
                Exit::IoErr,
                format!("writing the message: {e:#}"),
            ))),
        };
    }

    let server = server.ok_or_else(|| {
        Failed::Early(fail(Exit::Software, "no server resolved outside --dry-run"))
    })?;
    // `--server` without an account does not read the file, unless the
    // outbox is wanted (its `outbox` key).
    let queueing = if server.account.is_some() || args.queueing.queue || args.queueing.queue_only {
        crate::config::queue_settings(server.account.as_deref(), globals.config)
            .map_err(Failed::Early)?
    } else {
        crate::config::QueueSettings::default()
    };
    let copy = args
        .save_copy
        .clone()
        .or_else(|| queueing.save_copy.clone());
    let target = copy
        .as_deref()
        .map(super::copy::parse_target)
        .transpose()
        .map_err(Failed::Early)?;
    let outgoing = Outgoing {
        server: &server,
        queueing: &queueing,
        copy,
    };
    if args.queueing.queue_only {
        let id =
            queue_message(&args, &outgoing, &envelope, &message, None).map_err(Failed::Early)?;
        if args.json {
            let value = serde_json::json!({"status": "queued", "exit_code": 0, "queue_entry": id});
            print_json(&value).map_err(Failed::Reported)?;
        }
        return Ok(Exit::Ok);
    }
    let (mechanism, helo) = settings(&args, &server).map_err(Failed::Early)?;
    let progress = crate::cmd::progress::Progress::sending(message.size(), globals.verbose > 0);
    let mut message = message;
    message.count_bytes_with(progress.byte_counter());
    let submitted = submit_with_login(&server, mechanism, helo, &envelope, &message, &transcript)
        .map_err(Failed::Early)?;
    drop(progress);
    match submitted {
        Ok(report) => {
            if let Some(target) = &target {
                keep_copy(target, &message);
            }
            if args.json {
                print_json(&report.to_json(None, 0)).map_err(Failed::Reported)?;
            } else if std::io::stderr().is_terminal() {
                eprintln!("{}", sent_summary(&report));
            }
            Ok(Exit::Ok)
        }
        Err(failed) if args.queueing.queue && super::queue::is_temporary(&failed.error) => {
            // What was delivered already is not sent again.
            let rest = super::queue::undelivered(&envelope, &failed.report);
            let reason = crate::text::printable(format!("{:#}", failed.error).as_bytes());
            let id = queue_message(&args, &outgoing, &rest, &message, Some(reason.clone()))
                .map_err(Failed::Reported)?;
            if args.json {
                let mut value = failed.report.to_json(None, 0);
                value["status"] = "queued".into();
                value["queue_entry"] = id.into();
                value["error"] = reason.into();
                print_json(&value).map_err(Failed::Reported)?;
            }
            Ok(Exit::Ok)
        }
        Err(failed) => {
            let error =
                crate::config::with_tls_hint(failed.error, server.endpoint.port, server.tls);
            if args.json {
                let code = crate::exit::exit_status(&error).code();
                print_json(&failed.report.to_json(Some(&error), code)).map_err(Failed::Reported)?;
            }
            Err(Failed::Reported(error))
        }
    }
}

/// The one line a successful send shows on a terminal: how many
/// recipients got the message, through which server, and its final reply.
fn sent_summary(report: &smtp::SubmitReport) -> String {
    let delivered = report.recipients.iter().filter(|r| r.delivered).count();
    let noun = if delivered == 1 {
        "recipient"
    } else {
        "recipients"
    };
    let mut line = format!("sent to {delivered} {noun} via {}", report.server);
    if let Some(reply) = &report.final_reply {
        line.push_str(&format!(" ({reply})"));
    }
    line
}

/// Saves the sent copy; the message is out already, so a failure here is
/// a warning, not a failure a wrapper would retry (sending it twice).
pub(crate) fn keep_copy(target: &super::copy::CopyTarget, message: &Message) {
    if let Err(err) = super::copy::save_copy(target, message) {
        let _ = writeln!(
            std::io::stderr(),
            "mailctl: warning: sent, but the copy was not saved: {}",
            crate::text::printable(format!("{err:#}").as_bytes())
        );
    }
}
