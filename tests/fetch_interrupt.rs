//! `mailctl fetch` when interrupted, against a slow server, and with a
//! locked mbox: nothing fetched twice, nothing lost, nothing held forever.

mod fetch_support;

use std::path::Path;
use std::time::{Duration, Instant};

use fetch_support::{code, mailctl, message, stderr, Config, Server};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// `fetch` from `server` without TLS, with `--timeout SECS` and `extra`.
fn args(server: &Server, timeout: &str, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "fetch",
        "--server",
        &server.addr(),
        "--user",
        "alice",
        "--tls",
        "none",
        "--timeout",
        timeout,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

#[test]
fn a_trickling_server_cannot_hold_a_reply_past_its_time() {
    let state = tmp();
    let dest = tmp();
    let server = Server::start(
        Config {
            trickle: Some(Duration::from_millis(40)),
            ..Config::default()
        },
        vec![message("slow", &b"x".repeat(400))],
    );
    let maildir = dest.path().join("md");
    let started = Instant::now();
    let out = mailctl(
        &args(
            &server,
            "2",
            &["--all", "--maildir", maildir.to_str().unwrap()],
        ),
        state.path(),
    );
    let took = started.elapsed();
    // Every byte comes well within the 2 s per read, but the whole reply
    // (about 20 s at this pace) may take only about 2 s.
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    assert!(stderr(&out).contains("reply too slow"), "{}", stderr(&out));
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert_eq!(std::fs::read_dir(maildir.join("new")).unwrap().count(), 0);
    drop(server);
}

/// Files directly in `dir`.
#[allow(dead_code)]
fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}
