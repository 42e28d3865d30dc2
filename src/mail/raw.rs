//! Ready-made messages (`mailctl send --raw`, sendmail style): read once,
//! line endings made CRLF, spooled to an unlinked temporary file when
//! large, Bcc header removed, recipients optionally taken from the header
//! (`-t`).

use std::io::{self, Read};
use std::sync::Arc;

use crate::exit::{fail, Exit};

use super::compose::message::{Message, Segment};
use super::compose::spool::{for_each_chunk, SpoolWriter, Spooled};

pub use super::compose::spool::MEMORY_LIMIT;

/// The longest header section accepted.
pub const MAX_HEADER: usize = 1 << 20;

/// A ready-made message and what its header says.
#[derive(Debug)]
pub struct RawMessage {
    /// The message to send (Bcc header removed).
    pub message: Message,
    /// The address in From, if any.
    pub from: Option<String>,
    /// Every address in To, Cc and Bcc, once each, in that order.
    pub header_recipients: Vec<String>,
}

fn field_name(line: &[u8]) -> &[u8] {
    let end = line.iter().position(|&b| b == b':').unwrap_or(line.len());
    line[..end].trim_ascii_end()
}

/// Removes every field called `name` (with its continuation lines).
pub fn remove_field(header: &[u8], name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len());
    let mut skipping = false;
    for line in header.split_inclusive(|&b| b == b'\n') {
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            skipping = field_name(line).eq_ignore_ascii_case(name.as_bytes());
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads a complete message from `input`.
pub fn read(input: &mut dyn Read) -> anyhow::Result<RawMessage> {
    let local = |e: io::Error| fail(Exit::IoErr, format!("reading the message: {e}"));
    let mut writer = SpoolWriter::new();
    for_each_chunk(
        input,
        |chunk| writer.push(chunk).map(drop).map_err(local),
        local,
    )?;
    let Spooled {
        spool,
        len,
        eight_bit,
    } = writer.finish().map_err(local)?;
    if len == 0 {
        crate::bail_with!(Exit::DataErr, "the message on standard input is empty");
    }

    // The header section: everything before the first empty line.
    let mut head = vec![0u8; (len as usize).min(MAX_HEADER + 4)];
    let filled = spool.read_full_at(&mut head, 0).map_err(local)?;
    head.truncate(filled);
    let header_len = if head.starts_with(b"\r\n") {
        0
    } else {
        match find(&head, b"\r\n\r\n") {
            Some(pos) => pos + 2,
            None if len as usize <= MAX_HEADER => len as usize,
            None => crate::bail_with!(
                Exit::DataErr,
                "the message has no end of header within {MAX_HEADER} bytes"
            ),
        }
    };
    let header = &head[..header_len];
    let parsed = mail_parser::MessageParser::default().parse_headers(header);
    let mut from = None;
    let mut header_recipients: Vec<String> = Vec::new();
    if let Some(parsed) = &parsed {
        from = parsed
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(str::to_string);
        // Every To, Cc and Bcc field: RFC 5322 section 4.5.3 allows more
        // than one of each, and sendmail -t reads them all.
        for list in parsed
            .all_to()
            .chain(parsed.all_cc())
            .chain(parsed.all_bcc())
        {
            for addr in list.iter() {
                if let Some(a) = addr.address() {
                    if !header_recipients.iter().any(|r| r.eq_ignore_ascii_case(a)) {
                        header_recipients.push(a.to_string());
                    }
                }
            }
        }
    }
    let message_id = parsed
        .as_ref()
        .and_then(|p| p.message_id())
        .map(str::to_string);
    let cleaned = remove_field(header, "Bcc");
    let rest_len = len - header_len as u64;
    let mut segments = vec![Segment::Bytes(cleaned)];
    if rest_len > 0 {
        segments.push(Segment::Spooled {
            spool: Arc::new(spool),
            offset: header_len as u64,
            len: rest_len,
        });
    }
    let mut message = Message::from_segments(segments, message_id);
    message.set_eight_bit(eight_bit);
    Ok(RawMessage {
        message,
        from,
        header_recipients,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::compose::spool::Spool;

    #[test]
    fn bcc_removed_recipients_collected_line_endings_fixed() {
        let input = b"From: A <a@x.org>\nTo: b@x.org, \"C\" <c@x.org>\nBcc: hidden@x.org,\n  other@x.org\nCc: b@x.org, d@x.org\nSubject: hi\nMessage-ID: <m1@x.org>\n\nbody\n.line\r\nend\r";
        let raw = read(&mut &input[..]).unwrap();
        let out = raw.message.to_vec().unwrap();
        assert_eq!(out.len() as u64, raw.message.size());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "From: A <a@x.org>\r\nTo: b@x.org, \"C\" <c@x.org>\r\nCc: b@x.org, d@x.org\r\nSubject: hi\r\nMessage-ID: <m1@x.org>\r\n\r\nbody\r\n.line\r\nend\r\n"
        );
        assert_eq!(raw.from.as_deref(), Some("a@x.org"));
        assert_eq!(
            raw.header_recipients,
            vec![
                "b@x.org",
                "c@x.org",
                "d@x.org",
                "hidden@x.org",
                "other@x.org"
            ]
        );
        assert_eq!(raw.message.message_id(), Some("m1@x.org"));
        assert!(!raw.message.eight_bit());
    }

    #[test]
    fn large_input_is_spooled_to_a_file() {
        let mut input = b"To: b@x.org\r\nSubject: big\r\n\r\n".to_vec();
        for i in 0..100_000 {
            input.extend_from_slice(format!("line {i} \u{e9}\n").as_bytes());
        }
        let raw = read(&mut &input[..]).unwrap();
        assert!(matches!(
            raw.message.segments()[1],
            Segment::Spooled { ref spool, .. } if matches!(**spool, Spool::File(_))
        ));
        let out = raw.message.to_vec().unwrap();
        assert_eq!(out.len() as u64, raw.message.size());
        assert!(raw.message.eight_bit());
        assert!(out.ends_with("line 99999 \u{e9}\r\n".as_bytes()));
        assert_eq!(raw.header_recipients, vec!["b@x.org"]);
    }

    /// Repeated destination fields (RFC 5322 section 4.5.3) all count:
    /// a recipient in a second Bcc field must not be dropped silently.
    #[test]
    fn every_destination_field_counts() {
        let raw = read(
            &mut &b"From: a@x.org\nTo: b@x.org\nBcc: s@x.org\nCc: c@x.org\nbcc: t@x.org, u@x.org\nTo: \"V\" <v@x.org>\n\nhi\n"[..],
        )
        .unwrap();
        assert_eq!(
            raw.header_recipients,
            ["b@x.org", "v@x.org", "c@x.org", "s@x.org", "t@x.org", "u@x.org"]
        );
        let out = String::from_utf8(raw.message.to_vec().unwrap()).unwrap();
        assert!(!out.to_ascii_lowercase().contains("bcc"), "{out}");
    }

    #[test]
    fn empty_or_headerless() {
        let err = read(&mut &b""[..]).unwrap_err();
        assert_eq!(crate::exit::exit_status(&err), Exit::DataErr);
        let raw = read(&mut &b"\nonly body"[..]).unwrap();
        assert_eq!(raw.message.to_vec().unwrap(), b"\r\nonly body\r\n");
        assert!(raw.header_recipients.is_empty());
    }
}
