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
