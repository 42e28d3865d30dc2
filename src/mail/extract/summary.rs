//! What `mailctl parse` shows without `--save-dir`: the headers, the text
//! body and the list of parts, as text or as one JSON object.

use std::fmt::Write as _;

use serde::Serialize;

use super::decode::Decoded;
use super::manifest::{Headers, PartEntry, Role};
use crate::text::printable;

/// A decoded message, nothing written.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Decoded headers.
    pub headers: Headers,
    /// The text body.
    pub text: Option<String>,
    /// The HTML body.
    pub html: Option<String>,
    /// Every part (`saved_as` is `null`).
    pub parts: Vec<PartEntry>,
    /// What was wrong with the input.
    pub warnings: Vec<String>,
}

impl Summary {
    /// Builds the summary of a decoded message.
    pub fn from_decoded(decoded: Decoded<'_>) -> Summary {
        let parts = decoded
            .parts
            .iter()
            .map(|p| super::save::entry(p, None, None))
            .collect();
        Summary {
            headers: decoded.headers,
            text: decoded.text,
            html: decoded.html,
            parts,
            warnings: decoded.warnings,
        }
    }

    /// The readable form: headers, a blank line, the text body, then the
    /// attachments. Every piece of message text passes through
    /// [`printable`], so a message cannot drive the terminal.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let h = &self.headers;
        for (name, value) in [
            ("From", &h.from),
            ("To", &h.to),
            ("Cc", &h.cc),
            ("Date", &h.date),
            ("Subject", &h.subject),
        ] {
            if let Some(v) = value {
                let _ = writeln!(out, "{name}: {}", printable(v.as_bytes()));
            }
        }
        if let Some(id) = &h.message_id {
            let _ = writeln!(out, "Message-ID: <{}>", printable(id.as_bytes()));
        }
        out.push('\n');
        match &self.text {
            Some(text) => {
                for line in text.lines() {
                    out.push_str(&printable(line.trim_end_matches('\r').as_bytes()));
                    out.push('\n');
                }
            }
            None => out.push_str("(no text body)\n"),
        }
        let listed: Vec<&PartEntry> = self
            .parts
            .iter()
            .filter(|p| matches!(p.role, Role::Attachment | Role::Inline | Role::Message))
            .collect();
        if !listed.is_empty() {
            let _ = writeln!(out, "\nAttachments:");
            for p in listed {
                let name = p.original_name.as_deref().unwrap_or("(no name)");
                let _ = write!(
                    out,
                    "  {}  {}, {} bytes",
                    printable(name.as_bytes()),
                    printable(p.content_type.as_bytes()),
                    p.size
                );
                if p.role == Role::Inline {
                    out.push_str(", inline");
                }
                if let Some(cid) = &p.content_id {
                    let _ = write!(out, ", cid:{}", printable(cid.as_bytes()));
                }
                out.push('\n');
            }
        }
        out
    }
}
