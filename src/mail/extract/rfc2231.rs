//! RFC 2231 parameter continuations (`filename*0*=gb18030''%B1%A8;
//! filename*1*=%B8%E6.txt`), reassembled before the charset is applied.
//!
//! mail-parser decodes each segment on its own, applying the charset of the
//! first one only to that one, so a name split across segments (or in the
//! middle of a multi-byte character) comes out garbled. RFC 2231 section 4.1
//! says the charset given in the first segment applies to the whole value:
//! this module joins the raw bytes of all segments, then converts once.

use mail_parser::decoders::charsets::map::charset_decoder;

/// The value of parameter `name` in a raw header value when it is split into
/// numbered segments (`name*0`, `name*1*`...); `None` when it is not.
pub fn continued_param(raw_value: &[u8], name: &str) -> Option<String> {
    let mut segments: Vec<(u32, bool, Vec<u8>)> = Vec::new();
    for (pname, value) in params(raw_value) {
        let Some(rest) = pname.strip_prefix(name).and_then(|r| r.strip_prefix('*')) else {
            continue;
        };
        let (number, encoded) = match rest.strip_suffix('*') {
            Some(n) => (n, true),
            None => (rest, false),
        };
        let Ok(number) = number.parse::<u32>() else {
            continue;
        };
        segments.push((number, encoded, value));
    }
    if segments.is_empty() {
        return None;
    }
    // A stable sort, then the first of each number kept: linear in the
    // number of segments but for the sort (a hostile header can hold
    // hundreds of thousands).
    segments.sort_by_key(|s| s.0);
    segments.dedup_by_key(|s| s.0);
    let mut charset: Option<String> = None;
    let mut bytes = Vec::new();
    for (i, (_, encoded, value)) in segments.iter().enumerate() {
        let mut value = value.as_slice();
        if i == 0 && *encoded {
            // charset'language'value
            let mut quotes = value
                .iter()
                .enumerate()
                .filter(|(_, &b)| b == b'\'')
                .map(|(i, _)| i);
            if let (Some(q1), Some(q2)) = (quotes.next(), quotes.next()) {
                let cs = String::from_utf8_lossy(&value[..q1]).trim().to_string();
                if !cs.is_empty() {
                    charset = Some(cs);
                }
                value = &value[q2 + 1..];
            }
        }
        if *encoded {
            percent_decode_into(value, &mut bytes);
        } else {
            bytes.extend_from_slice(value);
        }
    }
    let text = match charset
        .as_deref()
        .and_then(|c| charset_decoder(c.as_bytes()))
    {
        Some(convert) => convert(&bytes),
        None => String::from_utf8_lossy(&bytes).into_owned(),
    };
    Some(text)
}

fn percent_decode_into(value: &[u8], out: &mut Vec<u8>) {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'%' {
            if let (Some(h), Some(l)) = (
                value.get(i + 1).copied().and_then(hex),
                value.get(i + 2).copied().and_then(hex),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(value[i]);
        i += 1;
    }
}

/// The `name=value` parameters after the first `;` of a raw header value,
/// names lower-cased, quoted strings unquoted; folding white space removed.
fn params(raw: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut i = match raw.iter().position(|&b| b == b';') {
        Some(p) => p + 1,
        None => return out,
    };
    while i < raw.len() {
        while i < raw.len() && (raw[i].is_ascii_whitespace() || raw[i] == b';') {
            i += 1;
        }
        let start = i;
        while i < raw.len() && raw[i] != b'=' && raw[i] != b';' {
            i += 1;
        }
        let name = String::from_utf8_lossy(&raw[start..i])
            .trim()
            .to_ascii_lowercase();
        if i >= raw.len() || raw[i] == b';' {
            continue;
        }
        i += 1; // '='
        while i < raw.len() && matches!(raw[i], b' ' | b'\t' | b'\r' | b'\n') {
            i += 1;
        }
        let mut value = Vec::new();
        if raw.get(i) == Some(&b'"') {
            i += 1;
            while i < raw.len() && raw[i] != b'"' {
                if raw[i] == b'\\' && i + 1 < raw.len() {
                    i += 1;
                }
                if !matches!(raw[i], b'\r' | b'\n') {
                    value.push(raw[i]);
                }
                i += 1;
            }
            i += 1;
            while i < raw.len() && raw[i] != b';' {
                i += 1;
            }
        } else {
            while i < raw.len() && raw[i] != b';' {
                if !raw[i].is_ascii_whitespace() {
                    value.push(raw[i]);
                }
                i += 1;
            }
        }
        out.push((name, value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charset_applies_to_all_segments() {
        let raw = b" attachment; filename*0*=gb18030''%B1%A8;\r\n filename*1*=%B8%E6.txt";
        assert_eq!(
            continued_param(raw, "filename").as_deref(),
            Some("报告.txt")
        );
    }

    #[test]
    fn split_inside_a_character_and_plain_segments() {
        // U+62A5 in UTF-8 is E6 8A A5: split after its first byte.
        let raw =
            b"attachment; filename*1*=%8A%A5; filename*0*=UTF-8'en'%E6;\r\n\tfilename*2=\".pdf\"";
        assert_eq!(continued_param(raw, "filename").as_deref(), Some("报.pdf"));
    }

    #[test]
    fn not_continued() {
        assert_eq!(
            continued_param(b"attachment; filename=\"a.txt\"", "filename"),
            None
        );
        assert_eq!(
            continued_param(b"attachment; filename*=utf-8''a.txt", "filename"),
            None
        );
        assert_eq!(continued_param(b"attachment", "filename"), None);
        assert_eq!(continued_param(b"; filename*x=1; =; ;;", "filename"), None);
    }
}
