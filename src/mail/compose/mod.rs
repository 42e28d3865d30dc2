//! Message composition for `mailctl send`.
//!
//! Headers and text/HTML parts are built with mail-builder (RFC 2047 for
//! non-ASCII subjects and display names). Attachments are written by us:
//! their part headers carry an ASCII `filename="..."` and, for non-ASCII
//! names, an RFC 2231 `filename*=utf-8''...` parameter (never RFC 2047
//! inside a parameter, which RFC 2047 section 5 forbids), and their base64
//! is streamed from the file while sending, so memory use does not grow
//! with attachment size. A text body too large to hold in memory is
//! spooled and written by us too, with a transfer encoding produced while
//! sending (see [`text`]).

pub mod address;
pub mod idna;
pub mod message;
pub mod spool;
pub mod text;

use std::borrow::Cow;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::mime::{BodyPart, MimePart};
use mail_builder::MessageBuilder;

use crate::proto::smtp::envelope::Envelope;
use crate::text::printable;

pub use address::Mailbox;
pub use message::{Message, Segment};
pub use text::SpooledText;

/// Everything a composed message is made of (a plain struct, so library
/// users can fill it in directly).
#[derive(Clone, Debug, Default)]
pub struct Draft {
    /// The author (From, and the envelope sender).
    pub from: Option<Mailbox>,
    /// To recipients.
    pub to: Vec<Mailbox>,
    /// Cc recipients.
    pub cc: Vec<Mailbox>,
    /// Bcc recipients: in the envelope only, never in a header.
    pub bcc: Vec<Mailbox>,
    /// Reply-To addresses.
    pub reply_to: Vec<Mailbox>,
    /// The subject.
    pub subject: Option<String>,
    /// Extra header fields, name and value.
    pub headers: Vec<(String, String)>,
    /// The plain-text body.
    pub text: Option<String>,
    /// A large plain-text body, spooled by [`text::read_text`]; when set it
    /// is the text part and `text` is not used.
    pub spooled_text: Option<Arc<SpooledText>>,
    /// An HTML alternative to the text body.
    pub html: Option<String>,
    /// A large HTML alternative, spooled by [`text::read_text`] and made
    /// HTML by [`SpooledText::into_html`]; when set it is the HTML part and
    /// `html` is not used.
    pub spooled_html: Option<Arc<SpooledText>>,
    /// Files to attach.
    pub attachments: Vec<PathBuf>,
    /// A fixed Date value (RFC 5322 date-time); `None` means now.
    pub date: Option<String>,
    /// A fixed Message-ID (with or without angle brackets); `None` means a
    /// new unique one.
    pub message_id: Option<String>,
}

/// Header fields that are set through their own options, not `--header`.
const MANAGED_HEADERS: &[(&str, &str)] = &[
    ("from", "--from"),
    ("to", "--to"),
    ("cc", "--cc"),
    ("bcc", "--bcc"),
    ("reply-to", "--reply-to"),
    ("subject", "--subject"),
    ("date", "--date"),
    ("message-id", "--message-id"),
    ("mime-version", ""),
    ("content-type", ""),
    ("content-transfer-encoding", ""),
];

/// Parses `Name: value` as given to `--header`, refusing malformed names,
/// line breaks and fields mailctl writes itself.
pub fn parse_header(text: &str) -> anyhow::Result<(String, String)> {
    let shown = printable(text.as_bytes());
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| crate::mail::invalid(format!("header '{shown}' is not 'Name: value'")))?;
    if name.is_empty() || name.len() > 76 || !name.bytes().all(|b| (33..=126).contains(&b)) {
        return Err(crate::mail::invalid(format!(
            "invalid header name in '{shown}'"
        )));
    }
    let value = value.trim_start_matches([' ', '\t']);
    check_header_value(name, value)?;
    if let Some((_, option)) = MANAGED_HEADERS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
    {
        if option.is_empty() {
            return Err(crate::mail::invalid(format!(
                "the {name} header is written by mailctl"
            )));
        }
        return Err(crate::mail::invalid(format!(
            "use {option} instead of --header '{name}: ...'"
        )));
    }
    Ok((name.to_string(), value.to_string()))
}

/// Refuses CR, LF and other control characters (tab aside) in a header value.
pub fn check_header_value(name: &str, value: &str) -> anyhow::Result<()> {
    if value.contains(['\r', '\n']) {
        return Err(crate::mail::invalid(format!(
            "{name} contains a line break: '{}'",
            printable(value.as_bytes())
        )));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(crate::mail::invalid(format!(
            "{name} contains a control character: '{}'",
            printable(value.as_bytes())
        )));
    }
    Ok(())
}

/// Every line ending made CRLF, with a final CRLF.
fn crlf_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 32 + 2);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\r\n");
            }
            '\n' => out.push_str("\r\n"),
            c => out.push(c),
        }
    }
    if !out.ends_with("\r\n") {
        out.push_str("\r\n");
    }
    out
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if crate::crypto::random_bytes(&mut buf).is_err() {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        buf = format!("{nanos:x}{}", std::process::id()).into_bytes();
        buf.truncate(bytes);
    }
    crate::proto::sasl::hex(&buf)
}

/// A new Message-ID `time.random@domain` (without brackets), using the
/// sender's domain so no local host name leaks.
pub fn generate_message_id(from: Option<&Mailbox>) -> String {
    let domain = from
        .and_then(|m| m.address.rsplit_once('@').map(|(_, d)| d.to_string()))
        .filter(|d| d.is_ascii() && !d.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{secs:x}.{}@{domain}", random_hex(12))
}

fn normalise_message_id(id: &str) -> anyhow::Result<String> {
    let inner = id.trim();
    let inner = inner
        .strip_prefix('<')
        .and_then(|i| i.strip_suffix('>'))
        .unwrap_or(inner);
    let ok = !inner.is_empty()
        && inner.contains('@')
        && inner
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b'\\'));
    if !ok {
        return Err(crate::mail::invalid(format!(
            "invalid Message-ID '{}' (expected <left@right>)",
            printable(id.as_bytes())
        )));
    }
    Ok(inner.to_string())
}

fn check_date(date: &str) -> anyhow::Result<()> {
    check_header_value("Date", date)?;
    if mail_parser::DateTime::parse_rfc822(date).is_none() {
        return Err(crate::mail::invalid(format!(
            "invalid date '{}' (expected RFC 5322, e.g. 'Tue, 1 Jul 2025 10:00:00 +0000')",
            printable(date.as_bytes())
        )));
    }
    Ok(())
}

/// RFC 2047 encoded-words (`=?utf-8?B?...?=`) for a non-ASCII phrase,
/// each at most 75 characters and split at character boundaries.
pub fn encoded_words(text: &str) -> String {
    use base64::Engine;
    // 12 characters of framing leave 63 for base64: 45 input bytes.
    const MAX_INPUT: usize = 45;
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > MAX_INPUT {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| {
            format!(
                "=?utf-8?B?{}?=",
                base64::engine::general_purpose::STANDARD.encode(w)
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A mailbox as header text: `addr`, `Name <addr>`, `"Quoted, Name" <addr>`
/// or `=?utf-8?B?...?= <addr>`; an encoded-word is never put inside quotes
/// (RFC 2047 section 5).
pub fn format_mailbox(m: &Mailbox) -> String {
    let Some(name) = m.name.as_deref().filter(|n| !n.trim().is_empty()) else {
        return m.address.clone();
    };
    format!("{} <{}>", display_name(name, false), m.address)
}

/// A display name as a header phrase: RFC 2047 encoded-words when it is
/// not ASCII, else as it is when every character may stand in an atom
/// (and `always_quote` is false), else a quoted string.
pub fn display_name(name: &str, always_quote: bool) -> String {
    if !name.is_ascii() {
        encoded_words(name)
    } else if !always_quote
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b' ' || b"!#$%&'*+-/=?^_`{|}~".contains(&b))
        && !name.starts_with(' ')
        && !name.ends_with(' ')
    {
        name.to_string()
    } else {
        quoted(name)
    }
}

fn format_list(list: &[Mailbox]) -> String {
    list.iter()
        .map(format_mailbox)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A boundary derived from the Message-ID, so a fixed Message-ID gives
/// byte-identical output. `=_` cannot occur in quoted-printable or base64.
fn boundary(message_id: &str, label: &str) -> String {
    let digest = crate::proto::sasl::hex(
        &crate::crypto::sha256(format!("{message_id}/{label}").as_bytes())[..12],
    );
    format!("=_{label}_{digest}")
}

/// `"..."` quoting for a parameter value (RFC 2045 section 5.1).
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// An ASCII stand-in for a file name, for readers that ignore the RFC 2231
/// name: letters transliterated (`données.csv` -> `donnees.csv`, `报告.pdf`
/// -> `Bao Gao.pdf`), control characters dropped, runs of spaces made one;
/// `attachment` (with the extension) when nothing readable is left.
pub fn ascii_filename(name: &str) -> String {
    let readable = |text: &str| -> String {
        let ascii = deunicode::deunicode_with_tofu(text, "_");
        let kept: String = ascii
            .chars()
            .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
            .collect();
        kept.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let (stem, extension) = match name.rsplit_once('.') {
        Some((stem, extension)) if !stem.trim().is_empty() => (stem, Some(readable(extension))),
        _ => (name, None),
    };
    let stem = readable(stem);
    let stem = if stem.is_empty() {
        "attachment".to_string()
    } else {
        stem
    };
    match extension {
        Some(extension) if !extension.is_empty() => format!("{stem}.{extension}"),
        _ => stem,
    }
}

/// RFC 2231 / RFC 8187 `utf-8''` value: attr-chars kept, the rest %XX.
pub fn rfc2231_value(name: &str) -> String {
    let mut out = String::from("utf-8''");
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The header block of an attachment part (ending with the blank line).
pub fn attachment_headers(filename: &str, content_type: &str) -> String {
    let fallback = quoted(&ascii_filename(filename));
    let mut headers = format!(
        "Content-Type: {content_type};\r\n name={fallback}\r\nContent-Disposition: attachment;"
    );
    // Parameter order carries no meaning (RFC 2231); the extended value
    // comes first so that parsers which take the first "filename" they find
    // get the real name, and those that ignore it still have the fallback.
    if !filename.is_ascii() || filename.chars().any(|c| c.is_ascii_control()) {
        headers.push_str("\r\n filename*=");
        headers.push_str(&rfc2231_value(filename));
        headers.push(';');
    }
    headers.push_str("\r\n filename=");
    headers.push_str(&fallback);
    headers.push_str("\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    headers
}

struct PreparedAttachment {
    path: PathBuf,
    len: u64,
    headers: String,
}

fn prepare_attachment(path: &Path) -> anyhow::Result<PreparedAttachment> {
    let meta = std::fs::metadata(path)
        .map_err(|e| crate::mail::no_input(format!("attachment {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(crate::mail::no_input(format!(
            "attachment {}: not a regular file",
            path.display()
        )));
    }
    // Fail now rather than in the middle of sending.
    std::fs::File::open(path)
        .map_err(|e| crate::mail::no_input(format!("attachment {}: {e}", path.display())))?;
    let filename = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "attachment".to_string());
    let mut content_type = mime_guess::from_path(path)
        .first_or_octet_stream()
        .essence_str()
        .to_string();
    if content_type.starts_with("text/") {
        // Say which charset a text file uses when it is plainly UTF-8, so
        // that readers do not show it as Latin-1.
        let mut head = Vec::with_capacity(8192);
        let mut file = std::fs::File::open(path)
            .map_err(|e| crate::mail::no_input(format!("attachment {}: {e}", path.display())))?;
        (&mut file)
            .take(8192)
            .read_to_end(&mut head)
            .map_err(|e| crate::mail::local_io(format!("attachment {}: {e}", path.display())))?;
        let utf8 = match std::str::from_utf8(&head) {
            Ok(_) => true,
            // A multi-byte character cut at the end of the sample.
            Err(e) => e.error_len().is_none(),
        };
        if utf8 {
            content_type.push_str("; charset=utf-8");
        }
    }
    Ok(PreparedAttachment {
        path: path.to_path_buf(),
        len: meta.len(),
        headers: attachment_headers(&filename, &content_type),
    })
}

impl Draft {
    /// The SMTP envelope: the From address, and every To, Cc and Bcc
    /// address once.
    pub fn envelope(&self) -> anyhow::Result<Envelope> {
        let from = self
            .from
            .as_ref()
            .ok_or_else(|| crate::mail::invalid("no sender: --from is required"))?;
        let mut recipients: Vec<String> = Vec::new();
        for m in self.to.iter().chain(&self.cc).chain(&self.bcc) {
            if !recipients
                .iter()
                .any(|r| r.eq_ignore_ascii_case(&m.address))
            {
                recipients.push(m.address.clone());
            }
        }
        if recipients.is_empty() {
            return Err(crate::mail::invalid(
                "no recipients: give --to, --cc or --bcc",
            ));
        }
        Ok(Envelope {
            from: from.address.clone(),
            recipients,
            dsn: Default::default(),
        })
    }

    /// Builds the message. Attachments are checked (exit 66 if missing) and
    /// sized now, and read only while the message is written.
    pub fn build(&self) -> anyhow::Result<Message> {
        let from = self
            .from
            .as_ref()
            .ok_or_else(|| crate::mail::invalid("no sender: --from is required"))?;
        if let Some(subject) = &self.subject {
            check_header_value("the subject", subject)?;
        }
        for (name, value) in &self.headers {
            parse_header(&format!("{name}: {value}"))?;
        }
        let message_id = match &self.message_id {
            Some(id) => normalise_message_id(id)?,
            None => generate_message_id(Some(from)),
        };

        let builder = self.header_fields(from, &message_id)?;

        let nonce = random_hex(8);
        let marker = |what: &str| format!("\u{1}mailctl-{what}-{nonce}\u{1}");
        // Parts written by us are raw parts whose body is a unique marker;
        // each marker is then replaced by a segment that streams the data.
        let mut streamed: Vec<(String, Segment)> = Vec::new();
        // A text or HTML body: in memory, or streamed from its spool.
        let mut body_part =
            |subtype: &str, memory: Option<&str>, spool: Option<&Arc<SpooledText>>| match spool {
                Some(spooled) => {
                    let body_marker = marker(subtype);
                    let part = format!("{}{body_marker}", spooled.part_header());
                    streamed.push((body_marker, Segment::Text(Arc::clone(spooled))));
                    Some(MimePart::raw(BodyPart::Text(Cow::Owned(part))))
                }
                None => memory.map(|t| {
                    MimePart::new(
                        format!("text/{subtype}"),
                        BodyPart::Text(Cow::Owned(crlf_text(t))),
                    )
                }),
            };
        let text = body_part("plain", self.text.as_deref(), self.spooled_text.as_ref());
        let html = body_part("html", self.html.as_deref(), self.spooled_html.as_ref());
        let main: Option<MimePart> = match (text, html) {
            (Some(t), Some(h)) => Some(MimePart::new(
                ContentType::new("multipart/alternative")
                    .attribute("boundary", boundary(&message_id, "alt")),
                vec![t, h],
            )),
            (Some(t), None) => Some(t),
            (None, Some(h)) => Some(h),
            (None, None) if self.attachments.is_empty() => Some(MimePart::new(
                "text/plain",
                BodyPart::Text(Cow::Borrowed("\r\n")),
            )),
            (None, None) => None,
        };

        let prepared: Vec<PreparedAttachment> = self
            .attachments
            .iter()
            .map(|p| prepare_attachment(p))
            .collect::<anyhow::Result<_>>()?;

        let body = if prepared.is_empty() {
            main.expect("a body part without attachments")
        } else {
            let mut parts: Vec<MimePart> = main.into_iter().collect();
            for (i, attachment) in prepared.iter().enumerate() {
                let attachment_marker = marker(&format!("attachment-{i}"));
                parts.push(MimePart::raw(BodyPart::Text(Cow::Owned(format!(
                    "{}{attachment_marker}",
                    attachment.headers
                )))));
                streamed.push((
                    attachment_marker,
                    Segment::Base64File {
                        path: attachment.path.clone(),
                        len: attachment.len,
                    },
                ));
            }
            MimePart::new(
                ContentType::new("multipart/mixed")
                    .attribute("boundary", boundary(&message_id, "mix")),
                parts,
            )
        };
        let bytes = builder.body(body).write_to_vec()?;
        splice(bytes, streamed, message_id)
    }

    /// The header fields, checked, in a builder.
    fn header_fields<'x>(
        &'x self,
        from: &Mailbox,
        message_id: &'x str,
    ) -> anyhow::Result<MessageBuilder<'x>> {
        let mut builder = MessageBuilder::new()
            .header("From", Raw::new(format_mailbox(from)))
            .message_id(MessageId::new(message_id));
        if let Some(date) = &self.date {
            check_date(date)?;
            builder = builder.header("Date", Raw::new(date.as_str()));
        }
        if !self.to.is_empty() {
            builder = builder.header("To", Raw::new(format_list(&self.to)));
        }
        if !self.cc.is_empty() {
            builder = builder.header("Cc", Raw::new(format_list(&self.cc)));
        }
        if !self.reply_to.is_empty() {
            builder = builder.header("Reply-To", Raw::new(format_list(&self.reply_to)));
        }
        if let Some(subject) = &self.subject {
            builder = builder.subject(Text::new(subject.as_str()));
        }
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), Text::new(value.as_str()));
        }
        Ok(builder)
    }
}

/// The message: `bytes` with each marker replaced by the segment that
/// streams its data.
fn splice(
    bytes: Vec<u8>,
    streamed: Vec<(String, Segment)>,
    message_id: String,
) -> anyhow::Result<Message> {
    if streamed.is_empty() {
        return Ok(Message::from_bytes(bytes, Some(message_id)));
    }
    let mut segments = Vec::with_capacity(2 * streamed.len() + 1);
    let mut rest: &[u8] = &bytes;
    for (marker, segment) in streamed {
        let pos = find(rest, marker.as_bytes()).ok_or_else(|| {
            crate::mail::internal("streamed part placeholder lost while composing")
        })?;
        segments.push(Segment::Bytes(rest[..pos].to_vec()));
        segments.push(segment);
        rest = &rest[pos + marker.len()..];
    }
    segments.push(Segment::Bytes(rest.to_vec()));
    Ok(Message::from_segments(segments, Some(message_id)))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_names_are_readable_transliterations_keeping_the_extension() {
        assert_eq!(ascii_filename("报告.pdf"), "Bao Gao.pdf");
        assert_eq!(ascii_filename("données.csv"), "donnees.csv");
        assert_eq!(
            ascii_filename("Ελληνικά έγγραφα.docx"),
            "Ellenika eggrapha.docx"
        );
        assert_eq!(ascii_filename("plain name.txt"), "plain name.txt");
        assert_eq!(ascii_filename("a\tb\x07c.txt"), "a b c.txt");
        assert_eq!(ascii_filename("\u{7}.pdf"), "attachment.pdf");
        assert_eq!(ascii_filename(".bashrc"), ".bashrc");
        assert_eq!(ascii_filename(""), "attachment");
        for name in ["报告.pdf", "🙂.png", "\u{202e}fdp.exe", "x\"y\\z.txt"] {
            let ascii = ascii_filename(name);
            assert!(
                ascii.chars().all(|c| c.is_ascii_graphic() || c == ' '),
                "{ascii:?}"
            );
        }
    }

    fn draft() -> Draft {
        Draft {
            from: Some(Mailbox::parse("\"Ops Bot\" <ops@example.org>").unwrap()),
            to: address::parse_list("\"张三\" <z@example.cn>, b@example.org").unwrap(),
            bcc: address::parse_list("hidden@example.org").unwrap(),
            subject: Some("Report für 2025 — 报告".into()),
            text: Some("line one\nline two\r\n.dot\n".into()),
            date: Some("Tue, 1 Jul 2025 10:00:00 +0000".into()),
            message_id: Some("<fixed.1@example.org>".into()),
            ..Draft::default()
        }
    }

    fn text(m: &Message) -> String {
        String::from_utf8(m.to_vec().unwrap()).unwrap()
    }

    #[test]
    fn simple_message_headers_and_crlf() {
        let m = draft().build().unwrap();
        let out = text(&m);
        assert_eq!(out.len() as u64, m.size());
        assert!(out.contains("Message-ID: <fixed.1@example.org>\r\n"));
        assert!(out.contains("Date: Tue, 1 Jul 2025 10:00:00 +0000\r\n"));
        assert!(out.contains("From: Ops Bot <ops@example.org>\r\n"), "{out}");
        assert!(out.contains("To: =?utf-8?B?5byg5LiJ?= <z@example.cn>, b@example.org\r\n"));
        assert!(!out.contains("张三"));
        assert!(!out.to_ascii_lowercase().contains("bcc"));
        assert!(!out.contains("hidden@example.org"));
        assert!(out.contains("line one\r\nline two\r\n.dot\r\n"));
        assert!(!out.replace("\r\n", "").contains('\n'));
        assert!(out.ends_with("\r\n"));
        assert!(!m.eight_bit());
        assert_eq!(m.message_id(), Some("fixed.1@example.org"));
        // Reproducible.
        assert_eq!(text(&draft().build().unwrap()), out);
        // Parsed back, the subject and names survive.
        let parsed = mail_parser::MessageParser::default()
            .parse(out.as_bytes())
            .unwrap();
        assert_eq!(parsed.subject(), Some("Report für 2025 — 报告"));
        assert_eq!(parsed.to().unwrap().first().unwrap().name(), Some("张三"));
        let env = draft().envelope().unwrap();
        assert_eq!(env.from, "ops@example.org");
        assert_eq!(
            env.recipients,
            vec!["z@example.cn", "b@example.org", "hidden@example.org"]
        );
    }

    #[test]
    fn attachments_are_streamed_with_rfc2231_names() {
        let dir = tempfile::tempdir().unwrap();
        let pdf = dir.path().join("报告 2025.pdf");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&pdf, &data).unwrap();
        let txt = dir.path().join("notes.txt");
        std::fs::write(&txt, b"hello\n").unwrap();
        let mut d = draft();
        d.html = Some("<p>hi</p>".into());
        d.attachments = vec![pdf, txt];
        let m = d.build().unwrap();
        assert_eq!(m.segments().len(), 5);
        let out = text(&m);
        assert_eq!(out.len() as u64, m.size());
        assert!(out.contains("multipart/alternative"));
        assert!(out.contains(
            "Content-Type: application/pdf;\r\n name=\"Bao Gao 2025.pdf\"\r\n\
             Content-Disposition: attachment;\r\n \
             filename*=utf-8''%E6%8A%A5%E5%91%8A%202025.pdf;\r\n filename=\"Bao Gao 2025.pdf\"\r\n"
        ));
        assert!(out.contains("filename=\"notes.txt\"\r\nContent-Transfer-Encoding: base64"));
        assert!(out.contains("Content-Type: text/plain; charset=utf-8;\r\n name=\"notes.txt\""));
        assert!(
            !out.contains("=?utf-8?B?5oql"),
            "no RFC 2047 inside parameters"
        );
        let parsed = mail_parser::MessageParser::default()
            .parse(out.as_bytes())
            .unwrap();
        assert_eq!(parsed.attachment_count(), 2);
        use mail_parser::MimeHeaders;
        let first = parsed.attachment(0).unwrap();
        assert_eq!(first.attachment_name(), Some("报告 2025.pdf"));
        assert_eq!(first.contents(), &data[..]);
        assert_eq!(parsed.attachment(1).unwrap().contents(), b"hello\n");
        assert_eq!(parsed.body_html(0).unwrap().trim(), "<p>hi</p>");
        assert_eq!(text(&d.build().unwrap()), out, "reproducible");
    }

    /// A spooled text body takes the place of the text part mail-builder
    /// would write, in the same multipart structure, with an exact size.
    #[test]
    fn spooled_text_part() {
        let body = "Köln report line\n".repeat(100_000);
        let spooled = || match text::read_text(&mut body.as_bytes()).unwrap() {
            text::TextBody::Spooled(s) => Arc::new(s),
            text::TextBody::Memory(_) => panic!("not spooled"),
        };
        assert_eq!(
            spooled().encoding(),
            text::TransferEncoding::QuotedPrintable
        );
        for html in [false, true] {
            let mut d = draft();
            d.text = None;
            d.spooled_text = Some(spooled());
            d.html = html.then(|| "<p>hi</p>".to_string());
            let m = d.build().unwrap();
            let out = m.to_vec().unwrap();
            assert_eq!(out.len() as u64, m.size());
            assert!(m.segments().iter().any(|s| matches!(s, Segment::Text(_))));
            let parsed = mail_parser::MessageParser::default().parse(&out).unwrap();
            assert!(parsed.body_text(0).unwrap() == body.replace('\n', "\r\n"));
            let text = String::from_utf8_lossy(&out);
            assert!(text.contains(
                "Content-Type: text/plain; charset=\"utf-8\"\r\n\
                 Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            ));
            assert_eq!(text.contains("multipart/alternative"), html);
            assert_eq!(text.contains("<p>hi</p>"), html);
        }
    }

    /// A spooled HTML body is the text/html part, alone or beside text.
    #[test]
    fn spooled_html_part() {
        let html = "<p>Köln</p>\n".repeat(100_000);
        let spooled = || match text::read_text(&mut html.as_bytes()).unwrap() {
            text::TextBody::Spooled(s) => Arc::new(s.into_html()),
            text::TextBody::Memory(_) => panic!("not spooled"),
        };
        for with_text in [false, true] {
            let mut d = draft();
            d.text = with_text.then(|| "plain".to_string());
            d.spooled_html = Some(spooled());
            let m = d.build().unwrap();
            let out = m.to_vec().unwrap();
            assert_eq!(out.len() as u64, m.size());
            let parsed = mail_parser::MessageParser::default().parse(&out).unwrap();
            assert_eq!(parsed.body_html(0).unwrap(), html.replace('\n', "\r\n"));
            let text = String::from_utf8_lossy(&out);
            assert!(text.contains("Content-Type: text/html; charset=\"utf-8\"\r\n"));
            assert_eq!(text.contains("multipart/alternative"), with_text);
        }
    }

    #[test]
    fn mailbox_formatting() {
        let m = |name: &str| Mailbox {
            name: Some(name.into()),
            address: "a@x.org".into(),
        };
        assert_eq!(format_mailbox(&m("Plain Name")), "Plain Name <a@x.org>");
        assert_eq!(format_mailbox(&m("Doe, John")), "\"Doe, John\" <a@x.org>");
        assert_eq!(format_mailbox(&m("a \"b\"")), "\"a \\\"b\\\"\" <a@x.org>");
        assert_eq!(
            format_mailbox(&m("Jürgen")),
            "=?utf-8?B?SsO8cmdlbg==?= <a@x.org>"
        );
        let long = "很长的名字".repeat(8);
        let formatted = format_mailbox(&m(&long));
        assert!(formatted.split(' ').all(|w| w.len() <= 75));
        let header = format!("To: {formatted}\r\n\r\n");
        let parsed = mail_parser::MessageParser::default()
            .parse(header.as_bytes())
            .unwrap();
        assert_eq!(
            parsed.to().unwrap().first().unwrap().name(),
            Some(long.as_str())
        );
    }

    #[test]
    fn bad_input_is_refused() {
        let mut d = draft();
        d.subject = Some("hi\r\nBcc: x@y".into());
        assert!(matches!(
            crate::mail::kind_of(&d.build().unwrap_err()),
            Some(crate::mail::Error::Invalid(_))
        ));
        let mut d = draft();
        d.attachments = vec!["/nonexistent/file".into()];
        assert!(matches!(
            crate::mail::kind_of(&d.build().unwrap_err()),
            Some(crate::mail::Error::NoInput(_))
        ));
        let mut d = draft();
        d.date = Some("yesterday".into());
        assert!(matches!(
            crate::mail::kind_of(&d.build().unwrap_err()),
            Some(crate::mail::Error::Invalid(_))
        ));
        let mut d = draft();
        d.message_id = Some("no-at-sign".into());
        assert!(matches!(
            crate::mail::kind_of(&d.build().unwrap_err()),
            Some(crate::mail::Error::Invalid(_))
        ));
        for bad in [
            "X-A: b\r\nBcc: c",
            "NoColon",
            "Bad Name: x",
            ": x",
            "Subject: x",
            "Content-Type: text/html",
            "X-Ctl: a\u{1b}b",
        ] {
            assert!(
                matches!(
                    crate::mail::kind_of(&parse_header(bad).unwrap_err()),
                    Some(crate::mail::Error::Invalid(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(
            parse_header("X-Mailer-Test:  value: with colon").unwrap(),
            ("X-Mailer-Test".to_string(), "value: with colon".to_string())
        );
    }
}
