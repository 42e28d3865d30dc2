//! Safe file names for saved parts: whatever a message claims, the name
//! written is one path component inside the message's folder.

/// The longest name written, in bytes (the usual `NAME_MAX`).
pub const MAX_NAME_BYTES: usize = 255;

/// Extensions longer than this are treated as part of the stem when a name
/// must be shortened.
const MAX_EXT_BYTES: usize = 32;

/// Turns a name proposed by a message into a safe single path component, or
/// `None` when nothing usable is left.
///
/// Directory parts (before the last `/` or `\`) are dropped, control
/// characters (C0, DEL, C1), NUL and the Unicode bidirectional controls are
/// removed, surrounding white space and leading dots are stripped (so `.`
/// and `..` become empty), and the result is cut to [`MAX_NAME_BYTES`] on a
/// character boundary keeping the extension.
pub fn sanitize(proposed: &str) -> Option<String> {
    let last = proposed
        .split(['/', '\\'])
        .map(clean_component)
        .rfind(|c| !c.is_empty())?;
    let (stem, ext) = split_extension(&last);
    Some(fit(stem, "", ext))
}

fn clean_component(component: &str) -> String {
    let kept: String = component.chars().filter(|&c| !is_unsafe_char(c)).collect();
    // Dots and white space may alternate (". .. x"): strip them together,
    // so nothing left starts with a dot and `.`/`..` cannot come back.
    kept.trim()
        .trim_start_matches(|c: char| c == '.' || c.is_whitespace())
        .to_string()
}

fn is_unsafe_char(c: char) -> bool {
    let u = c as u32;
    u < 0x20
        || u == 0x7f
        || (0x80..0xa0).contains(&u)
        || matches!(u, 0x200e | 0x200f | 0x202a..=0x202e | 0x2066..=0x2069 | 0xfeff)
}

/// Splits `name` into stem and extension (with its dot); the extension is
/// empty when there is none, when it is too long to be one, or when the
/// stem would be empty.
pub fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(dot) if dot > 0 && name.len() - dot <= MAX_EXT_BYTES + 1 => name.split_at(dot),
        _ => (name, ""),
    }
}

/// Joins `stem`, `suffix` (such as ` (2)`) and `ext`, shortening the stem
/// on a character boundary so the whole is at most [`MAX_NAME_BYTES`].
pub fn fit(stem: &str, suffix: &str, ext: &str) -> String {
    let room = MAX_NAME_BYTES.saturating_sub(suffix.len() + ext.len());
    let mut cut = stem.len().min(room);
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    let stem = stem[..cut].trim_end();
    let mut out = String::with_capacity(stem.len() + suffix.len() + ext.len());
    out.push_str(stem);
    out.push_str(suffix);
    out.push_str(ext);
    out
}

/// The extension (without dot) to give an unnamed part of `content_type`.
pub fn extension_for(content_type: &str) -> &'static str {
    match content_type {
        "text/plain" => "txt",
        "text/html" => "html",
        "message/rfc822" | "message/global" => "eml",
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "application/pdf" => "pdf",
        "application/octet-stream" => "bin",
        other => mime_guess::get_mime_extensions_str(other)
            .and_then(|exts| exts.first().copied())
            .unwrap_or("bin"),
    }
}

/// The name for the `n`th unnamed part: `attachment-N.EXT`.
pub fn fallback_name(n: usize, content_type: &str) -> String {
    format!("attachment-{n}.{}", extension_for(content_type))
}

/// The `k`th alternative (k >= 2) for a name already taken:
/// `name (k).ext`, still within [`MAX_NAME_BYTES`].
pub fn numbered(name: &str, k: usize) -> String {
    let (stem, ext) = split_extension(name);
    fit(stem, &format!(" ({k})"), ext)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_parts_are_removed() {
        assert_eq!(sanitize("../../x").as_deref(), Some("x"));
        assert_eq!(sanitize("/etc/x").as_deref(), Some("x"));
        assert_eq!(sanitize("a\\b").as_deref(), Some("b"));
        assert_eq!(sanitize("..\\..\\windows\\x.exe").as_deref(), Some("x.exe"));
        assert_eq!(sanitize("dir/").as_deref(), Some("dir"));
    }

    #[test]
    fn dots_and_controls() {
        assert_eq!(sanitize(".."), None);
        assert_eq!(sanitize("."), None);
        assert_eq!(sanitize("../.."), None);
        assert_eq!(sanitize(""), None);
        assert_eq!(sanitize("  \t "), None);
        assert_eq!(sanitize(".bashrc").as_deref(), Some("bashrc"));
        assert_eq!(sanitize("...x.txt").as_deref(), Some("x.txt"));
        assert_eq!(sanitize("a\0b\r\n.txt").as_deref(), Some("ab.txt"));
        assert_eq!(sanitize("a\u{1b}[2Jb").as_deref(), Some("a[2Jb"));
        assert_eq!(
            sanitize("bill\u{202e}fdp.exe").as_deref(),
            Some("billfdp.exe")
        );
        assert_eq!(sanitize("\u{85}").as_deref(), None);
        // Dots and spaces alternating must not leave a leading dot, `.` or `..`.
        assert_eq!(sanitize(". .."), None);
        assert_eq!(sanitize(". ."), None);
        assert_eq!(sanitize(" . . .x"), Some("x".to_string()));
        assert_eq!(sanitize("a/. ../b/ .. "), Some("b".to_string()));
        assert_eq!(sanitize(".\u{3000}.bashrc"), Some("bashrc".to_string()));
        assert_eq!(sanitize("报告.docx").as_deref(), Some("报告.docx"));
    }

    #[test]
    fn long_names_keep_their_extension_and_char_boundaries() {
        let long = format!("{}.pdf", "x".repeat(300));
        let got = sanitize(&long).unwrap();
        assert_eq!(got.len(), 255);
        assert!(got.ends_with("xx.pdf"));

        // 3-byte characters: the cut must fall on a boundary.
        let long = format!("{}.txt", "文".repeat(100));
        let got = sanitize(&long).unwrap();
        assert!(got.len() <= 255);
        assert_eq!(got, format!("{}.txt", "文".repeat(83)));

        // A very long "extension" is not kept as one.
        let long = format!("a.{}", "y".repeat(300));
        assert_eq!(sanitize(&long).unwrap().len(), 255);
    }

    #[test]
    fn numbering_and_fallbacks() {
        assert_eq!(numbered("a.txt", 2), "a (2).txt");
        assert_eq!(numbered("noext", 3), "noext (3)");
        let long = format!("{}.pdf", "x".repeat(251));
        let got = numbered(&long, 12);
        assert_eq!(got.len(), 255);
        assert!(got.ends_with("x (12).pdf"));
        assert_eq!(fallback_name(1, "image/png"), "attachment-1.png");
        assert_eq!(
            fallback_name(2, "application/x-unknown"),
            "attachment-2.bin"
        );
        assert_eq!(fallback_name(3, "message/rfc822"), "attachment-3.eml");
    }
}
