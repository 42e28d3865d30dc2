//! Making remote text safe to print on a terminal.

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

/// Like [`printable`], after removing one trailing CRLF or LF.
pub fn printable_line(line: &[u8]) -> String {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    printable(line)
}

fn is_bidi_control(c: char) -> bool {
    matches!(c as u32, 0x200e | 0x200f | 0x202a..=0x202e | 0x2066..=0x2069)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_controls() {
        assert_eq!(printable(b"250 ok\x1b[2J"), "250 ok\\x1b[2J");
        assert_eq!(printable("a\u{9b}b".as_bytes()), "a\\u{9b}b");
        assert_eq!(printable("x\u{202e}y".as_bytes()), "x\\u{202e}y");
        assert_eq!(printable(b"\xff"), "\u{fffd}");
        assert_eq!(printable_line(b"+OK hi\r\n"), "+OK hi");
        assert_eq!(printable("邮件\tok".as_bytes()), "邮件\tok");
    }
}
