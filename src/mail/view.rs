//! What a mail viewer needs beyond [`super::extract::summarize`]: one
//! decoded part by its number, and the HTML body made safe to show, with
//! its `cid:` pictures inlined and nothing left that runs or loads from
//! elsewhere.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use base64::Engine as _;

use super::extract::{decode, parse, Role};

/// Inline pictures larger than this (in total) are not embedded.
const MAX_INLINED: usize = 16 * 1024 * 1024;

/// One decoded part, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartContent {
    /// `type/subtype`.
    pub content_type: String,
    /// Declared charset of a text part (the content is UTF-8 when it was
    /// converted).
    pub charset: Option<String>,
    /// The decoded file name the message gave it.
    pub name: Option<String>,
    /// The decoded bytes.
    pub data: Vec<u8>,
}

/// The part numbered `number` (as in [`super::extract::PartEntry::part`]);
/// `None` when the message has no such part.
pub fn part(raw: &[u8], number: &str) -> anyhow::Result<Option<PartContent>> {
    let message = parse(raw)?;
    let found = {
        let decoded = decode(&message);
        decoded
            .parts
            .iter()
            .find(|p| p.part == number)
            .map(|p| PartContent {
                content_type: p.content_type.clone(),
                charset: p.charset.clone(),
                name: p.original_name.clone(),
                data: p.data.to_vec(),
            })
    };
    super::extract::decode::dispose(message);
    Ok(found)
}

/// The HTML body, sanitised: no scripts, event handlers, forms, frames or
/// styles that load anything; pictures only when the message carries them
/// (`cid:` references become `data:` URLs), so that nothing is fetched from
/// elsewhere. `None` when the message has no HTML body.
pub fn safe_html(raw: &[u8]) -> anyhow::Result<Option<String>> {
    let message = parse(raw)?;
    let result = {
        let decoded = decode(&message);
        let mut inlined = 0usize;
        let mut pictures = HashMap::new();
        for p in &decoded.parts {
            let (Some(cid), true) = (&p.content_id, p.content_type.starts_with("image/")) else {
                continue;
            };
            if !matches!(p.role, Role::Inline | Role::Attachment) || inlined > MAX_INLINED {
                continue;
            }
            inlined += p.data.len();
            let url = format!(
                "data:{};base64,{}",
                p.content_type,
                base64::engine::general_purpose::STANDARD.encode(&p.data)
            );
            pictures.insert(cid.to_ascii_lowercase(), url);
        }
        decoded.html.as_deref().map(|html| sanitize(html, pictures))
    };
    super::extract::decode::dispose(message);
    Ok(result)
}

/// Cleans `html`, replacing `cid:` picture references by `pictures`
/// (keyed by lower-case Content-ID).
fn sanitize(html: &str, pictures: HashMap<String, String>) -> String {
    ammonia::Builder::default()
        .url_schemes(HashSet::from(["cid", "http", "https", "mailto"]))
        .link_rel(Some("noopener noreferrer"))
        .attribute_filter(move |element, attribute, value| {
            let loads = matches!(attribute, "src" | "srcset" | "background")
                || (element == "img" && attribute == "longdesc");
            if !loads {
                return Some(Cow::Borrowed(value));
            }
            let cid = value.trim().strip_prefix("cid:")?;
            let cid = cid.trim_start_matches('<').trim_end_matches('>');
            pictures
                .get(&crate::text::percent_decoded(cid).to_ascii_lowercase())
                .map(|url| Cow::Owned(url.clone()))
        })
        .clean(html)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &[u8] = b"From: a@b\r\nSubject: s\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/related; boundary=\"r\"\r\n\r\n\
--r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
<p onclick=\"x()\">\xe4\xbd\xa0\xe5\xa5\xbd<script>alert(1)</script>\
<img src=\"cid:pic%401\"><img src=\"http://remote.example/t.gif\">\
<a href=\"https://example.com/\">link</a></p>\r\n\
--r\r\nContent-Type: image/png\r\nContent-ID: <pic@1>\r\n\
Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--r--\r\n";

    #[test]
    fn html_is_cleaned_and_pictures_inlined() {
        let html = safe_html(MESSAGE).unwrap().unwrap();
        assert!(html.contains("你好"), "{html}");
        assert!(
            !html.contains("script") && !html.contains("onclick"),
            "{html}"
        );
        assert!(!html.contains("remote.example"), "{html}");
        assert!(
            html.contains("src=\"data:image/png;base64,iVBORw0KGgo=\""),
            "{html}"
        );
        assert!(html.contains("href=\"https://example.com/\""), "{html}");
    }

    #[test]
    fn parts_by_number() {
        let p = part(MESSAGE, "2").unwrap().unwrap();
        assert_eq!(p.content_type, "image/png");
        assert_eq!(p.data, b"\x89PNG\r\n\x1a\n");
        assert!(part(MESSAGE, "9").unwrap().is_none());
    }
}
