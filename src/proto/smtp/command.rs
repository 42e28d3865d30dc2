//! SMTP client commands (RFC 5321 section 4.1) rendered to exact wire
//! bytes, and their redacted form for the transcript.
//!
//! Rendering refuses any argument containing CR, LF or another control
//! character, so no value taken from the user or a file can end a command
//! early and inject another.

use crate::proto::sasl::Mechanism;
use crate::text::{forbidden_in_argument, printable, ArgumentCheck};

use super::Error;

/// Parameters of `MAIL FROM` from the extensions in use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MailParams {
    /// `SIZE=n` (RFC 1870), when the server advertises SIZE.
    pub size: Option<u64>,
    /// `BODY=8BITMIME` (RFC 6152).
    pub eight_bit: bool,
    /// `SMTPUTF8` (RFC 6531).
    pub smtputf8: bool,
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
    /// `DATA`.
    Data,
    /// `RSET`: abandon the current transaction.
    Rset,
    /// `NOOP`.
    Noop,
    /// `QUIT`.
    Quit,
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
                line
            }
            Command::Rcpt(to) => {
                check_path("recipient", to)?;
                if to.is_empty() {
                    return Err(Error::InvalidArgument("empty recipient address".into()));
                }
                format!("RCPT TO:<{to}>")
            }
            Command::Data => "DATA".to_string(),
            Command::Rset => "RSET".to_string(),
            Command::Noop => "NOOP".to_string(),
            Command::Quit => "QUIT".to_string(),
        };
        let mut bytes = line.into_bytes();
        bytes.extend_from_slice(b"\r\n");
        Ok(bytes)
    }

    /// The line shown in the transcript: the command itself, except that
    /// every authentication payload is `<redacted>`.
    pub fn redacted(&self) -> String {
        match self {
            Command::Auth {
                mechanism,
                initial: Some(_),
            } => format!("AUTH {} <redacted>", mechanism.name()),
            Command::AuthResponse(_) => "<redacted>".to_string(),
            other => match other.render() {
                Ok(bytes) => String::from_utf8_lossy(&bytes).trim_end().to_string(),
                Err(_) => "<invalid command>".to_string(),
            },
        }
    }
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
}
