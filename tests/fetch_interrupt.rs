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

/// Runs `fetch --all --mbox` into `mbox` while something else holds a lock
/// on it, and checks that fetch waited, then gave up with 75 naming it.
fn mbox_lock_is_honoured(mbox: &Path, what: &str) {
    let state = tmp();
    let server = Server::start(Config::default(), vec![message("one", b"1\r\n")]);
    let started = Instant::now();
    let out = mailctl(
        &args(&server, "10", &["--all", "--mbox", mbox.to_str().unwrap()]),
        state.path(),
    );
    let took = started.elapsed();
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    assert!(stderr(&out).contains(what), "{}", stderr(&out));
    assert!(took >= Duration::from_secs(3), "gave up at once: {took:?}");
    assert!(!std::fs::read(mbox)
        .unwrap_or_default()
        .starts_with(b"From "));
    drop(server);
}

#[test]
fn a_held_dotlock_makes_mbox_delivery_wait_then_exit_75() {
    let dir = tmp();
    let mbox = dir.path().join("inbox");
    // A dotlock of a live process: this test's.
    std::fs::write(
        dir.path().join("inbox.lock"),
        format!("{}\n", std::process::id()),
    )
    .unwrap();
    mbox_lock_is_honoured(&mbox, "dotlock");
    assert!(
        dir.path().join("inbox.lock").exists(),
        "someone else's dotlock stays"
    );
}

#[test]
fn a_held_fcntl_lock_makes_mbox_delivery_wait_then_exit_75() {
    use std::io::{BufRead, BufReader};
    let dir = tmp();
    let mbox = dir.path().join("inbox");
    // Another process holds a POSIX record lock, as procmail or Postfix
    // `local` would.
    let mut holder = std::process::Command::new("python3")
        .args([
            "-c",
            "import fcntl, sys, time\nf = open(sys.argv[1], 'a')\nfcntl.lockf(f, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(60)",
            mbox.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    mbox_lock_is_honoured(&mbox, "fcntl");
    let _ = holder.kill();
    let _ = holder.wait();
}
