//! The SMTP DATA receiver (RFC 5321 sections 4.1.1.4 and 4.5.2): finds the
//! end of the message, removes dot-stuffing and normalises line endings.
//! Pure: fed arbitrary chunks of the byte stream, it writes the message
//! content into a caller's buffer.
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

/// Where the receiver is inside the current line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At the start of a line; `crlf` says whether the previous line ended
    /// in CRLF (only then can a dot be stuffing or the terminator).
    LineStart { crlf: bool },
    /// Saw a `.` at the start of a line that followed a CRLF.
    Dot,
    /// Saw `.` CR at the start of a line that followed a CRLF.
    DotCr,
    /// Inside a line.
    Middle,
    /// Inside a line, after a CR not yet known to be part of CRLF.
    Cr,
}

/// Incremental receiver of one message's DATA bytes.
#[derive(Clone, Debug)]
pub struct DataReceiver {
    state: State,
    done: bool,
}

impl Default for DataReceiver {
    fn default() -> Self {
        Self::new()
    }
}

impl DataReceiver {
    /// A receiver positioned just after the `DATA` command's CRLF.
    pub fn new() -> Self {
        DataReceiver {
            state: State::LineStart { crlf: true },
            done: false,
        }
    }

    /// A receiver positioned just after a DATA command line that ended in
    /// CRLF (`ended_in_crlf`) or in a bare LF. After a bare LF, a `.` line
    /// right away is content, not the end of the message.
    pub fn after_command_line(ended_in_crlf: bool) -> Self {
        DataReceiver {
            state: State::LineStart {
                crlf: ended_in_crlf,
            },
            done: false,
        }
    }

    /// Whether the terminating `CRLF . CRLF` has been seen.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Consumes bytes from `input`, appending message content to `out`.
    /// Returns how many input bytes were used: all of them unless the end of
    /// the message was found, in which case the rest belongs to the next
    /// command.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> usize {
        for (i, &b) in input.iter().enumerate() {
            if self.done {
                return i;
            }
            self.byte(b, out);
        }
        input.len()
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        self.state = match (self.state, b) {
            (State::LineStart { crlf: true }, b'.') => State::Dot,
            (State::LineStart { .. }, b'\r') => State::Cr,
            (State::LineStart { .. }, b'\n') => {
                out.extend_from_slice(b"\r\n");
                State::LineStart { crlf: false }
            }
            (State::LineStart { .. }, b) => {
                out.push(b);
                State::Middle
            }
            (State::Dot, b'\r') => State::DotCr,
            (State::Dot, b'\n') => {
                // A lone dot ended by a bare LF: not the terminator, and not
                // stuffing either (there is nothing after the dot).
                out.extend_from_slice(b".\r\n");
                State::LineStart { crlf: false }
            }
            (State::Dot, b) => {
                // Dot-stuffing: the leading dot is dropped.
                out.push(b);
                State::Middle
            }
            (State::DotCr, b'\n') => {
                self.done = true;
                State::LineStart { crlf: true }
            }
            (State::DotCr, b) => {
                // `.` CR then something else: the dot was stuffing and the
                // CR is pending.
                self.state = State::Cr;
                self.byte(b, out);
                return;
            }
            (State::Middle, b'\r') => State::Cr,
            (State::Middle, b'\n') => {
                out.extend_from_slice(b"\r\n");
                State::LineStart { crlf: false }
            }
            (State::Middle, b) => {
                out.push(b);
                State::Middle
            }
            (State::Cr, b'\n') => {
                out.extend_from_slice(b"\r\n");
                State::LineStart { crlf: true }
            }
            (State::Cr, b'\r') => {
                out.push(b'\r');
                State::Cr
            }
            (State::Cr, b) => {
                out.push(b'\r');
                out.push(b);
                State::Middle
            }
        };
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
