//! `mailctl serve`: a local SMTP receiver and POP3 server over a directory
//! of Maildirs, for tests, CI jobs and trying mailctl out.

use std::fs;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::Globals;
use crate::exit::{fail, Exit};
use crate::net::serve::listener::{self, Limits, ServerOptions};
use crate::net::tls::Acceptor;
use crate::proto::users::{Policy, Users};
use crate::store::mailbox::MailStore;

/// Options of `mailctl serve`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  mailctl serve --maildir /tmp/mail -v                  # SMTP 127.0.0.1:2525, POP3 127.0.0.1:1110
  mailctl serve --maildir /tmp/mail --tls-self-signed /tmp/ca.pem
  mailctl serve --maildir /tmp/mail --users-file users.txt

Mailboxes: every mailbox is a Maildir DIR/<name>/. Mail to <local@any.domain> goes to the
mailbox named by the local part in lower case (letters, digits and . _ + - , and non-ASCII
characters written as %XX bytes); a POP3 login selects a mailbox the same way. Without --user
any sender, recipient and password is accepted (a catch-all test inbox, on loopback addresses
only); with users, SMTP needs AUTH and POP3 checks passwords. Failed logins are logged and
slowed down per client address.

At start-up one line per listener is printed on stderr, e.g.
  mailctl: smtp listening on 127.0.0.1:2525
which tells the actual port when port 0 was asked for, then the `mailctl send` and \
`mailctl fetch` commands that reach the server and an account for the configuration file. \
Clients need no --tls for a server on a loopback address (STARTTLS is used when offered), \
and no password for a serve without users. If a port is taken, choose another with \
--smtp / --pop3 (port 0 picks a free one).")]
pub struct ServeArgs {
    /// The options proper (boxed: they are large next to other commands').
    #[command(flatten)]
    pub options: Box<ServeOptions>,
}

/// The options of `mailctl serve`.
#[derive(Debug, Args)]
pub struct ServeOptions {
    /// Directory holding one Maildir per mailbox (created if missing).
    #[arg(long, value_name = "DIR")]
    pub maildir: PathBuf,

    /// SMTP listening address.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:2525")]
    pub smtp: String,

    /// POP3 listening address.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:1110")]
    pub pop3: String,

    /// Also listen for SMTP over implicit TLS (submissions, RFC 8314) here;
    /// needs --tls-cert or --tls-self-signed.
    #[arg(long, value_name = "ADDR:PORT")]
    pub smtps: Option<String>,

    /// Also listen for POP3 over implicit TLS (RFC 8314) here; needs
    /// --tls-cert or --tls-self-signed.
    #[arg(long, value_name = "ADDR:PORT")]
    pub pop3s: Option<String>,

    /// An account, NAME:PASSWORD (repeatable). Visible to other local users
    /// in the process list: prefer --users-file.
    #[arg(long = "user", value_name = "NAME:PASSWORD")]
    pub users: Vec<String>,

    /// A file of NAME:PASSWORD lines ('#' comments and blank lines ignored).
    #[arg(long, value_name = "FILE")]
    pub users_file: Option<PathBuf>,

    /// Certificate chain (PEM) for STARTTLS and STLS.
    #[arg(
        long,
        value_name = "PEM",
        requires = "tls_key",
        conflicts_with = "tls_self_signed"
    )]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Make a throwaway certificate for localhost and 127.0.0.1 and write it
    /// to this file, for clients to verify the server with (--ca-file).
    #[arg(long, value_name = "CA_OUT.pem")]
    pub tls_self_signed: Option<PathBuf>,

    /// Largest message accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 25 * 1024 * 1024)]
    pub max_size: u64,

    /// Exit (status 0) after this many messages have been delivered.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub exit_after: Option<u64>,

    /// Seconds a connection may stay idle before it is closed.
    #[arg(long, value_name = "SECS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout: u64,

    /// Seconds a command line may take to arrive once begun (and a TLS
    /// handshake); message data must move at 64 KiB per this time at least,
    /// received (DATA) or sent (RETR, TOP).
    #[arg(long, value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub command_timeout: u64,

    /// Most connections served at once per protocol (SMTP and POP3 each);
    /// more are turned away with 421 / -ERR.
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub max_connections: u64,

    /// Most SMTP connections at once (default: --max-connections).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub max_smtp_connections: Option<u64>,

    /// Most POP3 connections at once (default: --max-connections).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub max_pop3_connections: Option<u64>,

    /// Most connections at once from one client address.
    #[arg(long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub max_per_client: u64,

    /// The web inbox and the fault rules.
    #[command(flatten)]
    pub inbox: super::inbox::InboxArgs,
}

/// Runs `mailctl serve`.
pub fn run(args: ServeArgs, globals: Globals) -> anyhow::Result<Exit> {
    let args = *args.options;
    let smtp = listen_address(&args.smtp)?;
    let pop3 = listen_address(&args.pop3)?;
    let http = args.inbox.http.as_deref().map(listen_address).transpose()?;
    let smtps = args.smtps.as_deref().map(listen_address).transpose()?;
    let pop3s = args.pop3s.as_deref().map(listen_address).transpose()?;
    let users = Arc::new(load_users(&args)?);
    let listening: Vec<SocketAddr> = [Some(smtp), Some(pop3), smtps, pop3s]
        .into_iter()
        .flatten()
        .collect();
    refuse_open_catch_all(&users, &listening)?;
    let tls = tls_acceptor(&args)?;
    if (smtps.is_some() || pop3s.is_some()) && tls.is_none() {
        return Err(fail(
            Exit::Usage,
            "--smtps and --pop3s need --tls-cert/--tls-key or --tls-self-signed",
        ));
    }
    let store = MailStore::open(&args.maildir)
        .map_err(|e| fail(Exit::CantCreate, format!("{}: {e}", args.maildir.display())))?;
    let inbox = super::inbox::start(
        &args.inbox,
        http,
        &args.maildir,
        &store,
        users.clone(),
        tls.clone(),
        globals.verbose > 0,
    )?;
    let policy = Policy {
        hostname: crate::system::hostname(),
        max_size: args.max_size,
        tls_available: tls.is_some(),
        users,
    };
    let cap = |n: Option<u64>| n.unwrap_or(args.max_connections) as usize;
    let limits = Limits {
        idle_timeout: Duration::from_secs(args.idle_timeout),
        command_timeout: Duration::from_secs(args.command_timeout),
        max_smtp: cap(args.max_smtp_connections),
        max_pop3: cap(args.max_pop3_connections),
        max_per_client: args.max_per_client as usize,
    };
    let how_to_reach = HowToReach {
        users: policy.users.exist(),
        ca_file: args.tls_self_signed.clone(),
        tls: policy.tls_available,
    };
    let delivered = listener::run(ServerOptions {
        smtp,
        pop3,
        smtps,
        pop3s,
        policy,
        store,
        tls,
        transcript: inbox.transcript,
        limits,
        exit_after: args.exit_after,
        hooks: inbox.hooks,
        on_listening: Some(Box::new(move |bound| how_to_reach.print(bound))),
    })
    .map_err(|e| serve_error(&e))?;
    if let Some(http) = inbox.http {
        http.stop();
    }
    eprintln!(
        "mailctl: stopped ({} delivered)",
        crate::text::count(delivered as usize, "message")
    );
    Ok(Exit::Ok)
}

/// The exit status and message for a server that could not run; an
/// address in use names the option that picks another.
fn serve_error(e: &listener::ServeError) -> anyhow::Error {
    let exit = if e.is_temporary() {
        Exit::TempFail
    } else if e.is_config() {
        Exit::Config
    } else {
        Exit::Software
    };
    let reason = std::error::Error::source(e).map(|s| format!(": {s}"));
    let hint = match e {
        listener::ServeError::Bind { name, addr, .. } if e.is_temporary() => format!(
            " (another program has that port: choose another with --{name} {}:PORT, \
             or --{name} {}:0 for any free one)",
            addr.ip(),
            addr.ip()
        ),
        _ => String::new(),
    };
    fail(exit, format!("{e}{}{hint}", reason.unwrap_or_default()))
}

/// What a client needs to reach this server, for the commands printed at
/// start-up.
struct HowToReach {
    /// Accounts exist: clients log in (SMTP included).
    users: bool,
    /// The CA file written by --tls-self-signed, for clients to verify with.
    ca_file: Option<PathBuf>,
    /// STARTTLS / STLS are offered.
    tls: bool,
}

impl HowToReach {
    /// Prints on stderr the `mailctl send` and `mailctl fetch` commands
    /// that reach the SMTP and POP3 listeners in `bound`, and the matching
    /// account for the configuration file.
    fn print(&self, bound: &[(&'static str, SocketAddr)]) {
        let find = |name: &str| bound.iter().find(|(n, _)| *n == name).map(|(_, a)| *a);
        let (Some(smtp), Some(pop3)) = (find("smtp"), find("pop3")) else {
            return;
        };
        let (smtp, pop3) = (listener::reachable(smtp), listener::reachable(pop3));
        let mut common = String::new();
        // A loopback server needs no mode; another host wants TLS named.
        if !smtp.ip().is_loopback() && !self.tls {
            common.push_str(" --tls none");
        }
        if let Some(ca) = &self.ca_file {
            common.push_str(&format!(
                " --ca-file {}",
                shell_word(&ca.display().to_string())
            ));
        }
        let login = if self.users { " --user NAME" } else { "" };
        let password = if self.users {
            "  (the password from MAILCTL_PASSWORD or a prompt)\n"
        } else {
            ""
        };
        let mut toml = format!(
            "  [accounts.local]\n  from = \"me@localhost\"\n  [accounts.local.smtp]\n  \
             host = \"{}\"\n  port = {}\n  [accounts.local.pop3]\n  host = \"{}\"\n  port = {}\n  \
             user = \"me\"\n",
            smtp.ip(),
            smtp.port(),
            pop3.ip(),
            pop3.port()
        );
        if let Some(ca) = &self.ca_file {
            toml.push_str(&format!("  ca_file = \"{}\"\n", ca.display()));
        }
        eprint!(
            "mailctl: send and fetch with:\n  \
             mailctl send --server {}{common}{login} --from me@localhost --to me@localhost \
             --subject hi --body hello\n  \
             mailctl fetch --server {}{common} --user {} --list\n{password}\
             mailctl: or as an account in ~/.config/mailctl/config.toml:\n{toml}",
            endpoint_text(smtp),
            endpoint_text(pop3),
            if self.users { "NAME" } else { "me" },
        );
    }
}

/// `HOST:PORT` as `--server` takes it (`[V6]:PORT` for IPv6).
fn endpoint_text(addr: SocketAddr) -> String {
    crate::endpoint::Endpoint {
        host: addr.ip().to_string(),
        port: addr.port(),
    }
    .to_string()
}

/// `text` quoted for a POSIX shell when it holds anything but plain
/// path characters.
fn shell_word(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+:,@".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// Without accounts anyone may read and delete any mailbox, so catch-all
/// mode listens on loopback addresses only.
fn refuse_open_catch_all(users: &Users, addresses: &[SocketAddr]) -> anyhow::Result<()> {
    match addresses.iter().find(|a| !a.ip().is_loopback()) {
        Some(open) if !users.exist() => Err(fail(
            Exit::Config,
            format!(
                "refusing catch-all mode on {open}: without accounts anyone could read and \
                 delete any mailbox; add --users-file FILE (or --user NAME:PASSWORD), or \
                 listen on 127.0.0.1"
            ),
        )),
        _ => Ok(()),
    }
}

fn listen_address(text: &str) -> anyhow::Result<SocketAddr> {
    let bad = |why: String| {
        fail(
            Exit::Usage,
            format!("invalid listening address '{text}': {why}"),
        )
    };
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if !text.contains(':') {
        return Err(bad("expected ADDR:PORT".into()));
    }
    text.to_socket_addrs()
        .map_err(|e| bad(e.to_string()))?
        .next()
        .ok_or_else(|| bad("no address".into()))
}

fn load_users(args: &ServeOptions) -> anyhow::Result<Users> {
    let mut users = Users::none();
    if !args.users.is_empty() {
        eprintln!(
            "mailctl: warning: passwords given with --user are visible to other local users \
             (ps); prefer --users-file"
        );
    }
    for spec in &args.users {
        users
            .add_spec(spec)
            .map_err(|e| fail(Exit::Usage, format!("--user: {e}")))?;
    }
    if let Some(path) = &args.users_file {
        let text = fs::read_to_string(path)
            .map_err(|e| fail(Exit::NoInput, format!("{}: {e}", path.display())))?;
        if let Ok(meta) = fs::metadata(path) {
            if meta.mode() & 0o077 != 0 {
                eprintln!(
                    "mailctl: warning: {} is readable by other users (chmod 600 it)",
                    path.display()
                );
            }
        }
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            users.add_spec(line).map_err(|e| {
                fail(
                    Exit::Config,
                    format!("{} line {}: {e}", path.display(), n + 1),
                )
            })?;
        }
    }
    Ok(users)
}

fn tls_acceptor(args: &ServeOptions) -> anyhow::Result<Option<Acceptor>> {
    if let Some(out) = &args.tls_self_signed {
        let made = crate::net::tls::generate(&["localhost", "127.0.0.1"])?;
        crate::store::durable::replace(out, &made.cert_pem)
            .map_err(|e| fail(Exit::CantCreate, format!("{}: {e}", out.display())))?;
        Ok(Some(made.acceptor()?))
    } else if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        Ok(Some(Acceptor::from_files(cert, key)?))
    } else {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<ServeOptions, clap::Error> {
        let mut argv = vec!["mailctl", "serve"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).map(|cli| match cli.command {
            Command::Serve(a) => *a.options,
            _ => unreachable!(),
        })
    }

    #[test]
    fn defaults_and_conflicts() {
        let a = parse(&["--maildir", "m"]).unwrap();
        assert_eq!(a.smtp, "127.0.0.1:2525");
        assert_eq!(a.pop3, "127.0.0.1:1110");
        assert_eq!(a.max_connections, 64);
        assert!(parse(&[]).is_err());
        assert!(parse(&["--maildir", "m", "--tls-cert", "c"]).is_err());
        assert!(parse(&[
            "--maildir",
            "m",
            "--tls-cert",
            "c",
            "--tls-key",
            "k",
            "--tls-self-signed",
            "x"
        ])
        .is_err());
        assert!(parse(&["--maildir", "m", "--exit-after", "0"]).is_err());
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(listen_address("127.0.0.1:0").unwrap().port(), 0);
        assert!(listen_address("[::1]:25").unwrap().is_ipv6());
        assert!(listen_address("localhost:2525").is_ok());
        assert!(listen_address("127.0.0.1").is_err());
        assert!(listen_address("1.2.3.4:99999").is_err());
    }

    #[test]
    fn certificate_file_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victim");
        fs::write(&target, b"keep").unwrap();
        let link = dir.path().join("ca.pem");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        crate::store::durable::replace(&link, b"cert").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"keep");
        assert_eq!(fs::read(&link).unwrap(), b"cert");
        assert!(!fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
