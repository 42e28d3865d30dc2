//! The decoded one-message summary `serve -v` prints after each delivery:
//! envelope, From, Subject (decoded to UTF-8 whatever its charset) and
//! attachments with their decoded sizes.

use crate::mail::extract::Role;
use crate::proto::smtp::server::Envelope;
use crate::text::printable;

/// Summary lines for a delivered message (already printable on a terminal).
///
/// The message is decoded by the same code as `mailctl parse`
/// ([`crate::mail::extract::summarize`]), so names split into RFC 2231 segments in
/// a legacy charset come out whole, and the parser's own failures cannot
/// take the connection down.
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
    let summary = match crate::mail::extract::summarize(message) {
        Ok(s) => s,
        Err(_) => {
            lines.push("message could not be parsed".to_string());
            return lines;
        }
    };
    if let Some(from) = &summary.headers.from {
        lines.push(format!("from: {}", printable(from.as_bytes())));
    }
    lines.push(format!(
        "subject: {}",
        printable(
            summary
                .headers
                .subject
                .as_deref()
                .unwrap_or("(none)")
                .as_bytes()
        )
    ));
    for part in &summary.parts {
        let kind = match part.role {
            Role::Attachment | Role::Inline => "attachment",
            Role::Message => "message",
            Role::BodyText | Role::BodyHtml | Role::NestedBody => continue,
        };
        lines.push(format!(
            "{kind}: {} ({} bytes)",
            printable(
                part.original_name
                    .as_deref()
                    .unwrap_or("(unnamed)")
                    .as_bytes()
            ),
            part.size
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
            smtputf8: false,
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
Content-Transfer-Encoding: base64\r\n\r\nAAECAwQ=\r\n\
--b\r\nContent-Type: text/plain; charset=gb18030\r\n\
Content-Disposition: attachment;\r\n filename*0*=gb18030''%B1%A8; filename*1*=%B8%E6.txt\r\n\
Content-Transfer-Encoding: base64\r\n\r\n1tDOxA==\r\n--b--\r\n";
        let lines = describe(&envelope, message);
        assert_eq!(
            lines,
            [
                "envelope from <a@b> to <c@d>, <e@f>",
                "from: 张三 <zhang@example.cn>",
                "subject: 邮件测试",
                "attachment: data.bin (5 bytes)",
                "attachment: 报告.txt (6 bytes)",
            ]
        );
    }
}
