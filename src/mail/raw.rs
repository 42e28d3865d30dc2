//! Ready-made messages, the one reader for `mailctl send --raw` and
//! sendmail mode: read once (to the end of input, or sendmail style to a
//! line holding a single dot), line endings made CRLF, spooled to an
//! unlinked temporary file when large; the header fields split off, the
//! hidden ones ([`HIDDEN_FIELDS`]: Bcc and Resent-Bcc) removed, and the
//! sender and recipients the header names collected (for `-t`).
//!
//! The header section ends at the blank line, or at the first line that is
//! neither a field nor a continuation; the message sent always has exactly
//! one blank line after its header.

use std::fmt;
use std::io::{self, Read};
use std::sync::Arc;

use super::compose::message::{Message, Segment};
use super::compose::spool::{for_each_chunk, Spool, SpoolWriter, Spooled};

pub use super::compose::spool::MEMORY_LIMIT;

/// The longest header section accepted.
pub const MAX_HEADER: usize = 1 << 20;

/// Header fields never sent: they name recipients the others must not see.
pub const HIDDEN_FIELDS: [&str; 2] = ["Bcc", "Resent-Bcc"];

/// Why a ready-made message could not be read.
#[derive(Debug)]
pub enum Error {
    /// Reading the input (or the spool) failed.
    Read(io::Error),
    /// No blank line within [`MAX_HEADER`] bytes.
    NoEndOfHeader,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Read(e) => write!(f, "reading the message: {e}"),
            Error::NoEndOfHeader => write!(
                f,
                "the message has no end of header within {MAX_HEADER} bytes"
            ),
        }
    }
}

/// The message already says what the underlying error said, so there is
/// no separate `source` (which `{:#}` would print a second time).
impl std::error::Error for Error {}

/// Where the input ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// At the end of input.
    Eof,
    /// At a line holding a single dot, or the end of input (sendmail
    /// without `-i`); what follows the dot is read and dropped.
    LoneDot,
}

/// A ready-made message and what its header says.
#[derive(Debug)]
pub struct RawMessage {
    /// The header fields, in order, each with its continuation lines.
    fields: Vec<Field>,
    /// The whole input, CRLF line endings.
    spool: Spool,
    /// Length of the input.
    len: u64,
    /// Where the body starts (after the blank line, if there is one).
    body_start: u64,
    /// Whether any input byte is above 127.
    eight_bit: bool,
    /// The address in the first From field, if any.
    pub from: Option<String>,
    /// Every address in To, Cc and Bcc, once each (compared without
    /// case), in that order.
    pub header_recipients: Vec<String>,
}

/// One header field: its name and its lines, CRLF included.
#[derive(Debug)]
struct Field {
    name: String,
    raw: Vec<u8>,
}

/// Reads a complete message from `input`, up to `end`.
pub fn read(input: &mut dyn Read, end: End) -> Result<RawMessage, Error> {
    let Spooled {
        spool,
        len,
        eight_bit,
    } = read_spooled(input, end)?;
    let mut head = vec![0u8; len.min(MAX_HEADER as u64 + 2) as usize];
    let filled = spool.read_full_at(&mut head, 0).map_err(Error::Read)?;
    head.truncate(filled);
    let header_len = match header_section_len(&head) {
        Some(n) => n,
        None if head.len() as u64 == len => head.len(),
        None => return Err(Error::NoEndOfHeader),
    };
    let mut body_start = header_len as u64;
    if head[header_len..].starts_with(b"\r\n") {
        body_start += 2;
    }
    let fields = split_fields(&head[..header_len]);
    let (from, header_recipients) = addresses(&fields);
    Ok(RawMessage {
        fields,
        spool,
        len,
        body_start,
        eight_bit,
        from,
        header_recipients,
    })
}

impl RawMessage {
    /// Whether the input was empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the header has a field called `name` (any case).
    pub fn has_field(&self, name: &str) -> bool {
        self.fields
            .iter()
            .any(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The message to send: the fields in `added` (CRLF-ended lines) first,
    /// then the message's own fields without [`HIDDEN_FIELDS`], a blank
    /// line, and the body, which stays in the spool.
    pub fn into_message(self, added: &[u8]) -> Message {
        let mut header = added.to_vec();
        for field in &self.fields {
            if !HIDDEN_FIELDS
                .iter()
                .any(|h| field.name.eq_ignore_ascii_case(h))
            {
                header.extend_from_slice(&field.raw);
            }
        }
        header.extend_from_slice(b"\r\n");
        let message_id = mail_parser::MessageParser::new()
            .parse_headers(&header)
            .and_then(|p| p.message_id().map(str::to_string));
        let eight_bit = !header.is_ascii() || self.eight_bit;
        let body_len = self.len - self.body_start;
        let mut segments = vec![Segment::Bytes(header)];
        if body_len > 0 {
            segments.push(Segment::Spooled {
                spool: Arc::new(self.spool),
                offset: self.body_start,
                len: body_len,
            });
        }
        let mut message = Message::from_segments(segments, message_id);
        message.set_eight_bit(eight_bit);
        message
    }
}

/// Reads `input` up to `end` into a spool, line endings made CRLF.
pub fn read_spooled(input: &mut dyn Read, end: End) -> Result<Spooled, Error> {
    let mut writer = SpoolWriter::new();
    let mut dots = (end == End::LoneDot).then(LoneDot::new);
    let mut ended = false;
    let mut message = Vec::new();
    let each = |chunk: &[u8]| {
        // Input after the lone dot is read and dropped.
        if ended {
            return Ok(());
        }
        match &mut dots {
            None => writer.push(chunk).map(drop),
            Some(dots) => {
                message.clear();
                ended = dots.push(chunk, &mut message);
                writer.push(&message).map(drop)
            }
        }
        .map_err(Error::Read)
    };
    for_each_chunk(input, each, Error::Read)?;
    if let Some(dots) = &mut dots {
        if !ended {
            message.clear();
            dots.finish(&mut message);
            writer.push(&message).map_err(Error::Read)?;
        }
    }
    writer.finish().map_err(Error::Read)
}

/// Ends the input at a line holding a single dot (`.` then LF, CRLF or the
/// end of input), as sendmail does without `-i`; fed in pieces.
#[derive(Debug)]
struct LoneDot {
    line_start: bool,
    /// What is held back of a line that may be the lone dot: `.` or `.\r`.
    held: &'static [u8],
}

impl LoneDot {
    fn new() -> Self {
        LoneDot {
            line_start: true,
            held: b"",
        }
    }

    /// Appends to `out` what of `input` is message; `true` once the lone
    /// dot is found (nothing after it is message).
    fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            match (self.held, b) {
                (b".", b'\n') | (b".\r", b'\n') => return true,
                (b".", b'\r') => {
                    self.held = b".\r";
                    continue;
                }
                (b"", _) => {}
                (held, _) => {
                    out.extend_from_slice(held);
                    self.held = b"";
                }
            }
            if self.line_start && b == b'.' {
                self.held = b".";
                self.line_start = false;
                continue;
            }
            out.push(b);
            self.line_start = b == b'\n';
        }
        false
    }

    /// Ends the input: a held-back `.` alone on the last line ends the
    /// message, a `.\r` is message.
    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.held == b".\r" {
            out.extend_from_slice(self.held);
        }
        self.held = b"";
    }
}

/// Where the header fields of `message` end: at the blank line or the
/// first line that is neither a field nor a continuation. `None` when
/// every complete line is part of the header.
fn header_section_len(message: &[u8]) -> Option<usize> {
    let mut pos = 0;
    let mut in_field = false;
    while let Some(p) = message[pos..].iter().position(|&b| b == b'\n') {
        let end = pos + p + 1;
        let line = &message[pos..end];
        let continuation = matches!(line.first(), Some(b' ' | b'\t')) && in_field;
        if !continuation {
            if field_name(line).is_none() {
                return Some(pos);
            }
            in_field = true;
        }
        pos = end;
    }
    None
}

/// Splits a header section (every line a field or a continuation, as
/// [`header_section_len`] found it) into its fields.
fn split_fields(header: &[u8]) -> Vec<Field> {
    let mut fields: Vec<Field> = Vec::new();
    for line in header.split_inclusive(|&b| b == b'\n') {
        // A continuation starts with a space or tab, so has no field name.
        match (field_name(line), fields.last_mut()) {
            (Some(name), _) => fields.push(Field {
                name: name.to_string(),
                raw: line.to_vec(),
            }),
            (None, Some(field)) => field.raw.extend_from_slice(line),
            (None, None) => {}
        }
    }
    fields
}

/// The field name if `line` starts a header field (RFC 5322 section 3.6.8:
/// printable ASCII except colon, then a colon).
fn field_name(line: &[u8]) -> Option<&str> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = &line[..colon];
    if name.is_empty() || !name.iter().all(|&b| (33..=126).contains(&b)) {
        return None;
    }
    std::str::from_utf8(name).ok()
}

/// The first From address, and every To, Cc and Bcc address once each:
/// RFC 5322 section 4.5.3 allows more than one of each field, and
/// sendmail -t reads them all.
fn addresses(fields: &[Field]) -> (Option<String>, Vec<String>) {
    let mut block: Vec<u8> = fields.iter().flat_map(|f| f.raw.clone()).collect();
    block.extend_from_slice(b"\r\n");
    let Some(parsed) = mail_parser::MessageParser::default().parse_headers(&block) else {
        return (None, Vec::new());
    };
    let from = parsed
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(str::to_string);
    let mut recipients: Vec<String> = Vec::new();
    for list in parsed
        .all_to()
        .chain(parsed.all_cc())
        .chain(parsed.all_bcc())
    {
        for a in list.iter().filter_map(|addr| addr.address()) {
            if !recipients.iter().any(|r| r.eq_ignore_ascii_case(a)) {
                recipients.push(a.to_string());
            }
        }
    }
    (from, recipients)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8]) -> RawMessage {
        read(&mut &input[..], End::Eof).unwrap()
    }

    #[test]
    fn bcc_removed_recipients_collected_line_endings_fixed() {
        let input = b"From: A <a@x.org>\nTo: b@x.org, \"C\" <c@x.org>\nBcc: hidden@x.org,\n  other@x.org\nCc: b@x.org, d@x.org\nSubject: hi\nMessage-ID: <m1@x.org>\n\nbody\n.line\r\nend\r";
        let raw = read_all(input);
        assert_eq!(raw.from.as_deref(), Some("a@x.org"));
        assert_eq!(
            raw.header_recipients,
            vec![
                "b@x.org",
                "c@x.org",
                "d@x.org",
                "hidden@x.org",
                "other@x.org"
            ]
        );
        let message = raw.into_message(b"");
        let out = message.to_vec().unwrap();
        assert_eq!(out.len() as u64, message.size());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "From: A <a@x.org>\r\nTo: b@x.org, \"C\" <c@x.org>\r\nCc: b@x.org, d@x.org\r\nSubject: hi\r\nMessage-ID: <m1@x.org>\r\n\r\nbody\r\n.line\r\nend\r\n"
        );
        assert_eq!(message.message_id(), Some("m1@x.org"));
        assert!(!message.eight_bit());
    }

    #[test]
    fn resent_bcc_is_removed_too() {
        let raw = read_all(b"Resent-From: r@x.org\nResent-To: t@x.org\nresent-bcc: secret@x.org,\n more@x.org\nFrom: a@x.org\nBcc: b@x.org\n\nResent-Bcc: body@x.org\n");
        let out = String::from_utf8(raw.into_message(b"").to_vec().unwrap()).unwrap();
        assert_eq!(
            out,
            "Resent-From: r@x.org\r\nResent-To: t@x.org\r\nFrom: a@x.org\r\n\r\nResent-Bcc: body@x.org\r\n"
        );
    }

    #[test]
    fn added_fields_come_first() {
        let raw = read_all(b"Subject: s\n\nbody\n");
        assert!(raw.has_field("subject"));
        assert!(!raw.has_field("From"));
        let message = raw.into_message(b"From: \xc3\xa9 <a@x.org>\r\nMessage-ID: <1@x>\r\n");
        assert_eq!(message.message_id(), Some("1@x"));
        assert!(message.eight_bit());
        assert!(message
            .to_vec()
            .unwrap()
            .ends_with(b"<1@x>\r\nSubject: s\r\n\r\nbody\r\n"));
    }

    #[test]
    fn large_input_is_spooled_to_a_file() {
        let mut input = b"To: b@x.org\r\nSubject: big\r\n\r\n".to_vec();
        for i in 0..100_000 {
            input.extend_from_slice(format!("line {i} \u{e9}\n").as_bytes());
        }
        let raw = read_all(&input);
        assert_eq!(raw.header_recipients, vec!["b@x.org"]);
        let message = raw.into_message(b"");
        assert!(matches!(
            message.segments()[1],
            Segment::Spooled { ref spool, .. } if matches!(**spool, Spool::File(_))
        ));
        let out = message.to_vec().unwrap();
        assert_eq!(out.len() as u64, message.size());
        assert!(message.eight_bit());
        assert!(out.ends_with("line 99999 \u{e9}\r\n".as_bytes()));
    }

    /// Repeated destination fields (RFC 5322 section 4.5.3) all count:
    /// a recipient in a second Bcc field must not be dropped silently.
    #[test]
    fn every_destination_field_counts() {
        let raw = read_all(
            b"From: a@x.org\nTo: b@x.org\nBcc: s@x.org\nCc: c@x.org\nbcc: t@x.org, u@x.org\nTo: \"V\" <v@x.org>\n\nhi\n",
        );
        assert_eq!(
            raw.header_recipients,
            ["b@x.org", "v@x.org", "c@x.org", "s@x.org", "t@x.org", "u@x.org"]
        );
        let out = String::from_utf8(raw.into_message(b"").to_vec().unwrap()).unwrap();
        assert!(!out.to_ascii_lowercase().contains("bcc"), "{out}");
    }

    /// The header ends at the first line that is not a field; the message
    /// then gets the blank line it lacks, so nothing after is a field.
    #[test]
    fn empty_headerless_or_bodiless() {
        let raw = read_all(b"");
        assert!(raw.is_empty());
        let bytes = |input: &[u8]| read_all(input).into_message(b"").to_vec().unwrap();
        assert_eq!(bytes(b"\nonly body"), b"\r\nonly body\r\n");
        assert!(read_all(b"\nonly body").header_recipients.is_empty());
        assert_eq!(bytes(b"To: a@x.org\n"), b"To: a@x.org\r\n\r\n");
        assert_eq!(
            bytes(b"To: a@x.org\nnot a field\nBcc: b@x.org\n\nbody\n"),
            b"To: a@x.org\r\n\r\nnot a field\r\nBcc: b@x.org\r\n\r\nbody\r\n"
        );
        assert_eq!(bytes(b" x: y\n"), b"\r\n x: y\r\n");
    }

    #[test]
    fn endless_header_is_refused() {
        let input = "X-Field: value\n".repeat(100_000);
        let err = read(&mut input.as_bytes(), End::Eof).unwrap_err();
        assert!(matches!(err, Error::NoEndOfHeader));
    }

    /// Bare CR line endings are line endings for the header too: a Bcc
    /// field in a CR-only message is found and removed.
    #[test]
    fn bcc_removed_from_a_cr_only_message() {
        let raw = read_all(b"From: me@x.org\rTo: a@x.org\rBcc: secret@x.org\rSubject: s\r\rbody\r");
        assert_eq!(raw.header_recipients, ["a@x.org", "secret@x.org"]);
        let text = String::from_utf8(raw.into_message(b"").to_vec().unwrap()).unwrap();
        assert_eq!(
            text,
            "From: me@x.org\r\nTo: a@x.org\r\nSubject: s\r\n\r\nbody\r\n"
        );
    }

    fn spooled(input: &[u8], end: End, piece: usize) -> Vec<u8> {
        struct Pieces<'a>(&'a [u8], usize);
        impl Read for Pieces<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.1.min(buf.len()).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let spooled = read_spooled(&mut Pieces(input, piece), end).unwrap();
        let mut out = vec![0u8; spooled.len as usize];
        spooled.spool.read_full_at(&mut out, 0).unwrap();
        out
    }

    #[test]
    fn lone_dot_ends_input_sendmail_style() {
        let cases: &[(&[u8], &[u8], &[u8])] = &[
            (
                b"Subject: x\n\nline\n.\nafter\n",
                b"Subject: x\r\n\r\nline\r\n",
                b"Subject: x\r\n\r\nline\r\n.\r\nafter\r\n",
            ),
            (
                b"Subject: x\r\n\r\n..x\r\n.\r\n",
                b"Subject: x\r\n\r\n..x\r\n",
                b"Subject: x\r\n\r\n..x\r\n.\r\n",
            ),
            (b"a\n.", b"a\r\n", b"a\r\n.\r\n"),
            (b".\nb\n", b"", b".\r\nb\r\n"),
            (
                b"a\n.x\n. \n.\r\r\n",
                b"a\r\n.x\r\n. \r\n.\r\n\r\n",
                b"a\r\n.x\r\n. \r\n.\r\n\r\n",
            ),
            (b"a\n.\r", b"a\r\n.\r\n", b"a\r\n.\r\n"),
            (b"a.\nb\n", b"a.\r\nb\r\n", b"a.\r\nb\r\n"),
        ];
        for (input, lone_dot, eof) in cases {
            for piece in 1..=input.len() {
                let at = |end| spooled(input, end, piece);
                assert_eq!(at(End::LoneDot), *lone_dot, "{input:?} / {piece}");
                assert_eq!(at(End::Eof), *eof, "{input:?} / {piece}");
            }
        }
    }
}
