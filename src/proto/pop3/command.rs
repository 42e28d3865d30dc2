//! POP3 commands and their exact wire form (RFC 1939 sections 4-7,
//! RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH): rendered by the client,
//! read back by the server with [`parse`].

use super::Error;
use crate::secret::Secret;
use crate::text::{forbidden_in_argument, ArgumentCheck};

/// A command the client can send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `CAPA` (RFC 2449 section 5).
    Capa,
    /// `STLS` (RFC 2595 section 4).
    Stls,
    /// `USER name`.
    User(String),
    /// `PASS password`.
    Pass(Secret),
    /// `APOP name digest`: the digest is `crate::proto::sasl::apop_digest`.
    Apop {
        /// The mailbox name.
        user: String,
        /// Hex MD5 of timestamp and password.
        digest: Secret,
    },
    /// `AUTH mechanism [initial-response]` (RFC 5034 section 4).
    Auth {
        /// SASL mechanism name, such as `PLAIN`.
        mechanism: String,
        /// Base64 initial response, if sent with the command.
        initial: Option<Secret>,
    },
    /// A line answering a SASL challenge (base64, `*` to cancel, or empty).
    SaslResponse(Secret),
    /// `STAT`.
    Stat,
    /// `LIST [n]`.
    List(Option<u32>),
    /// `UIDL [n]`.
    Uidl(Option<u32>),
    /// `TOP n lines`.
    Top(u32, u32),
    /// `RETR n`.
    Retr(u32),
    /// `DELE n`.
    Dele(u32),
    /// `RSET`.
    Rset,
    /// `NOOP`.
    Noop,
    /// `QUIT`.
    Quit,
}

/// What kind of command a response answers, without any secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The server greeting, which answers no command.
    Greeting,
    /// `CAPA`.
    Capa,
    /// `STLS`.
    Stls,
    /// `USER`.
    User,
    /// `PASS`.
    Pass,
    /// `APOP`.
    Apop,
    /// `AUTH` or a SASL response line.
    Auth,
    /// `STAT`.
    Stat,
    /// `LIST` with or without a number.
    List(Option<u32>),
    /// `UIDL` with or without a number.
    Uidl(Option<u32>),
    /// `TOP n lines`.
    Top(u32),
    /// `RETR n`.
    Retr(u32),
    /// `DELE n`.
    Dele(u32),
    /// `RSET`.
    Rset,
    /// `NOOP`.
    Noop,
    /// `QUIT`.
    Quit,
}

impl Kind {
    /// Whether a `+OK` answer to this command is followed by a multi-line
    /// body ending in a `.` line.
    pub fn is_multiline(self) -> bool {
        matches!(
            self,
            Kind::Capa | Kind::List(None) | Kind::Uidl(None) | Kind::Top(_) | Kind::Retr(_)
        )
    }

    /// The command name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Greeting => "greeting",
            Kind::Capa => "CAPA",
            Kind::Stls => "STLS",
            Kind::User => "USER",
            Kind::Pass => "PASS",
            Kind::Apop => "APOP",
            Kind::Auth => "AUTH",
            Kind::Stat => "STAT",
            Kind::List(_) => "LIST",
            Kind::Uidl(_) => "UIDL",
            Kind::Top(_) => "TOP",
            Kind::Retr(_) => "RETR",
            Kind::Dele(_) => "DELE",
            Kind::Rset => "RSET",
            Kind::Noop => "NOOP",
            Kind::Quit => "QUIT",
        }
    }
}

impl Command {
    /// The kind of response this command expects.
    pub fn kind(&self) -> Kind {
        match self {
            Command::Capa => Kind::Capa,
            Command::Stls => Kind::Stls,
            Command::User(_) => Kind::User,
            Command::Pass(_) => Kind::Pass,
            Command::Apop { .. } => Kind::Apop,
            Command::Auth { .. } | Command::SaslResponse(_) => Kind::Auth,
            Command::Stat => Kind::Stat,
            Command::List(n) => Kind::List(*n),
            Command::Uidl(n) => Kind::Uidl(*n),
            Command::Top(n, _) => Kind::Top(*n),
            Command::Retr(n) => Kind::Retr(*n),
            Command::Dele(n) => Kind::Dele(*n),
            Command::Rset => Kind::Rset,
            Command::Noop => Kind::Noop,
            Command::Quit => Kind::Quit,
        }
    }

    /// The exact bytes to send, CRLF included. Arguments holding CR, LF or
    /// NUL are refused: they would smuggle a second command.
    pub fn render(&self) -> Result<Vec<u8>, Error> {
        let line = match self {
            Command::Capa => "CAPA".to_string(),
            Command::Stls => "STLS".to_string(),
            Command::User(name) => format!("USER {}", argument(name, "user name")?),
            Command::Pass(pw) => format!("PASS {}", argument(pw.expose(), "password")?),
            Command::Apop { user, digest } => format!(
                "APOP {} {}",
                word(user, "user name")?,
                word(digest.expose(), "digest")?
            ),
            Command::Auth { mechanism, initial } => match initial {
                Some(ir) => format!(
                    "AUTH {} {}",
                    word(mechanism, "mechanism")?,
                    word(ir.expose(), "SASL response")?
                ),
                None => format!("AUTH {}", word(mechanism, "mechanism")?),
            },
            Command::SaslResponse(s) => argument(s.expose(), "SASL response")?.to_string(),
            Command::Stat => "STAT".to_string(),
            Command::List(None) => "LIST".to_string(),
            Command::List(Some(n)) => format!("LIST {n}"),
            Command::Uidl(None) => "UIDL".to_string(),
            Command::Uidl(Some(n)) => format!("UIDL {n}"),
            Command::Top(n, lines) => format!("TOP {n} {lines}"),
            Command::Retr(n) => format!("RETR {n}"),
            Command::Dele(n) => format!("DELE {n}"),
            Command::Rset => "RSET".to_string(),
            Command::Noop => "NOOP".to_string(),
            Command::Quit => "QUIT".to_string(),
        };
        Ok(crate::proto::line::with_crlf(line))
    }

    /// The line as shown in a transcript: passwords, digests and SASL
    /// payloads replaced by `<redacted>`.
    pub fn shown(&self) -> String {
        match self {
            Command::Pass(_) => "PASS <redacted>".to_string(),
            Command::Apop { user, .. } => format!("APOP {user} <redacted>"),
            Command::Auth {
                mechanism,
                initial: Some(_),
            } => crate::proto::sasl::shown_auth(mechanism),
            Command::SaslResponse(_) => "<redacted>".to_string(),
            other => {
                let wire = other.render().unwrap_or_default();
                String::from_utf8_lossy(super::response::strip_eol(&wire)).into_owned()
            }
        }
    }
}

/// Why a server could not read a command line as a [`Command`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not a POP3 command.
    Unknown,
    /// The arguments are not UTF-8 or hold control characters.
    InvalidCharacters,
    /// The arguments do not fit the command's syntax.
    Syntax,
    /// A message number that is not a number.
    BadNumber,
}

/// A command line as a server reads it: the verb, upper-cased, and the
/// command or why its line is not one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The first word of the line, upper-cased.
    pub verb: String,
    /// The command, the inverse of [`Command::render`]. A bare `AUTH` (the
    /// request for the mechanism list, RFC 5034 section 4) is an
    /// [`Command::Auth`] with an empty mechanism.
    pub command: Result<Command, ParseError>,
}

/// Reads one command line (with or without its line end), the way
/// [`Command::render`] writes it, verbs in any case. Message numbers too
/// large for 32 bits read as the largest number.
pub fn parse(line: &[u8]) -> Parsed {
    let line = super::response::strip_eol(line);
    let (verb, args) = match line.iter().position(|&b| b == b' ') {
        Some(sp) => (&line[..sp], &line[sp + 1..]),
        None => (line, &b""[..]),
    };
    let verb = String::from_utf8_lossy(verb).to_ascii_uppercase();
    let command = match std::str::from_utf8(args) {
        Ok(args) if !args.chars().any(char::is_control) => parse_args(&verb, args),
        _ => Err(ParseError::InvalidCharacters),
    };
    Parsed { verb, command }
}

fn parse_args(verb: &str, args: &str) -> Result<Command, ParseError> {
    let none = |command: Command| {
        if args.is_empty() {
            Ok(command)
        } else {
            Err(ParseError::Syntax)
        }
    };
    let optional = |args: &str| match args.trim() {
        "" => Ok(None),
        n => number(n).map(Some),
    };
    match verb {
        "CAPA" => Ok(Command::Capa),
        "QUIT" => Ok(Command::Quit),
        "NOOP" => Ok(Command::Noop),
        "STLS" => none(Command::Stls),
        "STAT" => none(Command::Stat),
        "RSET" => none(Command::Rset),
        "USER" => match args.trim() {
            name if name.is_empty() || name.contains(' ') => Err(ParseError::Syntax),
            name => Ok(Command::User(name.to_string())),
        },
        "PASS" => Ok(Command::Pass(Secret::new(args))),
        "APOP" => match args.split_once(' ') {
            Some((user, digest))
                if !user.is_empty()
                    && digest.len() == 32
                    && digest.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                Ok(Command::Apop {
                    user: user.to_string(),
                    digest: Secret::new(digest),
                })
            }
            _ => Err(ParseError::Syntax),
        },
        "AUTH" => {
            let mut words = args.split(' ').filter(|w| !w.is_empty());
            match (words.next(), words.next(), words.next()) {
                (None, _, _) => Ok(Command::Auth {
                    mechanism: String::new(),
                    initial: None,
                }),
                (Some(mechanism), initial, None) => Ok(Command::Auth {
                    mechanism: mechanism.to_ascii_uppercase(),
                    initial: initial.map(Secret::new),
                }),
                _ => Err(ParseError::Syntax),
            }
        }
        "LIST" => optional(args).map(Command::List),
        "UIDL" => optional(args).map(Command::Uidl),
        "RETR" => number(args.trim()).map(Command::Retr),
        "DELE" => number(args.trim()).map(Command::Dele),
        "TOP" => {
            let (n, lines) = args.trim().split_once(' ').ok_or(ParseError::Syntax)?;
            let n = number(n)?;
            let lines = number(lines.trim()).map_err(|_| ParseError::Syntax)?;
            Ok(Command::Top(n, lines))
        }
        _ => Err(ParseError::Unknown),
    }
}

/// A message number or line count: digits only, saturating at `u32::MAX`.
fn number(word: &str) -> Result<u32, ParseError> {
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::BadNumber);
    }
    Ok(word.parse().unwrap_or(u32::MAX))
}

fn argument<'a>(value: &'a str, what: &str) -> Result<&'a str, Error> {
    if forbidden_in_argument(value, ArgumentCheck::LineBreaks).is_some() {
        return Err(Error::BadArgument(format!(
            "the {what} contains a line break or NUL"
        )));
    }
    Ok(value)
}

fn word<'a>(value: &'a str, what: &str) -> Result<&'a str, Error> {
    let value = argument(value, what)?;
    if value.is_empty() || value.contains(' ') {
        return Err(Error::BadArgument(format!(
            "the {what} must be one non-empty word"
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering() {
        let table: Vec<(Command, &[u8])> = vec![
            (Command::Capa, b"CAPA\r\n"),
            (Command::Stls, b"STLS\r\n"),
            (Command::User("tim".into()), b"USER tim\r\n"),
            (Command::Pass(Secret::new("a b")), b"PASS a b\r\n"),
            (
                Command::Apop {
                    user: "mrose".into(),
                    digest: Secret::new("c4c9334bac560ecc979e58001b3e22fb"),
                },
                b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n",
            ),
            (
                Command::Auth {
                    mechanism: "PLAIN".into(),
                    initial: Some(Secret::new("AHRpbQB0YW5zdGFhZnRhbnN0YWFm")),
                },
                b"AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n",
            ),
            (Command::SaslResponse(Secret::new("")), b"\r\n"),
            (Command::Stat, b"STAT\r\n"),
            (Command::List(None), b"LIST\r\n"),
            (Command::List(Some(2)), b"LIST 2\r\n"),
            (Command::Uidl(None), b"UIDL\r\n"),
            (Command::Uidl(Some(9)), b"UIDL 9\r\n"),
            (Command::Top(3, 0), b"TOP 3 0\r\n"),
            (Command::Retr(1), b"RETR 1\r\n"),
            (Command::Dele(1), b"DELE 1\r\n"),
            (Command::Rset, b"RSET\r\n"),
            (Command::Noop, b"NOOP\r\n"),
            (Command::Quit, b"QUIT\r\n"),
        ];
        for (cmd, wire) in table {
            assert_eq!(cmd.render().unwrap(), wire, "{cmd:?}");
        }
    }

    #[test]
    fn refuses_line_breaks() {
        assert!(Command::User("a\r\nDELE 1".into()).render().is_err());
        assert!(Command::Pass(Secret::new("pw\nQUIT")).render().is_err());
        assert!(Command::User("nul\0".into()).render().is_err());
        let apop = Command::Apop {
            user: "two words".into(),
            digest: Secret::new("00"),
        };
        assert!(apop.render().is_err());
    }

    #[test]
    fn transcript_form_hides_secrets() {
        assert_eq!(
            Command::Pass(Secret::new("hunter2")).shown(),
            "PASS <redacted>"
        );
        let auth = Command::Auth {
            mechanism: "XOAUTH2".into(),
            initial: Some(Secret::new("dG9rZW4=")),
        };
        assert_eq!(auth.shown(), "AUTH XOAUTH2 <redacted>");
        let apop = Command::Apop {
            user: "u".into(),
            digest: Secret::new("abc"),
        };
        assert_eq!(apop.shown(), "APOP u <redacted>");
        assert_eq!(Command::Retr(4).shown(), "RETR 4");
    }

    #[test]
    fn what_is_rendered_parses_back() {
        let commands = [
            Command::Capa,
            Command::Stls,
            Command::User("tim".into()),
            Command::Pass(Secret::new("a b")),
            Command::Apop {
                user: "mrose".into(),
                digest: Secret::new("c4c9334bac560ecc979e58001b3e22fb"),
            },
            Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some(Secret::new("AHRpbQ==")),
            },
            Command::Auth {
                mechanism: "PLAIN".into(),
                initial: None,
            },
            Command::Stat,
            Command::List(None),
            Command::List(Some(2)),
            Command::Uidl(None),
            Command::Uidl(Some(9)),
            Command::Top(3, 0),
            Command::Retr(1),
            Command::Dele(1),
            Command::Rset,
            Command::Noop,
            Command::Quit,
        ];
        for command in commands {
            let wire = command.render().unwrap();
            assert_eq!(parse(&wire).command, Ok(command.clone()), "{command:?}");
        }
    }

    #[test]
    fn server_side_parsing() {
        let cases: &[(&[u8], Result<Command, ParseError>)] = &[
            (b"retr 99999999999", Ok(Command::Retr(u32::MAX))),
            (b"LIST  3 ", Ok(Command::List(Some(3)))),
            (
                b"auth",
                Ok(Command::Auth {
                    mechanism: String::new(),
                    initial: None,
                }),
            ),
            (b"XYZZY", Err(ParseError::Unknown)),
            (b"", Err(ParseError::Unknown)),
            (b"USER a\x01", Err(ParseError::InvalidCharacters)),
            (b"USER \xff", Err(ParseError::InvalidCharacters)),
            (b"USER", Err(ParseError::Syntax)),
            (b"APOP alice short", Err(ParseError::Syntax)),
            (b"STAT x", Err(ParseError::Syntax)),
            (b"TOP 1", Err(ParseError::Syntax)),
            (b"TOP 1 x", Err(ParseError::Syntax)),
            (b"TOP x 1", Err(ParseError::BadNumber)),
            (b"RETR -1", Err(ParseError::BadNumber)),
            (b"DELE", Err(ParseError::BadNumber)),
            (b"AUTH PLAIN a b", Err(ParseError::Syntax)),
        ];
        crate::proto::testing::check_lines(cases, |line| parse(line).command);
        assert_eq!(parse(b"uidl\r\n").verb, "UIDL");
    }
}
