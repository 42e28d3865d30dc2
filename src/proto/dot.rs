//! Dot-stuffing (RFC 5321 section 4.5.2, RFC 1939 section 3), written once
//! for every side that sends or reads message data.
//!
//! - [`Stuffer`] sends: SMTP DATA (client) and POP3 RETR/TOP (server).
//!   Every line ending it writes is CRLF: a bare LF and a bare CR each
//!   become CRLF, so whatever a reader takes for a line end (LF, CR, CRLF)
//!   it sees the same lines, and a message cannot carry an end-of-data mark
//!   (`\n.\n`, `\r.\r`, ...) past it. A line starting with `.` gets another.
//! - [`StrictUnstuffer`] reads SMTP DATA on the server, by the strict
//!   receive rules: only `CRLF . CRLF` ends the message.
//! - [`LenientUnstuffer`] reads POP3 multi-line responses on the client:
//!   lines end at LF (CRLF or bare LF), so a `.` line ended by a bare LF
//!   also ends the body, as lenient servers send it.
//!
//! All three are fed chunks of any size and give the same result however
//! the input is cut.

/// Where a [`Stuffer`] is in its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StuffState {
    /// At the start of a line (also at the start of the message).
    LineStart,
    /// Inside a line.
    Middle,
    /// Just after a CR, already written as CRLF: an LF now belongs to it.
    AfterCr,
}

/// Streaming dot-stuffer: every line end becomes CRLF, a leading `.` is
/// doubled, and [`Stuffer::finish`] ends the data with `.` CRLF.
#[derive(Clone, Debug)]
pub struct Stuffer {
    state: StuffState,
}

impl Default for Stuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl Stuffer {
    /// A stuffer at the start of a message.
    pub fn new() -> Self {
        Stuffer {
            state: StuffState::LineStart,
        }
    }

    /// Appends the stuffed form of all of `input` to `out`.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + input.len() / 64 + 4);
        while !input.is_empty() {
            let (used, _) = self.feed_line(input, out);
            input = &input[used..];
        }
    }

    /// Like [`Stuffer::feed`], but stops after the first line end written.
    /// Returns how many bytes of `input` were used and, if a line ended,
    /// whether it was empty (nothing between its start and its end).
    pub fn feed_line(&mut self, input: &[u8], out: &mut Vec<u8>) -> (usize, Option<bool>) {
        let mut i = 0;
        if self.state == StuffState::AfterCr {
            match input.first() {
                None => return (0, None),
                Some(b'\n') => i = 1,
                Some(_) => {}
            }
            self.state = StuffState::LineStart;
        }
        let mut empty = self.state == StuffState::LineStart;
        if empty && input.get(i) == Some(&b'.') {
            out.extend_from_slice(b"..");
            self.state = StuffState::Middle;
            empty = false;
            i += 1;
        }
        let rest = &input[i..];
        match memchr::memchr2(b'\r', b'\n', rest) {
            Some(p) => {
                out.extend_from_slice(&rest[..p]);
                out.extend_from_slice(b"\r\n");
                self.state = if rest[p] == b'\r' {
                    StuffState::AfterCr
                } else {
                    StuffState::LineStart
                };
                (i + p + 1, Some(empty && p == 0))
            }
            None => {
                out.extend_from_slice(rest);
                if !rest.is_empty() {
                    self.state = StuffState::Middle;
                }
                (input.len(), None)
            }
        }
    }

    /// Ends the last line if it has no line end yet, then writes the
    /// terminating `.` CRLF.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.state == StuffState::Middle {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        self.state = StuffState::LineStart;
    }
}

/// Where a [`StrictUnstuffer`] is inside the current line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StrictState {
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

/// The SMTP server's reader of DATA (RFC 5321 sections 4.1.1.4, 4.5.2),
/// by rules that leave no room for "SMTP smuggling":
///
/// - the data ends only at `CRLF . CRLF` (the first CRLF may be the one
///   that ended the DATA command, if it did end in CRLF);
/// - a `.` line after a bare LF (`\n.\r\n`, `\n.\n`) or after a bare CR
///   (`\r.\r\n`) never ends it, and neither does `\r\n.\n`;
/// - a leading dot is removed only at the start of a line that follows a
///   CRLF; lines after a bare LF are kept as they came;
/// - a bare LF is stored as CRLF; a bare CR inside a line is kept.
#[derive(Clone, Debug)]
pub struct StrictUnstuffer {
    state: StrictState,
    done: bool,
}

impl StrictUnstuffer {
    /// A reader positioned just after a line that ended in CRLF
    /// (`after_crlf`) or in a bare LF.
    pub fn new(after_crlf: bool) -> Self {
        StrictUnstuffer {
            state: StrictState::LineStart { crlf: after_crlf },
            done: false,
        }
    }

    /// Whether the terminating `CRLF . CRLF` has been seen.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Consumes bytes from `input`, appending message content to `out`.
    /// Returns how many were used: all of them unless the end of the data
    /// was found, in which case the rest follows the data.
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
        use StrictState::*;
        self.state = match (self.state, b) {
            (LineStart { crlf: true }, b'.') => Dot,
            (LineStart { .. }, b'\r') => Cr,
            (LineStart { .. }, b'\n') => {
                out.extend_from_slice(b"\r\n");
                LineStart { crlf: false }
            }
            (LineStart { .. }, b) => {
                out.push(b);
                Middle
            }
            (Dot, b'\r') => DotCr,
            (Dot, b'\n') => {
                // A lone dot ended by a bare LF: not the terminator, and not
                // stuffing either (there is nothing after the dot).
                out.extend_from_slice(b".\r\n");
                LineStart { crlf: false }
            }
            (Dot, b) => {
                // Dot-stuffing: the leading dot is dropped.
                out.push(b);
                Middle
            }
            (DotCr, b'\n') => {
                self.done = true;
                LineStart { crlf: true }
            }
            (DotCr, b) => {
                // `.` CR then something else: the dot was stuffing and the
                // CR is pending.
                self.state = Cr;
                self.byte(b, out);
                return;
            }
            (Middle, b'\r') => Cr,
            (Middle, b'\n') => {
                out.extend_from_slice(b"\r\n");
                LineStart { crlf: false }
            }
            (Middle, b) => {
                out.push(b);
                Middle
            }
            (Cr, b'\n') => {
                out.extend_from_slice(b"\r\n");
                LineStart { crlf: true }
            }
            (Cr, b'\r') => {
                out.push(b'\r');
                Cr
            }
            (Cr, b) => {
                out.push(b'\r');
                out.push(b);
                Middle
            }
        };
    }
}

/// A limit a [`LenientUnstuffer`] enforces was passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// A line was longer than this many bytes.
    Line(u64),
    /// The body was longer than this many bytes.
    Total(u64),
}

/// Where a [`LenientUnstuffer`] is inside the current line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LenientState {
    /// At the first octet of a line.
    LineStart,
    /// A line began with the termination octet `.`, which was dropped.
    Dot,
    /// A line began with `.` followed by CR.
    DotCr,
    /// Inside a line.
    Mid,
    /// The terminating `.` line has been read.
    Done,
}

/// The POP3 client's reader of a multi-line body (RFC 1939 section 3),
/// bounded: lines end at LF, a line beginning with `.` loses that `.`, and
/// a line that is just `.` (CRLF, or a bare LF from lenient servers) ends
/// the body. Everything else, bare CRs included, is kept as it came.
#[derive(Clone, Debug)]
pub struct LenientUnstuffer {
    state: LenientState,
    max_line: u64,
    max_total: u64,
    line_len: u64,
    total: u64,
}

impl LenientUnstuffer {
    /// A reader at the start of a body, refusing lines longer than
    /// `max_line` bytes (line end included) and bodies longer than
    /// `max_total` bytes.
    pub fn new(max_line: u64, max_total: u64) -> Self {
        LenientUnstuffer {
            state: LenientState::LineStart,
            max_line,
            max_total,
            line_len: 0,
            total: 0,
        }
    }

    /// Body bytes produced so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Whether the terminating line has been read.
    pub fn is_done(&self) -> bool {
        self.state == LenientState::Done
    }

    /// Consumes body bytes from `input`, appending unstuffed bytes to `out`;
    /// stops right after the terminating line. Returns how many bytes were
    /// used.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, Overflow> {
        use LenientState::*;
        let mut i = 0;
        while i < input.len() {
            match self.state {
                Done => break,
                LineStart => {
                    if input[i] == b'.' {
                        i += 1;
                        self.state = Dot;
                        self.line_len = 1;
                    } else {
                        self.state = Mid;
                        self.line_len = 0;
                    }
                }
                Dot => match input[i] {
                    b'\r' => {
                        i += 1;
                        self.state = DotCr;
                    }
                    b'\n' => {
                        i += 1;
                        self.state = Done;
                    }
                    _ => self.state = Mid,
                },
                DotCr => {
                    if input[i] == b'\n' {
                        i += 1;
                        self.state = Done;
                    } else {
                        // ".\r" followed by more: a stuffed line holding a CR.
                        self.count(1)?;
                        out.push(b'\r');
                        self.state = Mid;
                    }
                }
                Mid => {
                    // Take this line and every following one that does not
                    // start with `.` as one run: checked line by line, but
                    // copied to `out` at once.
                    let rest = &input[i..];
                    let mut run = 0;
                    let mut ended = false;
                    while let Some(pos) = memchr::memchr(b'\n', &rest[run..]) {
                        self.count(pos as u64 + 1)?;
                        self.line_len = 0;
                        run += pos + 1;
                        if rest.get(run).is_none_or(|&b| b == b'.') {
                            ended = true;
                            break;
                        }
                    }
                    if !ended {
                        self.count((rest.len() - run) as u64)?;
                        run = rest.len();
                    }
                    out.extend_from_slice(&rest[..run]);
                    i += run;
                    if ended {
                        self.state = LineStart;
                    }
                }
            }
        }
        Ok(i)
    }

    /// Counts `n` more bytes of the current line against the limits.
    fn count(&mut self, n: u64) -> Result<(), Overflow> {
        self.line_len += n;
        self.total += n;
        if self.line_len > self.max_line {
            return Err(Overflow::Line(self.max_line));
        }
        if self.total > self.max_total {
            return Err(Overflow::Total(self.max_total));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuff(input: &[u8]) -> Vec<u8> {
        let mut s = Stuffer::new();
        let mut out = Vec::new();
        s.feed(input, &mut out);
        s.finish(&mut out);
        out
    }

    /// (content, used, done) of the strict SMTP reader after a CRLF.
    fn strict(input: &[u8]) -> (Vec<u8>, usize, bool) {
        let mut r = StrictUnstuffer::new(true);
        let mut out = Vec::new();
        let used = r.feed(input, &mut out);
        (out, used, r.is_done())
    }

    /// (content, used, done) of the lenient POP3 reader.
    fn lenient(input: &[u8]) -> (Vec<u8>, usize, bool) {
        let mut r = LenientUnstuffer::new(1 << 20, 1 << 30);
        let mut out = Vec::new();
        let used = r.feed(input, &mut out).unwrap();
        (out, used, r.is_done())
    }

    /// `raw` with every line end (CRLF, LF, CR) written CRLF, the last
    /// line ended.
    fn crlf(raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < raw.len() {
            match raw[i] {
                b'\r' | b'\n' => {
                    if raw[i] == b'\r' && raw.get(i + 1) == Some(&b'\n') {
                        i += 1;
                    }
                    out.extend_from_slice(b"\r\n");
                }
                b => out.push(b),
            }
            i += 1;
        }
        if !out.is_empty() && !out.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// What each side does with each way of writing (or faking) an end of
    /// data, as message content followed by the real terminator. Columns:
    /// the message, what the stuffer sends for it, whether the strict SMTP
    /// reader / the lenient POP3 reader stop early when fed the raw message
    /// followed by `.\r\n` (true: the raw bytes end the data there).
    #[test]
    fn smuggling_table() {
        type Row = (&'static [u8], &'static [u8], bool, bool);
        let table: &[Row] = &[
            (b"a\r\n.\r\nX", b"a\r\n..\r\nX\r\n.\r\n", true, true),
            (b"a\n.\nX", b"a\r\n..\r\nX\r\n.\r\n", false, true),
            (b"a\n.\r\nX", b"a\r\n..\r\nX\r\n.\r\n", false, true),
            (b"a\r.\rX", b"a\r\n..\r\nX\r\n.\r\n", false, false),
            (b"a\r.\r\nX", b"a\r\n..\r\nX\r\n.\r\n", false, false),
            (b"a\r\n.\nX", b"a\r\n..\r\nX\r\n.\r\n", false, true),
            (b"a\r\n.\rX", b"a\r\n..\r\nX\r\n.\r\n", false, false),
            (b"a\r\r\n.\r\nX", b"a\r\n\r\n..\r\nX\r\n.\r\n", true, true),
            (b"a\n\r.\r\nX", b"a\r\n\r\n..\r\nX\r\n.\r\n", false, false),
            (b".\r\nX", b"..\r\nX\r\n.\r\n", true, true),
            (b".\nX", b"..\r\nX\r\n.\r\n", false, true),
            (b"..\r\nX", b"...\r\nX\r\n.\r\n", false, false),
            (b"a.\r\n .\r\nX", b"a.\r\n .\r\nX\r\n.\r\n", false, false),
        ];
        for &(raw, sent, strict_stops, lenient_stops) in table {
            let show = String::from_utf8_lossy(raw);
            assert_eq!(stuff(raw), sent, "stuffing {show:?}");
            let terminated = [raw, b"\r\n.\r\n"].concat();
            // Raw bytes: does the fake mark end the data before the real one?
            let (_, used, done) = strict(&terminated);
            assert!(done, "strict never ended {show:?}");
            assert_eq!(used < terminated.len(), strict_stops, "strict {show:?}");
            let (_, used, done) = lenient(&terminated);
            assert!(done, "lenient never ended {show:?}");
            assert_eq!(used < terminated.len(), lenient_stops, "lenient {show:?}");
            // Stuffed: both readers stop exactly at its end, and agree.
            let (smtp, used, done) = strict(sent);
            assert!(done && used == sent.len(), "strict on stuffed {show:?}");
            let (pop3, used, done) = lenient(sent);
            assert!(done && used == sent.len(), "lenient on stuffed {show:?}");
            assert_eq!(smtp, pop3, "readers disagree on {show:?}");
            assert_eq!(smtp, crlf(raw), "content of {show:?}");
        }
    }

    #[test]
    fn stuffer_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b".\r\n"),
            (b"hi", b"hi\r\n.\r\n"),
            (b"hi\r\n", b"hi\r\n.\r\n"),
            (b".", b"..\r\n.\r\n"),
            (b"a\r\r\nb", b"a\r\n\r\nb\r\n.\r\n"),
            (b"..x\r\n", b"...x\r\n.\r\n"),
            (b"x\r", b"x\r\n.\r\n"),
            (b"\n", b"\r\n.\r\n"),
            (b"\r", b"\r\n.\r\n"),
            (b"\r\n\n\r", b"\r\n\r\n\r\n.\r\n"),
        ];
        for (input, expected) in cases {
            assert_eq!(stuff(input), *expected, "{input:?}");
        }
    }

    #[test]
    fn feed_line_reports_each_line_and_emptiness() {
        let mut s = Stuffer::new();
        let mut out = Vec::new();
        let mut input: &[u8] = b"a\r\n\r\r\n.\n\nb";
        let mut ends = Vec::new();
        while !input.is_empty() {
            let (used, end) = s.feed_line(input, &mut out);
            input = &input[used..];
            ends.extend(end);
        }
        assert_eq!(ends, [false, true, true, false, true]);
        assert_eq!(out, b"a\r\n\r\n\r\n..\r\n\r\nb");
    }

    #[test]
    fn strict_rules() {
        assert_eq!(strict(b".\r\n"), (Vec::new(), 3, true));
        let (out, _, done) = strict(b"..\r\n...x\r\n.a\r\n a.\r\n..\r\n.\r\n");
        assert!(done);
        assert_eq!(out, b".\r\n..x\r\na\r\n a.\r\n.\r\n");
        assert_eq!(strict(b"a\n.\r\nb\r\n").0, b"a\r\n.\r\nb\r\n");
        assert_eq!(strict(b"a\r\n.\rb\r\n").0, b"a\r\n\rb\r\n");
        assert_eq!(strict(b"a\nb\r\nc\rd\r\r\n").0, b"a\r\nb\r\nc\rd\r\r\n");
        // After a bare LF, a `.` line at once is content.
        let mut r = StrictUnstuffer::new(false);
        let mut out = Vec::new();
        assert_eq!(r.feed(b".\r\nX\r\n.\r\n", &mut out), 9);
        assert_eq!(out, b".\r\nX\r\n");
    }

    #[test]
    fn lenient_limits() {
        let mut r = LenientUnstuffer::new(10, 1 << 20);
        assert_eq!(
            r.feed(b"0123456789abc\r\n", &mut Vec::new()),
            Err(Overflow::Line(10))
        );
        let mut r = LenientUnstuffer::new(100, 8);
        assert_eq!(
            r.feed(b"abc\r\ndef\r\n", &mut Vec::new()),
            Err(Overflow::Total(8))
        );
    }

    #[test]
    fn every_side_is_chunk_size_invariant() {
        let input: &[u8] =
            b"From: a\r\n\r\n..x\n.\r\n\r.\r\n.\n\r\n..\r\nend\r\r\n.\rz\r\n\r\n.\r\nNEXT\r\n";
        let whole = (stuff(input), strict(input), lenient(input));
        for size in 1..=input.len() {
            let mut s = Stuffer::new();
            let mut st = StrictUnstuffer::new(true);
            let mut le = LenientUnstuffer::new(1 << 20, 1 << 30);
            let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
            let (mut used_b, mut used_c) = (0, 0);
            for chunk in input.chunks(size) {
                s.feed(chunk, &mut a);
                if !st.is_done() {
                    used_b += st.feed(chunk, &mut b);
                }
                if !le.is_done() {
                    used_c += le.feed(chunk, &mut c).unwrap();
                }
            }
            s.finish(&mut a);
            assert_eq!(a, whole.0, "stuffer, chunk size {size}");
            assert_eq!((b, used_b, st.is_done()), whole.1, "strict, {size}");
            assert_eq!((c, used_c, le.is_done()), whole.2, "lenient, {size}");
        }
    }
}
