//! `mailctl fetch` when interrupted, against a slow server, and with a
//! locked mbox: nothing fetched twice, nothing lost, nothing held forever.

// Shared with tests/fetch.rs, which uses more of it.
#[allow(unused_imports)]
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

/// A small pseudo-random generator (xorshift), seeded from the clock; the
/// seed is printed so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("FETCH_KILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("FETCH_KILL_SEED={seed}");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

const MESSAGES: usize = 24;

/// The mailbox of the kill tests: every third message large enough to be
/// cut in the middle.
fn mailbox() -> Vec<Vec<u8>> {
    (1..=MESSAGES)
        .map(|k| {
            let body = if k % 3 == 0 {
                b"a line of a long message body, From here\r\n".repeat(4000)
            } else {
                format!("body {k}\r\n").into_bytes()
            };
            message(&format!("msg-{k:02}"), &body)
        })
        .collect()
}

/// How many times each message's subject occurs in `text`.
fn tally(text: &[u8]) -> Vec<usize> {
    (1..=MESSAGES)
        .map(|k| {
            let needle = format!("Subject: msg-{k:02}");
            text.windows(needle.len())
                .filter(|w| *w == needle.as_bytes())
                .count()
        })
        .collect()
}

/// Everything in the files directly in `dir`, one after another.
fn files_in(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            all.extend(std::fs::read(&p).unwrap());
            all.push(b'\n');
        }
    }
    all
}

#[derive(Clone, Copy, Debug)]
enum Dest {
    Maildir,
    SaveDir,
    Mbox,
    Mda,
}

/// Runs `fetch --new` into `dest` several times, killing each run (-9 or
/// TERM, alternately) after a random delay, then once to the end; returns
/// how often each message arrived, and how many runs were cut.
fn kill_and_rerun(dest: Dest, pipelining: bool, delete: bool) -> (Vec<usize>, usize) {
    const ROUNDS: usize = 4;
    let mut rng = Rng::new();
    let state = tmp();
    let out_dir = tmp();
    let mut capa: Vec<String> = ["TOP", "USER", "UIDL"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if pipelining {
        capa.push("PIPELINING".into());
    }
    let server = Server::start(
        Config {
            capa: Some(capa),
            retr_delay: Some(Duration::from_millis(25)),
            connections: ROUNDS + 1,
            ..Config::default()
        },
        mailbox(),
    );
    let target = out_dir.path().join("dest");
    let target_s = target.to_str().unwrap().to_string();
    let mut extra: Vec<String> = vec!["--new".into()];
    if delete {
        extra.push("--delete".into());
    }
    match dest {
        Dest::Maildir => extra.extend(["--maildir".into(), target_s.clone()]),
        Dest::SaveDir => extra.extend(["--save-dir".into(), target_s.clone()]),
        Dest::Mbox => extra.extend(["--mbox".into(), target_s.clone()]),
        Dest::Mda => {
            std::fs::create_dir_all(&target).unwrap();
            extra.extend([
                "--mda".into(),
                format!("cat > \"{target_s}/$MAILCTL_UIDL.$$\""),
            ])
        }
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let argv = args(&server, "10", &extra);
    let mut cut = 0;
    for round in 0..ROUNDS {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mailctl"))
            .args(&argv)
            .env("MAILCTL_PASSWORD", "s3cret-pw")
            .env("XDG_STATE_HOME", state.path())
            .env_remove("HOME")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(50 + rng.below(400)));
        let term = round % 2 == 1;
        if term {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        } else {
            let _ = child.kill();
        }
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        match out.status.code() {
            Some(143) => {
                assert!(term, "{err}");
                assert!(err.contains("interrupted: "), "{err}");
                assert!(err.contains(" saved"), "{err}");
                cut += 1;
            }
            None => cut += 1,
            Some(0) => {}
            Some(other) => panic!("round {round}: exit {other}: {err}"),
        }
    }
    let out = mailctl(&argv, state.path());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    drop(server);
    let text = match dest {
        Dest::Maildir => {
            let mut t = files_in(&target.join("new"));
            t.extend(files_in(&target.join("cur")));
            assert_eq!(std::fs::read_dir(target.join("tmp")).unwrap().count(), 0);
            t
        }
        Dest::SaveDir => {
            let mut t = Vec::new();
            for e in std::fs::read_dir(&target).unwrap() {
                let p = e.unwrap().path();
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                // Leftovers of killed runs are gone; every folder holds its
                // message.
                assert!(!name.starts_with('.'), "left behind: {name}");
                let eml = std::fs::read(p.join("message.eml"))
                    .unwrap_or_else(|e| panic!("{name} has no message: {e}"));
                t.extend(eml);
            }
            t
        }
        Dest::Mbox => {
            assert!(!out_dir.path().join("dest.lock").exists());
            let t = std::fs::read(&target).unwrap();
            let separators = t
                .windows(20)
                .filter(|w| w.starts_with(b"From MAILER-DAEMON "))
                .count();
            assert_eq!(separators, MESSAGES, "one separator per message");
            t
        }
        Dest::Mda => files_in(&target),
    };
    (tally(&text), cut)
}

fn exactly_once(dest: Dest, pipelining: bool, delete: bool) {
    let (counts, cut) = kill_and_rerun(dest, pipelining, delete);
    assert!(
        counts.iter().all(|&n| n == 1),
        "{dest:?}: copies of each message after {cut} cut runs: {counts:?}"
    );
}

#[test]
fn killed_maildir_fetches_rerun_to_exactly_one_copy() {
    exactly_once(Dest::Maildir, false, true);
}

#[test]
fn killed_save_dir_fetches_rerun_to_exactly_one_copy() {
    exactly_once(Dest::SaveDir, true, false);
}

#[test]
fn killed_mbox_fetches_rerun_to_exactly_one_copy() {
    exactly_once(Dest::Mbox, true, true);
}

/// A delivery program cannot be asked whether it delivered: the message in
/// flight when the run is killed may be delivered again, no other.
#[test]
fn killed_mda_fetches_repeat_at_most_the_message_in_flight() {
    let (counts, cut) = kill_and_rerun(Dest::Mda, false, false);
    assert!(counts.iter().all(|&n| n >= 1), "none missing: {counts:?}");
    let extra: usize = counts.iter().map(|n| n - 1).sum();
    assert!(
        extra <= cut,
        "{extra} repeats after {cut} cut runs: {counts:?}"
    );
}

/// SIGTERM (and SIGINT) in the middle of a run: no new message is taken,
/// the saved ones are recorded and deleted (QUIT is sent), the report says
/// how many, and the status is 143 (130).
#[test]
fn sigterm_and_sigint_stop_cleanly_and_delete_what_was_saved() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    for (signal, status) in [("-TERM", 143), ("-INT", 130)] {
        let state = tmp();
        let dest = tmp();
        let pid = Arc::new(AtomicU32::new(0));
        let pid2 = pid.clone();
        let server = Server::start(
            Config {
                on_retr: Some(Arc::new(move |n| {
                    if n == 3 {
                        let _ = std::process::Command::new("kill")
                            .args([signal, &pid2.load(Ordering::SeqCst).to_string()])
                            .status();
                        std::thread::sleep(Duration::from_millis(100));
                    }
                })),
                connections: 2,
                ..Config::default()
            },
            mailbox(),
        );
        let md = dest.path().join("md");
        let argv = args(
            &server,
            "10",
            &["--new", "--delete", "--maildir", md.to_str().unwrap()],
        );
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_mailctl"))
            .args(&argv)
            .env("MAILCTL_PASSWORD", "s3cret-pw")
            .env("XDG_STATE_HOME", state.path())
            .env_remove("HOME")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        pid.store(child.id(), Ordering::SeqCst);
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        assert_eq!(code(&out), status, "{err}");
        // Messages 1 and 2 are saved; 3 was asked for when the signal came:
        // finished if it was arriving, else dropped. Nothing after it.
        let saved = std::fs::read_dir(md.join("new")).unwrap().count();
        assert!(saved == 2 || saved == 3, "{saved} saved: {err}");
        assert!(
            err.contains(&format!("interrupted: {saved} saved")),
            "{err}"
        );
        // QUIT went out, so the DELEs of the saved messages applied.
        assert_eq!(server.mailbox.lock().unwrap().len(), MESSAGES - saved);
        // The rest comes with the next run, nothing twice.
        let out = mailctl(&argv, state.path());
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let log = server.finish();
        assert!(log.commands("RETR").len() <= MESSAGES + 1);
        let mut all = files_in(&md.join("new"));
        all.extend(files_in(&md.join("cur")));
        assert!(tally(&all).iter().all(|&n| n == 1), "{:?}", tally(&all));
    }
}

/// Two runs on one state file never overlap: the second waits a little,
/// then gives up with 75 and says why.
#[test]
fn a_second_fetch_on_the_same_state_waits_then_exits_75() {
    let state = tmp();
    let dest = tmp();
    let server = Server::start(
        Config {
            retr_delay: Some(Duration::from_secs(9)),
            ..Config::default()
        },
        vec![message("slow", b"1\r\n")],
    );
    let md = dest.path().join("md");
    let argv = args(&server, "20", &["--new", "--maildir", md.to_str().unwrap()]);
    let first = std::process::Command::new(env!("CARGO_BIN_EXE_mailctl"))
        .args(&argv)
        .env("MAILCTL_PASSWORD", "s3cret-pw")
        .env("XDG_STATE_HOME", state.path())
        .env_remove("HOME")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    let second = mailctl(&argv, state.path());
    assert_eq!(code(&second), 75, "{}", stderr(&second));
    assert!(
        stderr(&second).contains("another fetch from this server and user is running"),
        "{}",
        stderr(&second)
    );
    assert!(started.elapsed() >= Duration::from_secs(3));
    let first = first.wait_with_output().unwrap();
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    assert_eq!(std::fs::read_dir(md.join("new")).unwrap().count(), 1);
}

mod pty_support;

/// A fetch of 60 messages into a fresh Maildir from a server that answers
/// each RETR after `delay`: what a terminal test runs.
struct SlowFetch {
    _state: tempfile::TempDir,
    _dest: tempfile::TempDir,
    server: Server,
    args: Vec<String>,
    state_home: String,
}

impl SlowFetch {
    fn start(delay: Duration) -> SlowFetch {
        let (state, dest) = (tmp(), tmp());
        let messages = (0..60)
            .map(|i| message(&format!("m{i}"), b"x\r\n"))
            .collect();
        let config = Config {
            retr_delay: Some(delay),
            ..Config::default()
        };
        let server = Server::start(config, messages);
        let maildir = dest.path().join("md");
        let args = args(
            &server,
            "10",
            &["--all", "--maildir", maildir.to_str().unwrap()],
        );
        let state_home = state.path().to_str().unwrap().to_string();
        SlowFetch {
            _state: state,
            _dest: dest,
            server,
            args,
            state_home,
        }
    }

    fn env(&self) -> [(&str, &str); 2] {
        [
            ("MAILCTL_PASSWORD", "s3cret-pw"),
            ("XDG_STATE_HOME", &self.state_home),
        ]
    }
}

#[test]
fn progress_bar_fits_the_terminal_and_is_cleared_on_sigint() {
    let fetch = SlowFetch::start(Duration::from_millis(100));
    let bin = env!("CARGO_BIN_EXE_mailctl");
    let Some(shown) = pty_support::run(80, Some("messages"), bin, &fetch.args, &fetch.env()) else {
        return;
    };
    assert_eq!(shown.code, 130, "{:?}", shown.text);
    let (lines, widest) = pty_support::screen(&shown.text);
    assert!(widest < 80, "a line of {widest} columns: {:?}", shown.text);
    assert!(shown.text.contains("/60 messages ["), "{:?}", shown.text);
    // What is left on the screen: the summary lines, no bar.
    let left: Vec<&String> = lines.iter().filter(|l| !l.is_empty()).collect();
    assert!(left.iter().all(|l| !l.contains("messages [")), "{left:?}");
    assert!(left.last().unwrap().contains("interrupted:"), "{left:?}");
}

#[test]
fn a_second_sigint_ends_at_once_and_leaves_no_bar() {
    let fetch = SlowFetch::start(Duration::from_secs(3));
    let bin = env!("CARGO_BIN_EXE_mailctl");
    let started = Instant::now();
    let Some(shown) =
        pty_support::run_interrupted_twice(80, "messages", bin, &fetch.args, &fetch.env())
    else {
        return;
    };
    assert_eq!(shown.code, 130, "{:?}", shown.text);
    assert!(started.elapsed() < Duration::from_secs(3), "not at once");
    let (lines, _) = pty_support::screen(&shown.text);
    assert!(
        lines.iter().all(|l| !l.contains("messages [")),
        "a bar was left: {lines:?} from {:?}",
        shown.text
    );
    drop(fetch.server);
}
