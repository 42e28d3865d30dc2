//! The whole round trip on one machine: `mailctl send` into `mailctl serve`,
//! then `mailctl fetch` out of it, over TLS with certificate verification on.

mod serve_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serve_support::Server;

const BIN: &str = env!("CARGO_BIN_EXE_mailctl");

/// A server with a throwaway certificate, and the CA file clients trust.
fn tls_server() -> (Server, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let ca_arg = ca.to_str().unwrap().to_string();
    let server = Server::start_in(dir, &["--tls-self-signed", &ca_arg]);
    (server, ca)
}

fn mailctl(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("MAILCTL_PASSWORD", "any")
        .env("XDG_STATE_HOME", state_home())
        .stdin(Stdio::null())
        .output()
        .expect("mailctl runs")
}

/// The state directory of this test run, kept under cargo's target
/// directory so runs leave nothing behind in the system's temporary folder.
fn state_home() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("roundtrip-state-{}", std::process::id()))
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

fn send(server: &Server, ca: &Path, extra: &[&str]) -> Output {
    send_to_port(server.smtp, ca, extra)
}

fn send_to_port(port: u16, ca: &Path, extra: &[&str]) -> Output {
    let addr = format!("127.0.0.1:{port}");
    let mut args = vec![
        "send",
        "--server",
        &addr,
        "--ca-file",
        ca.to_str().unwrap(),
        "--from",
        "Alice <alice@example.test>",
    ];
    args.extend_from_slice(extra);
    mailctl(&args)
}

fn fetch(server: &Server, ca: &Path, user: &str, extra: &[&str]) -> Output {
    let addr = format!("127.0.0.1:{}", server.pop3);
    let mut args = vec![
        "fetch",
        "--server",
        &addr,
        "--ca-file",
        ca.to_str().unwrap(),
        "--user",
        user,
    ];
    args.extend_from_slice(extra);
    mailctl(&args)
}

fn only_child(dir: &Path) -> PathBuf {
    let entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries.into_iter().next().unwrap()
}

#[test]
fn attachment_and_non_ascii_text_survive_send_serve_fetch() {
    let (server, ca) = tls_server();
    let work = tempfile::tempdir().unwrap();
    let attachment = work.path().join("报告 2026.bin");
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(&attachment, &payload).unwrap();
    let body = "第一行\n.\n..two dots\n.leading\nlast line";
    let body_file = work.path().join("body.txt");
    fs::write(&body_file, body).unwrap();

    ok(&send(
        &server,
        &ca,
        &[
            "--to",
            "\"张三\" <bob@example.test>",
            "--subject",
            "测试邮件 — résumé",
            "--body-file",
            body_file.to_str().unwrap(),
            "--attach",
            attachment.to_str().unwrap(),
        ],
    ));

    let stored = server.files("bob", "new");
    assert_eq!(stored.len(), 1);
    let stored_bytes = fs::read(&stored[0]).unwrap();

    let listing = ok(&fetch(&server, &ca, "bob", &["--list"]));
    assert!(listing.contains("测试邮件 — résumé"), "{listing}");

    let out = work.path().join("out");
    ok(&fetch(
        &server,
        &ca,
        "bob",
        &["--all", "--save-dir", out.to_str().unwrap()],
    ));
    let folder = only_child(&out);
    // The saved message is exactly what the server stored.
    assert_eq!(fs::read(folder.join("message.eml")).unwrap(), stored_bytes);
    // Decoded parts: the attachment under its UTF-8 name, byte-exact, and
    // the text with its dot lines intact.
    assert_eq!(fs::read(folder.join("报告 2026.bin")).unwrap(), payload);
    let text = fs::read_to_string(folder.join("body.txt")).unwrap();
    assert_eq!(text.replace("\r\n", "\n").trim_end(), body);

    // `parse --save-dir` on the stored message writes the same files with
    // the same bytes (manifest included) as `fetch --save-dir` did.
    let parsed = work.path().join("parsed");
    ok(&mailctl(&[
        "parse",
        "--save-dir",
        parsed.to_str().unwrap(),
        stored[0].to_str().unwrap(),
    ]));
    assert_eq!(
        folder_contents(&only_child(&parsed)),
        folder_contents(&folder)
    );
}

/// Every file in a folder: name and bytes, sorted by name.
fn folder_contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 4,
        "{:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    files
}

#[test]
fn concurrent_senders_then_fetch_all_with_delete() {
    let (server, ca) = tls_server();
    let (port, ca) = (server.smtp, &ca);
    std::thread::scope(|scope| {
        for sender in 0..4 {
            scope.spawn(move || {
                for n in 0..5 {
                    let subject = format!("sender {sender} message {n}");
                    ok(&send_to_port(
                        port,
                        ca,
                        &[
                            "--to",
                            "carol@example.test",
                            "--subject",
                            &subject,
                            "--body",
                            "hi",
                        ],
                    ));
                }
            });
        }
    });
    assert_eq!(server.files("carol", "new").len(), 20);

    let work = tempfile::tempdir().unwrap();
    let maildir = work.path().join("inbox");
    let report = ok(&fetch(
        &server,
        ca,
        "carol",
        &[
            "--all",
            "--delete",
            "--json",
            "--maildir",
            maildir.to_str().unwrap(),
        ],
    ));
    let rows: serde_json::Value = serde_json::from_str(&report).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().all(|r| r["deleted"] == true), "{report}");
    assert_eq!(fs::read_dir(maildir.join("new")).unwrap().count(), 20);
    // Deleted on the server once QUIT committed it.
    assert_eq!(server.files("carol", "new").len(), 0);
    assert_eq!(server.files("carol", "cur").len(), 0);
}

#[test]
fn only_new_messages_are_fetched_the_second_time() {
    let (server, ca) = tls_server();
    let work = tempfile::tempdir().unwrap();
    let mbox = work.path().join("mbox");
    let mbox_arg = mbox.to_str().unwrap();
    ok(&send(
        &server,
        &ca,
        &[
            "--to",
            "dave@example.test",
            "--subject",
            "one",
            "--body",
            "1",
        ],
    ));
    let first = ok(&fetch(
        &server,
        &ca,
        "dave",
        &["--new", "--json", "--mbox", mbox_arg],
    ));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&first)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    ok(&send(
        &server,
        &ca,
        &[
            "--to",
            "dave@example.test",
            "--subject",
            "two",
            "--body",
            "2",
        ],
    ));
    let second = ok(&fetch(
        &server,
        &ca,
        "dave",
        &["--new", "--json", "--mbox", mbox_arg],
    ));
    let rows: serde_json::Value = serde_json::from_str(&second).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{second}");
    let text = fs::read_to_string(&mbox).unwrap();
    assert_eq!(
        text.matches("\nFrom ").count() + usize::from(text.starts_with("From ")),
        2
    );
    assert!(text.contains("Subject: one") && text.contains("Subject: two"));
}

/// Runs `examples/roundtrip.sh` with `envs` set and the given `PATH`.
fn example_script(envs: &[(&str, &str)]) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/roundtrip.sh");
    let mut command = Command::new("bash");
    command.arg(script).stdin(Stdio::null());
    for (name, value) in envs {
        command.env(name, value);
    }
    command.output().expect("bash runs")
}

#[test]
fn example_script_round_trip_succeeds() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let out = example_script(&[("MAILCTL", BIN), ("TMPDIR", tmp.to_str().unwrap())]);
    let stdout = ok(&out);
    assert!(stdout.contains("== mailctl serve"), "{stdout}");
    assert!(stdout.contains("round trip OK"), "{stdout}");
}

#[test]
fn example_script_says_it_is_building_and_lets_cargo_show_progress() {
    // A stand-in cargo records its arguments and fails, so nothing is built.
    let dir = tempfile::tempdir().unwrap();
    let args_file = dir.path().join("cargo-args");
    let fake_cargo = dir.path().join("cargo");
    fs::write(
        &fake_cargo,
        format!(
            "#!/bin/sh\necho \"$@\" > '{}'\nexit 3\n",
            args_file.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&fake_cargo, fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap()
    );
    let out = example_script(&[("PATH", &path)]);
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("building mailctl"), "{stdout}");
    assert!(stdout.contains("several minutes"), "{stdout}");
    let args = fs::read_to_string(&args_file).unwrap();
    assert!(args.starts_with("build --release"), "{args}");
    assert!(
        !args.contains("--quiet") && !args.split_whitespace().any(|a| a == "-q"),
        "{args}"
    );
}
