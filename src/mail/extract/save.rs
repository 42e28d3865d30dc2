//! Writing a decoded message into its folder: new files only, never through
//! a symbolic link, never outside the folder.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::Path;

use anyhow::Context;

use super::decode::Decoded;
use super::filename;
use super::manifest::{Manifest, PartEntry, Role};
use super::sha256_hex;

/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";
/// The text body's file name.
pub const BODY_TEXT: &str = "body.txt";
/// The HTML body's file name.
pub const BODY_HTML: &str = "body.html";

/// Names a part never takes as they are, so that a script finding them
/// knows what they hold.
const RESERVED: [&str; 4] = [MANIFEST, BODY_TEXT, BODY_HTML, "message.eml"];

/// Gives out file names in one folder.
struct Namer<'d> {
    dir: &'d Path,
    /// For each wanted name, the next number to try after it was taken.
    next_number: HashMap<String, usize>,
    unnamed: usize,
}

impl<'d> Namer<'d> {
    fn new(dir: &'d Path) -> Self {
        Namer {
            dir,
            next_number: HashMap::new(),
            unnamed: 0,
        }
    }

    /// Creates a new file named `wanted` (already a safe component), or
    /// `wanted (2)`, `wanted (3)`... when taken, writes `data` into it and
    /// returns the name used.
    fn write(&mut self, wanted: &str, data: &[u8], reserved: bool) -> anyhow::Result<String> {
        let mut k = self.next_number.get(wanted).copied().unwrap_or(1);
        loop {
            let name = if k == 1 {
                wanted.to_string()
            } else {
                filename::numbered(wanted, k)
            };
            k += 1;
            if reserved && RESERVED.contains(&name.as_str()) {
                continue;
            }
            let path = self.dir.join(&name);
            match crate::store::durable::create_new(&path) {
                Ok(mut file) => {
                    self.next_number.insert(wanted.to_string(), k);
                    file.write_all(data)
                        .with_context(|| format!("writing {}", path.display()))?;
                    return Ok(name);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                // O_NOFOLLOW on a symbolic link that O_EXCL did not catch.
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {}
                Err(e) => {
                    return Err(crate::mail::cant_create(format!(
                        "cannot create {}: {e}",
                        path.display()
                    )))
                }
            }
            if k > 1_000_000 {
                return Err(crate::mail::cant_create(format!(
                    "cannot find a free name for {wanted:?} in {}",
                    self.dir.display()
                )));
            }
        }
    }

    /// The name for a part: its own if usable, else a suggested one, else
    /// `attachment-N.EXT`.
    fn wanted(&mut self, original: Option<&str>, suggested: Option<&str>, ctype: &str) -> String {
        original
            .and_then(filename::sanitize)
            .or_else(|| suggested.and_then(filename::sanitize))
            .unwrap_or_else(|| {
                self.unnamed += 1;
                filename::fallback_name(self.unnamed, ctype)
            })
    }
}

/// Writes the bodies, parts and manifest of `decoded` into `dir`.
pub fn save(decoded: &Decoded<'_>, dir: &Path) -> anyhow::Result<Manifest> {
    let mut namer = Namer::new(dir);
    let mut manifest = Manifest {
        headers: decoded.headers.clone(),
        warnings: decoded.warnings.clone(),
        ..Manifest::default()
    };
    let described = |body: &str| (body.len() as u64, sha256_hex(body.as_bytes()));
    if let Some(text) = &decoded.text {
        manifest.body_text = Some(namer.write(BODY_TEXT, text.as_bytes(), false)?);
    }
    if let Some(html) = &decoded.html {
        manifest.body_html = Some(namer.write(BODY_HTML, html.as_bytes(), false)?);
    }
    let text_file = decoded.text.as_deref().map(described);
    let html_file = decoded.html.as_deref().map(described);
    for part in &decoded.parts {
        let saved_as = match part.role {
            Role::BodyText => manifest.body_text.clone(),
            Role::BodyHtml => manifest.body_html.clone(),
            Role::NestedBody => None,
            Role::Attachment | Role::Inline | Role::Message => {
                let wanted = namer.wanted(
                    part.original_name.as_deref(),
                    part.suggested_name.as_deref(),
                    &part.content_type,
                );
                Some(namer.write(&wanted, &part.data, true)?)
            }
        };
        let in_message = part
            .in_message
            .and_then(|i| manifest.parts.get(i))
            .and_then(|container| container.saved_as.clone());
        let mut entry = entry(part, saved_as, in_message);
        // A body part is described by the file written for it (LF line
        // endings, several parts joined), not by its CRLF content.
        let written = match part.role {
            Role::BodyText => text_file.as_ref(),
            Role::BodyHtml => html_file.as_ref(),
            _ => None,
        };
        if let Some((size, sha256)) = written {
            entry.size = *size;
            entry.sha256.clone_from(sha256);
        }
        manifest.parts.push(entry);
    }
    let json = serde_json::to_vec_pretty(&manifest).context("encoding the manifest")?;
    let path = dir.join(MANIFEST);
    let mut file = crate::store::durable::create_new(&path)
        .map_err(|e| crate::mail::cant_create(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(&json)
        .and_then(|()| file.write_all(b"\n"))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(manifest)
}

/// The manifest entry for a decoded part.
pub fn entry(
    part: &super::DecodedPart<'_>,
    saved_as: Option<String>,
    in_message: Option<String>,
) -> PartEntry {
    PartEntry {
        part: part.part.clone(),
        role: part.role,
        saved_as,
        original_name: part.original_name.clone(),
        content_type: part.content_type.clone(),
        charset: part.charset.clone(),
        size: part.data.len() as u64,
        sha256: sha256_hex(&part.data),
        content_id: part.content_id.clone(),
        disposition: part.disposition.clone(),
        in_message,
    }
}
