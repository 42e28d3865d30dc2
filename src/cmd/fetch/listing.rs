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

/// How the table is laid out.
pub struct Layout {
    /// Show the UIDL column (`--uidl`).
    pub uidl: bool,
    /// The terminal columns to fit, if known (see [`crate::cmd::terminal`]).
    pub width: Option<usize>,
    /// The zone dates are shown in.
    pub zone: jiff::tz::TimeZone,
}

impl Layout {
    /// The layout for standard output: its width, and the local zone
    /// (`TZ` honoured).
    pub fn for_stdout(uidl: bool) -> Self {
        Layout {
            uidl,
            width: crate::cmd::terminal::columns(std::io::stdout()),
            zone: jiff::tz::TimeZone::system(),
        }
    }

    /// The cells of one row: NUM, SIZE, UIDL (if shown), DATE, FROM and
    /// SUBJECT, uncut.
    fn cells(&self, row: &Row) -> Vec<String> {
        let opt = |v: &Option<String>| v.as_deref().map_or("-".to_string(), cell);
        let mut cells = vec![row.number.to_string(), row.size.to_string()];
        if self.uidl {
            cells.push(opt(&row.uidl));
        }
        let date = row.date.as_deref();
        cells.push(date.map_or("-".to_string(), |d| local_date(d, &self.zone)));
        cells.push(opt(&row.from));
        cells.push(opt(&row.subject));
        cells
    }
}

/// The fewest columns a sender is cut to so that the subject fits.
const MIN_FROM_COLUMNS: usize = 12;

/// Prints the rows as an aligned table with terminal controls neutralised,
/// no wider than `layout.width`: the sender takes at most
/// [`FROM_COLUMNS`], and both it and the subject are cut to fit.
///
/// Columns are measured in terminal columns (UAX #11 East Asian Width), so a
/// CJK character counts two and a combining mark none.
pub fn print_table(rows: &[Row], layout: &Layout, out: &mut impl Write) -> std::io::Result<()> {
    let mut header = vec!["NUM", "SIZE"];
    if layout.uidl {
        header.push("UIDL");
    }
    header.extend(["DATE", "FROM", "SUBJECT"]);
    let cells: Vec<Vec<String>> = rows.iter().map(|r| layout.cells(r)).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(c.width());
        }
    }
    let (from, subject) = (header.len() - 2, header.len() - 1);
    widths[from] = widths[from].min(FROM_COLUMNS);
    if let Some(width) = layout.width {
        // What FROM and SUBJECT share, the two spaces between them aside.
        let fixed: usize = widths[..from].iter().map(|w| w + 2).sum();
        let shared = width.saturating_sub(fixed + 2);
        if widths[from] + widths[subject] > shared {
            widths[from] = (shared * 2 / 5).max(MIN_FROM_COLUMNS).min(widths[from]);
            widths[subject] = shared.saturating_sub(widths[from]).max(ELLIPSIS.len());
        }
    }
    let line = |cols: &[&str], out: &mut dyn Write| -> std::io::Result<()> {
        let mut text = String::new();
        for (i, (col, &width)) in cols.iter().zip(&widths).enumerate() {
            let shown = fit(col, width);
            if i > 0 {
                text.push_str("  ");
            }
            // NUM and SIZE are right-aligned; the subject, last, is not padded.
            if i < 2 {
                text.push_str(&format!("{}{shown}", padding(&shown, width)));
            } else if i == subject {
                text.push_str(&shown);
            } else {
                text.push_str(&format!("{shown}{}", padding(&shown, width)));
            }
        }
        writeln!(out, "{text}")
    };
    line(&header, out)?;
    for row in &cells {
        let cols: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&cols, out)?;
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

/// An RFC 3339 date shown in `zone` as `2024-03-01 10:00`; text that is
/// not such a date is shown as it is.
fn local_date(rfc3339: &str, zone: &jiff::tz::TimeZone) -> String {
    match rfc3339.parse::<jiff::Timestamp>() {
        Ok(at) => at
            .to_zoned_datetime(zone.clone())
            .strftime("%Y-%m-%d %H:%M")
            .to_string(),
        Err(_) => cell(rfc3339),
    }
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

    /// A layout with the UIDL column, no width limit, dates in UTC+01:00.
    fn wide_with_uidl() -> Layout {
        Layout {
            uidl: true,
            width: None,
            zone: jiff::tz::TimeZone::fixed(jiff::tz::offset(1)),
        }
    }

    fn table(rows: &[Row], layout: &Layout) -> String {
        let mut out = Vec::new();
        print_table(rows, layout, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn table_fits_the_width_and_hides_the_uidl_unless_asked() {
        let long_subject = "a subject that goes on and on ".repeat(5);
        let long_sender = "Somebody With A Long Name <somebody.with.a.long.name@example.org>";
        let rows = [
            row(1, "0000000000001a2b3c4d5e6f", long_sender, &long_subject),
            row(
                12,
                "uid-2",
                "张三 <zs@example.cn>",
                "中文日本語中文日本語中文日本語中文日本語",
            ),
        ];
        for width in [60, 80, 100, 132] {
            let layout = Layout {
                width: Some(width),
                ..wide_with_uidl()
            };
            let text = table(
                &rows,
                &Layout {
                    uidl: false,
                    ..layout
                },
            );
            assert!(!text.contains("UIDL") && !text.contains("1a2b3c"), "{text}");
            for line in text.lines() {
                assert!(line.width() <= width, "{width}: {line:?}");
            }
            assert!(text.lines().nth(1).unwrap().ends_with("..."), "{text}");
            let text = table(
                &rows,
                &Layout {
                    uidl: true,
                    ..layout_of(width)
                },
            );
            assert!(text.contains("UIDL") && text.contains("0000000000001a2b3c4d5e6f"));
            // A long UIDL leaves room for the rest from 80 columns on.
            for line in text.lines().filter(|_| width >= 80) {
                assert!(line.width() <= width, "{width}: {line:?}");
            }
        }
        // Without a width, nothing but the sender is cut.
        let text = table(
            &rows,
            &Layout {
                uidl: false,
                ..wide_with_uidl()
            },
        );
        assert!(text.contains(long_subject.as_str()), "{text}");
    }

    fn layout_of(width: usize) -> Layout {
        Layout {
            width: Some(width),
            ..wide_with_uidl()
        }
    }

    #[test]
    fn dates_are_shown_in_the_given_zone() {
        let zone = |hours| jiff::tz::TimeZone::fixed(jiff::tz::offset(hours));
        assert_eq!(
            local_date("2024-03-01T10:00:00+01:00", &zone(1)),
            "2024-03-01 10:00"
        );
        assert_eq!(
            local_date("2024-03-01T10:00:00+01:00", &zone(0)),
            "2024-03-01 09:00"
        );
        assert_eq!(
            local_date("2024-03-01T23:30:00-05:00", &zone(8)),
            "2024-03-02 12:30"
        );
        let tokyo = jiff::tz::TimeZone::get("Asia/Tokyo").unwrap();
        assert_eq!(
            local_date("2024-03-01T10:00:00+01:00", &tokyo),
            "2024-03-01 18:00"
        );
        assert_eq!(local_date("not a date\x1b", &zone(0)), "not a date\\x1b");
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
        let text = table(&rows, &wide_with_uidl());
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
        let text = table(&rows, &wide_with_uidl());
        assert!(!text.contains('\x1b'));
        assert!(text.contains("hi \\x1b[2J there\\u{202e}"));
        assert!(text.contains("2024-03-01 10:00"));
        assert!(text.starts_with("NUM"));
    }
}
