//! POP3 responses (RFC 1939 section 3): status lines, and the multi-line
//! body reader that removes byte-stuffing.
//!
//! Everything here works on bytes: message contents are never assumed to be
//! UTF-8, and a multi-line body is handed back piece by piece so that a large
//! message never has to sit in memory as a whole.

use super::Error;
use crate::proto::dot::{LenientUnstuffer, Overflow};

/// The longest status line accepted, CRLF included. RFC 2449 section 4
/// limits responses to 512 octets; real servers stay well inside this.
pub const MAX_STATUS_LINE: usize = 8 * 1024;

/// The parsed first line of a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status<'a> {
    /// `+OK text`.
    Ok(&'a [u8]),
    /// `-ERR text`.
    Err(&'a [u8]),
    /// `+ base64`: a SASL continuation (RFC 5034 section 4).
    Continue(&'a [u8]),
}

/// Parses a status line (with or without its line ending).
///
/// The indicator must be followed by a space or the end of the line, so
/// `+OKAY` is malformed.
pub fn parse_status(line: &[u8]) -> Result<Status<'_>, Error> {
    let line = strip_eol(line);
    let rest_after = |tag: &[u8]| -> Option<&[u8]> {
        let rest = line.strip_prefix(tag)?;
        match rest.first() {
            None => Some(rest),
            Some(b' ') => Some(&rest[1..]),
            Some(_) => None,
        }
    };
    if let Some(text) = rest_after(b"+OK") {
        Ok(Status::Ok(text))
    } else if let Some(text) = rest_after(b"-ERR") {
        Ok(Status::Err(text))
    } else if let Some(text) = rest_after(b"+") {
        Ok(Status::Continue(text))
    } else {
        Err(Error::Malformed(format!(
            "expected +OK or -ERR, got '{}'",
            crate::text::printable(truncate(line, 200))
        )))
    }
}

impl Status<'_> {
    /// The wire form, as a server sends it: `+OK text` CRLF (no space when
    /// there is no text), `-ERR text` CRLF, or `+ base64` CRLF (RFC 5034:
    /// the space is always there). [`parse_status`] reads it back.
    pub fn to_bytes(&self) -> Vec<u8> {
        let (tag, text, space): (&[u8], &[u8], bool) = match self {
            Status::Ok(t) => (b"+OK", t, !t.is_empty()),
            Status::Err(t) => (b"-ERR", t, !t.is_empty()),
            Status::Continue(t) => (b"+", t, true),
        };
        let mut out = Vec::with_capacity(tag.len() + text.len() + 3);
        out.extend_from_slice(tag);
        if space {
            out.push(b' ');
        }
        out.extend_from_slice(text);
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// The extended response code at the start of a `-ERR` text, such as
/// `IN-USE` or `SYS/TEMP` (RFC 2449 section 8, RFC 3206), upper-cased.
pub fn response_code(text: &[u8]) -> Option<String> {
    let rest = text.strip_prefix(b"[")?;
    let end = rest.iter().position(|&b| b == b']')?;
    let code = &rest[..end];
    if code.is_empty() || code.len() > 64 || !code.iter().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    Some(String::from_utf8_lossy(code).to_ascii_uppercase())
}

/// The APOP timestamp in a greeting: the first `<...>` span (RFC 1939
/// section 7). Whether it is safe to use is checked separately, by
/// [`crate::proto::sasl::valid_apop_timestamp`].
pub fn greeting_timestamp(text: &[u8]) -> Option<&[u8]> {
    let start = text.iter().position(|&b| b == b'<')?;
    let len = text[start..].iter().position(|&b| b == b'>')?;
    Some(&text[start..start + len + 1])
}

/// Parses `+OK nn mm` from STAT: message count and total size.
pub fn parse_stat(text: &[u8]) -> Result<(u32, u64), Error> {
    let mut words = text.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let count = words.next().and_then(parse_number::<u32>);
    let size = words.next().and_then(parse_number::<u64>);
    match (count, size) {
        (Some(c), Some(s)) => Ok((c, s)),
        _ => Err(malformed("STAT reply", text)),
    }
}

/// Parses one scan listing `n size` (LIST, RFC 1939 section 5).
pub fn parse_list_entry(line: &[u8]) -> Result<(u32, u64), Error> {
    let line = strip_eol(line);
    let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let number = words.next().and_then(parse_number::<u32>);
    let size = words.next().and_then(parse_number::<u64>);
    match (number, size) {
        (Some(n), Some(s)) if n > 0 => Ok((n, s)),
        _ => Err(malformed("LIST entry", line)),
    }
}

/// Parses one unique-id listing `n uid` (UIDL, RFC 1939 section 7). The
/// unique id is 1 to 70 characters in the range 0x21 to 0x7E.
pub fn parse_uidl_entry(line: &[u8]) -> Result<(u32, &[u8]), Error> {
    let line = strip_eol(line);
    let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let number = words.next().and_then(parse_number::<u32>);
    let uid = words.next();
    match (number, uid) {
        (Some(n), Some(uid))
            if n > 0 && uid.len() <= 70 && uid.iter().all(|b| (0x21..=0x7e).contains(b)) =>
        {
            Ok((n, uid))
        }
        _ => Err(malformed("UIDL entry", line)),
    }
}

fn parse_number<T: std::str::FromStr>(word: &[u8]) -> Option<T> {
    if word.is_empty() || word.len() > 20 || !word.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(word).ok()?.parse().ok()
}

fn malformed(what: &str, bytes: &[u8]) -> Error {
    Error::Malformed(format!(
        "malformed {what} '{}'",
        crate::text::printable(truncate(bytes, 200))
    ))
}

fn truncate(bytes: &[u8], max: usize) -> &[u8] {
    &bytes[..bytes.len().min(max)]
}

/// Removes one trailing CRLF or LF.
pub fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Limits on one multi-line response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The longest line accepted, line ending included.
    pub max_line: u64,
    /// The most body bytes accepted (after unstuffing, before the
    /// terminating line).
    pub max_total: u64,
}

/// Incremental reader of a multi-line response body (RFC 1939 section 3).
///
/// Feed it bytes in chunks of any size; it appends the unstuffed body to a
/// buffer you own and tells you when the terminating `.` line has been seen
/// and how much of the chunk belonged to the body, so that any following
/// bytes (the next pipelined response) stay yours. A line beginning with `.`
/// loses that `.`; a line that is just `.` (CRLF, or a bare LF from lenient
/// servers) ends the body. Results do not depend on how the input is cut.
#[derive(Clone, Debug)]
pub struct MultiLine {
    reader: LenientUnstuffer,
}

/// The outcome of [`MultiLine::feed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fed {
    /// How many input bytes were used.
    pub consumed: usize,
    /// Whether the terminating line was reached.
    pub done: bool,
}

impl MultiLine {
    /// A reader at the start of a body.
    pub fn new(limits: Limits) -> Self {
        MultiLine {
            reader: LenientUnstuffer::new(limits.max_line, limits.max_total),
        }
    }

    /// Body bytes produced so far.
    pub fn total(&self) -> u64 {
        self.reader.total()
    }

    /// Whether the terminating line has been read.
    pub fn is_done(&self) -> bool {
        self.reader.is_done()
    }

    /// Consumes body bytes from `input`, appending unstuffed bytes to `out`.
    /// Stops right after the terminating line.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<Fed, Error> {
        let consumed = self.reader.feed(input, out).map_err(|e| match e {
            Overflow::Line(max) => {
                Error::TooLarge(format!("a response line is longer than {max} bytes"))
            }
            Overflow::Total(max) => Error::TooLarge(format!("response is longer than {max} bytes")),
        })?;
        Ok(Fed {
            consumed,
            done: self.reader.is_done(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIDE: Limits = Limits {
        max_line: 1 << 20,
        max_total: 1 << 30,
    };

    fn read_all(input: &[u8], chunk: usize) -> Result<(Vec<u8>, usize, bool), Error> {
        let mut reader = MultiLine::new(WIDE);
        let mut out = Vec::new();
        let mut used = 0;
        for piece in input.chunks(chunk.max(1)) {
            let fed = reader.feed(piece, &mut out)?;
            used += fed.consumed;
            if fed.done {
                return Ok((out, used, true));
            }
            assert_eq!(fed.consumed, piece.len());
        }
        Ok((out, used, false))
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            parse_status(b"+OK ready\r\n").unwrap(),
            Status::Ok(b"ready")
        );
        assert_eq!(parse_status(b"+OK\r\n").unwrap(), Status::Ok(b""));
        assert_eq!(parse_status(b"-ERR no\n").unwrap(), Status::Err(b"no"));
        assert_eq!(parse_status(b"+ \r\n").unwrap(), Status::Continue(b""));
        assert_eq!(
            parse_status(b"+ dGVzdA==\r\n").unwrap(),
            Status::Continue(b"dGVzdA==")
        );
        assert!(parse_status(b"+OKAY\r\n").is_err());
        assert!(parse_status(b"OK\r\n").is_err());
        assert!(parse_status(b"\r\n").is_err());
        assert!(parse_status(b"-ERRx\r\n").is_err());
        assert_eq!(
            parse_status(b"-ERR \xff\xfe\r\n").unwrap(),
            Status::Err(b"\xff\xfe")
        );
    }

    #[test]
    fn status_lines_read_back() {
        for status in [
            Status::Ok(b"ready"),
            Status::Ok(b""),
            Status::Err(b"[IN-USE] busy"),
            Status::Continue(b""),
            Status::Continue(b"dGVzdA=="),
        ] {
            let wire = status.to_bytes();
            assert_eq!(parse_status(&wire).unwrap(), status);
        }
        assert_eq!(Status::Continue(b"").to_bytes(), b"+ \r\n");
        assert_eq!(Status::Ok(b"").to_bytes(), b"+OK\r\n");
    }

    #[test]
    fn response_codes_and_timestamp() {
        assert_eq!(response_code(b"[IN-USE] busy"), Some("IN-USE".into()));
        assert_eq!(response_code(b"[sys/temp] x"), Some("SYS/TEMP".into()));
        assert_eq!(response_code(b"no code"), None);
        assert_eq!(response_code(b"[unterminated"), None);
        assert_eq!(
            greeting_timestamp(b"POP3 ready <1896.697170952@dbc.mtview.ca.us>"),
            Some(&b"<1896.697170952@dbc.mtview.ca.us>"[..])
        );
        assert_eq!(greeting_timestamp(b"ready"), None);
        assert_eq!(greeting_timestamp(b"ready <open"), None);
    }

    #[test]
    fn listings() {
        assert_eq!(parse_stat(b"2 320").unwrap(), (2, 320));
        assert!(parse_stat(b"2").is_err());
        assert!(parse_stat(b"-1 3").is_err());
        assert_eq!(parse_list_entry(b"1 120\r\n").unwrap(), (1, 120));
        assert_eq!(parse_list_entry(b"7 5000 extra\r\n").unwrap(), (7, 5000));
        assert!(parse_list_entry(b"0 1\r\n").is_err());
        assert!(parse_list_entry(b"x 1\r\n").is_err());
        assert!(parse_list_entry(b"99999999999999999999999 1\r\n").is_err());
        assert_eq!(
            parse_uidl_entry(b"3 QhdPYR:00WBw1Ph7x7\r\n").unwrap(),
            (3, &b"QhdPYR:00WBw1Ph7x7"[..])
        );
        assert!(parse_uidl_entry(b"3\r\n").is_err());
        assert!(parse_uidl_entry(b"3 caf\xc3\xa9\r\n").is_err());
        assert!(parse_uidl_entry(format!("1 {}\r\n", "a".repeat(71)).as_bytes()).is_err());
    }

    #[test]
    fn unstuffing_edge_cases() {
        let (out, used, done) =
            read_all(b"a\r\n..\r\n...\r\n..x\r\n.y\r\n.\r\nNEXT", 1 << 20).unwrap();
        assert!(done);
        assert_eq!(out, b"a\r\n.\r\n..\r\n.x\r\ny\r\n");
        assert_eq!(used, 24);

        // An empty body.
        let (out, used, done) = read_all(b".\r\n+OK next\r\n", 1 << 20).unwrap();
        assert!(done && out.is_empty() && used == 3);

        // A lone LF terminator from a lenient server.
        let (out, _, done) = read_all(b"x\n.\n", 1 << 20).unwrap();
        assert!(done);
        assert_eq!(out, b"x\n");

        // ".\r" followed by something other than LF is data.
        let (out, _, done) = read_all(b".\rz\r\n.\r\n", 1 << 20).unwrap();
        assert!(done);
        assert_eq!(out, b"\rz\r\n");

        // A "." inside a line, and "." after a bare CR, are data.
        let (out, _, _) = read_all(b"a.\r\nb\r.\r\n.\r\n", 1 << 20).unwrap();
        assert_eq!(out, b"a.\r\nb\r.\r\n");

        // A last line without CRLF and no terminator: not done.
        let (out, _, done) = read_all(b"line\r\nlast", 1 << 20).unwrap();
        assert!(!done);
        assert_eq!(out, b"line\r\nlast");

        // 8-bit and invalid UTF-8 pass through unchanged.
        let (out, _, _) = read_all(b"\xff\xfe\x00\x80\r\n.\r\n", 1 << 20).unwrap();
        assert_eq!(out, b"\xff\xfe\x00\x80\r\n");
    }

    #[test]
    fn chunk_size_invariance() {
        let body: &[u8] =
            b"Subject: t\r\n\r\n..leading\r\n.\rcr\r\n...\r\n\xe9t\xe9\r\n.\r\r\nx\r\n.\r\n+OK";
        let (whole, used, done) = read_all(body, body.len()).unwrap();
        assert!(done);
        for chunk in [1, 2, 3, 5, 7, 11, 64] {
            let (out, n, d) = read_all(body, chunk).unwrap();
            assert_eq!(
                (out.as_slice(), n, d),
                (whole.as_slice(), used, done),
                "chunk {chunk}"
            );
        }
        assert_eq!(&body[used..], b"+OK");
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits {
            max_line: 10,
            max_total: 25,
        };
        let mut r = MultiLine::new(limits);
        let err = r.feed(b"0123456789abc\r\n", &mut Vec::new()).unwrap_err();
        assert!(matches!(err, Error::TooLarge(_)));

        let mut r = MultiLine::new(limits);
        let mut out = Vec::new();
        let mut result = Ok(Fed {
            consumed: 0,
            done: false,
        });
        for _ in 0..10 {
            result = r.feed(b"short\r\n", &mut out);
            if result.is_err() {
                break;
            }
        }
        assert!(matches!(result, Err(Error::TooLarge(_))));
        assert!(out.len() <= 25);

        // Lines copied as one run are still checked one by one, however
        // the input is cut: 10 bytes pass, 11 do not.
        let wide = Limits {
            max_line: 10,
            max_total: 1 << 20,
        };
        let ok: &[u8] = b"ab\r\n12345678\r\ncd\r\n.\r\n";
        let long: &[u8] = b"ab\r\ncd\r\n123456789\r\nef\r\n.\r\n";
        for chunk in 1..=long.len() {
            let mut r = MultiLine::new(wide);
            let mut out = Vec::new();
            let fed: Result<Vec<_>, _> = ok.chunks(chunk).map(|c| r.feed(c, &mut out)).collect();
            assert!(fed.is_ok() && r.is_done(), "chunk {chunk}");
            assert_eq!(out, &ok[..ok.len() - 3]);
            let mut r = MultiLine::new(wide);
            let fed: Result<Vec<_>, _> = long
                .chunks(chunk)
                .map(|c| r.feed(c, &mut Vec::new()))
                .collect();
            assert!(matches!(fed, Err(Error::TooLarge(_))), "chunk {chunk}");
        }
    }
}
