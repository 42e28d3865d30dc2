//! The clients' readers fed what a remote server may send, in any chunks:
//! no panic, bounded output, the same result whatever the chunk sizes.
//! - SMTP: the reply reader (RFC 5321 section 4.2), with the error a
//!   malformed reply gives (one printable line, exit code 76).
//! - POP3: the multi-line body reader (RFC 1939 section 3), checked against
//!   a line-by-line model of byte-unstuffing, and the whole client session
//!   machine driven by a few commands taken from the input.
//!
//! Input: a mode byte, a chunk-size seed, then mode-specific bytes.

#![no_main]

mod common;

use common::Chunks;
use libfuzzer_sys::fuzz_target;
use mailctl::proto::pop3::client::SIZE_SLACK;
use mailctl::proto::pop3::response::{Limits, MultiLine};
use mailctl::proto::pop3::{Client, Command, Event, Kind, State};
use mailctl::proto::smtp::reply::{Reply, ReplyReader, MAX_LINE, MAX_LINES};
use mailctl::secret::Secret;

fuzz_target!(|data: &[u8]| {
    let [mode, seed, ref input @ ..] = *data else {
        return;
    };
    match mode % 3 {
        0 => smtp_replies(input, seed),
        1 => pop3_multiline(input, seed),
        _ => pop3_session(input, seed),
    }
});

/// A character that could control a terminal (tab is harmless and kept,
/// see `mailctl::text::printable`).
fn unsafe_char(c: char) -> bool {
    c.is_control() && c != '\t'
}

// ---- SMTP replies -------------------------------------------------------

fn read_replies(input: &[u8], seed: u8) -> (Vec<Reply>, Option<String>, bool) {
    let mut reader = ReplyReader::new();
    let mut replies = Vec::new();
    for chunk in Chunks::new(seed).split(input) {
        let result = reader.feed(chunk);
        while let Some(reply) = reader.next_reply() {
            replies.push(reply);
        }
        if let Err(e) = result {
            assert!(e.is_malformed_reply(), "{e:?}");
            return (replies, Some(format!("{e:#}")), true);
        }
    }
    (replies, None, reader.has_partial())
}

fn smtp_replies(input: &[u8], seed: u8) {
    let whole = read_replies(input, 0);
    assert_eq!(
        whole,
        read_replies(input, seed),
        "chunking changed the replies"
    );
    let (replies, error, _) = whole;
    if let Some(message) = error {
        assert!(!message.chars().any(unsafe_char), "{message:?}");
        assert!(message.len() < 2000, "error of {} bytes", message.len());
    }
    for reply in replies {
        assert!((200..560).contains(&reply.code));
        assert!(!reply.lines.is_empty() && reply.lines.len() <= MAX_LINES);
        assert!(reply.lines.iter().all(|l| l.len() <= MAX_LINE));
        if let Some(e) = reply.enhanced {
            assert_eq!(u16::from(e.class), reply.code / 100);
        }
        let summary = reply.summary();
        assert!(!summary.chars().any(unsafe_char), "{summary:?}");
        assert!(summary.chars().count() < 400, "summary not shortened");
        assert!(!reply.text().chars().any(unsafe_char));
    }
}

// ---- POP3 multi-line bodies ----------------------------------------------

struct Read {
    out: Vec<u8>,
    consumed: usize,
    done: bool,
    failed: bool,
}

fn read_body(input: &[u8], limits: Limits, seed: u8) -> Read {
    let mut reader = MultiLine::new(limits);
    let mut read = Read {
        out: Vec::new(),
        consumed: 0,
        done: false,
        failed: false,
    };
    for chunk in Chunks::new(seed).split(input) {
        match reader.feed(chunk, &mut read.out) {
            Ok(fed) => {
                assert!(fed.consumed <= chunk.len());
                read.consumed += fed.consumed;
                assert_eq!(fed.done, reader.is_done());
                if fed.done {
                    read.done = true;
                    break;
                }
                assert_eq!(fed.consumed, chunk.len(), "stopped before the end");
            }
            Err(_) => {
                read.failed = true;
                break;
            }
        }
        assert_eq!(reader.total(), read.out.len() as u64);
    }
    assert!(read.out.len() as u64 <= limits.max_total, "over the limit");
    read
}

fn pop3_multiline(input: &[u8], seed: u8) {
    let [limit, ref input @ ..] = *input else {
        return;
    };
    let limits = if limit & 0x80 != 0 {
        Limits {
            max_line: u64::MAX,
            max_total: u64::MAX,
        }
    } else {
        Limits {
            max_line: u64::from(limit & 0x0f) * 16 + 1,
            max_total: u64::from(limit >> 4 & 7) * 256 + 1,
        }
    };
    let whole = read_body(input, limits, 0);
    let chunked = read_body(input, limits, seed);
    assert_eq!(whole.failed, chunked.failed, "chunking changed the verdict");
    if whole.failed {
        return;
    }
    assert_eq!(whole.done, chunked.done, "chunking changed the end");
    assert_eq!(
        whole.consumed, chunked.consumed,
        "chunking changed the bytes used"
    );
    assert_eq!(whole.out, chunked.out, "chunking changed the body");

    let (expected, end, partial) = unstuff_model(input);
    assert_eq!(end, whole.done.then_some(whole.consumed), "end of the body");
    if whole.done {
        assert_eq!(whole.out, expected);
    } else {
        assert_eq!(whole.consumed, input.len());
        assert!(whole.out.starts_with(&expected));
        // The unfinished last line: as it came (minus the stuffing dot),
        // except for a CR held back after a leading dot.
        let line = partial.strip_prefix(b".").unwrap_or(partial);
        let extra = &whole.out[expected.len()..];
        assert!(line.starts_with(extra) && line.len() - extra.len() <= 1);
    }
}

/// RFC 1939 section 3 line by line: a line `.` (CRLF, or a bare LF) ends
/// the body, any other line starting with `.` loses it. Returns the body of
/// the complete lines, the bytes used if the end was found, and the
/// unfinished last line.
fn unstuff_model(input: &[u8]) -> (Vec<u8>, Option<usize>, &[u8]) {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(p) = input[pos..].iter().position(|&b| b == b'\n') {
        let line = &input[pos..=pos + p];
        pos += p + 1;
        if line == b".\r\n" || line == b".\n" {
            return (out, Some(pos), &[]);
        }
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    (out, None, &input[pos..])
}

// ---- POP3 client session ---------------------------------------------------

/// The command a pair of input bytes selects (message numbers 0 to 7, so
/// that refusals of 0 are exercised too).
fn command(client: &Client, choice: u8, number: u8) -> Option<Command> {
    let n = u32::from(number % 8);
    Some(match choice % 18 {
        0 => Command::Capa,
        1 => Command::Stls,
        2 => Command::User("alice".into()),
        3 => Command::Pass(Secret::new("secret")),
        4 => return client.apop("alice", "secret").ok(),
        5 => Command::Auth {
            mechanism: "PLAIN".into(),
            initial: (number & 8 != 0).then(|| Secret::new("AGFsaWNlAHNlY3JldA==")),
        },
        6 => Command::SaslResponse(Secret::new("AGFsaWNlAHNlY3JldA==")),
        7 => Command::Stat,
        8 => Command::List(None),
        9 => Command::List(Some(n)),
        10 => Command::Uidl(None),
        11 => Command::Uidl(Some(n)),
        12 => Command::Top(n, u32::from(number >> 3)),
        13 => Command::Retr(n),
        14 => Command::Dele(n),
        15 => Command::Rset,
        16 => Command::Noop,
        _ => Command::Quit,
    })
}

/// What a session saw: the events (message data left out, as its cutting
/// depends on the chunks), the message bytes and how it ended.
#[derive(Debug, PartialEq)]
struct Seen {
    events: Vec<Event>,
    out: Vec<u8>,
    end: String,
}

const MAX_UNLISTED: u64 = 1 << 16;

fn run_session(commands: &[u8], server: &[u8], seed: u8) -> Seen {
    let mut client = Client::new(false);
    client.set_max_unlisted(MAX_UNLISTED);
    let mut commands = commands.chunks_exact(2);
    let mut chunks = Chunks::new(seed);
    let mut buf = server;
    let mut seen = Seen {
        events: Vec::new(),
        out: Vec::new(),
        end: String::new(),
    };
    // Where the message body in progress started in `out`, and its bound.
    let mut body: Option<(usize, u64)> = None;
    let mut steps = 0usize;
    seen.end = loop {
        steps += 1;
        assert!(
            steps < 4 * (server.len() + commands.len()) + 100,
            "no progress"
        );
        if client.tls_pending() {
            client.tls_started();
        }
        if client.outstanding() == 0 && client.state() != State::Greeting {
            let Some(pair) = commands.next() else {
                break "no more commands".into();
            };
            if let Some(command) = command(&client, pair[0], pair[1]) {
                let _ = client.send(&command);
            }
            continue;
        }
        let result = if client.in_message_body() {
            if buf.is_empty() && !client.message_body_ended() {
                break "end of input in a message".into();
            }
            let take = chunks.next(buf.len());
            client
                .on_message_data(&buf[..take], &mut seen.out)
                .map(|(used, event)| {
                    assert!(used <= take);
                    buf = &buf[used..];
                    event
                })
        } else {
            // A line as the connection reads it: up to the client's limit.
            let max = client.max_line();
            match buf.iter().position(|&b| b == b'\n') {
                Some(p) if p < max => {
                    let line = &buf[..=p];
                    buf = &buf[p + 1..];
                    client.on_line(line, &mut seen.out)
                }
                Some(_) => break "line too long".into(),
                None if buf.len() >= max => break "line too long".into(),
                None => break "end of input".into(),
            }
        };
        match result {
            Ok(event) => {
                match &event {
                    Event::BodyStart(reply) => {
                        if let Kind::Top(n) | Kind::Retr(n) = reply.kind {
                            let bound = client.size_of(n).map_or(MAX_UNLISTED, |s| {
                                s.saturating_mul(2).saturating_add(SIZE_SLACK)
                            });
                            body = Some((seen.out.len(), bound));
                        }
                    }
                    Event::BodyEnd(_) => body = None,
                    _ => {}
                }
                if let Some((start, bound)) = body {
                    assert!(
                        (seen.out.len() - start) as u64 <= bound,
                        "message over its bound"
                    );
                }
                if event != Event::Data {
                    seen.events.push(event);
                }
            }
            Err(e) => break format!("error: {e}"),
        }
    };
    seen
}

fn pop3_session(input: &[u8], seed: u8) {
    let [count, ref input @ ..] = *input else {
        return;
    };
    let split = (usize::from(count % 16) * 2).min(input.len());
    let (commands, server) = input.split_at(split);
    let whole = run_session(commands, server, 0);
    assert_eq!(
        whole,
        run_session(commands, server, seed),
        "chunking changed the session"
    );
    assert!(!whole.end.chars().any(unsafe_char), "{:?}", whole.end);
}
