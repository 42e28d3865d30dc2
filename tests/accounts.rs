//! Accounts end to end: `mailctl send --account` and `mailctl fetch
//! --account` through `mailctl serve` over TLS, with the server, user, CA
//! file and password all coming from the configuration file, and flags
//! overriding it.

mod serve_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serve_support::Server;

fn mailctl(config: &Path, state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailctl"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("XDG_STATE_HOME", state)
        .env_remove("MAILCTL_PASSWORD")
        .env_remove("MAILCTL_ACCOUNT")
        .stdin(Stdio::null())
        .output()
        .expect("mailctl runs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn send_and_fetch_through_an_account() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let server = Server::start_in(
        tempfile::tempdir().unwrap(),
        &["--tls-self-signed", ca.to_str().unwrap()],
    );
    let config = dir.path().join("config.toml");
    fs::write(
        &config,
        format!(
            "default = \"test\"\n\
             [accounts.test]\nfrom = \"Bob <bob@example.test>\"\n\
             password = \"any\"\nca_file = \"ca.pem\"\n\
             [accounts.test.smtp]\nhost = \"127.0.0.1\"\nport = {}\n\
             [accounts.test.pop3]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\nuser = \"bob\"\n",
            server.smtp, server.pop3
        ),
    )
    .unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).unwrap();
    let state = dir.path().join("state");

    // The default account: server, STARTTLS, CA file, from (serve offers
    // no SMTP AUTH without users); POP3 adds the user and password.
    ok(&mailctl(
        &config,
        &state,
        &[
            "send",
            "--to",
            "bob@example.test",
            "--subject",
            "via account",
            "--body",
            "hello",
        ],
    ));
    let listing = ok(&mailctl(
        &config,
        &state,
        &["fetch", "--account", "test", "--list"],
    ));
    assert!(listing.contains("via account"), "{listing}");
    let out = dir.path().join("out");
    ok(&mailctl(
        &config,
        &state,
        &["fetch", "--new", "--maildir", out.to_str().unwrap()],
    ));
    let new: Vec<_> = fs::read_dir(out.join("new")).unwrap().collect();
    assert_eq!(new.len(), 1);
    let message = fs::read_to_string(new[0].as_ref().unwrap().path()).unwrap();
    assert!(
        message.contains("From: Bob <bob@example.test>"),
        "{message}"
    );

    // A flag overrides the file: a wrong CA file is used and refused.
    let out = mailctl(
        &config,
        &state,
        &["fetch", "--ca-file", "/nonexistent.pem", "--list"],
    );
    assert_eq!(
        out.status.code(),
        Some(66),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An unknown account is a configuration error.
    let out = mailctl(
        &config,
        &state,
        &["send", "--account", "nope", "--to", "a@b", "--body", "x"],
    );
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no account 'nope' (accounts: test)"));
}

/// A private config file in `dir` with POP3 accounts on `pop3` (no TLS,
/// any password): `a` (user alice) into a Maildir, `b` (user bob) into an
/// mbox, and `c`, whose server is not listening.
fn three_accounts(dir: &Path, pop3: u16) -> std::path::PathBuf {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let account = |name: &str, user: &str, port: u16, fetch: &str| {
        format!(
            "[accounts.{name}]\npassword = \"any\"\n\
             [accounts.{name}.pop3]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nuser = \"{user}\"\n\
             [accounts.{name}.fetch]\n{fetch}\n"
        )
    };
    let text = [
        account("a", "alice", pop3, "maildir = \"a-mail\""),
        account("b", "bob", pop3, "mbox = \"b.mbox\""),
        account("c", "carol", closed, "maildir = \"c-mail\""),
    ]
    .concat();
    let config = dir.join("config.toml");
    fs::write(&config, text).unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).unwrap();
    config
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

#[test]
fn several_accounts_each_to_its_destination_with_one_summary() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&[]);
    let message = |subject: &str| format!("Subject: {subject}\r\n\r\nbody\r\n").into_bytes();
    server.deliver(
        "x@example.test",
        &["alice@example.test"],
        &message("for alice"),
    );
    server.deliver(
        "x@example.test",
        &["bob@example.test"],
        &message("for bob 1"),
    );
    server.deliver(
        "x@example.test",
        &["bob@example.test"],
        &message("for bob 2"),
    );
    let config = three_accounts(dir.path(), server.pop3);
    let state = dir.path().join("state");

    // Listing two accounts: a heading for each.
    let listing = ok(&mailctl(&config, &state, &["fetch", "--account", "a,b"]));
    assert!(
        listing.contains("account a:") && listing.contains("account b:"),
        "{listing}"
    );
    assert!(
        listing.contains("for alice") && listing.contains("for bob 2"),
        "{listing}"
    );

    let out = mailctl(&config, &state, &["fetch", "--all-accounts", "--new"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // c's server is down: the worst status is c's.
    assert_eq!(code(&out), 75, "{stderr}");
    assert!(stderr.contains("account c:"), "{stderr}");
    let summary: Vec<&str> = stderr.lines().filter(|l| l.contains("a: ")).collect();
    assert_eq!(summary.len(), 1, "one summary line: {stderr}");
    assert!(
        summary[0].contains(
            "a: 1 saved, 0 deleted; b: 2 saved, 0 deleted; c: 0 saved, 0 deleted, failed (exit 75)"
        ),
        "{stderr}"
    );
    assert_eq!(
        fs::read_dir(dir.path().join("a-mail/new")).unwrap().count(),
        1
    );
    let mbox = fs::read_to_string(dir.path().join("b.mbox")).unwrap();
    assert!(
        mbox.contains("for bob 1") && mbox.contains("for bob 2"),
        "{mbox}"
    );

    // Again, for the accounts that work: nothing new, success.
    let out = mailctl(&config, &state, &["fetch", "--account", "a, b", "--new"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 0, "{stderr}");
    assert!(
        stderr.contains("a: 0 saved, 0 deleted; b: 0 saved, 0 deleted"),
        "{stderr}"
    );

    // Listing what is new in both: headings, no summary.
    let out = mailctl(
        &config,
        &state,
        &["fetch", "--account", "a,b", "--list", "--new"],
    );
    let listing = ok(&out);
    assert_eq!(
        listing,
        "account a:\nno new mail\naccount b:\nno new mail\n"
    );
    assert!(String::from_utf8_lossy(&out.stderr).is_empty());

    // One account: its configured destination without a flag.
    server.deliver("x@example.test", &["alice@example.test"], &message("again"));
    ok(&mailctl(
        &config,
        &state,
        &["fetch", "--account", "a", "--new"],
    ));
    assert_eq!(
        fs::read_dir(dir.path().join("a-mail/new")).unwrap().count(),
        2
    );
}

#[test]
fn a_fetch_table_with_two_destinations_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    fs::write(
        &config,
        "[accounts.a]\n[accounts.a.pop3]\nhost = \"h\"\n[accounts.a.fetch]\nmaildir = \"m\"\nmbox = \"x\"\n",
    )
    .unwrap();
    let out = mailctl(&config, dir.path(), &["fetch", "--new"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 78, "{stderr}");
    assert!(
        stderr.contains("accounts.a.fetch") && stderr.contains("not several"),
        "{stderr}"
    );
}

#[test]
fn several_accounts_give_one_json_document() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&[]);
    let message = |subject: &str| format!("Subject: {subject}\r\n\r\nbody\r\n").into_bytes();
    server.deliver("x@example.test", &["alice@example.test"], &message("a1"));
    server.deliver("x@example.test", &["bob@example.test"], &message("b1"));
    server.deliver("x@example.test", &["bob@example.test"], &message("b2"));
    let config = three_accounts(dir.path(), server.pop3);
    let state = dir.path().join("state");
    let parse = |out: &Output| -> serde_json::Value {
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&out.stdout));
        })
    };

    let out = mailctl(
        &config,
        &state,
        &["fetch", "--account", "a,b", "--list", "--json"],
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let listing = parse(&out);
    assert_eq!(listing["exit_code"], 0);
    let accounts = listing["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 2, "{listing}");
    assert_eq!(accounts[0]["account"], "a");
    assert_eq!(accounts[0]["messages"].as_array().unwrap().len(), 1);
    assert_eq!(accounts[1]["account"], "b");
    assert_eq!(accounts[1]["messages"][1]["subject"], "b2", "{listing}");

    let out = mailctl(
        &config,
        &state,
        &["fetch", "--all-accounts", "--new", "--json"],
    );
    assert_eq!(code(&out), 75, "{}", String::from_utf8_lossy(&out.stderr));
    let report = parse(&out);
    assert_eq!(report["exit_code"], 75, "{report}");
    let accounts = report["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 3, "{report}");
    assert_eq!(accounts[0]["exit_code"], 0);
    assert_eq!(accounts[0]["messages"].as_array().unwrap().len(), 1);
    assert_eq!(accounts[1]["messages"].as_array().unwrap().len(), 2);
    assert!(accounts[1]["error"].is_null(), "{report}");
    assert_eq!(accounts[2]["account"], "c");
    assert_eq!(accounts[2]["exit_code"], 75);
    assert!(accounts[2]["messages"].is_null(), "{report}");
    assert!(accounts[2]["error"].as_str().is_some(), "{report}");
}
