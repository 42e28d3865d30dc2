//! The POP3 server machine fed what a remote client may send, with a fake
//! maildrop where it asks for one: no panic, every reply well formed
//! (RFC 1939 section 3, RFC 2449 section 4), only messages of the snapshot
//! ever sent or removed. And the message stuffer fed any stored message in
//! any chunks: the same valid dot-stuffed CRLF text ending in `.` CRLF,
//! which unstuffs back to the stored message (or, for TOP, a prefix of it).
//!
//! Input: a flags byte (bit 0 chooses the stuffer; otherwise loopback, TLS
//! offered, accounts, maildrop size and open result), a chunk-size seed,
//! then the client's bytes (or a TOP byte and the stored message).

#![no_main]

mod common;

use std::sync::Arc;

use common::{crlf_lines, lf_to_crlf, sent_password, Chunks};
use libfuzzer_sys::fuzz_target;
use mailctl::net::serve::session::MAX_COMMAND_LINE;
use mailctl::proto::line::LineReader;
use mailctl::proto::pop3::server::{
    MessageInfo, MessageStuffer, OpenError, Pop3Action, Pop3Server,
};
use mailctl::proto::users::{Policy, Users};
use mailctl::secret::Secret;

const TIMESTAMP: &str = "<1896.697170952@mx.example>";

fuzz_target!(|data: &[u8]| {
    let [flags, seed, ref input @ ..] = *data else {
        return;
    };
    if flags & 1 == 0 {
        session(flags, input);
    } else if let [top, ref stored @ ..] = *input {
        let body_lines = (top & 0x80 == 0).then_some(u64::from(top & 7));
        stuffing(stored, body_lines, seed);
    }
});

fn session(flags: u8, input: &[u8]) {
    let mut users = Users::none();
    if flags & 8 != 0 {
        users.add("alice", Secret::new("secret")).unwrap();
    }
    let policy = Policy {
        hostname: "mx.example".to_string(),
        max_size: 1000,
        tls_available: flags & 4 != 0,
        users: Arc::new(users),
    };
    let mut server = Pop3Server::new(policy, TIMESTAMP.to_string(), flags & 2 != 0);
    let greeting = server.greeting();
    check_reply(&greeting);
    assert!(greeting
        .windows(TIMESTAMP.len())
        .any(|w| w == TIMESTAMP.as_bytes()));
    check_reply(&server.timeout_reply());
    check_reply(&server.shutdown_reply());

    let loopback = flags & 2 != 0;
    let mut tls = false;
    let count = usize::from(flags >> 4 & 3);
    let mut snapshot = 0;
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
        match step.action {
            Pop3Action::Continue => check_reply(&step.reply),
            Pop3Action::Close => {
                check_reply(&step.reply);
                break;
            }
            Pop3Action::StartTls => {
                assert!(step.reply.starts_with(b"+OK"));
                check_reply(&step.reply);
                server.tls_started();
                tls = true;
            }
            Pop3Action::Open(name) => {
                assert!(step.reply.is_empty());
                assert!(mailctl::proto::users::is_mailbox_name(&name));
                // Nobody let in: with an account, only by its APOP digest,
                // or by its password over TLS or loopback.
                if flags & 8 != 0 {
                    assert_eq!(name, "alice");
                    let digest = mailctl::proto::sasl::apop_digest(TIMESTAMP.as_bytes(), "secret");
                    // The server takes the hex digest in either case.
                    let apop = input
                        .windows(digest.len())
                        .any(|w| w.eq_ignore_ascii_case(digest.as_bytes()));
                    assert!(
                        apop || ((tls || loopback) && sent_password(input, "secret")),
                        "let in"
                    );
                }
                let result = match flags >> 6 {
                    2 => Err(OpenError::InUse),
                    3 => Err(OpenError::Io),
                    _ => {
                        snapshot = count;
                        Ok((0..count)
                            .map(|i| MessageInfo {
                                size: 100 * i as u64 + 3,
                                uid: format!("uid-{i}"),
                            })
                            .collect())
                    }
                };
                check_reply(&server.opened(result));
            }
            Pop3Action::Send { index, .. } => {
                assert!(index < snapshot, "message {index} of {snapshot}");
                assert!(step.reply.starts_with(b"+OK"));
                check_reply(&step.reply);
            }
            Pop3Action::Update(indexes) => {
                assert!(step.reply.is_empty());
                for (i, index) in indexes.iter().enumerate() {
                    assert!(*index < snapshot, "removing {index} of {snapshot}");
                    assert!(!indexes[..i].contains(index), "removed twice");
                }
                check_reply(&server.updated(flags & 2 != 0));
                break;
            }
        }
    }
}

/// CRLF lines of at most 512 octets (RFC 2449 section 4) starting with a
/// status indicator; in a multi-line response, body lines starting with
/// `.` are stuffed and the last is `.`.
fn check_reply(reply: &[u8]) {
    let lines = crlf_lines(reply);
    for line in &lines {
        assert!(line.len() <= 510, "line of {} octets", line.len());
    }
    let first = lines[0];
    assert!(
        first.starts_with(b"+OK") || first.starts_with(b"-ERR") || first.starts_with(b"+ "),
        "status {first:?}"
    );
    if lines.len() > 1 {
        assert!(first.starts_with(b"+OK"));
        assert_eq!(lines[lines.len() - 1], b".");
        for line in &lines[1..lines.len() - 1] {
            assert!(!line.starts_with(b".") || line.starts_with(b".."));
        }
    }
}

fn stuff(stored: &[u8], body_lines: Option<u64>, seed: u8) -> Vec<u8> {
    let mut stuffer = MessageStuffer::new(body_lines);
    let mut out = Vec::new();
    for chunk in Chunks::new(seed).split(stored) {
        stuffer.feed(chunk, &mut out);
    }
    stuffer.finish(&mut out);
    out
}

fn stuffing(stored: &[u8], body_lines: Option<u64>, seed: u8) {
    let whole = stuff(stored, body_lines, 0);
    assert_eq!(
        whole,
        stuff(stored, body_lines, seed),
        "chunking changed it"
    );

    // Valid: lines ended by CRLF (a CR inside a line is kept), stuffed,
    // and the `.` line last.
    let lines: Vec<&[u8]> = whole.split_inclusive(|&b| b == b'\n').collect();
    assert_eq!(lines.last().copied(), Some(&b".\r\n"[..]));
    let mut unstuffed = Vec::new();
    for line in &lines[..lines.len() - 1] {
        assert!(line.ends_with(b"\r\n"), "bare LF in {line:?}");
        match line.strip_prefix(b".") {
            Some(rest) => {
                assert!(rest.starts_with(b"."), "unstuffed dot line {line:?}");
                unstuffed.extend_from_slice(rest);
            }
            None => unstuffed.extend_from_slice(line),
        }
    }

    // Unstuffed, it is the stored message with CRLF line ends (a last line
    // without one gets one), or for TOP a prefix of it made of whole lines.
    let mut expected = lf_to_crlf(stored);
    if !expected.is_empty() && !expected.ends_with(b"\n") {
        if !expected.ends_with(b"\r") {
            expected.push(b'\r');
        }
        expected.push(b'\n');
    }
    match body_lines {
        None => assert_eq!(unstuffed, expected),
        Some(_) => {
            assert!(expected.starts_with(&unstuffed), "TOP is not a prefix");
            assert!(unstuffed.is_empty() || unstuffed.ends_with(b"\r\n"));
        }
    }
}
