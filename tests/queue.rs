//! The outbox: `mailctl send --queue`, `mailctl queue ...`, against
//! `mailctl serve` and the scripted fake SMTP server.

// Both support modules include the fake servers' shared module.
#![allow(clippy::duplicate_mod)]

mod send_support;
mod serve_support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use send_support::{FakeServer, Script};
use serve_support::{body_of, files_in, Server};

/// A test's own outbox, state and config folders.
struct Place {
    dir: tempfile::TempDir,
}

impl Place {
    fn new() -> Place {
        Place {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn outbox(&self) -> PathBuf {
        self.dir.path().join("outbox")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailctl"));
        cmd.args(args)
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env_remove("MAILCTL_CONFIG")
            .env_remove("MAILCTL_ACCOUNT")
            .env_remove("MAILCTL_PASSWORD")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs mailctl with `--outbox` added after the command words.
    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).spawn().unwrap()
    }

    fn outbox_arg(&self) -> String {
        self.outbox().display().to_string()
    }

    /// Queues a message for `to` at `server` without trying it.
    fn queue_only(&self, server: &str, to: &str, n: usize) -> String {
        let id = format!("q{n}@example.org");
        let (subject, body, outbox) = (
            format!("number {n}"),
            format!("message {n}"),
            self.outbox_arg(),
        );
        let more = [
            "--subject",
            &subject,
            "--body",
            &body,
            "--message-id",
            &id,
            "--queue-only",
            "--outbox",
            &outbox,
        ];
        let out = self.run(&send_args(server, to, &more));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        id
    }

    /// Writes a configuration file: `top` keys, then account `local`
    /// (with `account` keys) sending to 127.0.0.1:`port` unencrypted.
    fn config(&self, top: &str, account: &str, port: u16) -> String {
        let path = self.dir.path().join("mailctl.toml");
        std::fs::write(
            &path,
            format!(
                "{top}[accounts.local]\nfrom = \"cron@example.org\"\n{account}\
                 [accounts.local.smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n"
            ),
        )
        .unwrap();
        path.display().to_string()
    }

    /// Queues (`--queue-only`) a message to bob through `account` of the
    /// configuration file `config`, with `body`.
    fn queue_for(&self, config: &str, account: &str, body: &str) {
        let outbox = self.outbox_arg();
        let out = self.run(&[
            "--config",
            config,
            "send",
            "--account",
            account,
            "--to",
            "bob@example.org",
            "--body",
            body,
            "--queue-only",
            "--outbox",
            &outbox,
        ]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }

    /// Runs `mailctl --config CONFIG sendmail ARGS` with `input` on stdin.
    fn sendmail(&self, config: &str, args: &[&str], input: &[u8]) -> Output {
        let mut all = vec!["--config", config, "sendmail"];
        all.extend_from_slice(args);
        let mut child = self.command(&all).stdin(Stdio::piped()).spawn().unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs the `send` command line `args` (which names this outbox):
    /// directly, or with `--queue-only` and then `queue run`; each must
    /// succeed.
    fn send_then_run(&self, mut args: Vec<&str>, queued: bool) {
        if queued {
            args.push("--queue-only");
        }
        let out = self.run(&args);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        if queued {
            let out = self.run(&["queue", "run", "--outbox", &self.outbox_arg()]);
            assert_eq!(code(&out), 0, "{}", stderr(&out));
        }
    }

    fn entries(&self, sub: &str) -> Vec<PathBuf> {
        let dir = match sub {
            "" => self.outbox(),
            sub => self.outbox().join(sub),
        };
        files_in(&dir)
            .into_iter()
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                p.is_dir() && name != "tmp" && name != "failed"
            })
            .collect()
    }
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `send` to `server` without TLS, from a@example.org to `to`, then
/// `more` arguments.
fn send_args<'a>(server: &'a str, to: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "send",
        "--server",
        server,
        "--tls",
        "none",
        "--from",
        "a@example.org",
        "--to",
        to,
    ];
    args.extend_from_slice(more);
    args
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// How many times each Message-ID arrived in the server's mailbox.
fn delivered_ids(mailbox: &Path) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for path in files_in(&mailbox.join("new")) {
        let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("Message-ID: "))
            .expect("a Message-ID")
            .trim()
            .to_string();
        *counts.entry(id).or_insert(0) += 1;
    }
    counts
}

#[test]
fn queued_on_a_closed_port_then_sent_by_queue_run() {
    let place = Place::new();
    let port = closed_port();
    let server = format!("127.0.0.1:{port}");
    let body = "sent once the server is up\n";
    let outbox = place.outbox_arg();
    let more = [
        "--bcc",
        "hidden@example.org",
        "--subject",
        "later",
        "--body",
        body,
        "--message-id",
        "later@example.org",
        "--queue",
        "--outbox",
        &outbox,
    ];
    let out = place.run(&send_args(&server, "bob@example.org", &more));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("queued: ") && err.contains("(cannot connect"),
        "{err}"
    );
    let entries = place.entries("");
    assert_eq!(entries.len(), 1);
    let entry = std::fs::read_to_string(entries[0].join("entry.json")).unwrap();
    assert!(!entry.contains("password\":\"") && entry.contains("hidden@example.org"));
    let queued = std::fs::read(entries[0].join("message.eml")).unwrap();
    assert!(!String::from_utf8_lossy(&queued).contains("hidden"));

    let serve = Server::start_on(&server, &[]);
    let out = place.run(&["queue", "run", "--outbox", &place.outbox_arg()]);
    // Not due yet: the first try was a minute's back-off ago.
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    let out = place.run(&["queue", "flush", "--outbox", &place.outbox_arg()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(place.entries("").is_empty());
    let bob = serve.files("bob", "new");
    assert_eq!(bob.len(), 1);
    assert_eq!(body_of(&std::fs::read(&bob[0]).unwrap()), queued);
    assert_eq!(serve.files("hidden", "new").len(), 1);
    let out = place.run(&["queue", "list", "--json", "--outbox", &place.outbox_arg()]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
}

#[test]
fn queue_only_entries_are_due_at_once_and_go_over_one_connection() {
    let place = Place::new();
    let serve = Server::start(&["-v"]);
    let server = format!("127.0.0.1:{}", serve.smtp);
    for n in 0..5 {
        place.queue_only(&server, "bob@example.org", n);
    }
    let out = place.run(&["queue", "list", "--outbox", &place.outbox_arg()]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 5);
    let out = place.run(&["queue", "run", "--json", "--outbox", &place.outbox_arg()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["sent"], 5);
    assert_eq!(json["remaining"], 0);
    assert_eq!(serve.files("bob", "new").len(), 5);
    let (_, log, _) = serve.terminate();
    let greetings = log.iter().filter(|l| l.contains("S: 220 ")).count();
    assert_eq!(greetings, 1, "one connection: {log:#?}");
}

/// A `mailctl serve` and `count` messages to bob queued for it; their
/// Message-IDs.
fn serve_with_queued(place: &Place, count: usize) -> (Server, Vec<String>) {
    let serve = Server::start(&[]);
    let server = format!("127.0.0.1:{}", serve.smtp);
    let ids = (0..count)
        .map(|n| place.queue_only(&server, "bob@example.org", n))
        .collect();
    (serve, ids)
}

#[test]
fn two_concurrent_runs_send_each_message_exactly_once() {
    let place = Place::new();
    let (serve, ids) = serve_with_queued(&place, 40);
    let outbox = place.outbox_arg();
    let runs: Vec<Child> = (0..2)
        .map(|_| place.spawn(&["queue", "flush", "--outbox", &outbox]))
        .collect();
    for run in runs {
        let out = run.wait_with_output().unwrap();
        assert!(matches!(code(&out), 0 | 75), "{}", stderr(&out));
    }
    let out = place.run(&["queue", "run", "--outbox", &outbox]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let counts = delivered_ids(&serve.maildir().join("bob"));
    assert_eq!(counts.len(), ids.len());
    for id in ids {
        assert_eq!(counts.get(&format!("<{id}>")), Some(&1), "{id}");
    }
}

#[test]
fn killed_run_loses_nothing_and_repeats_at_most_one() {
    let place = Place::new();
    let (serve, ids) = serve_with_queued(&place, 100);
    let outbox = place.outbox_arg();
    let mut run = place.spawn(&["queue", "run", "--outbox", &outbox]);
    let started = Instant::now();
    let mailbox = serve.maildir().join("bob").join("new");
    while files_in(&mailbox).len() < 20 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(2));
    }
    run.kill().unwrap(); // SIGKILL
    run.wait().unwrap();
    let left = place.entries("").len();
    eprintln!("killed with {left} entries left");
    let out = place.run(&["queue", "flush", "--outbox", &outbox]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let counts = delivered_ids(&serve.maildir().join("bob"));
    let twice = counts.values().filter(|&&n| n == 2).count();
    assert!(counts.values().all(|&n| n <= 2) && twice <= 1, "{counts:?}");
    for id in ids {
        assert!(counts.contains_key(&format!("<{id}>")), "{id} lost");
    }
}

fn refuse_some(addr: &str) -> String {
    match addr {
        "bad@example.org" => "550 5.1.1 <bad@example.org>: Recipient address rejected".into(),
        "later@example.org" => "451 4.2.0 <later@example.org>: try again later".into(),
        _ => "250 2.1.5 Ok".into(),
    }
}

/// A 5xx recipient fails for good (failed/ with the reply once nothing is
/// pending); a 4xx one is retried alone; the accepted one gets the
/// message once.
#[test]
fn refused_recipients_are_failed_or_retried_alone() {
    let place = Place::new();
    let fake = FakeServer::start(Script {
        rcpt_reply: refuse_some,
        ..Script::default()
    });
    let to = "ok@example.org, bad@example.org, later@example.org";
    let id = place.queue_only(&fake.addr(), to, 1);
    let out = place.run(&["queue", "run", "--outbox", &place.outbox_arg()]);
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    let rec = fake.finish();
    assert_eq!(rec.transactions.len(), 1);
    assert_eq!(rec.transactions[0].0, ["ok@example.org"]);
    let show = place.run(&["queue", "list", "--json", "--outbox", &place.outbox_arg()]);
    let list: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    let states: Vec<(String, String)> = list[0]["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["address"].as_str().unwrap().to_string(),
                r["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("ok@example.org".into(), "delivered".into()),
            ("bad@example.org".into(), "failed".into()),
            ("later@example.org".into(), "pending".into())
        ]
    );
    assert!(list[0]["last_reply"]
        .as_str()
        .unwrap()
        .contains("451 4.2.0"));

    // The retry goes to the 4xx recipient alone; then the entry fails
    // because of the 5xx one, with its reply.
    let fake = FakeServer::start(Script::default());
    let entry = place.entries("")[0].join("entry.json");
    let text = std::fs::read_to_string(&entry).unwrap();
    let port = fake.addr();
    let text = text.replace(&port_of(&text), &port);
    std::fs::write(&entry, text).unwrap();
    let out = place.run(&["queue", "flush", "--outbox", &place.outbox_arg()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("failed: "), "{}", stderr(&out));
    let rec = fake.finish();
    assert_eq!(rec.rcpt_to, ["later@example.org"]);
    assert!(place.entries("").is_empty());
    assert_eq!(place.entries("failed").len(), 1);
    let out = place.run(&[
        "queue",
        "show",
        "--outbox",
        &place.outbox_arg(),
        &failed_id(&place),
    ]);
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        shown.contains("bad@example.org> failed 550 5.1.1"),
        "{shown}"
    );
    assert!(
        shown.lines().any(|l| l == format!("Message-ID: <{id}>")),
        "{shown}"
    );
    assert!(
        shown.lines().any(|l| l.starts_with("attempts: ")),
        "{shown}"
    );
    let out = place.run(&["queue", "list", "--failed", "--outbox", &place.outbox_arg()]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    let out = place.run(&[
        "queue",
        "drop",
        "--outbox",
        &place.outbox_arg(),
        &failed_id(&place),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(place.entries("failed").is_empty());
}

/// The `server` recorded in an entry's JSON text.
fn port_of(entry: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(entry).unwrap();
    json["connection"]["server"].as_str().unwrap().to_string()
}

fn failed_id(place: &Place) -> String {
    let entries = place.entries("failed");
    entries[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// A whole-message 5xx (after the dot) fails the entry at once.
#[test]
fn refusal_after_the_dot_moves_the_entry_to_failed() {
    let place = Place::new();
    let fake = FakeServer::start(Script {
        final_reply: "554 5.7.1 Message rejected as spam".into(),
        ..Script::default()
    });
    place.queue_only(&fake.addr(), "bob@example.org", 1);
    let out = place.run(&["queue", "run", "--outbox", &place.outbox_arg()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("554 5.7.1 Message rejected as spam"));
    fake.finish();
    assert_eq!(place.entries("failed").len(), 1);
}

#[test]
fn watch_sends_new_entries_and_stops_on_sigterm() {
    let place = Place::new();
    let serve = Server::start(&[]);
    let server = format!("127.0.0.1:{}", serve.smtp);
    let outbox = place.outbox_arg();
    std::fs::create_dir_all(place.outbox()).unwrap();
    let watch = place.spawn(&["queue", "run", "--watch", "--outbox", &outbox]);
    place.queue_only(&server, "bob@example.org", 7);
    let started = Instant::now();
    while serve.files("bob", "new").is_empty() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(serve.files("bob", "new").len(), 1);
    let status = Command::new("kill")
        .args(["-TERM", &watch.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = watch.wait_with_output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(place.entries("").is_empty());
}

#[test]
fn rate_limit_spaces_the_messages() {
    let place = Place::new();
    let serve = Server::start(&[]);
    let config = place.config("", "rate = \"5/s\"\n", serve.smtp);
    let outbox = place.outbox_arg();
    for n in 0..6 {
        place.queue_for(&config, "local", &n.to_string());
    }
    let started = Instant::now();
    let out = place.run(&["--config", &config, "queue", "run", "--outbox", &outbox]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Six messages at five a second: the last starts a second after the first.
    assert!(started.elapsed() >= Duration::from_millis(1000));
    assert_eq!(serve.files("bob", "new").len(), 6);
    let out = place.run(&["queue", "list", "--failed", "--outbox", &outbox]);
    assert!(out.stdout.is_empty());
}

#[test]
fn unknown_ids_and_bad_options_are_clear_errors() {
    let place = Place::new();
    let outbox = place.outbox_arg();
    let out = place.run(&["queue", "show", "--outbox", &outbox, "nope"]);
    assert_eq!(code(&out), 66);
    assert!(stderr(&out).starts_with("mailctl: error: no queued message nope"));
    let out = place.run(&["queue", "drop", "--outbox", &outbox, "../x"]);
    assert_eq!(code(&out), 66);
    let out = place.run(&["queue", "run", "--outbox", &outbox]);
    assert_eq!(code(&out), 0, "an empty outbox: {}", stderr(&out));
}

/// `queue = "on-failure"`: sendmail mode keeps what it cannot send now,
/// and `queue run` sends it through the same account.
#[test]
fn sendmail_mode_queues_on_failure_when_configured() {
    let place = Place::new();
    let port = closed_port();
    let config = place.config("queue = \"on-failure\"\n", "", port);
    let outbox = place.outbox_arg();
    let args = ["-i", "--outbox", &outbox, "root@example.org"];
    let out = place.sendmail(&config, &args, b"Subject: cron output\n\ndisk full\n");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).starts_with("queued: "), "{}", stderr(&out));
    assert_eq!(place.entries("").len(), 1);
    let serve = Server::start_on(&format!("127.0.0.1:{port}"), &[]);
    let out = place.run(&["--config", &config, "queue", "flush", "--outbox", &outbox]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(serve.files("root", "new").len(), 1);
}

fn dsn_extensions() -> Vec<String> {
    ["PIPELINING", "DSN", "ENHANCEDSTATUSCODES"]
        .map(String::from)
        .to_vec()
}

/// DSN parameters on the wire, for a direct send and for a queued one;
/// a server without DSN gets nothing but EHLO and QUIT (exit 69).
#[test]
fn dsn_parameters_on_the_wire() {
    let place = Place::new();
    let dsn = [
        "--notify",
        "success,failure",
        "--ret",
        "hdrs",
        "--envid",
        "run+42",
    ];
    for queued in [false, true] {
        let fake = FakeServer::start(Script {
            extensions: dsn_extensions(),
            ..Script::default()
        });
        let server = fake.addr();
        let outbox = place.outbox_arg();
        let mut args = send_args(
            &server,
            "b@example.org",
            &["--body", "b", "--outbox", &outbox],
        );
        args.extend(dsn);
        place.send_then_run(args, queued);
        let rec = fake.finish();
        assert!(
            rec.commands
                .contains(&"MAIL FROM:<a@example.org> RET=HDRS ENVID=run+2B42".to_string()),
            "{:?}",
            rec.commands
        );
        assert!(rec
            .commands
            .contains(&"RCPT TO:<b@example.org> NOTIFY=SUCCESS,FAILURE".to_string()));
    }
    let fake = FakeServer::start(Script::default());
    let server = fake.addr();
    let mut args = send_args(&server, "b@example.org", &["--body", "b"]);
    args.extend(dsn);
    let out = place.run(&args);
    assert_eq!(code(&out), 69, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("does not offer DSN"),
        "{}",
        stderr(&out)
    );
    let rec = fake.finish();
    assert!(!rec.saw("MAIL"), "{:?}", rec.commands);
    let out = place.run(&send_args(
        "127.0.0.1:1",
        "b@x.org",
        &["--dry-run", "--notify", "sometimes"],
    ));
    assert_eq!(code(&out), 64, "{}", stderr(&out));
}

/// sendmail mode honours -N, -R and -V.
#[test]
fn sendmail_dsn_options() {
    let place = Place::new();
    let fake = FakeServer::start(Script {
        extensions: dsn_extensions(),
        ..Script::default()
    });
    let config = place.config("", "", fake.port);
    let args = [
        "-i",
        "-N",
        "never",
        "-R",
        "full",
        "-V",
        "abc",
        "root@example.org",
    ];
    let out = place.sendmail(&config, &args, b"Subject: s\n\nbody\n");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rec = fake.finish();
    assert!(rec
        .commands
        .contains(&"MAIL FROM:<cron@example.org> RET=FULL ENVID=abc".to_string()));
    assert!(rec
        .commands
        .contains(&"RCPT TO:<root@example.org> NOTIFY=NEVER".to_string()));
}

/// `--save-copy`: the exact bytes the server got, once it accepted them,
/// for a direct send and a queued one; an mbox copy too.
#[test]
fn save_copy_is_byte_exact() {
    let place = Place::new();
    let sent = place.dir.path().join("Sent");
    let copy = format!("maildir:{}", sent.display());
    let outbox = place.outbox_arg();
    let fake = FakeServer::start(Script::default());
    let server = fake.addr();
    let more = [
        "--subject",
        "copy",
        "--body",
        "line\n.dot line\n",
        "--save-copy",
        &copy,
        "--outbox",
        &outbox,
    ];
    let base = send_args(&server, "b@example.org", &more);
    let out = place.run(&base);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rec = fake.finish();
    let copies = files_in(&sent.join("new"));
    assert_eq!(copies.len(), 1);
    assert_eq!(std::fs::read(&copies[0]).unwrap(), rec.message());

    let serve = Server::start(&[]);
    let server = format!("127.0.0.1:{}", serve.smtp);
    let mut args = base.to_vec();
    args[2] = &server;
    args.push("--queue-only");
    let out = place.run(&args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        files_in(&sent.join("new")).len(),
        1,
        "no copy before it is sent"
    );
    let out = place.run(&["queue", "run", "--outbox", &outbox]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let delivered = serve.files("b", "new");
    let copies = files_in(&sent.join("new"));
    assert_eq!(copies.len(), 2);
    let received = body_of(&std::fs::read(&delivered[0]).unwrap());
    assert!(copies.iter().any(|c| std::fs::read(c).unwrap() == received));

    let mbox = place.dir.path().join("sent.mbox");
    let fake = FakeServer::start(Script::default());
    let server = fake.addr();
    let copy = format!("mbox:{}", mbox.display());
    let mut args = base.to_vec();
    args[2] = &server;
    args[14] = &copy;
    let out = place.run(&args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    fake.finish();
    let text = std::fs::read_to_string(&mbox).unwrap();
    assert!(
        text.starts_with("From ") && text.contains("Subject: copy"),
        "{text}"
    );
    let out = place.run(&send_args(
        "127.0.0.1:1",
        "b@x.org",
        &["--dry-run", "--save-copy", "imap:x"],
    ));
    assert_eq!(
        code(&out),
        0,
        "dry run does not check copies: {}",
        stderr(&out)
    );
}

/// `mailctl serve` takes 100 recipients per transaction (then `452
/// 4.5.3`): 150 recipients get the message once each, in two
/// transactions, sent directly and from the outbox.
#[test]
fn serve_recipient_limit_means_two_transactions() {
    let place = Place::new();
    let serve = Server::start(&["-v"]);
    let server = format!("127.0.0.1:{}", serve.smtp);
    let to: Vec<String> = (0..150).map(|n| format!("r{n}@example.org")).collect();
    let to = to.join(",");
    let outbox = place.outbox_arg();
    for queued in [false, true] {
        let args = send_args(&server, &to, &["--body", "b", "--outbox", &outbox]);
        place.send_then_run(args, queued);
    }
    for n in 0..150 {
        assert_eq!(serve.files(&format!("r{n}"), "new").len(), 2, "r{n}");
    }
    let (_, log, _) = serve.terminate();
    let transactions = log.iter().filter(|l| l.contains("MAIL FROM:")).count();
    assert_eq!(transactions, 4, "two per message");
}

/// Past `queue_max_age` a message that still fails for now moves to
/// failed/ with the last reason.
#[test]
fn entries_past_their_maximum_age_fail() {
    let place = Place::new();
    let port = closed_port();
    let config = place.config("", "queue_max_age = \"0s\"\n", port);
    let outbox = place.outbox_arg();
    place.queue_for(&config, "local", "b");
    let out = place.run(&["--config", &config, "queue", "run", "--outbox", &outbox]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("failed: ") && err.contains("not delivered after 1 attempts"),
        "{err}"
    );
    assert_eq!(place.entries("failed").len(), 1);
}

/// `queue run --account NAME` sends only that account's messages.
#[test]
fn run_for_one_account_leaves_the_others() {
    let place = Place::new();
    let serve = Server::start(&[]);
    let config = place.config(
        &format!(
            "[accounts.other]\nfrom = \"o@example.org\"\n[accounts.other.smtp]\n\
             host = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n",
            serve.smtp
        ),
        "",
        serve.smtp,
    );
    let outbox = place.outbox_arg();
    for account in ["local", "other"] {
        place.queue_for(&config, account, account);
    }
    let run = [
        "--config",
        &config,
        "queue",
        "run",
        "--outbox",
        &outbox,
        "--account",
    ];
    let mut args = run.to_vec();
    args.push("other");
    let out = place.run(&args);
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    assert_eq!(serve.files("bob", "new").len(), 1);
    let out = place.run(&["queue", "list", "--json", "--outbox", &outbox]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["account"], "local");
    let mut args = run.to_vec();
    args.push("local");
    let out = place.run(&args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(serve.files("bob", "new").len(), 2);
}

/// A server taking `per_connection` messages per connection: the next MAIL
/// gets `421 4.7.0` and the connection is closed. Serves until `stop`;
/// returns the messages (DATA bytes) received and the connections made.
fn limiting_server(
    per_connection: usize,
) -> (
    u16,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<(usize, usize)>,
) {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let handle = std::thread::spawn(move || {
        let (mut messages, mut connections) = (0, 0);
        let started = Instant::now();
        while !stopped.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(60) {
            let Ok((tcp, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            tcp.set_nonblocking(false).unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            connections += 1;
            let mut out = tcp.try_clone().unwrap();
            let mut lines = BufReader::new(tcp);
            let _ = out.write_all(b"220 limit.example ESMTP\r\n");
            let mut here = 0;
            let mut line = String::new();
            while lines.read_line(&mut line).unwrap_or(0) > 0 {
                let upper = line.trim_end().to_ascii_uppercase();
                line.clear();
                let reply: &[u8] = if upper.starts_with("EHLO") {
                    b"250-limit.example\r\n250 PIPELINING\r\n"
                } else if upper.starts_with("MAIL") && here == per_connection {
                    let _ = out.write_all(b"421 4.7.0 too many messages, come back later\r\n");
                    break;
                } else if upper == "DATA" {
                    let _ = out.write_all(b"354 go\r\n");
                    let mut data = String::new();
                    while lines.read_line(&mut data).unwrap_or(0) > 0
                        && !data.ends_with("\r\n.\r\n")
                    {}
                    messages += 1;
                    here += 1;
                    b"250 2.0.0 queued\r\n"
                } else if upper == "QUIT" {
                    let _ = out.write_all(b"221 bye\r\n");
                    break;
                } else {
                    b"250 ok\r\n"
                };
                let _ = out.write_all(reply);
            }
        }
        (messages, connections)
    });
    (port, stop, handle)
}

/// A server that limits messages per connection: the run reconnects and
/// sends the rest, each message once.
#[test]
fn queue_run_reconnects_when_the_server_limits_messages_per_connection() {
    let place = Place::new();
    let (port, stop, server) = limiting_server(2);
    let server_addr = format!("127.0.0.1:{port}");
    for n in 0..5 {
        place.queue_only(&server_addr, "bob@example.org", n);
    }
    let out = place.run(&["queue", "run", "--outbox", &place.outbox_arg()]);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (messages, connections) = server.join().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!((messages, connections), (5, 3));
    assert!(place.entries("").is_empty());
}

/// An entry whose message is gone moves to failed/; one whose description
/// is unreadable is reported and left alone; neither holds up the others.
#[test]
fn broken_entries_do_not_hold_up_the_others() {
    let place = Place::new();
    let (serve, _) = serve_with_queued(&place, 3);
    let entries = place.entries("");
    std::fs::remove_file(entries[0].join("message.eml")).unwrap();
    std::fs::write(entries[1].join("entry.json"), "{not json").unwrap();
    let out = place.run(&["queue", "run", "--outbox", &place.outbox_arg()]);
    let err = stderr(&out);
    assert_eq!(code(&out), 78, "{err}");
    assert!(err.contains("cannot read the queued message"), "{err}");
    assert!(err.contains("unreadable"), "{err}");
    assert_eq!(serve.files("bob", "new").len(), 1);
    assert_eq!(place.entries("failed").len(), 1);
    assert_eq!(place.entries("").len(), 1);
}

/// `rate` holds across the batches of `--watch`: a message queued right
/// after another was sent still waits its turn.
#[test]
fn watch_keeps_the_rate_between_batches() {
    let place = Place::new();
    let serve = Server::start(&[]);
    let config = place.config("", "rate = \"1/s\"\n", serve.smtp);
    let outbox = place.outbox_arg();
    let watch = place.spawn(&[
        "--config", &config, "queue", "run", "--watch", "--outbox", &outbox,
    ]);
    let started = Instant::now();
    for n in 1..=2 {
        place.queue_for(&config, "local", "b");
        while serve.files("bob", "new").len() < n && started.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    Command::new("kill")
        .args(["-TERM", &watch.id().to_string()])
        .status()
        .unwrap();
    let out = watch.wait_with_output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let times: Vec<std::time::SystemTime> = serve
        .files("bob", "new")
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().modified().unwrap())
        .collect();
    assert_eq!(times.len(), 2);
    let gap = times[1]
        .duration_since(times[0])
        .or_else(|_| times[0].duration_since(times[1]))
        .unwrap();
    assert!(gap >= Duration::from_millis(900), "{gap:?}");
}
