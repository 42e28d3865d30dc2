//! Decoding a parsed message into its bodies and parts (no I/O).
//!
//! mail-parser does the MIME work (RFC 2045-2049, RFC 2047 encoded words,
//! RFC 2231 parameters, charset conversion); this module decides what each
//! part is to the reader, recovers what mail-parser gives up on (broken
//! base64 or quoted-printable, parts cut short by a missing end boundary)
//! and records a warning for everything it had to repair.

use std::borrow::Cow;

use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::{
    Address, Encoding, HeaderName, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders,
    PartType,
};

use super::manifest::{Headers, Role};

/// Nested messages deeper than this are kept as `.eml` files but not
/// opened further.
pub const MAX_NESTING: usize = 32;

/// At most this many warnings are kept per message (then a count).
pub const MAX_WARNINGS: usize = 100;

/// One part of a message, decoded.
#[derive(Debug)]
pub struct DecodedPart<'m> {
    /// Position, as in [`super::PartEntry::part`].
    pub part: String,
    /// What the part is.
    pub role: Role,
    /// The decoded name the message gave it.
    pub original_name: Option<String>,
    /// A name to use when there is none (a nested message's subject).
    pub suggested_name: Option<String>,
    /// `type/subtype`, lower case.
    pub content_type: String,
    /// Declared charset of a text part.
    pub charset: Option<String>,
    /// `Content-ID` without brackets.
    pub content_id: Option<String>,
    /// `Content-Disposition` type, lower case.
    pub disposition: Option<String>,
    /// Decoded content (UTF-8 for text converted from a known charset; the
    /// raw message for a nested message).
    pub data: Cow<'m, [u8]>,
    /// Index in [`Decoded::parts`] of the nested message holding this part.
    pub in_message: Option<usize>,
}

/// A message decoded into what is written for it. Bodies have LF line
/// endings.
#[derive(Debug, Default)]
pub struct Decoded<'m> {
    /// Decoded summary headers.
    pub headers: Headers,
    /// The text body (text parts joined; HTML converted when there is no
    /// text), if any.
    pub text: Option<String>,
    /// The HTML body, if the message has one.
    pub html: Option<String>,
    /// Every non-container part, in document order.
    pub parts: Vec<DecodedPart<'m>>,
    /// What had to be repaired.
    pub warnings: Vec<String>,
}

/// Parses `raw`. Fails with [`Error::NotAMessage`](crate::mail::Error::NotAMessage) when it is not a message at
/// all: its first line (after an mbox `From ` line) is not a header field
/// (RFC 5322 section 2.2: printable ASCII name, then a colon). Release the
/// result with [`dispose`], which copes with any nesting depth.
///
/// mail-parser promises never to panic, but it has debug assertions on
/// internal states that hostile input reaches (seen by the fuzzer in debug
/// builds); a panic there is caught and reported as bad data rather than
/// ending a batch.
pub fn parse(raw: &[u8]) -> anyhow::Result<Message<'_>> {
    if !starts_with_header_field(raw) {
        return Err(crate::mail::not_a_message("not a message: no header found"));
    }
    let parsed = std::panic::catch_unwind(|| {
        MessageParser::new()
            .with_minimal_headers()
            .header_id(HeaderName::MessageId)
            .default_header_raw()
            .parse(raw)
    })
    .map_err(|_| crate::mail::not_a_message("the MIME parser failed on this message"))?;
    parsed
        .filter(|m| !m.parts.is_empty() && !m.parts[0].headers.is_empty())
        .ok_or_else(|| crate::mail::not_a_message("not a message: no header found"))
}

fn starts_with_header_field(raw: &[u8]) -> bool {
    let mut raw = raw;
    if raw.starts_with(b"From ") {
        match raw.iter().position(|&b| b == b'\n') {
            Some(nl) => raw = &raw[nl + 1..],
            None => return false,
        }
    }
    let name_len = raw
        .iter()
        .take_while(|&&b| (33..=126).contains(&b) && b != b':')
        .count();
    let rest = &raw[name_len..];
    let rest = &rest[rest
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count()..];
    name_len > 0 && rest.first() == Some(&b':')
}

/// Drops a parsed message without recursion: a message nested a hundred
/// thousand levels deep would otherwise overflow the stack in its drop.
pub fn dispose(message: Message<'_>) {
    let mut pending = vec![message];
    while let Some(mut m) = pending.pop() {
        for part in &mut m.parts {
            if let PartType::Message(_) = &part.body {
                if let PartType::Message(inner) = std::mem::take(&mut part.body) {
                    pending.push(inner);
                }
            }
        }
    }
}

/// Decodes a parsed message, at most [`DEFAULT_MAX_PARTS`](super::limit::DEFAULT_MAX_PARTS) of its parts.
pub fn decode<'m>(message: &'m Message<'m>) -> Decoded<'m> {
    decode_limited(message, super::limit::DEFAULT_MAX_PARTS, false)
}

/// Decodes a parsed message, at most `max_parts` of its parts (multipart
/// containers not counted); `cut` says that the input was already cut
/// short after that many parts ([`super::limit::cut_after_parts`]). Parts
/// left out are said in the first warning.
pub fn decode_limited<'m>(message: &'m Message<'m>, max_parts: usize, cut: bool) -> Decoded<'m> {
    let mut warnings = Vec::new();
    let headers = headers_of(message, &mut warnings);
    let mut found = Found {
        text: Vec::new(),
        html: Vec::new(),
        warnings,
    };

    // Depth-first over nested messages with an explicit stack of cursors,
    // so parts come out in document order and a hostile nesting depth
    // cannot exhaust the call stack.
    struct Cursor<'m> {
        message: &'m Message<'m>,
        prefix: String,
        depth: usize,
        container: Option<usize>,
        next: usize,
    }
    let mut stack = vec![Cursor {
        message,
        prefix: String::new(),
        depth: 0,
        container: None,
        next: 0,
    }];
    let mut parts: Vec<DecodedPart<'m>> = Vec::new();
    let mut left_out = cut;
    while let Some(cursor) = stack.last_mut() {
        let msg = cursor.message;
        let Some(part) = msg.parts.get(cursor.next) else {
            stack.pop();
            continue;
        };
        let id = cursor.next;
        cursor.next += 1;
        let (depth, container) = (cursor.depth, cursor.container);
        let path = if cursor.prefix.is_empty() {
            id.to_string()
        } else {
            format!("{}.{id}", cursor.prefix)
        };

        if let PartType::Multipart(children) = &part.body {
            check_multipart(msg, part, children, &path, &mut found.warnings);
            continue;
        }
        if parts.len() >= max_parts {
            left_out = true;
            break;
        }
        check_leaf(msg, part, &path, &mut found.warnings);
        let mut entry = describe(msg, part, path.clone(), container);
        let at = Place { msg, id, depth };
        let Some((role, descend)) = classify(at, part, &path, &mut entry, &mut found) else {
            continue;
        };
        entry.role = role;
        parts.push(entry);
        if let Some(nested) = descend {
            stack.push(Cursor {
                message: nested,
                prefix: path,
                depth: depth + 1,
                container: Some(parts.len() - 1),
                next: 0,
            });
        }
    }
    let Found {
        text,
        html,
        mut warnings,
    } = found;
    if left_out {
        // The multiparts cut short lack their end boundary because of the
        // cut, not because of the message.
        if cut {
            warnings.retain(|w| !w.ends_with(NO_END_BOUNDARY));
        }
        warnings.insert(0, super::limit::left_out_warning(max_parts));
    }
    if warnings.len() > MAX_WARNINGS {
        let more = warnings.len() - MAX_WARNINGS;
        warnings.truncate(MAX_WARNINGS);
        warnings.push(format!("{more} more warnings not shown"));
    }
    Decoded {
        headers,
        text: (!text.is_empty()).then(|| join_bodies(&text)),
        html: (!html.is_empty()).then(|| join_bodies(&html)),
        parts,
        warnings,
    }
}

/// What the walk over the parts collects besides the parts: the bodies
/// and the warnings.
struct Found<'m> {
    text: Vec<Cow<'m, str>>,
    html: Vec<&'m str>,
    warnings: Vec<String>,
}

/// Where a part is: its message, its index there, and how deeply that
/// message is nested.
#[derive(Clone, Copy)]
struct Place<'m> {
    msg: &'m Message<'m>,
    id: usize,
    depth: usize,
}

/// The end of the warning about a multipart without its close delimiter.
const NO_END_BOUNDARY: &str = "multipart without its end boundary; read to the end";

/// Warns about a multipart without its close delimiter.
fn check_multipart(
    msg: &Message<'_>,
    part: &MessagePart<'_>,
    children: &[u32],
    path: &str,
    warnings: &mut Vec<String>,
) {
    let Some(b) = boundary(part) else {
        return;
    };
    // The close delimiter follows the last child: look only there, so
    // nested multiparts do not rescan the input.
    let body = raw_body(msg, part);
    let after_children = children
        .last()
        .and_then(|&c| msg.parts.get(c as usize))
        .map_or(0, |last| {
            (last.offset_end as usize).saturating_sub(part.offset_body as usize)
        });
    let tail = body.get(after_children.min(body.len()).saturating_sub(2)..);
    if !has_close_delimiter(tail.unwrap_or(body), b) {
        warnings.push(format!("part {path}: {NO_END_BOUNDARY}"));
    }
}

/// Warns about truncated base64 and unknown charsets in a leaf part.
fn check_leaf(msg: &Message<'_>, part: &MessagePart<'_>, path: &str, warnings: &mut Vec<String>) {
    if part.encoding == Encoding::Base64
        && !part.is_encoding_problem
        && base64_is_truncated(raw_body(msg, part))
    {
        warnings.push(format!(
            "part {path}: base64 ends in the middle of a group (truncated?); decoded as far as possible"
        ));
    }
    if let PartType::Text(_) | PartType::Html(_) = &part.body {
        if let Some(c) = part.content_type().and_then(|ct| ct.attribute("charset")) {
            let c = c.trim();
            if !is_utf8_name(c) && charset_decoder(c.as_bytes()).is_none() {
                warnings.push(format!(
                    "part {path}: unknown charset {c:?}; read as UTF-8 (attachments kept as sent)"
                ));
            }
        }
    }
}

/// The role of a leaf part, with its data set in `entry` and any body
/// text collected; the nested message to walk next, if any. `None` for a
/// multipart.
fn classify<'m>(
    at: Place<'m>,
    part: &'m MessagePart<'m>,
    path: &str,
    entry: &mut DecodedPart<'m>,
    found: &mut Found<'m>,
) -> Option<(Role, Option<&'m Message<'m>>)> {
    let Place { msg, id, depth } = at;
    let top = depth == 0;
    let in_text = msg.text_body.contains(&(id as u32));
    let in_html = msg.html_body.contains(&(id as u32));
    let role = match &part.body {
        PartType::Text(body) if in_text && !part.is_encoding_problem => {
            entry.data = Cow::Borrowed(body.as_bytes());
            if top {
                found.text.push(Cow::Borrowed(body.as_ref()));
                Role::BodyText
            } else {
                Role::NestedBody
            }
        }
        PartType::Html(body) if (in_text || in_html) && !part.is_encoding_problem => {
            entry.data = Cow::Borrowed(body.as_bytes());
            if top {
                if in_text {
                    found
                        .text
                        .push(Cow::Owned(mail_parser::decoders::html::html_to_text(body)));
                }
                if in_html {
                    found.html.push(body.as_ref());
                    Role::BodyHtml
                } else {
                    Role::BodyText
                }
            } else {
                Role::NestedBody
            }
        }
        PartType::Text(body) | PartType::Html(body) => {
            let (data, repaired) = text_part_data(msg, part, body, path, &mut found.warnings);
            entry.data = data;
            // A broken text body is still the body: mail-parser leaves a
            // part it had to repair (such as a last part cut off before
            // its end boundary) out of its body list, so a plain text
            // part that is no attachment and comes before any other
            // text counts too.
            let body_like = in_text
                || (found.text.is_empty()
                    && entry.original_name.is_none()
                    && entry.disposition.as_deref() != Some("attachment"));
            if repaired && top && body_like && entry.content_type == "text/plain" {
                found
                    .text
                    .push(String::from_utf8_lossy(&entry.data).into_owned().into());
                Role::BodyText
            } else {
                attachment_role(entry)
            }
        }
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
            entry.data = Cow::Borrowed(bytes.as_ref());
            if part.is_encoding_problem {
                found.warnings.push(format!(
                    "part {path}: could not be read as a message; kept as it was"
                ));
            }
            attachment_role(entry)
        }
        PartType::Message(nested) => {
            entry.data = nested_raw(msg, part, nested);
            entry.suggested_name = nested
                .subject()
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
                // A subject is not a path: keep "a/b" whole.
                .map(|s| format!("{}.eml", s.replace(['/', '\\'], "_")));
            if depth + 1 < MAX_NESTING {
                return Some((Role::Message, Some(nested)));
            }
            found.warnings.push(format!(
                "part {path}: nested more than {MAX_NESTING} deep; kept as .eml only"
            ));
            Role::Message
        }
        PartType::Multipart(_) => return None,
    };
    Some((role, None))
}

fn join_bodies<S: AsRef<str>>(bodies: &[S]) -> String {
    let mut out = String::new();
    for body in bodies {
        let body = body.as_ref();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        if body.contains('\r') {
            out.push_str(&body.replace("\r\n", "\n"));
        } else {
            out.push_str(body);
        }
    }
    out
}

/// The parameters and headers of a part, with empty content.
fn describe<'m>(
    msg: &Message<'_>,
    part: &MessagePart<'_>,
    path: String,
    in_message: Option<usize>,
) -> DecodedPart<'m> {
    let ctype = part.content_type();
    let content_type = match ctype {
        Some(ct) => match &ct.c_subtype {
            Some(sub) => format!("{}/{}", ct.c_type, sub),
            None => ct.c_type.to_string(),
        },
        None => match &part.body {
            PartType::Message(_) => "message/rfc822".to_string(),
            _ => "text/plain".to_string(),
        },
    }
    .to_ascii_lowercase();
    DecodedPart {
        part: path,
        role: Role::Attachment,
        original_name: attachment_name(msg, part),
        suggested_name: None,
        charset: ctype
            .and_then(|ct| ct.attribute("charset"))
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty()),
        content_type,
        content_id: part
            .content_id()
            .map(|id| {
                id.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
            .filter(|id| !id.is_empty()),
        disposition: part
            .content_disposition()
            .map(|cd| cd.c_type.to_ascii_lowercase()),
        data: Cow::Borrowed(&[]),
        in_message,
    }
}

/// The decoded file name of a part: `Content-Disposition` `filename`, else
/// `Content-Type` `name`; RFC 2231 continuations are reassembled here.
fn attachment_name(msg: &Message<'_>, part: &MessagePart<'_>) -> Option<String> {
    let raw = msg.raw_message.as_ref();
    for (header, param) in [
        (HeaderName::ContentDisposition, "filename"),
        (HeaderName::ContentType, "name"),
    ] {
        let Some(h) = part.headers.iter().find(|h| h.name == header) else {
            continue;
        };
        let start = (h.offset_start as usize).min(raw.len());
        let end = (h.offset_end as usize).clamp(start, raw.len());
        if let Some(name) = super::rfc2231::continued_param(&raw[start..end], param) {
            return Some(name);
        }
        if let Some(name) = h.value.as_content_type().and_then(|ct| ct.attribute(param)) {
            return Some(name.to_string());
        }
    }
    None
}

fn attachment_role(entry: &DecodedPart<'_>) -> Role {
    match entry.disposition.as_deref() {
        Some("attachment") => Role::Attachment,
        Some("inline") => Role::Inline,
        _ if entry.content_id.is_some() => Role::Inline,
        _ => Role::Attachment,
    }
}

fn boundary<'a>(part: &'a MessagePart<'_>) -> Option<&'a str> {
    part.content_type()
        .filter(|ct| ct.c_type.eq_ignore_ascii_case("multipart"))
        .and_then(|ct| ct.attribute("boundary"))
}

/// The bytes of the part's body as they are in the message, before any
/// transfer decoding.
fn raw_body<'m>(msg: &'m Message<'m>, part: &MessagePart<'_>) -> &'m [u8] {
    let raw: &'m [u8] = msg.raw_message.as_ref();
    let start = (part.offset_body as usize).min(raw.len());
    let end = (part.offset_end as usize).clamp(start, raw.len());
    &raw[start..end]
}

fn transfer_encoding(part: &MessagePart<'_>) -> Option<String> {
    part.content_transfer_encoding()
        .map(|e| e.trim().to_ascii_lowercase())
}

/// The content to save for a text part that is not a body.
///
/// Text from a known non-UTF-8 charset is saved converted to UTF-8 (as
/// mail-parser decoded it); otherwise the transfer-decoded bytes are saved
/// exactly, so nothing is lost to U+FFFD replacement. Parts mail-parser
/// could not decode are recovered here. Returns whether it was repaired.
fn text_part_data<'m>(
    msg: &'m Message<'m>,
    part: &'m MessagePart<'m>,
    decoded: &'m str,
    path: &str,
    warnings: &mut Vec<String>,
) -> (Cow<'m, [u8]>, bool) {
    let charset = part
        .content_type()
        .and_then(|ct| ct.attribute("charset"))
        .map(str::trim);
    let converter = charset
        .filter(|c| !is_utf8_name(c))
        .and_then(|c| charset_decoder(c.as_bytes()));
    if !part.is_encoding_problem {
        return match (converter, part.encoding) {
            (Some(_), _) => (Cow::Borrowed(decoded.as_bytes()), false),
            (None, Encoding::None) => (Cow::Borrowed(raw_body(msg, part)), false),
            (None, Encoding::Base64) => (Cow::Owned(lenient_base64(raw_body(msg, part))), false),
            (None, Encoding::QuotedPrintable) => (
                Cow::Owned(lenient_quoted_printable(raw_body(msg, part))),
                false,
            ),
        };
    }
    // mail-parser gave up and kept the raw text: decode as far as possible.
    let raw = raw_body(msg, part);
    let bytes = match transfer_encoding(part).as_deref() {
        Some("base64") => {
            warnings.push(format!(
                "part {path}: base64 with stray characters or no closing boundary; decoded as far as possible"
            ));
            lenient_base64(raw)
        }
        Some("quoted-printable") => {
            warnings.push(format!(
                "part {path}: broken quoted-printable; decoded as far as possible"
            ));
            lenient_quoted_printable(raw)
        }
        _ => {
            warnings.push(format!("part {path}: malformed part; kept as sent"));
            raw.to_vec()
        }
    };
    let bytes = match converter {
        Some(convert) if is_text(part) => convert(&bytes).into_bytes(),
        _ => bytes,
    };
    (Cow::Owned(bytes), true)
}

fn is_text(part: &MessagePart<'_>) -> bool {
    part.content_type()
        .is_none_or(|ct| ct.c_type.eq_ignore_ascii_case("text"))
}

fn is_utf8_name(charset: &str) -> bool {
    ["utf-8", "utf8", "us-ascii", "ascii"]
        .iter()
        .any(|n| charset.eq_ignore_ascii_case(n))
}

/// The raw bytes of a nested message, to save as `.eml`.
fn nested_raw<'m>(
    msg: &'m Message<'m>,
    part: &'m MessagePart<'m>,
    nested: &'m Message<'m>,
) -> Cow<'m, [u8]> {
    if part.encoding == Encoding::None && part.offset_end > part.offset_body {
        Cow::Borrowed(raw_body(msg, part))
    } else {
        Cow::Borrowed(nested.raw_message.as_ref())
    }
}

/// Whether a multipart body holds its close delimiter `--boundary--`
/// (RFC 2046 section 5.1.1) at the start of a line.
fn has_close_delimiter(body: &[u8], boundary: &str) -> bool {
    let mut needle = Vec::with_capacity(boundary.len() + 4);
    needle.extend_from_slice(b"--");
    needle.extend_from_slice(boundary.as_bytes());
    needle.extend_from_slice(b"--");
    let mut rest = body;
    while let Some(pos) = find(rest, &needle) {
        if pos == 0 || rest[pos - 1] == b'\n' {
            return true;
        }
        rest = &rest[pos + 1..];
    }
    false
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut start = 0;
    while let Some(i) = haystack[start..].iter().position(|&b| b == first) {
        let at = start + i;
        if haystack[at..].starts_with(needle) {
            return Some(at);
        }
        start = at + 1;
    }
    None
}

/// Whether base64 content stops in the middle of a 4-character group.
fn base64_is_truncated(raw: &[u8]) -> bool {
    let significant = raw
        .iter()
        .filter(|&&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='))
        .count();
    significant % 4 != 0
}

/// Base64 (RFC 2045 section 6.8) that skips anything outside the alphabet
/// and keeps the bytes of an incomplete final group.
pub fn lenient_base64(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &c in input {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Quoted-printable (RFC 2045 section 6.7) that keeps a malformed `=`
/// sequence as it is.
pub fn lenient_quoted_printable(input: &[u8]) -> Vec<u8> {
    fn hex(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        if c != b'=' {
            out.push(c);
            i += 1;
            continue;
        }
        let rest = &input[i + 1..];
        if rest.starts_with(b"\r\n") {
            i += 3;
        } else if rest.starts_with(b"\n") {
            i += 2;
        } else if let (Some(h), Some(l)) = (
            rest.first().copied().and_then(hex),
            rest.get(1).copied().and_then(hex),
        ) {
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(b'=');
            i += 1;
        }
    }
    out
}

/// The summary headers of `msg`, decoded.
pub fn headers_of(msg: &Message<'_>, warnings: &mut Vec<String>) -> Headers {
    let mut headers = Headers::default();
    let root = match msg.parts.first() {
        Some(root) => root,
        None => return headers,
    };
    for header in &root.headers {
        let name = header.name();
        let value = match &header.value {
            HeaderValue::Address(addr) => Some(format_address(addr)),
            HeaderValue::Text(t) => Some(t.trim().to_string()),
            HeaderValue::TextList(list) => Some(list.join(", ")),
            HeaderValue::DateTime(_) | HeaderValue::Empty => raw_value(msg, header),
            _ => None,
        }
        .filter(|v| !v.is_empty());
        let slot = match header.name {
            HeaderName::From => &mut headers.from,
            HeaderName::To => &mut headers.to,
            HeaderName::Cc => &mut headers.cc,
            HeaderName::Date => &mut headers.date,
            HeaderName::Subject => &mut headers.subject,
            HeaderName::MessageId => &mut headers.message_id,
            _ => continue,
        };
        match value {
            None => warnings.push(format!("header {name} has no value")),
            Some(v) if slot.is_none() => {
                *slot = Some(if header.name == HeaderName::MessageId {
                    v.trim_start_matches('<').trim_end_matches('>').to_string()
                } else {
                    v
                })
            }
            Some(_) => warnings.push(format!("header {name} appears more than once; first kept")),
        }
    }
    headers
}

fn raw_value(msg: &Message<'_>, header: &mail_parser::Header<'_>) -> Option<String> {
    let raw = msg.raw_message.as_ref();
    let start = (header.offset_start as usize).min(raw.len());
    let end = (header.offset_end as usize).clamp(start, raw.len());
    let text = String::from_utf8_lossy(&raw[start..end]);
    let unfolded: String = text
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Some(unfolded)
}

fn format_address(addr: &Address<'_>) -> String {
    let mut out = Vec::new();
    for a in addr.iter() {
        let name = a.name().map(str::trim).filter(|n| !n.is_empty());
        let address = a.address().map(str::trim).filter(|n| !n.is_empty());
        out.push(match (name, address) {
            (Some(n), Some(a)) => format!("{n} <{a}>"),
            (Some(n), None) => n.to_string(),
            (None, Some(a)) => a.to_string(),
            (None, None) => continue,
        });
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_base64_skips_junk_and_keeps_partial_groups() {
        assert_eq!(lenient_base64(b"aGVs\r\nbG8=\r\n"), b"hello");
        assert_eq!(lenient_base64(b"aGV!!s*bG8"), b"hello");
        assert_eq!(lenient_base64(b"aGVsbG"), b"hell");
        assert_eq!(lenient_base64(b""), b"");
    }

    #[test]
    fn lenient_quoted_printable_keeps_bad_escapes() {
        let table: [(&[u8], &[u8]); 3] = [
            (b"a=3Db=\r\nc", b"a=bc"),
            (b"100=% =Z1 end=", b"100=% =Z1 end="),
            (b"caf=E9\nx=\ny", b"caf\xe9\nxy"),
        ];
        for (encoded, decoded) in table {
            assert_eq!(lenient_quoted_printable(encoded), decoded, "{encoded:?}");
        }
    }

    #[test]
    fn what_counts_as_a_message() {
        let table: [(&[u8], bool); 9] = [
            (b"Subject: x\r\n\r\nbody", true),
            (b"X-Empty :\n", true),
            (b"From someone Mon Jan 1\nFrom: a@b\n\n", true),
            (b"", false),
            (b"\r\n\r\nbody", false),
            (b"just some text\n", false),
            (b"\x00\x01: x", false),
            (b"From nowhere", false),
            (b"Subject x", false),
        ];
        for (input, message) in table {
            assert_eq!(starts_with_header_field(input), message, "{input:?}");
        }
    }

    #[test]
    fn close_delimiter_must_start_a_line() {
        assert!(has_close_delimiter(b"x\r\n--b--\r\n", "b"));
        assert!(has_close_delimiter(b"--b--", "b"));
        assert!(!has_close_delimiter(b"x --b--", "b"));
        assert!(!has_close_delimiter(b"x\n--b\n", "b"));
    }

    #[test]
    fn deep_nesting_is_bounded() {
        // Each level a message/rfc822 holding the next: far deeper than
        // MAX_NESTING, with no recursion on our side.
        let mut raw = Vec::new();
        for _ in 0..100_000 {
            raw.extend_from_slice(b"Subject: level\r\nContent-Type: message/rfc822\r\n\r\n");
        }
        raw.extend_from_slice(b"Subject: bottom\r\n\r\ntext\r\n");
        let message = parse(&raw).unwrap();
        let decoded = decode(&message);
        assert!(decoded
            .warnings
            .iter()
            .any(|w| w.contains("nested more than")));
        assert!(decoded.parts.len() <= MAX_NESTING + 1);
        drop(decoded);
        // Dropped recursively, this would overflow the stack.
        dispose(message);
    }

    #[test]
    fn text_body_cut_before_its_end_boundary_is_still_the_body() {
        let raw = b"Subject: cut\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nthe text\r\n";
        let message = parse(raw).unwrap();
        let decoded = decode(&message);
        assert_eq!(decoded.text.as_deref().map(str::trim_end), Some("the text"));
        assert!(decoded.parts.iter().all(|p| p.role == Role::BodyText));
        assert!(decoded
            .warnings
            .iter()
            .any(|w| w.contains("without its end boundary")));
        // A named part cut the same way stays an attachment.
        let raw = b"Subject: cut\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
Content-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\nfile\r\n";
        let message = parse(raw).unwrap();
        let decoded = decode(&message);
        assert_eq!(decoded.text, None);
        assert_eq!(decoded.parts[0].role, Role::Attachment);
    }

    #[test]
    fn warnings_are_capped() {
        let mut raw = b"Subject: x\r\n".to_vec();
        for i in 0..300 {
            raw.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n")
                    .as_bytes(),
            );
        }
        let message = parse(&raw).unwrap();
        let decoded = decode(&message);
        assert_eq!(decoded.warnings.len(), MAX_WARNINGS + 1);
        assert!(decoded.warnings[MAX_WARNINGS].ends_with("more warnings not shown"));
    }
}
