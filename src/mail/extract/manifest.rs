//! `manifest.json`: what a message held and where each part was written, so
//! scripts need not parse MIME themselves.

use serde::Serialize;

/// The decoded summary headers of a message (RFC 5322 section 3.6), in
/// UTF-8 with RFC 2047 encoded words decoded. Absent headers are `null`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Headers {
    /// `From`, as `Name <address>` entries joined by `, `.
    pub from: Option<String>,
    /// `To`, like `from`.
    pub to: Option<String>,
    /// `Cc`, like `from`.
    pub cc: Option<String>,
    /// `Date`, as written by the sender (unfolded, trimmed).
    pub date: Option<String>,
    /// `Subject`.
    pub subject: Option<String>,
    /// `Message-ID`, without the angle brackets.
    pub message_id: Option<String>,
}

/// What a part is to the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Text of the message itself: written to `body.txt`.
    BodyText,
    /// HTML of the message itself: written to `body.html`.
    BodyHtml,
    /// A file sent with the message.
    Attachment,
    /// Shown within the body (typically an image referenced by `cid:`).
    Inline,
    /// A nested message (`message/rfc822`), written as its own `.eml`.
    Message,
    /// The text or HTML of a nested message: kept inside that message's
    /// `.eml` and not written separately.
    NestedBody,
}

/// One part of the message (multipart containers are not listed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartEntry {
    /// Position in document order, counting multipart containers: `0` is
    /// the message's top part (the whole body when it is not multipart),
    /// `3` its third part after that, `2.1` part 1 of the message nested
    /// at part 2.
    pub part: String,
    /// What the part is.
    pub role: Role,
    /// The file it was written to, relative to the message's folder
    /// (`null` when not written: nested bodies, or a summary).
    pub saved_as: Option<String>,
    /// The file name the message proposed, decoded (RFC 2047 / RFC 2231).
    pub original_name: Option<String>,
    /// `type/subtype`, lower case.
    pub content_type: String,
    /// The declared charset of a text part; the content is UTF-8 when a
    /// converter for it exists.
    pub charset: Option<String>,
    /// Size in bytes of the decoded content; for a part written to
    /// `body.txt` or `body.html`, of that file as written (LF line endings,
    /// all body parts joined).
    pub size: u64,
    /// SHA-256 of the same bytes as `size`, lower-case hex.
    pub sha256: String,
    /// `Content-ID`, without angle brackets.
    pub content_id: Option<String>,
    /// `Content-Disposition` type (`attachment`, `inline`), lower case.
    pub disposition: Option<String>,
    /// For parts of a nested message: the `saved_as` of that message.
    pub in_message: Option<String>,
}

/// Everything written for one message (also `manifest.json` in its folder).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Manifest {
    /// The message's decoded headers.
    pub headers: Headers,
    /// `body.txt` when written (the name can differ if it was taken).
    pub body_text: Option<String>,
    /// `body.html` when written.
    pub body_html: Option<String>,
    /// Every part, in document order.
    pub parts: Vec<PartEntry>,
    /// What was wrong with the input and how it was handled.
    pub warnings: Vec<String>,
}
