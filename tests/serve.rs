//! Integration tests of `mailctl serve`: the binary is started on port 0
//! (see serve_support) and driven with raw TCP scripts; tests/clients.rs
//! drives it with real mail programs.

mod serve_support;

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serve_support::{
    apop_digest, body_of, files_in, stored, tls_server, Client, Server, CERT_PEM, KEY_PEM, LIMIT,
};

const MESSAGE: &[u8] = b"From: a@x.test\r\nTo: bob@y.test\r\nSubject: hi\r\n\r\nhello\r\n";

#[test]
fn smtp_session_errors_in_every_state() {
    let server = Server::start(&[]);
    let mut c = server.smtp();
    c.expect_reply("220 ");
    let script: &[(&str, &str)] = &[
        ("MAIL FROM:<a@x.test>", "503 5.5.1"),
        ("RCPT TO:<b@y.test>", "503 5.5.1"),
        ("DATA", "503 5.5.1"),
        ("FOO", "500 5.5.2"),
        ("EXPN staff", "502 5.5.1"),
        ("EHLO", "501 5.5.4"),
        ("EHLO client.test", "250-"),
        ("DATA", "503 5.5.1"),
        ("MAIL FROM:a@x.test", "501 5.5.4"),
        ("MAIL FROM:<a@x.test> SIZE=999999999999", "552 5.3.4"),
        ("MAIL FROM:<a@x.test> FOO=BAR", "555 5.5.4"),
        ("MAIL FROM:<a@x.test>", "250 2.1.0"),
        ("MAIL FROM:<a@x.test>", "503 5.5.1"),
        ("DATA", "503 5.5.1"),
        ("RCPT TO:<../../etc@y.test>", "553 5.1.3"),
        ("RCPT TO:b@y.test", "501 5.5.4"),
        ("VRFY bob", "252 2.5.0"),
        ("HELP", "214 2.0.0"),
        ("NOOP", "250 2.0.0"),
        ("STARTTLS", "502 5.5.1"),
        ("AUTH PLAIN", "502 5.5.1"),
        ("RSET", "250 2.0.0"),
        ("RCPT TO:<b@y.test>", "503 5.5.1"),
    ];
    for (line, want) in script {
        c.send(format!("{line}\r\n").as_bytes());
        let reply = c.reply();
        assert!(reply.starts_with(want), "{line}: {reply:?}");
    }
    // An over-long line is discarded whole and answered once.
    let mut long = vec![b'X'; 10_000];
    long.extend_from_slice(b"\r\nNOOP\r\n");
    c.send(&long);
    c.expect_reply("500 5.5.6");
    c.expect_reply("250 2.0.0");
    c.send(b"QUIT\r\n");
    c.expect_reply("221 2.0.0");
    assert_eq!(c.rest(), "");
}

#[test]
fn pipelined_commands_get_replies_in_order() {
    let server = Server::start(&[]);
    let mut c = server.smtp();
    c.expect_reply("220");
    c.send(
        b"EHLO p\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<bob@y.test>\r\nRCPT TO:<bad path>\r\n\
          RCPT TO:<carol@y.test>\r\nDATA\r\n",
    );
    let ehlo = c.expect_reply("250-");
    assert!(ehlo.contains("PIPELINING") && ehlo.contains("SIZE ") && ehlo.contains("8BITMIME"));
    assert!(ehlo.contains("ENHANCEDSTATUSCODES"));
    c.expect_reply("250 2.1.0");
    c.expect_reply("250 2.1.5");
    c.expect_reply("501");
    c.expect_reply("250 2.1.5");
    c.expect_reply("354");
    // Message, then a second transaction and QUIT, all in one write.
    c.send(b"Subject: one\r\n\r\nx\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<bob@y.test>\r\nDATA\r\n");
    c.expect_reply("250 2.0.0");
    c.expect_reply("250 2.1.0");
    c.expect_reply("250 2.1.5");
    c.expect_reply("354");
    c.send(b"Subject: two\r\n\r\ny\r\n.\r\nQUIT\r\n");
    c.expect_reply("250 2.0.0");
    c.expect_reply("221");
    assert_eq!(server.files("bob", "new").len(), 2);
    assert_eq!(server.files("carol", "new").len(), 1);
    let bounce = server
        .files("bob", "new")
        .into_iter()
        .map(|p| stored(&p))
        .find(|m| body_of(m).starts_with(b"Subject: two"))
        .unwrap();
    assert!(bounce.starts_with(b"Return-Path: <>\r\n"));
}

#[test]
fn data_is_unstuffed_normalised_and_never_smuggled() {
    let server = Server::start(&[]);
    let mut c = server.smtp();
    c.expect_reply("220");
    c.send(b"EHLO s\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<bob@y.test>\r\nDATA\r\n");
    for want in ["250", "250", "250", "354"] {
        c.expect_reply(want);
    }
    let smuggle = b"Subject: s\r\n\r\n..dot\r\nbare lf\nx\n.\r\nMAIL FROM:<evil@x>\r\n\
        y\n.\nRCPT TO:<evil@x>\r\nz\r.\r\nDATA\r\n\r\n.\nw\r\n.\r\nNOOP\r\n";
    c.send(smuggle);
    c.expect_reply("250 2.0.0");
    c.expect_reply("250 2.0.0"); // the NOOP after the real end
    c.send(b"QUIT\r\n");
    c.expect_reply("221");
    let files = server.files("bob", "new");
    assert_eq!(files.len(), 1);
    assert_eq!(
        body_of(&stored(&files[0])),
        b"Subject: s\r\n\r\n.dot\r\nbare lf\r\nx\r\n.\r\nMAIL FROM:<evil@x>\r\n\
          y\r\n.\r\nRCPT TO:<evil@x>\r\nz\r.\r\nDATA\r\n\r\n.\r\nw\r\n"
    );
    assert!(server.files("evil", "new").is_empty());
}

#[test]
fn data_command_ended_by_bare_lf_is_not_half_a_terminator() {
    let server = Server::start(&[]);
    let mut c = server.smtp();
    c.expect_reply("220");
    // `DATA LF . CRLF`: the dot line follows a bare LF, so it is content.
    c.send(b"EHLO s\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<bob@y.test>\r\nDATA\n");
    for want in ["250", "250", "250", "354"] {
        c.expect_reply(want);
    }
    c.send(b".\r\nMAIL FROM:<evil@x>\r\nRCPT TO:<evil@x>\r\nDATA\r\nhidden\r\n.\r\nNOOP\r\n");
    c.expect_reply("250 2.0.0");
    c.expect_reply("250 2.0.0"); // the NOOP after the real end
    c.send(b"QUIT\r\n");
    c.expect_reply("221");
    let files = server.files("bob", "new");
    assert_eq!(files.len(), 1);
    assert_eq!(
        body_of(&stored(&files[0])),
        b".\r\nMAIL FROM:<evil@x>\r\nRCPT TO:<evil@x>\r\nDATA\r\nhidden\r\n"
    );
    assert!(server.files("evil", "new").is_empty());
}

#[test]
fn oversized_message_is_refused_after_data_and_leaves_nothing() {
    let server = Server::start(&["--max-size", "100"]);
    let mut c = server.smtp();
    c.expect_reply("220");
    c.send(b"EHLO s\r\n");
    assert!(c.expect_reply("250").contains("SIZE 100\r\n"));
    c.send(b"MAIL FROM:<a@x.test> SIZE=101\r\n");
    c.expect_reply("552 5.3.4");
    c.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<bob@y.test>\r\nDATA\r\n");
    c.expect_reply("250");
    c.expect_reply("250");
    c.expect_reply("354");
    let big = format!("Subject: big\r\n\r\n{}\r\n.\r\n", "x".repeat(5000));
    c.send(big.as_bytes());
    c.expect_reply("552 5.3.4");
    // The session goes on; a small message still fits.
    c.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<bob@y.test>\r\nDATA\r\n");
    c.expect_reply("250");
    c.expect_reply("250");
    c.expect_reply("354");
    c.send(b"Subject: small\r\n\r\nok\r\n.\r\nQUIT\r\n");
    c.expect_reply("250 2.0.0");
    c.expect_reply("221");
    let files = server.files("bob", "new");
    assert_eq!(files.len(), 1);
    assert_eq!(body_of(&stored(&files[0])), b"Subject: small\r\n\r\nok\r\n");
    assert!(server.files("bob", "tmp").is_empty());
}

#[test]
fn users_need_auth_and_credentials_stay_out_of_the_log() {
    let server = Server::start(&["-v", "--user", "alice:Sesame-42", "--user", "bob:pw2"]);
    let plain = BASE64.encode("\0alice\0Sesame-42");
    let mut c = server.smtp();
    c.expect_reply("220");
    c.send(b"EHLO a\r\n");
    assert!(c.expect_reply("250").contains("AUTH PLAIN LOGIN"));
    c.send(b"MAIL FROM:<alice@x.test>\r\n");
    c.expect_reply("530 5.7.0");
    c.send(format!("AUTH PLAIN {}\r\n", BASE64.encode("\0alice\0wrong")).as_bytes());
    c.expect_reply("535 5.7.8");
    c.send(format!("AUTH PLAIN {plain}\r\n").as_bytes());
    c.expect_reply("235 2.7.0");
    c.send(b"MAIL FROM:<alice@x.test>\r\nRCPT TO:<nobody@y.test>\r\nRCPT TO:<bob@y.test>\r\n");
    c.expect_reply("250");
    c.expect_reply("550 5.1.1");
    c.expect_reply("250");
    c.send(b"DATA\r\n");
    c.expect_reply("354");
    c.send(b"Subject: s\r\n\r\nb\r\n.\r\nQUIT\r\n");
    c.expect_reply("250");
    c.expect_reply("221");
    let received = String::from_utf8(stored(&server.files("bob", "new")[0])).unwrap();
    assert!(received.contains("with ESMTPA id"), "{received}");

    // AUTH LOGIN too.
    let mut c = server.smtp();
    c.expect_reply("220");
    c.send(b"EHLO a\r\nAUTH LOGIN\r\n");
    c.expect_reply("250");
    c.expect_reply("334 VXNlcm5hbWU6");
    c.send(format!("{}\r\n", BASE64.encode("alice")).as_bytes());
    c.expect_reply("334 UGFzc3dvcmQ6");
    c.send(format!("{}\r\n", BASE64.encode("Sesame-42")).as_bytes());
    c.expect_reply("235");
    c.send(b"QUIT\r\n");
    c.expect_reply("221");

    // POP3 checks passwords; APOP works.
    let mut p = server.pop3();
    let greeting = p.expect_line("+OK");
    p.send(b"USER bob\r\nPASS nope\r\n");
    p.expect_line("+OK");
    p.expect_line("-ERR [AUTH]");
    let digest = apop_digest(&greeting, "pw2");
    p.send(format!("APOP bob {digest}\r\nSTAT\r\nQUIT\r\n").as_bytes());
    p.expect_line("+OK maildrop has 1 messages");
    p.expect_line("+OK 1 ");
    p.expect_line("+OK");
    let mut p = server.pop3();
    p.expect_line("+OK");
    p.send(b"USER alice\r\nPASS Sesame-42\r\nQUIT\r\n");
    p.expect_line("+OK");
    p.expect_line("+OK maildrop has 0 messages");
    p.expect_line("+OK");
    p.rest();

    let (status, log, _dir) = server.terminate();
    assert!(status.success());
    let log = log.join("\n");
    for secret in [
        "Sesame-42",
        "pw2",
        &plain,
        &BASE64.encode("Sesame-42"),
        &digest,
    ] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
    assert!(log.contains("C: AUTH PLAIN <redacted>"));
    assert!(log.contains("C: PASS <redacted>"));
    assert!(log.contains("C: APOP bob <redacted>"));
    assert!(log.contains("] C: <redacted>"));
    assert!(log.contains("visible to other local users"));
}

#[test]
fn users_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    fs::write(&users, "# accounts\n\ncarol:c-pass\n").unwrap();
    let users = users.to_str().unwrap().to_string();
    let server = Server::start(&["--users-file", &users]);
    let mut p = server.pop3();
    p.expect_line("+OK");
    p.send(b"USER carol\r\nPASS c-pass\r\nQUIT\r\n");
    p.expect_line("+OK");
    p.expect_line("+OK maildrop");
    p.expect_line("+OK");

    let out = Command::new(env!("CARGO_BIN_EXE_mailctl"))
        .args(["serve", "--maildir", "/nonexistent/x", "--user", "../x:pw"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mailctl: error: --user: invalid user name"),
        "{err}"
    );
}

#[test]
fn concurrent_senders() {
    let server = Server::start(&[]);
    let port = server.smtp;
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = Client::connect(port);
                c.expect_reply("220");
                c.send(b"EHLO c\r\n");
                c.expect_reply("250");
                for i in 0..10 {
                    c.send(
                        format!("MAIL FROM:<t{t}@x.test>\r\nRCPT TO:<inbox@y.test>\r\nDATA\r\n")
                            .as_bytes(),
                    );
                    c.expect_reply("250");
                    c.expect_reply("250");
                    c.expect_reply("354");
                    c.send(format!("Subject: {t}-{i}\r\n\r\nbody\r\n.\r\n").as_bytes());
                    c.expect_reply("250 2.0.0");
                }
                c.send(b"QUIT\r\n");
                c.expect_reply("221");
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let subjects: BTreeSet<String> = server
        .files("inbox", "new")
        .iter()
        .map(|p| {
            let body = body_of(&stored(p));
            String::from_utf8(body)
                .unwrap()
                .lines()
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(subjects.len(), 40);
    assert!(subjects.contains("Subject: 3-9"));
}

#[test]
fn pop3_errors_and_byte_stuffed_retrieval() {
    let server = Server::start(&[]);
    let message = b"Subject: dots\r\n\r\n..one\r\n.\r\nlast line\r\n";
    server.deliver("a@x.test", &["dora@y.test"], message);
    let mut p = server.pop3();
    p.expect_line("+OK mailctl POP3 server ready <");
    for (line, want) in [
        ("STAT", "-ERR command not valid"),
        ("BOGUS", "-ERR unknown command"),
        ("PASS x", "-ERR USER first"),
        ("USER ../../etc", "-ERR [AUTH]"),
    ] {
        p.send(format!("{line}\r\n").as_bytes());
        p.expect_line(want);
    }
    p.send(b"CAPA\r\n");
    let capa = p.multiline();
    for cap in ["TOP", "UIDL", "USER", "PIPELINING", "SASL PLAIN"] {
        assert!(capa.contains(&format!("\r\n{cap}\r\n")), "{capa}");
    }
    assert!(!capa.contains("STLS"));
    p.send(b"USER Dora@y.test\r\nPASS anything\r\n");
    p.expect_line("+OK");
    p.expect_line("+OK maildrop has 1 messages");
    let stored_file = stored(&server.files("dora", "new")[0]);
    // Pipelined: replies come back in order.
    p.send(b"STAT\r\nLIST 2\r\nRETR 1\r\nTOP 1 1\r\nDELE 9\r\nRETR x\r\nUSER a\r\n");
    p.expect_line(&format!("+OK 1 {}\r\n", stored_file.len()));
    p.expect_line("-ERR no such message");
    p.expect_line(&format!("+OK {} octets", stored_file.len()));
    let retr = p.multiline();
    let mut expected = String::from_utf8(stored_file.clone()).unwrap();
    expected = expected.replace("\r\n..one\r\n.\r\n", "\r\n...one\r\n..\r\n");
    assert_eq!(retr, format!("{expected}.\r\n"));
    p.expect_line("+OK");
    let top = p.multiline();
    assert!(top.ends_with("\r\n\r\n...one\r\n.\r\n"), "{top:?}");
    p.expect_line("-ERR no such message");
    p.expect_line("-ERR invalid message number");
    p.expect_line("-ERR command not valid");
    p.send(b"QUIT\r\n");
    p.expect_line("+OK");
    assert_eq!(p.rest(), "");
    assert_eq!(server.files("dora", "new").len(), 1);
}

#[test]
fn sizes_count_the_crlf_sent_for_files_other_programs_wrote() {
    let server = Server::start(&[]);
    server.deliver(
        "a@x.test",
        &["gus@y.test"],
        b"Subject: ours\r\n\r\nbody\r\n",
    );
    let ours = stored(&server.files("gus", "new")[0]);
    // Most delivery agents store LF line ends; POP3 sends CRLF.
    let theirs = "Subject: theirs\nFrom: b@x.test\n\nline\r\n.dot\nend\n";
    let new = server.maildir().join("gus").join("new");
    std::fs::write(new.join("1999999999.M1P1.elsewhere"), theirs).unwrap();
    let sent = theirs.replace("\r\n", "\n").replace('\n', "\r\n");
    let mut p = server.pop3();
    p.expect_line("+OK");
    p.send(b"USER gus\r\nPASS x\r\nSTAT\r\nLIST\r\nRETR 2\r\nQUIT\r\n");
    p.expect_line("+OK");
    p.expect_line("+OK");
    p.expect_line(&format!("+OK 2 {}\r\n", ours.len() + sent.len()));
    p.expect_line("+OK");
    assert_eq!(
        p.multiline(),
        format!("1 {}\r\n2 {}\r\n.\r\n", ours.len(), sent.len())
    );
    p.expect_line(&format!("+OK {} octets", sent.len()));
    assert_eq!(
        p.multiline(),
        format!("{}.\r\n", sent.replace("\n.dot", "\n..dot"))
    );
    p.expect_line("+OK");
}

#[test]
fn pop3_deletes_at_quit_while_new_mail_arrives() {
    let server = Server::start(&[]);
    server.deliver("a@x.test", &["erin@y.test"], b"Subject: 1\r\n\r\none\r\n");
    server.deliver("a@x.test", &["erin@y.test"], b"Subject: 2\r\n\r\ntwo\r\n");
    let mut p = server.pop3();
    p.expect_line("+OK");
    p.send(b"USER erin\r\nPASS x\r\nUIDL\r\n");
    p.expect_line("+OK");
    p.expect_line("+OK maildrop has 2 messages");
    p.expect_line("+OK");
    let uidl = p.multiline();
    p.send(b"DELE 1\r\n");
    p.expect_line("+OK message 1 deleted");

    // Mail arriving now is kept but not shown to this session.
    server.deliver("a@x.test", &["erin@y.test"], b"Subject: 3\r\n\r\nthree\r\n");
    assert_eq!(server.files("erin", "new").len(), 3);
    p.send(b"STAT\r\n");
    p.expect_line("+OK 1 ");

    // The mailbox is locked for a second session.
    let mut q = server.pop3();
    q.expect_line("+OK");
    q.send(b"USER erin\r\nPASS x\r\n");
    q.expect_line("+OK");
    q.expect_line("-ERR [IN-USE]");

    // Nothing is deleted until QUIT; a dropped session deletes nothing.
    assert_eq!(server.files("erin", "new").len(), 3);
    p.send(b"QUIT\r\n");
    p.expect_line("+OK mailctl signing off (1 messages deleted)");
    assert_eq!(p.rest(), "");
    assert_eq!(server.files("erin", "new").len(), 2);

    q.send(b"USER erin\r\nPASS x\r\nUIDL\r\nDELE 1\r\n");
    q.expect_line("+OK");
    q.expect_line("+OK maildrop has 2 messages");
    q.expect_line("+OK");
    let after = q.multiline();
    q.expect_line("+OK");
    // Hang up without QUIT: the server closes its side once it has let go
    // of the mailbox, and the deletion is forgotten.
    q.stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(q.rest(), "");
    // The deleted message's UIDL is gone, the kept one's is unchanged.
    let uids = |listing: &str| -> BTreeSet<String> {
        listing
            .lines()
            .filter_map(|l| l.split_once(' ').map(|(_, u)| u.to_string()))
            .collect()
    };
    let (before, after) = (uids(&uidl), uids(&after));
    assert_eq!(before.len(), 2);
    assert_eq!(after.len(), 2);
    assert_eq!(before.intersection(&after).count(), 1);
    let mut r = server.pop3();
    r.expect_line("+OK");
    r.send(b"USER erin\r\nPASS x\r\nQUIT\r\n");
    r.expect_line("+OK");
    r.expect_line("+OK maildrop has 2 messages");
}

#[test]
fn restart_keeps_mail_and_uidls() {
    let server = Server::start(&[]);
    server.deliver("a@x.test", &["fay@y.test"], b"Subject: 1\r\n\r\none\r\n");
    server.deliver("a@x.test", &["fay@y.test"], b"Subject: 2\r\n\r\ntwo\r\n");
    let uidl = |server: &Server| {
        let mut p = server.pop3();
        p.expect_line("+OK");
        p.send(b"USER fay\r\nPASS x\r\nUIDL\r\nQUIT\r\n");
        p.expect_line("+OK");
        p.expect_line("+OK");
        p.expect_line("+OK");
        let listing = p.multiline();
        p.expect_line("+OK");
        listing
    };
    let before = uidl(&server);
    assert_eq!(before.lines().count(), 3, "{before}");
    let (status, log, dir) = server.terminate();
    assert!(status.success(), "{log:?}");
    assert!(log
        .iter()
        .any(|l| l == "mailctl: stopped (2 messages delivered)"));
    let server = Server::start_in(dir, &[]);
    assert_eq!(uidl(&server), before);
}

#[test]
fn exit_after_n_messages() {
    let server = Server::start(&["--exit-after", "2"]);
    server.deliver("a@x.test", &["gus@y.test"], MESSAGE);
    server.deliver("a@x.test", &["gus@y.test"], MESSAGE);
    let (status, log, dir) = server.wait();
    assert_eq!(status.code(), Some(0), "{log:?}");
    assert_eq!(files_in(&dir.path().join("mail/gus/new")).len(), 2);
}

#[test]
fn termination_mid_data_abandons_the_message() {
    let server = Server::start(&[]);
    let mut idle = server.pop3();
    idle.expect_line("+OK");
    let mut c = server.smtp_in_data("hal@y.test");
    c.send(b"Subject: cut\r\n\r\nhalf a message\r\n");
    let (status, log, dir) = server.terminate();
    assert!(status.success(), "{log:?}");
    // The idle POP3 client is told why it is disconnected.
    assert_eq!(idle.rest(), "-ERR [SYS/TEMP] server shutting down\r\n");
    for sub in ["new", "tmp", "cur"] {
        assert!(files_in(&dir.path().join("mail/hal").join(sub)).is_empty());
    }
}

#[test]
fn ctrl_c_stops_cleanly_and_says_goodbye() {
    let server = Server::start(&[]);
    server.deliver("a@x.test", &["ian@y.test"], MESSAGE);
    let mut idle = server.smtp();
    idle.expect_reply("220");
    let (status, log, dir) = server.signal("-INT");
    assert_eq!(status.code(), Some(0), "{log:?}");
    assert_eq!(
        idle.rest(),
        "421 4.3.2 Server shutting down, closing connection\r\n"
    );
    assert_eq!(
        log.last().unwrap(),
        "mailctl: stopped (1 message delivered)"
    );
    assert_eq!(files_in(&dir.path().join("mail/ian/new")).len(), 1);
    assert!(files_in(&dir.path().join("mail/ian/tmp")).is_empty());
}

#[test]
fn connections_over_the_cap_get_421() {
    let server = Server::start(&["--max-connections", "1"]);
    let mut first = server.smtp();
    first.expect_reply("220");
    let mut second = server.smtp();
    assert_eq!(
        second.rest(),
        "421 4.3.2 Too many connections, try again later\r\n"
    );
    // POP3 has a cap of its own.
    let mut pop = server.pop3();
    pop.expect_line("+OK");
    let mut second_pop = server.pop3();
    assert!(second_pop
        .rest()
        .starts_with("-ERR [SYS/TEMP] too many connections"));
    first.send(b"QUIT\r\n");
    first.expect_reply("221");
}

#[test]
fn verbose_summary_decodes_gb18030_and_attachments() {
    let server = Server::start(&["-v"]);
    let message = b"From: =?gb18030?B?1cXI/Q==?= <zhang@example.cn>\r\n\
Subject: =?gb18030?B?08q8/rLiytQ=?=\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
Content-Type: text/plain\r\n\r\nhello\r\n--b\r\n\
Content-Type: application/octet-stream\r\n\
Content-Disposition: attachment; filename=\"data.bin\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\nAAECAwQ=\r\n--b--\r\n";
    server.deliver("zhang@example.cn", &["ivy@y.test"], message);
    let (_, log, _) = server.terminate();
    let log = log.join("\n");
    assert!(log.contains("*:   subject: 邮件测试"), "{log}");
    assert!(log.contains("*:   from: 张三 <zhang@example.cn>"), "{log}");
    assert!(log.contains("*:   attachment: data.bin (5 bytes)"), "{log}");
    assert!(log.contains("] C: <message data, "), "{log}");
}

fn tls_connector(ca: &str) -> native_tls::TlsConnector {
    let pem = fs::read(ca).unwrap();
    native_tls::TlsConnector::builder()
        .add_root_certificate(native_tls::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap()
}

#[test]
fn starttls_discards_pipelined_plaintext_and_verifies() {
    let (server, ca) = tls_server(&["-v"]);
    let mut c = server.smtp();
    c.expect_reply("220");
    c.send(b"EHLO t\r\n");
    assert!(c.expect_reply("250").contains("STARTTLS"));
    // NOOP injected after STARTTLS must never be answered.
    c.send(b"STARTTLS\r\nNOOP\r\n");
    c.expect_reply("220 2.0.0");
    assert!(c.reader.buffer().is_empty());
    let tls = tls_connector(&ca).connect("localhost", c.stream).unwrap();
    let mut reader = BufReader::new(tls);
    reader.get_mut().write_all(b"EHLO t\r\n").unwrap();
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("250-"), "{line}");
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        assert!(!line.contains("STARTTLS"));
        if line.starts_with("250 ") {
            break;
        }
    }
    reader.get_mut().write_all(b"QUIT\r\n").unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "221 2.0.0 Bye\r\n");

    // POP3 STLS the same way.
    let mut p = server.pop3();
    p.expect_line("+OK");
    p.send(b"STLS\r\nUSER x\r\n");
    p.expect_line("+OK begin TLS");
    let tls = tls_connector(&ca).connect("localhost", p.stream).unwrap();
    let mut reader = BufReader::new(tls);
    reader.get_mut().write_all(b"PASS y\r\n").unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "-ERR USER first\r\n");

    let (_, log, _) = server.terminate();
    assert!(log
        .iter()
        .any(|l| l.contains("discarded 6 bytes the client sent before TLS")));
}

#[test]
fn untrusted_certificate_is_refused_by_the_client() {
    let (server, _ca) = tls_server(&[]);
    let mut c = server.smtp();
    c.expect_reply("220");
    c.send(b"STARTTLS\r\n");
    c.expect_reply("220");
    let connector = mailctl::net::tls::TlsOptions::default()
        .connector()
        .unwrap();
    assert!(connector.connect("localhost", c.stream).is_err());
}

#[test]
fn certificate_and_key_files_are_used() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    fs::write(&cert, CERT_PEM).unwrap();
    fs::write(&key, KEY_PEM).unwrap();
    let (cert, key) = (
        cert.to_str().unwrap().to_string(),
        key.to_str().unwrap().to_string(),
    );
    let server = Server::start_in(dir, &["--tls-cert", &cert, "--tls-key", &key]);
    let mut p = server.pop3();
    p.expect_line("+OK");
    p.send(b"CAPA\r\n");
    assert!(p.multiline().contains("\r\nSTLS\r\n"));
    p.send(b"STLS\r\n");
    p.expect_line("+OK");
    let tls = tls_connector(&cert).connect("localhost", p.stream).unwrap();
    let mut reader = BufReader::new(tls);
    reader.get_mut().write_all(b"QUIT\r\n").unwrap();
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "+OK mailctl signing off\r\n");

    // A key file that is not a key is a configuration error (78).
    let out = Command::new(env!("CARGO_BIN_EXE_mailctl"))
        .args(["serve", "--maildir", server.maildir().to_str().unwrap()])
        .args(["--smtp", "127.0.0.1:0", "--pop3", "127.0.0.1:0"])
        .args(["--tls-cert", &cert, "--tls-key", &cert])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("mailctl: error: "));
}

#[test]
fn idle_connections_are_closed_with_421() {
    let server = Server::start(&["--idle-timeout", "1"]);
    let mut c = server.smtp();
    c.expect_reply("220");
    // The read below returns when the server gives up on the idle client.
    assert_eq!(c.rest(), "421 4.4.2 Idle timeout, closing connection\r\n");
    let mut p = server.pop3();
    p.expect_line("+OK");
    assert!(p.rest().starts_with("-ERR [SYS/TEMP] idle timeout"));
}

#[test]
fn busy_listen_address_is_a_temporary_failure() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mailctl"))
        .args(["serve", "--maildir", dir.path().to_str().unwrap()])
        .args(["--smtp", &addr, "--pop3", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(75));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot listen for smtp on"), "{err}");
}

/// Logs in to POP3 as `user` in catch-all mode and quits.
fn pop3_visit(server: &Server, user: &str) {
    let mut c = server.pop3_login(user, "any");
    c.send(b"QUIT\r\n");
    c.expect_line("+OK");
}

#[test]
fn many_mailbox_names_do_not_use_up_descriptors() {
    let server = Server::start_with_file_limit(256, &[]);
    for n in 0..400 {
        pop3_visit(&server, &format!("probe{n}"));
    }
    // A login creates nothing: only a delivery makes a Maildir.
    assert!(!server.maildir().join("probe0").exists());
    let names: Vec<String> = (0..300).map(|n| format!("rcpt{n}@y.test")).collect();
    for batch in names.chunks(100) {
        let batch: Vec<&str> = batch.iter().map(String::as_str).collect();
        server.deliver("a@x.test", &batch, MESSAGE);
    }
    assert_eq!(server.files("rcpt299", "new").len(), 1);
    server.deliver("a@x.test", &["last@y.test"], MESSAGE);
    let mut c = server.pop3_login("last", "any");
    c.send(b"STAT\r\n");
    c.expect_line("+OK 1 ");
    let log = server.log();
    assert!(!log.iter().any(|l| l.contains("error")), "{log:?}");
}

/// Runs `mailctl serve` in `dir` with `extra`; its exit code and stderr, or
/// `None` if it was still running after [`LIMIT`] (it is then stopped).
fn serve_exit(dir: &std::path::Path, extra: &[&str]) -> Option<(i32, String)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailctl"))
        .args(["serve", "--maildir", dir.to_str().unwrap()])
        .args(["--pop3", "127.0.0.1:0"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    Some((out.status.code().unwrap_or(-1), err))
}

#[test]
fn catch_all_mode_refuses_a_public_address() {
    let dir = tempfile::tempdir().unwrap();
    for smtp in ["0.0.0.0:0", "[::]:0"] {
        let (code, err) = serve_exit(dir.path(), &["--smtp", smtp]).expect("refused at once");
        assert_eq!(code, 78, "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("mailctl: error: refusing catch-all mode on "));
        assert!(err.contains("add --users-file FILE"), "{err}");
    }
    // With accounts it goes on to listen (and stops there: the port is taken).
    let taken = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let addr = format!("0.0.0.0:{}", taken.local_addr().unwrap().port());
    let (code, err) = serve_exit(dir.path(), &["--smtp", &addr, "--user", "ann:pw"]).unwrap();
    assert_eq!(code, 75, "{err}");
    assert!(err.contains("cannot listen for smtp on"), "{err}");
}

/// Opens `count` connections to `port` from 127.0.0.2, and a thread that
/// sends each of them one byte of a command every second until `stop`.
fn slowloris(port: u16, count: usize, stop: &Arc<AtomicBool>) -> thread::JoinHandle<()> {
    let mut clients: Vec<Client> = (0..count)
        .map(|_| Client::connect_from([127, 0, 0, 2], port))
        .collect();
    for c in &mut clients {
        // Served or turned away: either way the server has counted it.
        assert!(!c.line().is_empty());
    }
    let stop = stop.clone();
    thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            for c in &mut clients {
                let _ = c.stream.write_all(b"N");
            }
            thread::sleep(Duration::from_secs(1));
        }
    })
}

#[test]
fn slow_clients_do_not_lock_others_out() {
    let server = Server::start(&["--idle-timeout", "60"]);
    let stop = Arc::new(AtomicBool::new(false));
    let drips = [
        slowloris(server.smtp, 32, &stop),
        slowloris(server.pop3, 32, &stop),
    ];
    server.deliver("a@x.test", &["kim@y.test"], MESSAGE);
    let mut c = server.pop3_login("kim", "any");
    c.send(b"RETR 1\r\nQUIT\r\n");
    c.expect_line("+OK");
    assert!(c.multiline().contains("hello"));
    c.expect_line("+OK");
    stop.store(true, Ordering::SeqCst);
    for drip in drips {
        drip.join().unwrap();
    }
}

#[test]
fn a_command_line_or_data_sent_byte_by_byte_is_cut_off() {
    let server = Server::start(&["--idle-timeout", "60", "--command-timeout", "1"]);
    let mut line = server.smtp();
    line.expect_reply("220");
    let mut data = server.smtp_in_data("lou@y.test");
    let stop = Arc::new(AtomicBool::new(false));
    let mut streams = [&line, &data].map(|c| c.stream.try_clone().unwrap());
    let drip = {
        let stop = stop.clone();
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                for s in &mut streams {
                    let _ = s.write_all(b"x");
                }
                thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let cut_line = line.until_closed();
    let cut_data = data.until_closed();
    stop.store(true, Ordering::SeqCst);
    drip.join().unwrap();
    assert!(cut_line.is_ok(), "a dripped command line was not cut off");
    assert!(cut_data.is_ok(), "dripped message data was not cut off");
    assert!(server.files("lou", "new").is_empty());
}

#[test]
fn failed_logins_are_slowed_down_and_logged_but_the_user_gets_in() {
    let server = Server::start(&["--user", "amy:right"]);
    let mut guesser = Client::connect_from([127, 0, 0, 2], server.pop3);
    guesser.expect_line("+OK");
    let started = Instant::now();
    for guess in ["wrong1", "wrong2"] {
        guesser.send(format!("USER amy\r\nPASS {guess}\r\n").as_bytes());
        guesser.expect_line("+OK");
        guesser.expect_line("-ERR [AUTH]");
    }
    // The waits double from 100 ms: at least 100 + 200 ms for two failures.
    assert!(started.elapsed() >= Duration::from_millis(300));
    // The real user is not held up by them, from anywhere.
    let mut amy = server.pop3_login("amy", "right");
    amy.send(b"QUIT\r\n");
    amy.expect_line("+OK");
    guesser.send(b"USER amy\r\nPASS right\r\n");
    guesser.expect_line("+OK");
    guesser.expect_line("+OK");

    let mut smtp = Client::connect_from([127, 0, 0, 3], server.smtp);
    smtp.expect_reply("220");
    let bad = BASE64.encode("\0amy\0guess");
    smtp.send(format!("EHLO s\r\nAUTH PLAIN {bad}\r\n").as_bytes());
    smtp.expect_reply("250");
    smtp.expect_reply("535");
    let log = server.log();
    let failed: Vec<&String> = log.iter().filter(|l| l.contains("login failed")).collect();
    assert_eq!(failed.len(), 3, "{log:?}");
    assert!(failed[0].contains("pop3 login failed from 127.0.0.2 as 'amy'"));
    assert!(failed[2].contains("smtp login failed from 127.0.0.3 as 'amy'"));
    assert!(!log
        .iter()
        .any(|l| l.contains("wrong") || l.contains("guess")));
}

/// A message of 9 MB, more than socket buffers hold.
fn big_message() -> String {
    format!(
        "Subject: big\r\n\r\n{}",
        "0123456789abcdef\r\n".repeat(500_000)
    )
}

#[test]
fn a_client_that_stops_reading_a_message_is_cut_off() {
    let server = Server::start(&["-v", "--idle-timeout", "60", "--command-timeout", "1"]);
    server.deliver("a@x.test", &["ned@y.test"], big_message().as_bytes());
    let mut stalled = server.pop3_login("ned", "any");
    socket2::SockRef::from(&stalled.stream)
        .set_recv_buffer_size(4096)
        .unwrap();
    stalled.send(b"RETR 1\r\n");
    stalled.expect_line("+OK");
    // Cut off after the deadline of 1 s, long before the idle time-out.
    server.wait_for_log("too slow, connection cut");
}

#[test]
fn sigterm_does_not_wait_for_a_client_that_does_not_read() {
    let server = Server::start(&["--idle-timeout", "30"]);
    server.deliver("a@x.test", &["max@y.test"], big_message().as_bytes());
    let mut stalled = server.pop3_login("max", "any");
    stalled.send(b"RETR 1\r\n");
    // The server writes the reply until the socket buffers are full.
    stalled.expect_line("+OK");
    let started = Instant::now();
    let (status, log, dir) = server.terminate();
    assert!(status.success(), "{log:?}");
    // Far less than the idle time-out that bounds each write.
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(files_in(&dir.path().join("mail/max/new")).len(), 1);
}

#[test]
fn utf8_addresses_are_delivered_to_escaped_mailboxes() {
    let server = Server::start(&[]);
    let mut c = server.smtp();
    c.expect_reply("220");
    c.send(b"EHLO s\r\n");
    assert!(c.expect_reply("250").contains("250-SMTPUTF8\r\n"));
    c.send(
        "MAIL FROM:<andr\u{e9}@x.test> SMTPUTF8\r\nRCPT TO:<Jos\u{e9}@y.test>\r\nDATA\r\n"
            .as_bytes(),
    );
    c.expect_replies(&["250", "250", "354"]);
    c.send(b"Subject: hola\r\n\r\nhola\r\n.\r\nQUIT\r\n");
    c.expect_reply("250");
    // The mail client sends to such an address too.
    let dir = tempfile::tempdir().unwrap();
    let server_addr = format!("127.0.0.1:{}", server.smtp);
    let out = Command::new(env!("CARGO_BIN_EXE_mailctl"))
        .args(["send", "--server", &server_addr, "--tls", "none"])
        .args([
            "--from",
            "a@x.test",
            "--to",
            "jos\u{e9}@y.test",
            "--body",
            "hi",
        ])
        .env("XDG_CONFIG_HOME", dir.path())
        .env("XDG_STATE_HOME", dir.path())
        .env_remove("MAILCTL_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.files("jos%C3%A9", "new").len(), 2);
    let mut p = server.pop3_login("jos\u{e9}", "any");
    p.send(b"STAT\r\n");
    p.expect_line("+OK 2 ");
}

#[test]
fn aborted_transactions_leave_no_maildirs() {
    let server = Server::start(&["-v"]);
    let mut c = server.smtp();
    c.expect_reply("220");
    c.send(b"EHLO s\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<rob@y.test>\r\nRSET\r\n");
    c.expect_replies(&["250", "250", "250", "250"]);
    c.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<sam@y.test>\r\nQUIT\r\n");
    c.expect_replies(&["250", "250", "221"]);
    let mut cut = server.smtp_in_data("tom@y.test");
    cut.send(b"Subject: never ends\r\n");
    drop(cut);
    server.wait_for_log("message abandoned");
    let left: Vec<_> = fs::read_dir(server.maildir()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// The commands serve prints at start-up reach it as they are: no --tls,
/// no password, nothing else to set.
#[test]
fn the_commands_printed_at_start_up_send_and_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let with_tls = ["--tls-self-signed", ca.to_str().unwrap()];
    for extra in [&[][..], &with_tls[..]] {
        printed_commands_work(&Server::start(extra), !extra.is_empty());
    }
}

/// Runs the commands `server` printed; `tls`: they must have used it.
fn printed_commands_work(server: &Server, tls: bool) {
    server.wait_for_log("  mailctl fetch --server ");
    let log = server.log();
    let command = |verb: &str| -> Vec<String> {
        let line = log
            .iter()
            .find(|l| l.starts_with(&format!("  mailctl {verb} ")))
            .unwrap_or_else(|| panic!("no {verb} command: {log:?}"));
        line.split_whitespace()
            .skip(1)
            .map(str::to_string)
            .collect()
    };
    let state = tempfile::tempdir().unwrap();
    let client = |args: Vec<String>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailctl"));
        cmd.args(args)
            .env_remove("MAILCTL_PASSWORD")
            .env_remove("MAILCTL_ACCOUNT")
            .env("XDG_STATE_HOME", state.path())
            .env("XDG_CONFIG_HOME", state.path());
        serve_support::run(&mut cmd)
    };
    let verbose = |verb: &str| {
        let mut args = command(verb);
        args.insert(0, "-v".to_string());
        args
    };
    let (ok, _, stderr) = client(verbose("send"));
    assert!(ok, "{stderr}");
    assert_eq!(stderr.contains("STARTTLS"), tls, "{stderr}");
    let (ok, listing, stderr) = client(verbose("fetch"));
    assert!(ok, "{stderr}");
    assert_eq!(stderr.contains("STLS"), tls, "{stderr}");
    assert!(
        listing.contains("me@localhost") && listing.contains("hi"),
        "{listing}"
    );
    assert!(
        log.iter().any(|l| l.contains("[accounts.local.pop3]")),
        "{log:?}"
    );
}

/// A port in use: exit 75, and the option that picks another.
#[test]
fn a_taken_port_names_the_option_to_choose_another() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mailctl"))
        .args(["serve", "--maildir"])
        .arg(dir.path())
        .args(["--smtp", "127.0.0.1:0", "--pop3", &addr])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    assert!(
        stderr.contains("choose another with --pop3 127.0.0.1:PORT"),
        "{stderr}"
    );
}
