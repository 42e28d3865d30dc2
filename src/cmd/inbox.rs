//! The web inbox and fault options of `mailctl serve` (`--http`,
//! `--fault`), and their start-up.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use clap::Args;

use crate::exit::{fail, Exit};
use crate::net::http::events::{Hub, LogSink};
use crate::net::http::{self, HttpOptions, HttpServer, Web};
use crate::net::serve::hooks::Hooks;
use crate::net::tls::Acceptor;
use crate::proto::smtp::fault::{parse_rule, Faults};
use crate::proto::users::Users;
use crate::store::index::MessageIndex;
use crate::store::mailbox::MailStore;
use crate::transcript::Transcript;

/// The grammar of `--fault`, for `serve --help`.
pub const FAULT_HELP: &str = "\
Answer a stage of SMTP sessions with a chosen reply (repeatable; also PUT /api/faults
at run time).
  RULE    = STAGE[:PATTERN]=REPLY[;first=N|;every=N|;probability=P[;seed=S]]
  STAGE   = connect | ehlo | auth | mail | rcpt | data | dot
  PATTERN = '*' matches any run, case ignored; matched against the address (mail, rcpt),
            the EHLO name (ehlo), the mechanism (auth), the client IP (connect), or any
            recipient (data, dot)
  REPLY   = a 4xx or 5xx reply line; at dot the message is not kept, at connect the
            connection is closed after it
  e.g. --fault 'rcpt:bob@example.com=452 4.2.2 mailbox full'
       --fault 'dot=421 4.3.0 try again later;first=1'";

/// The web inbox and fault options.
#[derive(Debug, Args)]
pub struct InboxArgs {
    /// Serve the web inbox and its JSON API here (e.g. 127.0.0.1:8025). Off
    /// a loopback address it needs users and HTTP basic authentication. It
    /// speaks HTTPS when --tls-* is given.
    #[arg(long, value_name = "ADDR:PORT")]
    pub http: Option<String>,

    /// Answer a stage of SMTP sessions with a chosen reply (repeatable;
    /// the grammar is in --help).
    #[arg(long = "fault", value_name = "RULE", long_help = FAULT_HELP)]
    pub faults: Vec<String>,
}

/// What `serve` gets from the inbox set-up.
pub struct Inbox {
    /// The sessions' hooks.
    pub hooks: Hooks,
    /// The transcript (also sent to the inbox's live log).
    pub transcript: Transcript,
    /// The web inbox, with `--http` (to stop it).
    pub http: Option<HttpServer>,
}

/// Parses the fault rules and, with `--http`, starts the web inbox.
/// `addr` is the parsed `--http` address; `tls` the identity for HTTPS.
pub fn start(
    args: &InboxArgs,
    addr: Option<SocketAddr>,
    maildir: &Path,
    store: &Arc<MailStore>,
    users: Arc<Users>,
    tls: Option<Acceptor>,
    verbose: bool,
) -> anyhow::Result<Inbox> {
    let rules = args
        .faults
        .iter()
        .map(|r| parse_rule(r).map_err(|e| fail(Exit::Usage, e.to_string())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let faults = Arc::new(Mutex::new(Faults::new(rules)));
    let Some(addr) = addr else {
        let hooks = Hooks { hub: None, faults };
        return Ok(Inbox {
            hooks,
            transcript: Transcript::stderr(verbose),
            http: None,
        });
    };
    if !addr.ip().is_loopback() && !users.exist() {
        return Err(fail(
            Exit::Usage,
            format!("--http on {addr}, not a loopback address, needs --users-file (basic authentication)"),
        ));
    }
    let hub = Hub::new();
    let web = Arc::new(Web {
        index: Arc::new(MessageIndex::new(maildir)),
        store: store.clone(),
        hub: hub.clone(),
        faults: faults.clone(),
    });
    let scheme = if tls.is_some() { "https" } else { "http" };
    let server = http::start(HttpOptions { addr, users, tls }, web).map_err(|e| {
        fail(
            Exit::TempFail,
            format!("cannot listen for http on {addr}: {e}"),
        )
    })?;
    eprintln!("mailctl: {scheme} listening on {}", server.addr);
    let sink = Arc::new(Mutex::new(LogSink::new(hub.clone(), verbose)));
    // Without -v, lines are made only while a page or client listens.
    let gate = (!verbose).then(|| hub.listened());
    Ok(Inbox {
        hooks: Hooks {
            hub: Some(hub),
            faults,
        },
        transcript: Transcript::to(sink, gate),
        http: Some(server),
    })
}
