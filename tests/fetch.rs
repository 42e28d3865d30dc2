//! `mailctl fetch` against in-process fake POP3 servers.

mod fetch_support;
mod pty_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use fetch_support::{code, mailctl, mailctl_env, message, stderr, Config, Server, Stored, Tls};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// `fetch --server SERVER --user alice --timeout 20` and `more`: what most
/// runs share.
fn fetch_args(server: &str, more: &[&str]) -> Vec<String> {
    [
        "fetch",
        "--server",
        server,
        "--user",
        "alice",
        "--timeout",
        "20",
    ]
    .iter()
    .chain(more)
    .map(|s| s.to_string())
    .collect()
}

/// [`fetch_args`] for `server` without TLS.
fn plain(server: &Server) -> Vec<String> {
    fetch_args(&server.addr(), &["--tls", "none"])
}

/// Fetches from `server` without TLS, with `extra`.
fn run(server: &Server, extra: &[&str], state: &Path) -> std::process::Output {
    let mut args = plain(server);
    args.extend(extra.iter().map(|s| s.to_string()));
    mailctl(&args, state)
}

/// Messages whose bytes must survive exactly: dot lines, 8-bit, invalid
/// UTF-8, a bare LF and a missing final CRLF.
fn tricky_messages() -> Vec<Vec<u8>> {
    vec![
        message("dots", b".\r\n..\r\n...\r\n.leading\r\n..two\r\nend\r\n"),
        message(
            "8bit",
            b"caf\xc3\xa9 \xff\xfe\x00 latin1 \xe9t\xe9\r\nbare\nlf\r\nFrom the start\r\n",
        ),
        message("no final newline", b"last line without CRLF"),
    ]
}

/// How the fake server stores a message that lacked a final CRLF: POP3
/// always ends the body with one.
fn as_served(m: &[u8]) -> Vec<u8> {
    let mut m = m.to_vec();
    if !m.ends_with(b"\r\n") {
        m.extend_from_slice(b"\r\n");
    }
    m
}

fn folders(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn list_is_the_default_and_decodes_headers() {
    let state = tmp();
    let server = Server::start(
        Config {
            connections: 2,
            ..Config::default()
        },
        vec![
            message("=?gb18030?B?1tDOxA==?= \x1b[31mred", b"body\r\n"),
            message("plain", b"x\r\n"),
        ],
    );
    let mut args = plain(&server);
    args.push("--uidl".into());
    let out = mailctl_env(&args, state.path(), &[("TZ", "Europe/Paris")]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with("NUM"), "{table}");
    assert!(table.contains("中文 \\x1b[31mred"), "{table}");
    assert!(table.contains("uid-2"));
    assert!(table.contains("Alice <alice@example.org>"));
    assert!(table.contains("2024-03-01 10:00"));

    let out = run(&server, &["--list", "--json"], state.path());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert_eq!(rows[1]["subject"], "plain");
    assert_eq!(rows[0]["uidl"], "uid-1");
    assert_eq!(rows[0]["date"], "2024-03-01T10:00:00+01:00");
    let log = server.finish();
    assert!(log.commands("TOP").len() == 4);
    assert!(log.commands("RETR").is_empty());
}

/// A message whose sender and subject are far wider than a terminal.
fn long_message() -> Vec<u8> {
    format!(
        "From: Somebody With A Rather Long Name <somebody.with.a.long.name@example.org>\r\n\
         Date: Fri, 01 Mar 2024 10:00:00 +0100\r\n\
         Subject: {}\r\n\r\nbody\r\n",
        "quarterly figures and the plans that follow them ".repeat(4)
    )
    .into_bytes()
}

#[test]
fn list_fits_an_80_column_terminal_with_local_dates_and_no_uidl() {
    let state = tmp();
    let server = Server::start(
        Config::default(),
        vec![long_message(), message("短い件名", b"x\r\n")],
    );
    let state_home = state.path().to_str().unwrap();
    let env = [
        ("MAILCTL_PASSWORD", "s3cret-pw"),
        ("XDG_STATE_HOME", state_home),
        ("TZ", "Asia/Tokyo"),
    ];
    let bin = env!("CARGO_BIN_EXE_mailctl");
    let Some(shown) = pty_support::run(80, None, bin, &plain(&server), &env) else {
        return;
    };
    assert_eq!(shown.code, 0, "{}", shown.text);
    let lines: Vec<&str> = shown
        .text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .collect();
    assert_eq!(lines.len(), 3, "{}", shown.text);
    assert!(
        lines[0].starts_with("NUM") && !lines[0].contains("UIDL"),
        "{}",
        shown.text
    );
    for line in &lines {
        let columns = unicode_columns(line);
        assert!(columns <= 80, "{columns} columns: {line:?}");
    }
    assert!(lines[1].contains("2024-03-01 18:00"), "{}", shown.text);
    assert!(lines[1].ends_with("..."), "{}", shown.text);
    assert!(!shown.text.contains("uid-1"), "{}", shown.text);
    assert!(lines[2].contains("短い件名"), "{}", shown.text);
}

/// Terminal columns of `text`: two for CJK, one for the rest (enough here).
fn unicode_columns(text: &str) -> usize {
    text.chars()
        .map(|c| {
            if ('\u{3000}'..='\u{9fff}').contains(&c) {
                2
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn columns_variable_sets_the_width_when_piped() {
    let state = tmp();
    let server = Server::start(Config::default(), vec![long_message()]);
    let out = mailctl_env(&plain(&server), state.path(), &[("COLUMNS", "60")]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let table = String::from_utf8(out.stdout).unwrap();
    for line in table.lines() {
        assert!(line.chars().count() <= 60, "{line:?}");
    }
}

#[test]
fn list_new_shows_only_unfetched_messages_and_says_when_there_are_none() {
    let state = tmp();
    let dest = tmp();
    let server = Server::start(
        Config {
            connections: 5,
            ..Config::default()
        },
        vec![],
    );
    let out = run(&server, &["--list"], state.path());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "no messages\n");

    server.mailbox.lock().unwrap().push(Stored {
        uid: "uid-1".into(),
        bytes: message("first", b"a\r\n"),
    });
    let md = dest.path().join("md");
    let out = run(
        &server,
        &["--all", "--maildir", md.to_str().unwrap()],
        state.path(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run(&server, &["--list", "--new"], state.path());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "no new mail\n");

    server.mailbox.lock().unwrap().push(Stored {
        uid: "uid-2".into(),
        bytes: message("second", b"b\r\n"),
    });
    let out = run(&server, &["--list", "--new", "--json"], state.path());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["subject"], "second");
    assert_eq!(rows[0]["uidl"], "uid-2");
    // A listing records nothing: the new message is still new.
    let out = run(&server, &["--list", "--new"], state.path());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("second") && !table.contains("first"),
        "{table}"
    );
}

#[test]
fn save_dir_is_byte_exact_and_extraction_failure_is_a_warning() {
    let state = tmp();
    let dest = tmp();
    let msgs = tricky_messages();
    let server = Server::start(Config::default(), msgs.clone());
    let dir = dest.path().join("out");
    let out = run(
        &server,
        &["--all", "--save-dir", dir.to_str().unwrap(), "--json"],
        state.path(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (i, m) in msgs.iter().enumerate() {
        let folder = dir.join(format!("uid-{}", i + 1));
        assert_eq!(fs::read(folder.join("message.eml")).unwrap(), as_served(m));
        assert_eq!(report[i]["saved"], folder.to_str().unwrap());
        assert_eq!(report[i]["deleted"], false);
    }
    // No temporary files are left behind.
    assert_eq!(folders(&dir).len(), 3);
    server.finish();
}

#[test]
fn save_dir_adds_a_suffix_instead_of_reusing_a_folder() {
    let state = tmp();
    let dest = tmp();
    fs::create_dir(dest.path().join("uid-1")).unwrap();
    fs::write(dest.path().join("uid-1/message.eml"), b"older").unwrap();
    let server = Server::start(Config::default(), vec![message("a", b"a\r\n")]);
    let out = run(
        &server,
        &["--retr", "1", "--save-dir", dest.path().to_str().unwrap()],
        state.path(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        fs::read(dest.path().join("uid-1/message.eml")).unwrap(),
        b"older"
    );
    assert_eq!(
        fs::read(dest.path().join("uid-1 (2)/message.eml")).unwrap(),
        message("a", b"a\r\n")
    );
    server.finish();
}

#[test]
fn maildir_output() {
    let state = tmp();
    let dest = tmp();
    let msgs = tricky_messages();
    let server = Server::start(Config::default(), msgs.clone());
    let md = dest.path().join("Mail");
    let out = run(
        &server,
        &["--all", "--maildir", md.to_str().unwrap()],
        state.path(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut got: Vec<Vec<u8>> = folders(&md.join("new"))
        .iter()
        .map(|p| fs::read(p).unwrap())
        .collect();
    let mut want: Vec<Vec<u8>> = msgs.iter().map(|m| as_served(m)).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert!(folders(&md.join("tmp")).is_empty());
    server.finish();
}

#[test]
fn mbox_output_is_mboxrd() {
    let state = tmp();
    let dest = tmp();
    let msgs = vec![
        message("one", b"From here\r\n>From there\r\n.\r\n"),
        message("two", b"plain\r\n"),
    ];
    let server = Server::start(
        Config {
            connections: 2,
            ..Config::default()
        },
        msgs,
    );
    let mbox = dest.path().join("inbox.mbox");
    let out = run(
        &server,
        &["--retr", "1", "--mbox", mbox.to_str().unwrap()],
        state.path(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run(
        &server,
        &["--retr", "2", "--mbox", mbox.to_str().unwrap()],
        state.path(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = fs::read(&mbox).unwrap();
    let text = String::from_utf8(text).unwrap();
    let seps: Vec<&str> = text.lines().filter(|l| l.starts_with("From ")).collect();
    assert_eq!(seps.len(), 2, "{text}");
    assert!(seps[0].starts_with("From MAILER-DAEMON "));
    assert!(text.contains("\n\n>From here\n>>From there\n.\n\nFrom MAILER-DAEMON "));
    assert!(text.ends_with("Subject: two\nMessage-ID: <3@example.org>\n\nplain\n\n"));
    assert!(!text.contains('\r'));
    server.finish();
}

#[test]
fn stdout_single_message_is_exact_and_several_are_framed() {
    let state = tmp();
    let msgs = tricky_messages();
    let server = Server::start(
        Config {
            connections: 2,
            ..Config::default()
        },
        msgs.clone(),
    );
    let out = run(&server, &["--retr", "2", "--stdout"], state.path());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, msgs[1]);
    let out = run(&server, &["--retr", "1-2", "--stdout"], state.path());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("\nFrom MAILER-DAEMON ").count(), 1);
    assert!(text.starts_with("From MAILER-DAEMON "));
    assert!(text.contains("\n>From the start\n"));
    server.finish();
}

#[test]
fn err_at_each_step_gives_the_right_exit_code() {
    let cases: Vec<(Config, &[&str], i32)> = vec![
        (
            Config {
                greeting: "-ERR [SYS/PERM] closed".into(),
                ..Config::default()
            },
            &[],
            69,
        ),
        (
            Config {
                greeting: "-ERR [SYS/TEMP] busy".into(),
                ..Config::default()
            },
            &[],
            75,
        ),
        (
            Config {
                user: "someone-else".into(),
                ..Config::default()
            },
            &["--auth", "user"],
            77,
        ),
        (
            Config {
                password: "other".into(),
                ..Config::default()
            },
            &["--auth", "user"],
            77,
        ),
        (
            Config {
                fail: vec![("PASS".into(), "-ERR [IN-USE] mailbox locked".into())],
                ..Config::default()
            },
            &["--auth", "user"],
            75,
        ),
        (
            Config {
                password: "other".into(),
                ..Config::default()
            },
            &["--auth", "plain"],
            77,
        ),
        (
            Config {
                fail: vec![("STAT".into(), "-ERR no".into())],
                ..Config::default()
            },
            &[],
            69,
        ),
        (
            Config {
                fail: vec![("LIST".into(), "-ERR no".into())],
                ..Config::default()
            },
            &[],
            69,
        ),
        (
            Config {
                fail: vec![("RETR 1".into(), "-ERR gone".into())],
                ..Config::default()
            },
            &["--all", "--stdout"],
            69,
        ),
        (
            Config {
                fail: vec![("DELE".into(), "-ERR read-only".into())],
                ..Config::default()
            },
            &["--all", "--stdout", "--delete"],
            69,
        ),
        (
            Config {
                fail: vec![("QUIT".into(), "-ERR could not expunge".into())],
                ..Config::default()
            },
            &["--all", "--stdout", "--delete"],
            69,
        ),
        (
            Config {
                fail: vec![("CAPA".into(), "-ERR what".into())],
                ..Config::default()
            },
            &["--all", "--stdout"],
            0,
        ),
    ];
    for (i, (config, extra, want)) in cases.into_iter().enumerate() {
        let state = tmp();
        let server = Server::start(config, vec![message("m", b"x\r\n")]);
        let out = run(&server, extra, state.path());
        assert_eq!(code(&out), want, "case {i}: {}", stderr(&out));
        if want != 0 {
            let err = stderr(&out);
            assert!(err.contains("mailctl: error: "), "case {i}: {err}");
        }
        server.finish();
    }
}

#[test]
fn missing_credentials_and_bad_usage() {
    let state = tmp();
    let out = mailctl(&["fetch", "--all", "--server", "127.0.0.1:1"], state.path());
    assert_eq!(code(&out), 64, "{}", stderr(&out));
    let out = mailctl(
        &["fetch", "--all", "--user", "a", "--server", "127.0.0.1:1"],
        state.path(),
    );
    assert_eq!(code(&out), 64, "destination required: {}", stderr(&out));
    let out = mailctl(
        &[
            "fetch", "--list", "--delete", "--server", "x", "--user", "a",
        ],
        state.path(),
    );
    assert_eq!(code(&out), 64);
    let out = mailctl(
        &[
            "fetch", "--retr", "0", "--stdout", "--server", "x", "--user", "a",
        ],
        state.path(),
    );
    assert_eq!(code(&out), 64);
}

/// The fake server's TLS acceptor and a CA file that verifies it.
fn cert() -> (Arc<native_tls::TlsAcceptor>, tempfile::TempDir, PathBuf) {
    let dir = tmp();
    let ca = dir.path().join("ca.pem");
    fs::write(&ca, fetch_support::CERT_PEM).unwrap();
    (Arc::new(fetch_support::acceptor()), dir, ca)
}

#[test]
fn stls_missing_when_required_sends_no_credentials() {
    let state = tmp();
    let server = Server::start(Config::default(), vec![message("m", b"x\r\n")]);
    // Named, STLS is required even on loopback.
    let out = mailctl(
        &fetch_args(&server.addr(), &["--tls", "starttls"]),
        state.path(),
    );
    assert_eq!(code(&out), 76, "{}", stderr(&out));
    assert!(stderr(&out).contains("does not offer STLS"));
    let log = server.finish();
    assert!(log.commands("USER").is_empty());
    assert!(log.commands("PASS").is_empty());
    assert!(log.commands("AUTH").is_empty());
    assert!(!log.text().contains("s3cret"));
}

#[test]
fn stls_refused_sends_no_credentials() {
    let state = tmp();
    let (cert, _dir, ca) = cert();
    let server = Server::start(
        Config {
            tls: Tls::Stls(cert.clone()),
            fail: vec![("STLS".into(), "-ERR not today".into())],
            ..Config::default()
        },
        vec![message("m", b"x\r\n")],
    );
    let out = mailctl(
        &fetch_args(&server.localhost(), &["--ca-file", ca.to_str().unwrap()]),
        state.path(),
    );
    assert_eq!(code(&out), 76, "{}", stderr(&out));
    let log = server.finish();
    assert!(log.commands("USER").is_empty() && log.commands("AUTH").is_empty());
}

#[test]
fn stls_discards_injected_bytes_and_asks_capa_again() {
    let state = tmp();
    let (cert, _dir, ca) = cert();
    let msgs = tricky_messages();
    let server = Server::start(
        Config {
            tls: Tls::Stls(cert.clone()),
            inject_after_stls: b"+OK injected\r\n-ERR injected\r\n".to_vec(),
            ..Config::default()
        },
        msgs.clone(),
    );
    let out = mailctl_env(
        &fetch_args(
            &server.localhost(),
            &[
                "--ca-file",
                ca.to_str().unwrap(),
                "--retr",
                "1",
                "--stdout",
                "-v",
            ],
        ),
        state.path(),
        &[],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, msgs[0]);
    let err = stderr(&out);
    assert!(err.contains("discarded 29 bytes"), "{err}");
    assert!(!err.contains("S: +OK injected"), "{err}");
    let log = server.finish();
    let tls_at = log.lines.iter().position(|l| l == "--- tls").unwrap();
    assert_eq!(log.commands("CAPA").len(), 2);
    assert!(log.lines[tls_at + 1..].iter().any(|l| l == "CAPA"));
    // Credentials only after the handshake.
    let auth_at = log
        .lines
        .iter()
        .position(|l| l.starts_with("AUTH") || l.starts_with("USER"))
        .unwrap();
    assert!(auth_at > tls_at);
}

#[test]
fn implicit_tls_on_995_style_connection() {
    let state = tmp();
    let (cert, _dir, ca) = cert();
    let server = Server::start(
        Config {
            tls: Tls::Implicit(cert.clone()),
            ..Config::default()
        },
        vec![message("tls", b"secure\r\n")],
    );
    let out = mailctl(
        &fetch_args(
            &server.localhost(),
            &[
                "--tls",
                "implicit",
                "--ca-file",
                ca.to_str().unwrap(),
                "--all",
                "--stdout",
            ],
        ),
        state.path(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, message("tls", b"secure\r\n"));
    server.finish();

    // Without the CA file the certificate is not trusted: TLS failure.
    let server = Server::start(
        Config {
            tls: Tls::Implicit(cert.clone()),
            ..Config::default()
        },
        vec![],
    );
    let out = mailctl(
        &fetch_args(&server.localhost(), &["--tls", "implicit"]),
        state.path(),
    );
    assert_eq!(code(&out), 76, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("failed: certificate verify failed (self-signed certificate); hint: ")
            && err.contains("--ca-file"),
        "{err}"
    );
    assert!(!err.contains("ssl3_"), "OpenSSL internals shown: {err}");
    server.finish();

    // TLS to a server that speaks plain POP3: the hint names STARTTLS.
    let server = Server::start(Config::default(), vec![]);
    let out = mailctl(
        &fetch_args(&server.localhost(), &["--tls", "implicit"]),
        state.path(),
    );
    assert_eq!(code(&out), 76, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("failed: wrong version number; hint: the server answered in plain text")
            && err.contains("--tls starttls"),
        "{err}"
    );
    drop(server);
}

#[test]
fn cut_during_retr_leaves_no_file_no_dele_no_state() {
    let state = tmp();
    let dest = tmp();
    let msgs = vec![
        message("first", b"one\r\n"),
        message("second", &b"line of the second message\r\n".repeat(200)),
    ];
    let server = Server::start(
        Config {
            cut_retr: Some((2, 1000)),
            connections: 2,
            ..Config::default()
        },
        msgs.clone(),
    );
    let dir = dest.path().join("saved");
    let out = run(
        &server,
        &["--new", "--delete", "--save-dir", dir.to_str().unwrap()],
        state.path(),
    );
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    assert!(stderr(&out).contains("the 1 deletion may not have happened"));
    // The first message is saved; nothing of the second exists.
    assert_eq!(folders(&dir), vec![dir.join("uid-1")]);
    assert_eq!(fs::read(dir.join("uid-1/message.eml")).unwrap(), msgs[0]);
    // Without QUIT the server deleted nothing, and DELE 2 never went out.
    assert_eq!(server.mailbox.lock().unwrap().len(), 2);
    {
        let log = server.log.lock().unwrap();
        assert!(log.commands("DELE").iter().all(|l| l != "DELE 2"));
        assert!(log.commands("QUIT").is_empty());
    }
    // Only the saved message counts as fetched: the next --new run takes
    // message 2 and not message 1.
    let out = run(&server, &["--new", "--stdout"], state.path());
    assert_eq!(code(&out), 75, "cut again: {}", stderr(&out));
    let log = server.finish();
    let last_conn = log
        .lines
        .iter()
        .rposition(|l| l == "--- connection")
        .unwrap();
    let retr: Vec<&String> = log.lines[last_conn..]
        .iter()
        .filter(|l| l.starts_with("RETR"))
        .collect();
    assert_eq!(retr, ["RETR 2"]);
}

#[test]
fn save_failure_with_delete_sends_no_dele() {
    let state = tmp();
    let dest = tmp();
    let dir = dest.path().join("saved");
    let dir2 = dir.clone();
    // When RETR 2 arrives the save folder is replaced by a file, so the
    // client cannot write message 2 (this works even as root, where
    // permission bits do not stop writes).
    let hook = Arc::new(move |n: u32| {
        if n == 2 {
            fs::rename(&dir2, dir2.with_extension("moved")).unwrap();
            fs::write(&dir2, b"not a directory").unwrap();
        }
    });
    let server = Server::start(
        Config {
            on_retr: Some(hook),
            ..Config::default()
        },
        vec![
            message("a", b"a\r\n"),
            message("b", b"b\r\n"),
            message("c", b"c\r\n"),
        ],
    );
    let out = run(
        &server,
        &["--all", "--delete", "--save-dir", dir.to_str().unwrap()],
        state.path(),
    );
    assert_eq!(code(&out), 73, "{}", stderr(&out));
    assert!(stderr(&out).contains("not deleting it or any later message"));
    let log = server.finish();
    assert_eq!(log.commands("DELE"), ["DELE 1"]);
    assert!(log.commands("RETR").iter().all(|l| l != "RETR 3"));
    assert!(!log.pipelined_seen);
    assert_eq!(
        fs::read(dir.with_extension("moved").join("uid-1/message.eml")).unwrap(),
        message("a", b"a\r\n")
    );
}

#[test]
fn unwritable_save_dir_with_delete_sends_no_dele() {
    let state = tmp();
    let dest = tmp();
    let blocker = dest.path().join("file");
    fs::write(&blocker, b"x").unwrap();
    let server = Server::start(Config::default(), vec![message("a", b"a\r\n")]);
    let bad = blocker.join("sub");
    let out = run(
        &server,
        &["--all", "--delete", "--save-dir", bad.to_str().unwrap()],
        state.path(),
    );
    assert_eq!(code(&out), 73, "{}", stderr(&out));
    let mailbox = server.mailbox.clone();
    let log = server.stop();
    assert_eq!(
        log.text(),
        "",
        "the destination is checked before connecting"
    );
    assert_eq!(mailbox.lock().unwrap().len(), 1, "nothing was deleted");
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "needs Linux's /dev/full")]
fn full_disk_mbox_with_delete_sends_no_dele() {
    assert!(Path::new("/dev/full").exists(), "Linux has /dev/full");
    let state = tmp();
    let server = Server::start(
        Config {
            capa: Some(vec!["USER".into(), "UIDL".into(), "PIPELINING".into()]),
            ..Config::default()
        },
        vec![message("a", b"a\r\n"), message("b", b"b\r\n")],
    );
    let out = run(
        &server,
        &["--all", "--delete", "--mbox", "/dev/full"],
        state.path(),
    );
    assert_eq!(code(&out), 74, "{}", stderr(&out));
    let log = server.finish();
    assert!(log.commands("DELE").is_empty());
    assert_eq!(log.commands("QUIT").len(), 1);
}

#[test]
fn new_across_two_runs_and_delete() {
    let state = tmp();
    let dest = tmp();
    let server = Server::start(
        Config {
            connections: 3,
            ..Config::default()
        },
        vec![message("a", b"a\r\n"), message("b", b"b\r\n")],
    );
    let md = dest.path().join("md");
    let md_s = md.to_str().unwrap().to_string();
    let out = run(&server, &["--new", "--maildir", &md_s], state.path());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(folders(&md.join("new")).len(), 2);

    server.mailbox.lock().unwrap().push(Stored {
        uid: "uid-3".into(),
        bytes: message("c", b"c\r\n"),
    });
    let out = run(
        &server,
        &["--new", "--maildir", &md_s, "--delete", "--json"],
        state.path(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report.as_array().unwrap().len(), 1);
    assert_eq!(report[0]["number"], 3);
    assert_eq!(report[0]["uidl"], "uid-3");
    assert_eq!(report[0]["deleted"], true);
    assert_eq!(folders(&md.join("new")).len(), 3);
    assert_eq!(server.mailbox.lock().unwrap().len(), 2);

    // Nothing new: nothing retrieved.
    let out = run(&server, &["--new", "--maildir", &md_s], state.path());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let log = server.finish();
    assert_eq!(log.commands("RETR").len(), 3);
    // One state file (beside the lock of the runs; the journal is gone).
    let state_files: Vec<_> = fs::read_dir(state.path().join("mailctl/uidl"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.ends_with(".json.lock"))
        .collect();
    assert_eq!(state_files.len(), 1, "{state_files:?}");
}

#[test]
fn pipelined_flights_when_offered() {
    let state = tmp();
    let dest = tmp();
    let msgs: Vec<Vec<u8>> = (0..40)
        .map(|i| message(&format!("m{i}"), format!("body {i}\r\n").as_bytes()))
        .collect();
    let server = Server::start(
        Config {
            capa: Some(vec![
                "USER".into(),
                "UIDL".into(),
                "TOP".into(),
                "PIPELINING".into(),
            ]),
            pipeline_gate: 40,
            ..Config::default()
        },
        msgs.clone(),
    );
    let md = dest.path().join("md");
    let out = run(
        &server,
        &["--all", "--delete", "--maildir", md.to_str().unwrap()],
        state.path(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let log = server.finish();
    // The server held back its first answer until all 40 RETR had arrived.
    assert_eq!(log.retr_before_first_answer, 40);
    assert!(log.pipelined_seen);
    assert_eq!(log.commands("DELE").len(), 40);
    assert_eq!(folders(&md.join("new")).len(), 40);
    // Each DELE follows the RETR of its message.
    for n in 1..=40 {
        let retr = log.lines.iter().position(|l| *l == format!("RETR {n}"));
        let dele = log.lines.iter().position(|l| *l == format!("DELE {n}"));
        assert!(retr.unwrap() < dele.unwrap());
    }
}

#[test]
fn no_pipelining_without_the_capability() {
    let state = tmp();
    let server = Server::start(
        Config::default(),
        (0..5)
            .map(|i| message(&format!("m{i}"), b"x\r\n"))
            .collect(),
    );
    let out = run(&server, &["--all", "--delete", "--stdout"], state.path());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let log = server.finish();
    assert!(!log.pipelined_seen);
    assert_eq!(log.commands("DELE").len(), 5);
}

#[test]
fn verbose_transcript_redacts_secrets() {
    let plain_b64 = base64::engine::general_purpose::STANDARD.encode("\0alice\0s3cret-pw");
    for auth in ["user", "plain", "apop", "auto"] {
        let state = tmp();
        let server = Server::start(Config::default(), vec![message("m", b"secret body\r\n")]);
        let out = run(
            &server,
            &["-v", "--auth", auth, "--all", "--stdout"],
            state.path(),
        );
        assert_eq!(code(&out), 0, "{auth}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("C: "), "{auth}: {err}");
        assert!(err.contains("<redacted>"), "{auth}: {err}");
        assert!(!err.contains("s3cret-pw"), "{auth}: {err}");
        assert!(!err.contains(&plain_b64), "{auth}: {err}");
        assert!(!err.contains("secret body"), "{auth}: {err}");
        let note = format!(
            "S: <RETR 1 body, {} bytes>",
            message("m", b"secret body\r\n").len()
        );
        assert!(err.contains(&note), "{auth}: {err}");
        let log = server.finish();
        let want = match auth {
            "user" => "PASS",
            "plain" => "AUTH",
            _ => "APOP",
        };
        assert_eq!(log.commands(want).len(), 1, "{auth}: {}", log.text());
    }
}

#[test]
fn apop_refused_for_unsafe_timestamp() {
    let state = tmp();
    let server = Server::start(
        Config {
            greeting: "+OK ready <no-at-sign>".into(),
            ..Config::default()
        },
        vec![],
    );
    let out = run(&server, &["--auth", "apop"], state.path());
    assert_eq!(code(&out), 76, "{}", stderr(&out));
    assert!(stderr(&out).contains("CVE-2007-1558"));
    let log = server.finish();
    assert!(log.commands("APOP").is_empty());
}

#[test]
fn xoauth2_error_challenge_is_answered_and_reported() {
    let state = tmp();
    let server = Server::start(Config::default(), vec![]);
    let out = mailctl_env(
        &fetch_args(&server.addr(), &["--tls", "none", "--auth", "xoauth2"]),
        state.path(),
        &[("MAILCTL_PASSWORD", "wrong-token")],
    );
    assert_eq!(code(&out), 77, "{}", stderr(&out));
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
    let log = server.finish();
    assert_eq!(log.commands("AUTH").len(), 1);
    assert!(log.lines.iter().any(|l| l.is_empty()));

    let server = Server::start(
        Config {
            password: "good-token".into(),
            ..Config::default()
        },
        vec![],
    );
    let out = mailctl_env(
        &fetch_args(&server.addr(), &["--tls", "none", "--auth", "xoauth2"]),
        state.path(),
        &[("MAILCTL_PASSWORD", "good-token")],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    server.finish();

    // With -v, neither the token nor the SASL string shows.
    let server = Server::start(
        Config {
            password: "good-token".into(),
            ..Config::default()
        },
        vec![],
    );
    let out = mailctl_env(
        &fetch_args(
            &server.addr(),
            &["-v", "--tls", "none", "--auth", "xoauth2"],
        ),
        state.path(),
        &[("MAILCTL_PASSWORD", "good-token")],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let b64 = base64::engine::general_purpose::STANDARD
        .encode("user=alice\x01auth=Bearer good-token\x01\x01");
    let err = stderr(&out);
    assert!(err.contains("C: AUTH XOAUTH2 <redacted>"), "{err}");
    assert!(!err.contains("good-token") && !err.contains(&b64), "{err}");
    server.finish();
}

#[test]
fn max_size_skips_and_says_so() {
    let state = tmp();
    let big = message("big", &b"0123456789".repeat(500));
    let server = Server::start(
        Config::default(),
        vec![message("small", b"s\r\n"), big, message("small2", b"t\r\n")],
    );
    let out = run(
        &server,
        &["--all", "--stdout", "--max-size", "1K", "-v"],
        state.path(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("skipping message 2"));
    let log = server.finish();
    assert_eq!(log.commands("RETR"), ["RETR 1", "RETR 3"]);

    let server = Server::start(
        Config::default(),
        vec![message("big", &b"0123456789".repeat(500))],
    );
    let dest = tmp();
    let out = run(
        &server,
        &[
            "--all",
            "--maildir",
            dest.path().to_str().unwrap(),
            "--max-size",
            "100",
            "--json",
        ],
        state.path(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report[0]["skipped"].as_str().unwrap().contains("max-size"));
    assert_eq!(report[0]["saved"], serde_json::Value::Null);
    server.finish();
}

#[test]
fn message_far_larger_than_listed_is_a_protocol_error() {
    let state = tmp();
    let dest = tmp();
    let server = Server::start(
        Config {
            lie_size: Some((1, 10)),
            ..Config::default()
        },
        vec![message("huge", &b"x".repeat(200 * 1024))],
    );
    let out = run(
        &server,
        &[
            "--all",
            "--delete",
            "--save-dir",
            dest.path().to_str().unwrap(),
        ],
        state.path(),
    );
    assert_eq!(code(&out), 76, "{}", stderr(&out));
    assert!(folders(dest.path()).is_empty());
    let log = server.finish();
    assert!(log.commands("DELE").is_empty());
}

#[test]
fn missing_message_number_is_reported() {
    let state = tmp();
    let server = Server::start(Config::default(), vec![message("a", b"a\r\n")]);
    let out = run(&server, &["--retr", "1,5", "--stdout"], state.path());
    assert_eq!(code(&out), 69, "{}", stderr(&out));
    assert_eq!(out.stdout, message("a", b"a\r\n"));
    assert!(stderr(&out).contains("no message 5"));
    server.finish();
}

#[test]
fn save_failure_in_a_pipelined_flight_sends_no_later_dele() {
    let state = tmp();
    let dest = tmp();
    let dir = dest.path().join("saved");
    let dir2 = dir.clone();
    let hook = Arc::new(move |n: u32| {
        if n == 2 {
            fs::rename(&dir2, dir2.with_extension("moved")).unwrap();
            fs::write(&dir2, b"not a directory").unwrap();
        }
    });
    let server = Server::start(
        Config {
            capa: Some(vec!["USER".into(), "UIDL".into(), "PIPELINING".into()]),
            pipeline_gate: 4,
            on_retr: Some(hook),
            ..Config::default()
        },
        (1..=4)
            .map(|i| message(&format!("m{i}"), b"x\r\n"))
            .collect(),
    );
    let out = run(
        &server,
        &[
            "--all",
            "--delete",
            "--save-dir",
            dir.to_str().unwrap(),
            "--json",
        ],
        state.path(),
    );
    // 73 when a folder cannot be created, 74 when message 1 was already
    // being linked into the folder that got moved away.
    assert!(matches!(code(&out), 73 | 74), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for i in 1..4 {
        assert_eq!(report[i]["deleted"], false);
        assert!(report[i]["error"].is_string(), "{report}");
    }
    let log = server.finish();
    assert_eq!(log.retr_before_first_answer, 4);
    // Message 1 may or may not have been synced before the failure showed;
    // nothing after it may be deleted.
    assert!(log.commands("DELE").iter().all(|l| l == "DELE 1"));
    assert_eq!(log.commands("QUIT").len(), 1);
}

#[test]
fn large_message_streams_byte_exact() {
    let state = tmp();
    let dest = tmp();
    let mut body = Vec::new();
    for i in 0..120_000u32 {
        if i % 1000 == 0 {
            body.extend_from_slice(b".dot line\r\n");
        }
        body.extend_from_slice(format!("{i:08}").as_bytes());
        body.extend_from_slice(b" \xe9\xff line of a large message\r\n");
    }
    let big = message("big", &body);
    assert!(big.len() > 4_000_000);
    let server = Server::start(
        Config {
            capa: Some(vec!["USER".into(), "UIDL".into(), "PIPELINING".into()]),
            ..Config::default()
        },
        vec![big.clone(), message("small", b"s\r\n")],
    );
    let md = dest.path().join("md");
    let out = run(
        &server,
        &["--all", "--maildir", md.to_str().unwrap()],
        state.path(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut got: Vec<Vec<u8>> = folders(&md.join("new"))
        .iter()
        .map(|p| fs::read(p).unwrap())
        .collect();
    got.sort_by_key(|m| m.len());
    assert_eq!(got[1], big);
    server.finish();
}

/// A password is never sent in clear to a server off this machine: with
/// `--tls none` and an explicit password method the run stops before
/// connecting (192.0.2.1 is a documentation address nobody answers on).
#[test]
fn plaintext_password_to_a_remote_server_is_refused_before_connecting() {
    let state = tmp();
    for auth in ["user", "plain", "xoauth2"] {
        let out = mailctl(
            &[
                "fetch",
                "--server",
                "192.0.2.1:110",
                "--tls",
                "none",
                "--user",
                "alice",
                "--auth",
                auth,
                "--timeout",
                "1",
            ],
            state.path(),
        );
        assert_eq!(code(&out), 78, "{auth}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("refusing to send credentials unencrypted"),
            "{}",
            stderr(&out)
        );
    }
}

/// With --json, a failure before any listing or report (here a refused
/// login, for a listing and for a retrieval) still prints one JSON object.
#[test]
fn json_failure_before_the_report_is_one_object() {
    let state = tmp();
    let dest = tmp();
    let server = Server::start(
        Config {
            password: "other".into(),
            connections: 2,
            ..Config::default()
        },
        vec![message("one", b"x\r\n")],
    );
    let dir = dest.path().join("md");
    for extra in [
        &["--json"][..],
        &["--json", "--all", "--maildir", dir.to_str().unwrap()][..],
    ] {
        let out = run(&server, extra, state.path());
        assert_eq!(code(&out), 77, "{}", stderr(&out));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&out.stdout)));
        assert_eq!(json["status"], "failed");
        assert_eq!(json["exit_code"], 77);
        assert!(json["error"].as_str().unwrap().contains("-ERR"), "{json}");
    }
    server.finish();
}

/// A state directory that cannot be created stops the run before the
/// server is contacted, instead of after fetching messages whose UIDLs
/// cannot be recorded.
#[test]
fn uncreatable_state_directory_fails_before_connecting() {
    let dest = tmp();
    // Reading a state file there finds nothing; creating one fails.
    let blocker = Path::new("/proc/self/mailctl-state");
    let server = Server::start(Config::default(), vec![message("one", b"x\r\n")]);
    let dir = dest.path().join("md");
    let out = run(
        &server,
        &["--all", "--delete", "--maildir", dir.to_str().unwrap()],
        blocker,
    );
    assert_eq!(code(&out), 73, "{}", stderr(&out));
    assert!(stderr(&out).contains("state directory"), "{}", stderr(&out));
    let mailbox = server.mailbox.clone();
    let log = server.stop();
    assert_eq!(
        log.text(),
        "",
        "the state directory is checked before connecting"
    );
    assert_eq!(mailbox.lock().unwrap().len(), 1);
}

/// `mailctl fetch -v ... 2>&1 | head`: once stderr is a closed pipe, the
/// transcript and the closing summary go nowhere, and the run still
/// completes (no panic, exit 0, messages saved and deleted).
#[test]
fn closed_stderr_is_not_a_crash() {
    let state = tmp();
    let dest = tmp();
    let server = Server::start(Config::default(), vec![message("one", b"x\r\n")]);
    let dir = dest.path().join("md");
    let mut args = plain(&server);
    args.extend(
        [
            "-v",
            "--all",
            "--delete",
            "--maildir",
            dir.to_str().unwrap(),
        ]
        .map(String::from),
    );
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailctl"))
        .args(&args)
        .env("MAILCTL_PASSWORD", "s3cret-pw")
        .env("XDG_STATE_HOME", state.path())
        .stderr(writer)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0);
    server.finish();
    assert_eq!(fs::read_dir(dir.join("new")).unwrap().count(), 1);
}

/// A long OAuth token does not fit the 255 octets RFC 5034 allows an AUTH
/// command: it is sent as the answer to the server's empty challenge.
#[test]
fn long_xoauth2_token_answers_the_empty_challenge() {
    let state = tmp();
    let token = "t".repeat(1500);
    let server = Server::start(
        Config {
            password: token.clone(),
            ..Config::default()
        },
        vec![message("one", b"x\r\n")],
    );
    let out = mailctl_env(
        &fetch_args(
            &server.addr(),
            &["--tls", "none", "--auth", "xoauth2", "--json"],
        ),
        state.path(),
        &[("MAILCTL_PASSWORD", token.as_str())],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let log = server.finish();
    assert_eq!(log.commands("AUTH"), ["AUTH XOAUTH2"]);
}

/// A TLS mode that contradicts a well-known port is named in the error,
/// with the fix.
#[test]
fn wrong_tls_mode_for_the_port_gets_a_hint() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailctl"))
        .args(["fetch", "--server", "127.0.0.1:995", "--tls", "starttls"])
        .args(["--user", "u", "--timeout", "5"])
        .env("MAILCTL_PASSWORD", "x")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("hint: port 995 speaks TLS"), "{stderr}");
}

// ---------------------------------------------------------------------------
// --mda

/// A delivery agent that keeps what it gets: message n's bytes in
/// `$OUT/msg-n`, its environment in `$OUT/env-n`, then `$OUT/done-n` once
/// it is about to exit 0. It also writes to its standard output, which must
/// not reach ours. Message `$FAIL_AT` (if set) gets exit status
/// `$FAIL_STATUS` after it was read whole.
const RECORDING_MDA: &str = "n=$MAILCTL_NUMBER; cat > \"$OUT/msg-$n\" && env > \"$OUT/env-$n\" \
    && echo \"mda output for $n\" \
    && if [ \"$n\" = \"${FAIL_AT:-}\" ]; then exit \"$FAIL_STATUS\"; fi \
    && : > \"$OUT/done-$n\"";

/// The UIDLs the state file under `state` records as fetched.
fn recorded_uidls(state: &Path) -> Vec<String> {
    let files: Vec<PathBuf> = fs::read_dir(state.join("mailctl/uidl"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let json: serde_json::Value = serde_json::from_slice(&fs::read(&files[0]).unwrap()).unwrap();
    json["fetched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect()
}

/// Each message reaches the agent byte for byte (dot lines unstuffed, CRLF
/// kept, 8-bit data intact) with its number, size and UIDL in the
/// environment, never the password; DELE n only once agent n exited 0.
#[test]
fn mda_gets_each_message_exactly_and_dele_follows_its_exit() {
    let state = tmp();
    let out_dir = tmp();
    let out_path = out_dir.path().to_path_buf();
    let done_at_dele = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (record, check) = (done_at_dele.clone(), out_path.clone());
    let msgs = tricky_messages();
    let server = Server::start(
        Config {
            on_dele: Some(Arc::new(move |n: u32| {
                let done = check.join(format!("done-{n}")).exists();
                record.lock().unwrap().push((n, done));
            })),
            ..Config::default()
        },
        msgs.clone(),
    );
    let mut args = plain(&server);
    args.extend(["--all", "--delete", "--json", "--mda", RECORDING_MDA].map(String::from));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = mailctl_env(&refs, state.path(), &[("OUT", out_path.to_str().unwrap())]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // Standard output holds the report alone; the agent's output went to
    // standard error.
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (i, m) in msgs.iter().enumerate() {
        let n = i + 1;
        assert_eq!(report[i]["saved"], "mda");
        assert_eq!(report[i]["deleted"], true);
        assert!(stderr(&out).contains(&format!("mda output for {n}")));
        assert_eq!(
            fs::read(out_path.join(format!("msg-{n}"))).unwrap(),
            as_served(m),
            "message {n}"
        );
        let env = String::from_utf8(fs::read(out_path.join(format!("env-{n}"))).unwrap()).unwrap();
        let lines: Vec<&str> = env.lines().collect();
        for expected in [
            format!("MAILCTL_NUMBER={n}"),
            format!("MAILCTL_SIZE={}", m.len()),
            format!("MAILCTL_UIDL=uid-{n}"),
            format!("MAILCTL_SERVER={}", server.addr()),
            "MAILCTL_USER=alice".to_string(),
        ] {
            assert!(lines.contains(&expected.as_str()), "{expected} in {env}");
        }
        assert!(!env.contains("MAILCTL_PASSWORD"), "{env}");
        assert!(!env.contains("s3cret-pw"), "{env}");
    }
    // The dot lines arrived unstuffed.
    assert!(fs::read(out_path.join("msg-1"))
        .unwrap()
        .ends_with(b"\r\n.\r\n..\r\n...\r\n.leading\r\n..two\r\nend\r\n"));
    let log = server.finish();
    assert_eq!(log.commands("DELE"), ["DELE 1", "DELE 2", "DELE 3"]);
    assert_eq!(
        *done_at_dele.lock().unwrap(),
        [(1, true), (2, true), (3, true)]
    );
}

/// An agent failing with 75 on the second of three messages: the first is
/// delivered and deleted, the second and third are neither deleted nor
/// recorded, the third never reaches an agent, the session ends with QUIT,
/// and mailctl exits 75. With and without pipelining.
#[test]
fn mda_failure_stops_the_run_with_its_status() {
    for capa in [vec!["USER", "UIDL"], vec!["USER", "UIDL", "PIPELINING"]] {
        let state = tmp();
        let out_dir = tmp();
        let out_path = out_dir.path();
        let server = Server::start(
            Config {
                capa: Some(capa.iter().map(|s| s.to_string()).collect()),
                ..Config::default()
            },
            vec![
                message("a", b"a\r\n"),
                message("b", b"b\r\n"),
                message("c", b"c\r\n"),
            ],
        );
        let mut args = plain(&server);
        args.extend(["--new", "--delete", "--json", "--mda", RECORDING_MDA].map(String::from));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = mailctl_env(
            &refs,
            state.path(),
            &[
                ("OUT", out_path.to_str().unwrap()),
                ("FAIL_AT", "2"),
                ("FAIL_STATUS", "75"),
            ],
        );
        assert_eq!(code(&out), 75, "{capa:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("message 2: mda 'n=$MAILCTL_NUMBER;")
                && err.contains("exited with status 75; not deleting it or any later message"),
            "{err}"
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report[0]["deleted"], true);
        assert_eq!(report[1]["deleted"], false);
        assert!(report[1]["error"]
            .as_str()
            .unwrap()
            .contains("exited with status 75"));
        assert_eq!(report[2]["deleted"], false);
        assert!(report[2]["saved"].is_null());

        assert!(out_path.join("done-1").exists());
        assert!(out_path.join("msg-2").exists() && !out_path.join("done-2").exists());
        assert!(!out_path.join("msg-3").exists(), "{capa:?}");
        let mailbox = server.mailbox.clone();
        let log = server.finish();
        assert_eq!(log.commands("DELE"), ["DELE 1"], "{capa:?}");
        assert_eq!(log.commands("QUIT").len(), 1);
        let left: Vec<String> = mailbox
            .lock()
            .unwrap()
            .iter()
            .map(|m| m.uid.clone())
            .collect();
        assert_eq!(left, ["uid-2", "uid-3"], "{capa:?}");
        assert_eq!(recorded_uidls(state.path()), ["uid-1"], "{capa:?}");
    }
}

/// A 5 MB message reaches the agent whole through the pipe (the agent
/// counts the bytes), and an agent that exits 0 without reading a large
/// message has delivered it: mailctl is not killed by the broken pipe.
#[test]
fn mda_streams_a_large_message_and_may_stop_reading() {
    let mut body = Vec::new();
    for i in 0..160_000u32 {
        if i % 1000 == 0 {
            body.extend_from_slice(b".dot line\r\n");
        }
        body.extend_from_slice(format!("{i:08}").as_bytes());
        body.extend_from_slice(b" \xe9\xff line of a large message\r\n");
    }
    let big = message("big", &body);
    assert!(big.len() > 5 * 1024 * 1024);
    for (command, counted) in [
        ("wc -c > \"$OUT/count-$MAILCTL_NUMBER\"", true),
        ("exit 0", false),
        ("head -c 100 >/dev/null", false),
    ] {
        let state = tmp();
        let out_dir = tmp();
        let server = Server::start(
            Config {
                capa: Some(vec!["USER".into(), "UIDL".into(), "PIPELINING".into()]),
                ..Config::default()
            },
            vec![big.clone(), message("small", b"s\r\n")],
        );
        let mut args = plain(&server);
        args.extend(["--all", "--delete", "--mda", command].map(String::from));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = mailctl_env(
            &refs,
            state.path(),
            &[("OUT", out_dir.path().to_str().unwrap())],
        );
        assert_eq!(code(&out), 0, "{command}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("2 delivered, 2 deleted"),
            "{}",
            stderr(&out)
        );
        if counted {
            let count = fs::read_to_string(out_dir.path().join("count-1")).unwrap();
            assert_eq!(count.trim(), big.len().to_string());
        }
        let log = server.finish();
        assert_eq!(log.commands("DELE"), ["DELE 1", "DELE 2"], "{command}");
    }
}

/// An agent killed by a signal, or failing with a status outside the
/// sysexits range, gives 74; one that exits 73 (a sysexits code) gives 73.
#[test]
fn mda_statuses_map_to_exit_codes() {
    for (command, expected, says) in [
        (
            "cat >/dev/null; kill -KILL $$",
            74,
            "was killed by signal 9",
        ),
        ("cat >/dev/null; exit 3", 74, "exited with status 3"),
        ("exit 73", 73, "exited with status 73"),
        (
            "no-such-delivery-agent 2>/dev/null",
            74,
            "(command not found)",
        ),
    ] {
        let state = tmp();
        let server = Server::start(Config::default(), vec![message("a", b"a\r\n")]);
        let out = run(
            &server,
            &["--all", "--delete", "--mda", command],
            state.path(),
        );
        assert_eq!(code(&out), expected, "{command}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
        let log = server.finish();
        assert!(log.commands("DELE").is_empty());
        assert_eq!(log.commands("QUIT").len(), 1);
    }
}

/// --mda is one destination among the others, and needs a command.
#[test]
fn mda_excludes_other_destinations() {
    let state = tmp();
    for extra in [
        &["--mda", "cat", "--stdout"][..],
        &["--mda", "cat", "--maildir", "md"],
        &["--mda", "cat", "--list"],
        &["--mda", " "],
        &["--mda-lf", "--stdout"],
    ] {
        let mut args = vec!["fetch", "--server", "127.0.0.1:9", "--user", "a"];
        args.extend_from_slice(extra);
        let out = mailctl(&args, state.path());
        assert_eq!(code(&out), 64, "{extra:?}: {}", stderr(&out));
    }
}

/// --mda-lf: the agent gets LF line endings, other bytes unchanged.
#[test]
fn mda_lf_gives_unix_line_endings() {
    let state = tmp();
    let out_dir = tmp();
    let msgs = tricky_messages();
    let server = Server::start(Config::default(), msgs.clone());
    let mut args = plain(&server);
    args.extend(["--retr", "2", "--mda-lf", "--mda", RECORDING_MDA].map(String::from));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = mailctl_env(
        &refs,
        state.path(),
        &[("OUT", out_dir.path().to_str().unwrap())],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let got = fs::read(out_dir.path().join("msg-2")).unwrap();
    let expected = msgs[1]
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect::<Vec<_>>()
        .join(&b'\n');
    assert_eq!(got, expected);
    assert!(!got.contains(&b'\r'));
    server.finish();
}

/// With the password in a variable the configuration file names
/// (`password_env`), that variable is kept from the agent too.
#[test]
fn mda_never_sees_a_configured_password_variable() {
    let state = tmp();
    let out_dir = tmp();
    let server = Server::start(Config::default(), vec![message("a", b"a\r\n")]);
    let config = out_dir.path().join("config.toml");
    fs::write(
        &config,
        format!(
            "[accounts.test.pop3]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nuser = \"alice\"\npassword_env = \"MY_POP_PASSWORD\"\n",
            server.port
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailctl"))
        .arg("--config")
        .arg(&config)
        .args(["fetch", "--all", "--mda", RECORDING_MDA])
        .env_remove("MAILCTL_PASSWORD")
        .env_remove("MAILCTL_ACCOUNT")
        .env("MY_POP_PASSWORD", "s3cret-pw")
        .env("OUT", out_dir.path())
        .env("XDG_STATE_HOME", state.path())
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let env = fs::read_to_string(out_dir.path().join("env-1")).unwrap();
    assert!(env.contains("MAILCTL_USER=alice"), "{env}");
    assert!(!env.contains("MY_POP_PASSWORD"), "{env}");
    assert!(!env.contains("s3cret-pw"), "{env}");
    server.finish();
}

/// The connection breaks in the middle of message 2: its agent is stopped
/// (SIGTERM before its input ends), so it never takes the truncated message
/// for a whole one; message 1 was delivered, nothing is deleted without
/// QUIT, and mailctl exits 75.
#[test]
fn mda_is_stopped_when_the_connection_breaks_mid_message() {
    let state = tmp();
    let out_dir = tmp();
    let server = Server::start(
        Config {
            cut_retr: Some((2, 1000)),
            ..Config::default()
        },
        vec![
            message("first", b"one\r\n"),
            message("second", &b"line of the second message\r\n".repeat(200)),
        ],
    );
    let mut args = plain(&server);
    args.extend(["--all", "--delete", "--mda", RECORDING_MDA].map(String::from));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = mailctl_env(
        &refs,
        state.path(),
        &[("OUT", out_dir.path().to_str().unwrap())],
    );
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    assert!(out_dir.path().join("done-1").exists());
    assert!(!out_dir.path().join("done-2").exists());
    let mailbox = server.mailbox.clone();
    let log = server.finish();
    assert_eq!(log.commands("DELE"), ["DELE 1"]);
    assert!(log.commands("QUIT").is_empty());
    assert_eq!(mailbox.lock().unwrap().len(), 2);
}

/// The one state file under `state`, as JSON.
fn state_file(state: &Path) -> (PathBuf, serde_json::Value) {
    let files: Vec<PathBuf> = fs::read_dir(state.join("mailctl/uidl"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let json = serde_json::from_slice(&fs::read(&files[0]).unwrap()).unwrap();
    (files[0].clone(), json)
}

#[test]
fn keep_days_deletes_only_messages_first_fetched_that_long_ago() {
    let state = tmp();
    let dest = tmp();
    let server = Server::start(
        Config {
            connections: 3,
            ..Config::default()
        },
        vec![message("old", b"a\r\n"), message("recent", b"b\r\n")],
    );
    let md = dest.path().join("md");
    let md_arg = md.to_str().unwrap();
    let out = run(
        &server,
        &["--new", "--maildir", md_arg, "--keep-days", "3"],
        state.path(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let (path, mut json) = state_file(state.path());
    let now = json["first_fetched"]["uid-1"]
        .as_u64()
        .expect("a time per message");
    assert_eq!(json["first_fetched"]["uid-2"].as_u64(), Some(now));
    assert_eq!(
        server.mailbox.lock().unwrap().len(),
        2,
        "nothing deleted yet"
    );

    // uid-1 was first fetched four days ago, uid-2 two days ago.
    json["first_fetched"]["uid-1"] = (now - 4 * 86_400).into();
    json["first_fetched"]["uid-2"] = (now - 2 * 86_400).into();
    fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    server.mailbox.lock().unwrap().push(Stored {
        uid: "uid-3".into(),
        bytes: message("new", b"c\r\n"),
    });
    let args = ["--new", "--maildir", md_arg, "--keep-days", "3", "--json"];
    let out = run(&server, &args, state.path());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let deleted: Vec<u64> = report
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["deleted"] == true)
        .map(|o| o["number"].as_u64().unwrap())
        .collect();
    assert_eq!(deleted, [1], "{report}");
    assert_eq!(folders(&md.join("new")).len(), 3);
    let (_, json) = state_file(state.path());
    assert_eq!(
        json["first_fetched"]["uid-2"].as_u64(),
        Some(now - 2 * 86_400)
    );

    // An old state file, without times: nothing is deleted before its time.
    fs::write(
        &path,
        r#"{"version": 1, "server": "x", "user": "alice", "fetched": ["uid-2", "uid-3"]}"#,
    )
    .unwrap();
    let out = run(
        &server,
        &["--new", "--maildir", md_arg, "--keep-days", "1"],
        state.path(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let (_, json) = state_file(state.path());
    assert!(json["first_fetched"]["uid-3"].as_u64().is_some(), "{json}");
    let log = server.finish();
    assert_eq!(log.commands("DELE"), ["DELE 1"]);
}

#[test]
fn delete_oversized_records_then_deletes_what_it_skips() {
    let state = tmp();
    let dest = tmp();
    let big = message("big", &b"0123456789".repeat(500));
    let server = Server::start(
        Config {
            connections: 1,
            ..Config::default()
        },
        vec![message("small", b"s\r\n"), big],
    );
    let md = dest.path().join("md");
    let args = [
        "--new",
        "--maildir",
        md.to_str().unwrap(),
        "--max-size",
        "1K",
        "--delete-oversized",
        "--json",
    ];
    let out = run(&server, &args, state.path());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report[1]["deleted"], true, "{report}");
    assert!(report[1]["skipped"].as_str().unwrap().contains("max-size"));
    assert_eq!(report[0]["deleted"], false, "{report}");
    assert_eq!(recorded_uidls(state.path()), ["uid-1", "uid-2"]);
    assert_eq!(folders(&md.join("new")).len(), 1);
    assert_eq!(server.mailbox.lock().unwrap().len(), 1);
    let out = run(
        &server,
        &["--max-size", "1K", "--delete-oversized"],
        state.path(),
    );
    assert_eq!(code(&out), 64, "{}", stderr(&out));
    assert!(stderr(&out).contains("--delete-oversized needs a destination"));
    let log = server.finish();
    assert_eq!(log.commands("DELE"), ["DELE 2"]);
    assert_eq!(log.commands("RETR"), ["RETR 1"]);
}

#[test]
fn retr_beyond_the_mailbox_says_how_many_there_are_and_creates_no_folder() {
    let state = tmp();
    let dest = tmp();
    let server = Server::start(Config::default(), vec![message("a", b"a\r\n")]);
    let dir = dest.path().join("new-folder");
    let out = run(
        &server,
        &["--retr", "99", "--save-dir", dir.to_str().unwrap()],
        state.path(),
    );
    assert_eq!(code(&out), 69, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no message 99 on the server, which has 1 message"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.exists(), "an empty folder was left behind");
    server.finish();
}

/// With a client certificate and EXTERNAL offered, `--auth auto` logs in
/// with `AUTH EXTERNAL =` and never runs the password command.
#[test]
fn external_with_a_client_certificate_runs_no_password_command() {
    let state = tmp();
    let (cert, dir, ca) = cert();
    let key = dir.path().join("key.pem");
    fs::write(&key, fetch_support::KEY_PEM).unwrap();
    let marker = dir.path().join("asked");
    let server = Server::start(
        Config {
            tls: Tls::Implicit(cert.clone()),
            capa: Some(vec![
                "USER".into(),
                "UIDL".into(),
                "SASL PLAIN EXTERNAL".into(),
            ]),
            ..Config::default()
        },
        vec![message("cert", b"by certificate\r\n")],
    );
    let command = format!("touch '{}'; echo s3cret-pw", marker.display());
    let args = fetch_args(
        &server.localhost(),
        &[
            "--tls",
            "implicit",
            "--ca-file",
            ca.to_str().unwrap(),
            "--cert",
            ca.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--password-command",
            &command,
            "--all",
            "--stdout",
        ],
    );
    let out = mailctl_env(&args, state.path(), &[("MAILCTL_PASSWORD", "")]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, message("cert", b"by certificate\r\n"));
    let log = server.finish();
    assert_eq!(log.commands("AUTH"), ["AUTH EXTERNAL ="]);
    assert!(!marker.exists(), "the password command ran");
}
