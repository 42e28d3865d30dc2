//! `config check --connect`: open a server, see what it offers, log in, and
//! leave without sending or deleting anything.
//!
//! SMTP: greeting, EHLO (RFC 5321 section 4.1.1.1), STARTTLS (RFC 3207) when
//! required, EHLO again, AUTH (RFC 4954) when a user is configured, QUIT.
//! POP3 (through `mailctl fetch`'s session and the `pop3` state machine):
//! greeting, CAPA (RFC 2449), STLS (RFC 2595) when required, CAPA again,
//! USER/PASS, APOP or AUTH (RFC 1939, RFC 5034), QUIT. No MAIL, no
//! DELE: a POP3 session that issued no DELE changes nothing at QUIT.
//!
//! Passwords and SASL payloads appear in the transcript as `<redacted>`.

use crate::config::ResolvedServer;
use crate::exit::{fail, Exit};
use crate::net::connection::{during, Connection, TlsMode};
use crate::proto::sasl::{self, Mechanism};
use crate::proto::smtp::reply::ReplyParser;
use crate::text::printable;
use crate::transcript::Transcript;

/// Longest reply line accepted from a server while probing.
const MAX_LINE: usize = 64 * 1024;

/// One SMTP reply (RFC 5321 section 4.2), read with the project's bounded
/// reply parser ([`ReplyParser`]).
#[derive(Debug, PartialEq, Eq)]
pub struct SmtpReply {
    /// Three-digit code.
    pub code: u16,
    /// The text of each line (no code, separator or enhanced code).
    pub lines: Vec<String>,
    /// `code [enhanced] text`, safe to print.
    pub summary: String,
}

fn read_smtp_reply(conn: &mut Connection, transcript: &Transcript) -> anyhow::Result<SmtpReply> {
    let mut parser = ReplyParser::new();
    loop {
        let line = conn.read_line(MAX_LINE)?;
        transcript.server(line);
        if let Some(reply) = parser.push_line(line)? {
            return Ok(SmtpReply {
                code: reply.code,
                lines: reply
                    .lines
                    .iter()
                    .map(|l| String::from_utf8_lossy(l).into_owned())
                    .collect(),
                summary: reply.summary(),
            });
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
    fail(exit, format!("{step}: {}", reply.summary))
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
    let conn = match server.tls {
        TlsMode::Implicit => {
            Connection::connect_tls(&server.endpoint, &server.tls_options, timeout)
        }
        _ => Connection::connect(&server.endpoint, timeout),
    };
    Ok(conn?)
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

/// Connects to a POP3 server with `mailctl fetch`'s session (greeting,
/// CAPA, STLS when required, CAPA again), reports what it offers, then logs
/// in if a user is configured. Sends no DELE, so nothing is removed at QUIT.
pub fn probe_pop3(server: &ResolvedServer, transcript: &Transcript) -> anyhow::Result<Vec<String>> {
    use crate::net::pop3::{AuthMethod, Session};
    let mut session = Session::open(
        &server.endpoint,
        server.tls,
        &server.tls_options,
        server.timeout,
        transcript.clone(),
    )?;
    let mut report = vec![tls_line(server.tls, 0)];
    report.push(format!(
        "offers: {}",
        match session.client().capabilities() {
            Some(caps) => pop3_keywords(caps),
            None => "nothing (no CAPA)".to_string(),
        }
    ));
    let encrypted = server.tls != TlsMode::None;
    let result = match (&server.user, encrypted || server.endpoint.is_loopback()) {
        (None, _) => Ok("auth: not tried: no user configured".to_string()),
        (Some(_), false) => Ok(
            "auth: not tried: the connection is not encrypted, so no password is sent".to_string(),
        ),
        (Some(user), true) => {
            let method = server.auth_as::<AuthMethod>()?.unwrap_or(AuthMethod::Auto);
            obtain_password(server)
                .and_then(|secret| session.login(method, user, &secret))
                .map(|()| {
                    let name = clap::ValueEnum::to_possible_value(&method)
                        .map(|v| v.get_name().to_string())
                        .unwrap_or_default();
                    format!("auth: login as {user} accepted (method {name})")
                })
        }
    };
    let _ = session.quit();
    report.push(result?);
    Ok(report)
}

/// The CAPA keywords mailctl understands, for the report.
fn pop3_keywords(caps: &crate::proto::pop3::capability::Capabilities) -> String {
    let mut words: Vec<String> = Vec::new();
    for (on, word) in [
        (caps.stls, "STLS"),
        (caps.user, "USER"),
        (caps.top, "TOP"),
        (caps.uidl, "UIDL"),
        (caps.pipelining, "PIPELINING"),
        (caps.resp_codes, "RESP-CODES"),
        (caps.auth_resp_code, "AUTH-RESP-CODE"),
    ] {
        if on {
            words.push(word.to_string());
        }
    }
    if !caps.sasl.is_empty() {
        words.push(format!("SASL {}", caps.sasl.join(" ")));
    }
    if let Some(implementation) = &caps.implementation {
        words.push(format!(
            "IMPLEMENTATION {}",
            printable(implementation.as_bytes())
        ));
    }
    if words.is_empty() {
        "no known capability".to_string()
    } else {
        words.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pop3_capabilities_are_listed() {
        let mut caps = crate::proto::pop3::capability::Capabilities::default();
        assert_eq!(pop3_keywords(&caps), "no known capability");
        for line in [
            &b"STLS"[..],
            b"UIDL",
            b"SASL PLAIN XOAUTH2",
            b"IMPLEMENTATION x\x1by",
        ] {
            caps.add_line(line);
        }
        assert_eq!(
            pop3_keywords(&caps),
            "STLS, UIDL, SASL PLAIN XOAUTH2, IMPLEMENTATION x\\x1by"
        );
    }
}
