//! The part limit: how many parts of one message are decoded.
//!
//! A message of a few megabytes can hold a hundred thousand tiny parts;
//! decoding all of them would write as many files and hold every parsed
//! part in memory at once. Before the MIME parser runs, [`cut_after_parts`]
//! finds where the part after twice the number allowed begins (room for
//! multipart containers, which are not counted), so only the parts up to
//! there are parsed at all; the walk over the parsed parts stops at the
//! limit itself ([`super::decode::decode_limited`]).

use std::collections::HashSet;

/// The number of parts decoded per message unless told otherwise.
pub const DEFAULT_MAX_PARTS: usize = 1000;

/// How much of one message is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// At most this many parts (multipart containers not counted) are
    /// listed and written; the rest are left out with a warning.
    pub max_parts: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_parts: DEFAULT_MAX_PARTS,
        }
    }
}

/// The warning recorded when parts were left out.
pub fn left_out_warning(max_parts: usize) -> String {
    format!(
        "the message has more than {max_parts} parts: only the first {max_parts} are decoded, \
         the rest are left out (the message itself is kept whole)"
    )
}

/// The length of `raw` to parse so that at most `max_parts` parts begin in
/// it: the offset of the line that opens part `max_parts + 1`, counting the
/// delimiter lines (RFC 2046 section 5.1.1) of every boundary declared
/// anywhere in the message; `None` when there are not that many parts.
///
/// One pass over the lines, with a set lookup per line that starts with
/// `--`: linear in the size of the message. Taking any `boundary=` seen as
/// declared can only make the count larger, never let more parts through.
pub fn cut_after_parts(raw: &[u8], max_parts: usize) -> Option<usize> {
    let mut boundaries: HashSet<&[u8]> = HashSet::new();
    let mut opened = 0usize;
    let mut start = 0usize;
    while start < raw.len() {
        let end = memchr::memchr(b'\n', &raw[start..]).map_or(raw.len(), |i| start + i + 1);
        let line = trim_line_end(&raw[start..end]);
        if let Some(rest) = line.strip_prefix(b"--") {
            if !boundaries.is_empty() && is_opening_delimiter(rest, &boundaries) {
                opened += 1;
                if opened > max_parts {
                    return Some(start);
                }
            }
        }
        declared_boundaries(line, &mut boundaries);
        start = end;
    }
    None
}

/// `raw` up to `cut` (the start of a delimiter line, as returned by
/// [`cut_after_parts`]), then the close delimiter of that boundary.
pub fn closed_at(raw: &[u8], cut: usize) -> Vec<u8> {
    let rest = &raw[cut.min(raw.len())..];
    let line = trim_trailing_space(trim_line_end(
        &rest[..memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1)],
    ));
    let mut out = Vec::with_capacity(cut + line.len() + 4);
    out.extend_from_slice(&raw[..cut]);
    out.extend_from_slice(line);
    out.extend_from_slice(b"--\r\n");
    out
}

/// Whether `rest` (a line after its leading `--`) opens a part of one of
/// `boundaries`: the boundary, then only white space (a close delimiter
/// `--boundary--` opens nothing, unless `boundary--` is a boundary too).
fn is_opening_delimiter(rest: &[u8], boundaries: &HashSet<&[u8]>) -> bool {
    boundaries.contains(trim_trailing_space(rest))
}

/// Adds the value of every `boundary=` parameter in `line` to `out`.
fn declared_boundaries<'a>(line: &'a [u8], out: &mut HashSet<&'a [u8]>) {
    const NAME: &[u8] = b"boundary";
    let mut from = 0;
    while let Some(i) = memchr::memchr2(b'b', b'B', &line[from..]) {
        let at = from + i;
        from = at + 1;
        let Some(candidate) = line.get(at..at + NAME.len()) else {
            return;
        };
        if !candidate.eq_ignore_ascii_case(NAME) {
            continue;
        }
        let mut j = at + NAME.len();
        while line.get(j).is_some_and(|b| *b == b' ' || *b == b'\t') {
            j += 1;
        }
        if line.get(j) != Some(&b'=') {
            continue;
        }
        j += 1;
        while line.get(j).is_some_and(|b| *b == b' ' || *b == b'\t') {
            j += 1;
        }
        let value = if line.get(j) == Some(&b'"') {
            let body = &line[j + 1..];
            &body[..memchr::memchr(b'"', body).unwrap_or(body.len())]
        } else {
            let body = &line[j..];
            let len = body
                .iter()
                .position(|b| *b == b';' || b.is_ascii_whitespace())
                .unwrap_or(body.len());
            &body[..len]
        };
        let value = trim_trailing_space(value);
        if !value.is_empty() {
            out.insert(value);
        }
    }
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim_trailing_space(mut s: &[u8]) -> &[u8] {
    while let Some((last, rest)) = s.split_last() {
        if *last == b' ' || *last == b'\t' {
            s = rest;
        } else {
            break;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(parts: usize) -> Vec<u8> {
        let mut raw =
            b"Subject: x\r\nContent-Type: multipart/mixed;\r\n boundary=\"b 1\"\r\n\r\n".to_vec();
        for i in 0..parts {
            raw.extend_from_slice(format!("--b 1\r\n\r\npart {i}\r\n").as_bytes());
        }
        raw.extend_from_slice(b"--b 1--\r\n");
        raw
    }

    #[test]
    fn cuts_before_the_first_part_too_many() {
        let raw = message(5);
        assert_eq!(cut_after_parts(&raw, 5), None);
        let cut = cut_after_parts(&raw, 3).unwrap();
        assert!(raw[cut..].starts_with(b"--b 1\r\n\r\npart 3\r\n"));
        let closed = closed_at(&raw, cut);
        assert!(closed.ends_with(b"part 2\r\n--b 1--\r\n"));
        assert_eq!(
            cut_after_parts(&raw, 0).map(|c| &raw[c..c + 5]),
            Some(&b"--b 1"[..])
        );
    }

    #[test]
    fn close_delimiters_and_undeclared_lines_open_nothing() {
        let raw = b"Subject: x\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n\
--z\r\n\r\n--y\r\n--z--\r\n--zz\r\n";
        assert_eq!(cut_after_parts(raw, 1), None);
        assert!(cut_after_parts(raw, 0).is_some());
        assert_eq!(
            cut_after_parts(b"Subject: x\r\n\r\n--z\r\n--z\r\n", 0),
            None
        );
        // A boundary may itself end in "--"; padding after it is allowed.
        let raw = b"Subject: x\r\nContent-Type: multipart/mixed; boundary=\"a--\"\r\n\r\n\
--a-- \t\r\n\r\none\r\n--a--\r\n\r\ntwo\r\n--a----\r\n";
        assert_eq!(cut_after_parts(raw, 2), None);
        assert!(cut_after_parts(raw, 1).is_some());
    }

    #[test]
    fn nested_boundaries_count_too() {
        let raw = b"Subject: x\r\nContent-Type: multipart/mixed; BOUNDARY=outer\r\n\r\n\
--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n\
--inner\r\n\r\na\r\n--inner\r\n\r\nb\r\n--inner--\r\n--outer--\r\n";
        assert_eq!(cut_after_parts(raw, 3), None);
        let cut = cut_after_parts(raw, 2).unwrap();
        assert!(raw[cut..].starts_with(b"--inner\r\n\r\nb"));
    }
}
