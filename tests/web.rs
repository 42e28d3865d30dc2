//! `mailctl serve --http`: the JSON API, the live events and the fault
//! rules, driven by real clients (curl, python3's smtplib) against the
//! binary. A test whose client is missing is reported ignored (see
//! tests/outside); CI installs them all.

mod outside;
mod serve_support;

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use outside::program;
use serde_json::Value;
use serve_support::{run, Client, Server};

fn main() -> ExitCode {
    outside::run(vec![
        outside::trial(
            "messages_are_listed_filtered_and_decoded_like_parse",
            || program("curl", true).and(program("python3", true)),
            |()| messages_are_listed_filtered_and_decoded_like_parse(),
        ),
        outside::trial(
            "html_is_served_sanitised_under_a_policy_that_blocks_scripts",
            || program("curl", true),
            |()| html_is_served_sanitised_under_a_policy_that_blocks_scripts(),
        ),
        outside::trial(
            "ids_are_pop3_uidls_and_deletions_agree_both_ways",
            || program("curl", true),
            |()| ids_are_pop3_uidls_and_deletions_agree_both_ways(),
        ),
        outside::trial(
            "ids_survive_a_restart",
            || program("curl", true),
            |()| ids_survive_a_restart(),
        ),
        outside::trial(
            "wait_returns_a_message_there_or_arriving_or_408",
            || program("curl", true),
            |()| wait_returns_a_message_there_or_arriving_or_408(),
        ),
        outside::trial(
            "events_announce_messages_and_log_lines_without_secrets",
            || program("curl", true).and(program("python3", true)),
            |()| events_announce_messages_and_log_lines_without_secrets(),
        ),
        outside::trial(
            "fault_rules_answer_their_stage_exactly",
            || program("curl", true),
            |()| fault_rules_answer_their_stage_exactly(),
        ),
        outside::trial(
            "bad_options_fail_with_one_line_and_a_usage_status",
            || Ok(()),
            |()| bad_options_fail_with_one_line_and_a_usage_status(),
        ),
        outside::trial(
            "off_loopback_every_request_needs_a_user_and_sees_only_its_mailbox",
            || program("curl", true),
            |()| off_loopback_every_request_needs_a_user_and_sees_only_its_mailbox(),
        ),
        outside::trial(
            "a_loopback_inbox_refuses_other_host_names",
            || program("curl", true),
            |()| a_loopback_inbox_refuses_other_host_names(),
        ),
        outside::trial(
            "implicit_tls_listeners_serve_smtp_and_pop3",
            || program("curl", true),
            |()| implicit_tls_listeners_serve_smtp_and_pop3(),
        ),
        outside::trial(
            "implicit_tls_needs_a_certificate",
            || Ok(()),
            |()| implicit_tls_needs_a_certificate(),
        ),
        outside::trial(
            "off_loopback_with_a_certificate_the_inbox_speaks_https",
            || program("curl", true),
            |()| off_loopback_with_a_certificate_the_inbox_speaks_https(),
        ),
        outside::trial(
            "fault_rules_at_every_command_stage_and_every_nth",
            || Ok(()),
            |()| fault_rules_at_every_command_stage_and_every_nth(),
        ),
        outside::trial(
            "mailboxes_are_listed",
            || program("curl", true),
            |()| mailboxes_are_listed(),
        ),
        outside::trial(
            "an_endless_header_line_is_cut_off_with_431_and_memory_stays_flat",
            || program("curl", true),
            |()| an_endless_header_line_is_cut_off_with_431_and_memory_stays_flat(),
        ),
        outside::trial(
            "a_stalled_head_gets_408_and_an_idle_connection_is_closed",
            || Ok(()),
            |()| a_stalled_head_gets_408_and_an_idle_connection_is_closed(),
        ),
        outside::trial(
            "idle_connections_are_capped_per_address_and_in_total",
            || program("curl", true),
            |()| idle_connections_are_capped_per_address_and_in_total(),
        ),
        outside::trial(
            "a_terminated_server_ends_its_event_streams_and_connections",
            || Ok(()),
            |()| a_terminated_server_ends_its_event_streams_and_connections(),
        ),
        outside::trial(
            "a_tls_handshake_trickled_byte_by_byte_is_cut_at_its_deadline",
            || Ok(()),
            |()| a_tls_handshake_trickled_byte_by_byte_is_cut_at_its_deadline(),
        ),
        outside::trial(
            "an_event_client_that_stops_reading_is_dropped",
            || Ok(()),
            |()| an_event_client_that_stops_reading_is_dropped(),
        ),
        outside::trial(
            "oversized_or_unmeasured_bodies_are_refused",
            || program("curl", true),
            |()| oversized_or_unmeasured_bodies_are_refused(),
        ),
    ])
}

/// An HTTP answer.
struct Answer {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Runs curl against the server's web inbox: `path` after the port, then
/// further curl arguments.
fn curl(server: &Server, path: &str, args: &[&str]) -> Answer {
    curl_at(server.http, path, args)
}

/// [`curl`] to a port.
fn curl_at(port: u16, path: &str, args: &[&str]) -> Answer {
    let dir = tempfile::tempdir().unwrap();
    let (body, head) = (dir.path().join("body"), dir.path().join("head"));
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60", "-o"])
        .arg(&body)
        .arg("-D")
        .arg(&head)
        .args(["-w", "%{http_code}"])
        .args(args)
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .unwrap();
    Answer {
        status: String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0),
        headers: std::fs::read_to_string(&head).unwrap_or_default(),
        body: std::fs::read(&body).unwrap_or_default(),
    }
}

/// Sends messages with python3's smtplib: each item is (recipient,
/// Python expression building an `EmailMessage` named `m`).
fn smtplib_send(server: &Server, script: &str) {
    let program = format!(
        "import smtplib\nfrom email.message import EmailMessage\n\
         s = smtplib.SMTP('127.0.0.1', {})\n{script}\ns.quit()\n",
        server.smtp
    );
    let (ok, out, err) = run(Command::new("python3").args(["-c", &program]));
    assert!(ok, "{out}{err}");
}

/// A message with a Chinese subject and attachment name, and a binary
/// attachment.
const CHINESE: &str = "m = EmailMessage()\n\
m['From'] = 'Zhang <zhang@example.cn>'\nm['To'] = 'alice@example.com'\n\
m['Subject'] = '测试邮件 report'\nm.set_content('你好, see https://example.com/confirm?t=42')\n\
m.add_attachment(bytes(range(256)) * 3, maintype='application', subtype='octet-stream', \
filename='报告.bin')\ns.send_message(m)";

fn ids(answer: &Answer) -> Vec<String> {
    answer.json()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

fn messages_are_listed_filtered_and_decoded_like_parse() {
    let server = Server::start(&["--http", "127.0.0.1:0"]);
    smtplib_send(&server, CHINESE);
    server.deliver(
        "a@x",
        &["bob@example.com"],
        b"Subject: plain one\r\n\r\nhi\r\n",
    );
    server.deliver(
        "a@x",
        &["bob@example.com"],
        b"Subject: plain two\r\n\r\nhi\r\n",
    );
    let all = curl(&server, "/api/messages", &[]);
    assert_eq!(all.status, 200);
    let json = all.json();
    assert_eq!(json["total"], 3);
    let subjects: Vec<&str> = json["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["plain two", "plain one", "测试邮件 report"]);
    let first = &json["messages"][2];
    assert_eq!(first["mailbox"], "alice");
    assert_eq!(first["attachments"], 1);
    assert_eq!(first["from"], "Zhang <zhang@example.cn>");
    let count =
        |query: &str| curl(&server, &format!("/api/messages?{query}"), &[]).json()["total"].clone();
    assert_eq!(count("subject=%E6%B5%8B%E8%AF%95"), 1);
    assert_eq!(count("mailbox=bob"), 2);
    assert_eq!(count("to=ALICE"), 1);
    assert_eq!(count("from=nobody"), 0);
    assert_eq!(count("since=2000-01-01"), 3);
    assert_eq!(count("since=4000000000"), 0);
    let page = curl(&server, "/api/messages?limit=1&offset=1", &[]);
    assert_eq!(page.json()["total"], 3);
    assert_eq!(page.json()["messages"][0]["subject"], "plain one");
    assert_eq!(curl(&server, "/api/messages?since=soon", &[]).status, 400);

    let id = first["id"].as_str().unwrap();
    let file = &server.files("alice", "new")[0];
    let raw = curl(&server, &format!("/api/messages/{id}/raw"), &[]);
    assert_eq!(raw.body, std::fs::read(file).unwrap(), "raw is byte-exact");
    let detail = curl(&server, &format!("/api/messages/{id}"), &[]).json();
    let (ok, parsed, err) = run(Command::new(env!("CARGO_BIN_EXE_mailctl"))
        .args(["parse", "--json"])
        .arg(file));
    assert!(ok, "{err}");
    let parsed: Value = serde_json::from_str(&parsed).unwrap();
    for field in ["headers", "text", "html", "parts", "warnings"] {
        assert_eq!(detail[field], parsed[field], "{field}");
    }
    assert_eq!(detail["id"], id);
    let part = curl(
        &server,
        &format!("/api/messages/{id}/parts/2?download=1"),
        &[],
    );
    assert_eq!(part.status, 200);
    assert_eq!(part.body, (0..768).map(|n| n as u8).collect::<Vec<u8>>());
    assert!(
        part.headers
            .contains("filename*=UTF-8''%E6%8A%A5%E5%91%8A.bin"),
        "{}",
        part.headers
    );
    assert!(
        part.headers.contains("Content-Disposition: attachment"),
        "{}",
        part.headers
    );
    assert_eq!(
        curl(&server, &format!("/api/messages/{id}/parts/9"), &[]).status,
        404
    );
    assert_eq!(curl(&server, "/api/messages/nope", &[]).status, 404);
}

fn html_is_served_sanitised_under_a_policy_that_blocks_scripts() {
    let server = Server::start(&["--http", "127.0.0.1:0"]);
    server.deliver(
        "a@x",
        &["alice@x"],
        b"Subject: h\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
<p onclick=\"steal()\">hi<script>alert(1)</script><img src=\"http://remote.example/t.gif\"></p>\r\n",
    );
    let id = ids(&curl(&server, "/api/messages", &[]))[0].clone();
    let html = curl(&server, &format!("/api/messages/{id}/html"), &[]);
    let text = String::from_utf8(html.body).unwrap();
    assert!(text.contains("<p>hi"), "{text}");
    for gone in ["script", "onclick", "remote.example"] {
        assert!(!text.contains(gone), "{text}");
    }
    assert!(html
        .headers
        .contains("Content-Security-Policy: default-src 'none'; img-src data:"));
    assert!(html.headers.contains("sandbox"));
    let page = curl(&server, "/", &[]);
    assert_eq!(page.status, 200);
    assert!(
        page.headers.contains("script-src 'self'"),
        "{}",
        page.headers
    );
}

/// Reads POP3 UIDL lines into ids.
fn pop3_uids(client: &mut Client) -> Vec<String> {
    client.send(b"UIDL\r\n");
    client.expect_line("+OK");
    let listing = client.multiline();
    let mut uids: Vec<String> = listing
        .lines()
        .filter(|l| *l != ".")
        .map(|l| l.split(' ').nth(1).unwrap().to_string())
        .collect();
    uids.sort();
    uids
}

fn ids_are_pop3_uidls_and_deletions_agree_both_ways() {
    let server = Server::start(&["--http", "127.0.0.1:0"]);
    for n in 0..3 {
        server.deliver(
            "a@x",
            &["alice@x"],
            format!("Subject: m{n}\r\n\r\nhi\r\n").as_bytes(),
        );
    }
    let mut api_ids = ids(&curl(&server, "/api/messages", &[]));
    api_ids.sort();
    let mut pop = server.pop3();
    pop.expect_line("+OK");
    pop.send(b"USER alice\r\n");
    pop.expect_line("+OK");
    pop.send(b"PASS x\r\n");
    pop.expect_line("+OK");
    assert_eq!(pop3_uids(&mut pop), api_ids);
    let busy = curl(
        &server,
        &format!("/api/messages/{}", api_ids[0]),
        &["-X", "DELETE"],
    );
    assert_eq!(busy.status, 409, "a POP3 session holds the mailbox");
    pop.send(b"DELE 1\r\nQUIT\r\n");
    pop.expect_line("+OK");
    pop.expect_line("+OK");
    let left = ids(&curl(&server, "/api/messages", &[]));
    assert_eq!(left.len(), 2);
    let gone = curl(
        &server,
        &format!("/api/messages/{}", left[0]),
        &["-X", "DELETE"],
    );
    assert_eq!(gone.status, 200);
    assert_eq!(
        curl(&server, &format!("/api/messages/{}", left[0]), &[]).status,
        404
    );
    let mut pop = server.pop3();
    pop.expect_line("+OK");
    pop.send(b"USER alice\r\nPASS x\r\n");
    pop.expect_line("+OK");
    pop.expect_line("+OK");
    assert_eq!(pop3_uids(&mut pop), [left[1].clone()]);
    pop.send(b"QUIT\r\n");
    pop.expect_line("+OK");
    let all = curl(&server, "/api/messages", &["-X", "DELETE"]);
    assert_eq!(all.json()["deleted"], 1);
    assert_eq!(curl(&server, "/api/messages", &[]).json()["total"], 0);
    assert!(server.files("alice", "new").is_empty() && server.files("alice", "cur").is_empty());
}

fn ids_survive_a_restart() {
    let server = Server::start(&["--http", "127.0.0.1:0"]);
    server.deliver("a@x", &["alice@x"], b"Subject: keep\r\n\r\nhi\r\n");
    let before = ids(&curl(&server, "/api/messages", &[]));
    let (_, _, dir) = server.terminate();
    let server = Server::start_in(dir, &["--http", "127.0.0.1:0"]);
    assert_eq!(ids(&curl(&server, "/api/messages", &[])), before);
}

fn wait_returns_a_message_there_or_arriving_or_408() {
    let server = Server::start(&["--http", "127.0.0.1:0"]);
    server.deliver("a@x", &["alice@x"], b"Subject: early\r\n\r\nhi\r\n");
    let there = curl(&server, "/api/wait?to=alice&subject=early", &[]);
    assert_eq!(there.status, 200);
    assert_eq!(there.json()["text"], "hi\n");
    let none = curl(&server, "/api/wait?subject=never&timeout=0.5", &[]);
    assert_eq!(none.status, 408);
    let port = server.http;
    std::thread::scope(|scope| {
        let waiting =
            scope.spawn(move || curl_at(port, "/api/wait?to=bob&subject=late&timeout=60", &[]));
        std::thread::sleep(Duration::from_millis(300));
        server.deliver("a@x", &["bob@x"], b"Subject: not this\r\n\r\nhi\r\n");
        server.deliver("a@x", &["bob@x"], b"Subject: late one\r\n\r\nthe link\r\n");
        let got = waiting.join().unwrap();
        assert_eq!(got.status, 200);
        assert_eq!(got.json()["subject"], "late one");
        assert_eq!(got.json()["mailbox"], "bob");
    });
    assert_eq!(curl(&server, "/api/wait?timeout=-1", &[]).status, 400);
}

fn events_announce_messages_and_log_lines_without_secrets() {
    let server = Server::start(&["--http", "127.0.0.1:0", "--user", "alice:s3cret-pass"]);
    let mut stream = Command::new("curl")
        .args(["-sN", "--max-time", "20"])
        .arg(format!("http://127.0.0.1:{}/api/events", server.http))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stream.stdout.take().unwrap()));
    assert_eq!(lines.next().unwrap().unwrap(), ": mailctl events");
    smtplib_send(
        &server,
        "s.login('alice', 's3cret-pass')\ns.sendmail('a@x', ['alice@x'], 'Subject: live\\r\\n\\r\\nhi')",
    );
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.starts_with("data: {") && line.contains("\"subject\":\"live\"");
        seen.push(line);
        if done {
            break;
        }
    }
    let _ = stream.kill();
    let _ = stream.wait();
    let text = seen.join("\n");
    assert!(text.contains("event: message"), "{text}");
    assert!(
        text.contains("event: log\ndata: [1] C: AUTH PLAIN <redacted>"),
        "{text}"
    );
    assert!(
        !text.contains("s3cret") && !text.contains("czNjcmV0"),
        "{text}"
    );
    assert!(
        !text.contains(&base64_plain("alice", "s3cret-pass")),
        "{text}"
    );
}

fn base64_plain(user: &str, password: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"))
}

/// One SMTP transaction by hand; returns the replies to RCPT and to the
/// end of data.
fn transaction(server: &Server, rcpt: &str, subject: &str) -> (String, String) {
    let mut c = server.smtp();
    c.expect_reply("220");
    c.send(b"EHLO test\r\nMAIL FROM:<a@x>\r\n");
    c.expect_reply("250");
    c.expect_reply("250");
    c.send(format!("RCPT TO:<{rcpt}>\r\n").as_bytes());
    let rcpt_reply = c.reply();
    if !rcpt_reply.starts_with("250") {
        return (rcpt_reply, String::new());
    }
    c.send(b"DATA\r\n");
    c.expect_reply("354");
    c.send(format!("Subject: {subject}\r\n\r\nhi\r\n.\r\n").as_bytes());
    let dot = c.reply();
    c.send(b"QUIT\r\n");
    (rcpt_reply, dot)
}

fn fault_rules_answer_their_stage_exactly() {
    let server = Server::start(&[
        "--http",
        "127.0.0.1:0",
        "--fault",
        "rcpt:bob@example.com=452 4.2.2 mailbox full",
        "--fault",
        "dot=421 4.3.0 try again later;first=1",
    ]);
    let (rcpt, _) = transaction(&server, "bob@example.com", "x");
    assert_eq!(rcpt, "452 4.2.2 mailbox full\r\n");
    let (rcpt, dot) = transaction(&server, "carol@example.com", "first");
    assert!(rcpt.starts_with("250"));
    assert_eq!(dot, "421 4.3.0 try again later\r\n");
    let (_, dot) = transaction(&server, "carol@example.com", "second");
    assert!(dot.starts_with("250 2.0.0"), "{dot}");
    let stored = curl(&server, "/api/messages", &[]).json();
    assert_eq!(stored["total"], 1, "the faulted message was not kept");
    assert_eq!(stored["messages"][0]["subject"], "second");
    let listed = curl(&server, "/api/faults", &[]).json();
    assert_eq!(listed["rules"][1], "dot=421 4.3.0 try again later;first=1");

    let put = curl(
        &server,
        "/api/faults",
        &[
            "-X",
            "PUT",
            "--data-binary",
            "[\"connect=554 5.3.2 not now\"]",
        ],
    );
    assert_eq!(put.status, 200);
    let mut c = server.smtp();
    assert_eq!(c.line(), "554 5.3.2 not now\r\n");
    assert_eq!(c.rest(), "", "the connection is closed");
    let bad = curl(
        &server,
        "/api/faults",
        &["-X", "PUT", "--data-binary", "rcpt=250 fine"],
    );
    assert_eq!(bad.status, 400);
    assert!(String::from_utf8_lossy(&bad.body).contains("invalid fault rule"));
    let cleared = curl(&server, "/api/faults", &["-X", "PUT", "--data-binary", ""]);
    assert_eq!(cleared.json()["rules"], Value::Array(vec![]));
    let (_, dot) = transaction(&server, "bob@example.com", "third");
    assert!(dot.starts_with("250"), "{dot}");
}

fn bad_options_fail_with_one_line_and_a_usage_status() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (
            vec!["--fault", "rcpt=250 ok"],
            "invalid fault rule 'rcpt=250 ok'",
        ),
        (vec!["--http", "0.0.0.0:0"], "needs --users-file"),
        (vec!["--http", "nowhere"], "invalid listening address"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_mailctl"))
            .args([
                "serve",
                "--smtp",
                "127.0.0.1:0",
                "--pop3",
                "127.0.0.1:0",
                "--maildir",
            ])
            .arg(dir.path().join("m"))
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("mailctl: error: ") && err.contains(says),
            "{err}"
        );
    }
}

fn off_loopback_every_request_needs_a_user_and_sees_only_its_mailbox() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, "alice:apple\nbob:banana\n").unwrap();
    set_private(&users);
    let users = users.to_str().unwrap().to_string();
    let server = Server::start_in(dir, &["--http", "0.0.0.0:0", "--users-file", &users]);
    for mailbox in ["alice", "bob"] {
        let path = server.maildir().join(mailbox);
        write_message(&path, &format!("Subject: for {mailbox}\r\n\r\nhi\r\n"));
    }
    assert_eq!(curl(&server, "/api/messages", &[]).status, 401);
    assert_eq!(
        curl(&server, "/api/messages", &["-u", "alice:wrong"]).status,
        401
    );
    let mine = curl(&server, "/api/messages", &["-u", "alice:apple"]).json();
    assert_eq!(mine["total"], 1);
    assert_eq!(mine["messages"][0]["subject"], "for alice");
    let theirs = curl(&server, "/api/messages?mailbox=bob", &["-u", "alice:apple"]);
    assert_eq!(theirs.status, 403);
    let bob_id = ids(&curl(&server, "/api/messages", &["-u", "bob:banana"]))[0].clone();
    let peek = curl(
        &server,
        &format!("/api/messages/{bob_id}/raw"),
        &["-u", "alice:apple"],
    );
    assert_eq!(peek.status, 404);
    let faults = curl(
        &server,
        "/api/faults",
        &["-u", "alice:apple", "-X", "PUT", "--data-binary", ""],
    );
    assert_eq!(faults.status, 404);
}

fn a_loopback_inbox_refuses_other_host_names() {
    let server = Server::start(&["--http", "127.0.0.1:0"]);
    assert_eq!(
        curl(&server, "/api/messages", &["-H", "Host: evil.example"]).status,
        403
    );
    assert_eq!(
        curl(&server, "/api/messages", &["-H", "Host: localhost:8025"]).status,
        200
    );
}

fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Puts a message into a Maildir's `new/` as another program would.
fn write_message(maildir: &Path, text: &str) {
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    let name = format!(
        "1700000000.M1P1Q1.{}",
        maildir.file_name().unwrap().to_string_lossy()
    );
    std::fs::write(maildir.join("new").join(name), text).unwrap();
}

/// The port a listener line of the server's log names.
fn listener_port(server: &Server, name: &str) -> u16 {
    let prefix = format!("mailctl: {name} listening on ");
    for _ in 0..600 {
        if let Some(line) = server.log().iter().find(|l| l.starts_with(&prefix)) {
            return line.rsplit(':').next().unwrap().parse().unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no {name} listener: {:?}", server.log());
}

fn implicit_tls_listeners_serve_smtp_and_pop3() {
    let (server, ca) = serve_support::tls_server(&[
        "--smtps",
        "127.0.0.1:0",
        "--pop3s",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
    ]);
    let (smtps, pop3s) = (
        listener_port(&server, "smtps"),
        listener_port(&server, "pop3s"),
    );
    let (ok, out, err) = run(Command::new(env!("CARGO_BIN_EXE_mailctl"))
        .args(["send", "--tls", "implicit", "--ca-file", &ca, "--server"])
        .arg(format!("localhost:{smtps}"))
        .args(["--from", "a@example.com", "--to", "alice@example.com"])
        .args(["--subject", "over smtps", "--body", "secure"]));
    assert!(ok, "{out}{err}");
    // With a certificate the loopback inbox speaks HTTPS too.
    let (ok, message, err) = run(Command::new("curl")
        .args(["-sS", "--max-time", "30", "--cacert", &ca])
        .arg(format!(
            "https://127.0.0.1:{}/api/wait?subject=over+smtps&timeout=30",
            server.http
        )));
    assert!(
        ok && message.contains("\"subject\": \"over smtps\""),
        "{message}{err}"
    );
    let (ok, listing, err) = run(Command::new("curl")
        .args(["-sS", "--max-time", "30", "--cacert", &ca])
        .arg(format!("pop3s://localhost:{pop3s}/1"))
        .args(["-u", "alice:x"]));
    assert!(ok, "{err}");
    assert!(listing.contains("Subject: over smtps"), "{listing}");
    let mut plain = Client::connect(smtps);
    plain.send(b"EHLO not-tls\r\n");
    assert!(
        !plain.rest().starts_with("220"),
        "no plain-text greeting on smtps"
    );
}

fn implicit_tls_needs_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mailctl"))
        .args(["serve", "--smtps", "127.0.0.1:0", "--maildir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(
        err.starts_with("mailctl: error: --smtps and --pop3s need"),
        "{err}"
    );
}

fn off_loopback_with_a_certificate_the_inbox_speaks_https() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, "alice:apple\n").unwrap();
    set_private(&users);
    let ca = dir.path().join("ca.pem");
    let args = [
        "--http",
        "0.0.0.0:0",
        "--users-file",
        users.to_str().unwrap(),
        "--tls-self-signed",
        ca.to_str().unwrap(),
    ];
    let server = Server::start_in(dir, &args);
    assert!(server
        .log()
        .iter()
        .any(|l| l.starts_with("mailctl: https listening on")));
    write_message(
        &server.maildir().join("alice"),
        "Subject: secret\r\n\r\nhi\r\n",
    );
    let https = |extra: &[&str]| {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "30", "--cacert"])
            .arg(&ca)
            .args(["-w", "\n%{http_code}"])
            .args(extra)
            .arg(format!(
                "https://127.0.0.1:{}/api/wait?subject=secret&timeout=30",
                server.http
            ));
        run(&mut cmd).1
    };
    let answer = https(&["-u", "alice:apple"]);
    assert!(
        answer.ends_with("\n200") && answer.contains("\"subject\": \"secret\""),
        "{answer}"
    );
    assert!(https(&[]).ends_with("\n401"));
    let (_, plain, _) = run(Command::new("curl")
        .args(["-s", "--max-time", "10", "-u", "alice:apple"])
        .arg(format!("http://127.0.0.1:{}/api/messages", server.http)));
    assert!(!plain.contains("secret"), "no plain HTTP: {plain}");
}

fn fault_rules_at_every_command_stage_and_every_nth() {
    let server = Server::start(&[
        "--fault",
        "ehlo:*.bad=554 5.7.1 go away",
        "--fault",
        "auth=454 4.7.0 try later",
        "--fault",
        "mail:*@spam.example=550 5.7.1 no spam",
        "--fault",
        "data:*@slow.example=451 4.3.0 slow down;every=2",
    ]);
    let mut c = server.smtp();
    c.expect_reply("220");
    c.send(b"EHLO host.bad\r\n");
    assert_eq!(c.reply(), "554 5.7.1 go away\r\n");
    c.send(b"EHLO host.good\r\nAUTH PLAIN AGFsaWNlAHB3\r\n");
    c.expect_reply("250");
    assert_eq!(c.reply(), "454 4.7.0 try later\r\n");
    c.send(b"MAIL FROM:<x@SPAM.example>\r\n");
    assert_eq!(c.reply(), "550 5.7.1 no spam\r\n");
    let mut data_replies = Vec::new();
    for _ in 0..4 {
        c.send(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@slow.example>\r\nDATA\r\n");
        c.expect_reply("250");
        c.expect_reply("250");
        let reply = c.reply();
        if reply.starts_with("354") {
            c.send(b"Subject: s\r\n\r\nhi\r\n.\r\n");
            c.expect_reply("250");
        } else {
            c.send(b"RSET\r\n");
            c.expect_reply("250");
        }
        data_replies.push(reply);
    }
    assert_eq!(data_replies[1], "451 4.3.0 slow down\r\n");
    assert_eq!(data_replies[3], "451 4.3.0 slow down\r\n");
    assert!(data_replies[0].starts_with("354") && data_replies[2].starts_with("354"));
    assert_eq!(server.files("b", "new").len(), 2);
    c.send(b"QUIT\r\n");
    c.expect_reply("221");
}

fn mailboxes_are_listed() {
    let server = Server::start(&["--http", "127.0.0.1:0"]);
    assert_eq!(
        curl(&server, "/api/mailboxes", &[]).json()["mailboxes"],
        serde_json::json!([])
    );
    server.deliver("a@x", &["bob@x", "alice@x"], b"Subject: two\r\n\r\nhi\r\n");
    let names = curl(&server, "/api/mailboxes", &[]).json();
    assert_eq!(names["mailboxes"], serde_json::json!(["alice", "bob"]));
}

/// The server's resident memory in KiB (`VmRSS` in /proc/PID/status).
fn resident_kib(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A connection to the web inbox that reads with a generous time-out.
fn http_connection(server: &Server) -> std::net::TcpStream {
    let tcp = std::net::TcpStream::connect(("127.0.0.1", server.http)).unwrap();
    tcp.set_read_timeout(Some(serve_support::LIMIT)).unwrap();
    tcp
}

/// Everything the server sends until it closes (a reset ends it too).
fn read_until_closed(tcp: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n @ 1..) = tcp.read(&mut chunk) {
        answer.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

fn an_endless_header_line_is_cut_off_with_431_and_memory_stays_flat() {
    use std::io::Write;
    let server = Server::start(&["--http", "127.0.0.1:0"]);
    assert_eq!(curl(&server, "/api/messages", &[]).status, 200);
    let before = resident_kib(&server);
    let mut tcp = http_connection(&server);
    tcp.write_all(b"GET /api/messages HTTP/1.1\r\nHost: localhost\r\nX-Long: ")
        .unwrap();
    let chunk = vec![b'a'; 1024 * 1024];
    let mut sent = 0;
    while sent < 50 && tcp.write_all(&chunk).is_ok() {
        sent += 1;
    }
    let answer = read_until_closed(&mut tcp);
    assert!(
        answer.starts_with("HTTP/1.1 431 ") && answer.contains("Connection: close"),
        "after {sent} MiB: {answer}"
    );
    let after = resident_kib(&server);
    println!("431 after {sent} MiB sent; resident {before} KiB before, {after} KiB after");
    assert!(
        after < before + 8 * 1024,
        "resident memory grew from {before} KiB to {after} KiB"
    );
    assert_eq!(curl(&server, "/api/messages", &[]).status, 200);
}

fn a_stalled_head_gets_408_and_an_idle_connection_is_closed() {
    use std::io::Write;
    let server = Server::start(&["--http", "127.0.0.1:0"]);
    std::thread::scope(|scope| {
        let mut tcp = http_connection(&server);
        let stalled = scope.spawn(move || {
            tcp.write_all(b"GET /api/messages HTTP/1.1\r\nHost: localh")
                .unwrap();
            let started = std::time::Instant::now();
            let answer = read_until_closed(&mut tcp);
            (answer, started.elapsed())
        });
        let mut idle = http_connection(&server);
        idle.write_all(b"GET /api/mailboxes HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let answer = read_until_closed(&mut idle);
        assert!(
            answer.starts_with("HTTP/1.1 200 OK\r\n")
                && answer.contains("Connection: keep-alive")
                && answer.ends_with("{\n  \"mailboxes\": []\n}\n"),
            "an idle kept-alive connection is closed with nothing more: {answer}"
        );
        let (answer, waited) = stalled.join().unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 408 ") && answer.contains("Connection: close"),
            "{answer}"
        );
        assert!(waited >= Duration::from_secs(9), "closed after {waited:?}");
    });
}

/// A connection to `port` on 127.0.0.1 from the loopback address `from`.
fn connect_from(from: [u8; 4], port: u16) -> socket2::Socket {
    use socket2::{Domain, SockAddr, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let local = std::net::SocketAddr::from((from, 0));
    socket.bind(&SockAddr::from(local)).unwrap();
    let server = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    socket.connect(&SockAddr::from(server)).unwrap();
    socket
}

fn idle_connections_are_capped_per_address_and_in_total() {
    let server = Server::start(&["--http", "127.0.0.1:0"]);
    let fresh = || curl(&server, "/api/messages", &["--interface", "127.0.0.2"]);
    let idle: Vec<_> = (0..200)
        .map(|_| connect_from([127, 0, 0, 1], server.http))
        .collect();
    assert_eq!(fresh().status, 200, "another address is served");
    let same = curl(&server, "/api/messages", &[]);
    assert_eq!(same.status, 503, "over the cap of one address");
    assert!(
        same.headers.contains("Connection: close"),
        "{}",
        same.headers
    );
    // 16 held from 127.0.0.1 and 16 from each of three more: 64 in all.
    let mut others: Vec<_> = (3..=5)
        .flat_map(|n| (0..16).map(move |_| [127, 0, 0, n]))
        .map(|from| connect_from(from, server.http))
        .collect();
    let refused = (0..100).map(|_| fresh().status).find(|&s| s == 503);
    assert_eq!(refused, Some(503), "over the total cap");
    others.clear();
    let served = (0..100).map(|_| fresh().status).find(|&s| s == 200);
    assert_eq!(served, Some(200), "served again once others left");
    drop(idle);
}

fn a_terminated_server_ends_its_event_streams_and_connections() {
    use std::io::Write;
    let server = Server::start(&["--http", "127.0.0.1:0"]);
    let mut events = http_connection(&server);
    events
        .write_all(b"GET /api/events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(&mut events, &mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200 OK\r");
    let mut waiting = http_connection(&server);
    waiting
        .write_all(b"GET /api/wait?subject=never&timeout=300 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let asked = std::time::Instant::now();
    let (status, log, _dir) = server.terminate();
    println!("stopped {:?} after SIGTERM", asked.elapsed());
    assert!(status.success(), "{log:?}");
    assert!(read_until_closed(&mut events).contains(": mailctl events"));
    let answer = read_until_closed(&mut waiting);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 503 "),
        "{answer}"
    );
}

fn a_tls_handshake_trickled_byte_by_byte_is_cut_at_its_deadline() {
    use std::io::{Read, Write};
    let (server, _ca) = serve_support::tls_server(&["--http", "127.0.0.1:0"]);
    let mut tcp = http_connection(&server);
    tcp.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    // A TLS record header announcing a 512-byte ClientHello, then one byte
    // a second: each read is quick, the whole never completes.
    tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).unwrap();
    let started = std::time::Instant::now();
    let closed = loop {
        if started.elapsed() > Duration::from_secs(45) {
            break false;
        }
        if tcp.write_all(&[0x01]).is_err() {
            break true;
        }
        match tcp.read(&mut [0u8; 64]) {
            Ok(_) => break true,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break true,
        }
    };
    let waited = started.elapsed();
    assert!(closed, "still open after {waited:?}");
    assert!(waited >= Duration::from_secs(9), "closed after {waited:?}");
}

fn an_event_client_that_stops_reading_is_dropped() {
    use std::io::{Read, Write};
    let server = Server::start(&["--http", "127.0.0.1:0"]);
    let mut events = http_connection(&server);
    events
        .write_all(b"GET /api/events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 16];
    events.read_exact(&mut head).unwrap();
    // Not reading on: every SMTP command and reply is a log event.
    let mut smtp = std::net::TcpStream::connect(("127.0.0.1", server.smtp)).unwrap();
    let mut replies = smtp.try_clone().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = replies.read_to_end(&mut all);
        all.len()
    });
    let commands = 100_000;
    smtp.write_all(&b"NOOP\r\n".repeat(commands)).unwrap();
    smtp.write_all(b"QUIT\r\n").unwrap();
    assert!(reader.join().unwrap() > commands * 8);
    // Its queue overflowed, so the server dropped it: what was sent and
    // queued comes out, then the end (not the keep-alives of a stream
    // still open).
    events
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let (mut received, started) = (0, std::time::Instant::now());
    let ended = loop {
        if started.elapsed() > Duration::from_secs(60) {
            break false;
        }
        match events.read(&mut [0u8; 65536]) {
            Ok(0) => break true,
            Ok(n) => received += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    println!(
        "{received} bytes of events received, of about {} sent",
        commands * 2 * 40
    );
    assert!(ended, "still open after {received} bytes");
    assert!(
        received < commands * 2 * 30,
        "{received} bytes: nothing dropped"
    );
}

fn oversized_or_unmeasured_bodies_are_refused() {
    let server = Server::start(&["--http", "127.0.0.1:0"]);
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'#'; 2 * 1024 * 1024]).unwrap();
    let data = format!("@{}", big.display());
    let put = |extra: &[&str]| {
        let mut args = vec!["-X", "PUT", "--data-binary", data.as_str()];
        args.extend_from_slice(extra);
        curl(&server, "/api/faults", &args)
    };
    let answer = put(&[]);
    assert_eq!(
        answer.status,
        413,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let answer = put(&["-H", "Expect:"]);
    assert_eq!(answer.status, 413, "without 100-continue too");
    let chunked = put(&["-H", "Transfer-Encoding: chunked"]);
    assert_eq!(chunked.status, 411);
    assert_eq!(
        curl(&server, "/api/faults", &[]).json()["rules"],
        serde_json::json!([])
    );
}
