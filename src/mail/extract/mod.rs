//! MIME extraction: decode a message into safe files in a folder.
//!
//! [`extract_to_dir`] is what `mailctl parse --save-dir` and
//! `mailctl fetch --save-dir` run for each message. It writes, inside the
//! message's own folder:
//!
//! - `body.txt`: the text body in UTF-8 (HTML converted to text when the
//!   message has no text part);
//! - `body.html`: the HTML body, when there is one;
//! - every attachment and inline part under its decoded, sanitised name
//!   ([`filename::sanitize`]); text parts in a known non-UTF-8 charset are
//!   converted to UTF-8, everything else is saved byte for byte;
//! - every nested message (`message/rfc822`) as its own `.eml`, with its
//!   attachments alongside;
//! - `manifest.json`: the [`Manifest`].
//!
//! Files are only ever created new and never through a symbolic link
//! ([`crate::store::durable::create_new`]); a name already present gets ` (2)`,
//! ` (3)`... Nothing is written outside the folder.

pub mod decode;
pub mod filename;
pub mod limit;
pub mod manifest;
pub mod rfc2231;
pub mod save;
pub mod summary;

use std::path::Path;

pub use decode::{decode, parse, Decoded, DecodedPart};
pub use limit::{Limits, DEFAULT_MAX_PARTS};
pub use manifest::{Headers, Manifest, PartEntry, Role};

/// Decodes `raw` and writes its bodies and attachments into `dir`, the
/// message's own (existing) folder, then `manifest.json`.
///
/// Broken input is decoded as far as possible and described in
/// [`Manifest::warnings`]. Fails with [`Error::NotAMessage`](crate::mail::Error::NotAMessage) when `raw` is not a
/// message at all (no header), [`Error::CantCreate`](crate::mail::Error::CantCreate) when a file cannot be
/// created, and an I/O error when writing fails.
///
/// At most [`DEFAULT_MAX_PARTS`] parts are decoded; see
/// [`extract_to_dir_with`].
pub fn extract_to_dir(raw: &[u8], dir: &Path) -> anyhow::Result<Manifest> {
    extract_to_dir_with(raw, dir, Limits::default())
}

/// [`extract_to_dir`] within `limits`: parts after the first
/// [`Limits::max_parts`] are neither parsed nor written, which the first
/// warning says.
pub fn extract_to_dir_with(raw: &[u8], dir: &Path, limits: Limits) -> anyhow::Result<Manifest> {
    let (input, cut) = limited(raw, limits);
    let message = parse(&input)?;
    let result = {
        let decoded = decode::decode_limited(&message, limits.max_parts, cut);
        save::save(&decoded, dir)
    };
    decode::dispose(message);
    result
}

/// Decodes `raw` without writing anything: the manifest has no `saved_as`
/// names, and the decoded bodies are returned beside it. At most
/// [`DEFAULT_MAX_PARTS`] parts are listed.
pub fn summarize(raw: &[u8]) -> anyhow::Result<summary::Summary> {
    summarize_with(raw, Limits::default())
}

/// [`summarize`] within `limits`.
pub fn summarize_with(raw: &[u8], limits: Limits) -> anyhow::Result<summary::Summary> {
    let (input, cut) = limited(raw, limits);
    let message = parse(&input)?;
    let decoded = decode::decode_limited(&message, limits.max_parts, cut);
    let summary = summary::Summary::from_decoded(decoded);
    decode::dispose(message);
    Ok(summary)
}

/// As much of `raw` as holds the parts `limits` allows, and whether it was
/// cut short (then the multipart cut closes there, so that its last part
/// is whole). Twice as many parts as allowed are parsed, leaving room for
/// multipart containers, which are not counted in the limit.
fn limited(raw: &[u8], limits: Limits) -> (std::borrow::Cow<'_, [u8]>, bool) {
    match limit::cut_after_parts(raw, limits.max_parts.saturating_mul(2)) {
        None => (raw.into(), false),
        Some(cut) => (limit::closed_at(raw, cut).into(), true),
    }
}

/// The lower-case hex SHA-256 of `data`.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = crate::crypto::sha256(data);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    out
}
