//! `mailctl serve` with real mail programs: curl, Python's smtplib and
//! poplib, swaks (all three installed in CI), msmtp and mpop (optional).
//! A test whose program is missing is reported ignored (see `tests/outside`).

mod outside;
mod serve_support;

use std::fs;
use std::io::Write;
use std::process::{Command, ExitCode};

use outside::program;
use serve_support::{body_of, files_in, run, stored, tls_server, Server};

/// Whether CI installs a program (then its absence there is a failure).
const IN_CI: bool = true;
const OPTIONAL: bool = false;

fn main() -> ExitCode {
    outside::run(vec![
        outside::trial(
            "curl_smtp_and_pop3_with_tls",
            || program("curl", IN_CI),
            |()| curl_smtp_and_pop3_with_tls(),
        ),
        outside::trial(
            "python_smtplib_and_poplib",
            || program("python3", IN_CI),
            |()| python_smtplib_and_poplib(),
        ),
        outside::trial(
            "swaks_with_starttls_and_auth",
            || program("swaks", IN_CI),
            |()| swaks_with_starttls_and_auth(),
        ),
        outside::trial(
            "msmtp_and_mpop",
            || program("msmtp", OPTIONAL).and(program("mpop", OPTIONAL)),
            |()| msmtp_and_mpop(),
        ),
    ])
}

fn curl_smtp_and_pop3_with_tls() {
    let (server, ca) = tls_server(&[]);
    let msg = server.dir.path().join("msg.eml");
    fs::write(
        &msg,
        "From: a@x.test\r\nTo: kim@y.test\r\nSubject: curl\r\n\r\n.leading dot\r\nbody\r\n",
    )
    .unwrap();
    let (ok, out, err) = run(Command::new("curl")
        .args(["-sS", "--ssl-reqd", "--cacert", &ca])
        .arg(format!("smtp://localhost:{}", server.smtp))
        .args([
            "--mail-from",
            "a@x.test",
            "--mail-rcpt",
            "kim@y.test",
            "--upload-file",
        ])
        .arg(&msg));
    assert!(ok, "{out}{err}");
    let files = server.files("kim", "new");
    assert_eq!(files.len(), 1);
    assert_eq!(body_of(&stored(&files[0])), fs::read(&msg).unwrap());

    let url = format!("pop3://localhost:{}/", server.pop3);
    let (ok, list, err) = run(Command::new("curl")
        .args(["-sS", "--ssl-reqd", "--cacert", &ca, "-u", "kim:x"])
        .arg(&url));
    assert!(ok, "{err}");
    assert_eq!(list, format!("1 {}\r\n", stored(&files[0]).len()));
    let out = Command::new("curl")
        .args(["-sS", "--ssl-reqd", "--cacert", &ca, "-u", "kim:x"])
        .arg(format!("{url}1"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, stored(&files[0]));
}

fn python_smtplib_and_poplib() {
    let (server, ca) = tls_server(&["--user", "lee:py-secret"]);
    let script = format!(
        r#"
import smtplib, poplib, ssl, sys
ctx = ssl.create_default_context(cafile={ca:?})
s = smtplib.SMTP("localhost", {smtp})
s.starttls(context=ctx)
s.login("lee", "py-secret")
msg = "From: a@x.test\r\nTo: lee@y.test\r\nSubject: py\r\n\r\n.dot line\r\nsecond\r\n"
refused = s.sendmail("a@x.test", ["lee@y.test"], msg)
assert refused == {{}}, refused
s.quit()
p = poplib.POP3("localhost", {pop3})
p.stls(context=ctx)
p.user("lee")
p.pass_("py-secret")
count, size = p.stat()
assert count == 1, count
resp, lines, octets = p.retr(1)
assert lines[-2:] == [b".dot line", b"second"], lines
assert octets == size, (octets, size)
resp, uids, _ = p.uidl()
p.dele(1)
p.quit()
print("ok", len(uids))
"#,
        smtp = server.smtp,
        pop3 = server.pop3
    );
    let (ok, out, err) = run(Command::new("python3").arg("-c").arg(&script));
    assert!(ok, "{out}{err}");
    assert_eq!(out.trim(), "ok 1");
    assert!(server.files("lee", "new").is_empty());
}

fn swaks_with_starttls_and_auth() {
    let (server, ca) = tls_server(&["--user", "max:sw-pass"]);
    let (ok, out, err) = run(Command::new("swaks")
        .args(["--server", &format!("localhost:{}", server.smtp)])
        .args(["--from", "a@x.test", "--to", "max@y.test"])
        .args(["--tls", "--tls-verify", "--tls-ca-path", &ca])
        .args([
            "--auth",
            "PLAIN",
            "--auth-user",
            "max",
            "--auth-password",
            "sw-pass",
        ])
        .args(["--header", "Subject: swaks", "--body", "hello from swaks"]));
    assert!(ok, "{out}{err}");
    assert!(out.contains("250 2.0.0 OK: queued as"), "{out}");
    let files = server.files("max", "new");
    assert_eq!(files.len(), 1);
    let text = String::from_utf8(stored(&files[0])).unwrap();
    assert!(text.contains("Subject: swaks") && text.contains("hello from swaks"));
    assert!(text.contains("with ESMTPSA id"));

    // Plain swaks without TLS against a catch-all server, with pipelining.
    let plain = Server::start(&[]);
    let (ok, out, err) = run(Command::new("swaks")
        .args(["--server", &format!("127.0.0.1:{}", plain.smtp)])
        .args([
            "--from",
            "a@x.test",
            "--to",
            "ned@y.test,ned@z.test",
            "--pipeline",
        ]));
    assert!(ok, "{out}{err}");
    assert_eq!(plain.files("ned", "new").len(), 1);
}

fn msmtp_and_mpop() {
    let (server, ca) = tls_server(&["--user", "nia:np-pass"]);
    let out_dir = server.dir.path().join("fetched");
    for sub in ["tmp", "new", "cur"] {
        fs::create_dir_all(out_dir.join(sub)).unwrap();
    }
    let message = "Subject: via msmtp\r\n\r\n.dot line\r\nhello\r\n";
    let mut child = Command::new("msmtp")
        .args(["--host=localhost", &format!("--port={}", server.smtp)])
        .args([
            "--tls=on",
            "--tls-starttls=on",
            &format!("--tls-trust-file={ca}"),
        ])
        .args(["--auth=plain", "--user=nia", "--passwordeval=echo np-pass"])
        .args(["--from=a@x.test", "nia@y.test"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(message.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let delivered = server.files("nia", "new");
    assert_eq!(delivered.len(), 1);
    // msmtp adds From, Date and Message-ID; the rest arrives byte-exact.
    let kept = stored(&delivered[0]);
    assert!(body_of(&kept).ends_with(message.as_bytes()));

    let (ok, out, err) = run(Command::new("mpop")
        .args(["--host=localhost", &format!("--port={}", server.pop3)])
        .args([
            "--tls=on",
            "--tls-starttls=on",
            &format!("--tls-trust-file={ca}"),
        ])
        .args(["--auth=user", "--user=nia", "--passwordeval=echo np-pass"])
        .arg(format!("--delivery=maildir,{}", out_dir.display()))
        .arg(format!(
            "--uidls-file={}",
            server.dir.path().join("uidls").display()
        ))
        .args(["--keep=off", "-q"]));
    assert!(ok, "{out}{err}");
    let fetched = files_in(&out_dir.join("new"));
    assert_eq!(fetched.len(), 1);
    // mpop adds its own Received header in front and stores LF line ends
    // (the local convention); otherwise the message is unchanged.
    let kept_lf = String::from_utf8(kept).unwrap().replace("\r\n", "\n");
    let fetched = String::from_utf8(stored(&fetched[0])).unwrap();
    assert!(fetched.ends_with(&kept_lf), "{fetched}");
    assert!(fetched.contains("\n.dot line\nhello\n"));
    assert!(server.files("nia", "new").is_empty());
}
