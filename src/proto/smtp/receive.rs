//! The SMTP DATA receiver (RFC 5321 sections 4.1.1.4 and 4.5.2): finds the
//! end of the message, removes dot-stuffing and normalises line endings.
//! Pure: fed arbitrary chunks of the byte stream, it writes the message
//! content into a caller's buffer. The reading itself is
//! [`crate::proto::dot::StrictUnstuffer`]'s.
//!
//! Rules, chosen so that no "SMTP smuggling" is possible:
//! - the message ends only at `CRLF . CRLF` (the first CRLF may be the one
//!   that ended the DATA command, if it did end in CRLF: `DATA LF . CRLF`
//!   is a bare-LF dot line like any other);
//! - a `.` line after a bare LF (`\n.\r\n`, `\n.\n`) or after a bare CR
//!   (`\r.\r\n`) never ends it, and neither does `\r\n.\n`;
//! - a leading dot is removed only at the start of a line that follows a
//!   CRLF; lines after a bare LF are kept as they came;
//! - a bare LF is stored as CRLF; a bare CR inside a line is kept.

use crate::proto::dot::StrictUnstuffer;

/// Incremental receiver of one message's DATA bytes.
#[derive(Clone, Debug)]
pub struct DataReceiver {
    reader: StrictUnstuffer,
}

impl Default for DataReceiver {
    fn default() -> Self {
        Self::new()
    }
}

impl DataReceiver {
    /// A receiver positioned just after the `DATA` command's CRLF.
    pub fn new() -> Self {
        Self::after_command_line(true)
    }

    /// A receiver positioned just after a DATA command line that ended in
    /// CRLF (`ended_in_crlf`) or in a bare LF. After a bare LF, a `.` line
    /// right away is content, not the end of the message.
    pub fn after_command_line(ended_in_crlf: bool) -> Self {
        DataReceiver {
            reader: StrictUnstuffer::new(ended_in_crlf),
        }
    }

    /// Whether the terminating `CRLF . CRLF` has been seen.
    pub fn is_done(&self) -> bool {
        self.reader.is_done()
    }

    /// Consumes bytes from `input`, appending message content to `out`.
    /// Returns how many input bytes were used: all of them unless the end of
    /// the message was found, in which case the rest belongs to the next
    /// command.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> usize {
        self.reader.feed(input, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` whole; returns (content, consumed, done).
    fn run(input: &[u8]) -> (Vec<u8>, usize, bool) {
        let mut r = DataReceiver::new();
        let mut out = Vec::new();
        let used = r.feed(input, &mut out);
        (out, used, r.is_done())
    }

    #[test]
    fn plain_message_and_remainder() {
        let (out, used, done) = run(b"Subject: a\r\n\r\nbody\r\n.\r\nQUIT\r\n");
        assert!(done);
        assert_eq!(out, b"Subject: a\r\n\r\nbody\r\n");
        assert_eq!(used, b"Subject: a\r\n\r\nbody\r\n.\r\n".len());
    }

    #[test]
    fn empty_message() {
        assert_eq!(run(b".\r\n"), (Vec::new(), 3, true));
    }

    #[test]
    fn dot_unstuffing_is_exact() {
        let (out, _, done) = run(b"..\r\n...x\r\n.a\r\n a.\r\n..\r\n.\r\n");
        assert!(done);
        assert_eq!(out, b".\r\n..x\r\na\r\n a.\r\n.\r\n");
    }

    #[test]
    fn smuggling_variants_never_end_the_message() {
        for body in [
            &b"a\n.\r\nMAIL FROM:<x>\r\n"[..],
            b"a\n.\nMAIL FROM:<x>\r\n",
            b"a\r.\r\nMAIL FROM:<x>\r\n",
            b"a\r\n.\nMAIL FROM:<x>\r\n",
            b"a\r\n.\rMAIL FROM:<x>\r\n",
        ] {
            let (_, used, done) = run(body);
            assert!(
                !done,
                "{:?} ended the message",
                String::from_utf8_lossy(body)
            );
            assert_eq!(used, body.len());
            // The real terminator still works afterwards.
            let mut r = DataReceiver::new();
            let mut out = Vec::new();
            r.feed(body, &mut out);
            assert_eq!(r.feed(b".\r\n", &mut out), 3);
            assert!(r.is_done());
        }
    }

    #[test]
    fn data_command_ended_by_bare_lf_is_no_first_crlf() {
        let mut r = DataReceiver::after_command_line(false);
        let mut out = Vec::new();
        assert_eq!(r.feed(b".\r\nMAIL FROM:<x>\r\n", &mut out), 18);
        assert!(!r.is_done());
        assert_eq!(out, b".\r\nMAIL FROM:<x>\r\n");
        assert_eq!(r.feed(b".\r\n", &mut out), 3);
        assert!(r.is_done());
        // After CRLF, the same bytes end the (empty) message at once.
        let mut r = DataReceiver::after_command_line(true);
        assert_eq!(r.feed(b".\r\nMAIL FROM:<x>\r\n", &mut Vec::new()), 3);
        assert!(r.is_done());
    }

    #[test]
    fn smuggled_content_is_stored_with_crlf() {
        assert_eq!(run(b"a\n.\r\nb\r\n").0, b"a\r\n.\r\nb\r\n");
        assert_eq!(run(b"a\n.\nb\r\n").0, b"a\r\n.\r\nb\r\n");
        assert_eq!(run(b"a\r.\r\nb\r\n").0, b"a\r.\r\nb\r\n");
        assert_eq!(run(b"a\r\n.\nb\r\n").0, b"a\r\n.\r\nb\r\n");
        assert_eq!(run(b"a\r\n.\rb\r\n").0, b"a\r\n\rb\r\n");
    }

    #[test]
    fn bare_lf_becomes_crlf_and_bare_cr_stays() {
        let (out, _, done) = run(b"a\nb\r\nc\rd\r\r\n.\r\n");
        assert!(done);
        assert_eq!(out, b"a\r\nb\r\nc\rd\r\r\n");
    }

    #[test]
    fn chunk_size_invariance() {
        let input: &[u8] =
            b"From: a\r\n\r\n..x\n.\r\n\r.\r\n.\n\r\n..\r\nend\r\r\n\r\n.\r\nNEXT\r\n";
        let whole = run(input);
        assert!(whole.2);
        for size in 1..=input.len() {
            let mut r = DataReceiver::new();
            let mut out = Vec::new();
            let mut used = 0;
            for chunk in input.chunks(size) {
                let n = r.feed(chunk, &mut out);
                used += n;
                if n < chunk.len() {
                    break;
                }
            }
            assert_eq!((out.clone(), used, r.is_done()), whole, "chunk size {size}");
        }
    }
}
