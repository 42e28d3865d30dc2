//! The bounded line reader every protocol reader frames its input with.
//!
//! [`LineReader`] is fed arbitrary chunks of bytes (whatever a socket
//! buffer holds) and hands back at most one line per call, LF included.
//! It does no I/O: the driver passes the bytes it has buffered, drops the
//! count the reader used, and reads more only when no line came out. A line
//! longer than the limit is reported once, as [`TooLong`], when its LF
//! arrives; its bytes are dropped as they come, so the reader never holds
//! more than the limit.

use std::fmt;

/// `line` as sent on the wire: its bytes followed by CRLF.
pub fn with_crlf(line: String) -> Vec<u8> {
    let mut bytes = line.into_bytes();
    bytes.extend_from_slice(b"\r\n");
    bytes
}

/// A line exceeded the reader's limit (it was discarded up to its LF).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooLong {
    /// The limit, line ending included.
    pub max: usize,
}

impl fmt::Display for TooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line longer than {} bytes", self.max)
    }
}

impl std::error::Error for TooLong {}

/// What one [`LineReader::push`] produced, besides the bytes it used.
pub type Pushed = Option<Result<Vec<u8>, TooLong>>;

/// Splits a byte stream into LF-terminated lines of at most `max` bytes.
#[derive(Clone, Debug)]
pub struct LineReader {
    max: usize,
    partial: Vec<u8>,
    skipping: bool,
}

impl LineReader {
    /// A reader accepting lines of up to `max` bytes, LF included.
    pub fn new(max: usize) -> Self {
        LineReader {
            max: max.max(1),
            partial: Vec::new(),
            skipping: false,
        }
    }

    /// The limit, line ending included.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Whether part of a line (or of an over-long line being skipped) has
    /// been taken in without its LF.
    pub fn has_partial(&self) -> bool {
        !self.partial.is_empty() || self.skipping
    }

    /// Whether the line being read is already over the limit (it is being
    /// dropped, and [`TooLong`] comes at its LF): a reader that gives up on
    /// such a line can stop now rather than wait for its end.
    pub fn is_over_limit(&self) -> bool {
        self.skipping
    }

    /// Takes bytes from `input` up to the end of the first line in it.
    ///
    /// Returns how many bytes were used and, when a line ended within them,
    /// that line (everything since the previous line, LF included) or
    /// [`TooLong`]. With no LF in `input`, every byte is used and kept (or,
    /// past the limit, dropped). After a line is returned nothing is kept,
    /// so the unused rest of `input` is exactly what follows the line.
    pub fn push(&mut self, input: &[u8]) -> (usize, Pushed) {
        match memchr::memchr(b'\n', input) {
            Some(pos) => {
                let used = pos + 1;
                let too_long = self.skipping || self.partial.len() + used > self.max;
                self.skipping = false;
                let result = if too_long {
                    self.partial.clear();
                    Err(TooLong { max: self.max })
                } else if self.partial.is_empty() {
                    Ok(input[..used].to_vec())
                } else {
                    let mut line = std::mem::take(&mut self.partial);
                    line.extend_from_slice(&input[..used]);
                    Ok(line)
                };
                (used, Some(result))
            }
            None => {
                if self.skipping || self.partial.len() + input.len() >= self.max {
                    // Even its LF would not fit: drop it as it comes.
                    self.skipping = true;
                    self.partial = Vec::new();
                } else {
                    self.partial.extend_from_slice(input);
                }
                (input.len(), None)
            }
        }
    }

    /// Every line in `input`, in order, with whatever follows the last LF
    /// kept for the next call (convenient for tests and whole buffers).
    pub fn push_all(&mut self, mut input: &[u8]) -> Vec<Result<Vec<u8>, TooLong>> {
        let mut lines = Vec::new();
        while !input.is_empty() {
            let (used, line) = self.push(input);
            input = &input[used..];
            lines.extend(line);
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in chunks of `size`, as a driver does; returns every
    /// line or error in order.
    fn lines(max: usize, input: &[u8], size: usize) -> Vec<Result<Vec<u8>, TooLong>> {
        let mut reader = LineReader::new(max);
        let mut out = Vec::new();
        for chunk in input.chunks(size) {
            out.extend(reader.push_all(chunk));
        }
        out
    }

    #[test]
    fn one_line_per_push_and_the_rest_left() {
        let mut r = LineReader::new(100);
        let (used, line) = r.push(b"EHLO a\r\nMAIL FROM:<>\r\npartial");
        assert_eq!(used, 8);
        assert_eq!(line, Some(Ok(b"EHLO a\r\n".to_vec())));
        assert!(!r.has_partial());
        let (used, line) = r.push(b"partial");
        assert_eq!((used, line), (7, None));
        assert!(r.has_partial());
        let (used, line) = r.push(b" end\nNEXT");
        assert_eq!(used, 5);
        assert_eq!(line, Some(Ok(b"partial end\n".to_vec())));
        assert!(!r.has_partial());
    }

    #[test]
    fn limit_counts_the_line_ending() {
        let max = 8;
        assert_eq!(lines(max, b"1234567\n", 3), [Ok(b"1234567\n".to_vec())]);
        assert_eq!(lines(max, b"123456\r\n", 1), [Ok(b"123456\r\n".to_vec())]);
        for size in 1..=20 {
            assert_eq!(
                lines(max, b"12345678\nok\n", size),
                [Err(TooLong { max }), Ok(b"ok\n".to_vec())],
                "chunk size {size}"
            );
        }
    }

    #[test]
    fn an_over_long_line_is_reported_once_and_skipped() {
        let input = [&[b'x'; 50][..], b"\nafter\n"].concat();
        for size in 1..=input.len() {
            let mut reader = LineReader::new(10);
            let mut got = Vec::new();
            for chunk in input.chunks(size) {
                got.extend(reader.push_all(chunk));
                // The reader never holds more than the limit.
                assert!(reader.partial.len() < 10);
            }
            assert_eq!(
                got,
                [Err(TooLong { max: 10 }), Ok(b"after\n".to_vec())],
                "chunk size {size}"
            );
        }
    }

    #[test]
    fn over_the_limit_is_known_before_the_lf() {
        let mut r = LineReader::new(4);
        r.push(b"abc");
        assert!(!r.is_over_limit());
        r.push(b"d");
        assert!(r.is_over_limit());
        assert_eq!(r.push(b"\nx"), (1, Some(Err(TooLong { max: 4 }))));
        assert!(!r.is_over_limit());
    }

    #[test]
    fn bare_cr_and_empty_lines() {
        assert_eq!(
            lines(100, b"\n\r\na\rb\n", 2),
            [
                Ok(b"\n".to_vec()),
                Ok(b"\r\n".to_vec()),
                Ok(b"a\rb\n".to_vec())
            ]
        );
        assert!(lines(100, b"no end", 1).is_empty());
    }

    #[test]
    fn error_text() {
        assert_eq!(
            TooLong { max: 512 }.to_string(),
            "line longer than 512 bytes"
        );
    }
}
