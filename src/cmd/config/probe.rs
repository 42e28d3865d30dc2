//! `config check --connect`: open a server, see what it offers, log in, and
//! leave without sending or deleting anything.
//!
//! SMTP (through `mailctl send`'s session, [`crate::net::smtp::probe`]):
//! greeting, EHLO (RFC 5321 section 4.1.1.1, HELO if refused), STARTTLS
//! (RFC 3207) when required, EHLO again, AUTH (RFC 4954) when a user is
//! configured, QUIT.
//! POP3 (through `mailctl fetch`'s session and the `pop3` state machine):
//! greeting, CAPA (RFC 2449), STLS (RFC 2595) when required, CAPA again,
//! USER/PASS, APOP or AUTH (RFC 1939, RFC 5034), QUIT. No MAIL, no
//! DELE: a POP3 session that issued no DELE changes nothing at QUIT.
//!
//! Passwords and SASL payloads appear in the transcript as `<redacted>`.

use crate::config::ResolvedServer;
use crate::exit::{exit_status, fail, Exit};
use crate::net::connection::TlsMode;
use crate::net::smtp::{self, ProbeReport};
use crate::proto::smtp::Error as SmtpError;
use crate::secret::Secret;
use crate::text::printable;
use crate::transcript::Transcript;

fn tls_line(tls: TlsMode, discarded: usize) -> String {
    match tls {
        TlsMode::Implicit => "TLS: from the first byte (implicit), certificate verified".into(),
        TlsMode::Starttls if discarded > 0 => format!(
            "TLS: upgraded, certificate verified; {discarded} bytes sent before the handshake \
             were discarded (possible injection)"
        ),
        TlsMode::Starttls => "TLS: upgraded, certificate verified".into(),
        TlsMode::None => "TLS: none (as configured)".into(),
        TlsMode::StarttlsIfOffered => {
            "TLS: STARTTLS if offered (a loopback server with no mode named)".into()
        }
    }
}

/// Why a login must not be attempted, if so: no user, or a password that
/// would cross the network unencrypted.
fn login_refusal(server: &ResolvedServer) -> Option<&'static str> {
    if server.user.is_none() {
        return Some("no user configured");
    }
    if server.tls == TlsMode::None && !server.endpoint.is_loopback() {
        return Some("the connection is not encrypted, so no password is sent");
    }
    None
}

/// Refuses a password that could break a command line.
fn check_password(secret: &Secret) -> anyhow::Result<()> {
    if secret
        .expose()
        .chars()
        .any(|c| c == '\r' || c == '\n' || c == '\0')
    {
        crate::bail_with!(Exit::Config, "the password holds a line break or NUL");
    }
    Ok(())
}

/// The password, refused if it could break a command line.
fn obtain_password(server: &ResolvedServer) -> anyhow::Result<Secret> {
    let secret = server.obtain_password()?;
    check_password(&secret)?;
    Ok(secret)
}

/// Connects to an SMTP server with `mailctl send`'s session (greeting, EHLO
/// or HELO, STARTTLS when required, EHLO again, AUTH when a user is
/// configured, QUIT) and reports its greeting, TLS and EHLO keywords. Sends
/// no MAIL command.
pub fn probe_smtp(server: &ResolvedServer, transcript: &Transcript) -> anyhow::Result<Vec<String>> {
    let refusal = login_refusal(server);
    let mut login = server.clone();
    if refusal.is_some() {
        login.user = None;
    }
    let mut settings = crate::cmd::send::smtp_settings(&login, server.smtp_mechanism(), None)?;
    if let Some(secret) = settings
        .credentials
        .as_ref()
        .and_then(|c| c.secret.as_ref())
    {
        check_password(secret)?;
    }
    if let Some(source) = settings.secret_source.take() {
        settings.secret_source = Some(smtp::SecretSource(std::sync::Arc::new(move || {
            let secret = (source.0)()?;
            check_password(&secret)?;
            Ok(secret)
        })));
    }
    let user = login.user.as_deref().unwrap_or_default();
    let report = smtp::probe(&settings, transcript).map_err(|e| auth_failure(e, user))?;
    Ok(smtp_report(server, &report, refusal, user))
}

/// A refused login says which mechanism and user: `AUTH LOGIN as tim: 535
/// ...`.
fn auth_failure(err: anyhow::Error, user: &str) -> anyhow::Error {
    match err.downcast_ref::<SmtpError>() {
        Some(SmtpError::AuthRefused {
            mechanism: Some(mechanism),
            reply,
        }) => fail(
            exit_status(&err),
            format!("AUTH {} as {user}: {}", mechanism.name(), reply.summary()),
        ),
        _ => err,
    }
}

/// The lines `config check --connect` prints for an SMTP server.
fn smtp_report(
    server: &ResolvedServer,
    report: &ProbeReport,
    refusal: Option<&str>,
    user: &str,
) -> Vec<String> {
    let greeting = report
        .greeting
        .as_ref()
        .and_then(|g| g.lines.first())
        .map(|line| printable(line))
        .unwrap_or_default();
    let offers = if report.keywords.is_empty() {
        "no extensions".to_string()
    } else {
        report.keywords.join(", ")
    };
    let auth = match (refusal, report.auth) {
        (Some(why), _) => format!("auth: not tried: {why}"),
        (None, Some(mechanism)) => format!("auth: {} as {user} accepted", mechanism.name()),
        (None, None) => "auth: not tried".to_string(),
    };
    vec![
        format!("greeting: 220 {greeting}"),
        tls_line(server.tls, report.discarded),
        format!("offers: {offers}"),
        auth,
    ]
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
            let wants_token = matches!(
                method,
                AuthMethod::Auto | AuthMethod::Xoauth2 | AuthMethod::OAuthBearer
            );
            crate::cmd::require_client_cert(method == AuthMethod::External, server)
                .and_then(|()| crate::cmd::oauth2::token_for(server, wants_token, transcript))
                .and_then(|token| match token {
                    Some(token) => session.login(method, user, &|| Ok(token.secret.clone()), true),
                    None => session.login(method, user, &|| obtain_password(server), false),
                })
                .map(|used| format!("auth: {} as {user} accepted", used.shown()))
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
