//! SMTP commands (RFC 5321 section 4.1): rendered to exact wire bytes by
//! the client, with their redacted form for the transcript, and read back
//! by the server with [`parse`].
//!
//! Rendering refuses any argument containing CR, LF or another control
//! character, so no value taken from the user or a file can end a command
//! early and inject another.

use crate::proto::sasl::Mechanism;
use crate::text::{forbidden_in_argument, printable, ArgumentCheck};

use super::Error;

/// Parameters of `MAIL FROM` from the extensions in use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailParams {
    /// `SIZE=n` (RFC 1870), when the server advertises SIZE.
    pub size: Option<u64>,
    /// `BODY=8BITMIME` (RFC 6152).
    pub eight_bit: bool,
    /// `SMTPUTF8` (RFC 6531).
    pub smtputf8: bool,
    /// `RET=FULL|HDRS` (RFC 3461 section 4.3).
    pub ret: Option<DsnRet>,
    /// `ENVID=` (RFC 3461 section 4.4), sent xtext-encoded.
    pub envid: Option<String>,
}

/// What a delivery status notification returns of the message (RFC 3461
/// section 4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DsnRet {
    /// The whole message.
    Full,
    /// Its header only.
    Hdrs,
}

impl DsnRet {
    /// The parameter value.
    pub fn name(self) -> &'static str {
        match self {
            DsnRet::Full => "FULL",
            DsnRet::Hdrs => "HDRS",
        }
    }
}

/// Encodes `value` as xtext (RFC 3461 section 4): `+`, `=`, and bytes
/// outside `!`..`~` become `+XX`.
pub fn xtext(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// Checks a `NOTIFY=` value (RFC 3461 section 4.1): `NEVER`, or a comma
/// list of `SUCCESS`, `FAILURE` and `DELAY`; returns it in upper case.
pub fn notify_value(value: &str) -> Result<String, Error> {
    let upper = value.trim().to_ascii_uppercase();
    let words: Vec<&str> = upper.split(',').map(str::trim).collect();
    let valid = if words == ["NEVER"] {
        true
    } else {
        !words.is_empty()
            && words
                .iter()
                .all(|w| matches!(*w, "SUCCESS" | "FAILURE" | "DELAY"))
    };
    if !valid {
        return Err(Error::InvalidArgument(format!(
            "NOTIFY '{}': expected never, or a list of success, failure, delay",
            printable(value.as_bytes())
        )));
    }
    Ok(words.join(","))
}

/// One client command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// `EHLO domain` (RFC 5321 section 4.1.1.1).
    Ehlo(&'a str),
    /// `HELO domain`, for servers that refuse EHLO.
    Helo(&'a str),
    /// `STARTTLS` (RFC 3207).
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954). The response is a
    /// secret: it never appears in the transcript.
    Auth {
        /// The SASL mechanism.
        mechanism: Mechanism,
        /// The base64 initial response, if sent with the command.
        initial: Option<&'a str>,
    },
    /// A base64 line answering a 334 challenge (secret).
    AuthResponse(&'a str),
    /// `MAIL FROM:<path> [params]`; an empty path is the null reverse-path.
    Mail {
        /// The reverse-path (sender address).
        from: &'a str,
        /// Extension parameters.
        params: MailParams,
    },
    /// `RCPT TO:<path>`.
    Rcpt(&'a str),
    /// `RCPT TO:<path> NOTIFY=value` (RFC 3461 section 4.1); the value
    /// as [`notify_value`] gives it.
    RcptNotify {
        /// The forward-path.
        to: &'a str,
        /// `NEVER` or a list of `SUCCESS`, `FAILURE`, `DELAY`.
        notify: &'a str,
    },
    /// `DATA`.
    Data,
    /// `RSET`: abandon the current transaction.
    Rset,
    /// `NOOP`.
    Noop,
    /// `QUIT`.
    Quit,
    /// `VRFY string`.
    Vrfy(&'a str),
    /// `HELP`.
    Help,
}

fn check_arg(what: &str, value: &str) -> Result<(), Error> {
    if forbidden_in_argument(value, ArgumentCheck::Controls).is_some() {
        return Err(Error::InvalidArgument(format!(
            "{what} '{}' contains a line break or control character",
            printable(value.as_bytes())
        )));
    }
    Ok(())
}

fn check_path(what: &str, value: &str) -> Result<(), Error> {
    check_arg(what, value)?;
    if value.contains(['<', '>']) || value.chars().any(char::is_whitespace) {
        return Err(Error::InvalidArgument(format!(
            "{what} '{}' is not a valid address",
            printable(value.as_bytes())
        )));
    }
    Ok(())
}

impl Command<'_> {
    /// The bytes to send, CRLF included.
    pub fn render(&self) -> Result<Vec<u8>, Error> {
        let line = match self {
            Command::Ehlo(domain) | Command::Helo(domain) => {
                check_arg("EHLO name", domain)?;
                if domain.is_empty() || domain.contains(' ') {
                    return Err(Error::InvalidArgument(format!(
                        "invalid EHLO name '{domain}'"
                    )));
                }
                let verb = if matches!(self, Command::Ehlo(_)) {
                    "EHLO"
                } else {
                    "HELO"
                };
                format!("{verb} {domain}")
            }
            Command::StartTls => "STARTTLS".to_string(),
            Command::Auth { mechanism, initial } => match initial {
                Some(initial) => {
                    check_arg("AUTH response", initial)?;
                    // RFC 4954 section 4: an empty initial response is "=".
                    let initial = if initial.is_empty() { "=" } else { initial };
                    format!("AUTH {} {initial}", mechanism.name())
                }
                None => format!("AUTH {}", mechanism.name()),
            },
            Command::AuthResponse(response) => {
                check_arg("AUTH response", response)?;
                response.to_string()
            }
            Command::Mail { from, params } => {
                check_path("sender", from)?;
                let mut line = format!("MAIL FROM:<{from}>");
                if let Some(size) = params.size {
                    line.push_str(&format!(" SIZE={size}"));
                }
                if params.eight_bit {
                    line.push_str(" BODY=8BITMIME");
                }
                if params.smtputf8 {
                    line.push_str(" SMTPUTF8");
                }
                if let Some(ret) = params.ret {
                    line.push_str(&format!(" RET={}", ret.name()));
                }
                if let Some(envid) = &params.envid {
                    line.push_str(&format!(" ENVID={}", xtext(envid)));
                }
                line
            }
            Command::Rcpt(to) | Command::RcptNotify { to, .. } => {
                check_path("recipient", to)?;
                if to.is_empty() {
                    return Err(Error::InvalidArgument("empty recipient address".into()));
                }
                match self {
                    Command::RcptNotify { notify, .. } => {
                        format!("RCPT TO:<{to}> NOTIFY={}", notify_value(notify)?)
                    }
                    _ => format!("RCPT TO:<{to}>"),
                }
            }
            Command::Data => "DATA".to_string(),
            Command::Rset => "RSET".to_string(),
            Command::Noop => "NOOP".to_string(),
            Command::Quit => "QUIT".to_string(),
            Command::Vrfy(what) => {
                check_arg("VRFY argument", what)?;
                format!("VRFY {what}")
            }
            Command::Help => "HELP".to_string(),
        };
        Ok(crate::proto::line::with_crlf(line))
    }

    /// The line shown in the transcript: the command itself, except that
    /// every authentication payload is `<redacted>`.
    pub fn redacted(&self) -> String {
        match self {
            Command::Auth {
                mechanism,
                initial: Some(_),
            } => crate::proto::sasl::shown_auth(mechanism.name()),
            Command::AuthResponse(_) => "<redacted>".to_string(),
            other => match other.render() {
                Ok(bytes) => String::from_utf8_lossy(&bytes).trim_end().to_string(),
                Err(_) => "<invalid command>".to_string(),
            },
        }
    }
}

/// Longest address accepted inside `<...>` (RFC 5321 section 4.5.3.1.3).
pub const MAX_PATH: usize = 256;

/// Longest EHLO/HELO domain accepted (RFC 5321 section 4.5.3.1.2).
pub const MAX_DOMAIN: usize = 255;

/// Why a server could not read a command line as a [`Command`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The line is empty.
    Empty,
    /// Not an SMTP command.
    Unknown,
    /// An SMTP command not implemented here (EXPN, BDAT, ...).
    NotImplemented,
    /// The arguments hold bytes other than printable ASCII.
    InvalidCharacters,
    /// The arguments do not fit the command's syntax.
    Syntax,
    /// The EHLO/HELO domain is longer than [`MAX_DOMAIN`].
    DomainTooLong,
    /// A `SIZE=` value that is not a number.
    BadSize,
    /// A `BODY=` value other than `7BIT` or `8BITMIME`.
    BadBody,
    /// A MAIL or RCPT parameter not supported.
    UnsupportedParameter,
    /// `RCPT TO:<>`.
    EmptyRecipient,
    /// An AUTH mechanism not known.
    UnknownMechanism,
}

/// A command line as a server reads it: the verb, upper-cased, and the
/// command or why its line is not one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// The first word of the line, upper-cased.
    pub verb: String,
    /// The command, the inverse of [`Command::render`].
    pub command: Result<Command<'a>, ParseError>,
}

/// Reads one command line (with or without its line end), the way
/// [`Command::render`] writes it and more leniently where RFC 5321 allows
/// (any case, spaces after the colon, source routes, `SIZE` beyond 64
/// bits read as the largest size).
pub fn parse(line: &[u8]) -> Parsed<'_> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let (verb, args) = match line.iter().position(|&b| b == b' ') {
        Some(sp) => (&line[..sp], &line[sp + 1..]),
        None => (line, &b""[..]),
    };
    let verb = String::from_utf8_lossy(verb).to_ascii_uppercase();
    // Addresses may hold UTF-8 (RFC 6531); whether they may be used is the
    // server's decision (SMTPUTF8).
    let utf8_allowed = matches!(verb.as_str(), "MAIL" | "RCPT");
    let command = match std::str::from_utf8(args) {
        Ok(args)
            if args.chars().all(|c| {
                (' '..'\x7f').contains(&c) || (utf8_allowed && !c.is_ascii() && !c.is_control())
            }) =>
        {
            parse_args(&verb, args)
        }
        _ => Err(ParseError::InvalidCharacters),
    };
    Parsed { verb, command }
}

fn parse_args<'a>(verb: &str, args: &'a str) -> Result<Command<'a>, ParseError> {
    let none = |command: Command<'a>| {
        if args.is_empty() {
            Ok(command)
        } else {
            Err(ParseError::Syntax)
        }
    };
    match verb {
        "EHLO" | "HELO" => {
            let domain = args.trim();
            if domain.is_empty() || domain.contains(' ') {
                Err(ParseError::Syntax)
            } else if domain.len() > MAX_DOMAIN {
                Err(ParseError::DomainTooLong)
            } else if verb == "EHLO" {
                Ok(Command::Ehlo(domain))
            } else {
                Ok(Command::Helo(domain))
            }
        }
        "MAIL" => parse_mail(args),
        "RCPT" => {
            let (path, params) = split_path(args, "TO:").ok_or(ParseError::Syntax)?;
            if !params.trim().is_empty() {
                Err(ParseError::UnsupportedParameter)
            } else if path.is_empty() {
                Err(ParseError::EmptyRecipient)
            } else {
                Ok(Command::Rcpt(path))
            }
        }
        "DATA" => none(Command::Data),
        "RSET" => none(Command::Rset),
        "STARTTLS" => none(Command::StartTls),
        "NOOP" => Ok(Command::Noop),
        "QUIT" => Ok(Command::Quit),
        "HELP" => Ok(Command::Help),
        "VRFY" if args.trim().is_empty() => Err(ParseError::Syntax),
        "VRFY" => Ok(Command::Vrfy(args.trim())),
        "AUTH" => {
            let mut words = args.split(' ').filter(|w| !w.is_empty());
            let (name, initial) = match (words.next(), words.next(), words.next()) {
                (Some(name), initial, None) => (name, initial),
                _ => return Err(ParseError::Syntax),
            };
            let mechanism = Mechanism::from_name(name).ok_or(ParseError::UnknownMechanism)?;
            // RFC 4954 section 4: "=" is an empty initial response.
            let initial = initial.map(|i| if i == "=" { "" } else { i });
            Ok(Command::Auth { mechanism, initial })
        }
        "EXPN" | "TURN" | "ETRN" | "BDAT" | "SEND" | "SOML" | "SAML" | "ATRN" => {
            Err(ParseError::NotImplemented)
        }
        "" => Err(ParseError::Empty),
        _ => Err(ParseError::Unknown),
    }
}

fn parse_mail(args: &str) -> Result<Command<'_>, ParseError> {
    let (from, params) = split_path(args, "FROM:").ok_or(ParseError::Syntax)?;
    let mut parsed = MailParams::default();
    for param in params.split(' ').filter(|p| !p.is_empty()) {
        let (key, value) = match param.split_once('=') {
            Some((k, v)) => (k.to_ascii_uppercase(), Some(v)),
            None => (param.to_ascii_uppercase(), None),
        };
        match (key.as_str(), value) {
            ("SIZE", Some(v)) => {
                parsed.size = Some(match v.parse::<u64>() {
                    Ok(n) => n,
                    // Digits beyond u64 are still a size, and too large.
                    Err(_) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => u64::MAX,
                    Err(_) => return Err(ParseError::BadSize),
                })
            }
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("7BIT") => parsed.eight_bit = false,
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("8BITMIME") => parsed.eight_bit = true,
            ("BODY", _) => return Err(ParseError::BadBody),
            ("SMTPUTF8", None) => parsed.smtputf8 = true,
            // RFC 4954 section 5: the submitter's identity, not used here.
            ("AUTH", Some(_)) => {}
            _ => return Err(ParseError::UnsupportedParameter),
        }
    }
    Ok(Command::Mail {
        from,
        params: parsed,
    })
}

/// Splits `FROM:<path> params` (keyword case-insensitive, spaces after the
/// colon tolerated) into the address and the rest. Source routes
/// (`<@a,@b:user@c>`) are reduced to the mailbox (RFC 5321 section 4.1.2).
fn split_path<'a>(args: &'a str, keyword: &str) -> Option<(&'a str, &'a str)> {
    let head = args.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = args[keyword.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let close = rest.find('>')?;
    let mut path = &rest[..close];
    let params = &rest[close + 1..];
    if !params.is_empty() && !params.starts_with(' ') {
        return None;
    }
    if path.starts_with('@') {
        path = &path[path.find(':')? + 1..];
    }
    if path.len() > MAX_PATH || path.contains(['<', ' ']) {
        return None;
    }
    if !path.is_empty() && (!path.contains('@') || path.starts_with('@') || path.ends_with('@')) {
        // RFC 5321 allows a bare "postmaster"; anything else needs a domain.
        if !path.eq_ignore_ascii_case("postmaster") {
            return None;
        }
    }
    Some((path, params.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_table() {
        let eight = MailParams {
            size: Some(1234),
            eight_bit: true,
            smtputf8: true,
            ..MailParams::default()
        };
        let cases: Vec<(Command, &[u8])> = vec![
            (Command::Ehlo("client.example"), b"EHLO client.example\r\n"),
            (Command::Helo("client.example"), b"HELO client.example\r\n"),
            (Command::StartTls, b"STARTTLS\r\n"),
            (
                Command::Auth {
                    mechanism: Mechanism::Plain,
                    initial: Some("AGEAYg=="),
                },
                b"AUTH PLAIN AGEAYg==\r\n",
            ),
            (
                Command::Auth {
                    mechanism: Mechanism::XOAuth2,
                    initial: Some(""),
                },
                b"AUTH XOAUTH2 =\r\n",
            ),
            (
                Command::Auth {
                    mechanism: Mechanism::CramMd5,
                    initial: None,
                },
                b"AUTH CRAM-MD5\r\n",
            ),
            (Command::AuthResponse("dXNlcg=="), b"dXNlcg==\r\n"),
            (Command::AuthResponse(""), b"\r\n"),
            (
                Command::Mail {
                    from: "a@example.org",
                    params: MailParams::default(),
                },
                b"MAIL FROM:<a@example.org>\r\n",
            ),
            (
                Command::Mail {
                    from: "",
                    params: eight,
                },
                b"MAIL FROM:<> SIZE=1234 BODY=8BITMIME SMTPUTF8\r\n",
            ),
            (
                Command::Rcpt("b@example.org"),
                b"RCPT TO:<b@example.org>\r\n",
            ),
            (Command::Data, b"DATA\r\n"),
            (Command::Rset, b"RSET\r\n"),
            (Command::Noop, b"NOOP\r\n"),
            (Command::Quit, b"QUIT\r\n"),
        ];
        for (command, wire) in cases {
            assert_eq!(command.render().unwrap(), wire, "{command:?}");
        }
    }

    #[test]
    fn injection_refused() {
        let bad = [
            Command::Ehlo("a\r\nMAIL FROM:<x>"),
            Command::Mail {
                from: "a@b>\r\nRCPT TO:<c@d",
                params: MailParams::default(),
            },
            Command::Rcpt("victim@example.org\nDATA"),
            Command::Rcpt("a@b\r"),
            Command::Rcpt("a@b> NOTIFY=NEVER"),
            Command::Rcpt(""),
            Command::AuthResponse("abc\r\nQUIT"),
        ];
        for command in bad {
            let err = command.render().unwrap_err();
            assert!(matches!(err, Error::InvalidArgument(_)), "{command:?}");
        }
    }

    #[test]
    fn transcript_form_hides_secrets() {
        let auth = Command::Auth {
            mechanism: Mechanism::Plain,
            initial: Some("AHRpbQBzZWNyZXQ="),
        };
        assert_eq!(auth.redacted(), "AUTH PLAIN <redacted>");
        assert_eq!(Command::AuthResponse("c2VjcmV0").redacted(), "<redacted>");
        assert_eq!(Command::Rcpt("a@b").redacted(), "RCPT TO:<a@b>");
    }

    #[test]
    fn what_is_rendered_parses_back() {
        let commands = [
            Command::Ehlo("client.example"),
            Command::Helo("c"),
            Command::StartTls,
            Command::Auth {
                mechanism: Mechanism::Plain,
                initial: Some("AGEAYg=="),
            },
            Command::Auth {
                mechanism: Mechanism::Login,
                initial: Some(""),
            },
            Command::Auth {
                mechanism: Mechanism::CramMd5,
                initial: None,
            },
            Command::Mail {
                from: "",
                params: MailParams {
                    size: Some(1234),
                    eight_bit: true,
                    smtputf8: true,
                    ..MailParams::default()
                },
            },
            Command::Mail {
                from: "a@b.example",
                params: MailParams::default(),
            },
            Command::Rcpt("b@example.org"),
            Command::Data,
            Command::Rset,
            Command::Noop,
            Command::Quit,
            Command::Vrfy("bob"),
            Command::Help,
        ];
        for command in commands {
            let wire = command.render().unwrap();
            assert_eq!(parse(&wire).command, Ok(command.clone()), "{command:?}");
        }
    }

    #[test]
    fn server_side_parsing() {
        let cases: &[(&[u8], Result<Command, ParseError>)] = &[
            (
                b"mail from: <@r.example:a@b> BODY=7bit AUTH=<>",
                Ok(Command::Mail {
                    from: "a@b",
                    params: MailParams::default(),
                }),
            ),
            (
                b"MAIL FROM:<a@b> SIZE=99999999999999999999999",
                Ok(Command::Mail {
                    from: "a@b",
                    params: MailParams {
                        size: Some(u64::MAX),
                        ..MailParams::default()
                    },
                }),
            ),
            (b"RCPT TO:<postmaster>\r\n", Ok(Command::Rcpt("postmaster"))),
            (
                b"AUTH plain =",
                Ok(Command::Auth {
                    mechanism: Mechanism::Plain,
                    initial: Some(""),
                }),
            ),
            (b"NOOP anything", Ok(Command::Noop)),
            (b"", Err(ParseError::Empty)),
            (b"XYZZY", Err(ParseError::Unknown)),
            (b"EXPN list", Err(ParseError::NotImplemented)),
            (b"EHLO a\xc3\xa9", Err(ParseError::InvalidCharacters)),
            (b"RCPT TO:<a\xc2\x85@b>", Err(ParseError::InvalidCharacters)),
            (b"MAIL FROM:<a\xff@b>", Err(ParseError::InvalidCharacters)),
            (b"MAIL FROM:<a\rb@c>", Err(ParseError::InvalidCharacters)),
            (b"EHLO a b", Err(ParseError::Syntax)),
            (b"MAIL FROM:<a@b>x", Err(ParseError::Syntax)),
            (b"MAIL FROM:<nodomain>", Err(ParseError::Syntax)),
            (b"MAIL FROM:<a@b> SIZE=-1", Err(ParseError::BadSize)),
            (b"MAIL FROM:<a@b> BODY=BINARYMIME", Err(ParseError::BadBody)),
            (
                b"MAIL FROM:<a@b> SIZE",
                Err(ParseError::UnsupportedParameter),
            ),
            (
                b"RCPT TO:<a@b> NOTIFY=NEVER",
                Err(ParseError::UnsupportedParameter),
            ),
            (b"RCPT TO:<>", Err(ParseError::EmptyRecipient)),
            (b"AUTH GSSAPI", Err(ParseError::UnknownMechanism)),
            (b"AUTH PLAIN a b", Err(ParseError::Syntax)),
            (b"DATA now", Err(ParseError::Syntax)),
            (b"VRFY  ", Err(ParseError::Syntax)),
        ];
        crate::proto::testing::check_lines(cases, |line| parse(line).command);
        let long = format!("EHLO {}", "a".repeat(MAX_DOMAIN + 1));
        assert_eq!(
            parse(long.as_bytes()).command,
            Err(ParseError::DomainTooLong)
        );
        assert_eq!(parse(b"rcpt TO:<a@b>").verb, "RCPT");
    }
}
