//! `mailctl send` against in-process fake SMTP servers.

mod send_support;

use base64::Engine;
use send_support::*;

const DATE: &str = "Tue, 1 Jul 2025 10:00:00 +0000";

/// Arguments for a plain-text send to `server`.
fn args(server: &FakeServer, tls: &str) -> Vec<String> {
    let mut v: Vec<String> = [
        "send",
        "--server",
        &server.addr(),
        "--tls",
        tls,
        "--from",
        "Ops <ops@example.org>",
        "--to",
        "b@example.org",
        "--subject",
        "nightly report",
        "--date",
        DATE,
        "--message-id",
        "t1@example.org",
        "--timeout",
        "30",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(ca) = &server.ca_file {
        v.push("--ca-file".into());
        v.push(ca.display().to_string());
    }
    v
}

fn with(mut base: Vec<String>, more: &[&str]) -> Vec<String> {
    base.extend(more.iter().map(|s| s.to_string()));
    base
}

fn run(args: &[String], stdin: &[u8]) -> std::process::Output {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    mailctl(&refs, stdin)
}

#[test]
fn plain_success_with_bcc_kept_out_of_the_header() {
    let server = FakeServer::start(Script::default());
    let a = with(
        args(&server, "none"),
        &[
            "--cc",
            "\"张三\" <z@example.cn>, c@example.org",
            "--bcc",
            "hidden@example.org",
            "--body",
            "hello\n",
        ],
    );
    let out = run(&a, b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    let rec = server.finish();
    assert_eq!(rec.mail_from.as_deref(), Some("ops@example.org"));
    assert_eq!(
        rec.rcpt_to,
        vec![
            "b@example.org",
            "z@example.cn",
            "c@example.org",
            "hidden@example.org"
        ]
    );
    let message = String::from_utf8(rec.message()).unwrap();
    assert!(message.contains("\r\nTo: b@example.org\r\n"), "{message}");
    assert!(message.contains("Cc: =?utf-8?B?5byg5LiJ?= <z@example.cn>, c@example.org\r\n"));
    assert!(!message.contains("hidden"), "Bcc leaked: {message}");
    assert!(!message.to_ascii_lowercase().contains("\nbcc:"));
    assert!(message.ends_with("hello\r\n"));
    assert!(rec.saw("QUIT"));
    assert_eq!(rec.tls_at_mail, Some(false));
}

#[test]
fn starttls_with_auth_and_redacted_transcript() {
    let server = FakeServer::start(Script {
        tls: ServerTls::Starttls,
        ..Script::default()
    });
    let a = with(
        args(&server, "starttls"),
        &["--user", "ops@example.org", "--body", "hi", "-v"],
    );
    let out = run(&a, b"");
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    let rec = server.finish();
    assert_eq!(rec.tls_at_mail, Some(true));
    // EHLO, STARTTLS, EHLO again, then AUTH.
    let verbs: Vec<String> = rec
        .commands
        .iter()
        .take(4)
        .map(|c| c.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(verbs, ["EHLO", "STARTTLS", "EHLO", "AUTH"]);
    assert!(err.contains("C: STARTTLS"));
    assert!(err.contains("C: AUTH PLAIN <redacted>"), "{err}");
    assert!(err.contains("S: 235 2.7.0"));
    assert!(err.contains("C: <message, "));
    let plain =
        base64::engine::general_purpose::STANDARD.encode(format!("\0ops@example.org\0{PASSWORD}"));
    assert!(!err.contains(PASSWORD));
    assert!(!err.contains(&plain));
    assert!(!err.contains("nightly report"), "the message is summarised");
    // Round trips the client waits for: EHLO, STARTTLS, EHLO, AUTH,
    // MAIL+RCPT+DATA, message+QUIT (plus the TLS handshake).
    let mut flights = 0;
    let mut previous = "";
    for line in err.lines() {
        let side = &line[..2];
        if side == "C:" && previous != "C:" {
            flights += 1;
        }
        previous = side;
    }
    assert_eq!(flights, 6, "{err}");
}

#[test]
fn auth_login_transcript_is_redacted() {
    let server = FakeServer::start(Script::default());
    let a = with(
        args(&server, "none"),
        &["--user", "ops", "--auth", "login", "--body", "x", "-v"],
    );
    let out = run(&a, b"");
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    assert!(!err.contains(PASSWORD) && !err.contains(&b64(PASSWORD)));
    assert!(!err.contains(&b64("ops")));
    assert_eq!(err.matches("C: <redacted>").count(), 2, "{err}");
    let rec = server.finish();
    assert!(rec.commands.contains(&b64(PASSWORD)));
}

#[test]
fn implicit_tls() {
    let server = FakeServer::start(Script {
        tls: ServerTls::Implicit,
        ..Script::default()
    });
    let a = with(args(&server, "implicit"), &["--user", "ops", "--body", "x"]);
    let out = run(&a, b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rec = server.finish();
    assert_eq!(rec.tls_at_mail, Some(true));
    assert!(!rec.saw("STARTTLS"));
}

#[test]
fn untrusted_certificate_is_76() {
    let server = FakeServer::start(Script {
        tls: ServerTls::Implicit,
        ..Script::default()
    });
    let a: Vec<String> = args(&server, "implicit")
        .into_iter()
        .take_while(|a| a != "--ca-file")
        .chain(["--body".to_string(), "x".to_string()])
        .collect();
    let out = run(&a, b"");
    assert_eq!(code(&out), 76, "{}", stderr(&out));
    assert!(stderr(&out).starts_with("mailctl: error: "));
    server.finish();
}

#[test]
fn auth_refused_is_77() {
    let server = FakeServer::start(Script {
        tls: ServerTls::Starttls,
        auth_reply: "535 5.7.8 Error: authentication failed".into(),
        ..Script::default()
    });
    let a = with(args(&server, "starttls"), &["--user", "ops", "--body", "x"]);
    let out = run(&a, b"");
    assert_eq!(code(&out), 77);
    assert!(stderr(&out).contains("535 5.7.8 Error: authentication failed"));
    let rec = server.finish();
    assert!(!rec.saw("MAIL"));
}

fn refuse_b(addr: &str) -> String {
    if addr == "b@example.org" {
        "550 5.1.1 <b@example.org>: Recipient address rejected: User unknown".into()
    } else {
        "250 2.1.5 Ok".into()
    }
}

#[test]
fn one_refused_recipient_means_rset_and_nothing_sent() {
    let server = FakeServer::start(Script {
        extensions: vec!["SIZE 1000000".into()],
        rcpt_reply: refuse_b,
        ..Script::default()
    });
    let a = with(
        args(&server, "none"),
        &["--to", "ok@example.org", "--body", "x", "--json"],
    );
    let out = run(&a, b"");
    assert_eq!(code(&out), 69, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("<b@example.org>: 550 5.1.1"), "{err}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["status"], "failed");
    assert_eq!(json["exit_code"], 69);
    assert_eq!(json["recipients"][0]["address"], "b@example.org");
    assert_eq!(json["recipients"][0]["status"], "perm");
    assert_eq!(json["recipients"][0]["code"], 550);
    assert_eq!(json["recipients"][0]["enhanced"], "5.1.1");
    assert_eq!(json["recipients"][1]["status"], "accepted");
    assert!(json["final_reply"].is_null());
    let rec = server.finish();
    assert!(rec.saw("RSET"));
    assert!(!rec.saw("DATA"));
    assert!(rec.data.is_none());
}

#[test]
fn refused_recipient_in_a_pipelined_group_never_sends_the_dot() {
    let server = FakeServer::start(Script {
        rcpt_reply: refuse_b,
        expect_flight: true,
        ..Script::default()
    });
    let a = with(
        args(&server, "none"),
        &["--to", "ok@example.org", "--body", "x", "-v"],
    );
    let out = run(&a, b"");
    assert_eq!(code(&out), 69, "{}", stderr(&out));
    assert!(stderr(&out).contains("before the final dot"));
    let rec = server.finish();
    assert_eq!(rec.flight_before_reply, Some(true));
    assert!(rec.data.is_none(), "no message may be completed");
}

#[test]
fn every_recipient_refused_is_67() {
    let server = FakeServer::start(Script {
        rcpt_reply: |_| "550 5.1.1 User unknown".into(),
        ..Script::default()
    });
    let a = with(
        args(&server, "none"),
        &["--to", "c@example.org", "--body", "x"],
    );
    let out = run(&a, b"");
    assert_eq!(code(&out), 67, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("<b@example.org>") && err.contains("<c@example.org>"));
    let rec = server.finish();
    assert!(rec.data.is_none());
}

/// A server taking 2 recipients per transaction (`452 4.5.3` after them):
/// each of 5 recipients gets the message exactly once, in 3 transactions,
/// pipelined and one by one.
#[test]
fn too_many_recipients_go_in_further_transactions() {
    for (pipelining, flight) in [(true, true), (true, false), (false, false)] {
        let extensions = if pipelining {
            vec!["PIPELINING".into(), "ENHANCEDSTATUSCODES".into()]
        } else {
            vec!["ENHANCEDSTATUSCODES".into()]
        };
        let server = FakeServer::start(Script {
            extensions,
            expect_flight: flight,
            rcpt_limit: Some(2),
            ..Script::default()
        });
        let a = with(
            args(&server, "none"),
            &[
                "--cc",
                "c@example.org, d@example.org",
                "--bcc",
                "e@example.org, f@example.org",
                "--body",
                "x",
                "--json",
            ],
        );
        let out = run(&a, b"");
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["status"], "sent");
        let rec = server.finish();
        assert_eq!(rec.transactions.len(), 3, "{:?}", rec.commands);
        let mut got: Vec<String> = rec
            .transactions
            .iter()
            .flat_map(|(rcpts, _)| rcpts.clone())
            .collect();
        got.sort();
        let want = ["b", "c", "d", "e", "f"].map(|n| format!("{n}@example.org"));
        assert_eq!(got, want, "each recipient exactly once");
        assert!(rec
            .transactions
            .iter()
            .all(|(_, d)| d == &rec.transactions[0].1));
        assert_eq!(rec.commands.iter().filter(|c| *c == "QUIT").count(), 1);
        for r in json["recipients"].as_array().unwrap() {
            assert_eq!(r["delivered"], true, "{r}");
        }
    }
}

#[test]
fn temporary_failure_is_75() {
    let server = FakeServer::start(Script {
        mail_reply: "451 4.3.0 Try again later".into(),
        extensions: vec![],
        ..Script::default()
    });
    let out = run(&with(args(&server, "none"), &["--body", "x"]), b"");
    assert_eq!(code(&out), 75);
    assert!(stderr(&out).contains("451 4.3.0 Try again later"));
    server.finish();
}

#[test]
fn refusal_after_the_dot_is_69() {
    let server = FakeServer::start(Script {
        final_reply: "554 5.7.1 Message rejected as spam".into(),
        ..Script::default()
    });
    let out = run(
        &with(args(&server, "none"), &["--body", "x", "--json"]),
        b"",
    );
    assert_eq!(code(&out), 69);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["final_reply"]["code"], 554);
    assert_eq!(json["status"], "failed");
    assert!(server.finish().data.is_some());
}

#[test]
fn dropped_connection_is_75() {
    for drop_on in ["MAIL", "."] {
        let server = FakeServer::start(Script {
            drop_on: Some(drop_on.into()),
            ..Script::default()
        });
        let out = run(&with(args(&server, "none"), &["--body", "x"]), b"");
        assert_eq!(code(&out), 75, "drop on {drop_on}: {}", stderr(&out));
        server.finish();
    }
}

#[test]
fn malformed_reply_is_76() {
    let server = FakeServer::start(Script {
        mail_reply: "2x0 what".into(),
        extensions: vec![],
        ..Script::default()
    });
    let out = run(&with(args(&server, "none"), &["--body", "x"]), b"");
    assert_eq!(code(&out), 76, "{}", stderr(&out));
    assert!(stderr(&out).contains("malformed reply"));
    server.finish();
}

#[test]
fn hostile_server_text_is_neutralised() {
    let server = FakeServer::start(Script {
        mail_reply: "550 5.7.1 \x1b]0;pwned\x07\x1b[2J gone".into(),
        extensions: vec![],
        ..Script::default()
    });
    let out = run(&with(args(&server, "none"), &["--body", "x"]), b"");
    assert_eq!(code(&out), 69);
    assert!(!out.stderr.contains(&0x1b));
    assert!(stderr(&out).contains("\\x1b]0;pwned\\x07"));
    server.finish();
}

#[test]
fn missing_starttls_fails_before_anything_else_is_sent() {
    let server = FakeServer::start(Script::default());
    let a = with(args(&server, "starttls"), &["--user", "ops", "--body", "x"]);
    let out = run(&a, b"");
    assert_eq!(code(&out), 76);
    assert!(stderr(&out).contains("STARTTLS"));
    let rec = server.finish();
    assert_eq!(rec.commands.len(), 1, "{:?}", rec.commands);
    assert!(rec.commands[0].starts_with("EHLO"));
}

/// `args` with no TLS mode named, and a body.
fn no_tls_named(server: &FakeServer) -> Vec<String> {
    args(server, "none")
        .into_iter()
        .filter(|a| a != "--tls" && a != "none")
        .chain(["--body".to_string(), "x".to_string()])
        .collect()
}

/// Another host than loopback: STARTTLS is required on any port but 465,
/// whether or not the server is on this machine.
#[test]
fn port_other_than_465_requires_starttls_by_default() {
    let Some(host) = non_loopback_address() else {
        println!("skipped: this machine has no address but loopback");
        return;
    };
    let server = FakeServer::start_on(&host, Script::default());
    let out = run(&no_tls_named(&server), b"");
    assert_eq!(code(&out), 76, "{}", stderr(&out));
    assert!(stderr(&out).contains("STARTTLS"), "{}", stderr(&out));
    assert!(!server.finish().saw("MAIL"));
}

/// A loopback server with no mode named: STARTTLS when offered, else
/// plain text.
#[test]
fn a_loopback_server_gets_starttls_if_it_offers_it() {
    let plain = FakeServer::start(Script::default());
    let out = run(&no_tls_named(&plain), b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(plain.finish().tls_at_mail, Some(false));

    let tls = FakeServer::start(Script {
        tls: ServerTls::Starttls,
        ..Script::default()
    });
    let out = run(&no_tls_named(&tls), b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(tls.finish().tls_at_mail, Some(true));
}

#[test]
fn bytes_injected_after_starttls_are_discarded() {
    let injected = b"250-fake.example\r\n250 AUTH PLAIN\r\n535 5.7.8 injected\r\n";
    let server = FakeServer::start(Script {
        tls: ServerTls::Starttls,
        inject_after_starttls: injected.to_vec(),
        ..Script::default()
    });
    let a = with(
        args(&server, "starttls"),
        &["--user", "ops", "--body", "x", "-v"],
    );
    let out = run(&a, b"");
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    assert!(
        err.contains(&format!("<discarded {} bytes", injected.len())),
        "{err}"
    );
    assert!(!err.contains("injected"));
    let rec = server.finish();
    assert_eq!(rec.tls_at_mail, Some(true));
    assert!(rec.data.is_some());
}

#[test]
fn dot_stuffing_is_byte_exact() {
    let server = FakeServer::start(Script::default());
    let body = ".leading dot\n..two dots\nmiddle . dot\n.\nbare\rcr\r\nlast";
    let a = with(args(&server, "none"), &["--body", body]);
    let out = run(&a, b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rec = server.finish();
    let data = rec.data.clone().unwrap();
    let tail =
        b"\r\n..leading dot\r\n...two dots\r\nmiddle . dot\r\n..\r\nbare\r\ncr\r\nlast\r\n.\r\n";
    assert!(
        data.ends_with(tail),
        "{:?}",
        String::from_utf8_lossy(&data[data.len().saturating_sub(120)..])
    );
    assert!(!data[..data.len() - 3].windows(5).any(|w| w == b"\r\n.\r\n"));
}

#[test]
fn pipelined_group_arrives_before_any_reply() {
    let server = FakeServer::start(Script {
        expect_flight: true,
        ..Script::default()
    });
    let a = with(
        args(&server, "none"),
        &["--cc", "c@example.org", "--body", "x"],
    );
    let out = run(&a, b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rec = server.finish();
    assert_eq!(rec.flight_before_reply, Some(true));
    assert_eq!(rec.rcpt_to.len(), 2);
    assert!(rec.saw("QUIT"));
}

#[test]
fn message_over_size_limit_is_refused_before_mail() {
    let server = FakeServer::start(Script {
        extensions: vec!["PIPELINING".into(), "SIZE 500".into()],
        ..Script::default()
    });
    let body = "x".repeat(600);
    let out = run(&with(args(&server, "none"), &["--body", &body]), b"");
    assert_eq!(code(&out), 69);
    assert!(stderr(&out).contains("at most 500"));
    let rec = server.finish();
    assert!(!rec.saw("MAIL") && !rec.saw("DATA"));
}

#[test]
fn line_breaks_in_input_are_refused_with_64() {
    // Port 9 on loopback: nothing may be contacted before the refusal.
    let base = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "send",
            "--server",
            "127.0.0.1:9",
            "--tls",
            "none",
            "--from",
            "a@example.org",
            "--body",
            "x",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    for extra in [
        &[
            "--to",
            "b@example.org",
            "--subject",
            "hi\r\nBcc: victim@example.org",
        ][..],
        &["--to", "b@example.org\r\nRCPT TO:<victim@example.org>"],
        &[
            "--to",
            "b@example.org",
            "--header",
            "X-A: 1\nBcc: victim@example.org",
        ],
        &["--to", "b@example.org", "--reply-to", "r@example.org\n"],
        &["--to", "\"Name\r\n\" <b@example.org>"],
        &["--to", "b@example.org", "--header", "Bad Header: x"],
    ] {
        let out = run(&base(extra), b"");
        assert_eq!(code(&out), 64, "{extra:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.starts_with("mailctl: error: ") && err.lines().count() == 1,
            "{err}"
        );
    }
}

#[test]
fn dry_run_prints_the_message_reproducibly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("données.csv");
    std::fs::write(&file, "a,b\n1,2\n").unwrap();
    let html = dir.path().join("body.html");
    std::fs::write(&html, "<p>hello</p>").unwrap();
    let a: Vec<String> = [
        "send",
        "--from",
        "Ops <ops@example.org>",
        "--to",
        "b@example.org",
        "--bcc",
        "hidden@example.org",
        "--subject",
        "Données 报告",
        "--header",
        "X-Job: nightly",
        "--html",
        html.to_str().unwrap(),
        "--attach",
        file.to_str().unwrap(),
        "--date",
        DATE,
        "--message-id",
        "<fixed@example.org>",
        "--dry-run",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = run(&a, b"text body\n");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Message-ID: <fixed@example.org>\r\n"));
    assert!(text.contains("Subject: =?utf-8?"));
    assert!(text.contains("X-Job: nightly\r\n"));
    assert!(text.contains("multipart/alternative"));
    assert!(text.contains("filename*=utf-8''donn%C3%A9es.csv;\r\n filename=\"donnees.csv\""));
    assert!(text.contains("text body\r\n"));
    assert!(!text.contains("hidden"));
    let again = run(&a, b"text body\n");
    assert_eq!(again.stdout, out.stdout);
    let parsed = mail_parser::MessageParser::default()
        .parse(&out.stdout)
        .unwrap();
    assert_eq!(parsed.subject(), Some("Données 报告"));
    assert_eq!(parsed.attachment(0).unwrap().contents(), b"a,b\n1,2\n");
}

#[test]
fn json_reports_success() {
    let server = FakeServer::start(Script::default());
    let a = with(
        args(&server, "none"),
        &["--cc", "c@example.org", "--body", "x", "--json"],
    );
    let out = run(&a, b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["status"], "sent");
    assert_eq!(json["exit_code"], 0);
    assert_eq!(json["message_id"], "<t1@example.org>");
    assert!(json["size"].as_u64().unwrap() > 100);
    assert_eq!(json["queue_id"], "4QX1abc");
    assert_eq!(json["final_reply"]["code"], 250);
    assert_eq!(json["final_reply"]["enhanced"], "2.0.0");
    assert_eq!(json["final_reply"]["text"], "Ok: queued as 4QX1abc");
    assert_eq!(json["recipients"].as_array().unwrap().len(), 2);
    assert_eq!(json["recipients"][1]["status"], "accepted");
    assert_eq!(json["recipients"][1]["enhanced"], "2.1.5");
    let size = json["size"].as_u64().unwrap();
    assert_eq!(size as usize, server.finish().message().len());
}

#[test]
fn body_from_stdin_and_file() {
    let server = FakeServer::start(Script::default());
    let out = run(&args(&server, "none"), b"piped body\n");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(String::from_utf8(server.finish().message())
        .unwrap()
        .ends_with("\r\n\r\npiped body\r\n"));

    let out = run(
        &[
            "send",
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
            "--body-file",
            "/nonexistent/body.txt",
            "--dry-run",
        ]
        .map(String::from),
        b"",
    );
    assert_eq!(code(&out), 66);
}

/// Runs `send --raw` with `flags` against a fake server, the message on
/// standard input; what the server received.
fn send_raw(flags: &[&str], message: &[u8]) -> Recorded {
    let server = FakeServer::start(Script::default());
    let addr = server.addr();
    let mut a: Vec<String> = ["send", "--server", &addr, "--tls", "none", "--raw"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.extend(flags.iter().map(|s| s.to_string()));
    let out = run(&a, message);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    server.finish()
}

#[test]
fn raw_with_recipients_from_the_header() {
    let message = b"From: Ops <ops@example.org>\nTo: b@example.org\nCc: Carl <c@example.org>\nBcc: hidden@example.org\nSubject: raw\n\n.body line\n";
    let rec = send_raw(&["-t"], message);
    assert_eq!(rec.mail_from.as_deref(), Some("ops@example.org"));
    assert_eq!(
        rec.rcpt_to,
        vec!["b@example.org", "c@example.org", "hidden@example.org"]
    );
    assert_eq!(
        rec.message(),
        b"From: Ops <ops@example.org>\r\nTo: b@example.org\r\nCc: Carl <c@example.org>\r\nSubject: raw\r\n\r\n.body line\r\n"
    );
}

/// `send --raw` hides Resent-Bcc as it hides Bcc (and as sendmail mode
/// does): neither field reaches the server.
#[test]
fn raw_removes_resent_bcc() {
    let message = b"Resent-From: r@example.org\nResent-To: t@example.org\nResent-Bcc: secret@example.org\nFrom: a@example.org\nBcc: b@example.org\nSubject: fwd\n\nbody\n";
    let rec = send_raw(&["--to", "t@example.org"], message);
    assert_eq!(rec.rcpt_to, vec!["t@example.org"]);
    assert_eq!(
        rec.message(),
        b"Resent-From: r@example.org\r\nResent-To: t@example.org\r\nFrom: a@example.org\r\nSubject: fwd\r\n\r\nbody\r\n"
    );
}

#[test]
fn plaintext_credentials_to_a_remote_server_are_refused() {
    let out = run(
        &[
            "send",
            "--server",
            "192.0.2.1:587",
            "--tls",
            "none",
            "--user",
            "ops",
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
            "--body",
            "x",
        ]
        .map(String::from),
        b"",
    );
    assert_eq!(code(&out), 78, "{}", stderr(&out));
    assert!(stderr(&out).contains("unencrypted"));
    assert!(out.stdout.is_empty());
}

#[test]
fn json_even_when_failing_before_the_attempt() {
    let out = run(
        &[
            "send",
            "--server",
            "127.0.0.1:9",
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
            "--attach",
            "/nonexistent/report.pdf",
            "--json",
        ]
        .map(String::from),
        b"",
    );
    assert_eq!(code(&out), 66);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["status"], "failed");
    assert_eq!(json["exit_code"], 66);
    assert!(json["error"].as_str().unwrap().contains("report.pdf"));
}

#[test]
fn large_attachment_is_streamed_intact_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    let size = 50 * 1024 * 1024;
    let mut data = Vec::with_capacity(size);
    let mut x: u32 = 12345;
    while data.len() < size {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        data.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(&path, &data).unwrap();
    let server = FakeServer::start(Script::default());
    let pid = server.client_pid.clone();
    let a = with(
        args(&server, "none"),
        &[
            "--body",
            "see attachment",
            "--attach",
            path.to_str().unwrap(),
        ],
    );
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = run_with(&refs, b"", |child| {
        pid.store(child, std::sync::atomic::Ordering::SeqCst)
    });
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rec = server.finish();
    let hwm = rec.client_vmhwm_kb.expect("client memory measured");
    eprintln!("mailctl peak memory while sending 50 MiB: {hwm} kB");
    assert!(hwm < 32 * 1024, "peak memory {hwm} kB");
    let message = rec.message();
    let parsed = mail_parser::MessageParser::default()
        .parse(&message)
        .unwrap();
    assert!(parsed.attachment(0).unwrap().contents() == &data[..]);
}

#[test]
fn oversized_replies_are_protocol_errors() {
    let long_line = format!("250 {}", "x".repeat(70 * 1024));
    let many_lines = format!("{}250 end", "250-x\r\n".repeat(1000));
    for reply in [long_line, many_lines] {
        let server = FakeServer::start(Script {
            ehlo_reply: Some(reply),
            ..Script::default()
        });
        let out = run(&with(args(&server, "none"), &["--body", "x"]), b"");
        assert_eq!(code(&out), 76, "{}", stderr(&out));
        assert!(!server.finish().saw("MAIL"));
    }
}

#[test]
fn helo_fallback_when_ehlo_is_refused() {
    let server = FakeServer::start(Script {
        ehlo_reply: Some("502 5.5.2 Error: command not recognized".into()),
        ..Script::default()
    });
    let out = run(
        &with(
            args(&server, "none"),
            &["--body", "x", "--helo", "client.example"],
        ),
        b"",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rec = server.finish();
    assert_eq!(
        rec.commands[..2],
        ["EHLO client.example", "HELO client.example"],
        "HELO follows the refused EHLO, with the same name"
    );
    assert!(rec.data.is_some());
    // Without extensions: no SIZE parameter, one command at a time.
    assert_eq!(rec.mail_from.as_deref(), Some("ops@example.org"));
    assert!(rec
        .commands
        .iter()
        .any(|c| c == "MAIL FROM:<ops@example.org>"));
}

#[test]
fn library_probe_checks_settings_without_sending() {
    use mailctl::exit::{exit_status, Exit};
    use mailctl::net::connection::{Endpoint, TlsMode, TlsOptions};
    use mailctl::net::smtp::{probe, Settings};
    use mailctl::proto::smtp::client::Credentials;
    use mailctl::transcript::Transcript;

    for (auth_reply, expected) in [
        ("235 2.7.0 ok", None),
        ("535 5.7.8 bad", Some(Exit::NoPerm)),
    ] {
        let server = FakeServer::start(Script {
            tls: ServerTls::Starttls,
            auth_reply: auth_reply.into(),
            ..Script::default()
        });
        let settings = Settings {
            endpoint: Endpoint::parse(&format!("localhost:{}", server.port), 587).unwrap(),
            tls: TlsMode::Starttls,
            tls_options: TlsOptions {
                ca_file: server.ca_file.clone(),
                ..TlsOptions::default()
            },
            timeout: std::time::Duration::from_secs(30),
            helo_name: Some("client.example".into()),
            credentials: Some(Credentials {
                user: "ops".into(),
                secret: Some(mailctl::secret::Secret::new(PASSWORD)),
                mechanism: None,
                token: false,
                client_cert: false,
                nonce: "nonce".into(),
            }),
            secret_source: None,
        };
        let (transcript, log) = Transcript::memory();
        let result = probe(&settings, &transcript);
        let rec = server.finish();
        assert!(!rec.saw("MAIL"));
        assert!(rec.saw("QUIT"));
        let log = String::from_utf8(log.lock().unwrap().clone()).unwrap();
        assert!(!log.contains(PASSWORD));
        match expected {
            None => {
                let report = result.unwrap();
                assert!(report.tls);
                assert!(report.capabilities.pipelining);
                assert_eq!(report.auth.map(|m| m.name()), Some("PLAIN"));
            }
            Some(exit) => assert_eq!(exit_status(&result.unwrap_err()), exit),
        }
    }
}

/// Runs mailctl with standard output connected to a pipe nobody reads any
/// more: every write to it fails with EPIPE.
fn run_into_closed_pipe(args: &[String]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    std::process::Command::new(env!("CARGO_BIN_EXE_mailctl"))
        .args(args)
        .env("MAILCTL_PASSWORD", PASSWORD)
        .stdin(std::process::Stdio::null())
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap()
}

/// `mailctl send --dry-run ... | head` ends quietly, like any filter.
#[test]
fn dry_run_into_a_closed_pipe_is_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.bin");
    std::fs::write(&file, vec![7u8; 256 * 1024]).unwrap();
    let a: Vec<String> = [
        "send",
        "--dry-run",
        "--from",
        "a@example.org",
        "--to",
        "b@example.org",
        "--body",
        "x",
        "--attach",
        file.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = run_into_closed_pipe(&a);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Only the envelope, which comes before the message.
    assert!(
        stderr(&out)
            .lines()
            .all(|l| l.starts_with("mailctl: dry run: ")),
        "{}",
        stderr(&out)
    );
}

/// The message was accepted: a JSON reader that went away must not turn
/// that into a failure a wrapper would retry (sending the mail twice).
#[test]
fn json_into_a_closed_pipe_after_sending_is_still_success() {
    let server = FakeServer::start(Script::default());
    let a = with(args(&server, "none"), &["--body", "hi", "--json"]);
    let out = run_into_closed_pipe(&a);
    let rec = server.finish();
    assert!(rec.data.is_some());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// An internationalised domain goes out in its ASCII form, in the envelope
/// and the header alike, so a server without SMTPUTF8 takes it.
#[test]
fn idn_domains_are_sent_as_a_labels() {
    let server = FakeServer::start(Script::default());
    let a = with(
        args(&server, "none"),
        &["--cc", "\"Jörg\" <jorg@Bücher.de>", "--body", "hi"],
    );
    let out = run(&a, b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rec = server.finish();
    assert_eq!(rec.rcpt_to, vec!["b@example.org", "jorg@xn--bcher-kva.de"]);
    assert!(!rec.saw("MAIL FROM:<OPS@EXAMPLE.ORG> SMTPUTF8"));
    let message = String::from_utf8(rec.message()).unwrap();
    assert!(
        message.contains("Cc: =?utf-8?B?SsO2cmc=?= <jorg@xn--bcher-kva.de>\r\n"),
        "{message}"
    );
}

/// A directory where a body, HTML or attachment file belongs is an input
/// file that cannot be read: 66, whichever option named it.
#[test]
fn a_directory_as_input_file_is_66() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    for option in ["--body-file", "--html", "--attach"] {
        let out = run(
            &[
                "send",
                "--from",
                "a@example.org",
                "--to",
                "b@example.org",
                "--body",
                "x",
                option,
                d,
                "--dry-run",
            ]
            .iter()
            .filter(|a| !(option == "--body-file" && (**a == "--body" || **a == "x")))
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
            b"",
        );
        assert_eq!(code(&out), 66, "{option}: {}", stderr(&out));
        assert!(out.stdout.is_empty());
    }
}

/// The error line going to a closed pipe must not become a panic (101):
/// the exit status is what a wrapper relies on.
#[test]
fn closed_stderr_keeps_the_exit_status() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailctl"))
        .args([
            "send", "--server", "host:", "--from", "a@x.org", "--to", "b@x.org", "--body", "x",
        ])
        .stderr(writer)
        .output()
        .unwrap();
    assert_eq!(code(&out), 64);
}

/// A TLS mode that contradicts a well-known port is named in the error,
/// with the fix.
#[test]
fn wrong_tls_mode_for_the_port_gets_a_hint() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailctl"))
        .args(["send", "--server", "127.0.0.1:465", "--tls", "starttls"])
        .args(["--from", "a@example.test", "--to", "b@example.test"])
        .args(["--body", "x", "--timeout", "5"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("mailctl: error: "), "{stderr}");
    assert!(stderr.contains("hint: port 465 speaks TLS"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// The SIZE parameter of MAIL FROM.
fn size_parameter(rec: &Recorded) -> Option<u64> {
    let mail = rec.commands.iter().find(|c| c.starts_with("MAIL FROM:"))?;
    let size = mail
        .split_whitespace()
        .find_map(|p| p.strip_prefix("SIZE="))?;
    size.parse().ok()
}

/// About `size` bytes of `line` (numbered), with a line holding a single
/// dot and one starting with a dot now and then.
fn big_text(size: usize, line: &str) -> String {
    let mut text = String::with_capacity(size + 200);
    let mut i = 0;
    while text.len() < size {
        text.push_str(&format!("{i:>7} {line}\n"));
        if i % 997 == 0 {
            text.push_str(".\n.leading dot\n");
        }
        i += 1;
    }
    text
}

/// Bodies above the in-memory limit are spooled and encoded while sending:
/// each arrives decoding to exactly the input, in the expected transfer
/// encoding, with lines of at most 998 octets and an exact SIZE.
#[test]
fn large_body_from_stdin_arrives_intact() {
    let cases = [
        ("a log line, ASCII only", "7bit"),
        (
            "Grüße aus Köln: every job finished, trailing space ",
            "quoted-printable",
        ),
        ("夜间任务全部完成，没有错误。", "base64"),
    ];
    for (line, encoding) in cases {
        let body = big_text(3 * 1024 * 1024, line);
        let server = FakeServer::start(Script::default());
        let out = run(&args(&server, "none"), body.as_bytes());
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let rec = server.finish();
        let message = rec.message();
        assert_eq!(size_parameter(&rec), Some(message.len() as u64), "{line}");
        assert!(message
            .split(|&b| b == b'\n')
            .all(|l| l.len() <= 1000 && l.last().is_none_or(|&b| b == b'\r')));
        let parsed = mail_parser::MessageParser::default()
            .parse(&message)
            .unwrap();
        let part = &parsed.parts[0];
        use mail_parser::MimeHeaders;
        let ct = part.content_type().unwrap();
        assert_eq!(
            (ct.ctype(), ct.subtype(), ct.attribute("charset")),
            ("text", Some("plain"), Some("utf-8"))
        );
        assert_eq!(part.content_transfer_encoding(), Some(encoding), "{line}");
        assert!(
            parsed.body_text(0).unwrap() == body.replace('\n', "\r\n"),
            "{line}: the body changed"
        );
        assert!(!message.is_empty() && message.ends_with(b"\r\n"));
    }
}

/// A large --body-file next to --html and an attachment gives the same
/// MIME structure as a small one.
#[test]
fn large_body_file_keeps_the_mime_structure() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.txt");
    let small = dir.path().join("small.txt");
    let html = dir.path().join("body.html");
    let attachment = dir.path().join("data.csv");
    let body = big_text(2 * 1024 * 1024, "Köln report ok");
    std::fs::write(&big, &body).unwrap();
    std::fs::write(&small, "small body\n").unwrap();
    std::fs::write(&html, "<p>report</p>\n").unwrap();
    std::fs::write(&attachment, "a,b\n1,2\n").unwrap();
    let shape = |body_file: &std::path::Path| {
        let out = mailctl(
            &[
                "send",
                "--dry-run",
                "--from",
                "a@example.org",
                "--to",
                "b@example.org",
                "--message-id",
                "m1@example.org",
                "--date",
                DATE,
                "--body-file",
                body_file.to_str().unwrap(),
                "--html",
                html.to_str().unwrap(),
                "--attach",
                attachment.to_str().unwrap(),
            ],
            b"",
        );
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let parsed = mail_parser::MessageParser::default()
            .parse(&out.stdout)
            .unwrap()
            .into_owned();
        use mail_parser::MimeHeaders;
        let types: Vec<String> = parsed
            .parts
            .iter()
            .map(|p| {
                let ct = p.content_type().unwrap();
                format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or(""))
            })
            .collect();
        (parsed, types)
    };
    let (small_parsed, small_types) = shape(&small);
    let (parsed, types) = shape(&big);
    assert_eq!(types, small_types);
    assert_eq!(
        types,
        [
            "multipart/mixed",
            "multipart/alternative",
            "text/plain",
            "text/html",
            "text/csv"
        ]
    );
    assert_eq!(small_parsed.body_text(0).unwrap(), "small body\r\n");
    assert!(parsed.body_text(0).unwrap() == body.replace('\n', "\r\n"));
    assert_eq!(parsed.body_html(0).unwrap(), "<p>report</p>\r\n");
    assert_eq!(parsed.attachment(0).unwrap().contents(), b"a,b\n1,2\n");
}

/// A large body whose first MiB is UTF-8 but whose rest is not (a
/// character cut at the end included) is refused: the charset is chosen
/// from the first MiB.
#[test]
fn large_body_not_utf8_is_65() {
    let dir = tempfile::tempdir().unwrap();
    let mut cut = "x".repeat(2 * 1024 * 1024).into_bytes();
    cut.extend_from_slice(&"é".as_bytes()[..1]);
    let mut bad = "y".repeat(1024 * 1024 + 5).into_bytes();
    bad.push(0xFF);
    bad.extend_from_slice(&[b'z'; 100_000]);
    for input in [cut, bad] {
        let base = [
            "send",
            "--dry-run",
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
        ];
        let out = mailctl(&base, &input);
        assert_eq!(code(&out), 65, "{}", stderr(&out));
        assert!(stderr(&out).contains("standard input is not UTF-8"));
        let path = dir.path().join("body.txt");
        std::fs::write(&path, &input).unwrap();
        let mut args = base.to_vec();
        args.extend(["--body-file", path.to_str().unwrap()]);
        let out = mailctl(&args, b"");
        assert_eq!(code(&out), 65, "{}", stderr(&out));
        assert!(stderr(&out).contains("body.txt is not UTF-8"));
    }
}

/// Memory does not grow with the body.
#[test]
fn large_body_is_sent_with_bounded_memory() {
    let body = big_text(48 * 1024 * 1024, "nightly backup copied a file");
    let server = FakeServer::start(Script::default());
    let pid = server.client_pid.clone();
    let a = args(&server, "none");
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = run_with(&refs, body.as_bytes(), |child| {
        pid.store(child, std::sync::atomic::Ordering::SeqCst)
    });
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rec = server.finish();
    let hwm = rec.client_vmhwm_kb.expect("client memory measured");
    eprintln!("mailctl peak memory while sending a 48 MiB body: {hwm} kB");
    assert!(hwm < 32 * 1024, "peak memory {hwm} kB");
    let message = rec.message();
    assert_eq!(size_parameter(&rec), Some(message.len() as u64));
    let start = message.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(message[start..] == *body.replace('\n', "\r\n").as_bytes());
}

/// `--html` is read like `--body-file`: a device is refused at once (it
/// used to be read without end), a large file is spooled and arrives whole.
#[test]
fn html_file_must_be_regular_and_large_ones_are_spooled() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mailctl"))
        .args([
            "send",
            "--dry-run",
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
            "--body",
            "x",
            "--html",
            "/dev/zero",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A generous bound, not a measurement: the refusal is immediate.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("send --html /dev/zero still reading after 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 66, "{}", stderr(&out));
    assert_eq!(
        stderr(&out).trim_end(),
        "mailctl: error: HTML file /dev/zero: not a regular file"
    );
    assert!(out.stdout.is_empty());

    let dir = tempfile::tempdir().unwrap();
    let html_file = dir.path().join("big.html");
    let html = big_text(3 * 1024 * 1024, "<p>Grüße aus Köln</p>");
    std::fs::write(&html_file, &html).unwrap();
    let out = mailctl(
        &[
            "send",
            "--dry-run",
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
            "--date",
            DATE,
            "--body",
            "plain",
            "--html",
            html_file.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(out.stdout.split(|&b| b == b'\n').all(|l| l.len() <= 1000));
    let parsed = mail_parser::MessageParser::default()
        .parse(&out.stdout)
        .unwrap();
    assert_eq!(parsed.body_text(0).unwrap().trim_end(), "plain");
    assert!(parsed.body_html(0).unwrap() == html.replace('\n', "\r\n"));
}

mod pty_support;

#[test]
fn large_send_shows_a_progress_bar_on_a_terminal_and_clears_it() {
    let dir = tempfile::tempdir().unwrap();
    let attachment = dir.path().join("big.bin");
    let bytes: Vec<u8> = (0..6 * 1024 * 1024u32)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    std::fs::write(&attachment, &bytes).unwrap();
    let server = FakeServer::start(Script::default());
    let a = with(
        args(&server, "none"),
        &[
            "--body",
            "see attached",
            "--attach",
            attachment.to_str().unwrap(),
        ],
    );
    let bin = env!("CARGO_BIN_EXE_mailctl");
    let Some(shown) = pty_support::run(80, None, bin, &a, &[]) else {
        return;
    };
    assert_eq!(shown.code, 0, "{:?}", shown.text);
    assert!(shown.text.contains("sending ["), "{:?}", shown.text);
    let (lines, widest) = pty_support::screen(&shown.text);
    assert!(widest < 80, "a line of {widest} columns: {:?}", shown.text);
    let left: Vec<&String> = lines.iter().filter(|l| !l.is_empty()).collect();
    assert!(
        left.len() == 1 && left[0].starts_with("sent to 1 recipient via "),
        "left on the screen: {lines:?}"
    );
    let message = server.finish().message();
    assert!(message.len() > bytes.len() * 4 / 3, "{}", message.len());
}

#[test]
fn send_on_a_terminal_reads_the_body_typed_there_and_says_where_it_went() {
    let server = FakeServer::start(Script::default());
    let a = args(&server, "none");
    let bin = env!("CARGO_BIN_EXE_mailctl");
    let hint = "(enter the message, end with Ctrl-D on a line of its own)";
    let keys = "typed at the terminal\nsecond line\n\x04";
    let Some(shown) = pty_support::run_typing_on(hint, keys, bin, &a, &[]) else {
        return;
    };
    assert_eq!(shown.code, 0, "{:?}", shown.text);
    let expected = format!("sent to 1 recipient via {} (250", server.addr());
    assert!(shown.text.contains(&expected), "{:?}", shown.text);
    let message = String::from_utf8(server.finish().message()).unwrap();
    assert!(
        message.contains("typed at the terminal\r\nsecond line\r\n"),
        "{message}"
    );
}

#[test]
fn a_send_from_a_script_prints_nothing_on_success() {
    let server = FakeServer::start(Script::default());
    let out = run(&with(args(&server, "none"), &["--body", "quiet"]), b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    assert_eq!(stdout(&out), "");
}

#[test]
fn dry_run_shows_the_whole_envelope_before_the_message() {
    let out = mailctl(
        &[
            "send",
            "--dry-run",
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
            "--cc",
            "c@example.org",
            "--bcc",
            "hidden@example.org",
            "--subject",
            "s",
            "--body",
            "x",
        ],
        b"",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "mailctl: dry run: MAIL FROM:<a@example.org>\n\
         mailctl: dry run: RCPT TO:<b@example.org>\n\
         mailctl: dry run: RCPT TO:<c@example.org>\n\
         mailctl: dry run: RCPT TO:<hidden@example.org>\n"
    );
    assert!(
        !stdout(&out).contains("hidden@example.org"),
        "Bcc stays out of the message"
    );
}

#[test]
fn a_missing_attachment_is_named_as_one() {
    let out = mailctl(
        &[
            "send",
            "--dry-run",
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
            "--subject",
            "s",
            "--body",
            "x",
            "--attach",
            "/nonexistent/report.pdf",
        ],
        b"",
    );
    assert_eq!(code(&out), 66, "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("mailctl: error: attachment /nonexistent/report.pdf: "),
        "{}",
        stderr(&out)
    );
}

/// A server that offers SCRAM-SHA-256 but cannot prove it knows the
/// password (a wrong signature in its last message) is refused: the
/// exchange is cancelled, nothing is sent, exit 76; the transcript shows
/// neither the password nor the proof.
#[test]
fn a_server_with_a_wrong_scram_signature_is_refused() {
    let server = FakeServer::start(Script {
        extensions: vec!["PIPELINING".into(), "AUTH PLAIN SCRAM-SHA-256".into()],
        ..Script::default()
    });
    let addr = server.addr();
    let output = mailctl(
        &[
            "send",
            "-v",
            "--server",
            &addr,
            "--tls",
            "none",
            "--user",
            "ops",
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
            "--subject",
            "s",
            "--body",
            "b",
        ],
        b"",
    );
    let rec = server.finish();
    assert_eq!(code(&output), 76, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("did not prove it knows the password"), "{err}");
    assert!(err.contains("C: AUTH SCRAM-SHA-256 <redacted>"), "{err}");
    assert!(!err.contains(PASSWORD) && !err.contains(",p="), "{err}");
    assert_eq!(
        rec.commands.iter().filter(|c| *c == "*").count(),
        1,
        "{rec:?}"
    );
    assert!(!rec.saw("MAIL"), "{rec:?}");
}

/// `mailctl send` with `extra`, no `MAILCTL_PASSWORD`, and a password
/// command that leaves a mark in `dir` when it runs.
fn run_with_marked_password(args: &[String], dir: &std::path::Path) -> std::process::Output {
    let marker = dir.join("asked");
    let command = format!("touch '{}'; echo '{PASSWORD}'", marker.display());
    std::process::Command::new(env!("CARGO_BIN_EXE_mailctl"))
        .args(args)
        .args(["--password-command", &command])
        .env_remove("MAILCTL_PASSWORD")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("mailctl runs")
}

/// The client certificate and key the tests present (the fake servers'
/// own pair: the client side does not care what the certificate is for).
fn client_cert_args() -> [String; 4] {
    let fixture = |name: &str| format!("{}/tests/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"));
    [
        "--cert".into(),
        fixture("cert.pem"),
        "--key".into(),
        fixture("key.pem"),
    ]
}

/// With a client certificate and EXTERNAL offered, `--auth auto` sends
/// `AUTH EXTERNAL =` and never runs the password command; without the
/// certificate it logs in with the password (and so runs the command).
#[test]
fn external_with_a_client_certificate_needs_no_password() {
    for with_cert in [true, false] {
        let server = FakeServer::start(Script {
            tls: ServerTls::Implicit,
            extensions: vec!["AUTH PLAIN EXTERNAL".into()],
            ..Script::default()
        });
        let dir = tempfile::tempdir().unwrap();
        let mut a = with(args(&server, "implicit"), &["--user", "ops", "--body", "x"]);
        if with_cert {
            a.extend(client_cert_args());
        }
        let out = run_with_marked_password(&a, dir.path());
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let rec = server.finish();
        assert_eq!(rec.saw("AUTH EXTERNAL ="), with_cert, "{:?}", rec.commands);
        assert_eq!(rec.saw("AUTH PLAIN"), !with_cert, "{:?}", rec.commands);
        assert_eq!(dir.path().join("asked").exists(), !with_cert);
    }
}

/// `--auth external` without a certificate is a usage error before any
/// connection; with one but EXTERNAL not offered, nothing is sent and the
/// password is never asked for.
#[test]
fn external_asked_for_needs_a_certificate_and_the_offer() {
    let dir = tempfile::tempdir().unwrap();
    let a: Vec<String> = [
        "send",
        "--server",
        "127.0.0.1:1",
        "--user",
        "ops",
        "--auth",
        "external",
        "--from",
        "a@example.org",
        "--to",
        "b@example.org",
        "--body",
        "x",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = run_with_marked_password(&a, dir.path());
    assert_eq!(code(&out), 64, "{}", stderr(&out));
    assert!(stderr(&out).starts_with("mailctl: error: --auth external needs a client certificate"));

    let server = FakeServer::start(Script {
        tls: ServerTls::Implicit,
        ..Script::default()
    });
    let mut a = with(
        args(&server, "implicit"),
        &["--user", "ops", "--auth", "external", "--body", "x"],
    );
    a.extend(client_cert_args());
    let out = run_with_marked_password(&a, dir.path());
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("EXTERNAL"), "{}", stderr(&out));
    let rec = server.finish();
    assert!(!rec.saw("AUTH") && !rec.saw("MAIL"));
    assert!(!dir.path().join("asked").exists());
}

/// A SCRAM send over implicit TLS to a server offering `offered` that
/// checks the proof and channel binding with `password`.
fn scram_over_tls(offered: &str, password: &str) -> (std::process::Output, Recorded) {
    let server = FakeServer::start(Script {
        tls: ServerTls::Implicit,
        extensions: vec![format!("AUTH PLAIN {offered}")],
        scram_password: Some(password.into()),
        ..Script::default()
    });
    let a = with(args(&server, "implicit"), &["--user", "ops", "--body", "x"]);
    let out = run(&a, b"");
    (out, server.finish())
}

/// Offered over TLS, SCRAM-SHA-256-PLUS is used: the server (its binding
/// data from native-tls) verifies a proof that covers its certificate; a
/// proof for another password is refused (77).
#[test]
fn scram_plus_binds_the_servers_certificate() {
    let (out, rec) = scram_over_tls("SCRAM-SHA-256 SCRAM-SHA-256-PLUS", PASSWORD);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(rec.saw("AUTH SCRAM-SHA-256-PLUS "), "{:?}", rec.commands);
    let first = rec.scram_client_first.unwrap();
    assert!(
        first.starts_with("p=tls-server-end-point,,n=ops,r="),
        "{first}"
    );
    assert_eq!(rec.scram_verified, Some(true));
    assert!(rec.data.is_some());

    let (out, rec) = scram_over_tls("SCRAM-SHA-1-PLUS SCRAM-SHA-1", "another password");
    assert_eq!(code(&out), 77, "{}", stderr(&out));
    assert!(rec.saw("AUTH SCRAM-SHA-1-PLUS "), "{:?}", rec.commands);
    assert_eq!(rec.scram_verified, Some(false));
    assert!(!rec.saw("MAIL"));
}

/// A server that offers only SCRAM-SHA-256 over TLS gets `y,,` (the
/// client could bind), inside the verified proof.
#[test]
fn scram_without_plus_over_tls_says_y() {
    let (out, rec) = scram_over_tls("SCRAM-SHA-256", PASSWORD);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let first = rec.scram_client_first.unwrap();
    assert!(first.starts_with("y,,n=ops,r="), "{first}");
    assert_eq!(rec.scram_verified, Some(true));
}

/// The message `send --dry-run` prints for `extra` options and `stdin`,
/// with its stderr.
fn dry_run(extra: &[&str], stdin: &[u8]) -> (Vec<u8>, String) {
    let mut argv = vec![
        "-v",
        "send",
        "--dry-run",
        "--from",
        "cron@example.org",
        "--to",
        "ops@example.org",
        "--subject",
        "alert",
    ];
    argv.extend(extra);
    let out = mailctl(&argv, stdin);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let said = stderr(&out);
    (out.stdout, said)
}

#[test]
fn a_latin1_body_is_detected_and_sent_as_utf8() {
    let latin1 = b"Alerte: temp\xe9rature \xe9lev\xe9e dans la salle 3\n";
    let (message, said) = dry_run(&[], latin1);
    let parsed = mail_parser::MessageParser::default()
        .parse(&message)
        .unwrap();
    let text = String::from_utf8_lossy(&message);
    assert!(text.contains("charset=\"utf-8\""), "{text}");
    assert_eq!(
        parsed.body_text(0).unwrap().trim_end(),
        "Alerte: température élevée dans la salle 3"
    );
    assert!(
        said.contains("is not UTF-8: read as windows-1252 (detected"),
        "{said}"
    );

    // Not in a script's output without -v.
    let out = mailctl(
        &[
            "send",
            "--dry-run",
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
        ],
        latin1,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("windows-1252"), "{}", stderr(&out));
}

#[test]
fn charset_names_the_body_file_charset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alert.txt");
    // 0xA4 is the euro sign in ISO-8859-15, a currency sign in Latin-1.
    std::fs::write(&path, b"co\xfbt: 12 \xa4\n").unwrap();
    let file = path.to_str().unwrap();
    let (message, said) = dry_run(&["--charset", "iso-8859-15", "--body-file", file], b"");
    let parsed = mail_parser::MessageParser::default()
        .parse(&message)
        .unwrap();
    assert_eq!(parsed.body_text(0).unwrap().trim_end(), "coût: 12 €");
    assert!(said.contains("read as ISO-8859-15 (--charset)"), "{said}");

    let out = mailctl(
        &[
            "send",
            "--dry-run",
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
            "--charset",
            "klingon",
        ],
        b"x\n",
    );
    assert_eq!(code(&out), 64, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--charset klingon"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_large_latin1_body_is_transcoded_while_spooled() {
    let line = b"journal: op\xe9ration termin\xe9e\n";
    let body: Vec<u8> = line.repeat(3 * 1024 * 1024 / line.len());
    let (message, _) = dry_run(&[], &body);
    let parsed = mail_parser::MessageParser::default()
        .parse(&message)
        .unwrap();
    let text = parsed.body_text(0).unwrap();
    let expected = "journal: opération terminée\r\n".repeat(body.len() / line.len());
    assert!(text == expected, "{} bytes", text.len());
}
