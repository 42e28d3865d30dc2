//! `config check --connect`: open a server, see what it offers, log in, and
//! leave without sending or deleting anything.
//!
//! SMTP: greeting, EHLO (RFC 5321 section 4.1.1.1), STARTTLS (RFC 3207) when
//! required, EHLO again, AUTH (RFC 4954) when a user is configured, QUIT.
//! POP3: greeting, CAPA (RFC 2449), STLS (RFC 2595) when required, CAPA
//! again, USER/PASS, APOP or AUTH (RFC 1939, RFC 5034), QUIT. No MAIL, no
//! DELE: a POP3 session that issued no DELE changes nothing at QUIT.
//!
//! Passwords and SASL payloads appear in the transcript as `<redacted>`.

use crate::config::ResolvedServer;
use crate::exit::{fail, Exit};
use crate::sasl::{self, Mechanism};
use crate::text::{printable, printable_line};
use crate::transcript::Transcript;
use crate::transport::{during, Connection, TlsMode};

/// Longest reply line accepted from a server while probing.
const MAX_LINE: usize = 64 * 1024;
/// Most lines accepted in one reply while probing.
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

fn smtp_failure(reply: &SmtpReply, step: &str) -> anyhow::Error {
    let exit = if reply.code >= 500 {
        Exit::Unavailable
    } else if reply.code >= 400 {
        Exit::TempFail
    } else {
        Exit::Protocol
    };
    fail(
        exit,
        format!(
            "{step}: {} {}",
            reply.code,
            printable(reply.lines.join(" / ").as_bytes())
        ),
    )
}

fn expect_smtp(reply: SmtpReply, want: u16, step: &str) -> anyhow::Result<SmtpReply> {
    if reply.code == want {
        Ok(reply)
    } else {
        Err(smtp_failure(&reply, step))
    }
}

/// Sends one command line; `shown` is what the transcript records.
fn command(
    conn: &mut Connection,
    transcript: &Transcript,
    line: &str,
    shown: &str,
) -> anyhow::Result<()> {
    transcript.client(shown.as_bytes());
    during(conn.send(format!("{line}\r\n").as_bytes()), "sending")
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

fn tls_line(tls: TlsMode, discarded: usize) -> String {
    match tls {
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

/// Why a login must not be attempted on this connection, if so.
fn login_refusal(server: &ResolvedServer, conn: &Connection) -> Option<String> {
    if server.user.is_none() {
        return Some("no user configured".into());
    }
    if !conn.is_tls() && !server.endpoint.is_loopback() {
        return Some("the connection is not encrypted, so no password is sent".into());
    }
    None
}

/// The password, refused if it could break a command line.
fn obtain_password(server: &ResolvedServer) -> anyhow::Result<crate::secret::Secret> {
    let secret = server.obtain_password()?;
    if secret
        .expose()
        .chars()
        .any(|c| c == '\r' || c == '\n' || c == '\0')
    {
        crate::bail_with!(Exit::Config, "the password holds a line break or NUL");
    }
    Ok(secret)
}

/// Connects to an SMTP server and reports its greeting, TLS and EHLO
/// keywords, then logs in if a user is configured. Sends no MAIL command.
pub fn probe_smtp(server: &ResolvedServer, transcript: &Transcript) -> anyhow::Result<Vec<String>> {
    let mut conn = open(server)?;
    let greeting = expect_smtp(read_smtp_reply(&mut conn, transcript)?, 220, "greeting")?;
    let mut report = vec![format!(
        "greeting: 220 {}",
        printable(greeting.lines.first().map_or("", String::as_str).as_bytes())
    )];
    let ehlo = format!("EHLO {}", ehlo_name());
    command(&mut conn, transcript, &ehlo, &ehlo)?;
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
                "the server does not offer STARTTLS, which the account requires"
            );
        }
        command(&mut conn, transcript, "STARTTLS", "STARTTLS")?;
        expect_smtp(read_smtp_reply(&mut conn, transcript)?, 220, "STARTTLS")?;
        let (upgraded, n) = conn.start_tls(&server.tls_options)?;
        conn = upgraded;
        discarded = n;
        command(&mut conn, transcript, &ehlo, &ehlo)?;
        caps = expect_smtp(
            read_smtp_reply(&mut conn, transcript)?,
            250,
            "EHLO after STARTTLS",
        )?;
    }
    report.push(tls_line(server.tls, discarded));
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
    let offered: Vec<Mechanism> = keywords
        .iter()
        .filter_map(|k| {
            let (word, rest) = k.split_once(' ').unwrap_or((k, ""));
            word.eq_ignore_ascii_case("AUTH").then_some(rest)
        })
        .flat_map(|rest| rest.split_whitespace().filter_map(Mechanism::from_name))
        .collect();
    let result = match login_refusal(server, &conn) {
        Some(why) => Ok(format!("auth: not tried: {why}")),
        None => smtp_login(server, &mut conn, transcript, &offered),
    };
    let _ = command(&mut conn, transcript, "QUIT", "QUIT")
        .and_then(|()| read_smtp_reply(&mut conn, transcript));
    conn.close();
    report.push(result?);
    Ok(report)
}

/// The mechanism to use: the configured one, or the strongest offered.
fn choose_smtp_mechanism(
    server: &ResolvedServer,
    offered: &[Mechanism],
) -> anyhow::Result<Mechanism> {
    let wanted = match server.auth.as_deref() {
        None | Some("auto") => None,
        Some(name) => Some(Mechanism::from_name(name).ok_or_else(|| {
            fail(
                Exit::Config,
                format!("auth = \"{name}\" is not an SMTP mechanism"),
            )
        })?),
    };
    match wanted {
        Some(m) if offered.contains(&m) => Ok(m),
        Some(m) => Err(fail(
            Exit::NoPerm,
            format!("the server does not offer AUTH {}", m.name()),
        )),
        None => Mechanism::strongest_for_password(offered).ok_or_else(|| {
            fail(
                Exit::NoPerm,
                "the server offers no password mechanism (PLAIN, LOGIN, CRAM-MD5)",
            )
        }),
    }
}

fn smtp_login(
    server: &ResolvedServer,
    conn: &mut Connection,
    transcript: &Transcript,
    offered: &[Mechanism],
) -> anyhow::Result<String> {
    let mechanism = choose_smtp_mechanism(server, offered)?;
    let user = server.user.as_deref().unwrap_or_default();
    let secret = obtain_password(server)?;
    let password = secret.expose();
    let name = mechanism.name();
    let reply = match mechanism {
        Mechanism::Plain | Mechanism::XOAuth2 => {
            let response = if mechanism == Mechanism::Plain {
                sasl::plain_response(user, password)
            } else {
                sasl::xoauth2_response(user, password)
            };
            command(
                conn,
                transcript,
                &format!("AUTH {name} {response}"),
                &format!("AUTH {name} <redacted>"),
            )?;
            let mut reply = read_smtp_reply(conn, transcript)?;
            if reply.code == 334 {
                // XOAUTH2 error details come as a challenge; answer empty.
                command(conn, transcript, "", "")?;
                reply = read_smtp_reply(conn, transcript)?;
            }
            reply
        }
        Mechanism::Login => {
            command(conn, transcript, "AUTH LOGIN", "AUTH LOGIN")?;
            expect_smtp(read_smtp_reply(conn, transcript)?, 334, "AUTH LOGIN")?;
            command(conn, transcript, &sasl::login_step(user), "<redacted>")?;
            expect_smtp(read_smtp_reply(conn, transcript)?, 334, "AUTH LOGIN")?;
            command(conn, transcript, &sasl::login_step(password), "<redacted>")?;
            read_smtp_reply(conn, transcript)?
        }
        Mechanism::CramMd5 => {
            command(conn, transcript, "AUTH CRAM-MD5", "AUTH CRAM-MD5")?;
            let challenge = expect_smtp(read_smtp_reply(conn, transcript)?, 334, "AUTH CRAM-MD5")?;
            let text = challenge.lines.first().cloned().unwrap_or_default();
            let response = sasl::cram_md5_response(user, password, text.as_bytes())
                .ok_or_else(|| fail(Exit::Protocol, "CRAM-MD5 challenge is not base64"))?;
            command(conn, transcript, &response, "<redacted>")?;
            read_smtp_reply(conn, transcript)?
        }
    };
    if reply.code != 235 {
        let err = smtp_failure(&reply, &format!("AUTH {name} as {user}"));
        let exit = if reply.code == 535 || reply.code == 534 || reply.code == 530 {
            Exit::NoPerm
        } else {
            crate::exit::exit_status(&err)
        };
        return Err(fail(exit, format!("{err:#}")));
    }
    Ok(format!("auth: {name} as {user} accepted"))
}

fn read_pop3_status(
    conn: &mut Connection,
    transcript: &Transcript,
    step: &str,
) -> anyhow::Result<String> {
    let line = conn.read_line(MAX_LINE)?;
    transcript.server(line);
    if let Some(rest) = line.strip_prefix(b"+OK") {
        return Ok(printable_line(rest).trim().to_string());
    }
    let text = printable_line(line);
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
    command(conn, transcript, "CAPA", "CAPA")?;
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

/// The `<...>` APOP timestamp of a greeting, if any.
fn apop_timestamp(greeting: &str) -> Option<&str> {
    let start = greeting.find('<')?;
    let end = start + greeting[start..].find('>')?;
    Some(&greeting[start..=end])
}

/// Connects to a POP3 server and reports its greeting, TLS and CAPA list,
/// then logs in if a user is configured. Sends no DELE, so nothing is
/// removed at QUIT.
pub fn probe_pop3(server: &ResolvedServer, transcript: &Transcript) -> anyhow::Result<Vec<String>> {
    let mut conn = open(server)?;
    let greeting = read_pop3_status(&mut conn, transcript, "greeting")?;
    let mut report = vec![format!("greeting: +OK {greeting}")];
    let mut caps = capa(&mut conn, transcript)?;
    let mut discarded = 0;
    if server.tls == TlsMode::Starttls {
        let offered = caps
            .as_ref()
            .is_some_and(|c| c.iter().any(|l| l.eq_ignore_ascii_case("STLS")));
        if !offered {
            crate::bail_with!(
                Exit::Protocol,
                "the server does not offer STLS, which the account requires"
            );
        }
        command(&mut conn, transcript, "STLS", "STLS")?;
        read_pop3_status(&mut conn, transcript, "STLS")?;
        let (upgraded, n) = conn.start_tls(&server.tls_options)?;
        conn = upgraded;
        discarded = n;
        caps = capa(&mut conn, transcript)?;
    }
    report.push(tls_line(server.tls, discarded));
    let keywords = caps.clone().unwrap_or_default();
    report.push(format!(
        "offers: {}",
        if keywords.is_empty() {
            "nothing (no CAPA)".to_string()
        } else {
            keywords.join(", ")
        }
    ));
    let timestamp = apop_timestamp(&greeting)
        .filter(|t| sasl::valid_apop_timestamp(t.as_bytes()))
        .map(str::to_string);
    let result = match login_refusal(server, &conn) {
        Some(why) => Ok(format!("auth: not tried: {why}")),
        None => pop3_login(
            server,
            &mut conn,
            transcript,
            &keywords,
            timestamp.as_deref(),
        ),
    };
    let _ = command(&mut conn, transcript, "QUIT", "QUIT")
        .and_then(|()| read_pop3_status(&mut conn, transcript, "QUIT").map(drop));
    conn.close();
    report.push(result?);
    Ok(report)
}

fn pop3_login(
    server: &ResolvedServer,
    conn: &mut Connection,
    transcript: &Transcript,
    keywords: &[String],
    timestamp: Option<&str>,
) -> anyhow::Result<String> {
    let sasl_offered: Vec<String> = keywords
        .iter()
        .filter_map(|k| {
            let (word, rest) = k.split_once(' ').unwrap_or((k, ""));
            word.eq_ignore_ascii_case("SASL").then_some(rest)
        })
        .flat_map(|rest| rest.split_whitespace().map(str::to_ascii_uppercase))
        .collect();
    let method = match server.auth.as_deref() {
        None | Some("auto") => {
            if sasl_offered.iter().any(|m| m == "PLAIN") {
                "plain"
            } else {
                "user"
            }
        }
        Some(other) => other,
    };
    let user = server.user.as_deref().unwrap_or_default();
    let secret = obtain_password(server)?;
    let password = secret.expose();
    let refused = |e: anyhow::Error| {
        if crate::exit::exit_status(&e) == Exit::Unavailable {
            fail(Exit::NoPerm, format!("{e:#}"))
        } else {
            e
        }
    };
    let name = match method {
        "user" => {
            command(
                conn,
                transcript,
                &format!("USER {user}"),
                &format!("USER {user}"),
            )?;
            read_pop3_status(conn, transcript, "USER").map_err(refused)?;
            command(
                conn,
                transcript,
                &format!("PASS {password}"),
                "PASS <redacted>",
            )?;
            read_pop3_status(conn, transcript, "PASS").map_err(refused)?;
            "USER/PASS"
        }
        "apop" => {
            let Some(timestamp) = timestamp else {
                crate::bail_with!(
                    Exit::NoPerm,
                    "auth = \"apop\" but the greeting has no valid APOP timestamp"
                );
            };
            let digest = sasl::apop_digest(timestamp.as_bytes(), password);
            command(
                conn,
                transcript,
                &format!("APOP {user} {digest}"),
                &format!("APOP {user} <redacted>"),
            )?;
            read_pop3_status(conn, transcript, "APOP").map_err(refused)?;
            "APOP"
        }
        "plain" | "xoauth2" => {
            let (mech, response) = if method == "plain" {
                ("PLAIN", sasl::plain_response(user, password))
            } else {
                ("XOAUTH2", sasl::xoauth2_response(user, password))
            };
            command(
                conn,
                transcript,
                &format!("AUTH {mech} {response}"),
                &format!("AUTH {mech} <redacted>"),
            )?;
            read_pop3_status(conn, transcript, "AUTH").map_err(refused)?;
            if mech == "PLAIN" {
                "AUTH PLAIN"
            } else {
                "AUTH XOAUTH2"
            }
        }
        other => crate::bail_with!(Exit::Config, "auth = \"{other}\" is not a POP3 method"),
    };
    Ok(format!("auth: {name} as {user} accepted"))
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

    #[test]
    fn apop_timestamps() {
        assert_eq!(apop_timestamp("ready <1.2@host> now"), Some("<1.2@host>"));
        assert_eq!(apop_timestamp("ready"), None);
        assert_eq!(apop_timestamp("a > b <c"), None);
    }
}
