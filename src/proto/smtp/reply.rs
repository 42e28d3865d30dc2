//! SMTP replies (RFC 5321 section 4.2) with enhanced status codes
//! (RFC 2034, RFC 3463), and an incremental, bounded reply parser.
//!
//! A reply is one or more lines `NNN-text` ending with a line `NNN text`
//! (or a bare `NNN`). The parser is fed whole lines ([`ReplyParser`]) or
//! arbitrary byte chunks ([`ReplyReader`]); either way a line longer than
//! [`MAX_LINE`] bytes or a reply of more than [`MAX_LINES`] lines is a
//! protocol error, so a hostile server cannot make the client allocate
//! without limit.

use std::fmt;

use crate::proto::line::{LineReader, TooLong};
use crate::text::printable;

use super::Error;

/// The longest reply line accepted, terminator included (64 KiB).
pub const MAX_LINE: usize = 64 * 1024;

/// The most lines one reply may have.
pub const MAX_LINES: usize = 1000;

/// An enhanced mail system status code `class.subject.detail` (RFC 3463).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnhancedCode {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    pub class: u8,
    /// The subject, such as 1 for addressing.
    pub subject: u16,
    /// The detail within the subject.
    pub detail: u16,
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

impl EnhancedCode {
    /// Parses `d.ddd.ddd` at the start of `text`, followed by a space or the
    /// end; returns the code and the rest after the separating space.
    fn split(text: &[u8]) -> Option<(EnhancedCode, &[u8])> {
        let end = text.iter().position(|&b| b == b' ').unwrap_or(text.len());
        let word = std::str::from_utf8(&text[..end]).ok()?;
        let mut parts = word.split('.');
        let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let number = |s: &str, max_len: usize| -> Option<u16> {
            if s.is_empty() || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        let class = number(class, 1)? as u8;
        if !matches!(class, 2 | 4 | 5) {
            return None;
        }
        let code = EnhancedCode {
            class,
            subject: number(subject, 3)?,
            detail: number(detail, 3)?,
        };
        let rest = text.get(end + 1..).unwrap_or(b"");
        Some((code, rest))
    }
}

/// A complete reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code.
    pub code: u16,
    /// The enhanced status code of the first line, when it carries one whose
    /// class agrees with the reply code.
    pub enhanced: Option<EnhancedCode>,
    /// The text of each line, without the code, separator, enhanced code or
    /// line ending.
    pub lines: Vec<Vec<u8>>,
}

impl Reply {
    /// The first digit: 2 completion, 3 intermediate, 4 transient, 5 permanent.
    pub fn class(&self) -> u8 {
        (self.code / 100) as u8
    }

    /// 2yz: the command succeeded.
    pub fn is_positive(&self) -> bool {
        self.class() == 2
    }

    /// 3yz: more input is expected (354 after DATA, 334 during AUTH).
    pub fn is_intermediate(&self) -> bool {
        self.class() == 3
    }

    /// 4yz: a temporary failure; the same command may succeed later.
    pub fn is_transient(&self) -> bool {
        self.class() == 4
    }

    /// 5yz: a permanent failure.
    pub fn is_permanent(&self) -> bool {
        self.class() == 5
    }

    /// The text of every line joined with spaces, lossily decoded and with
    /// control characters neutralised, safe to print.
    pub fn text(&self) -> String {
        let joined: Vec<u8> = self.lines.join(&b' ');
        printable(&joined)
    }

    /// `code [enhanced] text`, safe to print, for error messages.
    pub fn summary(&self) -> String {
        let mut out = self.code.to_string();
        if let Some(e) = self.enhanced {
            out.push(' ');
            out.push_str(&e.to_string());
        }
        let text = self.text();
        if !text.is_empty() {
            out.push(' ');
            out.push_str(&shorten(&text));
        }
        out
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

/// Building and sending replies (the server side).
impl Reply {
    /// The reply read as `code` and these line texts: an enhanced status
    /// code leading the first line, of the reply code's class, is taken
    /// out into [`Reply::enhanced`], and out of every line repeating it
    /// (RFC 2034 section 4).
    pub fn from_lines(code: u16, mut lines: Vec<Vec<u8>>) -> Reply {
        if lines.is_empty() {
            lines.push(Vec::new());
        }
        let enhanced = EnhancedCode::split(&lines[0])
            .map(|(e, _)| e)
            .filter(|e| u16::from(e.class) == code / 100);
        if let Some(e) = enhanced {
            for line in &mut lines {
                if let Some((found, rest)) = EnhancedCode::split(line) {
                    if found == e {
                        *line = rest.to_vec();
                    }
                }
            }
        }
        Reply {
            code,
            enhanced,
            lines,
        }
    }

    /// A one-line reply; `text` may start with its enhanced status code
    /// (`"2.1.0 Sender OK"`).
    pub fn new(code: u16, text: impl Into<String>) -> Reply {
        Reply::from_lines(code, vec![text.into().into_bytes()])
    }

    /// A multi-line reply, one text per line.
    pub fn multiline(code: u16, lines: Vec<String>) -> Reply {
        Reply::from_lines(code, lines.into_iter().map(String::into_bytes).collect())
    }

    /// The wire form, `250-first\r\n250 last\r\n` (RFC 5321 section
    /// 4.2.1), the enhanced code on every line. Reading it back gives the
    /// same reply.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i + 1 == self.lines.len() { ' ' } else { '-' };
            out.extend_from_slice(format!("{}{sep}", self.code).as_bytes());
            if let Some(e) = self.enhanced {
                out.extend_from_slice(e.to_string().as_bytes());
                if !line.is_empty() {
                    out.push(b' ');
                }
            }
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
        out
    }
}

/// The most characters of server text quoted in an error message.
const MAX_QUOTED: usize = 300;

/// `text` cut to [`MAX_QUOTED`] characters, marked when cut: an error
/// message stays one readable line whatever the server sent.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTED) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_string(),
    }
}

/// Collects reply lines into replies.
#[derive(Debug, Default)]
pub struct ReplyParser {
    code: Option<u16>,
    lines: Vec<Vec<u8>>,
}

impl ReplyParser {
    /// A parser expecting the first line of a reply.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether part of a multi-line reply has been read.
    pub fn in_progress(&self) -> bool {
        self.code.is_some()
    }

    /// Feeds one line (with or without its CRLF). Returns the reply when
    /// this line completes one.
    pub fn push_line(&mut self, line: &[u8]) -> Result<Option<Reply>, Error> {
        if line.len() > MAX_LINE {
            return Err(Error::ReplyTooLong);
        }
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let malformed = || Error::MalformedReply {
            line: shorten(&printable(line)),
        };
        if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) {
            return Err(malformed());
        }
        if !(b'2'..=b'5').contains(&line[0]) || line[1] > b'5' {
            return Err(malformed());
        }
        let code =
            (line[0] - b'0') as u16 * 100 + (line[1] - b'0') as u16 * 10 + (line[2] - b'0') as u16;
        let last = match line.get(3) {
            None | Some(b' ') => true,
            Some(b'-') => false,
            Some(_) => return Err(malformed()),
        };
        if let Some(expected) = self.code {
            if expected != code {
                return Err(Error::CodeChanged {
                    line: shorten(&printable(line)),
                    expected,
                });
            }
        }
        if self.lines.len() >= MAX_LINES {
            return Err(Error::TooManyLines);
        }
        self.code = Some(code);
        self.lines.push(line.get(4..).unwrap_or(b"").to_vec());
        if !last {
            return Ok(None);
        }
        let lines = std::mem::take(&mut self.lines);
        self.code = None;
        Ok(Some(Reply::from_lines(code, lines)))
    }
}

/// A complete reply as [`ReplyReader`] received it.
#[derive(Debug)]
struct Received {
    reply: Reply,
    /// The lines as they came, terminators included (kept only when asked).
    raw: Vec<Vec<u8>>,
    /// How many bytes the reply took on the wire.
    size: usize,
}

/// Turns arbitrary chunks of bytes into replies, keeping at most one
/// partial line (bounded by [`MAX_LINE`]); lines are framed by
/// [`LineReader`].
#[derive(Debug)]
pub struct ReplyReader {
    lines: LineReader,
    /// The bytes of the unfinished line the line reader holds.
    partial: usize,
    parser: ReplyParser,
    ready: std::collections::VecDeque<Received>,
    keep_lines: bool,
    /// The raw lines of the reply in progress (with `keep_lines`).
    raw: Vec<Vec<u8>>,
    /// The bytes of the complete lines of the reply in progress.
    in_progress: usize,
}

impl Default for ReplyReader {
    fn default() -> Self {
        ReplyReader {
            lines: LineReader::new(MAX_LINE),
            partial: 0,
            parser: ReplyParser::new(),
            ready: std::collections::VecDeque::new(),
            keep_lines: false,
            raw: Vec::new(),
            in_progress: 0,
        }
    }
}

impl ReplyReader {
    /// An empty reader.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty reader that also keeps every line as received, for a
    /// transcript ([`ReplyReader::next_reply_with_lines`]).
    pub fn keeping_lines() -> Self {
        ReplyReader {
            keep_lines: true,
            ..Self::default()
        }
    }

    /// Feeds received bytes; complete replies become available through
    /// [`ReplyReader::next_reply`]. A line that cannot end within
    /// [`MAX_LINE`] bytes is an error as soon as that is known.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Error> {
        while !bytes.is_empty() {
            let (used, line) = self.lines.push(bytes);
            bytes = &bytes[used..];
            match line {
                Some(Ok(line)) => {
                    self.partial = 0;
                    self.push_line(line)?;
                }
                Some(Err(TooLong { .. })) => return Err(Error::ReplyTooLong),
                None => {
                    self.partial += used;
                    if self.partial >= MAX_LINE {
                        return Err(Error::ReplyTooLong);
                    }
                }
            }
        }
        Ok(())
    }

    /// Hands one complete line to the parser.
    fn push_line(&mut self, line: Vec<u8>) -> Result<(), Error> {
        self.in_progress += line.len();
        let reply = self.parser.push_line(&line)?;
        if self.keep_lines {
            self.raw.push(line);
        }
        if let Some(reply) = reply {
            self.ready.push_back(Received {
                reply,
                raw: std::mem::take(&mut self.raw),
                size: std::mem::take(&mut self.in_progress),
            });
        }
        Ok(())
    }

    /// The next complete reply, if one has been received.
    pub fn next_reply(&mut self) -> Option<Reply> {
        self.ready.pop_front().map(|r| r.reply)
    }

    /// The next complete reply with its lines as received (terminators
    /// included; empty unless made by [`ReplyReader::keeping_lines`]).
    pub fn next_reply_with_lines(&mut self) -> Option<(Reply, Vec<Vec<u8>>)> {
        self.ready.pop_front().map(|r| (r.reply, r.raw))
    }

    /// Whether bytes of an incomplete reply are held.
    pub fn has_partial(&self) -> bool {
        self.lines.has_partial() || self.parser.in_progress()
    }

    /// Forgets everything received and not yet taken, as after STARTTLS
    /// (RFC 3207 section 4.2), and returns how many bytes that was.
    pub fn discard(&mut self) -> usize {
        let held =
            self.partial + self.in_progress + self.ready.iter().map(|r| r.size).sum::<usize>();
        *self = ReplyReader {
            keep_lines: self.keep_lines,
            ..Self::default()
        };
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Errors quote the server, but a few hundred characters of it, not
    /// 64 KiB lines or a thousand of them.
    #[test]
    fn quoted_server_text_is_shortened() {
        let long = vec![b'x'; 60_000];
        let mut p = ReplyParser::new();
        let err = p.push_line(&long).unwrap_err();
        assert!(err.to_string().len() < 400, "{}", err.to_string().len());
        assert!(err.to_string().ends_with("...'"));

        let mut p = ReplyParser::new();
        let mut reply = None;
        for i in 0..MAX_LINES {
            let sep = if i + 1 == MAX_LINES { ' ' } else { '-' };
            let line = format!("554{sep}{}\r\n", "no ".repeat(2000));
            reply = p.push_line(line.as_bytes()).unwrap();
        }
        let summary = reply.unwrap().summary();
        assert!(summary.len() < 400, "{}", summary.len());
        assert!(summary.starts_with("554 no no"));
    }

    fn parse_all(bytes: &[u8], chunk: usize) -> Result<Vec<Reply>, Error> {
        let mut reader = ReplyReader::new();
        let mut out = Vec::new();
        for piece in bytes.chunks(chunk) {
            reader.feed(piece)?;
            while let Some(r) = reader.next_reply() {
                out.push(r);
            }
        }
        assert!(!reader.has_partial());
        Ok(out)
    }

    #[test]
    fn single_and_multi_line() {
        let replies = parse_all(
            b"220 mx.example.org ESMTP\r\n250-mx.example.org\r\n250-PIPELINING\r\n250 SIZE 1000\r\n221\r\n",
            usize::MAX,
        )
        .unwrap();
        assert_eq!(replies.len(), 3);
        assert_eq!(replies[0].code, 220);
        assert_eq!(replies[0].lines, vec![b"mx.example.org ESMTP".to_vec()]);
        assert_eq!(replies[1].lines.len(), 3);
        assert_eq!(replies[1].lines[2], b"SIZE 1000");
        assert_eq!(replies[2].code, 221);
        assert_eq!(replies[2].lines, vec![Vec::<u8>::new()]);
    }

    #[test]
    fn enhanced_codes() {
        let r = parse_all(b"550-5.1.1 no such user\r\n550 5.1.1 <x@y> unknown\r\n", 7).unwrap();
        let r = &r[0];
        assert_eq!(r.enhanced.unwrap().to_string(), "5.1.1");
        assert_eq!(r.text(), "no such user <x@y> unknown");
        assert_eq!(r.summary(), "550 5.1.1 no such user <x@y> unknown");
        // A class that disagrees with the reply code is not an enhanced code.
        let r = &parse_all(b"250 5.1.1 odd\r\n", 100).unwrap()[0];
        assert_eq!(r.enhanced, None);
        assert_eq!(r.text(), "5.1.1 odd");
        let r = &parse_all(b"250 2.0.0\r\n", 100).unwrap()[0];
        assert_eq!(r.enhanced.unwrap().to_string(), "2.0.0");
        assert_eq!(r.text(), "");
        let r = &parse_all(b"250 2.0.0.1 x\r\n", 100).unwrap()[0];
        assert_eq!(r.enhanced, None);
    }

    #[test]
    fn chunk_size_invariance() {
        let transcript: &[u8] = b"220-first\r\n220 second\r\n250-a.example\r\n250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n550 5.7.1 refused\n354 go ahead\r\n";
        let whole = parse_all(transcript, usize::MAX).unwrap();
        assert_eq!(whole.len(), 4);
        for chunk in 1..transcript.len() {
            assert_eq!(
                parse_all(transcript, chunk).unwrap(),
                whole,
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn malformed_lines_are_protocol_errors() {
        for bad in [
            &b"hello\r\n"[..],
            b"25\r\n",
            b"2500 x\r\n",
            b"650 x\r\n",
            b"190 x\r\n",
            b"260 x\r\n",
            b"250_x\r\n",
            b"250-a\r\n251 b\r\n",
        ] {
            let err = parse_all(bad, usize::MAX).unwrap_err();
            assert!(err.is_malformed_reply(), "{bad:?}");
        }
    }

    #[test]
    fn bounded_line_length_and_count() {
        let mut long = b"250 ".to_vec();
        long.resize(MAX_LINE - 2, b'x');
        long.extend_from_slice(b"\r\n");
        assert_eq!(parse_all(&long, 4096).unwrap().len(), 1);
        let mut too_long = b"250 ".to_vec();
        too_long.resize(MAX_LINE + 1, b'x');
        let err = ReplyReader::new().feed(&too_long).unwrap_err();
        assert_eq!(err, Error::ReplyTooLong);
        let err = ReplyParser::new().push_line(&too_long).unwrap_err();
        assert_eq!(err, Error::ReplyTooLong);

        let mut many = b"250-x\r\n".repeat(MAX_LINES - 1);
        many.extend_from_slice(b"250 end\r\n");
        assert_eq!(parse_all(&many, 100).unwrap()[0].lines.len(), MAX_LINES);
        let mut too_many = b"250-x\r\n".repeat(MAX_LINES);
        too_many.extend_from_slice(b"250 end\r\n");
        let err = parse_all(&too_many, 100).unwrap_err();
        assert_eq!(err, Error::TooManyLines);
    }

    #[test]
    fn arbitrary_bytes_are_replies_or_protocol_errors() {
        let alphabet = b"0123456789 -\r\n.x\x1b\xff25";
        let mut seed: u64 = 42;
        for _ in 0..2000 {
            let mut bytes = Vec::new();
            for _ in 0..(seed % 64) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                bytes.push(alphabet[(seed >> 33) as usize % alphabet.len()]);
            }
            let mut reader = ReplyReader::new();
            let chunk = 1 + (seed % 7) as usize;
            for piece in bytes.chunks(chunk) {
                match reader.feed(piece) {
                    Ok(()) => {
                        while let Some(r) = reader.next_reply() {
                            assert!((200..600).contains(&r.code));
                        }
                    }
                    Err(e) => {
                        assert!(e.is_malformed_reply(), "{e:?}");
                        break;
                    }
                }
            }
        }
    }

    /// The lines as received, for a transcript; and after STARTTLS, the
    /// count of everything held that must be thrown away.
    #[test]
    fn raw_lines_and_discarding() {
        let mut reader = ReplyReader::keeping_lines();
        reader
            .feed(b"250-a\r\n250 b\n220 go\r\n250-x\r\n25")
            .unwrap();
        let (reply, lines) = reader.next_reply_with_lines().unwrap();
        assert_eq!(reply.lines, [b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(lines, [b"250-a\r\n".to_vec(), b"250 b\n".to_vec()]);
        assert_eq!(reader.discard(), 8 + 7 + 2);
        assert!(!reader.has_partial() && reader.next_reply().is_none());
        reader.feed(b"221 bye\r\n").unwrap();
        assert_eq!(reader.next_reply_with_lines().unwrap().1.len(), 1);
        let mut plain = ReplyReader::new();
        plain.feed(b"221 bye\r\n").unwrap();
        assert!(plain.next_reply_with_lines().unwrap().1.is_empty());
    }

    #[test]
    fn text_is_neutralised() {
        let r = &parse_all(b"550 bad \x1b[2J\r\n", 100).unwrap()[0];
        assert_eq!(r.text(), "bad \\x1b[2J");
        assert!(r.is_permanent() && !r.is_transient() && !r.is_positive());
    }

    #[test]
    fn built_replies_read_back_the_same() {
        let replies = [
            Reply::new(250, "2.1.0 Sender OK"),
            Reply::new(250, "2.0.0"),
            Reply::new(334, ""),
            Reply::new(334, "VXNlcm5hbWU6"),
            Reply::new(220, "5.0.0 is not this class"),
            Reply::multiline(250, vec!["mx greets c".into(), "SIZE 10".into()]),
            Reply::multiline(550, vec!["5.1.1 one".into(), "5.1.1 two".into()]),
        ];
        for reply in replies {
            let wire = reply.to_bytes();
            assert_eq!(parse_all(&wire, 3).unwrap(), vec![reply], "{wire:?}");
        }
        assert_eq!(
            Reply::new(501, "5.5.4 Syntax").to_bytes(),
            b"501 5.5.4 Syntax\r\n"
        );
        assert_eq!(Reply::new(334, "").to_bytes(), b"334 \r\n");
        assert_eq!(
            Reply::multiline(250, vec!["a".into(), "b".into()]).to_bytes(),
            b"250-a\r\n250 b\r\n"
        );
    }
}
