//! `--list`: one row per message with the header fields from `TOP n 0`,
//! decoded (RFC 2047 words and legacy charsets through mail-parser) and made
//! safe for the terminal, or the same rows as JSON.

use std::io::Write;

use mail_parser::MessageParser;
use serde::Serialize;

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

/// Fills the header fields of a row from the header block of a message.
pub fn decode_headers(row: &mut Row, headers: &[u8]) {
    let Some(message) = MessageParser::default().parse_headers(headers) else {
        return;
    };
    row.date = message.date().map(|d| d.to_rfc3339());
    row.from =
        message
            .from()
            .and_then(|a| a.first())
            .map(|addr| match (addr.name(), addr.address()) {
                (Some(name), Some(address)) if !name.is_empty() => format!("{name} <{address}>"),
                (_, Some(address)) => address.to_string(),
                (Some(name), None) => name.to_string(),
                (None, None) => String::new(),
            });
    row.subject = message.subject().map(str::to_string);
}

/// Prints the rows as an aligned table with terminal controls neutralised.
pub fn print_table(rows: &[Row], out: &mut impl Write) -> std::io::Result<()> {
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let opt = |v: &Option<String>| v.as_deref().map_or("-".to_string(), cell);
            [
                r.number.to_string(),
                r.size.to_string(),
                opt(&r.uidl),
                r.date.as_deref().map_or("-".to_string(), short_date),
                opt(&r.from),
                opt(&r.subject),
            ]
        })
        .collect();
    let header = ["NUM", "SIZE", "UIDL", "DATE", "FROM", "SUBJECT"];
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    // The last two columns are not padded; long senders stay readable.
    let from_width = widths[4].min(40);
    let line = |cols: [&str; 6], out: &mut dyn Write| -> std::io::Result<()> {
        writeln!(
            out,
            "{:>w0$}  {:>w1$}  {:<w2$}  {:<w3$}  {:<w4$}  {}",
            cols[0],
            cols[1],
            cols[2],
            cols[3],
            cols[4],
            cols[5],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = from_width,
        )
    };
    line(header, out)?;
    for row in &cells {
        line([&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]], out)?;
    }
    Ok(())
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
