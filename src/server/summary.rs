//! The decoded one-message summary `serve -v` prints after each delivery:
//! envelope, From, Subject (decoded to UTF-8 whatever its charset) and
//! attachments with their decoded sizes.

use mail_parser::{MessageParser, MimeHeaders};

use super::smtp::Envelope;
use crate::text::printable;

/// Summary lines for a delivered message (already printable on a terminal).
pub fn describe(envelope: &Envelope, message: &[u8]) -> Vec<String> {
    let mut lines = vec![format!(
        "envelope from <{}> to {}",
        printable(envelope.from.as_bytes()),
        envelope
            .recipients
            .iter()
            .map(|r| format!("<{}>", printable(r.as_bytes())))
            .collect::<Vec<_>>()
            .join(", ")
    )];
    let parsed = match MessageParser::default().parse(message) {
        Some(m) => m,
        None => {
            lines.push("message could not be parsed".to_string());
            return lines;
        }
    };
    if let Some(from) = parsed.from().and_then(|a| a.first()) {
        let address = from.address().unwrap_or("");
        let text = match from.name() {
            Some(name) => format!("{name} <{address}>"),
            None => format!("<{address}>"),
        };
        lines.push(format!("from: {}", printable(text.as_bytes())));
    }
    lines.push(format!(
        "subject: {}",
        printable(parsed.subject().unwrap_or("(none)").as_bytes())
    ));
    for part in parsed.attachments() {
        let name = part.attachment_name().unwrap_or("(unnamed)");
        lines.push(format!(
            "attachment: {} ({} bytes)",
            printable(name.as_bytes()),
            part.len()
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gb18030_subject_and_attachment() {
        let envelope = Envelope {
            helo: "c".into(),
            esmtp: true,
            tls: false,
            authenticated: None,
            from: "a@b".into(),
            recipients: vec!["c@d".into(), "e@f".into()],
            mailboxes: vec!["c".into(), "e".into()],
        };
        // "邮件测试" in GB18030, base64: 08q8/rLiytQ=
        let message = b"From: =?gb18030?B?1cXI/Q==?= <zhang@example.cn>\r\n\
Subject: =?gb18030?B?08q8/rLiytQ=?=\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n\
--b\r\nContent-Type: application/octet-stream\r\n\
Content-Disposition: attachment; filename=\"data.bin\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\nAAECAwQ=\r\n--b--\r\n";
        let lines = describe(&envelope, message);
        assert_eq!(
            lines,
            [
                "envelope from <a@b> to <c@d>, <e@f>",
                "from: 张三 <zhang@example.cn>",
                "subject: 邮件测试",
                "attachment: data.bin (5 bytes)",
            ]
        );
    }
}
