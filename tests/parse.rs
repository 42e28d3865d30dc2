//! `mailctl parse` and the extraction library against the fixture corpus in
//! tests/fixtures/eml (written by its generate.py, which documents every
//! expected byte: attachment bodies are `payload(tag, n)`).

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/eml")
        .join(name)
}

/// The generator's deterministic attachment content.
fn payload(tag: &str, n: usize) -> Vec<u8> {
    let mut data = tag.as_bytes().to_vec();
    data.push(0);
    let cycle: Vec<u8> = (0..=255u8).collect();
    while data.len() < n {
        data.extend_from_slice(&cycle);
    }
    data.truncate(n);
    data
}

fn sha256_hex(data: &[u8]) -> String {
    openssl::sha::sha256(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn mailctl(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailctl"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mailctl");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Extracts a fixture with `mailctl parse --save-dir` into a new temporary
/// folder; returns it, the message's folder and its manifest.
fn extract(name: &str) -> (tempfile::TempDir, PathBuf, Value) {
    let tmp = tempfile::tempdir().unwrap();
    let save = tmp.path().join("out");
    let out = mailctl(
        &[
            "parse",
            fixture(name).to_str().unwrap(),
            "--save-dir",
            save.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let folder = save.join(name.trim_end_matches(".eml"));
    let manifest: Value =
        serde_json::from_slice(&fs::read(folder.join("manifest.json")).unwrap()).unwrap();
    // Nothing anywhere but the one folder.
    let top: Vec<_> = fs::read_dir(&save)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(top, vec![folder.clone()]);
    // The original is kept as it was.
    assert_eq!(
        fs::read(folder.join("message.eml")).unwrap(),
        fs::read(fixture(name)).unwrap()
    );
    (tmp, folder, manifest)
}

fn names(folder: &Path) -> BTreeSet<String> {
    fs::read_dir(folder)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            assert!(
                e.file_type().unwrap().is_file(),
                "{:?} is not a plain file",
                e.path()
            );
            e.file_name().into_string().unwrap()
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn read(folder: &Path, name: &str) -> Vec<u8> {
    fs::read(folder.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn part<'a>(manifest: &'a Value, saved_as: &str) -> &'a Value {
    manifest["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["saved_as"] == saved_as)
        .unwrap_or_else(|| panic!("no part saved as {saved_as}: {manifest:#}"))
}

fn warnings(manifest: &Value) -> Vec<String> {
    manifest["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn gb18030_message_with_two_attachments() {
    let (_tmp, folder, m) = extract("gb18030-two-attachments.eml");
    assert_eq!(
        names(&folder),
        set(&[
            "body.html",
            "body.txt",
            "manifest.json",
            "message.eml",
            "self.jpg",
            "test.docx"
        ])
    );
    assert_eq!(
        read(&folder, "body.txt"),
        "你好，请查收附件中的照片和文档。".as_bytes()
    );
    assert_eq!(
        read(&folder, "body.html"),
        "<div>你好，<b>请查收</b>附件中的照片和文档。</div>".as_bytes()
    );
    assert_eq!(read(&folder, "self.jpg"), payload("self.jpg", 3000));
    assert_eq!(read(&folder, "test.docx"), payload("test.docx", 5000));

    let h = &m["headers"];
    assert_eq!(h["from"], "张三 <zhangsan@example.com>");
    assert_eq!(h["to"], "李四 <lisi@example.net>");
    assert_eq!(h["subject"], "测试邮件附件");
    assert_eq!(h["date"], "Sat, 25 Apr 2020 20:52:43 +0800");
    assert_eq!(h["message_id"], "fixture-gb18030@example.com");
    assert_eq!(h["cc"], Value::Null);
    assert_eq!(m["body_text"], "body.txt");
    assert_eq!(m["body_html"], "body.html");
    assert_eq!(warnings(&m), Vec::<String>::new());

    let parts = m["parts"].as_array().unwrap();
    let roles: Vec<&str> = parts.iter().map(|p| p["role"].as_str().unwrap()).collect();
    assert_eq!(
        roles,
        ["body-text", "body-html", "attachment", "attachment"]
    );
    let jpg = part(&m, "self.jpg");
    assert_eq!(jpg["original_name"], "self.jpg");
    assert_eq!(jpg["content_type"], "application/octet-stream");
    assert_eq!(jpg["size"], 3000);
    assert_eq!(jpg["sha256"], sha256_hex(&payload("self.jpg", 3000)));
    assert_eq!(jpg["disposition"], "attachment");
    let docx = part(&m, "test.docx");
    assert_eq!(docx["sha256"], sha256_hex(&payload("test.docx", 5000)));
    assert_eq!(docx["part"], "5");
    let text = &parts[0];
    assert_eq!(text["charset"], "gb18030");
    assert_eq!(
        text["sha256"],
        sha256_hex("你好，请查收附件中的照片和文档。".as_bytes())
    );
}

/// (charset, subject, sender name, body, attachment name), as in generate.py.
const CHARSETS: &[(&str, &str, &str, &str, &str)] = &[
    ("gb18030", "中文邮件标题", "王五", "这是正文。", "报告.txt"),
    ("gbk", "简体中文", "赵六", "正文内容。", "数据.csv"),
    ("gb2312", "会议通知", "钱七", "明天开会。", "通知.txt"),
    ("big5", "繁體中文", "陳大文", "這是內文。", "報告.txt"),
    (
        "shift_jis",
        "日本語の件名",
        "山田太郎",
        "本文です。",
        "資料.txt",
    ),
    (
        "euc-jp",
        "会議の予定",
        "鈴木花子",
        "よろしくお願いします。",
        "予定.txt",
    ),
    (
        "iso-2022-jp",
        "お知らせ",
        "佐藤",
        "こんにちは。",
        "案内.txt",
    ),
    ("euc-kr", "한국어 제목", "김철수", "본문입니다.", "문서.txt"),
    ("koi8-r", "Привет", "Иван", "Текст письма.", "отчёт.txt"),
    (
        "iso-8859-1",
        "Café crème",
        "José",
        "Voilà le résumé.",
        "résumé.txt",
    ),
    ("iso-8859-2", "Zażółć", "Łukasz", "Gęślą jaźń.", "żółw.txt"),
    ("iso-8859-5", "Отчет", "Пётр", "Доклад.", "доклад.txt"),
    ("iso-8859-7", "Καλημέρα", "Νίκος", "Γειά σου.", "αρχείο.txt"),
    ("iso-8859-15", "Prix en €", "Zoë", "Coût: 5 €.", "coût.txt"),
    (
        "windows-1250",
        "Dobrý den",
        "Jiří",
        "Příliš žluťoučký kůň.",
        "kůň.txt",
    ),
    (
        "windows-1251",
        "Здравствуйте",
        "Ольга",
        "Сообщение.",
        "файл.txt",
    ),
    (
        "windows-1252",
        "Smart “quotes”",
        "Renée",
        "It’s – fine…",
        "naïve.txt",
    ),
];

#[test]
fn every_charset_and_transfer_encoding() {
    for &(cs, subject, sender, body, fname) in CHARSETS {
        let (_tmp, folder, m) = extract(&format!("charset-{cs}.eml"));
        assert_eq!(
            names(&folder),
            set(&["body.txt", "manifest.json", "message.eml", fname]),
            "{cs}"
        );
        assert_eq!(m["headers"]["subject"], subject, "{cs}");
        assert_eq!(
            m["headers"]["from"],
            format!("{sender} <sender@example.com>"),
            "{cs}"
        );
        assert_eq!(
            String::from_utf8(read(&folder, "body.txt")).unwrap(),
            body,
            "{cs}"
        );
        let attachment = format!("{cs}: {body}\n");
        assert_eq!(
            String::from_utf8(read(&folder, fname)).unwrap(),
            attachment,
            "{cs}"
        );
        let p = part(&m, fname);
        assert_eq!(p["original_name"], fname, "{cs}");
        assert_eq!(p["charset"], cs, "{cs}");
        assert_eq!(p["sha256"], sha256_hex(attachment.as_bytes()), "{cs}");
        assert_eq!(warnings(&m), Vec::<String>::new(), "{cs}");
    }
}

#[test]
fn nested_forwards_two_deep() {
    let (_tmp, folder, m) = extract("nested-forward.eml");
    assert_eq!(
        names(&folder),
        set(&[
            "Fwd: Innermost.eml",
            "Innermost.eml",
            "body.txt",
            "deep.pdf",
            "manifest.json",
            "message.eml",
            "middle.png"
        ])
    );
    assert_eq!(read(&folder, "body.txt"), b"Forwarding twice.");
    let strip_crlf = |mut v: Vec<u8>| {
        // The CRLF before a boundary belongs to the boundary (RFC 2046 5.1.1).
        assert!(v.ends_with(b"\r\n"));
        v.truncate(v.len() - 2);
        v
    };
    assert_eq!(
        read(&folder, "Fwd: Innermost.eml"),
        strip_crlf(fs::read(fixture("nested-middle.part")).unwrap())
    );
    assert_eq!(
        read(&folder, "Innermost.eml"),
        strip_crlf(fs::read(fixture("nested-inner.part")).unwrap())
    );
    assert_eq!(read(&folder, "deep.pdf"), payload("deep.pdf", 700));
    assert_eq!(read(&folder, "middle.png"), payload("middle.png", 400));

    let parts: Vec<(String, String, Value, Value)> = m["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["part"].as_str().unwrap().to_string(),
                p["role"].as_str().unwrap().to_string(),
                p["saved_as"].clone(),
                p["in_message"].clone(),
            )
        })
        .collect();
    let s = |v: &str| Value::String(v.to_string());
    assert_eq!(
        parts,
        vec![
            ("1".into(), "body-text".into(), s("body.txt"), Value::Null),
            (
                "2".into(),
                "message".into(),
                s("Fwd: Innermost.eml"),
                Value::Null
            ),
            (
                "2.1".into(),
                "nested-body".into(),
                Value::Null,
                s("Fwd: Innermost.eml")
            ),
            (
                "2.2".into(),
                "message".into(),
                s("Innermost.eml"),
                s("Fwd: Innermost.eml")
            ),
            (
                "2.2.1".into(),
                "nested-body".into(),
                Value::Null,
                s("Innermost.eml")
            ),
            (
                "2.2.2".into(),
                "attachment".into(),
                s("deep.pdf"),
                s("Innermost.eml")
            ),
            (
                "2.3".into(),
                "attachment".into(),
                s("middle.png"),
                s("Fwd: Innermost.eml")
            ),
        ]
    );
    assert_eq!(part(&m, "deep.pdf")["content_type"], "application/pdf");
}

#[test]
fn evil_file_names_stay_inside_the_folder() {
    let (tmp, folder, m) = extract("evil-names.eml");
    let long = format!("{}.txt", "n".repeat(251));
    let expected: Vec<(&str, &str)> = vec![
        ("x", "evil-1"),
        ("x (2)", "evil-2"),
        ("b", "evil-3"),
        ("nulname.txt", "evil-4"),
        (&long, "evil-5"),
        ("evil.sh", "evil-6"),
        ("evil2.sh", "evil-7"),
        ("attachment-1.bin", "evil-8"),
        ("hidden", "evil-9"),
        ("attachment-2.bin", "evil-10"),
        ("message (2).eml", "evil-11"),
        ("manifest (2).json", "evil-12"),
        ("body (2).txt", "evil-13"),
        ("cont.sh", "evil-14"),
        ("esc[31mred.txt", "evil-15"),
        ("link.txt", "evil-16"),
        ("rawnul.txt", "evil-17"),
        ("报告.txt", "evil-18"),
        ("文件.txt", "evil-19"),
    ];
    let mut want = set(&["body.txt", "manifest.json", "message.eml"]);
    for (name, tag) in &expected {
        want.insert(name.to_string());
        assert_eq!(read(&folder, name), payload(tag, 40), "{name}");
        assert_eq!(part(&m, name)["sha256"], sha256_hex(&payload(tag, 40)));
    }
    assert_eq!(names(&folder), want);
    assert_eq!(long.len(), 255);
    assert_eq!(read(&folder, "body.txt"), b"names");
    assert_eq!(part(&m, "x")["original_name"], "../../x");
    assert_eq!(part(&m, "evil.sh")["original_name"], "../../evil.sh");
    assert_eq!(part(&m, "evil2.sh")["original_name"], "../../evil2.sh");
    assert_eq!(part(&m, "cont.sh")["original_name"], "../../cont.sh");
    assert_eq!(part(&m, "文件.txt")["original_name"], "../../文件.txt");
    // Nothing was written beside the save folder either.
    let top: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(top, vec![std::ffi::OsString::from("out")]);
}

#[test]
fn duplicates_are_numbered_and_unnamed_parts_get_a_typed_name() {
    let (_tmp, folder, m) = extract("duplicates.eml");
    assert_eq!(
        names(&folder),
        set(&[
            "attachment-1.png",
            "attachment-2.png",
            "body.txt",
            "manifest.json",
            "message.eml",
            "report (2).pdf",
            "report (3).pdf",
            "report.pdf"
        ])
    );
    assert_eq!(read(&folder, "report.pdf"), payload("report-0", 100));
    assert_eq!(read(&folder, "report (2).pdf"), payload("report-1", 100));
    assert_eq!(read(&folder, "report (3).pdf"), payload("report-2", 100));
    assert_eq!(read(&folder, "attachment-1.png"), payload("unnamed-0", 50));
    assert_eq!(read(&folder, "attachment-2.png"), payload("unnamed-1", 50));
    assert_eq!(part(&m, "report (3).pdf")["original_name"], "report.pdf");
    assert_eq!(part(&m, "attachment-2.png")["original_name"], Value::Null);
}

#[test]
fn broken_base64_is_decoded_as_far_as_possible() {
    let (_tmp, folder, m) = extract("broken-base64.eml");
    assert_eq!(
        names(&folder),
        set(&[
            "body.txt",
            "broken.bin",
            "manifest.json",
            "message.eml",
            "truncated.bin"
        ])
    );
    assert_eq!(read(&folder, "broken.bin"), payload("broken", 300));
    assert_eq!(
        read(&folder, "truncated.bin"),
        payload("truncated", 200)[..195]
    );
    assert_eq!(
        part(&m, "broken.bin")["content_type"],
        "application/octet-stream"
    );
    let w = warnings(&m);
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].starts_with("part 2: base64"), "{w:?}");
    assert!(
        w[1].starts_with("part 3: base64 ends in the middle"),
        "{w:?}"
    );
}

#[test]
fn missing_end_boundary() {
    let (_tmp, folder, m) = extract("missing-end-boundary.eml");
    assert_eq!(
        names(&folder),
        set(&["body.txt", "cut.zip", "manifest.json", "message.eml"])
    );
    assert_eq!(read(&folder, "body.txt"), b"body before the attachment");
    assert_eq!(read(&folder, "cut.zip"), payload("cut.zip", 120));
    let w = warnings(&m);
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].contains("without its end boundary"), "{w:?}");
}

#[test]
fn unknown_charset_is_read_with_a_warning() {
    let (_tmp, folder, m) = extract("unknown-charset.eml");
    assert_eq!(
        names(&folder),
        set(&["body.txt", "manifest.json", "message.eml"])
    );
    assert_eq!(read(&folder, "body.txt"), "caf\u{fffd} ok\n".as_bytes());
    assert_eq!(
        warnings(&m),
        ["part 0: unknown charset \"x-no-such-charset\"; read as UTF-8 (attachments kept as sent)"]
    );
}

#[test]
fn headers_without_a_value() {
    let (_tmp, folder, m) = extract("header-without-value.eml");
    assert_eq!(read(&folder, "body.txt"), b"plain body\n");
    assert_eq!(m["headers"]["to"], Value::Null);
    assert_eq!(m["headers"]["subject"], Value::Null);
    assert_eq!(m["headers"]["from"], "a@example.com");
    assert_eq!(
        warnings(&m),
        ["header To has no value", "header Subject has no value"]
    );
}

#[test]
fn inline_image_keeps_its_content_id() {
    let (_tmp, folder, m) = extract("inline-image.eml");
    assert_eq!(
        names(&folder),
        set(&[
            "body.html",
            "body.txt",
            "logo.png",
            "manifest.json",
            "message.eml"
        ])
    );
    assert_eq!(
        read(&folder, "body.html"),
        b"<p>logo: <img src=\"cid:logo@example.com\"></p>"
    );
    assert_eq!(read(&folder, "logo.png"), payload("logo.png", 256));
    let logo = part(&m, "logo.png");
    assert_eq!(logo["role"], "inline");
    assert_eq!(logo["content_id"], "logo@example.com");
    assert_eq!(logo["disposition"], "inline");
    assert_eq!(logo["content_type"], "image/png");
}

#[test]
fn a_symbolic_link_in_the_folder_is_never_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("msg");
    fs::create_dir(&dir).unwrap();
    let outside = tmp.path().join("outside.txt");
    std::os::unix::fs::symlink(&outside, dir.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("body.txt")).unwrap();
    let raw = fs::read(fixture("evil-names.eml")).unwrap();
    let manifest = mailctl::mail::extract::extract_to_dir(&raw, &dir).unwrap();
    assert!(!outside.exists());
    assert_eq!(
        fs::read(dir.join("link (2).txt")).unwrap(),
        payload("evil-16", 40)
    );
    assert_eq!(manifest.body_text.as_deref(), Some("body (2).txt"));
    assert_eq!(fs::read(dir.join("body (2).txt")).unwrap(), b"names");
    // The attachment called body.txt moved one further along.
    assert_eq!(
        fs::read(dir.join("body (3).txt")).unwrap(),
        payload("evil-13", 40)
    );
    assert!(fs::symlink_metadata(dir.join("link.txt"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn extracting_twice_into_one_folder_never_overwrites() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = fs::read(fixture("duplicates.eml")).unwrap();
    mailctl::mail::extract::extract_to_dir(&raw, tmp.path()).unwrap();
    // The manifest name is fixed: a second run refuses rather than overwrite.
    let err = mailctl::mail::extract::extract_to_dir(&raw, tmp.path()).unwrap_err();
    assert_eq!(
        mailctl::exit::exit_status(&err),
        mailctl::exit::Exit::CantCreate
    );
    assert_eq!(
        fs::read(tmp.path().join("report.pdf")).unwrap(),
        payload("report-0", 100)
    );
    assert_eq!(
        fs::read(tmp.path().join("report (4).pdf")).unwrap(),
        payload("report-0", 100)
    );
}

#[test]
fn summary_without_save_dir() {
    let out = mailctl(
        &[
            "parse",
            fixture("gb18030-two-attachments.eml").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text,
        "From: 张三 <zhangsan@example.com>\n\
         To: 李四 <lisi@example.net>\n\
         Date: Sat, 25 Apr 2020 20:52:43 +0800\n\
         Subject: 测试邮件附件\n\
         Message-ID: <fixture-gb18030@example.com>\n\
         \n\
         你好，请查收附件中的照片和文档。\n\
         \n\
         Attachments:\n  \
         self.jpg  application/octet-stream, 3000 bytes\n  \
         test.docx  application/octet-stream, 5000 bytes\n"
    );
}

#[test]
fn summary_escapes_terminal_controls() {
    let raw =
        b"From: a@example.com\r\nSubject: =?utf-8?Q?hi=1B]0;pwned=07?=\r\n\r\nline\x1b[2J\r\n";
    let out = mailctl(&["parse", "-"], Some(raw));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\x1b'), "{text:?}");
    assert!(text.contains("Subject: hi\\x1b]0;pwned\\x07\n"), "{text:?}");
    assert!(text.contains("line\\x1b[2J\n"), "{text:?}");
}

#[test]
fn json_summary_one_and_several() {
    let one = mailctl(
        &["parse", "--json"],
        Some(&fs::read(fixture("inline-image.eml")).unwrap()),
    );
    assert_eq!(one.status.code(), Some(0), "{}", stderr(&one));
    let v: Value = serde_json::from_slice(&one.stdout).unwrap();
    assert_eq!(v["file"], "-");
    assert_eq!(v["headers"]["subject"], "inline image");
    assert_eq!(v["html"], "<p>logo: <img src=\"cid:logo@example.com\"></p>");
    assert_eq!(v["parts"][1]["content_id"], "logo@example.com");
    assert_eq!(v["parts"][1]["saved_as"], Value::Null);

    let a = fixture("duplicates.eml");
    let b = fixture("charset-big5.eml");
    let several = mailctl(
        &["parse", "--json", a.to_str().unwrap(), b.to_str().unwrap()],
        None,
    );
    assert_eq!(several.status.code(), Some(0), "{}", stderr(&several));
    let v: Value = serde_json::from_slice(&several.stdout).unwrap();
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["headers"]["subject"], "duplicates");
    assert_eq!(items[1]["text"], "這是內文。");
}

#[test]
fn save_dir_folders_are_unique_and_json_lists_manifests() {
    let tmp = tempfile::tempdir().unwrap();
    let save = tmp.path().join("out");
    let f = fixture("duplicates.eml");
    let out = mailctl(
        &[
            "parse",
            "--json",
            f.to_str().unwrap(),
            f.to_str().unwrap(),
            "-",
            "--save-dir",
            save.to_str().unwrap(),
        ],
        Some(&fs::read(fixture("inline-image.eml")).unwrap()),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let folders: BTreeSet<String> = fs::read_dir(&save)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(folders, set(&["duplicates", "duplicates (2)", "stdin"]));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = v.as_array().unwrap();
    assert_eq!(
        items[1]["folder"],
        save.join("duplicates (2)").to_str().unwrap()
    );
    assert_eq!(items[2]["parts"][1]["saved_as"], "logo.png");
    assert_eq!(
        fs::read(save.join("stdin/logo.png")).unwrap(),
        payload("logo.png", 256)
    );
}

#[test]
fn warnings_go_to_stderr() {
    let out = mailctl(
        &[
            "parse",
            fixture("header-without-value.eml").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains("mailctl: warning: "), "{err}");
    assert!(err.contains("header Subject has no value"), "{err}");
}

#[test]
fn missing_input_is_66() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope.eml");
    let out = mailctl(&["parse", missing.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(66));
    let err = stderr(&out);
    assert!(err.starts_with("mailctl: error: "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn not_a_message_is_65() {
    for input in [&b""[..], b"\r\n\r\n", b"\x00\x01\x02 no header here"] {
        let out = mailctl(&["parse", "-"], Some(input));
        assert_eq!(out.status.code(), Some(65), "{input:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("not a message"), "{}", stderr(&out));
    }
    // With several inputs the others are still decoded, and no empty
    // folder is left behind for the bad one.
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.eml");
    fs::write(&bad, b"").unwrap();
    let save = tmp.path().join("out");
    let good = fixture("duplicates.eml");
    let out = mailctl(
        &[
            "parse",
            bad.to_str().unwrap(),
            good.to_str().unwrap(),
            "--save-dir",
            save.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(save.join("duplicates/report.pdf").exists());
    assert!(!save.join("bad").exists());
}

#[test]
fn uncreatable_output_is_73() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    fs::write(&file, b"x").unwrap();
    let out = mailctl(
        &[
            "parse",
            fixture("duplicates.eml").to_str().unwrap(),
            "--save-dir",
            file.join("sub").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(73), "{}", stderr(&out));
}

#[test]
fn inputs_found_by_the_fuzzer_do_not_crash() {
    // Each once ended the process; now each is decoded or refused as bad
    // data (in debug builds mail-parser's own debug assertion fires and is
    // caught; release builds decode it).
    let dir = fixture("regress");
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let tmp = tempfile::tempdir().unwrap();
        let out = mailctl(
            &[
                "parse",
                path.to_str().unwrap(),
                "--save-dir",
                tmp.path().to_str().unwrap(),
            ],
            None,
        );
        assert!(
            matches!(out.status.code(), Some(0) | Some(65)),
            "{path:?}: {:?} {}",
            out.status,
            stderr(&out)
        );
    }
}

#[test]
fn odd_inputs_never_panic_and_keep_documented_statuses() {
    let tmp = tempfile::tempdir().unwrap();
    // A directory is an input that cannot be read.
    let out = mailctl(&["parse", tmp.path().to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(66), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    // /dev/null is empty: not a message.
    let out = mailctl(&["parse", "/dev/null"], None);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    // Multiparts nested 2000 deep, never closed: decoded, with warnings.
    let mut deep = String::from("From: a@b\r\nSubject: deep\r\nMIME-Version: 1.0\r\n");
    for i in 0..2000 {
        deep.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
        ));
    }
    deep.push_str("Content-Type: text/plain\r\n\r\ninner\r\n");
    let out = mailctl(&["parse", "-"], Some(deep.as_bytes()));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\ninner\n"));
}

#[test]
fn names_of_only_dots_spaces_and_slashes_get_a_typed_name() {
    let proposed = [". ..", ". .", "....", "/////", "\\\\", " . . .x.txt"];
    let mut message = String::from(
        "From: a@b\r\nSubject: dots\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"z\"\r\n\r\n",
    );
    for (i, name) in proposed.iter().enumerate() {
        message.push_str(&format!(
            "--z\r\nContent-Type: application/octet-stream\r\n\
             Content-Disposition: attachment; filename*=utf-8''{}\r\n\r\npart{i}\r\n",
            name.replace('%', "%25")
                .replace(' ', "%20")
                .replace('\\', "%5C")
        ));
    }
    message.push_str("--z--\r\n");
    let tmp = tempfile::tempdir().unwrap();
    let save = tmp.path().join("out");
    let out = mailctl(
        &["parse", "--save-dir", save.to_str().unwrap(), "-"],
        Some(message.as_bytes()),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let folder = save.join("stdin");
    assert_eq!(
        names(&folder),
        set(&[
            "attachment-1.bin",
            "attachment-2.bin",
            "attachment-3.bin",
            "attachment-4.bin",
            "attachment-5.bin",
            "x.txt",
            "manifest.json",
            "message.eml",
        ])
    );
    assert_eq!(read(&folder, "attachment-1.bin"), b"part0");
    assert_eq!(read(&folder, "x.txt"), b"part5");
    // Nothing beside the save folder.
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
}

/// Runs `parse --save-dir` on `raw` given on standard input; returns the
/// temporary folder, the message's folder and the run's output.
fn save_stdin(raw: &[u8], extra: &[&str]) -> (tempfile::TempDir, PathBuf, Output) {
    let tmp = tempfile::tempdir().unwrap();
    let save = tmp.path().join("out");
    let mut args = vec!["parse", "--save-dir", save.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push("-");
    let out = mailctl(&args, Some(raw));
    (tmp, save.join("stdin"), out)
}

#[test]
fn manifest_describes_the_body_files_as_written() {
    let raw = b"From: a@example.org\r\nSubject: bodies\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"b\"\r\n\r\n--b\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nfirst line\r\nsecond line\r\nthird\r\n\
--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>one</p>\r\n<p>two</p>\r\n--b--\r\n";
    let (_tmp, folder, out) = save_stdin(raw, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let manifest: Value = serde_json::from_slice(&read(&folder, "manifest.json")).unwrap();
    for name in ["body.txt", "body.html"] {
        let file = read(&folder, name);
        assert!(!file.contains(&b'\r'), "{name} has CR");
        let entry = part(&manifest, name);
        assert_eq!(entry["size"], file.len() as u64, "{name}: {manifest:#}");
        assert_eq!(entry["sha256"], sha256_hex(&file), "{name}");
    }
}

/// Runs mailctl with `args` (under `/usr/bin/time -v` when there is one, to
/// learn its peak memory), killed and failed after `limit`: a generous
/// bound, not a measurement. Returns the output and the peak resident set
/// size in KiB, if known.
fn mailctl_bounded(args: &[&str], limit: std::time::Duration) -> (Output, Option<u64>) {
    let time = Path::new("/usr/bin/time");
    let tmp = tempfile::tempdir().unwrap();
    let report = tmp.path().join("time.txt");
    let mut cmd = if time.is_file() {
        let mut cmd = Command::new(time);
        cmd.arg("-v")
            .arg("-o")
            .arg(&report)
            .arg(env!("CARGO_BIN_EXE_mailctl"));
        cmd
    } else {
        Command::new(env!("CARGO_BIN_EXE_mailctl"))
    };
    let stdout = fs::File::create(tmp.path().join("stdout")).unwrap();
    let stderr = fs::File::create(tmp.path().join("stderr")).unwrap();
    let mut child = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mailctl {args:?} still running after {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let peak_kib = fs::read_to_string(&report).ok().and_then(|text| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
            .and_then(|v| v.trim().parse().ok())
    });
    let output = Output {
        status,
        stdout: fs::read(tmp.path().join("stdout")).unwrap(),
        stderr: fs::read(tmp.path().join("stderr")).unwrap(),
    };
    (output, peak_kib)
}

/// A message with `n` small attachments in one multipart/mixed.
fn many_parts(n: usize) -> Vec<u8> {
    let mut raw = b"From: a@example.org\r\nSubject: many parts\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"sep\"\r\n\r\n"
        .to_vec();
    for i in 0..n {
        raw.extend_from_slice(
            format!(
                "--sep\r\nContent-Type: application/octet-stream\r\n\
Content-Disposition: attachment; filename=f{i}.bin\r\n\r\nx{i}\r\n"
            )
            .as_bytes(),
        );
    }
    raw.extend_from_slice(b"--sep--\r\n");
    raw
}

#[test]
fn a_hundred_thousand_parts_are_capped_in_files_time_and_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("many.eml");
    let raw = many_parts(100_000);
    fs::write(&input, &raw).unwrap();
    let save = tmp.path().join("out");
    let (out, peak_kib) = mailctl_bounded(
        &[
            "parse",
            "--save-dir",
            save.to_str().unwrap(),
            input.to_str().unwrap(),
        ],
        std::time::Duration::from_secs(120),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let folder = save.join("many");
    let files = names(&folder);
    // The parts allowed, message.eml and manifest.json.
    assert!(files.len() <= 1000 + 3, "{} files", files.len());
    assert!(files.contains("f999.bin") && !files.contains("f1000.bin"));
    assert_eq!(read(&folder, "f999.bin"), b"x999");
    assert_eq!(
        read(&folder, "message.eml"),
        raw,
        "the message is kept whole"
    );
    let manifest: Value = serde_json::from_slice(&read(&folder, "manifest.json")).unwrap();
    assert_eq!(manifest["parts"].as_array().unwrap().len(), 1000);
    let warned = warnings(&manifest);
    assert!(warned[0].contains("more than 1000 parts"), "{warned:?}");
    assert!(
        !warned.iter().any(|w| w.contains("end boundary")),
        "{warned:?}"
    );
    assert!(
        stderr(&out).contains("more than 1000 parts"),
        "{}",
        stderr(&out)
    );
    // Today about 25 MB in a debug build; all 100,000 parts took 237 MB.
    if let Some(kib) = peak_kib {
        assert!(kib < 120 * 1024, "peak RSS {kib} KiB");
    }
}

#[test]
fn max_parts_flag_sets_the_cap() {
    let raw = many_parts(50);
    let (_tmp, folder, out) = save_stdin(&raw, &["--max-parts", "10"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let files = names(&folder);
    assert_eq!(files.len(), 10 + 2, "{files:?}");
    assert!(
        stderr(&out).contains("more than 10 parts"),
        "{}",
        stderr(&out)
    );
    assert_eq!(read(&folder, "message.eml"), raw);
    // Without --save-dir, the listing is capped the same way.
    let out = mailctl(&["parse", "--json", "--max-parts", "3", "-"], Some(&raw));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["parts"].as_array().unwrap().len(), 3);
    // Under the cap, nothing is said.
    let (_tmp, folder, out) = save_stdin(&raw, &["--max-parts", "50"]);
    assert_eq!(names(&folder).len(), 50 + 2);
    assert!(!stderr(&out).contains("parts"), "{}", stderr(&out));
    let out = mailctl(&["parse", "--max-parts", "0", "-"], Some(&raw));
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
}

#[test]
fn two_hundred_thousand_rfc2231_segments_take_linear_time() {
    let mut raw = b"From: a@example.org\r\nSubject: segments\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n\
--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment"
        .to_vec();
    for i in 0..200_000 {
        raw.extend_from_slice(format!(";\r\n filename*{i}*=%4{}", i % 10).as_bytes());
    }
    raw.extend_from_slice(b"\r\n\r\ndata\r\n--b--\r\n");
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("segments.eml");
    fs::write(&input, &raw).unwrap();
    // Quadratic joining took about two minutes here in a debug build;
    // linear, about two seconds.
    let (out, _) = mailctl_bounded(
        &["parse", "--json", input.to_str().unwrap()],
        std::time::Duration::from_secs(40),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let name = summary["parts"][1]["original_name"].as_str().unwrap();
    assert_eq!(name.len(), 200_000);
    assert!(name.starts_with("@ABCDEFGHI@ABC"), "{}", &name[..20]);
}
