//! MIME extraction: decode a message into safe files in a folder.

use std::path::Path;

/// What was written for one message.
#[derive(Debug, Default, serde::Serialize)]
pub struct Manifest {}

/// Decodes `raw` and writes its bodies and attachments into `dir`.
pub fn extract_to_dir(_raw: &[u8], _dir: &Path) -> anyhow::Result<Manifest> {
    Err(crate::exit::fail(
        crate::exit::Exit::Software,
        "MIME extraction is not implemented yet",
    ))
}
