//! sendmail mode driven the way its usual callers drive it — `git
//! send-email --sendmail-cmd`, mutt, Debian's cron and cronie — against an
//! in-process SMTP server that records the envelope and the delivered bytes.

mod fake;

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::AtomicBool;
use std::thread;

/// What the fake server saw.
#[derive(Debug, Default)]
struct Recorded {
    /// Every command line, as sent.
    commands: Vec<String>,
    /// MAIL FROM addresses.
    mail_from: Vec<String>,
    /// RCPT TO addresses.
    rcpt_to: Vec<String>,
    /// Message bytes after DATA, dot-unstuffed, without the final dot.
    data: Vec<u8>,
}

/// A scripted SMTP submission server on 127.0.0.1 for one connection.
/// `refuse` lists recipients answered with 550.
fn fake_smtp(refuse: &'static [&'static str]) -> (u16, thread::JoinHandle<Recorded>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let mut rec = Recorded::default();
        let mut accepted = 0;
        let tcp = fake::accept(&listener, &AtomicBool::new(false)).expect("a client");
        let mut conn = fake::Conn::new(tcp);
        conn.send(b"220 fake.test ESMTP\r\n").unwrap();
        loop {
            let Some(line) = conn.text_line() else {
                return rec;
            };
            rec.commands.push(line.clone());
            let upper = line.to_ascii_uppercase();
            let reply: String = if upper.starts_with("EHLO") {
                "250-fake.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 10000000\r\n250 AUTH PLAIN LOGIN\r\n".into()
            } else if upper.starts_with("AUTH PLAIN") {
                "235 2.7.0 ok\r\n".into()
            } else if upper.starts_with("MAIL FROM:") {
                rec.mail_from.push(bracketed(&line[10..]));
                "250 2.1.0 ok\r\n".into()
            } else if upper.starts_with("RCPT TO:") {
                let addr = bracketed(&line[8..]);
                let refused = refuse.contains(&addr.as_str());
                rec.rcpt_to.push(addr);
                if refused {
                    "550 5.1.1 no such user\r\n".into()
                } else {
                    accepted += 1;
                    "250 2.1.5 ok\r\n".into()
                }
            } else if upper == "DATA" && accepted == 0 {
                "554 5.5.1 no valid recipients\r\n".into()
            } else if upper == "DATA" {
                conn.send(b"354 go ahead\r\n").unwrap();
                loop {
                    let l = conn.line().expect("the message up to its final dot");
                    if l == b".\r\n" {
                        break;
                    }
                    rec.data
                        .extend_from_slice(l.strip_prefix(b".").unwrap_or(&l));
                }
                "250 2.0.0 queued as 42\r\n".into()
            } else if upper == "RSET" || upper == "NOOP" {
                "250 ok\r\n".into()
            } else if upper == "QUIT" {
                let _ = conn.send(b"221 bye\r\n");
                return rec;
            } else {
                "502 5.5.1 unexpected\r\n".into()
            };
            conn.send(reply.as_bytes()).unwrap();
        }
    });
    (port, handle)
}

fn bracketed(arg: &str) -> String {
    let arg = arg.trim();
    let end = arg.find('>').map_or(arg.len(), |i| i + 1);
    arg[..end]
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string()
}

/// A config directory whose default account submits to the fake server.
fn account(port: u16, extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let text = format!(
        "default = \"relay\"\n\
         [accounts.relay]\nfrom = \"Relay Robot <robot@example.org>\"\n{extra}\n\
         [accounts.relay.smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n"
    );
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    (dir, path)
}

/// Runs `program args...` with the message on stdin, as a mailer does.
fn run(program: &Path, args: &[&str], config: &Path, message: &[u8]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .env("MAILCTL_CONFIG", config)
        .env_remove("MAILCTL_ACCOUNT")
        .env_remove("MAILCTL_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(message).unwrap();
    child.wait_with_output().unwrap()
}

/// Asserts that the run succeeded, showing its stderr if not.
fn assert_success(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mailctl() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mailctl"))
}

fn crlf(text: &str) -> String {
    text.replace('\n', "\r\n")
}

/// Splits off the `count` header lines mailctl added in front.
fn added_headers(data: &[u8], count: usize) -> (Vec<String>, String) {
    let text = String::from_utf8(data.to_vec()).unwrap();
    let mut added = Vec::new();
    let mut rest = text.as_str();
    while added.len() < count {
        let end = rest.find("\r\n").unwrap() + 2;
        added.push(rest[..end - 2].to_string());
        rest = &rest[end..];
    }
    (added, rest.to_string())
}

const PATCH: &str = "From: Jane Doe <jane@example.org>\n\
To: list@example.org\n\
Cc: bob@example.org\n\
Subject: [PATCH] fix the frobnicator\n\
Date: Wed, 25 Nov 2026 20:00:00 +0000\n\
Message-ID: <20261125200000.1-1-jane@example.org>\n\
X-Mailer: git-send-email 2.47.0\n\
MIME-Version: 1.0\n\
Content-Transfer-Encoding: 8bit\n\
\n\
A line on its own follows.\n\
.\n\
.hidden file and a trailing dot.\n\
---\n\
 a | 1 +\n";

#[test]
fn git_send_email_with_envelope_sender() {
    let (port, server) = fake_smtp(&[]);
    let (_dir, config) = account(port, "");
    // git runs: sh -c '$sendmail_cmd "$@"' ... -f SENDER -i RECIPIENTS...
    let sh = PathBuf::from("/bin/sh");
    let cmd = format!("{} sendmail \"$@\"", mailctl().display());
    let out = run(
        &sh,
        &[
            "-c",
            &cmd,
            "mailctl sendmail",
            "-f",
            "jane@example.org",
            "-i",
            "list@example.org",
            "bob@example.org",
        ],
        &config,
        PATCH.as_bytes(),
    );
    assert_success(&out);
    let rec = server.join().unwrap();
    assert_eq!(rec.mail_from, ["jane@example.org"]);
    assert_eq!(rec.rcpt_to, ["list@example.org", "bob@example.org"]);
    // Complete message: nothing added, the lone dot kept (-i), CRLF.
    assert_eq!(String::from_utf8(rec.data).unwrap(), crlf(PATCH));
}

#[test]
fn git_send_email_without_envelope_sender() {
    let (port, server) = fake_smtp(&[]);
    let (_dir, config) = account(port, "");
    let out = run(
        &mailctl(),
        &["sendmail", "-i", "list@example.org"],
        &config,
        PATCH.as_bytes(),
    );
    assert_success(&out);
    let rec = server.join().unwrap();
    assert_eq!(rec.mail_from, ["robot@example.org"], "the account's from");
    assert_eq!(rec.rcpt_to, ["list@example.org"]);
    assert_eq!(String::from_utf8(rec.data).unwrap(), crlf(PATCH));
}

#[test]
fn mutt_removes_bcc() {
    let (port, server) = fake_smtp(&[]);
    let (_dir, config) = account(port, "");
    let message = "Date: Wed, 25 Nov 2026 20:00:00 +0000\n\
From: Jane <jane@example.org>\n\
To: Ann <ann@example.org>\n\
Bcc: hidden@example.org\n\
Subject: lunch\n\
Message-ID: <m1@example.org>\n\
\n\
Noon?\n";
    // mutt: sendmail -oem -oi -- RECIPIENTS (Bcc recipients included)
    let out = run(
        &mailctl(),
        &[
            "sendmail",
            "-oem",
            "-oi",
            "--",
            "ann@example.org",
            "hidden@example.org",
        ],
        &config,
        message.as_bytes(),
    );
    assert_success(&out);
    let rec = server.join().unwrap();
    assert_eq!(rec.mail_from, ["robot@example.org"]);
    assert_eq!(rec.rcpt_to, ["ann@example.org", "hidden@example.org"]);
    let delivered = String::from_utf8(rec.data).unwrap();
    assert!(!delivered.contains("hidden"), "{delivered}");
    assert_eq!(
        delivered,
        crlf(&message.replace("Bcc: hidden@example.org\n", ""))
    );
}

const CRON_MESSAGE: &str = "From: root (Cron Daemon)\n\
To: root\n\
Subject: Cron <root@host> /usr/local/bin/backup\n\
MIME-Version: 1.0\n\
Content-Type: text/plain; charset=UTF-8\n\
Content-Transfer-Encoding: 8bit\n\
X-Cron-Env: <SHELL=/bin/sh>\n\
X-Cron-Env: <HOME=/root>\n\
\n\
backup: 3 files copied\n\
.\n\
done\n";

#[test]
fn debian_cron() {
    let (port, server) = fake_smtp(&[]);
    let (_dir, config) = account(port, "");
    // Debian's cron: /usr/sbin/sendmail -FCronDaemon -i -B8BITMIME -oem USER
    let out = run(
        &mailctl(),
        &[
            "sendmail",
            "-FCronDaemon",
            "-i",
            "-B8BITMIME",
            "-oem",
            "root@example.org",
        ],
        &config,
        CRON_MESSAGE.as_bytes(),
    );
    assert_success(&out);
    let rec = server.join().unwrap();
    assert_eq!(rec.mail_from, ["robot@example.org"]);
    assert_eq!(rec.rcpt_to, ["root@example.org"]);
    let (added, rest) = added_headers(&rec.data, 2);
    assert!(added[0].starts_with("Date: "), "{added:?}");
    assert!(added[1].starts_with("Message-ID: <") && added[1].ends_with("@example.org>"));
    assert_eq!(rest, crlf(CRON_MESSAGE));
}

#[test]
fn cronie_reads_recipients_from_headers() {
    let (port, server) = fake_smtp(&[]);
    let (_dir, config) = account(port, "");
    let message = CRON_MESSAGE.replace("To: root\n", "To: ops@example.org\n");
    // cronie: sendmail -FCronDaemon -i -odi -oem -oi -t -f USER
    let out = run(
        &mailctl(),
        &[
            "sendmail",
            "-FCronDaemon",
            "-i",
            "-odi",
            "-oem",
            "-oi",
            "-t",
            "-f",
            "root@host.example.org",
        ],
        &config,
        message.as_bytes(),
    );
    assert_success(&out);
    let rec = server.join().unwrap();
    assert_eq!(rec.mail_from, ["root@host.example.org"]);
    assert_eq!(rec.rcpt_to, ["ops@example.org"]);
    let (added, rest) = added_headers(&rec.data, 2);
    assert!(added[0].starts_with("Date: ") && added[1].starts_with("Message-ID: "));
    assert_eq!(rest, crlf(&message));
}

#[test]
fn symlink_named_sendmail_with_t_and_missing_from() {
    let (port, server) = fake_smtp(&[]);
    let (dir, config) = account(port, "");
    let link = dir.path().join("sendmail");
    std::os::unix::fs::symlink(mailctl(), &link).unwrap();
    let message = "To: a@example.org, B <b@example.org>\nCc: c@example.org\nBcc: d@example.org\nSubject: report\n\nall good\n.\nnot the end without -i? it is\n";
    let out = run(
        &link,
        &["-t", "-F", "Nightly Job"],
        &config,
        message.as_bytes(),
    );
    assert_success(&out);
    let rec = server.join().unwrap();
    assert_eq!(rec.mail_from, ["robot@example.org"]);
    assert_eq!(
        rec.rcpt_to,
        [
            "a@example.org",
            "b@example.org",
            "c@example.org",
            "d@example.org"
        ]
    );
    let (added, rest) = added_headers(&rec.data, 3);
    assert_eq!(added[0], "From: \"Nightly Job\" <robot@example.org>");
    assert!(added[1].starts_with("Date: "));
    assert!(added[2].starts_with("Message-ID: "));
    // Bcc removed; without -i the lone dot ended the message.
    assert_eq!(
        rest,
        crlf("To: a@example.org, B <b@example.org>\nCc: c@example.org\nSubject: report\n\nall good\n")
    );
}

#[test]
fn authenticates_with_the_accounts_password() {
    let (port, server) = fake_smtp(&[]);
    let (_dir, config) = account(port, "user = \"robot\"\npassword_command = \"echo s3cret\"");
    let out = run(
        &mailctl(),
        &["sendmail", "-v", "-i", "x@example.org"],
        &config,
        b"Subject: s\n\nb\n",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // -v shows the transcript, with the credentials redacted.
    assert!(stderr.contains("C: AUTH PLAIN <redacted>"), "{stderr}");
    assert!(
        !stderr.contains("s3cret") && !stderr.contains("AHJvYm90"),
        "{stderr}"
    );
    let rec = server.join().unwrap();
    let auth = rec
        .commands
        .iter()
        .find(|c| c.starts_with("AUTH"))
        .expect("AUTH sent");
    use base64::Engine;
    let expected = base64::engine::general_purpose::STANDARD.encode("\0robot\0s3cret");
    assert!(auth.contains(&expected), "{auth}");
}

#[test]
fn refused_recipient_fails() {
    let (port, server) = fake_smtp(&["nobody@example.org"]);
    let (_dir, config) = account(port, "");
    let out = run(
        &mailctl(),
        &["sendmail", "-i", "nobody@example.org"],
        &config,
        b"Subject: s\n\nb\n",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(67),
        "every recipient refused: {stderr}"
    );
    assert!(stderr.contains("550"), "{stderr}");
    let rec = server.join().unwrap();
    assert!(rec.data.is_empty(), "nothing delivered");
}

// --- Refusals that need no server. ---

#[test]
fn queue_and_daemon_modes_are_refused() {
    let (_dir, config) = account(9, "");
    for (args, needle) in [
        (&["sendmail", "-bp"][..], "-bp (print the queue)"),
        (&["sendmail", "-bs"][..], "-bs (SMTP on stdin)"),
        (&["sendmail", "-q"][..], "-q (process the queue)"),
        (&["sendmail", "-k", "a@b"][..], "unknown sendmail option -k"),
    ] {
        let out = run(&mailctl(), args, &config, b"");
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with("mailctl: error: ") && stderr.contains(needle),
            "{stderr}"
        );
    }
}

#[test]
fn symlink_mode_refuses_bp_too() {
    let (dir, config) = account(9, "");
    let link = dir.path().join("sendmail");
    std::os::unix::fs::symlink(mailctl(), &link).unwrap();
    let out = run(&link, &["-bp"], &config, b"");
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("use `mailctl queue list`"));
}

#[test]
fn no_configuration_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(mailctl())
        .args(["sendmail", "-i", "a@example.org"])
        .env("XDG_CONFIG_HOME", dir.path())
        .env("HOME", dir.path())
        .env_remove("MAILCTL_CONFIG")
        .env_remove("MAILCTL_ACCOUNT")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sendmail mode sends through an account"),
        "{stderr}"
    );
}

#[test]
fn no_recipient_is_a_usage_error() {
    let (_dir, config) = account(9, "");
    let out = run(
        &mailctl(),
        &["sendmail", "-i"],
        &config,
        b"Subject: s\n\nb\n",
    );
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no recipients"));
}

#[test]
fn account_from_flag_or_environment() {
    for how in ["flag", "env"] {
        let (port, server) = fake_smtp(&[]);
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        // The default account points at a closed port: using it would fail.
        fs::write(
            &config,
            format!(
                "default = \"dead\"\n\
                 [accounts.dead]\nfrom = \"dead@example.org\"\n\
                 [accounts.dead.smtp]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"none\"\n\
                 [accounts.live]\nfrom = \"live@example.org\"\n\
                 [accounts.live.smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n"
            ),
        )
        .unwrap();
        let mut cmd = Command::new(mailctl());
        cmd.arg("sendmail");
        if how == "flag" {
            cmd.args(["--account", "live"])
                .env_remove("MAILCTL_ACCOUNT");
        } else {
            cmd.env("MAILCTL_ACCOUNT", "live");
        }
        let mut child = cmd
            .args(["-i", "x@example.org"])
            .env("MAILCTL_CONFIG", &config)
            .env_remove("MAILCTL_PASSWORD")
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"Subject: s\n\nb\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{how}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rec = server.join().unwrap();
        assert_eq!(rec.mail_from, ["live@example.org"], "{how}");
    }
}

/// A body of about `size` bytes of log lines, with lines that hold a single
/// dot or start with one (the SMTP layer must dot-stuff them).
fn big_log(size: usize) -> String {
    let mut body = String::with_capacity(size + 100);
    let mut i = 0;
    while body.len() < size {
        body.push_str(&format!(
            "2026-11-25T20:00:{:02}Z job[{i}]: step done\n",
            i % 60
        ));
        if i % 1000 == 0 {
            body.push_str(".\n..two dots\n.leading dot\n");
        }
        i += 1;
    }
    body
}

fn size_parameter(rec: &Recorded) -> Option<u64> {
    let mail = rec.commands.iter().find(|c| c.starts_with("MAIL FROM:"))?;
    let size = mail
        .split_whitespace()
        .find_map(|p| p.strip_prefix("SIZE="))?;
    size.parse().ok()
}

/// A message larger than the in-memory limit goes through the spool and
/// arrives byte for byte (Bcc removed, CRLF), with an exact SIZE.
#[test]
fn large_message_arrives_intact() {
    let (port, server) = fake_smtp(&[]);
    let (_dir, config) = account(port, "");
    let header = "From: Cron <cron@example.org>\nTo: ops@example.org\nBcc: audit@example.org\n\
                  Subject: nightly log\nDate: Wed, 25 Nov 2026 20:00:00 +0000\n\
                  Message-ID: <log.1@example.org>\n\n";
    let body = big_log(3 * 1024 * 1024);
    let message = format!("{header}{body}");
    let out = run(
        &mailctl(),
        &["sendmail", "-t", "-i"],
        &config,
        message.as_bytes(),
    );
    assert_success(&out);
    let rec = server.join().unwrap();
    assert_eq!(rec.rcpt_to, ["ops@example.org", "audit@example.org"]);
    let expected = crlf(&message.replace("Bcc: audit@example.org\n", ""));
    assert!(rec.data == expected.as_bytes(), "the message changed");
    assert_eq!(size_parameter(&rec), Some(rec.data.len() as u64));
    let parsed = mail_parser::MessageParser::default()
        .parse(&rec.data)
        .unwrap();
    assert!(parsed.body_text(0).unwrap() == crlf(&body));
}

/// Without -i, a lone dot still ends a large message; what follows it is
/// read and dropped. A header-less message gets its blank line.
#[test]
fn large_message_ends_at_a_lone_dot() {
    let (port, server) = fake_smtp(&[]);
    let (_dir, config) = account(port, "");
    let body = format!(
        "The nightly log follows.\n{}",
        big_log(2 * 1024 * 1024).replace("\n.\n", "\n")
    );
    let message = format!("{body}.\nnot part of the message\n");
    let out = run(
        &mailctl(),
        &["sendmail", "ops@example.org"],
        &config,
        message.as_bytes(),
    );
    assert_success(&out);
    let rec = server.join().unwrap();
    let (added, rest) = added_headers(&rec.data, 3);
    assert!(added[0].starts_with("From: "), "{added:?}");
    assert!(added[2].starts_with("Message-ID: "), "{added:?}");
    assert!(rest == format!("\r\n{}", crlf(&body)), "the body changed");
    assert_eq!(size_parameter(&rec), Some(rec.data.len() as u64));
}

/// What logrotate and cron scripts run: `mail -s SUBJECT [-a FILE] [-c CC]
/// [-b BCC] [-r FROM] ADDR... < body`, through a `mail` link.
#[test]
fn mailx_link_sends_a_report_with_an_attachment() {
    let (port, server) = fake_smtp(&[]);
    let (dir, config) = account(port, "");
    let link = dir.path().join("mail");
    std::os::unix::fs::symlink(mailctl(), &link).unwrap();
    let attachment = dir.path().join("df.txt");
    fs::write(&attachment, "/dev/sda1 91%\n").unwrap();
    let out = run(
        &link,
        &[
            "-s",
            "disk usage on host",
            "-a",
            attachment.to_str().unwrap(),
            "-c",
            "boss@example.org",
            "-b",
            "audit@example.org",
            "ops@example.org",
        ],
        &config,
        b"see the attachment\n",
    );
    assert_success(&out);
    let rec = server.join().unwrap();
    assert_eq!(rec.mail_from, ["robot@example.org"]);
    assert_eq!(
        rec.rcpt_to,
        ["ops@example.org", "boss@example.org", "audit@example.org"]
    );
    let data = String::from_utf8_lossy(&rec.data);
    assert!(data.contains("Subject: disk usage on host\r\n"), "{data}");
    assert!(data.contains("To: ops@example.org\r\n"), "{data}");
    assert!(data.contains("Cc: boss@example.org\r\n"), "{data}");
    assert!(!data.contains("audit@example.org"), "Bcc stays out: {data}");
    assert!(data.contains("filename=\"df.txt\""), "{data}");
    assert!(data.contains("see the attachment"), "{data}");
}

#[test]
fn mailx_sends_a_latin1_body_as_utf8() {
    let (port, server) = fake_smtp(&[]);
    let (_dir, config) = account(port, "");
    let out = run(
        &mailctl(),
        &["mail", "-s", "cron", "root@example.org"],
        &config,
        b"sauvegarde \xe9chou\xe9e\n",
    );
    assert_success(&out);
    let rec = server.join().unwrap();
    let parsed = mail_parser::MessageParser::default()
        .parse(&rec.data)
        .unwrap();
    assert_eq!(
        parsed.body_text(0).unwrap().trim_end(),
        "sauvegarde échouée"
    );
}

#[test]
fn mailctl_mail_takes_a_sender_and_skips_an_empty_body_with_e() {
    let (port, server) = fake_smtp(&[]);
    let (_dir, config) = account(port, "");
    let out = run(
        &mailctl(),
        &[
            "mail",
            "-s",
            "hi",
            "-r",
            "Backup <backup@example.org>",
            "root@example.org",
        ],
        &config,
        b"done\n",
    );
    assert_success(&out);
    let rec = server.join().unwrap();
    assert_eq!(rec.mail_from, ["backup@example.org"]);
    let data = String::from_utf8_lossy(&rec.data);
    assert!(
        data.contains("From: Backup <backup@example.org>\r\n"),
        "{data}"
    );

    // -E with nothing to say: nothing is sent, no server is needed.
    let (_dir, config) = account(1, "");
    let out = run(
        &mailctl(),
        &["mail", "-E", "-s", "empty", "root@example.org"],
        &config,
        b"",
    );
    assert_success(&out);

    // No recipient: a usage error on one line.
    let out = run(&mailctl(), &["mail", "-s", "x"], &config, b"body\n");
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("mailctl: error: ") && stderr.lines().count() == 1,
        "{stderr}"
    );
}

#[test]
fn mailx_without_a_configuration_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("mailx");
    std::os::unix::fs::symlink(mailctl(), &link).unwrap();
    let missing = dir.path().join("none.toml");
    let out = Command::new(&link)
        .args(["-s", "x", "root@example.org"])
        .env_remove("MAILCTL_CONFIG")
        .env_remove("MAILCTL_ACCOUNT")
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mailctl config init"), "{stderr}");
    let out = run(&link, &["-s"], &missing, b"");
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.ends_with("(see 'mailx --help')\n"), "{stderr}");
}
