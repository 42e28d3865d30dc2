//! The SMTP server machine and its DATA receiver fed what a remote client
//! may send: no panic; every reply well formed (RFC 5321 section 4.2);
//! the envelope only names safe mailboxes and its trace headers cannot be
//! broken into extra header lines; the message data unstuffed exactly
//! (checked against a line-by-line model), whatever the chunk sizes.
//!
//! Input: a flags byte (loopback, TLS offered, accounts, TLS from the start,
//! delivery outcome), a chunk-size seed, a size-limit byte, then the bytes
//! the client sends.

#![no_main]

mod common;

use std::sync::Arc;

use common::{crlf_lines, sent_password, Chunks};
use libfuzzer_sys::fuzz_target;
use mailctl::net::serve::session::MAX_COMMAND_LINE;
use mailctl::proto::line::LineReader;
use mailctl::proto::smtp::receive::DataReceiver;
use mailctl::proto::smtp::reply::Reply;
use mailctl::proto::smtp::server::{Action, DataOutcome, Envelope, SmtpServer, MAX_RECIPIENTS};
use mailctl::proto::users::{is_mailbox_name, Policy, Users};
use mailctl::secret::Secret;

fuzz_target!(|data: &[u8]| {
    let [flags, seed, size, ref input @ ..] = *data else {
        return;
    };
    let mut users = Users::none();
    if flags & 4 != 0 {
        users.add("alice", Secret::new("secret")).unwrap();
        users.add("bob", Secret::new("hunter2")).unwrap();
    }
    let users = Arc::new(users);
    let policy = Policy {
        hostname: "mx.example".to_string(),
        max_size: u64::from(size) * 1000,
        tls_available: flags & 2 != 0,
        users: users.clone(),
    };
    let loopback = flags & 1 != 0;
    let mut server = if flags & 8 != 0 {
        SmtpServer::new_tls(policy, loopback)
    } else {
        SmtpServer::new(policy, loopback)
    };
    check_reply(&server.greeting());
    check_reply(&server.timeout_reply());
    check_reply(&server.shutdown_reply());

    let mut tls = flags & 8 != 0;
    let mut rest = input;
    // Command lines framed as the sessions frame them.
    let mut lines = LineReader::new(MAX_COMMAND_LINE);
    loop {
        let (used, line) = lines.push(rest);
        rest = &rest[used..];
        let line = match line {
            None => break,
            Some(Err(_)) => {
                check_reply(&server.line_too_long());
                continue;
            }
            Some(Ok(line)) => line,
        };
        let line = line.as_slice();
        // What the transcript shows: a SASL response never, and nothing
        // longer than the line and the mark that replaces a secret.
        let redacted = server.redacted(line);
        if server.in_auth_exchange() {
            assert_eq!(redacted, b"<redacted>");
        }
        assert!(redacted.len() <= line.len() + b" <redacted>".len());
        let step = server.command(line);
        check_reply(&step.reply);
        match step.action {
            Action::Continue => assert!(server.envelope().is_none()),
            Action::Close => break,
            Action::StartTls => {
                assert_eq!(step.reply.code, 220);
                server.tls_started();
                tls = true;
            }
            Action::ReceiveData => {
                assert_eq!(step.reply.code, 354);
                let envelope = server.envelope().expect("an envelope in the data phase");
                check_envelope(&envelope, &users);
                // Nobody let in: with accounts, only a client that sent a
                // password, over TLS or loopback; without, no AUTH at all.
                assert_eq!(envelope.tls, tls);
                match envelope.authenticated.as_deref() {
                    None => assert!(!users.exist(), "mail without AUTH"),
                    Some(name) => {
                        assert!(tls || loopback, "AUTH in plaintext");
                        let password = match name {
                            "alice" => "secret",
                            "bob" => "hunter2",
                            _ => panic!("authenticated as {name:?}"),
                        };
                        assert!(sent_password(input, password), "let in as {name}");
                    }
                }
                let (used, done) = receive(rest, line.ends_with(b"\r\n"), seed);
                if !done {
                    return;
                }
                rest = &rest[used..];
                let outcome = match flags >> 4 & 3 {
                    0 => DataOutcome::TooLarge,
                    1 => DataOutcome::Failed,
                    _ => DataOutcome::Delivered("18F3C1M1".to_string()),
                };
                let reply = server.data_done(outcome);
                check_reply(&reply);
                assert!(matches!(reply.code, 250 | 451 | 552));
                assert!(server.envelope().is_none());
            }
        }
    }
});

/// One or more lines `NNN-text` / `NNN text`, same code, CRLF, printable,
/// at most 512 octets each (RFC 5321 section 4.5.3.1.5).
fn check_reply(reply: &Reply) {
    assert!((200..600).contains(&reply.code), "code {}", reply.code);
    let wire = reply.to_bytes();
    let lines = crlf_lines(&wire);
    assert!(!lines.is_empty());
    assert_eq!(lines.len(), reply.lines.len());
    let code = reply.code.to_string();
    for (i, line) in lines.iter().enumerate() {
        assert!(line.len() <= 510, "reply line too long: {}", line.len());
        assert!(line.starts_with(code.as_bytes()));
        let sep = if i + 1 == lines.len() { b' ' } else { b'-' };
        assert_eq!(
            line.get(3),
            Some(&sep),
            "{:?}",
            String::from_utf8_lossy(line)
        );
        assert!(
            line.iter().all(|&b| (0x20..0x7f).contains(&b)),
            "unprintable reply {line:?}"
        );
    }
}

fn check_envelope(envelope: &Envelope, users: &Users) {
    assert!(!envelope.recipients.is_empty());
    assert!(envelope.recipients.len() <= MAX_RECIPIENTS);
    assert!(!envelope.mailboxes.is_empty());
    assert!(envelope.mailboxes.len() <= envelope.recipients.len());
    for (i, mailbox) in envelope.mailboxes.iter().enumerate() {
        assert!(is_mailbox_name(mailbox), "{mailbox}");
        assert!(!envelope.mailboxes[..i].contains(mailbox), "duplicate");
        if users.exist() {
            assert!(users.lookup(mailbox).is_some(), "not an account: {mailbox}");
        }
    }
    let trace = envelope.trace_headers("mx.example", "127.0.0.1", "18F3C1M1", "date");
    let lines = crlf_lines(&trace);
    assert!(lines[0].starts_with(b"Return-Path: <"));
    assert!(lines[1].starts_with(b"Received: from "));
    for line in &lines[2..] {
        assert!(line.starts_with(b"\t"), "unfolded trace line {line:?}");
    }
    for line in &lines {
        assert!(
            line.iter().all(|&b| b == b'\t'
                || (0x20..0x7f).contains(&b)
                || (envelope.smtputf8 && b >= 0x80)),
            "unprintable trace line {line:?}"
        );
    }
}

/// Feeds `input` to a receiver whole and in chunks, checks both against the
/// model, and returns (bytes used, end seen).
fn receive(input: &[u8], after_crlf: bool, seed: u8) -> (usize, bool) {
    let mut whole = DataReceiver::after_command_line(after_crlf);
    let mut whole_out = Vec::new();
    let whole_used = whole.feed(input, &mut whole_out);
    assert!(whole_used <= input.len());

    let mut chunked = DataReceiver::after_command_line(after_crlf);
    let mut chunked_out = Vec::new();
    let mut chunks = Chunks::new(seed);
    let mut used = 0;
    while used < input.len() && !chunked.is_done() {
        let take = chunks.next(input.len() - used);
        let chunk = &input[used..used + take];
        let n = chunked.feed(chunk, &mut chunked_out);
        assert!(n <= chunk.len(), "used more than given");
        if !chunked.is_done() {
            assert_eq!(n, chunk.len(), "stopped before the end");
        }
        used += n;
    }
    assert_eq!(
        whole.is_done(),
        chunked.is_done(),
        "chunking changed the end"
    );
    assert_eq!(whole_used, used, "chunking changed the bytes used");
    assert_eq!(whole_out, chunked_out, "chunking changed the content");

    let (expected, end, partial, partial_after_crlf) = model(input, after_crlf);
    assert_eq!(end, whole.is_done().then_some(whole_used), "end of data");
    if whole.is_done() {
        assert_eq!(whole_out, expected, "unstuffed content");
    } else {
        assert_eq!(whole_used, input.len());
        assert!(whole_out.starts_with(&expected), "unstuffed content");
        // The unfinished last line: passed on as it came (minus a stuffing
        // dot), except for a trailing CR (or ". CR") held back.
        let mut line = partial;
        if partial_after_crlf && line.first() == Some(&b'.') {
            line = &line[1..];
        }
        let extra = &whole_out[expected.len()..];
        assert!(line.starts_with(extra) && line.len() - extra.len() <= 1);
    }
    (whole_used, whole.is_done())
}

/// RFC 5321 section 4.5.2 line by line: the content of the complete lines,
/// where the terminating `.` line ends (bytes used), the unfinished last
/// line and whether the line before it ended in CRLF.
fn model(input: &[u8], mut after_crlf: bool) -> (Vec<u8>, Option<usize>, &[u8], bool) {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(p) = input[pos..].iter().position(|&b| b == b'\n') {
        let line = &input[pos..pos + p];
        let next = pos + p + 1;
        let crlf = line.ends_with(b"\r");
        let text = if crlf { &line[..line.len() - 1] } else { line };
        if after_crlf && crlf && text == b"." {
            return (out, Some(next), &[], true);
        }
        let kept = if after_crlf && text.len() > 1 && text[0] == b'.' {
            &text[1..]
        } else {
            text
        };
        out.extend_from_slice(kept);
        out.extend_from_slice(b"\r\n");
        after_crlf = crlf;
        pos = next;
    }
    (out, None, &input[pos..], after_crlf)
}
