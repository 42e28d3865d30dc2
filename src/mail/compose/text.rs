//! Large plain-text bodies: spooled while they are read (checked to be
//! UTF-8 on the way), then written with a transfer encoding produced a
//! buffer at a time, so memory use does not grow with the body.
//!
//! The encoding is chosen once the whole body has been seen:
//! - `7bit` (RFC 2045 section 2.7) when it is ASCII without NUL and no line
//!   is longer than 998 octets (RFC 5322 section 2.1.1): sent as it is, a
//!   log stays readable by anything;
//! - otherwise quoted-printable (RFC 2045 section 6.7) or base64 (section
//!   6.8), whichever is shorter, as mail-builder decides for small bodies:
//!   quoted-printable for mostly-ASCII text, base64 for text in scripts
//!   where almost every character takes several bytes (quoted-printable
//!   would triple them).
//!
//! The encoded length is counted while spooling (the encoder is
//! deterministic), so the SIZE announced in MAIL FROM (RFC 1870) is exact.

use std::io::{self, Read, Write};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chardetng::{EncodingDetector, Iso2022JpDetection, Utf8Detection};
use encoding_rs::{CoderResult, Decoder, Encoding};

use super::message::BASE64_LINE_INPUT;
use super::spool::{for_each_chunk, Spool, SpoolWriter, MEMORY_LIMIT};

/// The longest line, without its CRLF, that may be sent as it is (RFC 5322
/// section 2.1.1).
pub const MAX_LINE: usize = 998;

/// Characters per quoted-printable line before the `=` of a soft line
/// break: 75 + 1 = 76 (RFC 2045 section 6.7, rule 5).
const QP_LINE: usize = 75;

/// A Content-Transfer-Encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferEncoding {
    /// Lines sent as they are.
    SevenBit,
    /// RFC 2045 section 6.7.
    QuotedPrintable,
    /// RFC 2045 section 6.8, 76-character lines each ending with CRLF.
    Base64,
}

impl TransferEncoding {
    /// The header value.
    pub fn name(self) -> &'static str {
        match self {
            TransferEncoding::SevenBit => "7bit",
            TransferEncoding::QuotedPrintable => "quoted-printable",
            TransferEncoding::Base64 => "base64",
        }
    }
}

/// Checks that bytes arriving in pieces are UTF-8, a character cut between
/// two pieces included.
#[derive(Debug, Default)]
pub struct Utf8Check {
    partial: [u8; 4],
    partial_len: usize,
}

/// The length of the character a valid lead byte starts.
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

impl Utf8Check {
    /// Checks the next piece; `false` once the input is not UTF-8.
    pub fn push(&mut self, mut input: &[u8]) -> bool {
        if self.partial_len > 0 {
            let need = utf8_len(self.partial[0]) - self.partial_len;
            let take = need.min(input.len());
            self.partial[self.partial_len..self.partial_len + take].copy_from_slice(&input[..take]);
            self.partial_len += take;
            input = &input[take..];
            match std::str::from_utf8(&self.partial[..self.partial_len]) {
                Ok(_) => self.partial_len = 0,
                // Still incomplete: `input` is used up.
                Err(e) if e.error_len().is_none() => return true,
                Err(_) => return false,
            }
        }
        match std::str::from_utf8(input) {
            Ok(_) => true,
            Err(e) if e.error_len().is_none() => {
                let rest = &input[e.valid_up_to()..];
                self.partial[..rest.len()].copy_from_slice(rest);
                self.partial_len = rest.len();
                true
            }
            Err(_) => false,
        }
    }

    /// Whether the input ended on a character boundary.
    pub fn finish(&self) -> bool {
        self.partial_len == 0
    }
}

/// A quoted-printable encoder for text with CRLF line endings, fed in
/// pieces: CRLF is a hard line break; `=`, bytes outside printable ASCII,
/// and a space or tab before a line break or at the end are `=XX`; lines
/// longer than 76 characters get soft line breaks.
#[derive(Debug, Default)]
pub struct QuotedPrintable {
    column: usize,
    pending_space: Option<u8>,
    pending_cr: bool,
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

impl QuotedPrintable {
    fn token(&mut self, token: &[u8], out: &mut Vec<u8>) {
        if self.column + token.len() > QP_LINE {
            out.extend_from_slice(b"=\r\n");
            self.column = 0;
        }
        out.extend_from_slice(token);
        self.column += token.len();
    }

    fn escaped(&mut self, b: u8, out: &mut Vec<u8>) {
        self.token(
            &[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]],
            out,
        );
    }

    /// Writes a held-back space or tab: as it is when more text follows on
    /// its line, escaped when it ends the line.
    fn release_space(&mut self, ends_line: bool, out: &mut Vec<u8>) {
        if let Some(space) = self.pending_space.take() {
            if ends_line {
                self.escaped(space, out);
            } else {
                self.token(&[space], out);
            }
        }
    }

    /// Encodes the next piece of input, appending to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            if self.pending_cr {
                self.pending_cr = false;
                if b == b'\n' {
                    self.release_space(true, out);
                    out.extend_from_slice(b"\r\n");
                    self.column = 0;
                    continue;
                }
                self.release_space(false, out);
                self.escaped(b'\r', out);
            }
            match b {
                b'\r' => self.pending_cr = true,
                b' ' | b'\t' => {
                    self.release_space(false, out);
                    self.pending_space = Some(b);
                }
                b'=' => {
                    self.release_space(false, out);
                    self.escaped(b, out);
                }
                33..=126 => {
                    self.release_space(false, out);
                    self.token(&[b], out);
                }
                _ => {
                    self.release_space(false, out);
                    self.escaped(b, out);
                }
            }
        }
    }

    /// Ends the input.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.pending_cr {
            self.pending_cr = false;
            self.release_space(false, out);
            self.escaped(b'\r', out);
        }
        self.release_space(true, out);
    }
}

/// A base64 encoder fed in pieces: 76-character lines (57 input bytes),
/// each ending with CRLF, or with [`Base64Lines::joined`] separated by
/// CRLF (none after the last).
#[derive(Debug, Default)]
pub struct Base64Lines {
    partial: Vec<u8>,
    /// CRLF between lines instead of after each.
    joined: bool,
    /// Whether a line has been written.
    started: bool,
}

impl Base64Lines {
    /// An encoder whose lines are separated by CRLF, with none after the
    /// last (the form an attachment takes before its boundary).
    pub fn joined() -> Self {
        Base64Lines {
            joined: true,
            ..Self::default()
        }
    }

    fn line(&mut self, input: &[u8], out: &mut Vec<u8>) {
        if self.joined && self.started {
            out.extend_from_slice(b"\r\n");
        }
        self.started = true;
        let start = out.len();
        out.resize(start + input.len().div_ceil(3) * 4, 0);
        BASE64
            .encode_slice(input, &mut out[start..])
            .expect("output sized for the encoding");
        if !self.joined {
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Encodes the next piece of input, appending to `out`.
    pub fn push(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        if !self.partial.is_empty() {
            let take = (BASE64_LINE_INPUT - self.partial.len()).min(input.len());
            self.partial.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.partial.len() < BASE64_LINE_INPUT {
                return;
            }
            let full = std::mem::take(&mut self.partial);
            self.line(&full, out);
            self.partial = full;
            self.partial.clear();
        }
        let mut lines = input.chunks_exact(BASE64_LINE_INPUT);
        for line in &mut lines {
            self.line(line, out);
        }
        self.partial.extend_from_slice(lines.remainder());
    }

    /// Ends the input.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.partial.is_empty() {
            let last = std::mem::take(&mut self.partial);
            self.line(&last, out);
        }
    }

    /// The encoded length of `len` input bytes.
    pub fn encoded_len(len: u64) -> u64 {
        len.div_ceil(3) * 4 + 2 * len.div_ceil(BASE64_LINE_INPUT as u64)
    }
}

/// A streaming encoder for one of the transfer encodings.
#[derive(Debug)]
pub enum Encoder {
    /// Bytes copied as they are.
    Identity,
    /// Quoted-printable.
    QuotedPrintable(QuotedPrintable),
    /// Base64.
    Base64(Base64Lines),
}

impl Encoder {
    /// A new encoder.
    pub fn new(encoding: TransferEncoding) -> Self {
        match encoding {
            TransferEncoding::SevenBit => Encoder::Identity,
            TransferEncoding::QuotedPrintable => {
                Encoder::QuotedPrintable(QuotedPrintable::default())
            }
            TransferEncoding::Base64 => Encoder::Base64(Base64Lines::default()),
        }
    }

    /// Encodes the next piece of input, appending to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        match self {
            Encoder::Identity => out.extend_from_slice(input),
            Encoder::QuotedPrintable(qp) => qp.push(input, out),
            Encoder::Base64(b64) => b64.push(input, out),
        }
    }

    /// Ends the input.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        match self {
            Encoder::Identity => {}
            Encoder::QuotedPrintable(qp) => qp.finish(out),
            Encoder::Base64(b64) => b64.finish(out),
        }
    }
}

/// A text body read from a file or a pipe.
#[derive(Debug)]
pub enum TextBody {
    /// Up to [`MEMORY_LIMIT`] bytes, as read.
    Memory(String),
    /// More than that: spooled with CRLF line endings.
    Spooled(SpooledText),
}

/// Why a text body could not be read.
#[derive(Debug)]
pub enum ReadTextError {
    /// Reading or spooling failed.
    Io(io::Error),
    /// The input is not UTF-8.
    NotUtf8,
}

/// A large text body in a spool, with the transfer encoding chosen for it.
#[derive(Debug)]
pub struct SpooledText {
    spool: Spool,
    len: u64,
    encoding: TransferEncoding,
    encoded_len: u64,
    /// The `text/` subtype of its part: `plain` unless [`Self::into_html`].
    subtype: &'static str,
}

/// What the encoding choice needs to know, gathered while spooling.
#[derive(Debug, Default)]
struct TextStats {
    needs_encoding: bool,
    line: usize,
    qp: QuotedPrintable,
    qp_len: u64,
    scratch: Vec<u8>,
}

impl TextStats {
    /// Takes spooled bytes (CRLF line endings).
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match b {
                b'\n' => self.line = 0,
                b'\r' => {}
                _ => {
                    self.line += 1;
                    self.needs_encoding |= b == 0 || b >= 127 || self.line > MAX_LINE;
                }
            }
        }
        self.scratch.clear();
        self.qp.push(bytes, &mut self.scratch);
        self.qp_len += self.scratch.len() as u64;
    }

    fn finish(&mut self) {
        self.scratch.clear();
        self.qp.finish(&mut self.scratch);
        self.qp_len += self.scratch.len() as u64;
    }
}

/// The charset a text body was read in; the body itself is always
/// UTF-8 once read (other charsets are transcoded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charset {
    /// UTF-8 (ASCII included), as given.
    Utf8,
    /// Declared by the caller, transcoded to UTF-8.
    Declared(&'static Encoding),
    /// Not UTF-8: guessed from the first bytes, transcoded to UTF-8.
    Detected(&'static Encoding),
}

/// Reads a UTF-8 text body: up to [`MEMORY_LIMIT`] bytes in memory, more
/// spooled (see [`read_text_in`]).
pub fn read_text(input: &mut dyn Read) -> Result<TextBody, ReadTextError> {
    read_text_in(input, Some(encoding_rs::UTF_8)).map(|(body, _)| body)
}

/// Reads a text body in the charset `declared`, or, when `None`, in UTF-8
/// if its first [`MEMORY_LIMIT`] bytes are UTF-8, else in the charset
/// guessed from them. Up to [`MEMORY_LIMIT`] bytes are held in memory;
/// more are spooled with CRLF line endings while the transfer encoding is
/// chosen. Text in another charset than UTF-8 is transcoded (a byte
/// sequence the charset does not have becomes U+FFFD); text read as UTF-8
/// must be valid UTF-8.
pub fn read_text_in(
    input: &mut dyn Read,
    declared: Option<&'static Encoding>,
) -> Result<(TextBody, Charset), ReadTextError> {
    let mut head = Vec::new();
    (&mut *input)
        .take(MEMORY_LIMIT as u64 + 1)
        .read_to_end(&mut head)
        .map_err(ReadTextError::Io)?;
    let complete = head.len() <= MEMORY_LIMIT;
    let charset = match declared {
        Some(encoding) if encoding == encoding_rs::UTF_8 => Charset::Utf8,
        Some(encoding) => Charset::Declared(encoding),
        None => match std::str::from_utf8(&head) {
            Ok(_) => Charset::Utf8,
            // A character cut where the head ends is completed later.
            Err(e) if e.error_len().is_none() && !complete => Charset::Utf8,
            Err(_) => Charset::Detected(guess_charset(&head, complete)),
        },
    };
    let body = match charset {
        Charset::Utf8 if complete => String::from_utf8(head)
            .map(TextBody::Memory)
            .map_err(|_| ReadTextError::NotUtf8)?,
        Charset::Utf8 => spool_utf8(head, input)?,
        Charset::Declared(encoding) | Charset::Detected(encoding) => {
            transcode(encoding, head, complete, input)?
        }
    };
    Ok((body, charset))
}

/// The charset `bytes` are most likely in (never UTF-8: they are not).
fn guess_charset(bytes: &[u8], last: bool) -> &'static Encoding {
    let mut detector = EncodingDetector::new(Iso2022JpDetection::Deny);
    detector.feed(bytes, last);
    detector.guess(None, Utf8Detection::Deny)
}

/// Appends `bytes`, decoded by `decoder`, to `out`.
fn decode_into(decoder: &mut Decoder, mut bytes: &[u8], last: bool, out: &mut String) {
    loop {
        let room = decoder
            .max_utf8_buffer_length(bytes.len())
            .unwrap_or(bytes.len() * 3 + 16);
        out.reserve(room);
        let (result, read, _) = decoder.decode_to_string(bytes, out, last);
        bytes = &bytes[read..];
        if result == CoderResult::InputEmpty {
            return;
        }
    }
}

/// Reads the rest of a body in `encoding` after its `head`, transcoded to
/// UTF-8: in memory when `complete` (the head is all of it), else spooled
/// a chunk at a time.
fn transcode(
    encoding: &'static Encoding,
    head: Vec<u8>,
    complete: bool,
    input: &mut dyn Read,
) -> Result<TextBody, ReadTextError> {
    let mut decoder = encoding.new_decoder_without_bom_handling();
    let mut text = String::new();
    decode_into(&mut decoder, &head, complete, &mut text);
    if complete {
        return Ok(TextBody::Memory(text));
    }
    drop(head);
    let mut spool = TextSpool::default();
    spool.push(text.as_bytes())?;
    let each = |chunk: &[u8]| {
        text.clear();
        decode_into(&mut decoder, chunk, false, &mut text);
        spool.push(text.as_bytes())
    };
    for_each_chunk(input, each, ReadTextError::Io)?;
    text.clear();
    decode_into(&mut decoder, b"", true, &mut text);
    spool.push(text.as_bytes())?;
    spool.finish()
}

/// Spools a UTF-8 body of more than [`MEMORY_LIMIT`] bytes, checking it
/// on the way.
fn spool_utf8(head: Vec<u8>, input: &mut dyn Read) -> Result<TextBody, ReadTextError> {
    let mut utf8 = Utf8Check::default();
    let mut spool = TextSpool::default();
    if !utf8.push(&head) {
        return Err(ReadTextError::NotUtf8);
    }
    spool.push(&head)?;
    drop(head);
    let each = |chunk: &[u8]| {
        if !utf8.push(chunk) {
            return Err(ReadTextError::NotUtf8);
        }
        spool.push(chunk)
    };
    for_each_chunk(input, each, ReadTextError::Io)?;
    if !utf8.finish() {
        return Err(ReadTextError::NotUtf8);
    }
    spool.finish()
}

/// A spool being written, with what the encoding choice needs to know.
#[derive(Default)]
struct TextSpool {
    writer: SpoolWriter,
    stats: TextStats,
}

impl TextSpool {
    /// Spools the next UTF-8 bytes.
    fn push(&mut self, bytes: &[u8]) -> Result<(), ReadTextError> {
        let spooled = self.writer.push(bytes).map_err(ReadTextError::Io)?;
        self.stats.push(spooled);
        Ok(())
    }

    /// The spooled body, its transfer encoding chosen.
    fn finish(mut self) -> Result<TextBody, ReadTextError> {
        let tail = self.writer.end_line().map_err(ReadTextError::Io)?;
        self.stats.push(tail);
        self.stats.finish();
        let spooled = self.writer.finish().map_err(ReadTextError::Io)?;
        Ok(TextBody::Spooled(SpooledText::new(
            spooled.spool,
            spooled.len,
            &self.stats,
        )))
    }
}

impl SpooledText {
    fn new(spool: Spool, len: u64, stats: &TextStats) -> Self {
        let base64_len = Base64Lines::encoded_len(len);
        let (encoding, encoded_len) = if !stats.needs_encoding {
            (TransferEncoding::SevenBit, len)
        } else if stats.qp_len < base64_len {
            (TransferEncoding::QuotedPrintable, stats.qp_len)
        } else {
            (TransferEncoding::Base64, base64_len)
        };
        SpooledText {
            spool,
            len,
            encoding,
            encoded_len,
            subtype: "plain",
        }
    }

    /// The same text as the `text/html` part.
    pub fn into_html(self) -> Self {
        SpooledText {
            subtype: "html",
            ..self
        }
    }

    /// The transfer encoding it is written with.
    pub fn encoding(&self) -> TransferEncoding {
        self.encoding
    }

    /// The length of the text (CRLF line endings).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The exact length of the encoded text.
    pub fn encoded_len(&self) -> u64 {
        self.encoded_len
    }

    /// The part header of the text part (ending with the blank line), as
    /// mail-builder writes it for a small body.
    pub fn part_header(&self) -> String {
        format!(
            "Content-Type: text/{}; charset=\"utf-8\"\r\nContent-Transfer-Encoding: {}\r\n\r\n",
            self.subtype,
            self.encoding.name()
        )
    }

    /// Writes the encoded text. Errors writing to `out` are returned as
    /// they are; errors reading the spool are [`Error::Io`](crate::mail::Error::Io) failures.
    pub fn write_encoded(&self, out: &mut dyn Write) -> anyhow::Result<()> {
        let local = |e: io::Error| crate::mail::local_io(format!("reading the spooled body: {e}"));
        let mut encoder = Encoder::new(self.encoding);
        let mut input = vec![0u8; 64 * 1024];
        let mut output = Vec::with_capacity(3 * input.len() + 1024);
        let mut offset = 0u64;
        let mut written = 0u64;
        while offset < self.len {
            let want = input.len().min((self.len - offset) as usize);
            let n = self
                .spool
                .read_full_at(&mut input[..want], offset)
                .map_err(local)?;
            if n == 0 {
                return Err(crate::mail::local_io("the spooled body was truncated"));
            }
            offset += n as u64;
            output.clear();
            encoder.push(&input[..n], &mut output);
            out.write_all(&output)?;
            written += output.len() as u64;
        }
        output.clear();
        encoder.finish(&mut output);
        out.write_all(&output)?;
        written += output.len() as u64;
        if written != self.encoded_len {
            return Err(crate::mail::internal(format!(
                "the encoded body has {written} bytes, not the {} announced",
                self.encoded_len
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_in_pieces(encoding: TransferEncoding, input: &[u8], piece: usize) -> Vec<u8> {
        let mut encoder = Encoder::new(encoding);
        let mut out = Vec::new();
        for chunk in input.chunks(piece.max(1)) {
            encoder.push(chunk, &mut out);
        }
        encoder.finish(&mut out);
        out
    }

    fn qp(input: &[u8]) -> String {
        String::from_utf8(encode_in_pieces(
            TransferEncoding::QuotedPrintable,
            input,
            input.len(),
        ))
        .unwrap()
    }

    /// Decodes quoted-printable strictly, checking the line rules on the way.
    fn qp_decode(encoded: &[u8]) -> Vec<u8> {
        let text = std::str::from_utf8(encoded).unwrap();
        let mut out = Vec::new();
        let lines: Vec<&str> = text.split("\r\n").collect();
        for (i, line) in lines.iter().enumerate() {
            assert!(line.len() <= 76, "line of {}: {line:?}", line.len());
            assert!(!line.contains(['\r', '\n']));
            assert!(!line.ends_with([' ', '\t']), "{line:?}");
            let (content, soft) = match line.strip_suffix('=') {
                Some(c) => (c, true),
                None => (*line, false),
            };
            let bytes = content.as_bytes();
            let mut j = 0;
            while j < bytes.len() {
                if bytes[j] == b'=' {
                    let hex = std::str::from_utf8(&bytes[j + 1..j + 3]).unwrap();
                    assert_eq!(hex, hex.to_ascii_uppercase());
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    j += 3;
                } else {
                    assert!((32..=126).contains(&bytes[j]) || bytes[j] == b'\t');
                    out.push(bytes[j]);
                    j += 1;
                }
            }
            if !soft && i + 1 < lines.len() {
                out.extend_from_slice(b"\r\n");
            }
        }
        out
    }

    fn sample() -> Vec<u8> {
        let mut text = String::new();
        for i in 0..300 {
            text.push_str(&"x".repeat(i % 160));
            text.push_str(match i % 7 {
                0 => " \r\n",
                1 => "=\t\r\n",
                2 => "é中😀\r\n",
                3 => ".\r\n",
                4 => "\r\n\r\n",
                5 => " a b\r\n",
                _ => "\r\n",
            });
        }
        text.push_str("end \t");
        text.into_bytes()
    }

    #[test]
    fn quoted_printable_rules() {
        assert_eq!(qp(b"hello world\r\n"), "hello world\r\n");
        assert_eq!(qp(b"a = b\r\n"), "a =3D b\r\n");
        assert_eq!(
            qp(b"trailing \r\ntab\t\r\nend "),
            "trailing=20\r\ntab=09\r\nend=20"
        );
        assert_eq!(qp(b"two  \r\n"), "two =20\r\n");
        assert_eq!(qp("é\r\n".as_bytes()), "=C3=A9\r\n");
        assert_eq!(qp(b"bare\rcr\nlf"), "bare=0Dcr=0Alf");
        // A line of a single dot stays one: the SMTP layer dot-stuffs it.
        assert_eq!(qp(b"a\r\n.\r\nb\r\n"), "a\r\n.\r\nb\r\n");
        assert_eq!(qp(b""), "");
    }

    #[test]
    fn quoted_printable_line_boundaries() {
        // 75 characters fit on a line; the 76th needs a soft line break.
        let line75 = "a".repeat(75);
        assert_eq!(
            qp(format!("{line75}\r\n").as_bytes()),
            format!("{line75}\r\n")
        );
        let line76 = "a".repeat(76);
        assert_eq!(
            qp(format!("{line76}\r\n").as_bytes()),
            format!("{line75}=\r\na\r\n")
        );
        // An escape is never cut by a soft line break.
        let out = qp(format!("{}é\r\n", "a".repeat(74)).as_bytes());
        assert_eq!(out, format!("{}=\r\n=C3=A9\r\n", "a".repeat(74)));
        // Long lines (998 and more) come out in lines of at most 76.
        for len in [997, 998, 999, 5000] {
            let input = format!("{}\r\n", "b".repeat(len));
            let out = qp(input.as_bytes());
            assert!(out.split("\r\n").all(|l| l.len() <= 76));
            assert_eq!(qp_decode(out.as_bytes()), input.as_bytes());
        }
    }

    #[test]
    fn encoders_are_invariant_to_piece_size() {
        let input = sample();
        for encoding in [
            TransferEncoding::SevenBit,
            TransferEncoding::QuotedPrintable,
            TransferEncoding::Base64,
        ] {
            let whole = encode_in_pieces(encoding, &input, input.len());
            for piece in [1, 2, 3, 5, 56, 57, 58, 75, 76, 77, 997, 998, 999, 4096] {
                assert_eq!(
                    encode_in_pieces(encoding, &input, piece),
                    whole,
                    "{encoding:?} in pieces of {piece}"
                );
            }
            let decoded = match encoding {
                TransferEncoding::SevenBit => whole.clone(),
                TransferEncoding::QuotedPrintable => qp_decode(&whole),
                TransferEncoding::Base64 => {
                    let text = String::from_utf8(whole.clone()).unwrap();
                    assert!(text.ends_with("\r\n"));
                    assert!(text.split("\r\n").all(|l| l.len() <= 76));
                    BASE64.decode(text.replace("\r\n", "")).unwrap()
                }
            };
            assert_eq!(decoded, input, "{encoding:?}");
        }
    }

    #[test]
    fn base64_line_boundaries() {
        for len in [0u64, 1, 2, 3, 56, 57, 58, 114, 115, 1000] {
            let input: Vec<u8> = (0..len).map(|i| (i * 31 % 256) as u8).collect();
            let out = encode_in_pieces(TransferEncoding::Base64, &input, 10);
            assert_eq!(out.len() as u64, Base64Lines::encoded_len(len), "len {len}");
            let text = String::from_utf8(out).unwrap();
            let lines: Vec<&str> = text.split_terminator("\r\n").collect();
            assert!(lines.iter().all(|l| l.len() <= 76));
            assert!(lines.iter().rev().skip(1).all(|l| l.len() == 76));
        }
    }

    #[test]
    fn utf8_across_pieces() {
        let text = "aé中😀z".repeat(50);
        let bytes = text.as_bytes();
        for piece in 1..=9 {
            let mut check = Utf8Check::default();
            assert!(bytes.chunks(piece).all(|c| check.push(c)), "piece {piece}");
            assert!(check.finish(), "piece {piece}");
        }
        // Cut in the middle of a character at the end.
        let mut check = Utf8Check::default();
        assert!(check.push(&"😀".as_bytes()[..2]));
        assert!(!check.finish());
        // Invalid continuation after a cut.
        let mut check = Utf8Check::default();
        assert!(check.push(&[b'a', 0xE4]));
        assert!(!check.push(&[0x41, 0x41]));
        // Invalid bytes, whole or split.
        for bad in [
            &[0xFFu8][..],
            &[0xC0, 0x80],
            &[0xED, 0xA0, 0x80],
            &[0xF4, 0x90, 0x80, 0x80],
        ] {
            for piece in 1..=bad.len() {
                let mut check = Utf8Check::default();
                let ok = bad.chunks(piece).all(|c| check.push(c)) && check.finish();
                assert!(!ok, "{bad:?} in pieces of {piece}");
            }
        }
    }

    fn spooled(input: &[u8]) -> SpooledText {
        match read_text(&mut &input[..]).unwrap() {
            TextBody::Spooled(s) => s,
            TextBody::Memory(_) => panic!("not spooled"),
        }
    }

    fn written(text: &SpooledText) -> Vec<u8> {
        let mut out = Vec::new();
        text.write_encoded(&mut out).unwrap();
        assert_eq!(out.len() as u64, text.encoded_len());
        out
    }

    #[test]
    fn small_text_stays_in_memory_and_large_text_is_spooled() {
        let small = "x\n".repeat(MEMORY_LIMIT / 2);
        assert!(matches!(
            read_text(&mut small.as_bytes()).unwrap(),
            TextBody::Memory(s) if s == small
        ));
        let log = "2025-07-01 10:00:00 job ran.\n".repeat(40_000);
        let text = spooled(log.as_bytes());
        assert_eq!(text.encoding(), TransferEncoding::SevenBit);
        assert_eq!(written(&text), log.replace('\n', "\r\n").as_bytes());
    }

    #[test]
    fn encoding_is_chosen_by_content() {
        let accented = "Grüße aus Köln: the job ran at 10:00 without errors. \n".repeat(30_000);
        let text = spooled(accented.as_bytes());
        assert_eq!(text.encoding(), TransferEncoding::QuotedPrintable);
        let expected = accented.replace('\n', "\r\n");
        assert_eq!(qp_decode(&written(&text)), expected.as_bytes());

        let chinese = "中文日志行\n".repeat(80_000);
        let text = spooled(chinese.as_bytes());
        assert_eq!(text.encoding(), TransferEncoding::Base64);
        let out = String::from_utf8(written(&text)).unwrap();
        assert_eq!(
            BASE64.decode(out.replace("\r\n", "")).unwrap(),
            chinese.replace('\n', "\r\n").as_bytes()
        );

        let long_line = format!("{}\n", "y".repeat(2 * MEMORY_LIMIT));
        let text = spooled(long_line.as_bytes());
        assert_eq!(text.encoding(), TransferEncoding::QuotedPrintable);
        assert!(written(&text).split(|&b| b == b'\n').all(|l| l.len() <= 77));
    }

    /// A line of 998 octets may be sent as it is; one of 999 may not
    /// (RFC 5322 section 2.1.1), whatever the piece boundaries.
    #[test]
    fn longest_line_sent_as_it_is() {
        let filler = "short line\n".repeat(MEMORY_LIMIT / 10);
        for (len, encoding) in [
            (998, TransferEncoding::SevenBit),
            (999, TransferEncoding::QuotedPrintable),
        ] {
            let body = format!("{filler}{}\n{filler}", "L".repeat(len));
            let text = spooled(body.as_bytes());
            assert_eq!(text.encoding(), encoding, "line of {len}");
            let out = written(&text);
            let longest = out.split(|&b| b == b'\n').map(<[u8]>::len).max().unwrap();
            assert!(longest <= 998 + 1, "line of {len}: {longest}");
        }
        // A NUL or DEL needs an encoding too.
        for odd in ["\0", "\u{7f}"] {
            let text = spooled(format!("{filler}{odd}\n").as_bytes());
            assert_eq!(text.encoding(), TransferEncoding::QuotedPrintable);
        }
    }

    #[test]
    fn not_utf8_is_refused_at_any_size() {
        let mut big = "a".repeat(2 * MEMORY_LIMIT).into_bytes();
        big.push(0xFF);
        assert!(matches!(
            read_text(&mut &big[..]),
            Err(ReadTextError::NotUtf8)
        ));
        let mut cut = "a".repeat(MEMORY_LIMIT + 10).into_bytes();
        cut.extend_from_slice(&"é".as_bytes()[..1]);
        assert!(matches!(
            read_text(&mut &cut[..]),
            Err(ReadTextError::NotUtf8)
        ));
        assert!(matches!(
            read_text(&mut &[0xC3u8][..]),
            Err(ReadTextError::NotUtf8)
        ));
    }

    /// A reader giving `bytes` `size` at a time, as a pipe may.
    struct Chunked<'a> {
        bytes: &'a [u8],
        size: usize,
    }

    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.size.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    #[test]
    fn text_in_another_charset_is_transcoded_in_any_chunk_size() {
        let latin1 = b"temp\xe9rature \xe9lev\xe9e\n";
        for size in 1..=latin1.len() {
            let mut input = Chunked {
                bytes: latin1,
                size,
            };
            let (body, charset) = read_text_in(&mut input, None).unwrap();
            assert_eq!(charset, Charset::Detected(encoding_rs::WINDOWS_1252));
            assert!(matches!(body, TextBody::Memory(t) if t == "température élevée\n"));
        }
        let declared = Some(encoding_rs::ISO_8859_15);
        let (body, charset) = read_text_in(&mut &b"12 \xa4"[..], declared).unwrap();
        assert_eq!(charset, Charset::Declared(encoding_rs::ISO_8859_15));
        assert!(matches!(body, TextBody::Memory(t) if t == "12 €"));
        let (_, charset) = read_text_in(&mut "déjà".as_bytes(), None).unwrap();
        assert_eq!(charset, Charset::Utf8);
    }
}
