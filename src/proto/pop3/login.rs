//! The client's login policy (RFC 1939 section 7, RFC 5034): which
//! mechanism to use, whether credentials may be sent at all, and the
//! exchange of commands and replies until the maildrop is open.
//!
//! [`Login::start`] decides, from what the greeting and CAPA said, and
//! returns the first commands; [`Login::on_event`] is fed each event of the
//! [`Client`] and says what to send next. Nothing is sent when the policy
//! refuses: an unencrypted password to a remote server, or APOP with an
//! unsafe timestamp.

use base64::Engine;

use super::client::{Client, Event};
use super::command::{Command, Kind};
use super::Error;
use crate::proto::sasl::scram::{self, Scram};
use crate::proto::sasl::{self, Mechanism};
use crate::secret::Secret;

/// The longest AUTH command line that may carry its initial response,
/// CRLF included (RFC 5034 section 4, RFC 2449 section 4: 255 octets).
pub const MAX_AUTH_LINE: usize = 255;

/// How many events an AUTH exchange may take before it is given up.
const MAX_AUTH_EVENTS: u32 = 4;

/// How to log in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// EXTERNAL when offered and a client certificate is presented, else
    /// SCRAM-*-PLUS over TLS with a channel binding, else SCRAM when
    /// offered over TLS or to a loopback server, else AUTH
    /// PLAIN when offered, else USER/PASS; APOP on an unencrypted
    /// connection when the greeting carries a valid timestamp. With a
    /// token: OAUTHBEARER when offered, else XOAUTH2.
    Auto,
    /// USER and PASS.
    User,
    /// APOP: an MD5 digest, only with a well-formed greeting timestamp.
    Apop,
    /// AUTH PLAIN with an initial response.
    Plain,
    /// AUTH XOAUTH2 with an OAuth 2 bearer token as the secret.
    Xoauth2,
    /// AUTH OAUTHBEARER (RFC 7628) with an OAuth 2 bearer token.
    OAuthBearer,
    /// AUTH SCRAM-SHA-1: the password is not sent, the server proves it
    /// knows it.
    ScramSha1,
    /// AUTH SCRAM-SHA-256.
    ScramSha256,
    /// AUTH SCRAM-SHA-1-PLUS: SCRAM-SHA-1 bound to the TLS session.
    ScramSha1Plus,
    /// AUTH SCRAM-SHA-256-PLUS.
    ScramSha256Plus,
    /// AUTH EXTERNAL (RFC 4422 appendix A): the identity of the TLS client
    /// certificate, no password.
    External,
}

impl Method {
    /// The method's name in reports: `USER/PASS`, `APOP`, or the SASL
    /// mechanism, such as `SCRAM-SHA-256`.
    pub fn shown(self) -> &'static str {
        match self {
            Method::Auto => "auto",
            Method::User => "USER/PASS",
            Method::Apop => "APOP",
            Method::Plain => "PLAIN",
            Method::Xoauth2 => "XOAUTH2",
            Method::OAuthBearer => "OAUTHBEARER",
            Method::ScramSha1 => "SCRAM-SHA-1",
            Method::ScramSha256 => "SCRAM-SHA-256",
            Method::ScramSha1Plus => "SCRAM-SHA-1-PLUS",
            Method::ScramSha256Plus => "SCRAM-SHA-256-PLUS",
            Method::External => "EXTERNAL",
        }
    }

    /// Whether the method needs the password or token (all but EXTERNAL).
    pub fn needs_secret(self) -> bool {
        self != Method::External
    }

    /// The SCRAM mechanism of a SCRAM method.
    fn scram(self) -> Option<Mechanism> {
        match self {
            Method::ScramSha1 => Some(Mechanism::ScramSha1),
            Method::ScramSha256 => Some(Mechanism::ScramSha256),
            Method::ScramSha1Plus => Some(Mechanism::ScramSha1Plus),
            Method::ScramSha256Plus => Some(Mechanism::ScramSha256Plus),
            _ => None,
        }
    }

    /// The token mechanism of a token method.
    fn token(self) -> Option<Mechanism> {
        match self {
            Method::Xoauth2 => Some(Mechanism::XOAuth2),
            Method::OAuthBearer => Some(Mechanism::OAuthBearer),
            _ => None,
        }
    }
}

/// What the login needs next.
#[derive(Debug)]
pub enum Step {
    /// Send these commands, then feed the replies.
    Send(Vec<Command>),
    /// Feed the next event.
    Wait,
    /// The maildrop is open.
    Done,
}

/// Where the exchange stands.
#[derive(Debug)]
enum Stage {
    /// USER sent; PASS too when pipelined (`pass` is then `None`).
    User { pass: Option<Secret> },
    /// PASS sent, its reply awaited.
    Pass { refused: Option<Error> },
    /// APOP sent.
    Apop,
    /// AUTH sent; `held` is the response kept for the server's empty
    /// challenge when it was too long to go with the command.
    Auth {
        mechanism: &'static str,
        held: Option<Secret>,
        detail: Option<String>,
        events: u32,
    },
    /// AUTH SCRAM-* sent with the client-first message.
    Scram {
        mechanism: &'static str,
        scram: Box<Scram>,
        /// Whether the server's signature was checked.
        proven: bool,
        /// A failure on our side, reported once the server answers the
        /// cancellation.
        failed: Option<Error>,
    },
}

/// One login in progress.
#[derive(Debug)]
pub struct Login {
    method: Method,
    stage: Stage,
}

/// What a login is asked to do.
pub struct Request<'a> {
    /// The method asked for.
    pub method: Method,
    /// The mailbox name.
    pub user: &'a str,
    /// The password, or the token for XOAUTH2 and OAUTHBEARER.
    pub secret: &'a Secret,
    /// Whether the secret is an OAuth 2 access token: `auto` then means
    /// OAUTHBEARER when offered, else XOAUTH2.
    pub token: bool,
    /// The server, as error messages show it.
    pub server: &'a str,
    /// Whether the server is on this machine, where an unencrypted
    /// password does not cross a network.
    pub loopback: bool,
    /// A fresh random printable string (no comma) for SCRAM's client nonce.
    pub nonce: &'a str,
    /// Whether a TLS client certificate is presented: `auto` then means
    /// EXTERNAL when offered.
    pub client_cert: bool,
    /// The TLS session's `tls-server-end-point` channel binding, if any:
    /// `auto` then prefers SCRAM-*-PLUS when offered.
    pub channel_binding: Option<&'a [u8]>,
}

/// Refuses to send a password or token over an unencrypted connection,
/// unless the server is on this machine (`loopback`) or the method is
/// APOP, which sends only a digest. `method` is the one that would be
/// used, `requested` the one asked for.
pub fn plaintext_check(
    requested: Method,
    method: Method,
    encrypted: bool,
    loopback: bool,
    server: &str,
) -> Result<(), Error> {
    if encrypted || method == Method::Apop || loopback {
        return Ok(());
    }
    Err(Error::Unencrypted {
        server: server.to_string(),
        no_apop: requested == Method::Auto,
    })
}

/// The method `auto` resolves to, from what the session knows: EXTERNAL
/// when offered and a client certificate is presented, SCRAM when offered
/// and the connection is encrypted or local, then APOP on an unencrypted
/// connection, then PLAIN, then USER/PASS. For a token: OAUTHBEARER when
/// offered, else XOAUTH2. `secret` in `request` is not looked at.
pub fn resolve(request: &Request<'_>, client: &Client) -> Method {
    let (method, loopback, token) = (request.method, request.loopback, request.token);
    if method != Method::Auto {
        return method;
    }
    if request.client_cert
        && client
            .capabilities()
            .is_some_and(|c| c.has_sasl("EXTERNAL"))
    {
        return Method::External;
    }
    if token {
        return match client.capabilities() {
            Some(c) if c.has_sasl("OAUTHBEARER") => Method::OAuthBearer,
            _ => Method::Xoauth2,
        };
    }
    let valid_stamp = client
        .apop_timestamp()
        .is_some_and(sasl::valid_apop_timestamp);
    let private = client.is_tls() || loopback;
    let bound = client.is_tls() && request.channel_binding.is_some();
    match client.capabilities() {
        Some(c) if bound && c.has_sasl("SCRAM-SHA-256-PLUS") => Method::ScramSha256Plus,
        Some(c) if bound && c.has_sasl("SCRAM-SHA-1-PLUS") => Method::ScramSha1Plus,
        Some(c) if private && c.has_sasl("SCRAM-SHA-256") => Method::ScramSha256,
        Some(c) if private && c.has_sasl("SCRAM-SHA-1") => Method::ScramSha1,
        _ if !client.is_tls() && valid_stamp => Method::Apop,
        Some(c) if c.has_sasl("PLAIN") => Method::Plain,
        Some(c) if !c.user && valid_stamp => Method::Apop,
        _ => Method::User,
    }
}

impl Login {
    /// Chooses the method and returns the first commands to send. Fails,
    /// with nothing sent, when the policy refuses.
    pub fn start(request: &Request<'_>, client: &Client) -> Result<(Login, Vec<Command>), Error> {
        let method = resolve(request, client);
        plaintext_check(
            request.method,
            method,
            client.is_tls(),
            request.loopback,
            request.server,
        )?;
        let (stage, commands) = match method {
            Method::User => {
                let user = Command::User(request.user.to_string());
                if client.pipelining() {
                    let pass = Command::Pass(request.secret.clone());
                    (Stage::User { pass: None }, vec![user, pass])
                } else {
                    let pass = Some(request.secret.clone());
                    (Stage::User { pass }, vec![user])
                }
            }
            Method::Apop => {
                let command = client
                    .apop(request.user, request.secret.expose())
                    .map_err(|e| Error::Unexpected(format!("{e}; nothing was sent")))?;
                (Stage::Apop, vec![command])
            }
            Method::ScramSha1
            | Method::ScramSha256
            | Method::ScramSha1Plus
            | Method::ScramSha256Plus => {
                let mechanism = method.scram().expect("a SCRAM method");
                let hash = mechanism.scram_hash().expect("a SCRAM mechanism");
                let binding = scram_binding(mechanism, request, client).map_err(Error::Scram)?;
                let scram = Scram::new(hash, request.user, request.secret, request.nonce)
                    .map_err(Error::Scram)?
                    .with_binding(binding);
                let command = Command::Auth {
                    mechanism: mechanism.name().to_string(),
                    initial: Some(Secret::new(scram.client_first())),
                };
                let stage = Stage::Scram {
                    mechanism: mechanism.name(),
                    scram: Box::new(scram),
                    proven: false,
                    failed: None,
                };
                (stage, vec![command])
            }
            Method::Plain
            | Method::Xoauth2
            | Method::OAuthBearer
            | Method::External
            | Method::Auto => {
                let (mechanism, initial) = if method == Method::External {
                    ("EXTERNAL", sasl::EXTERNAL_RESPONSE.to_string())
                } else if let Some(token) = method.token() {
                    (
                        token.name(),
                        sasl::token_response(token, request.user, request.secret.expose()),
                    )
                } else {
                    (
                        "PLAIN",
                        sasl::plain_response(request.user, request.secret.expose()),
                    )
                };
                // A longer initial response (an OAuth token, typically)
                // answers the server's empty "+" challenge instead.
                let fits = "AUTH ".len() + mechanism.len() + 1 + initial.len() + 2 <= MAX_AUTH_LINE;
                let (initial, held) = if fits {
                    (Some(Secret::new(initial)), None)
                } else {
                    (None, Some(Secret::new(initial)))
                };
                let command = Command::Auth {
                    mechanism: mechanism.to_string(),
                    initial,
                };
                let stage = Stage::Auth {
                    mechanism,
                    held,
                    detail: None,
                    events: 0,
                };
                (stage, vec![command])
            }
        };
        Ok((Login { method, stage }, commands))
    }

    /// The method in use (`auto` resolved).
    pub fn method(&self) -> Method {
        self.method
    }

    /// Takes the next event of the session and says what follows.
    pub fn on_event(&mut self, event: Event) -> Result<Step, Error> {
        let method = self.method;
        match &mut self.stage {
            Stage::User { pass } => {
                let reply = expect_reply(event, Kind::User)?;
                let user_refused = (!reply.ok).then(|| Error::refused(&reply, "USER"));
                match pass.take() {
                    // PASS was pipelined: its reply comes whatever USER got.
                    None => {
                        self.stage = Stage::Pass {
                            refused: user_refused,
                        };
                        Ok(Step::Wait)
                    }
                    Some(secret) => {
                        if let Some(err) = user_refused {
                            return Err(err);
                        }
                        self.stage = Stage::Pass { refused: None };
                        Ok(Step::Send(vec![Command::Pass(secret)]))
                    }
                }
            }
            Stage::Pass { refused } => {
                let reply = expect_reply(event, Kind::Pass)?;
                if let Some(err) = refused.take() {
                    return Err(err);
                }
                if !reply.ok {
                    return Err(Error::refused(&reply, "login"));
                }
                Ok(Step::Done)
            }
            Stage::Apop => {
                let reply = expect_reply(event, Kind::Apop)?;
                if !reply.ok {
                    return Err(Error::refused(&reply, "APOP login"));
                }
                Ok(Step::Done)
            }
            Stage::Auth {
                mechanism,
                held,
                detail,
                events,
            } => {
                *events += 1;
                match event {
                    Event::Reply(r) if r.ok => Ok(Step::Done),
                    Event::Reply(r) => Err(Error::Refused {
                        what: format!("AUTH {mechanism}"),
                        reply: r,
                        detail: detail.take(),
                    }),
                    Event::Challenge(_) if *events >= MAX_AUTH_EVENTS => Err(Error::Unexpected(
                        format!("AUTH {mechanism}: too many challenges"),
                    )),
                    Event::Challenge(c) => {
                        if let Some(response) = held.take() {
                            return Ok(Step::Send(vec![Command::SaslResponse(response)]));
                        }
                        // XOAUTH2 and OAUTHBEARER report errors as a
                        // challenge to be acknowledged (an empty line,
                        // a 0x01); anything else is cancelled.
                        let decoded = base64::engine::general_purpose::STANDARD
                            .decode(&c)
                            .unwrap_or(c);
                        *detail = Some(format!("server said {}", super::quoted(&decoded)));
                        let answer = method.token().map_or("*", sasl::token_error_answer);
                        Ok(Step::Send(vec![Command::SaslResponse(Secret::new(answer))]))
                    }
                    other => Err(Error::Unexpected(format!(
                        "unexpected {other:?} during AUTH"
                    ))),
                }
            }
            Stage::Scram {
                mechanism,
                scram,
                proven,
                failed,
            } => scram_event(mechanism, scram, proven, failed, event),
        }
    }
}

/// One event of a SCRAM exchange (RFC 5034 section 4): the server-first
/// challenge is answered with the client-final message, the server-final
/// one with an empty line once its signature checks out. Anything wrong on
/// our side cancels with `*` and is reported when the server answers.
fn scram_event(
    mechanism: &str,
    scram: &mut Scram,
    proven: &mut bool,
    failed: &mut Option<Error>,
    event: Event,
) -> Result<Step, Error> {
    let cancel = |failed: &mut Option<Error>, e| {
        *failed = Some(Error::Scram(e));
        Ok(Step::Send(vec![Command::SaslResponse(Secret::new("*"))]))
    };
    match event {
        _ if failed.is_some() && matches!(event, Event::Reply(_)) => {
            Err(failed.take().expect("a failure"))
        }
        Event::Reply(r) if r.ok && *proven => Ok(Step::Done),
        // A +OK that skips the server's signature proves nothing.
        Event::Reply(r) if r.ok => Err(Error::Scram(scram::Error::NotProven)),
        Event::Reply(r) => Err(Error::refused(&r, &format!("AUTH {mechanism}"))),
        Event::Challenge(_) if failed.is_some() || *proven => Err(Error::Unexpected(format!(
            "AUTH {mechanism}: too many challenges"
        ))),
        Event::Challenge(c) if !scram.awaiting_server_final() => match scram.client_final(&c) {
            Ok(answer) => Ok(Step::Send(vec![Command::SaslResponse(answer)])),
            Err(e) => cancel(failed, e),
        },
        Event::Challenge(c) => match scram.verify_server_final(&c) {
            Ok(()) => {
                *proven = true;
                Ok(Step::Send(vec![Command::SaslResponse(Secret::new(""))]))
            }
            Err(e) => cancel(failed, e),
        },
        other => Err(Error::Unexpected(format!(
            "unexpected {other:?} during AUTH"
        ))),
    }
}

/// The channel binding for `mechanism` in this session
/// (see [`scram::Binding::choose`]).
fn scram_binding(
    mechanism: Mechanism,
    request: &Request<'_>,
    client: &Client,
) -> Result<scram::Binding, scram::Error> {
    let data = request.channel_binding.filter(|_| client.is_tls());
    let plus_offered = client
        .capabilities()
        .is_some_and(|c| c.has_sasl("SCRAM-SHA-256-PLUS") || c.has_sasl("SCRAM-SHA-1-PLUS"));
    scram::Binding::choose(mechanism.binds_channel(), data, plus_offered)
}

/// The reply an event must be.
fn expect_reply(event: Event, kind: Kind) -> Result<super::Reply, Error> {
    match event {
        Event::Reply(r) if r.kind == kind => Ok(r),
        other => Err(Error::Unexpected(format!("unexpected {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client past the greeting and CAPA.
    fn client(tls: bool, greeting: &[u8], capa: &[u8]) -> Client {
        let mut c = Client::new(tls);
        let mut out = Vec::new();
        c.feed(greeting, &mut out).unwrap();
        c.send(&Command::Capa).unwrap();
        let mut rest = capa;
        while !rest.is_empty() {
            let (used, _) = c.feed(rest, &mut out).unwrap();
            rest = &rest[used..];
        }
        c
    }

    fn request<'a>(method: Method, secret: &'a Secret, loopback: bool) -> Request<'a> {
        Request {
            method,
            user: "tim",
            secret,
            server: "pop.example.org:110",
            loopback,
            token: false,
            nonce: "rOprNGfwEbeRWgbNEkqO",
            client_cert: false,
            channel_binding: None,
        }
    }

    /// The SCRAM-SHA-256 exchange of RFC 7677 section 3 as POP3 carries
    /// it, with `last` as the server's answers after the client-final
    /// message; returns what the client sent and the outcome.
    fn scram_login(last: &[u8]) -> (String, Result<(), Error>) {
        use base64::engine::general_purpose::STANDARD;
        let secret = Secret::new("pencil");
        let mut c = client(
            true,
            b"+OK\r\n",
            b"+OK\r\nSASL PLAIN SCRAM-SHA-256\r\n.\r\n",
        );
        let mut req = request(Method::Auto, &secret, false);
        req.user = "user";
        let (mut login, first) = Login::start(&req, &c).unwrap();
        assert_eq!(login.method(), Method::ScramSha256);
        let server_first = STANDARD.encode(
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        );
        let mut server = format!("+ {server_first}\r\n").into_bytes();
        server.extend_from_slice(last);
        let (sent, result) = run(&mut c, &mut login, first, &server);
        let lines: Vec<String> = String::from_utf8(sent)
            .unwrap()
            .lines()
            .map(
                |l| match STANDARD.decode(l.trim_start_matches("AUTH SCRAM-SHA-256 ")) {
                    Ok(text) if l.len() > 1 => String::from_utf8(text).unwrap(),
                    _ => l.to_string(),
                },
            )
            .collect();
        (lines.join("|"), result)
    }

    /// RFC 7677's SCRAM-SHA-256 exchange over TLS whose channel binding is
    /// the bytes 0x00..0x1f, with `sasl` in CAPA and the server's
    /// `server_final` (decoded): the method, what the client sent (decoded,
    /// `|` between lines) and the outcome.
    fn bound_scram_login(sasl: &str, server_final: &str) -> (Method, String, Result<(), Error>) {
        use base64::engine::general_purpose::STANDARD;
        let secret = Secret::new("pencil");
        let cb_data: Vec<u8> = (0u8..32).collect();
        let capa = format!("+OK\r\nSASL {sasl}\r\n.\r\n");
        let mut c = client(true, b"+OK\r\n", capa.as_bytes());
        let req = Request {
            user: "user",
            channel_binding: Some(&cb_data),
            ..request(Method::Auto, &secret, false)
        };
        let (mut login, first) = Login::start(&req, &c).unwrap();
        let server_first =
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let server = format!(
            "+ {}\r\n+ {}\r\n+OK in\r\n",
            STANDARD.encode(server_first),
            STANDARD.encode(server_final)
        );
        let (sent, result) = run(&mut c, &mut login, first, server.as_bytes());
        let lines: Vec<String> = String::from_utf8(sent)
            .unwrap()
            .lines()
            .map(|l| {
                let payload = l.rsplit(' ').next().unwrap();
                match STANDARD.decode(payload) {
                    Ok(text) if l.len() > 1 => String::from_utf8(text).unwrap(),
                    _ => l.to_string(),
                }
            })
            .collect();
        (login.method(), lines.join("|"), result)
    }

    /// Over TLS `auto` prefers SCRAM-SHA-256-PLUS, binding the channel (the
    /// proof computed independently); with no -PLUS offered, plain
    /// SCRAM-SHA-256 says `y,,`.
    #[test]
    fn scram_plus_over_tls_and_y_without_it() {
        let (method, sent, result) = bound_scram_login(
            "PLAIN SCRAM-SHA-256 SCRAM-SHA-256-PLUS",
            "v=RwppMGddhz/J0lFYaRReBjXcQeNUFP5Qc76Lo5Exrig=",
        );
        assert_eq!(method, Method::ScramSha256Plus);
        result.unwrap();
        assert_eq!(
            sent,
            "p=tls-server-end-point,,n=user,r=rOprNGfwEbeRWgbNEkqO|\
             c=cD10bHMtc2VydmVyLWVuZC1wb2ludCwsAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,\
             r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=nY1Wus9a+gM2DrbQ1msXFgyhW6KM5ktOxWiU+/P/EGY=|"
        );
        let (method, sent, result) = bound_scram_login(
            "PLAIN SCRAM-SHA-256",
            "v=dI4KpiQJwBr1+V+K6U1dA6l6I4I9DUNXWND4pcpRU3U=",
        );
        assert_eq!(method, Method::ScramSha256);
        result.unwrap();
        assert!(
            sent.starts_with("y,,n=user,r=rOprNGfwEbeRWgbNEkqO|c=eSws,"),
            "{sent}"
        );
    }

    #[test]
    fn scram_is_preferred_and_the_server_proves_the_password() {
        let (sent, result) = scram_login(
            b"+ dj02cnJpVFJCaTIzV3BSUi93dHVwK21NaFVaVW4vZEI1bkxUSlJzamw5NUc0PQ==\r\n+OK in\r\n",
        );
        result.unwrap();
        assert_eq!(
            sent,
            "n,,n=user,r=rOprNGfwEbeRWgbNEkqO|c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=|"
        );
    }

    #[test]
    fn a_server_that_cannot_prove_the_password_is_refused() {
        // A wrong signature: the exchange is cancelled, whatever follows.
        let (sent, result) =
            scram_login(b"+ dj1ybUY5cHFWOFM3c3VBb1pXamE0ZEpSa0ZzS1E9\r\n-ERR cancelled\r\n");
        assert!(sent.ends_with("|*"), "{sent}");
        assert_eq!(result.unwrap_err(), Error::Scram(scram::Error::NotProven));
        // No signature at all.
        let (_, result) = scram_login(b"+OK in\r\n");
        assert_eq!(result.unwrap_err(), Error::Scram(scram::Error::NotProven));
        // A refusal stays a refusal.
        let (_, result) = scram_login(b"-ERR [AUTH] no\r\n");
        assert!(matches!(result.unwrap_err(), Error::Refused { .. }));
    }

    #[test]
    fn scram_is_not_chosen_in_clear_to_a_remote_server() {
        let secret = Secret::new("pw");
        let caps = b"+OK\r\nUSER\r\nSASL SCRAM-SHA-1 PLAIN\r\n.\r\n";
        let c = client(false, STAMP, caps);
        let (login, _) = Login::start(&request(Method::Auto, &secret, false), &c).unwrap();
        assert_eq!(login.method(), Method::Apop);
        let (login, _) = Login::start(&request(Method::Auto, &secret, true), &c).unwrap();
        assert_eq!(login.method(), Method::ScramSha1);
    }

    /// Sends the commands and feeds `server` line by line until the login
    /// ends; returns the wire bytes sent and the result.
    fn run(
        c: &mut Client,
        login: &mut Login,
        first: Vec<Command>,
        server: &[u8],
    ) -> (Vec<u8>, Result<(), Error>) {
        let mut sent = Vec::new();
        for command in first {
            sent.extend(c.send(&command).unwrap());
        }
        let result = feed_in_chunks(c, login, server, server.len(), &mut sent);
        (sent, result)
    }

    /// Feeds the server's bytes `chunk` at a time to the client and its
    /// events to the login, appending what the client sends to `sent`.
    fn feed_in_chunks(
        c: &mut Client,
        login: &mut Login,
        server: &[u8],
        chunk: usize,
        sent: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let mut out = Vec::new();
        let (mut buffered, mut rest) = (Vec::new(), server);
        loop {
            let (used, event) = c.feed(&buffered, &mut out).unwrap();
            buffered.drain(..used);
            let Some(event) = event else {
                assert!(!rest.is_empty(), "the server script ended");
                let take = chunk.min(rest.len());
                buffered.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                continue;
            };
            match login.on_event(event)? {
                Step::Send(commands) => {
                    for command in commands {
                        sent.extend(c.send(&command).unwrap());
                    }
                }
                Step::Wait => {}
                Step::Done => return Ok(()),
            }
        }
    }

    const STAMP: &[u8] = b"+OK ready <1896.697170952@dbc.mtview.ca.us>\r\n";

    #[test]
    fn auto_picks_apop_in_clear_and_plain_over_tls() {
        let secret = Secret::new("tanstaaf");
        let c = client(false, STAMP, b"+OK\r\nUSER\r\nSASL PLAIN\r\n.\r\n");
        let (login, first) = Login::start(&request(Method::Auto, &secret, false), &c).unwrap();
        assert_eq!(login.method(), Method::Apop);
        assert!(matches!(first[..], [Command::Apop { .. }]));

        let c = client(true, STAMP, b"+OK\r\nUSER\r\nSASL PLAIN\r\n.\r\n");
        let (login, _) = Login::start(&request(Method::Auto, &secret, false), &c).unwrap();
        assert_eq!(login.method(), Method::Plain);

        let c = client(true, b"+OK hi\r\n", b"+OK\r\nUSER\r\n.\r\n");
        let (login, _) = Login::start(&request(Method::Auto, &secret, false), &c).unwrap();
        assert_eq!(login.method(), Method::User);

        // No USER, a valid timestamp: APOP even over TLS.
        let c = client(true, STAMP, b"+OK\r\nTOP\r\n.\r\n");
        let (login, _) = Login::start(&request(Method::Auto, &secret, false), &c).unwrap();
        assert_eq!(login.method(), Method::Apop);
    }

    #[test]
    fn no_password_in_clear_to_a_remote_server() {
        let secret = Secret::new("pw");
        let c = client(false, b"+OK hi\r\n", b"+OK\r\nUSER\r\nSASL PLAIN\r\n.\r\n");
        for method in [Method::User, Method::Plain, Method::Xoauth2] {
            let err = Login::start(&request(method, &secret, false), &c).unwrap_err();
            assert!(
                matches!(err, Error::Unencrypted { no_apop: false, .. }),
                "{err:?}"
            );
            Login::start(&request(method, &secret, true), &c).unwrap();
        }
        let err = Login::start(&request(Method::Auto, &secret, false), &c).unwrap_err();
        assert!(matches!(err, Error::Unencrypted { no_apop: true, .. }));
        assert!(plaintext_check(Method::Apop, Method::Apop, false, false, "x").is_ok());
        assert!(plaintext_check(Method::User, Method::User, true, false, "x").is_ok());
    }

    #[test]
    fn apop_with_an_unsafe_timestamp_sends_nothing() {
        let secret = Secret::new("pw");
        let c = client(false, b"+OK ready <a b@c>\r\n", b"-ERR\r\n");
        let err = Login::start(&request(Method::Apop, &secret, false), &c).unwrap_err();
        assert!(matches!(err, Error::Unexpected(_)), "{err:?}");
    }

    #[test]
    fn user_pass_with_and_without_pipelining() {
        let secret = Secret::new("pw");
        let mut c = client(true, b"+OK\r\n", b"+OK\r\nUSER\r\n.\r\n");
        let (mut login, first) = Login::start(&request(Method::User, &secret, false), &c).unwrap();
        let (sent, result) = run(&mut c, &mut login, first, b"+OK\r\n+OK in\r\n");
        assert_eq!(sent, b"USER tim\r\nPASS pw\r\n");
        result.unwrap();

        // Pipelined: USER refused, PASS's reply still read first.
        let mut c = client(true, b"+OK\r\n", b"+OK\r\nUSER\r\nPIPELINING\r\n.\r\n");
        let (mut login, first) = Login::start(&request(Method::User, &secret, false), &c).unwrap();
        let (sent, result) = run(&mut c, &mut login, first, b"-ERR who\r\n-ERR no\r\n");
        assert_eq!(sent, b"USER tim\r\nPASS pw\r\n");
        let err = result.unwrap_err();
        assert!(
            matches!(&err, Error::Refused { what, .. } if what == "USER"),
            "{err:?}"
        );
        assert_eq!(c.outstanding(), 0);

        // Not pipelined: PASS refused is a refused login.
        let mut c = client(true, b"+OK\r\n", b"+OK\r\nUSER\r\n.\r\n");
        let (mut login, first) = Login::start(&request(Method::User, &secret, false), &c).unwrap();
        let (_, result) = run(&mut c, &mut login, first, b"+OK\r\n-ERR [AUTH] bad\r\n");
        let err = result.unwrap_err();
        assert_eq!(err.refusal(), Some(super::super::Refusal::Login));
    }

    #[test]
    fn long_initial_response_waits_for_the_empty_challenge() {
        let token = Secret::new("t".repeat(300));
        let mut c = client(true, b"+OK\r\n", b"+OK\r\nSASL XOAUTH2\r\n.\r\n");
        let (mut login, first) =
            Login::start(&request(Method::Xoauth2, &token, false), &c).unwrap();
        let (sent, result) = run(&mut c, &mut login, first, b"+ \r\n+OK\r\n");
        result.unwrap();
        let sent = String::from_utf8(sent).unwrap();
        assert!(sent.starts_with("AUTH XOAUTH2\r\n"), "{sent}");
        assert!(sent.lines().nth(1).unwrap().len() > 255);

        // A short one goes with the command.
        let secret = Secret::new("pw");
        let mut c = client(true, b"+OK\r\n", b"+OK\r\nSASL PLAIN\r\n.\r\n");
        let (mut login, first) = Login::start(&request(Method::Plain, &secret, false), &c).unwrap();
        let (sent, result) = run(&mut c, &mut login, first, b"+OK\r\n");
        result.unwrap();
        assert_eq!(sent, b"AUTH PLAIN AHRpbQBwdw==\r\n");
    }

    #[test]
    fn xoauth2_error_is_acknowledged_and_reported() {
        let token = Secret::new("tok");
        let mut c = client(true, b"+OK\r\n", b"+OK\r\nSASL XOAUTH2\r\n.\r\n");
        let (mut login, first) =
            Login::start(&request(Method::Xoauth2, &token, false), &c).unwrap();
        let (sent, result) = run(
            &mut c,
            &mut login,
            first,
            b"+ eyJzdGF0dXMiOiI0MDEifQ==\r\n-ERR [AUTH] bad token\r\n",
        );
        assert!(sent.ends_with(b"\r\n\r\n"), "empty acknowledgement");
        let err = result.unwrap_err();
        let Error::Refused { detail, .. } = &err else {
            panic!("{err:?}")
        };
        assert!(detail.as_deref().unwrap().contains("401"));
        assert_eq!(err.refusal(), Some(super::super::Refusal::Login));

        // PLAIN cancels an unexpected challenge with "*".
        let secret = Secret::new("pw");
        let mut c = client(true, b"+OK\r\n", b"+OK\r\nSASL PLAIN\r\n.\r\n");
        let (mut login, first) = Login::start(&request(Method::Plain, &secret, false), &c).unwrap();
        let (sent, result) = run(&mut c, &mut login, first, b"+ eA==\r\n-ERR no\r\n");
        assert!(sent.ends_with(b"*\r\n"));
        assert!(matches!(result, Err(Error::Refused { .. })));
    }

    /// With a client certificate, `auto` sends AUTH EXTERNAL with the
    /// empty initial response, whatever the chunk size of the server's
    /// bytes; a challenge is cancelled and a refusal reported.
    #[test]
    fn external_with_a_client_certificate() {
        let none = Secret::new("");
        let with_cert = Request {
            client_cert: true,
            ..request(Method::Auto, &none, false)
        };
        let capa = b"+OK\r\nSASL PLAIN SCRAM-SHA-256 EXTERNAL\r\n.\r\n";
        let cases: [(&[u8], &str, bool); 3] = [
            (b"+OK quinn logged in\r\n", "AUTH EXTERNAL =\r\n", true),
            (b"-ERR [AUTH] no\r\n", "AUTH EXTERNAL =\r\n", false),
            (
                b"+ \r\n-ERR cancelled\r\n",
                "AUTH EXTERNAL =\r\n*\r\n",
                false,
            ),
        ];
        for (replies, expected, ok) in cases {
            for chunk in 1..=replies.len() {
                let mut c = client(true, b"+OK\r\n", capa);
                assert!(!resolve(&with_cert, &c).needs_secret());
                let (mut login, first) = Login::start(&with_cert, &c).unwrap();
                assert_eq!(login.method(), Method::External);
                let mut sent = Vec::new();
                for command in &first {
                    sent.extend(c.send(command).unwrap());
                }
                let result = feed_in_chunks(&mut c, &mut login, replies, chunk, &mut sent);
                assert_eq!(String::from_utf8(sent).unwrap(), expected, "chunk {chunk}");
                match result {
                    Ok(()) => assert!(ok),
                    Err(Error::Refused { what, .. }) => {
                        assert!(!ok);
                        assert_eq!(what, "AUTH EXTERNAL");
                    }
                    Err(other) => panic!("{other:?}"),
                }
            }
        }
    }

    /// `auto` picks EXTERNAL only with a certificate and when offered;
    /// otherwise the method needs the password.
    #[test]
    fn external_only_with_a_certificate_and_when_offered() {
        let secret = Secret::new("pw");
        let offered = client(true, b"+OK\r\n", b"+OK\r\nSASL EXTERNAL PLAIN\r\n.\r\n");
        let not_offered = client(true, b"+OK\r\n", b"+OK\r\nSASL PLAIN\r\n.\r\n");
        let with_cert = Request {
            client_cert: true,
            ..request(Method::Auto, &secret, false)
        };
        let without = request(Method::Auto, &secret, false);
        assert_eq!(resolve(&with_cert, &offered), Method::External);
        assert_eq!(resolve(&without, &offered), Method::Plain);
        assert_eq!(resolve(&with_cert, &not_offered), Method::Plain);
        assert!(resolve(&with_cert, &not_offered).needs_secret());
        let explicit = request(Method::External, &secret, false);
        assert_eq!(resolve(&explicit, &not_offered), Method::External);
    }

    /// A token with `auto` goes with OAUTHBEARER when offered, else
    /// XOAUTH2; a refused token's error challenge is answered with 0x01
    /// (RFC 7628 section 3.2.3) and the failure that follows is reported,
    /// whatever the chunk size of the server's bytes.
    #[test]
    fn oauthbearer_for_a_token_and_its_error_dance() {
        let token = Secret::new("tok");
        let with_token = |method| Request {
            token: true,
            ..request(method, &token, false)
        };
        let capa = b"+OK\r\nSASL PLAIN XOAUTH2 OAUTHBEARER\r\n.\r\n";
        let replies = b"+ eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=\r\n-ERR [AUTH] bad token\r\n";
        for chunk in 1..=replies.len() {
            let mut c = client(true, b"+OK\r\n", capa);
            let (mut login, first) = Login::start(&with_token(Method::Auto), &c).unwrap();
            assert_eq!(login.method(), Method::OAuthBearer);
            let mut sent = Vec::new();
            for command in &first {
                sent.extend(c.send(command).unwrap());
            }
            let result = feed_in_chunks(&mut c, &mut login, replies, chunk, &mut sent);
            let expected = format!(
                "AUTH OAUTHBEARER {}\r\nAQ==\r\n",
                sasl::oauthbearer_response("tim", "tok")
            );
            assert_eq!(String::from_utf8(sent).unwrap(), expected, "chunk {chunk}");
            let err = result.unwrap_err();
            let Error::Refused { what, detail, .. } = &err else {
                panic!("{err:?}")
            };
            assert_eq!(what, "AUTH OAUTHBEARER");
            assert!(detail.as_deref().unwrap().contains("invalid_token"));
        }
        let c = client(true, b"+OK\r\n", b"+OK\r\nSASL PLAIN XOAUTH2\r\n.\r\n");
        let (login, _) = Login::start(&with_token(Method::Auto), &c).unwrap();
        assert_eq!(login.method(), Method::Xoauth2);
        let (login, first) = Login::start(&with_token(Method::OAuthBearer), &c).unwrap();
        assert_eq!(login.method(), Method::OAuthBearer);
        assert!(
            matches!(&first[..], [Command::Auth { mechanism, .. }] if mechanism == "OAUTHBEARER")
        );
    }

    #[test]
    fn endless_challenges_are_cut_off() {
        let secret = Secret::new("pw");
        let mut c = client(true, b"+OK\r\n", b"+OK\r\nSASL PLAIN\r\n.\r\n");
        let (mut login, first) = Login::start(&request(Method::Plain, &secret, false), &c).unwrap();
        let (_, result) = run(&mut c, &mut login, first, &b"+ eA==\r\n".repeat(10));
        assert!(matches!(result, Err(Error::Unexpected(_))), "{result:?}");
    }
}
