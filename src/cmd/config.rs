//! `mailctl config check [--account NAME] [--connect]` and `mailctl config
//! path`.
//!
//! `check` validates the file and prints what each account resolves to
//! (never a password). `--connect` opens each server of one account, reads
//! the greeting, asks EHLO / CAPA, upgrades with STARTTLS / STLS as the
//! account requires, and reports what the server offers; it sends no
//! message, deletes nothing and ends with QUIT.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Globals;
use crate::cli::ConnectArgs;
use crate::config::{self, Loaded, Protocol, ResolvedServer};
use crate::exit::{fail, Exit};
use crate::text::{printable, printable_line};
use crate::transcript::Transcript;
use crate::transport::{Connection, TlsMode};

/// Options of `mailctl config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: ConfigAction,
}

/// `mailctl config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Validate the configuration file and show what each account uses.
    #[command(after_help = CHECK_HELP)]
    Check(CheckArgs),
    /// Print the path of the configuration file in use.
    #[command(
        after_help = "Examples:\n  mailctl config path\n  $EDITOR \"$(mailctl config path)\""
    )]
    Path,
}

const CHECK_HELP: &str = "\
Examples:
  mailctl config check                      # every account, no network
  mailctl config check --account work --connect
  mailctl --config ./test.toml config check

The file lives at $XDG_CONFIG_HOME/mailctl/config.toml (see `mailctl config
path`); examples/mailctl.toml in the source shows every key. A mistake is
reported as FILE:LINE: ... with exit status 78.";

/// Options of `mailctl config check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Check only this account (and connect to its servers with --connect).
    #[arg(long, value_name = "NAME", env = "MAILCTL_ACCOUNT")]
    pub account: Option<String>,

    /// Also connect to the account's SMTP and POP3 servers and report what
    /// they offer (TLS, EHLO / CAPA); sends and deletes nothing.
    #[arg(long)]
    pub connect: bool,
}

/// Runs `mailctl config`.
pub fn run(args: ConfigArgs, globals: Globals) -> anyhow::Result<Exit> {
    let path = config_path(globals)?;
    match args.action {
        ConfigAction::Path => {
            println!("{}", path.display());
            Ok(Exit::Ok)
        }
        ConfigAction::Check(check) => run_check(&path, &check, globals),
    }
}

fn config_path(globals: Globals) -> anyhow::Result<PathBuf> {
    match globals.config {
        Some(path) => Ok(path.to_path_buf()),
        None => config::default_path().ok_or_else(|| {
            fail(
                Exit::Config,
                "no configuration directory (HOME and XDG_CONFIG_HOME unset): give --config FILE",
            )
        }),
    }
}

fn run_check(path: &std::path::Path, args: &CheckArgs, globals: Globals) -> anyhow::Result<Exit> {
    if config::is_absent(path) {
        crate::bail_with!(
            Exit::Config,
            "{}: no such file: create it (examples/mailctl.toml shows every key) or give --config FILE",
            path.display()
        );
    }
    let loaded = config::load(path)?;
    let names: Vec<String> = match &args.account {
        Some(name) => vec![config::choose_account(&loaded, Some(name))?.to_string()],
        None => loaded.file.accounts.keys().cloned().collect(),
    };
    println!(
        "file: {} (mode {:04o}{})",
        loaded.path.display(),
        loaded.mode,
        if loaded.is_private() { ", private" } else { "" }
    );
    let default = config::choose_account(&loaded, None).ok();
    for name in &names {
        let servers = account_servers(&loaded, name)?;
        let marker = if default == Some(name.as_str()) {
            " (default)"
        } else {
            ""
        };
        println!("account {name}{marker}");
        if let Some(from) = servers.iter().find_map(|s| s.from.as_deref()) {
            println!("  from: {from}");
        }
        for server in &servers {
            println!("  {}: {}", server.protocol.name(), server.describe());
            for warning in warnings(server) {
                println!("  warning: {warning}");
            }
        }
    }
    if !args.connect {
        return Ok(Exit::Ok);
    }
    let name = match (&args.account, default) {
        (Some(name), _) => name.as_str(),
        (None, Some(name)) => name,
        (None, None) => config::choose_account(&loaded, None)?,
    };
    let transcript = Transcript::stderr(globals.verbose > 0);
    let mut first_error = None;
    for server in account_servers(&loaded, name)? {
        println!(
            "connecting to {} server {} of account {name}",
            server.protocol.name(),
            server.endpoint
        );
        let result = match server.protocol {
            Protocol::Smtp => probe_smtp(&server, &transcript),
            Protocol::Pop3 => probe_pop3(&server, &transcript),
        };
        match result {
            Ok(report) => {
                for line in report {
                    println!("  {line}");
                }
            }
            Err(err) => {
                let err = config::with_tls_hint(err, server.endpoint.port, server.tls);
                println!("  failed: {}", printable(format!("{err:#}").as_bytes()));
                first_error.get_or_insert(err);
            }
        }
    }
    match first_error {
        Some(err) => Err(err),
        None => Ok(Exit::Ok),
    }
}

/// The SMTP and POP3 servers of account `name`, resolved without flags.
fn account_servers(loaded: &Loaded, name: &str) -> anyhow::Result<Vec<ResolvedServer>> {
    let connect = no_flags();
    let account = &loaded.file.accounts[name];
    let mut out = Vec::new();
    if account.smtp.is_some() {
        out.push(config::from_account(
            Protocol::Smtp,
            &connect,
            loaded,
            Some(name),
        )?);
    }
    if account.pop3.is_some() {
        out.push(config::from_account(
            Protocol::Pop3,
            &connect,
            loaded,
            Some(name),
        )?);
    }
    Ok(out)
}

fn no_flags() -> ConnectArgs {
    ConnectArgs {
        account: None,
        server: None,
        tls: None,
        ca_file: None,
        insecure: false,
        user: None,
        password_command: None,
        timeout: config::DEFAULT_TIMEOUT_SECS,
    }
}

/// Doubtful but legal settings.
fn warnings(server: &ResolvedServer) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(hint) = server.tls_hint() {
        out.push(hint.to_string());
    }
    if server.tls == TlsMode::None && server.user.is_some() && !server.endpoint.is_loopback() {
        out.push(format!(
            "tls = \"none\" with a user: the password would cross the network in clear, \
             so {} will refuse to log in",
            server.protocol.name()
        ));
    }
    if let Some(config::ConfiguredPassword::Env { var, origin }) = &server.password.configured {
        if std::env::var_os(var).is_none() {
            out.push(format!(
                "{origin}: password_env names {var}, which is not set now"
            ));
        }
    }
    if server.user.is_none() && server.password.configured.is_some() {
        out.push("a password source is set but no `user`: no login will be attempted".to_string());
    }
    if let Some(ca) = &server.tls_options.ca_file {
        if !ca.is_file() {
            out.push(format!("ca_file {} does not exist", ca.display()));
        }
    }
    out
}

/// Longest reply line accepted from a server while probing.
const MAX_LINE: usize = 64 * 1024;
/// Most reply lines accepted in one reply while probing.
const MAX_LINES: usize = 1000;

/// One SMTP reply (RFC 5321 section 4.2): the code and its text lines.
#[derive(Debug, PartialEq, Eq)]
pub struct SmtpReply {
    /// Three-digit code.
    pub code: u16,
    /// The text of each line, without the code and separator.
    pub lines: Vec<String>,
}

/// Parses one reply line: `(code, last_line, text)`; `None` if malformed.
pub fn parse_smtp_line(line: &[u8]) -> Option<(u16, bool, String)> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = std::str::from_utf8(&line[..3]).ok()?.parse().ok()?;
    let (last, text) = match line.get(3) {
        None => (true, &line[3..]),
        Some(b' ') => (true, &line[4..]),
        Some(b'-') => (false, &line[4..]),
        Some(_) => return None,
    };
    Some((code, last, String::from_utf8_lossy(text).into_owned()))
}

fn read_smtp_reply(conn: &mut Connection, transcript: &Transcript) -> anyhow::Result<SmtpReply> {
    let mut lines = Vec::new();
    loop {
        let line = conn.read_line(MAX_LINE)?;
        transcript.server(line);
        let (code, last, text) = parse_smtp_line(line).ok_or_else(|| {
            fail(
                Exit::Protocol,
                format!("malformed SMTP reply: {}", printable_line(line)),
            )
        })?;
        lines.push(text);
        if lines.len() > MAX_LINES {
            crate::bail_with!(Exit::Protocol, "SMTP reply of more than {MAX_LINES} lines");
        }
        if last {
            return Ok(SmtpReply { code, lines });
        }
    }
}

fn expect_smtp(reply: SmtpReply, want: u16, step: &str) -> anyhow::Result<SmtpReply> {
    if reply.code == want {
        return Ok(reply);
    }
    let exit = if reply.code >= 500 {
        Exit::Unavailable
    } else if reply.code >= 400 {
        Exit::TempFail
    } else {
        Exit::Protocol
    };
    Err(fail(
        exit,
        format!(
            "{step}: {} {}",
            reply.code,
            printable(reply.lines.join(" / ").as_bytes())
        ),
    ))
}

fn command(conn: &mut Connection, transcript: &Transcript, line: &str) -> anyhow::Result<()> {
    transcript.client(line.as_bytes());
    crate::transport::during(conn.send(format!("{line}\r\n").as_bytes()), "sending")
}

fn open(server: &ResolvedServer) -> anyhow::Result<Connection> {
    let timeout = server.timeout;
    match server.tls {
        TlsMode::Implicit => {
            Connection::connect_tls(&server.endpoint, &server.tls_options, timeout)
        }
        _ => Connection::connect(&server.endpoint, timeout),
    }
}

fn tls_line(server: &ResolvedServer, discarded: usize) -> String {
    match server.tls {
        TlsMode::Implicit => "TLS: from the first byte (implicit), certificate verified".into(),
        TlsMode::Starttls if discarded > 0 => format!(
            "TLS: upgraded, certificate verified; {discarded} bytes sent before the handshake \
             were discarded (possible injection)"
        ),
        TlsMode::Starttls => "TLS: upgraded, certificate verified".into(),
        TlsMode::None => "TLS: none (as configured)".into(),
    }
}

/// The local name for EHLO.
fn ehlo_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        })
        .unwrap_or_else(|| "localhost".to_string())
}

/// Connects to an SMTP server and reports its greeting, TLS and EHLO
/// keywords (RFC 5321 section 4.1.1.1), upgrading with STARTTLS (RFC 3207)
/// when the mode requires it. Sends no MAIL command.
pub fn probe_smtp(server: &ResolvedServer, transcript: &Transcript) -> anyhow::Result<Vec<String>> {
    let mut conn = open(server)?;
    let greeting = expect_smtp(read_smtp_reply(&mut conn, transcript)?, 220, "greeting")?;
    let mut report = vec![format!(
        "greeting: 220 {}",
        printable(greeting.lines.first().map_or("", String::as_str).as_bytes())
    )];
    let ehlo = format!("EHLO {}", ehlo_name());
    command(&mut conn, transcript, &ehlo)?;
    let mut caps = expect_smtp(read_smtp_reply(&mut conn, transcript)?, 250, "EHLO")?;
    let mut discarded = 0;
    if server.tls == TlsMode::Starttls {
        let offered = caps
            .lines
            .iter()
            .skip(1)
            .any(|l| l.eq_ignore_ascii_case("STARTTLS"));
        if !offered {
            crate::bail_with!(
                Exit::Protocol,
                "the server does not offer STARTTLS, which tls = \"starttls\" requires"
            );
        }
        command(&mut conn, transcript, "STARTTLS")?;
        expect_smtp(read_smtp_reply(&mut conn, transcript)?, 220, "STARTTLS")?;
        let (upgraded, n) = conn.start_tls(&server.tls_options)?;
        conn = upgraded;
        discarded = n;
        command(&mut conn, transcript, &ehlo)?;
        caps = expect_smtp(
            read_smtp_reply(&mut conn, transcript)?,
            250,
            "EHLO after STARTTLS",
        )?;
    }
    report.push(tls_line(server, discarded));
    let keywords: Vec<String> = caps
        .lines
        .iter()
        .skip(1)
        .map(|l| printable(l.as_bytes()))
        .collect();
    report.push(format!(
        "offers: {}",
        if keywords.is_empty() {
            "no extensions".to_string()
        } else {
            keywords.join(", ")
        }
    ));
    report.push(auth_line(server, &keywords, "AUTH"));
    command(&mut conn, transcript, "QUIT")?;
    let _ = read_smtp_reply(&mut conn, transcript);
    conn.close();
    Ok(report)
}

fn auth_line(server: &ResolvedServer, keywords: &[String], prefix: &str) -> String {
    let mechanisms = keywords
        .iter()
        .find_map(|k| {
            let (word, rest) = k.split_once(' ').unwrap_or((k, ""));
            word.eq_ignore_ascii_case(prefix).then(|| rest.to_string())
        })
        .filter(|m| !m.is_empty());
    let offered = match mechanisms {
        Some(m) => format!("mechanisms {m}"),
        None => "no SASL mechanism advertised".to_string(),
    };
    match &server.user {
        Some(user) => format!("auth: {offered}; login as {user} not tried by this check"),
        None => format!("auth: {offered}; no user configured"),
    }
}

fn read_pop3_status(
    conn: &mut Connection,
    transcript: &Transcript,
    step: &str,
) -> anyhow::Result<String> {
    let line = conn.read_line(MAX_LINE)?;
    transcript.server(line);
    let text = printable_line(line);
    if let Some(rest) = line.strip_prefix(b"+OK") {
        return Ok(printable_line(rest).trim().to_string());
    }
    if line.starts_with(b"-ERR") {
        crate::bail_with!(Exit::Unavailable, "{step}: {text}");
    }
    crate::bail_with!(Exit::Protocol, "{step}: malformed POP3 response: {text}")
}

/// Reads the lines of a multi-line POP3 response up to the lone dot,
/// un-stuffing leading dots (RFC 1939 section 3).
fn read_pop3_lines(conn: &mut Connection, transcript: &Transcript) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    loop {
        let line = conn.read_line(MAX_LINE)?;
        transcript.server(line);
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        if body == b"." {
            return Ok(lines);
        }
        let body = body.strip_prefix(b".").unwrap_or(body);
        lines.push(printable(body));
        if lines.len() > MAX_LINES {
            crate::bail_with!(
                Exit::Protocol,
                "POP3 response of more than {MAX_LINES} lines"
            );
        }
    }
}

fn capa(conn: &mut Connection, transcript: &Transcript) -> anyhow::Result<Option<Vec<String>>> {
    command(conn, transcript, "CAPA")?;
    let line = conn.read_line(MAX_LINE)?;
    transcript.server(line);
    if line.starts_with(b"+OK") {
        return read_pop3_lines(conn, transcript).map(Some);
    }
    if line.starts_with(b"-ERR") {
        return Ok(None);
    }
    crate::bail_with!(
        Exit::Protocol,
        "CAPA: malformed POP3 response: {}",
        printable_line(line)
    )
}

/// Connects to a POP3 server and reports its greeting, TLS and CAPA list
/// (RFC 2449), upgrading with STLS (RFC 2595) when the mode requires it.
/// Logs in to no mailbox, so nothing can be deleted.
pub fn probe_pop3(server: &ResolvedServer, transcript: &Transcript) -> anyhow::Result<Vec<String>> {
    let mut conn = open(server)?;
    let greeting = read_pop3_status(&mut conn, transcript, "greeting")?;
    let mut report = vec![format!("greeting: +OK {greeting}")];
    let apop = greeting.contains('<') && greeting.contains('>');
    let mut caps = capa(&mut conn, transcript)?;
    let mut discarded = 0;
    if server.tls == TlsMode::Starttls {
        let offered = caps
            .as_ref()
            .is_some_and(|c| c.iter().any(|l| l.eq_ignore_ascii_case("STLS")));
        if !offered {
            crate::bail_with!(
                Exit::Protocol,
                "the server does not offer STLS, which tls = \"starttls\" requires"
            );
        }
        command(&mut conn, transcript, "STLS")?;
        read_pop3_status(&mut conn, transcript, "STLS")?;
        let (upgraded, n) = conn.start_tls(&server.tls_options)?;
        conn = upgraded;
        discarded = n;
        caps = capa(&mut conn, transcript)?;
    }
    report.push(tls_line(server, discarded));
    let keywords = caps.unwrap_or_default();
    report.push(format!(
        "offers: {}",
        if keywords.is_empty() {
            "nothing (no CAPA)".to_string()
        } else {
            keywords.join(", ")
        }
    ));
    let mut auth = auth_line(server, &keywords, "SASL");
    if apop {
        auth.push_str(" (APOP timestamp in the greeting)");
    }
    report.push(auth);
    command(&mut conn, transcript, "QUIT")?;
    let _ = read_pop3_status(&mut conn, transcript, "QUIT");
    conn.close();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_reply_lines() {
        assert_eq!(
            parse_smtp_line(b"250-SIZE 1000\r\n"),
            Some((250, false, "SIZE 1000".into()))
        );
        assert_eq!(
            parse_smtp_line(b"250 OK\r\n"),
            Some((250, true, "OK".into()))
        );
        assert_eq!(
            parse_smtp_line(b"220\r\n"),
            Some((220, true, String::new()))
        );
        assert_eq!(parse_smtp_line(b"22 x\r\n"), None);
        assert_eq!(parse_smtp_line(b"220x\r\n"), None);
    }
}
