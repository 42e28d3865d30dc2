//! Interop tests: the `mailctl` binary against a real Postfix (submission)
//! and a real Dovecot (POP3) running on 127.0.0.1.
//!
//! The servers come from `tests/interop/setup.sh`, which writes an env file
//! with ports, users, passwords and the CA certificate; these tests run when
//! `MAILCTL_INTEROP_ENV` names that file:
//!
//! ```sh
//! sudo tests/interop/setup.sh
//! MAILCTL_INTEROP_ENV=/tmp/mailctl-interop/env cargo test --test interop
//! ```
//!
//! Without it, or when its servers do not answer, every test is reported
//! ignored with the reason (see `tests/outside`); when `CI` is set they fail
//! instead (CI must never skip them).
//!
//! Every test owns one mailbox user of the setup (carol, dave, ...) so the
//! tests can run in parallel; messages are told apart by a unique token.

mod outside;

#[path = "interop/oauth2.rs"]
mod oauth2;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mail_parser::{MessageParser, MimeHeaders};
use outside::Missing;

/// A test's body, run with the servers' settings.
type Body = fn(&InteropEnv);

/// Every test, by name.
const TESTS: &[(&str, Body)] = &[
    (
        "send_starttls_submission_with_auth_and_attachment",
        send_starttls_submission_with_auth_and_attachment,
    ),
    (
        "send_implicit_tls_with_auth_and_attachment",
        send_implicit_tls_with_auth_and_attachment,
    ),
    (
        "send_verbose_transcript_redacts_the_password",
        send_verbose_transcript_redacts_the_password,
    ),
    (
        "send_with_wrong_password_is_an_authentication_failure",
        send_with_wrong_password_is_an_authentication_failure,
    ),
    (
        "send_without_the_test_ca_fails_certificate_verification",
        send_without_the_test_ca_fails_certificate_verification,
    ),
    (
        "send_to_an_outside_domain_is_refused_by_the_server",
        send_to_an_outside_domain_is_refused_by_the_server,
    ),
    (
        "send_bcc_recipient_gets_the_mail_but_no_header_names_it",
        send_bcc_recipient_gets_the_mail_but_no_header_names_it,
    ),
    (
        "send_raw_with_t_takes_recipients_from_headers_and_drops_bcc",
        send_raw_with_t_takes_recipients_from_headers_and_drops_bcc,
    ),
    (
        "fetch_all_over_stls_with_user_pass",
        fetch_all_over_stls_with_user_pass,
    ),
    (
        "fetch_all_over_implicit_tls_with_auth_plain",
        fetch_all_over_implicit_tls_with_auth_plain,
    ),
    (
        "fetch_all_over_stls_with_apop",
        fetch_all_over_stls_with_apop,
    ),
    (
        "fetch_list_decodes_gb18030_subjects",
        fetch_list_decodes_gb18030_subjects,
    ),
    (
        "fetch_new_twice_takes_only_new_messages",
        fetch_new_twice_takes_only_new_messages,
    ),
    (
        "fetch_delete_empties_the_mailbox",
        fetch_delete_empties_the_mailbox,
    ),
    (
        "fetch_selected_messages_into_an_mbox",
        fetch_selected_messages_into_an_mbox,
    ),
    (
        "fetch_with_wrong_password_is_an_authentication_failure",
        fetch_with_wrong_password_is_an_authentication_failure,
    ),
    (
        "send_with_scram_sha256_by_default",
        send_with_scram_sha256_by_default,
    ),
    (
        "fetch_all_over_stls_with_scram_sha256",
        fetch_all_over_stls_with_scram_sha256,
    ),
    (
        "fetch_all_over_implicit_tls_with_scram_sha1",
        fetch_all_over_implicit_tls_with_scram_sha1,
    ),
    (
        "send_with_a_client_certificate_is_accepted_only_with_it",
        send_with_a_client_certificate_is_accepted_only_with_it,
    ),
    (
        "fetch_with_external_takes_the_user_from_the_client_certificate",
        fetch_with_external_takes_the_user_from_the_client_certificate,
    ),
    (
        "round_trip_send_through_postfix_fetch_from_dovecot",
        round_trip_send_through_postfix_fetch_from_dovecot,
    ),
    (
        "round_trip_save_dir_holds_the_decoded_parts",
        round_trip_save_dir_holds_the_decoded_parts,
    ),
    (
        "oauth2_send_and_fetch_with_oauthbearer_and_xoauth2",
        oauth2::oauth2_send_and_fetch_with_oauthbearer_and_xoauth2,
    ),
    (
        "oauth2_expired_token_is_refreshed_and_rotation_kept",
        oauth2::oauth2_expired_token_is_refreshed_and_rotation_kept,
    ),
    (
        "oauth2_refresh_token_command_keeps_the_token",
        oauth2::oauth2_refresh_token_command_keeps_the_token,
    ),
    (
        "oauth2_sendmail_mode_uses_the_token",
        oauth2::oauth2_sendmail_mode_uses_the_token,
    ),
    (
        "oauth2_concurrent_runs_renew_once",
        oauth2::oauth2_concurrent_runs_renew_once,
    ),
    (
        "oauth2_refused_cached_token_is_retried_once",
        oauth2::oauth2_refused_cached_token_is_retried_once,
    ),
    (
        "oauth2_device_login_end_to_end",
        oauth2::oauth2_device_login_end_to_end,
    ),
    (
        "oauth2_pkce_login_end_to_end",
        oauth2::oauth2_pkce_login_end_to_end,
    ),
    (
        "queue_run_sends_the_outbox_through_postfix",
        queue_run_sends_the_outbox_through_postfix,
    ),
    (
        "send_with_dsn_parameters_through_postfix",
        send_with_dsn_parameters_through_postfix,
    ),
];

fn main() -> ExitCode {
    let env = interop_env();
    outside::run(
        TESTS
            .iter()
            .map(|&(name, body)| {
                let env = env.clone();
                outside::trial(name, move || env, move |env| body(&env))
            })
            .collect(),
    )
}

/// The unicode subject every send test uses: CJK, an em dash, Latin accents.
const SUBJECT: &str = "测试邮件 — résumé";

/// "测试邮件 — résumé" encoded in gb18030, for messages a legacy mailer wrote.
const SUBJECT_GB18030: &[u8] = &[
    0xb2, 0xe2, 0xca, 0xd4, 0xd3, 0xca, 0xbc, 0xfe, 0x20, 0xa1, 0xaa, 0x20, 0x72, 0xa8, 0xa6, 0x73,
    0x75, 0x6d, 0xa8, 0xa6,
];

/// A text attachment with awkward content: non-ASCII, a line starting with a
/// dot, a lone dot line, trailing spaces and no final newline.
const ATTACHMENT_TEXT: &str = "Quarterly figures\n.hidden line\n.\nnaïve café 東京  \nlast line";

/// How long a delivery into the Maildir may take before a test gives up.
const DELIVERY_WAIT: Duration = Duration::from_secs(60);

/// How long one mailctl run may take before the test kills it and fails.
const RUN_LIMIT: Duration = Duration::from_secs(180);

/// The settings `tests/interop/setup.sh` wrote.
struct InteropEnv {
    vars: HashMap<String, String>,
}

impl InteropEnv {
    fn get(&self, key: &str) -> &str {
        self.vars
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing from the interop env file"))
    }

    fn port(&self, key: &str) -> u16 {
        self.get(key).parse().expect("port number")
    }

    fn server(&self, port_key: &str) -> String {
        format!("{}:{}", self.get("MAIL_HOST"), self.port(port_key))
    }

    fn ca_file(&self) -> &str {
        self.get("CA_FILE")
    }

    fn address(&self, user: &str) -> String {
        format!("{user}@{}", self.get("MAIL_DOMAIN"))
    }

    fn password(&self, user: &str) -> &str {
        self.get(&format!("USER_{}_PASSWORD", user.to_uppercase()))
    }

    fn maildir(&self, user: &str) -> PathBuf {
        PathBuf::from(self.get(&format!("USER_{}_MAILDIR", user.to_uppercase())))
    }

    /// `send --server SERVER --ca-file CA --user alice` on `port_key`,
    /// then `more`: what alice's sends share.
    fn alice_sends(&self, port_key: &str, more: &[&str]) -> Vec<String> {
        let server = self.server(port_key);
        ["send", "--server", &server, "--ca-file", self.ca_file()]
            .into_iter()
            .chain(["--user", "alice"])
            .chain(more.iter().copied())
            .map(str::to_string)
            .collect()
    }

    fn mail_owner(&self) -> (u32, u32) {
        (
            self.get("MAIL_UID").parse().expect("uid"),
            self.get("MAIL_GID").parse().expect("gid"),
        )
    }
}

/// Loads the env file named by `MAILCTL_INTEROP_ENV` and checks that its
/// servers answer; what is missing otherwise (CI provides both).
fn interop_env() -> Result<Arc<InteropEnv>, Missing> {
    let missing = |what: String| Missing {
        what,
        ci_provides: true,
    };
    let path = match std::env::var_os("MAILCTL_INTEROP_ENV") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => {
            return Err(missing(
                "MAILCTL_INTEROP_ENV is not set (see tests/interop/README.md)".into(),
            ))
        }
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| missing(format!("MAILCTL_INTEROP_ENV={}: {e}", path.display())))?;
    let vars = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let env = InteropEnv { vars };
    for key in [
        "SMTP_SUBMISSION_PORT",
        "SMTP_SMTPS_PORT",
        "POP3_PORT",
        "POP3S_PORT",
    ] {
        let server = env.server(key);
        let addr: SocketAddr = server
            .parse()
            .map_err(|e| missing(format!("{key}={server} in {}: {e}", path.display())))?;
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| {
            missing(format!(
                "the interop server at {server} ({key}) does not answer: {e}"
            ))
        })?;
    }
    Ok(Arc::new(env))
}

/// A token unique to this test run, to find our message among others.
fn token(label: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!(
        "{label}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs mailctl with `args`, the password in MAILCTL_PASSWORD, stdin closed
/// and its `--new` state kept under `state_home`.
fn mailctl<S: AsRef<OsStr> + std::fmt::Debug>(
    args: &[S],
    password: Option<&str>,
    state_home: &Path,
) -> Output {
    mailctl_with_stdin(args, password, state_home, None)
}

/// [`mailctl`] with `stdin` fed to the process when given.
fn mailctl_with_stdin<S: AsRef<OsStr> + std::fmt::Debug>(
    args: &[S],
    password: Option<&str>,
    state_home: &Path,
    stdin: Option<&[u8]>,
) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mailctl"));
    command
        .args(args)
        .env("XDG_STATE_HOME", state_home)
        .env_remove("MAILCTL_PASSWORD")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(password) = password {
        command.env("MAILCTL_PASSWORD", password);
    }
    let mut child = command.spawn().expect("run mailctl");
    let pid = child.id();
    let feeder = stdin.map(|bytes| {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        let bytes = bytes.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        })
    });
    // wait_with_output drains stdout and stderr while waiting; the channel
    // bounds the wait as a safety net against a hung client (not a timing
    // assertion).
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let output = match result.recv_timeout(RUN_LIMIT) {
        Ok(output) => output.expect("collect mailctl output"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("mailctl {args:?} still running after {RUN_LIMIT:?}: killed");
        }
    };
    if let Some(feeder) = feeder {
        feeder.join().expect("stdin writer");
    }
    output
}

/// Asserts that mailctl succeeded, showing its output if not.
fn assert_ok(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what}: mailctl exited with {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Asserts a failure with the given exit status and one error line.
fn assert_fails_with(output: &Output, code: i32, what: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(code),
        "{what}: wrong exit status\nstdout:\n{}\nstderr:\n{stderr}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        stderr.contains("mailctl: error: "),
        "{what}: no error line on stderr:\n{stderr}"
    );
}

/// All message files in a Maildir's new/ and cur/.
fn maildir_messages(maildir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(maildir.join(sub)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !name.to_string_lossy().starts_with('.') && entry.path().is_file() {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    files
}

/// Waits for Postfix to deliver the message containing `token` into
/// `maildir` and returns its bytes.
fn wait_for_delivery(maildir: &Path, token: &str) -> Vec<u8> {
    let started = Instant::now();
    loop {
        for path in maildir_messages(maildir) {
            if let Ok(bytes) = std::fs::read(&path) {
                if contains(&bytes, token.as_bytes()) {
                    return bytes;
                }
            }
        }
        assert!(
            started.elapsed() < DELIVERY_WAIT,
            "no message with {token} arrived in {} (see the postfix log)",
            maildir.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Empties a test user's mailbox (Dovecot's own index files stay).
fn empty_maildir(maildir: &Path) {
    for path in maildir_messages(maildir) {
        std::fs::remove_file(&path).expect("remove old message");
    }
}

/// Puts `messages` into a Maildir the way a delivery agent does (tmp/, then
/// rename into new/), owned by the mail user so Dovecot may read and delete
/// them. The files keep the exact bytes given (CRLF line ends, so what POP3
/// sends is the same bytes).
fn fill_maildir(env: &InteropEnv, maildir: &Path, messages: &[Vec<u8>]) {
    let (uid, gid) = env.mail_owner();
    let stamp = token("fill");
    for (i, message) in messages.iter().enumerate() {
        let name = format!("{stamp}.M{i}.mailctl-interop");
        let tmp = maildir.join("tmp").join(&name);
        std::fs::write(&tmp, message).expect("write message into tmp/");
        std::os::unix::fs::chown(&tmp, Some(uid), Some(gid))
            .expect("chown the message to the mail user (run the interop tests as root)");
        std::fs::rename(
            &tmp,
            maildir
                .join("new")
                .join(format!("{name},S={}", message.len())),
        )
        .expect("move message into new/");
    }
}

/// A message to put in a mailbox: CRLF line ends, a gb18030 subject,
/// dot-leading lines, 8-bit non-UTF-8 body bytes and `token`.
fn sample_message(token: &str, n: usize) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(b"From: =?utf-8?Q?Z=C3=BCrich_Ops?= <ops@example.test>\r\n");
    m.extend_from_slice(b"To: someone@example.test\r\n");
    m.extend_from_slice(b"Subject: =?gb18030?B?");
    m.extend_from_slice(base64(SUBJECT_GB18030).as_bytes());
    m.extend_from_slice(format!("?= {n}\r\n").as_bytes());
    m.extend_from_slice(b"Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n");
    m.extend_from_slice(format!("Message-ID: <{token}.{n}@example.test>\r\n").as_bytes());
    m.extend_from_slice(b"MIME-Version: 1.0\r\n");
    m.extend_from_slice(b"Content-Type: text/plain; charset=gb18030\r\n");
    m.extend_from_slice(b"Content-Transfer-Encoding: 8bit\r\n\r\n");
    m.extend_from_slice(format!("token {token} message {n}\r\n").as_bytes());
    m.extend_from_slice(b".starts with a dot\r\n..starts with two dots\r\n.\r\n");
    m.extend_from_slice(SUBJECT_GB18030);
    m.extend_from_slice(b"\r\n");
    for line in 0..(20 + n * 7) {
        m.extend_from_slice(format!("line {line} of message {n}\r\n").as_bytes());
    }
    m
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Every `message.eml` under a `--save-dir` directory.
fn saved_emls(dir: &Path) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    find_files(dir, &mut |path| {
        if path.file_name().is_some_and(|n| n == "message.eml") {
            found.push(std::fs::read(path).expect("read saved message"));
        }
    });
    found.sort();
    found
}

/// Every file named `name` under `dir`.
fn files_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    find_files(dir, &mut |path| {
        if path.file_name().is_some_and(|n| n == name) {
            found.push(path.to_path_buf());
        }
    });
    found
}

fn find_files(dir: &Path, visit: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            find_files(&path, visit);
        } else {
            visit(&path);
        }
    }
}

/// The JSON objects in `--json` output that describe one message each (they
/// carry a UIDL), whatever the document's outer shape.
fn json_messages(stdout: &[u8]) -> Vec<serde_json::Value> {
    let text = String::from_utf8_lossy(stdout);
    let mut found = Vec::new();
    let mut documents = Vec::new();
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(doc) => documents.push(doc),
        Err(_) => {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                documents.push(
                    serde_json::from_str(line)
                        .unwrap_or_else(|e| panic!("--json output is not JSON ({e}):\n{text}")),
                );
            }
        }
    }
    fn walk(value: &serde_json::Value, found: &mut Vec<serde_json::Value>) {
        match value {
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
            serde_json::Value::Object(map) => {
                if map.contains_key("uidl") {
                    found.push(value.clone());
                } else {
                    map.values().for_each(|v| walk(v, found));
                }
            }
            _ => {}
        }
    }
    documents.iter().for_each(|d| walk(d, &mut found));
    found
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

/// Normalises line ends to LF (Maildir files written by Postfix use LF).
fn lf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

// ------------------------------------------------------------------ send

/// Sends through Postfix with `tls` on `port_key`, alice to `to_user`, with
/// the unicode subject and a text attachment; returns the token in the body.
fn send_with_attachment(
    env: &InteropEnv,
    port_key: &str,
    tls: &str,
    to_user: &str,
    attachments: &[&Path],
) -> (String, Output) {
    let token = token(tls);
    let state = temp_dir();
    let from = env.address("alice");
    let to = env.address(to_user);
    let body = format!("Hello Bob,\n\nthe report is attached.\ntoken {token}\n");
    let mut args = env.alice_sends(
        port_key,
        &[
            "--tls",
            tls,
            "--from",
            &from,
            "--to",
            &to,
            "--subject",
            SUBJECT,
            "--body",
            &body,
            "--timeout",
            "30",
        ],
    );
    for path in attachments {
        args.push("--attach".into());
        args.push(path.to_str().expect("utf-8 path").into());
    }
    let output = mailctl(&args, Some(env.password("alice")), state.path());
    (token, output)
}

/// Checks a message Postfix delivered: decoded subject, sender, recipient,
/// body text and the attachment's name and exact bytes.
fn check_delivered(raw: &[u8], token: &str, to: &str, attachment_name: &str, attachment: &[u8]) {
    let message = MessageParser::default()
        .parse(raw)
        .expect("the delivered message parses");
    assert_eq!(message.subject(), Some(SUBJECT), "decoded Subject");
    let from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address());
    assert_eq!(from, Some("alice@example.test"), "From");
    let to_header = message
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.address());
    assert_eq!(to_header, Some(to), "To");
    assert!(message.message_id().is_some(), "a Message-ID was generated");
    assert!(message.date().is_some(), "a Date was generated");
    let body = message.body_text(0).expect("a text body");
    assert!(
        body.contains(&format!("token {token}")),
        "body text: {body:?}"
    );
    let part = message
        .attachments()
        .find(|p| p.attachment_name() == Some(attachment_name))
        .unwrap_or_else(|| panic!("no attachment named {attachment_name}"));
    assert_eq!(part.contents(), attachment, "attachment bytes");
    assert!(
        !contains(raw, b"pw-alice"),
        "the password must not appear in the message"
    );
}

fn send_starttls_submission_with_auth_and_attachment(env: &InteropEnv) {
    let dir = temp_dir();
    let attachment = dir.path().join("report.txt");
    std::fs::write(&attachment, ATTACHMENT_TEXT).unwrap();
    let (token, output) = send_with_attachment(
        env,
        "SMTP_SUBMISSION_PORT",
        "starttls",
        "carol",
        &[&attachment],
    );
    assert_ok(&output, "send over STARTTLS (587-style submission)");
    let raw = wait_for_delivery(&env.maildir("carol"), &token);
    // Postfix records how the message came in.
    assert!(contains(&raw, b"using TLS"), "Received: header shows TLS");
    assert!(
        contains(&raw, b"Authenticated sender: alice"),
        "SMTP AUTH was used"
    );
    check_delivered(
        &raw,
        &token,
        "carol@example.test",
        "report.txt",
        ATTACHMENT_TEXT.as_bytes(),
    );
}

fn send_implicit_tls_with_auth_and_attachment(env: &InteropEnv) {
    let dir = temp_dir();
    let attachment = dir.path().join("notes.txt");
    std::fs::write(&attachment, ATTACHMENT_TEXT).unwrap();
    let (token, output) =
        send_with_attachment(env, "SMTP_SMTPS_PORT", "implicit", "carol", &[&attachment]);
    assert_ok(&output, "send over implicit TLS (465-style)");
    let raw = wait_for_delivery(&env.maildir("carol"), &token);
    assert!(contains(&raw, b"using TLS"), "Received: header shows TLS");
    assert!(
        contains(&raw, b"Authenticated sender: alice"),
        "SMTP AUTH was used"
    );
    check_delivered(
        &raw,
        &token,
        "carol@example.test",
        "notes.txt",
        ATTACHMENT_TEXT.as_bytes(),
    );
}

fn send_verbose_transcript_redacts_the_password(env: &InteropEnv) {
    let token = token("verbose");
    let state = temp_dir();
    let output = mailctl(
        &env.alice_sends(
            "SMTP_SUBMISSION_PORT",
            &[
                "-v",
                "--from",
                "alice@example.test",
                "--to",
                "carol@example.test",
                "--subject",
                &token,
                "--body",
                "verbose run",
            ],
        ),
        Some(env.password("alice")),
        state.path(),
    );
    assert_ok(&output, "send -v (port 10587: STARTTLS by default)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("STARTTLS"),
        "transcript shows STARTTLS:\n{stderr}"
    );
    assert!(stderr.contains("AUTH"), "transcript shows AUTH:\n{stderr}");
    assert!(
        stderr.contains("<redacted>"),
        "AUTH payload redacted:\n{stderr}"
    );
    assert!(
        !stderr.contains(env.password("alice")),
        "password leaked:\n{stderr}"
    );
    let plain = base64(format!("\0alice\0{}", env.password("alice")).as_bytes());
    assert!(
        !stderr.contains(&plain),
        "AUTH PLAIN payload leaked:\n{stderr}"
    );
    wait_for_delivery(&env.maildir("carol"), &token);
}

/// A send from alice over STARTTLS that must be refused: `to` with
/// `password`.
fn refused_send(env: &InteropEnv, to: &str, password: &str) -> Output {
    let state = temp_dir();
    mailctl(
        &env.alice_sends(
            "SMTP_SUBMISSION_PORT",
            &[
                "--tls",
                "starttls",
                "--from",
                "alice@example.test",
                "--to",
                to,
                "--subject",
                "refused",
                "--body",
                "must not be sent",
            ],
        ),
        Some(password),
        state.path(),
    )
}

fn send_with_wrong_password_is_an_authentication_failure(env: &InteropEnv) {
    let output = refused_send(env, "carol@example.test", "not-the-password");
    assert_fails_with(&output, 77, "send with a wrong password");
}

fn send_without_the_test_ca_fails_certificate_verification(env: &InteropEnv) {
    let state = temp_dir();
    let server = env.server("SMTP_SMTPS_PORT");
    let output = mailctl(
        &[
            "send",
            "--server",
            &server,
            "--tls",
            "implicit",
            "--user",
            "alice",
            "--from",
            "alice@example.test",
            "--to",
            "carol@example.test",
            "--subject",
            "untrusted",
            "--body",
            "must not be sent",
        ],
        Some(env.password("alice")),
        state.path(),
    );
    assert_fails_with(
        &output,
        76,
        "implicit TLS to a server signed by an unknown CA",
    );
}

fn send_to_an_outside_domain_is_refused_by_the_server(env: &InteropEnv) {
    let output = refused_send(env, "someone@outside.invalid", env.password("alice"));
    // Postfix refuses the only recipient with a 5xx: exit 67 (every
    // recipient refused), quoting the server's reply.
    assert_fails_with(&output, 67, "every recipient refused");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("55"), "the 5xx reply is quoted:\n{stderr}");
}

/// The header section of a delivered message, unfolded enough to search.
fn header_section(raw: &[u8]) -> String {
    let raw = lf(raw);
    let end = raw
        .windows(2)
        .position(|w| w == b"\n\n")
        .unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

/// Whether a header field `name:` is present (Postfix's own trace fields
/// Delivered-To and X-Original-To name the envelope recipient, so callers
/// look only at the fields they mean).
fn has_field(headers: &str, name: &str) -> bool {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    headers
        .lines()
        .any(|line| line.to_ascii_lowercase().starts_with(&prefix))
}

fn field_values(headers: &str, name: &str) -> String {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    let mut values = String::new();
    let mut inside = false;
    for line in headers.lines() {
        if line.starts_with([' ', '\t']) {
            if inside {
                values.push_str(line);
            }
            continue;
        }
        inside = line.to_ascii_lowercase().starts_with(&prefix);
        if inside {
            values.push_str(line);
            values.push('\n');
        }
    }
    values
}

fn send_bcc_recipient_gets_the_mail_but_no_header_names_it(env: &InteropEnv) {
    let token = token("bcc");
    let state = temp_dir();
    let output = mailctl(
        &env.alice_sends(
            "SMTP_SUBMISSION_PORT",
            &[
                "--from",
                "\"Алиса\" <alice@example.test>",
                "--to",
                "\"张三\" <carol@example.test>",
                "--bcc",
                "oscar@example.test",
                "--subject",
                &token,
                "--body",
                &format!("bcc check {token}"),
            ],
        ),
        Some(env.password("alice")),
        state.path(),
    );
    assert_ok(&output, "send with --bcc");
    let to_copy = wait_for_delivery(&env.maildir("carol"), &token);
    let bcc_copy = wait_for_delivery(&env.maildir("oscar"), &token);
    for (who, raw) in [("carol", &to_copy), ("oscar", &bcc_copy)] {
        let headers = header_section(raw);
        assert!(
            !has_field(&headers, "Bcc"),
            "{who}'s copy has a Bcc field:\n{headers}"
        );
        for field in ["To", "Cc", "From", "Reply-To"] {
            assert!(
                !field_values(&headers, field).contains("oscar"),
                "{who}'s copy names the Bcc recipient in {field}:\n{headers}"
            );
        }
        let message = MessageParser::default().parse(&raw[..]).unwrap();
        let to = message.to().and_then(|a| a.first()).unwrap();
        assert_eq!(to.name(), Some("张三"), "display name decoded");
        let from = message.from().and_then(|a| a.first()).unwrap();
        assert_eq!(from.name(), Some("Алиса"), "display name decoded");
    }
}

fn send_raw_with_t_takes_recipients_from_headers_and_drops_bcc(env: &InteropEnv) {
    let token = token("raw");
    let state = temp_dir();
    let raw = format!(
        "From: alice@example.test\r\n\
         To: carol@example.test\r\n\
         Bcc: oscar@example.test\r\n\
         Subject: raw {token}\r\n\
         Message-ID: <{token}@example.test>\r\n\
         \r\n\
         .a line starting with a dot\r\n\
         ..and one with two\r\n\
         .\r\n\
         token {token}\r\n"
    );
    let output = mailctl_with_stdin(
        &env.alice_sends(
            "SMTP_SMTPS_PORT",
            &[
                "--tls",
                "implicit",
                "--from",
                "alice@example.test",
                "--raw",
                "-t",
            ],
        ),
        Some(env.password("alice")),
        state.path(),
        Some(raw.as_bytes()),
    );
    assert_ok(&output, "send --raw -t");
    let to_copy = wait_for_delivery(&env.maildir("carol"), &token);
    let bcc_copy = wait_for_delivery(&env.maildir("oscar"), &token);
    let body = "\n.a line starting with a dot\n..and one with two\n.\n";
    for (who, copy) in [("carol", &to_copy), ("oscar", &bcc_copy)] {
        let headers = header_section(copy);
        assert!(
            !has_field(&headers, "Bcc"),
            "{who}'s copy has a Bcc field:\n{headers}"
        );
        assert!(
            contains(&lf(copy), body.as_bytes()),
            "{who}'s copy: dot lines arrive exactly as written"
        );
        assert!(contains(copy, format!("<{token}@example.test>").as_bytes()));
    }
}

// ------------------------------------------------------------------ fetch

/// Fills `user`'s mailbox with `count` sample messages; returns them.
fn fresh_mailbox(env: &InteropEnv, user: &str, count: usize) -> (String, Vec<Vec<u8>>) {
    let token = token(user);
    let maildir = env.maildir(user);
    empty_maildir(&maildir);
    let messages: Vec<Vec<u8>> = (1..=count).map(|n| sample_message(&token, n)).collect();
    fill_maildir(env, &maildir, &messages);
    (token, messages)
}

/// `mailctl fetch` as `user` on `port_key` with `tls` and `auth`, plus `extra`.
fn fetch(
    env: &InteropEnv,
    user: &str,
    port_key: &str,
    tls: &str,
    auth: &str,
    extra: &[&str],
    state_home: &Path,
) -> Output {
    let server = env.server(port_key);
    let mut args = vec![
        "fetch",
        "--server",
        &server,
        "--tls",
        tls,
        "--ca-file",
        env.ca_file(),
        "--user",
        user,
        "--auth",
        auth,
        "--timeout",
        "30",
    ];
    args.extend_from_slice(extra);
    mailctl(&args, Some(env.password(user)), state_home)
}

/// Fetches everything into a --save-dir and checks every message byte for byte.
fn fetch_all_and_compare(env: &InteropEnv, user: &str, port_key: &str, tls: &str, auth: &str) {
    let (_, messages) = fresh_mailbox(env, user, 3);
    let state = temp_dir();
    let out = temp_dir();
    let save_dir = out.path().join("saved");
    let output = fetch(
        env,
        user,
        port_key,
        tls,
        auth,
        &[
            "--all",
            "--save-dir",
            save_dir.to_str().unwrap(),
            "--json",
            "-v",
        ],
        state.path(),
    );
    assert_ok(
        &output,
        &format!("fetch --all over {tls} with --auth {auth}"),
    );
    let mut expected = messages.clone();
    expected.sort();
    assert_eq!(
        saved_emls(&save_dir),
        expected,
        "message.eml files hold the exact bytes"
    );
    let rows = json_messages(&output.stdout);
    assert_eq!(rows.len(), 3, "--json reports each message: {rows:?}");
    for row in &rows {
        assert_eq!(row["deleted"], serde_json::Value::Bool(false), "{row}");
        let saved = row["saved"]
            .as_str()
            .unwrap_or_else(|| panic!("saved: {row}"));
        assert!(Path::new(saved).starts_with(&save_dir), "{row}");
    }
    // The transcript shows the security and login steps actually taken,
    // never the password.
    let transcript = String::from_utf8_lossy(&output.stderr);
    let login = match auth {
        "user" => "C: PASS <redacted>",
        "apop" => "C: APOP",
        "plain" => "C: AUTH PLAIN",
        "scram-sha-256" => "C: AUTH SCRAM-SHA-256 <redacted>",
        "scram-sha-1" => "C: AUTH SCRAM-SHA-1 <redacted>",
        other => panic!("no transcript check for --auth {other}"),
    };
    assert!(transcript.contains(login), "{login} in:\n{transcript}");
    if tls == "starttls" {
        assert!(transcript.contains("C: STLS"), "STLS in:\n{transcript}");
    }
    assert!(
        !transcript.contains(env.password(user)),
        "password leaked:\n{transcript}"
    );
    // Without --delete the mailbox keeps its messages.
    assert_eq!(maildir_messages(&env.maildir(user)).len(), 3);
}

fn fetch_all_over_stls_with_user_pass(env: &InteropEnv) {
    fetch_all_and_compare(env, "dave", "POP3_PORT", "starttls", "user");
}

fn fetch_all_over_implicit_tls_with_auth_plain(env: &InteropEnv) {
    fetch_all_and_compare(env, "erin", "POP3S_PORT", "implicit", "plain");
}

fn fetch_all_over_stls_with_apop(env: &InteropEnv) {
    fetch_all_and_compare(env, "frank", "POP3_PORT", "starttls", "apop");
}

fn fetch_all_over_stls_with_scram_sha256(env: &InteropEnv) {
    fetch_all_and_compare(env, "quinn", "POP3_PORT", "starttls", "scram-sha-256");
}

fn fetch_all_over_implicit_tls_with_scram_sha1(env: &InteropEnv) {
    fetch_all_and_compare(env, "rupert", "POP3S_PORT", "implicit", "scram-sha-1");
}

/// `--auth auto` picks SCRAM-SHA-256 from Postfix's list (Dovecot SASL
/// behind it), Postfix accepts the proof and mailctl the server's
/// signature; the transcript shows neither the proof nor the password.
fn send_with_scram_sha256_by_default(env: &InteropEnv) {
    let token = token("scram");
    let state = temp_dir();
    let output = mailctl(
        &env.alice_sends(
            "SMTP_SUBMISSION_PORT",
            &[
                "-v",
                "--from",
                "alice@example.test",
                "--to",
                "sybil@example.test",
                "--subject",
                &token,
                "--body",
                "scram",
            ],
        ),
        Some(env.password("alice")),
        state.path(),
    );
    assert_ok(&output, "send with --auth auto");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("C: AUTH SCRAM-SHA-256 <redacted>"),
        "SCRAM-SHA-256 chosen:\n{stderr}"
    );
    assert!(!stderr.contains(",p="), "proof leaked:\n{stderr}");
    assert!(
        !stderr.contains(env.password("alice")),
        "password leaked:\n{stderr}"
    );
    let raw = wait_for_delivery(&env.maildir("sybil"), &token);
    assert!(contains(&raw, b"Authenticated sender: alice"));
}

/// Postfix's client-certificate listener relays only for the certificate
/// listed by fingerprint: mailctl's `--cert`/`--key` get the message in;
/// no certificate, or one Postfix does not know, gets 554 and exit 67.
fn send_with_a_client_certificate_is_accepted_only_with_it(env: &InteropEnv) {
    let token = token("clientcert");
    let server = env.server("SMTP_CLIENTCERT_PORT");
    let send = |cert: Option<(&str, &str)>| {
        let state = temp_dir();
        let mut args = vec!["send", "--server", &server, "--ca-file", env.ca_file()];
        if let Some((cert, key)) = cert {
            args.extend(["--cert", cert, "--key", key]);
        }
        args.extend([
            "--from",
            "alice@example.test",
            "--to",
            "sybil@example.test",
            "--subject",
            &token,
            "--body",
            "sent with a client certificate",
        ]);
        mailctl(&args, None, state.path())
    };
    let output = send(Some((env.get("CLIENT_CERT"), env.get("CLIENT_KEY"))));
    assert_ok(&output, "send with the listed client certificate");
    let raw = wait_for_delivery(&env.maildir("sybil"), &token);
    assert!(contains(&raw, b"using TLS"));
    for (what, cert) in [
        ("without a client certificate", None),
        (
            "with an unknown client certificate",
            Some((env.get("STRANGER_CERT"), env.get("STRANGER_KEY"))),
        ),
    ] {
        let output = send(cert);
        assert_fails_with(&output, 67, what);
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("554 5.7.1"),
            "{what}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Dovecot takes the user (quinn) from the test CA's client certificate:
/// `--auth auto` logs in with SASL EXTERNAL and never runs the password
/// command; a certificate the CA did not sign gets no login (77).
fn fetch_with_external_takes_the_user_from_the_client_certificate(env: &InteropEnv) {
    let server = env.server("POP3S_PORT");
    let state = temp_dir();
    let marker = state.path().join("password-asked");
    let password_command = format!("touch '{}'; echo wrong", marker.display());
    let list = |cert: &str, key: &str, auth: &str| {
        let args = [
            "fetch",
            "-v",
            "--server",
            &server,
            "--tls",
            "implicit",
            "--ca-file",
            env.ca_file(),
            "--user",
            "quinn",
            "--cert",
            cert,
            "--key",
            key,
            "--auth",
            auth,
            "--password-command",
            &password_command,
            "--list",
            "--timeout",
            "30",
        ];
        mailctl(&args, None, state.path())
    };
    // Read-only: quinn's mailbox is another test's, which this never changes.
    let output = list(env.get("CLIENT_CERT"), env.get("CLIENT_KEY"), "auto");
    assert_ok(&output, "fetch --list with the client certificate");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("C: AUTH EXTERNAL <redacted>"), "{stderr}");
    assert!(!marker.exists(), "the password command ran");
    let output = list(
        env.get("STRANGER_CERT"),
        env.get("STRANGER_KEY"),
        "external",
    );
    assert_fails_with(
        &output,
        77,
        "EXTERNAL with a certificate the CA did not sign",
    );
    assert!(!marker.exists(), "the password command ran");
}

fn fetch_list_decodes_gb18030_subjects(env: &InteropEnv) {
    // The list is read-only; a mailbox of its own keeps it independent.
    let (token, _) = fresh_mailbox(env, "judy", 2);
    let state = temp_dir();
    let output = fetch(
        env,
        "judy",
        "POP3S_PORT",
        "implicit",
        "user",
        &["--list", "--json"],
        state.path(),
    );
    assert_ok(&output, "fetch --list --json");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let rows = json_messages(&output.stdout);
    assert_eq!(rows.len(), 2, "two rows:\n{stdout}");
    assert!(
        stdout.contains(&format!("{SUBJECT} 1")) && stdout.contains(&format!("{SUBJECT} 2")),
        "gb18030 subjects decoded in the listing:\n{stdout}"
    );
    for row in &rows {
        assert_eq!(
            row["from"], "Zürich Ops <ops@example.test>",
            "the encoded sender name is decoded: {row}"
        );
    }
    assert!(!stdout.contains(&token), "--list does not print bodies");
}

fn fetch_new_twice_takes_only_new_messages(env: &InteropEnv) {
    let (token, first) = fresh_mailbox(env, "grace", 2);
    let state = temp_dir();
    let out = temp_dir();
    let target = out.path().join("inbox");
    let target_arg = target.to_str().unwrap().to_string();
    let run = |what: &str| {
        let output = fetch(
            env,
            "grace",
            "POP3_PORT",
            "starttls",
            "user",
            &["--new", "--maildir", &target_arg, "--json"],
            state.path(),
        );
        assert_ok(&output, what);
        output
    };
    let output = run("first fetch --new");
    assert_eq!(
        json_messages(&output.stdout).len(),
        2,
        "first run takes both"
    );
    let mut got: Vec<Vec<u8>> = maildir_messages(&target)
        .iter()
        .map(|p| lf(&std::fs::read(p).unwrap()))
        .collect();
    got.sort();
    let mut want: Vec<Vec<u8>> = first.iter().map(|m| lf(m)).collect();
    want.sort();
    assert_eq!(got, want, "delivered into the local Maildir intact");

    let output = run("second fetch --new, nothing new");
    assert_eq!(
        json_messages(&output.stdout).len(),
        0,
        "nothing new the second time"
    );
    assert_eq!(maildir_messages(&target).len(), 2);

    let third = sample_message(&token, 3);
    fill_maildir(env, &env.maildir("grace"), std::slice::from_ref(&third));
    let output = run("third fetch --new after one more arrived");
    assert_eq!(json_messages(&output.stdout).len(), 1, "only the new one");
    let all = maildir_messages(&target);
    assert_eq!(all.len(), 3);
    assert!(all
        .iter()
        .any(|p| lf(&std::fs::read(p).unwrap()) == lf(&third)));
}

fn fetch_delete_empties_the_mailbox(env: &InteropEnv) {
    let (_, messages) = fresh_mailbox(env, "heidi", 4);
    let state = temp_dir();
    let out = temp_dir();
    let save_dir = out.path().join("saved");
    let output = fetch(
        env,
        "heidi",
        "POP3S_PORT",
        "implicit",
        "plain",
        &[
            "--all",
            "--delete",
            "--save-dir",
            save_dir.to_str().unwrap(),
            "--json",
        ],
        state.path(),
    );
    assert_ok(&output, "fetch --all --delete");
    let mut expected = messages.clone();
    expected.sort();
    assert_eq!(
        saved_emls(&save_dir),
        expected,
        "every message saved before deletion"
    );
    assert_eq!(
        maildir_messages(&env.maildir("heidi")),
        Vec::<PathBuf>::new(),
        "Dovecot removed the messages"
    );
    // And POP3 agrees: the listing is empty.
    let output = fetch(
        env,
        "heidi",
        "POP3_PORT",
        "starttls",
        "user",
        &["--list", "--json"],
        state.path(),
    );
    assert_ok(&output, "fetch --list after --delete");
    assert_eq!(json_messages(&output.stdout).len(), 0);
}

/// Reverses mboxrd: splits at `From ` separator lines and removes one `>`
/// from every `>*From ` line.
fn split_mboxrd(mbox: &[u8]) -> Vec<Vec<u8>> {
    let mut messages: Vec<Vec<u8>> = Vec::new();
    for line in mbox.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"From ") {
            messages.push(Vec::new());
            continue;
        }
        let current = messages.last_mut().expect("mbox starts with a From line");
        let quoted = line.iter().take_while(|&&b| b == b'>').count();
        if quoted > 0 && line[quoted..].starts_with(b"From ") {
            current.extend_from_slice(&line[1..]);
        } else {
            current.extend_from_slice(line);
        }
    }
    // Each message is followed by the blank line that separates it from the
    // next From line.
    for message in &mut messages {
        if message.ends_with(b"\n\n") {
            message.pop();
        }
    }
    messages
}

fn fetch_selected_messages_into_an_mbox(env: &InteropEnv) {
    let token = token("mbox");
    let maildir = env.maildir("peggy");
    empty_maildir(&maildir);
    let mut messages: Vec<Vec<u8>> = (1..=4).map(|n| sample_message(&token, n)).collect();
    // A body line that mbox readers would take for a separator, and one
    // already quoted.
    messages[2].extend_from_slice(b"From the desk of Ops\r\n>From quoted already\r\n");
    fill_maildir(env, &maildir, &messages);
    let state = temp_dir();
    let out = temp_dir();
    let mbox = out.path().join("inbox.mbox");
    let output = fetch(
        env,
        "peggy",
        "POP3_PORT",
        "starttls",
        "user",
        &[
            "--retr",
            "1,3-4",
            "--mbox",
            mbox.to_str().unwrap(),
            "--json",
        ],
        state.path(),
    );
    assert_ok(&output, "fetch --retr 1,3-4 --mbox");
    assert_eq!(
        json_messages(&output.stdout).len(),
        3,
        "three messages taken"
    );
    let raw = std::fs::read(&mbox).expect("the mbox was written");
    // Dovecot numbers messages in delivery order, which fill_maildir keeps.
    let got = split_mboxrd(&raw);
    let want: Vec<Vec<u8>> = [0, 2, 3].iter().map(|&i| lf(&messages[i])).collect();
    assert_eq!(got.len(), 3, "three messages in the mbox");
    for (n, (got, want)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            String::from_utf8_lossy(got),
            String::from_utf8_lossy(want),
            "mbox message {n} (LF line ends, mboxrd-unquoted) equals the original"
        );
    }
    assert!(
        contains(&raw, b"\n>From the desk of Ops\n"),
        "From line quoted"
    );
    assert!(
        contains(&raw, b"\n>>From quoted already\n"),
        "quoted line quoted again"
    );
}

fn fetch_with_wrong_password_is_an_authentication_failure(env: &InteropEnv) {
    let state = temp_dir();
    let server = env.server("POP3_PORT");
    let output = mailctl(
        &[
            "fetch",
            "--server",
            &server,
            "--tls",
            "starttls",
            "--ca-file",
            env.ca_file(),
            "--user",
            "judy",
            "--auth",
            "user",
            "--list",
        ],
        Some("not-the-password"),
        state.path(),
    );
    assert_fails_with(&output, 77, "fetch with a wrong password");
}

// ------------------------------------------------------------------ round trip

/// Sends alice -> `user` through Postfix with a unicode-named text attachment
/// and a binary one, waits for delivery, fetches it back from Dovecot into a
/// --save-dir and returns (saved dir, delivered bytes, fetched message.eml,
/// text attachment, binary attachment, token).
struct RoundTrip {
    _dir: tempfile::TempDir,
    save_dir: PathBuf,
    delivered: Vec<u8>,
    fetched: Vec<u8>,
    blob: Vec<u8>,
    token: String,
}

const ROUND_TRIP_TEXT_NAME: &str = "报告 résumé.txt";

fn round_trip(env: &InteropEnv, user: &str) -> RoundTrip {
    let maildir = env.maildir(user);
    empty_maildir(&maildir);
    let dir = temp_dir();
    let text = dir.path().join(ROUND_TRIP_TEXT_NAME);
    std::fs::write(&text, ATTACHMENT_TEXT).unwrap();
    let binary = dir.path().join("blob.bin");
    let blob: Vec<u8> = (0..70_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    std::fs::write(&binary, &blob).unwrap();

    let (token, output) = send_with_attachment(
        env,
        "SMTP_SUBMISSION_PORT",
        "starttls",
        user,
        &[&text, &binary],
    );
    assert_ok(&output, "send for the round trip");
    let delivered = wait_for_delivery(&maildir, &token);

    let state = temp_dir();
    let save_dir = dir.path().join("saved");
    let output = fetch(
        env,
        user,
        "POP3S_PORT",
        "implicit",
        "user",
        &["--all", "--save-dir", save_dir.to_str().unwrap()],
        state.path(),
    );
    assert_ok(&output, "fetch for the round trip");
    let mut saved = saved_emls(&save_dir);
    assert_eq!(saved.len(), 1, "one message fetched");
    RoundTrip {
        _dir: dir,
        save_dir,
        delivered,
        fetched: saved.remove(0),
        blob,
        token,
    }
}

fn round_trip_send_through_postfix_fetch_from_dovecot(env: &InteropEnv) {
    let trip = round_trip(env, "ivan");
    // Postfix stores LF line ends; POP3 sends CRLF: same message otherwise.
    assert_eq!(
        lf(&trip.fetched),
        lf(&trip.delivered),
        "fetched bytes = delivered bytes"
    );
    check_delivered(
        &trip.fetched,
        &trip.token,
        "ivan@example.test",
        ROUND_TRIP_TEXT_NAME,
        ATTACHMENT_TEXT.as_bytes(),
    );
    let message = MessageParser::default().parse(&trip.fetched[..]).unwrap();
    let part = message
        .attachments()
        .find(|p| p.attachment_name() == Some("blob.bin"))
        .expect("binary attachment");
    assert_eq!(part.contents(), &trip.blob[..], "binary attachment bytes");
}

fn round_trip_save_dir_holds_the_decoded_parts(env: &InteropEnv) {
    let trip = round_trip(env, "mike");
    // Beside message.eml: the text body and each attachment, exact bytes.
    let bodies = files_named(&trip.save_dir, "body.txt");
    assert_eq!(bodies.len(), 1, "body.txt extracted next to message.eml");
    let body = std::fs::read_to_string(&bodies[0]).unwrap();
    assert!(
        body.contains(&format!("token {}", trip.token)),
        "body.txt: {body:?}"
    );
    let blobs = files_named(&trip.save_dir, "blob.bin");
    assert_eq!(blobs.len(), 1, "blob.bin extracted next to message.eml");
    assert_eq!(std::fs::read(&blobs[0]).unwrap(), trip.blob);
    let texts = files_named(&trip.save_dir, ROUND_TRIP_TEXT_NAME);
    assert_eq!(texts.len(), 1, "the text attachment keeps its unicode name");
    assert_eq!(
        std::fs::read(&texts[0]).unwrap(),
        ATTACHMENT_TEXT.as_bytes()
    );
}

/// alice's send to sybil over STARTTLS submission: subject, `body`, then
/// `more` arguments.
fn alice_to_sybil(env: &InteropEnv, body: &str, more: &[&str]) -> Vec<String> {
    let (from, to) = (env.address("alice"), env.address("sybil"));
    let mut args = vec![
        "--tls",
        "starttls",
        "--from",
        &from,
        "--to",
        &to,
        "--subject",
        SUBJECT,
        "--body",
        body,
    ];
    args.extend_from_slice(more);
    env.alice_sends("SMTP_SUBMISSION_PORT", &args)
}

/// Three messages queued with `--queue-only`, then one `queue run` over
/// STARTTLS with AUTH: each arrives, and the outbox is empty.
fn queue_run_sends_the_outbox_through_postfix(env: &InteropEnv) {
    let state = temp_dir();
    let outbox = state.path().join("outbox");
    let outbox = outbox.to_str().expect("utf-8 path");
    let tokens: Vec<String> = (0..3).map(|n| token(&format!("queued{n}"))).collect();
    for token in &tokens {
        let body = format!("queued message, token {token}\n");
        let args = alice_to_sybil(env, &body, &["--queue-only", "--outbox", outbox]);
        assert_ok(&mailctl(&args, None, state.path()), "send --queue-only");
    }
    let output = mailctl(
        &["queue", "run", "--json", "--outbox", outbox],
        Some(env.password("alice")),
        state.path(),
    );
    assert_ok(&output, "queue run");
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(summary["sent"], 3, "{summary}");
    assert_eq!(summary["remaining"], 0, "{summary}");
    for token in &tokens {
        let raw = wait_for_delivery(&env.maildir("sybil"), token);
        assert!(contains(&raw, b"Authenticated sender: alice"));
    }
}

/// Postfix offers DSN: NOTIFY, RET and ENVID are accepted.
fn send_with_dsn_parameters_through_postfix(env: &InteropEnv) {
    let state = temp_dir();
    let token = token("dsn");
    let body = format!("with DSN parameters, token {token}\n");
    let dsn = [
        "--notify",
        "failure,delay",
        "--ret",
        "hdrs",
        "--envid",
        &token,
        "-v",
    ];
    let output = mailctl(
        &alice_to_sybil(env, &body, &dsn),
        Some(env.password("alice")),
        state.path(),
    );
    assert_ok(&output, "send with DSN parameters");
    let transcript = String::from_utf8_lossy(&output.stderr);
    assert!(transcript.contains("NOTIFY=FAILURE,DELAY"), "{transcript}");
    assert!(transcript.contains("RET=HDRS ENVID="), "{transcript}");
    wait_for_delivery(&env.maildir("sybil"), &token);
}
