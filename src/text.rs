//! Making remote text safe to print on a terminal, and local text safe to
//! put in a protocol command line.

/// Renders bytes from a remote party so they cannot control the terminal.
///
/// Invalid UTF-8 becomes U+FFFD; C0 and C1 control characters (including ESC,
/// CR and LF), DEL and the Unicode bidirectional overrides are written as
/// visible escapes such as `\x1b` or `\u{202e}`. Tab is kept.
pub fn printable(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\t' => out.push('\t'),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if (0x80..0xa0).contains(&(c as u32)) || is_bidi_control(c) => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// `1 message`, `2 messages`: a count and its noun, made plural with an
/// `s` unless it is one.
pub fn count(n: usize, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        _ => format!("{n} {noun}s"),
    }
}

/// Like [`printable`], after removing one trailing CRLF or LF.
pub fn printable_line(line: &[u8]) -> String {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    printable(line)
}

/// Which characters an argument of a client command line may not hold
/// (see [`forbidden_in_argument`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgumentCheck {
    /// CR, LF and NUL.
    LineBreaks,
    /// Every control character: C0 (line breaks and NUL included), DEL and
    /// C1.
    Controls,
}

/// The first character of `value` that an argument of an SMTP or POP3
/// command line may not hold under `check`, if any.
///
/// Both protocols end a command at CRLF (RFC 5321 section 2.3.8, RFC 1939
/// section 3): a CR or LF inside an argument would end the command early and
/// run the rest of the value as a second command, and a NUL cuts the line
/// short in many servers.
pub fn forbidden_in_argument(value: &str, check: ArgumentCheck) -> Option<char> {
    value.chars().find(|&c| match check {
        ArgumentCheck::LineBreaks => matches!(c, '\r' | '\n' | '\0'),
        ArgumentCheck::Controls => c.is_control(),
    })
}

fn is_bidi_control(c: char) -> bool {
    matches!(c as u32, 0x200e | 0x200f | 0x202a..=0x202e | 0x2066..=0x2069)
}

/// `%XX` escapes decoded (URLs: RFC 3986 section 2.1); a `%` not followed
/// by two hex digits stays as it is, and invalid UTF-8 becomes U+FFFD.
pub fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_agree_with_their_number() {
        assert_eq!(count(0, "message"), "0 messages");
        assert_eq!(count(1, "message"), "1 message");
        assert_eq!(count(2, "deletion"), "2 deletions");
    }

    #[test]
    fn percent_escapes() {
        assert_eq!(percent_decoded("a%40b%zz%e6%b5%8b"), "a@b%zz测");
    }

    #[test]
    fn escapes_terminal_controls() {
        assert_eq!(printable(b"250 ok\x1b[2J"), "250 ok\\x1b[2J");
        assert_eq!(printable("a\u{9b}b".as_bytes()), "a\\u{9b}b");
        assert_eq!(printable("x\u{202e}y".as_bytes()), "x\\u{202e}y");
        assert_eq!(printable(b"\xff"), "\u{fffd}");
        assert_eq!(printable_line(b"+OK hi\r\n"), "+OK hi");
        assert_eq!(printable("邮件\tok".as_bytes()), "邮件\tok");
    }

    #[test]
    fn argument_checks() {
        use ArgumentCheck::{Controls, LineBreaks};
        for ok in ["user@example.org", "a b", "邮件", "", "pa\u{e9}ss"] {
            assert_eq!(forbidden_in_argument(ok, LineBreaks), None, "{ok:?}");
            assert_eq!(forbidden_in_argument(ok, Controls), None, "{ok:?}");
        }
        for (bad, first) in [("a\r\nQUIT", '\r'), ("x\ny", '\n'), ("nul\0", '\0')] {
            assert_eq!(forbidden_in_argument(bad, LineBreaks), Some(first));
            assert_eq!(forbidden_in_argument(bad, Controls), Some(first));
        }
        // Other controls: only the stricter check refuses them.
        for (bad, first) in [
            ("tab\there", '\t'),
            ("esc\x1b[2J", '\x1b'),
            ("del\x7f", '\x7f'),
        ] {
            assert_eq!(forbidden_in_argument(bad, LineBreaks), None, "{bad:?}");
            assert_eq!(forbidden_in_argument(bad, Controls), Some(first));
        }
        assert_eq!(forbidden_in_argument("c1\u{85}", Controls), Some('\u{85}'));
    }
}
