//! Dot-stuffing (RFC 5321 section 4.5.2, RFC 1939 section 3), written once
//! for every side that sends or reads message data.
//!
//! - [`Stuffer`] sends: SMTP DATA (client) and POP3 RETR/TOP (server).
//!   Every LF it writes is part of a CRLF, and a line starting with `.`
//!   gets another, so a message cannot carry an end-of-data mark
//!   (`\n.\n`, `\r\n.\n`, ...) past it. A bare CR is a line end too (sent
//!   as CRLF) for SMTP, and data for POP3, where sizes are promised.
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
    /// Just after a CR: written as CRLF already when bare CRs end lines
    /// (an LF now belongs to it), written as CR alone when they are data
    /// (an LF now makes it a CRLF).
    AfterCr,
}

/// Streaming dot-stuffer: every LF not after a CR becomes CRLF, a line
/// starting with `.` gets another, and [`Stuffer::finish`] ends the data
/// with `.` CRLF.
///
/// What a bare CR (one not followed by LF) is, is the one choice:
/// - [`Stuffer::new`], for SMTP DATA: a line end, sent as CRLF. RFC 5321
///   section 2.3.8 allows CR only in CRLF, and receivers differ on what a
///   bare CR is: normalising it leaves no `\r.\r` to smuggle.
/// - [`Stuffer::keeping_bare_cr`], for POP3 RETR/TOP: data, sent as it is
///   stored, so that the size announced by LIST (the stored size, plus one
///   per bare LF) is the size sent (RFC 1939 section 5). POP3 readers end
///   lines at LF, and every LF goes out as CRLF with the line after it
///   stuffed, so they all see the same lines.
#[derive(Clone, Debug)]
pub struct Stuffer {
    state: StuffState,
    keep_bare_cr: bool,
    /// With bare CRs kept: whether the pending CR began its line.
    cr_at_start: bool,
}

impl Default for Stuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl Stuffer {
    /// A stuffer at the start of a message that sends a bare CR as CRLF.
    pub fn new() -> Self {
        Stuffer {
            state: StuffState::LineStart,
            keep_bare_cr: false,
            cr_at_start: false,
        }
    }

    /// A stuffer at the start of a message that sends a bare CR as data.
    pub fn keeping_bare_cr() -> Self {
        Stuffer {
            keep_bare_cr: true,
            ..Self::new()
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

    /// Like [`Stuffer::feed`], but stops at the first line end written (or
    /// sooner). Returns how many bytes of `input` were used and, if a line
    /// ended, whether it was empty (nothing between its start and its end).
    pub fn feed_line(&mut self, input: &[u8], out: &mut Vec<u8>) -> (usize, Option<bool>) {
        let mut i = 0;
        if self.state == StuffState::AfterCr {
            let first = match input.first() {
                None => return (0, None),
                Some(&b) => b,
            };
            if self.keep_bare_cr {
                if first == b'\n' {
                    out.push(b'\n');
                    self.state = StuffState::LineStart;
                    return (1, Some(self.cr_at_start));
                }
                // The CR was data.
                self.state = StuffState::Middle;
            } else {
                if first == b'\n' {
                    i = 1;
                }
                self.state = StuffState::LineStart;
            }
        }
        let mut empty = self.state == StuffState::LineStart;
        if empty && input.get(i) == Some(&b'.') {
            out.extend_from_slice(b"..");
            self.state = StuffState::Middle;
            empty = false;
            i += 1;
        }
        let rest = &input[i..];
        let p = match memchr::memchr2(b'\r', b'\n', rest) {
            Some(p) => p,
            None => {
                out.extend_from_slice(rest);
                if !rest.is_empty() {
                    self.state = StuffState::Middle;
                }
                return (input.len(), None);
            }
        };
        out.extend_from_slice(&rest[..p]);
        let used = i + p + 1;
        let empty = empty && p == 0;
        if rest[p] == b'\n' {
            out.extend_from_slice(b"\r\n");
            self.state = StuffState::LineStart;
            return (used, Some(empty));
        }
        self.state = StuffState::AfterCr;
        if self.keep_bare_cr {
            out.push(b'\r');
            self.cr_at_start = empty;
            (used, None)
        } else {
            out.extend_from_slice(b"\r\n");
            (used, Some(empty))
        }
    }

    /// Ends the last line if it has no line end yet, then writes the
    /// terminating `.` CRLF.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        match self.state {
            StuffState::Middle => out.extend_from_slice(b"\r\n"),
            StuffState::AfterCr if self.keep_bare_cr => out.push(b'\n'),
            _ => {}
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

    fn stuff_keeping_cr(input: &[u8]) -> Vec<u8> {
        let mut s = Stuffer::keeping_bare_cr();
        let mut out = Vec::new();
        s.feed(input, &mut out);
        s.finish(&mut out);
        out
    }

    /// `raw` with every LF not after a CR written CRLF, the last line
    /// ended.
    fn lf_crlf(raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, &b) in raw.iter().enumerate() {
            if b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
                out.push(b'\r');
            }
            out.push(b);
        }
        if out.ends_with(b"\r") {
            out.push(b'\n');
        } else if !out.is_empty() && !out.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
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
    /// data. Columns: the message; what the SMTP client sends for it; what
    /// the POP3 server sends for it (`None`: the same); whether the strict
    /// SMTP reader / the lenient POP3 reader stop early when fed the raw
    /// message followed by CRLF `.` CRLF (true: the raw bytes end the data
    /// there). Both readers stop exactly at the end of both stuffed forms
    /// and agree on their content.
    #[test]
    fn smuggling_table() {
        type Row = (
            &'static [u8],
            &'static [u8],
            Option<&'static [u8]>,
            bool,
            bool,
        );
        let table: &[Row] = &[
            (b"a\r\n.\r\nX", b"a\r\n..\r\nX\r\n.\r\n", None, true, true),
            (b"a\n.\nX", b"a\r\n..\r\nX\r\n.\r\n", None, false, true),
            (b"a\n.\r\nX", b"a\r\n..\r\nX\r\n.\r\n", None, false, true),
            (
                b"a\r.\rX",
                b"a\r\n..\r\nX\r\n.\r\n",
                Some(b"a\r.\rX\r\n.\r\n"),
                false,
                false,
            ),
            (
                b"a\r.\r\nX",
                b"a\r\n..\r\nX\r\n.\r\n",
                Some(b"a\r.\r\nX\r\n.\r\n"),
                false,
                false,
            ),
            (b"a\r\n.\nX", b"a\r\n..\r\nX\r\n.\r\n", None, false, true),
            (
                b"a\r\n.\rX",
                b"a\r\n..\r\nX\r\n.\r\n",
                Some(b"a\r\n..\rX\r\n.\r\n"),
                false,
                false,
            ),
            (
                b"a\r\r\n.\r\nX",
                b"a\r\n\r\n..\r\nX\r\n.\r\n",
                Some(b"a\r\r\n..\r\nX\r\n.\r\n"),
                true,
                true,
            ),
            (
                b"a\n\r.\r\nX",
                b"a\r\n\r\n..\r\nX\r\n.\r\n",
                Some(b"a\r\n\r.\r\nX\r\n.\r\n"),
                false,
                false,
            ),
            (b".\r\nX", b"..\r\nX\r\n.\r\n", None, true, true),
            (b".\nX", b"..\r\nX\r\n.\r\n", None, false, true),
            (b"..\r\nX", b"...\r\nX\r\n.\r\n", None, false, false),
            (
                b"a.\r\n .\r\nX",
                b"a.\r\n .\r\nX\r\n.\r\n",
                None,
                false,
                false,
            ),
            (b"x\r", b"x\r\n.\r\n", None, false, false),
        ];
        for &(raw, sent, pop3_sent, strict_stops, lenient_stops) in table {
            let show = String::from_utf8_lossy(raw);
            assert_eq!(stuff(raw), sent, "stuffing {show:?}");
            let pop3_sent = pop3_sent.unwrap_or(sent);
            assert_eq!(stuff_keeping_cr(raw), pop3_sent, "POP3 stuffing {show:?}");
            for (stuffed, expected) in [(sent, crlf(raw)), (pop3_sent, lf_crlf(raw))] {
                let (smtp, used, done) = strict(stuffed);
                assert!(done && used == stuffed.len(), "strict on {stuffed:?}");
                let (pop3, used, done) = lenient(stuffed);
                assert!(done && used == stuffed.len(), "lenient on {stuffed:?}");
                assert_eq!(smtp, pop3, "readers disagree on {stuffed:?}");
                assert_eq!(smtp, expected, "content of {stuffed:?}");
            }
            let terminated = [raw, b"\r\n.\r\n"].concat();
            // Raw bytes: does the fake mark end the data before the real one?
            let (_, used, done) = strict(&terminated);
            assert!(done, "strict never ended {show:?}");
            assert_eq!(used < terminated.len(), strict_stops, "strict {show:?}");
            let (_, used, done) = lenient(&terminated);
            assert!(done, "lenient never ended {show:?}");
            assert_eq!(used < terminated.len(), lenient_stops, "lenient {show:?}");
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

        // Keeping bare CRs: a line of CRs is not an empty line.
        let mut s = Stuffer::keeping_bare_cr();
        let mut out = Vec::new();
        let mut input: &[u8] = b"a\r\n\r\r\n\r\n.\r\rx\n";
        let mut ends = Vec::new();
        while !input.is_empty() {
            let (used, end) = s.feed_line(input, &mut out);
            input = &input[used..];
            ends.extend(end);
        }
        assert_eq!(ends, [false, false, true, false]);
        assert_eq!(out, b"a\r\n\r\r\n\r\n..\r\rx\r\n");
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
        let kept = stuff_keeping_cr(input);
        for size in 1..=input.len() {
            let mut k = Stuffer::keeping_bare_cr();
            let mut d = Vec::new();
            for chunk in input.chunks(size) {
                k.feed(chunk, &mut d);
            }
            k.finish(&mut d);
            assert_eq!(d, kept, "stuffer keeping CRs, chunk size {size}");
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
