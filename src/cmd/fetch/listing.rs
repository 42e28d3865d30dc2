//! `--list`: one row per message with the header fields from `TOP n 0`,
//! decoded (RFC 2047 words and legacy charsets through mail-parser) and made
//! safe for the terminal, or the same rows as JSON.

use std::borrow::Cow;
use std::io::Write;

use mail_parser::MessageParser;
use serde::Serialize;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::text::printable;

/// One message in the listing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Row {
    /// Message number in this session.
    pub number: u32,
    /// Size in bytes, as LIST announced it.
    pub size: u64,
    /// Unique id, if the server supports UIDL.
    pub uidl: Option<String>,
    /// The Date header as RFC 3339, if present and parseable.
    pub date: Option<String>,
    /// The first From address, as `Name <addr>` or `addr`.
    pub from: Option<String>,
    /// The decoded Subject.
    pub subject: Option<String>,
}

/// The most characters kept of a sender or subject: enough for any real
/// one, and a listing of many messages stays small whatever a server sends.
pub const MAX_FIELD_CHARS: usize = 998;

/// `text` cut to [`MAX_FIELD_CHARS`] characters, ending in `...` when cut.
fn clip(text: String) -> String {
    match text.char_indices().nth(MAX_FIELD_CHARS) {
        Some((end, _)) => format!("{}{ELLIPSIS}", &text[..end]),
        None => text,
    }
}

/// Fills the header fields of a row from the header block of a message.
pub fn decode_headers(row: &mut Row, headers: &[u8]) {
    let Some(message) = MessageParser::default().parse_headers(headers) else {
        return;
    };
    row.date = message.date().map(|d| d.to_rfc3339());
    row.from = message
        .from()
        .and_then(|a| a.first())
        .map(|addr| match (addr.name(), addr.address()) {
            (Some(name), Some(address)) if !name.is_empty() => format!("{name} <{address}>"),
            (_, Some(address)) => address.to_string(),
            (Some(name), None) => name.to_string(),
            (None, None) => String::new(),
        })
        .map(clip);
    row.subject = message.subject().map(|s| clip(s.to_string()));
}

/// The most terminal columns a sender takes in the table; a wider one is cut
/// (the whole of it is in `--json`) so that the subjects stay aligned.
pub const FROM_COLUMNS: usize = 40;

/// Marks text cut short, in the table as in [`MAX_FIELD_CHARS`] clipping.
const ELLIPSIS: &str = "...";

/// Prints the rows as an aligned table with terminal controls neutralised.
///
/// Columns are measured in terminal columns (UAX #11 East Asian Width), so a
/// CJK character counts two and a combining mark none.
pub fn print_table(rows: &[Row], out: &mut impl Write) -> std::io::Result<()> {
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let opt = |v: &Option<String>| v.as_deref().map_or("-".to_string(), cell);
            let from = opt(&r.from);
            [
                r.number.to_string(),
                r.size.to_string(),
                opt(&r.uidl),
                r.date.as_deref().map_or("-".to_string(), short_date),
                fit(&from, FROM_COLUMNS).into_owned(),
                opt(&r.subject),
            ]
        })
        .collect();
    let header = ["NUM", "SIZE", "UIDL", "DATE", "FROM", "SUBJECT"];
    let mut widths = header.map(UnicodeWidthStr::width);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(c.width());
        }
    }
    // The subject, last, is not padded.
    let line = |cols: [&str; 6], out: &mut dyn Write| -> std::io::Result<()> {
        writeln!(
            out,
            "{}{}  {}{}  {}{}  {}{}  {}{}  {}",
            padding(cols[0], widths[0]),
            cols[0],
            padding(cols[1], widths[1]),
            cols[1],
            cols[2],
            padding(cols[2], widths[2]),
            cols[3],
            padding(cols[3], widths[3]),
            cols[4],
            padding(cols[4], widths[4]),
            cols[5],
        )
    };
    line(header, out)?;
    for row in &cells {
        line([&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]], out)?;
    }
    Ok(())
}

/// The spaces that fill `text` out to `columns` terminal columns.
fn padding(text: &str, columns: usize) -> Spaces {
    Spaces(columns.saturating_sub(text.width()))
}

/// Writes that many spaces.
struct Spaces(usize);

impl std::fmt::Display for Spaces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:1$}", "", self.0)
    }
}

/// `text` cut to at most `columns` terminal columns, ending in `...` when
/// cut. A cut never splits a character, nor parts a character from the
/// zero-width ones after it (combining marks, variation selectors, a
/// zero-width joiner) or from the one a zero-width joiner binds it to.
fn fit(text: &str, columns: usize) -> Cow<'_, str> {
    if text.width() <= columns {
        return Cow::Borrowed(text);
    }
    let budget = columns.saturating_sub(ELLIPSIS.len());
    let mut end = 0;
    let mut previous = None;
    for (at, ch) in text.char_indices() {
        let joins_previous = ch.width().unwrap_or(0) == 0 || previous == Some('\u{200d}');
        if !joins_previous {
            if text[..at].width() > budget {
                break;
            }
            end = at;
        }
        previous = Some(ch);
    }
    Cow::Owned(format!("{}{ELLIPSIS}", &text[..end]))
}

fn cell(text: &str) -> String {
    printable(text.as_bytes()).replace('\t', " ")
}

/// `2024-03-01T10:00:00+01:00` shown as `2024-03-01 10:00`.
fn short_date(rfc3339: &str) -> String {
    let shown = match (rfc3339.get(..10), rfc3339.get(11..16)) {
        (Some(day), Some(time)) => format!("{day} {time}"),
        _ => rfc3339.to_string(),
    };
    cell(&shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_encoded_words_and_legacy_charsets() {
        let mut row = Row::default();
        decode_headers(
            &mut row,
            b"Date: Fri, 01 Mar 2024 10:00:00 +0100\r\nFrom: =?gb18030?B?1cXI/Q==?= <zs@example.cn>\r\nSubject: =?big5?B?pKSk5Q==?= =?iso-2022-jp?B?GyRCRnxLXDhsGyhC?=\r\n\r\n",
        );
        assert_eq!(row.date.as_deref(), Some("2024-03-01T10:00:00+01:00"));
        assert_eq!(row.from.as_deref(), Some("张三 <zs@example.cn>"));
        assert_eq!(row.subject.as_deref(), Some("中文日本語"));
    }

    /// A header of a quarter megabyte gives a row of a few kilobytes.
    #[test]
    fn huge_subject_and_sender_are_clipped() {
        let mut header = format!("From: {}@example.org\r\nSubject:", "a".repeat(100_000));
        for _ in 0..30_000 {
            header.push_str(" word");
        }
        header.push_str("\r\n\r\n");
        let mut row = Row::default();
        decode_headers(&mut row, header.as_bytes());
        let subject = row.subject.unwrap();
        assert_eq!(subject.chars().count(), MAX_FIELD_CHARS + 3);
        assert!(subject.starts_with("word word") && subject.ends_with("..."));
        assert!(row.from.unwrap().chars().count() <= MAX_FIELD_CHARS + 3);
    }

    fn row(number: u32, uidl: &str, from: &str, subject: &str) -> Row {
        Row {
            number,
            size: 1000 * u64::from(number),
            uidl: Some(uidl.into()),
            date: Some("2024-03-01T10:00:00+01:00".into()),
            from: Some(from.into()),
            subject: Some(subject.into()),
        }
    }

    /// The terminal column where `needle` starts in `line`.
    fn column_of(line: &str, needle: &str) -> usize {
        let at = line
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in {line:?}"));
        line[..at].width()
    }

    #[test]
    fn table_aligns_wide_and_combining_characters_by_display_width() {
        let long_cjk_sender = format!("x{} <zhang@example.cn>", "张".repeat(30));
        let rows = [
            row(1, "a", "a@b", "plain"),
            row(2, "uid-二", "张三 <zs@example.cn>", "中文日本語"),
            // "Zoë" and "Café" spelt with combining marks: one column each.
            row(3, "c", "Zoe\u{308} <zoe@example.org>", "Cafe\u{301} menu"),
            row(4, "d", &long_cjk_sender, "after a long sender"),
            row(
                5,
                "e",
                "\u{ff21}\u{ff22} <fullwidth@example.org>",
                "ｆｕｌｌ",
            ),
        ];
        let mut out = Vec::new();
        print_table(&rows, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6, "{text}");
        let from_column = column_of(lines[0], "FROM");
        let subject_column = column_of(lines[0], "SUBJECT");
        let date_column = column_of(lines[0], "DATE");
        let senders = ["a@b", "张三", "Zoe\u{308}", "x张张", "\u{ff21}"];
        let subjects = [
            "plain",
            "中文日本語",
            "Cafe\u{301} menu",
            "after",
            "ｆｕｌｌ",
        ];
        for (line, (sender, subject)) in lines[1..].iter().zip(senders.iter().zip(subjects)) {
            assert_eq!(column_of(line, "2024-03-01"), date_column, "{text}");
            assert_eq!(column_of(line, sender), from_column, "{text}");
            assert_eq!(column_of(line, subject), subject_column, "{text}");
        }
        // The widest sender fills the column exactly, cut with an ellipsis.
        assert_eq!(subject_column - from_column, FROM_COLUMNS + 2, "{text}");
        assert!(
            lines[4].contains(&format!("x{}...  after", "张".repeat(18))),
            "{text}"
        );
        // NUM and SIZE are right-aligned.
        assert!(lines[5].starts_with("  5  5000  e       2024"), "{text}");
    }

    #[test]
    fn fit_cuts_by_display_width_between_characters() {
        // Exactly as wide as allowed: kept whole, without a copy.
        assert!(matches!(fit("中文日本語", 10), Cow::Borrowed("中文日本語")));
        assert_eq!(fit("中文日本語", 9), "中文日...");
        // Half a double-width character does not fit: one column is left empty.
        assert_eq!(fit("中文日本語", 8), "中文...");
        assert_eq!(fit("中文日本語", 4), "...");
        // Combining marks stay with their base character.
        let accents = "e\u{301}".repeat(10);
        assert_eq!(accents.width(), 10);
        assert!(matches!(fit(&accents, 10), Cow::Borrowed(_)));
        assert_eq!(fit(&accents, 6), "e\u{301}e\u{301}e\u{301}...");
        assert_eq!(fit("ab\u{301}cdefg", 5), "ab\u{301}...");
        assert_eq!(fit("ab\u{301}cdefg", 4), "a...");
        assert_eq!(
            fit("ab\u{301}\u{302}\u{303}cdefg", 5),
            "ab\u{301}\u{302}\u{303}..."
        );
        // Nor is an emoji sequence parted at its zero-width joiner.
        let coder = "\u{1f469}\u{200d}\u{1f4bb}";
        let text = format!("{coder}{coder}{coder}{coder}{coder}{coder}");
        for columns in 3..text.width() {
            let cut = fit(&text, columns);
            assert!(cut.width() <= columns, "{columns}: {cut}");
            let kept = cut.strip_suffix(ELLIPSIS).unwrap();
            assert_eq!(kept.len() % coder.len(), 0, "{columns}: {cut:?}");
        }
        // Every cut is a prefix of whole characters, no wider than asked.
        let mixed = "Zoe\u{308} 张三 <zs@example.cn> ｆｕｌｌ";
        for columns in 3..=mixed.width() {
            let cut = fit(mixed, columns);
            assert!(cut.width() <= columns, "{columns}: {cut}");
            let kept = cut.strip_suffix(ELLIPSIS).unwrap_or(&cut);
            assert!(mixed.starts_with(kept), "{columns}: {cut}");
            assert!(
                cut.width() + 1 >= columns,
                "at most one column lost: {columns}: {cut}"
            );
        }
    }

    #[test]
    fn table_neutralises_controls() {
        let rows = [Row {
            number: 1,
            size: 42,
            uidl: Some("u1".into()),
            date: Some("2024-03-01T10:00:00+01:00".into()),
            from: Some("a@b".into()),
            subject: Some("hi \x1b[2J there\u{202e}".into()),
        }];
        let mut out = Vec::new();
        print_table(&rows, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('\x1b'));
        assert!(text.contains("hi \\x1b[2J there\\u{202e}"));
        assert!(text.contains("2024-03-01 10:00"));
        assert!(text.starts_with("NUM"));
    }
}
