//! The configuration file: account resolution and command-line overrides
//! (through the library), every refusal with its `FILE:LINE:` message and
//! exit status 78, the private-file rule, and `mailctl config check
//! [--connect]` against in-process SMTP and POP3 servers.

mod fake;
mod pty_support;

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::AtomicBool;
use std::thread;
use std::time::Duration;

use mailctl::cli::ConnectArgs;
use mailctl::config::{self, ConfiguredPassword, Protocol};
use mailctl::exit::{exit_status, Exit};
use mailctl::net::connection::TlsMode;

const FULL: &str = r#"
default = "work"

[accounts.work]
from = "Jane Doe <jane@example.org>"
user = "jane"
password_command = "printf 'from-command\\nsecond line\\n'"

[accounts.work.smtp]
host = "smtp.example.org"
port = 465
auth = "cram-md5"

[accounts.work.pop3]
host = "pop.example.org"
tls = "implicit"
user = "jane.pop"
password_env = "MAILCTL_TEST_POP_PASSWORD"
timeout = 15

[accounts.home]
from = "jane@home.example"
ca_file = "certs/home.pem"

[accounts.home.smtp]
host = "mail.home.example"
port = 587
"#;

fn write_config(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn flags() -> ConnectArgs {
    ConnectArgs::default()
}

#[test]
fn default_account_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "c.toml", FULL, 0o644);
    let smtp = config::resolve_smtp(&flags(), Some(&path)).unwrap();
    assert_eq!(smtp.account.as_deref(), Some("work"));
    assert_eq!(smtp.endpoint.to_string(), "smtp.example.org:465");
    assert_eq!(smtp.tls, TlsMode::Implicit, "port 465 implies implicit TLS");
    assert_eq!(smtp.user.as_deref(), Some("jane"));
    assert_eq!(smtp.auth.as_deref(), Some("cram-md5"));
    assert_eq!(smtp.from.as_deref(), Some("Jane Doe <jane@example.org>"));
    assert_eq!(smtp.from_address(), Some("jane@example.org"));
    assert_eq!(smtp.timeout, Duration::from_secs(60));
    assert_eq!(smtp.obtain_password().unwrap().expose(), "from-command");
    assert!(matches!(
        smtp.password.configured,
        Some(ConfiguredPassword::Command { .. })
    ));

    let pop3 = config::resolve_pop3(&flags(), Some(&path)).unwrap();
    assert_eq!(
        pop3.endpoint.to_string(),
        "pop.example.org:995",
        "tls = implicit implies 995"
    );
    assert_eq!(pop3.tls, TlsMode::Implicit);
    assert_eq!(
        pop3.user.as_deref(),
        Some("jane.pop"),
        "server user wins over account user"
    );
    assert_eq!(pop3.timeout, Duration::from_secs(15));
    match &pop3.password.configured {
        Some(ConfiguredPassword::Env { var, origin }) => {
            assert_eq!(var, "MAILCTL_TEST_POP_PASSWORD");
            assert!(origin.ends_with("c.toml:18"), "{origin}");
        }
        other => panic!("server password_env should win: {other:?}"),
    }
    let err = pop3.obtain_password().unwrap_err();
    assert_eq!(exit_status(&err), Exit::Config);
    assert!(format!("{err:#}").contains("MAILCTL_TEST_POP_PASSWORD, which is not set"));
}

#[test]
fn named_account_and_flag_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "c.toml", FULL, 0o644);
    let mut connect = flags();
    connect.account = Some("home".into());
    let home = config::resolve_smtp(&connect, Some(&path)).unwrap();
    assert_eq!(home.endpoint.to_string(), "mail.home.example:587");
    assert_eq!(home.tls, TlsMode::Starttls, "port 587 requires STARTTLS");
    assert_eq!(home.user, None);
    assert_eq!(
        home.tls_options.ca_file.as_deref(),
        Some(dir.path().join("certs/home.pem").as_path()),
        "a relative ca_file is relative to the config file"
    );
    assert!(home.password.configured.is_none());

    connect.server = Some("127.0.0.1:2525".into());
    connect.tls = Some(TlsMode::None);
    connect.user = Some("override".into());
    connect.password_command = Some("echo flag-command".into());
    connect.ca_file = Some("/etc/ca.pem".into());
    connect.timeout = Some(5);
    let over = config::resolve_smtp(&connect, Some(&path)).unwrap();
    assert_eq!(over.account.as_deref(), Some("home"));
    assert_eq!(over.endpoint.to_string(), "127.0.0.1:2525");
    assert_eq!(over.tls, TlsMode::None);
    assert_eq!(over.user.as_deref(), Some("override"));
    assert_eq!(
        over.tls_options.ca_file.as_deref(),
        Some(Path::new("/etc/ca.pem"))
    );
    assert_eq!(over.timeout, Duration::from_secs(5));
    assert_eq!(over.from.as_deref(), Some("jane@home.example"));
    assert_eq!(over.obtain_password().unwrap().expose(), "flag-command");

    // --tls implicit without a port in --server takes the implicit port.
    let mut connect = flags();
    connect.account = Some("work".into());
    connect.server = Some("other.example.org".into());
    connect.tls = Some(TlsMode::Implicit);
    let over = config::resolve_smtp(&connect, Some(&path)).unwrap();
    assert_eq!(over.endpoint.to_string(), "other.example.org:465");
}

/// The connect options `mailctl ARGV...` parses to, for send and fetch.
fn parsed_connect(argv: &[&str]) -> ConnectArgs {
    use clap::Parser;
    let cli = mailctl::cli::Cli::try_parse_from(argv).unwrap();
    match cli.command {
        mailctl::cli::Command::Send(args) => args.connect,
        mailctl::cli::Command::Fetch(args) => args.connect,
        other => panic!("{other:?}"),
    }
}

#[test]
fn timeout_flag_wins_even_at_its_default_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "c.toml",
        "[accounts.a.smtp]\nhost = \"h\"\ntimeout = 5\n\
         [accounts.a.pop3]\nhost = \"h\"\ntimeout = 5\n\
         [accounts.b.smtp]\nhost = \"h\"\n[accounts.b.pop3]\nhost = \"h\"\n",
        0o644,
    );
    let secs = |argv: &[&str]| {
        let connect = parsed_connect(argv);
        let server = match argv[1] {
            "send" => config::resolve_smtp(&connect, Some(&path)),
            _ => config::resolve_pop3(&connect, Some(&path)),
        };
        server.unwrap().timeout.as_secs()
    };
    for command in ["send", "fetch"] {
        // The flag, even at the documented default, beats the file.
        let flag_60 = ["mailctl", command, "--account", "a", "--timeout", "60"];
        assert_eq!(secs(&flag_60), 60, "{command}");
        let flag_7 = ["mailctl", command, "--account", "a", "--timeout", "7"];
        assert_eq!(secs(&flag_7), 7, "{command}");
        // No flag: the file's value.
        assert_eq!(
            secs(&["mailctl", command, "--account", "a"]),
            5,
            "{command}"
        );
        // Neither: 60 seconds.
        assert_eq!(
            secs(&["mailctl", command, "--account", "b"]),
            60,
            "{command}"
        );
        let flag_7 = ["mailctl", command, "--account", "b", "--timeout", "7"];
        assert_eq!(secs(&flag_7), 7, "{command}");
        // --server without --account: the flags alone.
        let flags_only = ["mailctl", command, "--server", "h"];
        assert_eq!(secs(&flags_only), 60, "{command}");
        let flags_only = ["mailctl", command, "--server", "h", "--timeout", "9"];
        assert_eq!(secs(&flags_only), 9, "{command}");
    }
    assert_eq!(config::resolve_timeout(Some(60), Some(5)), 60);
    assert_eq!(config::resolve_timeout(None, Some(5)), 5);
    assert_eq!(config::resolve_timeout(None, None), 60);
}

#[test]
fn timeout_help_names_the_default() {
    let dir = tempfile::tempdir().unwrap();
    for command in ["send", "fetch"] {
        let out = mailctl(dir.path())
            .args([command, "--help"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        let help = String::from_utf8_lossy(&out.stdout);
        let option = help
            .split("--timeout <SECS>")
            .nth(1)
            .unwrap_or_else(|| panic!("{command} --help lacks --timeout: {help}"));
        let text: String = option
            .split("\n  -")
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            text.contains("[default: the account's `timeout`, else 60]"),
            "{command}: {text}"
        );
    }
}

#[test]
fn server_flag_without_account_ignores_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // A broken file proves it is not read at all.
    let path = write_config(dir.path(), "c.toml", "this is not toml", 0o644);
    let mut connect = flags();
    connect.server = Some("smtp.example.org".into());
    let server = config::resolve_smtp(&connect, Some(&path)).unwrap();
    assert_eq!(server.endpoint.to_string(), "smtp.example.org:587");
    assert_eq!(server.tls, TlsMode::Starttls);
    assert_eq!(server.account, None);
    assert!(server.password.configured.is_none());
    let server = config::resolve_pop3(&connect, None).unwrap();
    assert_eq!(server.endpoint.to_string(), "smtp.example.org:995");
    assert_eq!(server.tls, TlsMode::Implicit);
    connect.tls = Some(TlsMode::Starttls);
    let server = config::resolve_pop3(&connect, None).unwrap();
    assert_eq!(server.endpoint.to_string(), "smtp.example.org:110");
    connect.tls = None;
    connect.server = Some("pop.example.org:995".into());
    let server = config::resolve_pop3(&connect, None).unwrap();
    assert_eq!(server.tls, TlsMode::Implicit);
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("absent.toml");
    // --config names a file that is not there: a configuration error.
    let err = config::resolve_smtp(&flags(), Some(&absent)).unwrap_err();
    assert_eq!(exit_status(&err), Exit::Config);
    assert!(format!("{err:#}").contains("absent.toml"));
    let mut connect = flags();
    connect.account = Some("work".into());
    let err = config::resolve_smtp(&connect, Some(&absent)).unwrap_err();
    assert_eq!(exit_status(&err), Exit::Config);
}

#[test]
fn choosing_the_account() {
    let dir = tempfile::tempdir().unwrap();
    let one = write_config(
        dir.path(),
        "one.toml",
        "[accounts.only.smtp]\nhost = \"h\"\n",
        0o644,
    );
    let server = config::resolve_smtp(&flags(), Some(&one)).unwrap();
    assert_eq!(server.account.as_deref(), Some("only"));
    let err = config::resolve_pop3(&flags(), Some(&one)).unwrap_err();
    assert_eq!(exit_status(&err), Exit::Config);
    assert_eq!(
        format!("{err:#}"),
        format!(
            "{}:1: account 'only' has no [accounts.only.pop3] table",
            one.display()
        )
    );

    let two = write_config(
        dir.path(),
        "two.toml",
        "[accounts.a.smtp]\nhost = \"h\"\n[accounts.b.smtp]\nhost = \"h\"\n",
        0o644,
    );
    let err = config::resolve_smtp(&flags(), Some(&two)).unwrap_err();
    assert_eq!(exit_status(&err), Exit::Config);
    assert!(format!("{err:#}").contains("several accounts (a, b) and no `default`"));
    let mut connect = flags();
    connect.account = Some("c".into());
    let err = config::resolve_smtp(&connect, Some(&two)).unwrap_err();
    assert!(format!("{err:#}").contains("no account 'c' (accounts: a, b)"));

    let none = write_config(dir.path(), "none.toml", "# nothing yet\n", 0o644);
    let err = config::resolve_smtp(&flags(), Some(&none)).unwrap_err();
    assert!(format!("{err:#}").contains("defines no account"));
}

#[test]
fn password_sources() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
[accounts.a]
password_env = "MAILCTL_TEST_ACCOUNT_PW"
[accounts.a.smtp]
host = "h"
user = "u"
[accounts.a.pop3]
host = "h"
user = "u"
password = "stored-secret"
"#;
    let path = write_config(dir.path(), "c.toml", text, 0o600);
    std::env::set_var("MAILCTL_TEST_ACCOUNT_PW", "from-env");
    let smtp = config::resolve_smtp(&flags(), Some(&path)).unwrap();
    assert_eq!(smtp.obtain_password().unwrap().expose(), "from-env");
    assert_eq!(smtp.password.describe(), "from $MAILCTL_TEST_ACCOUNT_PW");
    let pop3 = config::resolve_pop3(&flags(), Some(&path)).unwrap();
    assert_eq!(pop3.obtain_password().unwrap().expose(), "stored-secret");
    assert_eq!(pop3.password.describe(), "stored in the config file");
    assert!(!format!("{pop3:?}").contains("stored-secret"));
    assert!(!pop3.describe().contains("stored-secret"));
}

#[test]
fn auth_as_the_commands_own_type() {
    #[derive(Clone, Copy, Debug, PartialEq, clap::ValueEnum)]
    enum SmtpAuthFlag {
        Auto,
        Plain,
        Login,
        CramMd5,
        Xoauth2,
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "c.toml", FULL, 0o644);
    let smtp = config::resolve_smtp(&flags(), Some(&path)).unwrap();
    assert_eq!(
        smtp.auth_as::<SmtpAuthFlag>().unwrap(),
        Some(SmtpAuthFlag::CramMd5)
    );
    let pop3 = config::resolve_pop3(&flags(), Some(&path)).unwrap();
    assert_eq!(pop3.auth_as::<SmtpAuthFlag>().unwrap(), None);
}

#[test]
fn tls_hints() {
    assert!(config::tls_hint(465, TlsMode::Starttls).is_some());
    assert!(config::tls_hint(587, TlsMode::Implicit).is_some());
    assert!(config::tls_hint(465, TlsMode::Implicit).is_none());
    assert_eq!(Protocol::Smtp.implied_tls(465), TlsMode::Implicit);
    assert_eq!(Protocol::Pop3.implied_tls(465), TlsMode::Starttls);
}

// --- The binary: every refusal is `FILE:LINE: ...` with exit 78. ---

fn mailctl(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailctl"));
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env_remove("MAILCTL_ACCOUNT")
        .env_remove("MAILCTL_CONFIG")
        .env_remove("MAILCTL_PASSWORD");
    cmd
}

fn check(text: &str, mode: u32) -> (Output, String, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "config.toml", text, mode);
    let out = mailctl(dir.path())
        .arg("--config")
        .arg(&path)
        .args(["config", "check"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stderr, path, dir)
}

fn assert_refused(text: &str, mode: u32, line: usize, expected: &[&str]) {
    let (out, stderr, path, _dir) = check(text, mode);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    let prefix = format!("mailctl: error: {}:{line}: ", path.display());
    assert!(
        stderr.starts_with(&prefix),
        "want {prefix:?}, got {stderr:?}"
    );
    for part in expected {
        assert!(stderr.contains(part), "want {part:?} in {stderr:?}");
    }
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
}

const SMTP_OK: &str = "[accounts.a.smtp]\nhost = \"h\"\n";

#[test]
fn unknown_key() {
    assert_refused(
        "[accounts.a]\nfrom = \"a@b\"\n[accounts.a.smtp]\nhost = \"h\"\nprot = 25\n",
        0o644,
        5,
        &[
            "[accounts.a.smtp]",
            "unknown field `prot`",
            "expected one of `host`, `port`",
        ],
    );
    assert_refused("verbose = true\n", 0o644, 1, &["unknown field `verbose`"]);
    assert_refused(
        "[accounts.a]\nfrm = \"a@b\"\n[accounts.a.smtp]\nhost = \"h\"\n",
        0o644,
        2,
        &["[accounts.a]", "unknown field `frm`"],
    );
}

#[test]
fn wrong_type() {
    assert_refused(
        &format!("{SMTP_OK}port = \"465\"\n"),
        0o644,
        3,
        &[
            "[accounts.a.smtp]",
            "invalid type: string \"465\", expected u16",
        ],
    );
    assert_refused(&format!("{SMTP_OK}port = 70000\n"), 0o644, 3, &["70000"]);
    assert_refused(
        &format!("{SMTP_OK}tls = \"yes\"\n"),
        0o644,
        3,
        &["unknown variant `yes`", "`implicit`, `starttls`, `none`"],
    );
    assert_refused(
        &format!("{SMTP_OK}auth = \"apop\"\n"),
        0o644,
        3,
        &["unknown variant `apop`", "`cram-md5`"],
    );
    assert_refused(
        "default = 1\n",
        0o644,
        1,
        &["invalid type: integer `1`, expected a string"],
    );
}

#[test]
fn missing_required_key() {
    assert_refused(
        "[accounts.a]\nfrom = \"a@b\"\n\n[accounts.a.pop3]\nport = 995\n",
        0o644,
        4,
        &["[accounts.a.pop3]", "missing field `host`"],
    );
}

#[test]
fn rule_violations_point_at_the_key() {
    assert_refused(
        "default = \"b\"\n[accounts.a.smtp]\nhost = \"h\"\n",
        0o644,
        1,
        &["`default` names account 'b', which is not defined (accounts: a)"],
    );
    assert_refused(
        &format!("{SMTP_OK}port = 0\n"),
        0o644,
        3,
        &["`port` must be between 1 and 65535"],
    );
    assert_refused(
        "[accounts.a.smtp]\nhost = \"smtp.example.org:465\"\n",
        0o644,
        2,
        &["`host`", "write the port in `port = N`"],
    );
    assert_refused(
        &format!("{SMTP_OK}password_command = \"pass mail\"\npassword_env = \"PW\"\n"),
        0o644,
        4,
        &[
            "`password_env` and `password_command` both given",
            "keep one",
        ],
    );
    assert_refused(
        &format!("{SMTP_OK}password_keyring = \"work\"\npassword = \"x\"\n"),
        0o600,
        3,
        &["`password_keyring` and `password` both given", "keep one"],
    );
    assert_refused(
        &format!("{SMTP_OK}password_keyring = \"\"\n"),
        0o644,
        3,
        &["`password_keyring` must be non-empty"],
    );
    assert_refused(
        &format!("{SMTP_OK}password_env = \"not a name\"\n"),
        0o644,
        3,
        &["`password_env`", "not an environment variable name"],
    );
    assert_refused(
        "[accounts.a]\nfrom = \"Jane\"\n[accounts.a.smtp]\nhost = \"h\"\n",
        0o644,
        2,
        &["`from`", "not a mail address"],
    );
    assert_refused(
        "[accounts.a]\nfrom = \"a@b\"\n",
        0o644,
        1,
        &["account 'a' has neither an [accounts.a.smtp] nor an [accounts.a.pop3] table"],
    );
    assert_refused("[accounts.a\n", 0o644, 1, &["unclosed table"]);
    assert_refused(
        "[accounts.a.smtp]\nhost = \"h\"\nhost = \"i\"\n",
        0o644,
        3,
        &["[accounts.a.smtp]: duplicate key `host`"],
    );
}

#[test]
fn plain_password_needs_a_private_file() {
    let text = format!("[accounts.a]\nuser = \"u\"\n{SMTP_OK}password = \"hunter2\"\n");
    for mode in [0o644, 0o640, 0o604, 0o660] {
        let (out, stderr, path, _dir) = check(&text, mode);
        assert_eq!(out.status.code(), Some(78), "mode {mode:o}: {stderr}");
        assert!(stderr.starts_with(&format!("mailctl: error: {}:5: ", path.display())));
        assert!(
            stderr.contains("`password` is stored in plain text"),
            "{stderr}"
        );
        assert!(
            stderr.contains("other users can read this file"),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("chmod 600 {}", path.display())),
            "{stderr}"
        );
        assert!(!stderr.contains("hunter2"));
    }
    let (out, stderr, _path, _dir) = check(&text, 0o600);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("password stored in the config file"),
        "{stdout}"
    );
    assert!(!stdout.contains("hunter2"), "{stdout}");

    // A password command in a readable file is fine.
    let text =
        format!("[accounts.a]\nuser = \"u\"\n{SMTP_OK}password_command = \"pass show mail\"\n");
    let (out, stderr, _path, _dir) = check(&text, 0o644);
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    // Anyone may rewrite a world-writable file: refused whatever it holds.
    let (out, stderr, _path, _dir) = check(SMTP_OK, 0o666);
    assert_eq!(out.status.code(), Some(78));
    assert!(
        stderr.contains("writable by every user") && stderr.contains("chmod 600"),
        "{stderr}"
    );
}

#[test]
fn check_prints_a_summary() {
    let (out, stderr, path, _dir) = check(FULL, 0o644);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let expected = format!(
        "file: {} (mode 0644)\n\
         account home\n  from: jane@home.example\n  \
         smtp: mail.home.example:587, STARTTLS required, no authentication, CA file {}\n  \
         warning: ca_file {} does not exist\n\
         account work (default)\n  from: Jane Doe <jane@example.org>\n  \
         smtp: smtp.example.org:465, implicit TLS, user jane, auth cram-md5, password from password_command `printf 'from-command\\nsecond line\\n'`\n  \
         pop3: pop.example.org:995, implicit TLS, user jane.pop, auth auto, password from $MAILCTL_TEST_POP_PASSWORD, timeout 15s\n  \
         warning: {}:18: password_env names MAILCTL_TEST_POP_PASSWORD, which is not set now\n",
        path.display(),
        path.with_file_name("certs/home.pem").display(),
        path.with_file_name("certs/home.pem").display(),
        path.display(),
    );
    assert_eq!(stdout, expected);
}

#[test]
fn check_neutralises_terminal_escapes_in_account_names() {
    let text = "[accounts.\"evil\\u001b]0;pwned\\u0007\\u001b[2J\"]\n\
                from = \"x@example.org\"\n\
                [accounts.\"evil\\u001b]0;pwned\\u0007\\u001b[2J\".smtp]\n\
                host = \"mail.example.org\"\n";
    let (out, stderr, _path, _dir) = check(text, 0o600);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!out.stdout.contains(&0x1b), "raw escape on stdout");
    assert!(!out.stdout.contains(&0x07), "raw bell on stdout");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("account evil\\x1b]0;pwned\\x07\\x1b[2J (default)\n"),
        "{stdout}"
    );
}

#[test]
fn check_reports_a_missing_file_and_its_default_path() {
    let dir = tempfile::tempdir().unwrap();
    let out = mailctl(dir.path())
        .args(["config", "path"])
        .output()
        .unwrap();
    let default = dir.path().join(".config/mailctl/config.toml");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\n", default.display())
    );
    let out = mailctl(dir.path())
        .args(["config", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}: no such file", default.display())),
        "{stderr}"
    );

    // The default location is used, and --account selects one account.
    fs::create_dir_all(default.parent().unwrap()).unwrap();
    fs::write(&default, FULL).unwrap();
    let out = mailctl(dir.path())
        .args(["config", "check", "--account", "home"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("account home\n") && !stdout.contains("account work"),
        "{stdout}"
    );
    let out = mailctl(dir.path())
        .args(["config", "check", "--account", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
}

#[test]
fn no_server_and_no_default_file_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("XDG_CONFIG_HOME", dir.path());
    let err = config::resolve_smtp(&flags(), None).unwrap_err();
    std::env::remove_var("XDG_CONFIG_HOME");
    assert_eq!(exit_status(&err), Exit::Usage);
    let message = format!("{err:#}");
    assert!(
        message.starts_with("no smtp server: give --server HOST[:PORT]"),
        "{message}"
    );
}

// --- config check --connect against in-process servers. ---

/// A scripted server: reads client lines, answers from `respond`, records
/// every line. Returns the recorded lines when the client hangs up.
fn serve_once(
    listener: TcpListener,
    tls: Option<native_tls::TlsAcceptor>,
    greeting: &'static str,
    respond: fn(&str) -> Option<&'static str>,
) -> thread::JoinHandle<Vec<String>> {
    thread::spawn(move || {
        let tcp = fake::accept(&listener, &AtomicBool::new(false)).expect("a client");
        let mut conn = fake::Conn::new(tcp);
        if let Some(acceptor) = &tls {
            conn = conn.start_tls(acceptor).expect("TLS handshake");
        }
        let mut seen = Vec::new();
        conn.send(greeting.as_bytes()).unwrap();
        loop {
            let Some(line) = conn.text_line() else {
                return seen;
            };
            seen.push(line.clone());
            if line == "STARTTLS" || line == "STLS" {
                let reply = if line == "STLS" {
                    "+OK begin\r\n"
                } else {
                    "220 go ahead\r\n"
                };
                conn.send(reply.as_bytes()).unwrap();
                conn = conn.start_tls(&fake::acceptor()).expect("TLS handshake");
                continue;
            }
            match respond(&line) {
                Some(reply) => conn.send(reply.as_bytes()).unwrap(),
                None => return seen,
            }
            if line == "QUIT" {
                return seen;
            }
        }
    })
}

fn self_signed() -> (Vec<u8>, native_tls::TlsAcceptor) {
    (fake::CERT_PEM.to_vec(), fake::acceptor())
}

fn smtp_reply(line: &str) -> Option<&'static str> {
    match line.split(' ').next().unwrap_or("") {
        "EHLO" => Some("250-mx.test greets you\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n"),
        // base64 of "\0tester\0pw-from-command"
        "AUTH" if line == "AUTH PLAIN AHRlc3RlcgBwdy1mcm9tLWNvbW1hbmQ=" => Some("235 2.7.0 ok\r\n"),
        "AUTH" => Some("535 5.7.8 bad credentials\r\n"),
        "QUIT" => Some("221 bye\r\n"),
        _ => Some("502 unexpected\r\n"),
    }
}

fn pop3_reply(line: &str) -> Option<&'static str> {
    match line {
        "CAPA" => Some("+OK list follows\r\nUSER\r\nUIDL\r\nSASL PLAIN\r\nPIPELINING\r\n.\r\n"),
        "AUTH PLAIN AHRlc3RlcgBwdy1mcm9tLWNvbW1hbmQ=" => Some("+OK logged in\r\n"),
        "QUIT" => Some("+OK bye\r\n"),
        _ => Some("-ERR unexpected\r\n"),
    }
}

#[test]
fn check_connect_probes_both_servers_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_pem, acceptor) = self_signed();
    let ca = dir.path().join("ca.pem");
    fs::File::create(&ca).unwrap().write_all(&cert_pem).unwrap();
    let smtp = TcpListener::bind("127.0.0.1:0").unwrap();
    let pop3 = TcpListener::bind("127.0.0.1:0").unwrap();
    let text = format!(
        "[accounts.t]\nfrom = \"t@localhost\"\nuser = \"tester\"\npassword_command = \"echo pw-from-command\"\nca_file = \"{}\"\n\
         [accounts.t.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\n\
         [accounts.t.pop3]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"implicit\"\n",
        ca.display(),
        smtp.local_addr().unwrap().port(),
        pop3.local_addr().unwrap().port(),
    );
    let path = write_config(dir.path(), "c.toml", &text, 0o644);
    let smtp_seen = serve_once(smtp, None, "220 mx.test ESMTP\r\n", smtp_reply);
    let pop3_seen = serve_once(pop3, Some(acceptor), "+OK ready <1.2@test>\r\n", pop3_reply);
    let out = mailctl(dir.path())
        .arg("--config")
        .arg(&path)
        .args(["config", "check", "--connect"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("greeting: 220 mx.test ESMTP"), "{stdout}");
    assert!(
        stdout.contains("TLS: upgraded, certificate verified"),
        "{stdout}"
    );
    assert!(
        stdout.contains("offers: PIPELINING, SIZE 1000000, STARTTLS, AUTH PLAIN LOGIN"),
        "{stdout}"
    );
    assert!(
        stdout.contains("auth: PLAIN as tester accepted"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("auth: PLAIN as tester accepted").count(),
        2,
        "SMTP and POP3 each name the mechanism used: {stdout}"
    );
    assert!(
        stdout.contains("TLS: from the first byte (implicit), certificate verified"),
        "{stdout}"
    );
    assert!(
        stdout.contains("offers: USER, UIDL, PIPELINING, SASL PLAIN"),
        "{stdout}"
    );
    let smtp_seen = smtp_seen.join().unwrap();
    let hostname = &smtp_seen[0];
    assert!(hostname.starts_with("EHLO "), "{smtp_seen:?}");
    let auth = "AUTH PLAIN AHRlc3RlcgBwdy1mcm9tLWNvbW1hbmQ=";
    assert_eq!(
        smtp_seen[1..],
        ["STARTTLS", hostname.as_str(), auth, "QUIT"]
    );
    assert_eq!(pop3_seen.join().unwrap(), ["CAPA", auth, "QUIT"]);
}

fn smtp_external_reply(line: &str) -> Option<&'static str> {
    match line {
        "AUTH EXTERNAL =" => Some("235 2.7.0 ok\r\n"),
        "QUIT" => Some("221 bye\r\n"),
        _ if line.starts_with("EHLO ") => Some("250-mx.test\r\n250 AUTH PLAIN EXTERNAL\r\n"),
        _ => Some("502 unexpected\r\n"),
    }
}

fn pop3_external_reply(line: &str) -> Option<&'static str> {
    match line {
        "CAPA" => Some("+OK\r\nUSER\r\nSASL PLAIN EXTERNAL\r\n.\r\n"),
        "AUTH EXTERNAL =" => Some("+OK logged in\r\n"),
        "QUIT" => Some("+OK bye\r\n"),
        _ => Some("-ERR unexpected\r\n"),
    }
}

/// With a client certificate (`tls_cert`, `tls_key`) and EXTERNAL
/// offered, `config check --connect` logs in with EXTERNAL, names it, and
/// never runs the password command.
#[test]
fn check_connect_names_external_and_asks_no_password() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    fs::write(&ca, fake::CERT_PEM).unwrap();
    let key = dir.path().join("key.pem");
    fs::write(&key, fake::KEY_PEM).unwrap();
    let marker = dir.path().join("asked");
    let (smtp, pop3) = (
        TcpListener::bind("127.0.0.1:0").unwrap(),
        TcpListener::bind("127.0.0.1:0").unwrap(),
    );
    let text = format!(
        "[accounts.t]\nfrom = \"t@localhost\"\nuser = \"tester\"\n\
         password_command = \"touch '{}'; echo pw\"\nca_file = \"{}\"\n\
         tls_cert = \"{}\"\ntls_key = \"{}\"\n\
         [accounts.t.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"implicit\"\n\
         [accounts.t.pop3]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"implicit\"\n",
        marker.display(),
        ca.display(),
        ca.display(),
        key.display(),
        smtp.local_addr().unwrap().port(),
        pop3.local_addr().unwrap().port(),
    );
    let path = write_config(dir.path(), "c.toml", &text, 0o600);
    let smtp_seen = serve_once(
        smtp,
        Some(fake::acceptor()),
        "220 mx\r\n",
        smtp_external_reply,
    );
    let pop3_seen = serve_once(pop3, Some(fake::acceptor()), "+OK\r\n", pop3_external_reply);
    let out = mailctl(dir.path())
        .arg("--config")
        .arg(&path)
        .args(["config", "check", "--connect"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(
        stdout.matches("auth: EXTERNAL as tester accepted").count(),
        2,
        "{stdout}"
    );
    assert!(!marker.exists(), "the password command ran");
    let smtp_seen = smtp_seen.join().unwrap();
    assert_eq!(smtp_seen[1..], ["AUTH EXTERNAL =", "QUIT"]);
    assert_eq!(
        pop3_seen.join().unwrap(),
        ["CAPA", "AUTH EXTERNAL =", "QUIT"]
    );
}

#[test]
fn check_connect_reports_refused_login() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = TcpListener::bind("127.0.0.1:0").unwrap();
    let text = format!(
        "[accounts.t]\nuser = \"tester\"\npassword_command = \"echo wrong\"\n\
         [accounts.t.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nauth = \"login\"\n",
        smtp.local_addr().unwrap().port()
    );
    let path = write_config(dir.path(), "c.toml", &text, 0o644);
    fn login(line: &str) -> Option<&'static str> {
        match line {
            l if l.starts_with("EHLO") => Some("250-mx.test\r\n250 AUTH LOGIN\r\n"),
            "AUTH LOGIN" => Some("334 VXNlcm5hbWU6\r\n"),
            "dGVzdGVy" => Some("334 UGFzc3dvcmQ6\r\n"),
            "QUIT" => Some("221 bye\r\n"),
            _ => Some("535 5.7.8 no\r\n"),
        }
    }
    let seen = serve_once(smtp, None, "220 mx.test\r\n", login);
    let out = mailctl(dir.path())
        .arg("--config")
        .arg(&path)
        .args(["config", "check", "--connect"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(77));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("AUTH LOGIN as tester: 535 5.7.8 no"),
        "{stderr}"
    );
    let seen = seen.join().unwrap();
    assert_eq!(seen[1..], ["AUTH LOGIN", "dGVzdGVy", "d3Jvbmc=", "QUIT"]);
}

#[test]
fn check_connect_refuses_missing_starttls() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = TcpListener::bind("127.0.0.1:0").unwrap();
    // Named, STARTTLS is required even on loopback.
    let text = format!(
        "[accounts.t.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\n",
        smtp.local_addr().unwrap().port()
    );
    let path = write_config(dir.path(), "c.toml", &text, 0o644);
    fn no_tls(line: &str) -> Option<&'static str> {
        match line.split(' ').next().unwrap_or("") {
            "EHLO" => Some("250-mx.test\r\n250 AUTH PLAIN\r\n"),
            _ => None,
        }
    }
    let seen = serve_once(smtp, None, "220 mx.test\r\n", no_tls);
    let out = mailctl(dir.path())
        .arg("--config")
        .arg(&path)
        .args(["config", "check", "--connect"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(76));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not offer STARTTLS"), "{stderr}");
    let seen = seen.join().unwrap();
    assert_eq!(seen.len(), 1, "nothing after EHLO: {seen:?}");
}

#[test]
fn check_connect_hints_at_the_tls_mode() {
    // An SMTPS-style server on "465" reached with STARTTLS: simulate by a
    // server that speaks TLS first while the account says starttls on a
    // port that is not 465; the error has no hint. With port 465 in the
    // file and tls = "starttls", the summary warns before connecting.
    let (out, _stderr, _path, _dir) = check(
        "[accounts.a.smtp]\nhost = \"h\"\nport = 465\ntls = \"starttls\"\n",
        0o644,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("warning: port 465 speaks TLS from the first byte"),
        "{stdout}"
    );
    assert!(stdout.contains("--tls implicit"), "{stdout}");
}

#[test]
fn the_sample_configuration_is_valid() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mailctl.toml");
    let dir = tempfile::tempdir().unwrap();
    let out = mailctl(dir.path())
        .arg("--config")
        .arg(&sample)
        .args(["config", "check"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("account work (default)"), "{stdout}");
    assert!(
        stdout.contains("smtp: smtp.example.org:465, implicit TLS"),
        "{stdout}"
    );
    assert!(
        stdout.contains("pop3: pop.example.org:995, implicit TLS"),
        "{stdout}"
    );
    assert!(
        stdout.contains("OAuth 2 tokens from https://oauth2.googleapis.com/token"),
        "{stdout}"
    );
}

const OAUTH2_SMTP: &str = "[accounts.a]\nuser = \"u\"\n[accounts.a.smtp]\nhost = \"h\"\n";

#[test]
fn oauth2_table_is_checked() {
    let table = |rest: &str| format!("{OAUTH2_SMTP}[accounts.a.oauth2]\nclient_id = \"c\"\n{rest}");
    assert_refused(
        &table(""),
        0o644,
        5,
        &["needs `provider`", "or `token_url`"],
    );
    assert_refused(
        &table("token_url = \"http://tokens.example/token\"\n"),
        0o644,
        7,
        &["not an https:// URL"],
    );
    assert_refused(
        &table("provider = \"yahoo\"\n"),
        0o644,
        7,
        &["`microsoft` or `google`"],
    );
    assert_refused(
        &format!("{OAUTH2_SMTP}[accounts.a.oauth2]\nprovider = \"google\"\n"),
        0o644,
        5,
        &["client_id"],
    );
    let (out, stderr, _, _dir) = check(&table("token_url = \"http://127.0.0.1:8080/t\"\n"), 0o644);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn oauth2_login_needs_an_oauth2_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "config.toml", OAUTH2_SMTP, 0o644);
    let out = mailctl(dir.path())
        .arg("--config")
        .arg(&path)
        .args(["oauth2", "login", "--account", "a"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "mailctl: error: {}:1: account 'a' has no [accounts.a.oauth2] table\n",
            path.display()
        )
    );
}

/// An OAuth 2 account that was never authorized says how to fix it, with
/// 77, before connecting anywhere.
#[test]
fn oauth2_account_without_a_token_says_to_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        format!("{OAUTH2_SMTP}[accounts.a.oauth2]\nprovider = \"microsoft\"\nclient_id = \"c\"\n");
    let path = write_config(dir.path(), "config.toml", &text, 0o644);
    let out = mailctl(dir.path())
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .arg("--config")
        .arg(&path)
        .args(["send", "--from", "u@example.org", "--to", "v@example.org"])
        .args(["--subject", "s", "--body", "b"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "{stderr}");
    assert_eq!(
        stderr,
        "mailctl: error: account 'a' holds no OAuth 2 token: run `mailctl oauth2 login --account a`\n"
    );
    let status = mailctl(dir.path())
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .arg("--config")
        .arg(&path)
        .args(["oauth2", "status"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&status.stdout),
        "a: no token: run `mailctl oauth2 login`; no access token cached\n"
    );
}

#[test]
fn timeout_out_of_range() {
    for bad in ["0", "86401"] {
        assert_refused(
            &format!("{SMTP_OK}timeout = {bad}\n"),
            0o644,
            3,
            &["`timeout` must be from 1 to 86400 seconds"],
        );
    }
    let dir = tempfile::tempdir().unwrap();
    for command in ["send", "fetch"] {
        for bad in ["0", "86401", "1.5"] {
            let out = mailctl(dir.path())
                .args([command, "--server", "127.0.0.1:9", "--timeout", bad])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(64), "{command} {bad}: {stderr}");
            assert!(
                stderr.contains("expected whole seconds from 1 to 86400"),
                "{stderr}"
            );
        }
    }
}

/// `tls_cert` and `tls_key` name a client certificate relative to the file
/// (the server table's pair wins over the account's); `--cert`/`--key`
/// override both; one key without the other is refused at its line.
#[test]
fn client_certificate_keys() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
[accounts.a]
tls_cert = "certs/me.pem"
tls_key = "certs/me.key"

[accounts.a.smtp]
host = "smtp.example.org"

[accounts.a.pop3]
host = "pop.example.org"
tls_cert = "/etc/pop.pem"
tls_key = "/etc/pop.key"
"#;
    let path = write_config(dir.path(), "c.toml", text, 0o644);
    let mut connect = flags();
    connect.account = Some("a".into());
    let smtp = config::resolve_smtp(&connect, Some(&path)).unwrap();
    let cert = smtp.tls_options.client_cert.expect("a client certificate");
    assert_eq!(cert.cert, dir.path().join("certs/me.pem"));
    assert_eq!(cert.key, dir.path().join("certs/me.key"));
    let pop3 = config::resolve_pop3(&connect, Some(&path)).unwrap();
    let cert = pop3.tls_options.client_cert.expect("a client certificate");
    assert_eq!(cert.cert, Path::new("/etc/pop.pem"));

    connect.cert = Some("/flag.pem".into());
    connect.key = Some("/flag.key".into());
    let smtp = config::resolve_smtp(&connect, Some(&path)).unwrap();
    assert_eq!(
        smtp.tls_options.client_cert.unwrap().key,
        Path::new("/flag.key")
    );

    let lone = "[accounts.a]\n\n[accounts.a.smtp]\nhost = \"h\"\ntls_cert = \"c.pem\"\n";
    let path = write_config(dir.path(), "lone.toml", lone, 0o644);
    let err = config::resolve_smtp(&flags(), Some(&path)).unwrap_err();
    assert_eq!(exit_status(&err), Exit::Config);
    assert_eq!(
        format!("{err:#}"),
        format!("{}:5: tls_key is missing beside it", path.display())
    );

    // On the command line, --cert needs --key.
    let out = Command::new(env!("CARGO_BIN_EXE_mailctl"))
        .args(["send", "--cert", "c.pem", "--to", "x@y", "--body", "b"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--key"));
}

#[test]
fn check_connect_tries_every_account_saying_which() {
    let dir = tempfile::tempdir().unwrap();
    let pop3 = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let account = |name: &str, port: u16| {
        format!(
            "[accounts.{name}]\nuser = \"tester\"\npassword_command = \"echo pw-from-command\"\n\
             [accounts.{name}.pop3]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n"
        )
    };
    let text = account("a", pop3.local_addr().unwrap().port()) + &account("b", closed);
    let path = write_config(dir.path(), "c.toml", &text, 0o600);
    let seen = serve_once(pop3, None, "+OK ready\r\n", pop3_reply);
    let out = mailctl(dir.path())
        .arg("--config")
        .arg(&path)
        .args(["config", "check", "--connect"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stdout}{stderr}");
    let port = |p: u16| format!("127.0.0.1:{p}");
    assert!(
        stdout.contains("account a: connecting to pop3 server"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "account b: connecting to pop3 server {}",
            port(closed)
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("auth: PLAIN as tester accepted"),
        "{stdout}"
    );
    assert!(stderr.contains("failed: b pop3"), "{stderr}");
    assert_eq!(
        seen.join().unwrap(),
        [
            "CAPA",
            "AUTH PLAIN AHRlc3RlcgBwdy1mcm9tLWNvbW1hbmQ=",
            "QUIT"
        ]
    );

    // --account: that one only.
    let out = mailctl(dir.path())
        .arg("--config")
        .arg(&path)
        .args(["config", "check", "--connect", "--account", "b"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("account a: connecting"), "{stdout}");
    assert!(stdout.contains("account b: connecting"), "{stdout}");
}

#[test]
fn init_writes_a_private_file_for_the_provider_and_never_overwrites() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join(".config/mailctl/config.toml");
    let init = |extra: &[&str]| {
        mailctl(home.path())
            .args(["config", "init", "--address", "zhang@163.com"])
            .args(extra)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let out = init(&["--password-command", "pass show mail/163"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("host = \"smtp.163.com\"\nport = 465\ntls = \"implicit\""),
        "{text}"
    );
    assert!(
        text.contains("host = \"pop.163.com\"\nport = 995"),
        "{text}"
    );
    assert!(
        text.contains("password_command = \"pass show mail/163\""),
        "{text}"
    );
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("authorization code"), "{stdout}");
    // What it wrote passes the check.
    let out = mailctl(home.path())
        .args(["config", "check"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Never over an existing file without --force.
    let out = init(&["--provider", "gmail"]);
    assert_eq!(out.status.code(), Some(73));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert!(fs::read_to_string(&path).unwrap().contains("smtp.163.com"));
    let out = mailctl(home.path())
        .args([
            "config",
            "init",
            "--address",
            "me@example.org",
            "--provider",
            "outlook",
            "--force",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("smtp.office365.com") && text.contains("auth = \"xoauth2\""),
        "{text}"
    );

    // An unknown domain, and no terminal to ask: say what to give.
    let out = mailctl(home.path())
        .args(["config", "init", "--address", "me@example.org", "--force"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--provider"));
}

#[test]
fn init_asks_on_a_terminal_for_what_it_cannot_guess() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("c.toml");
    let bin = env!("CARGO_BIN_EXE_mailctl");
    let args = ["--config", config.to_str().unwrap(), "config", "init"];
    let answers = ["me@example.org", "aol", "fastmail", "pass show fm", "n"];
    let Some(shown) = pty_support::run_typing(100, None, &answers, bin, &args, &[]) else {
        return;
    };
    assert_eq!(shown.code, 0, "{}", shown.text);
    assert!(shown.text.contains("Mail address: "), "{}", shown.text);
    assert!(
        shown.text.contains("unknown provider 'aol'"),
        "{}",
        shown.text
    );
    assert!(
        shown.text.contains("Check the servers now"),
        "{}",
        shown.text
    );
    let text = fs::read_to_string(&config).unwrap();
    assert!(
        text.contains("smtp.fastmail.com") && text.contains("pass show fm"),
        "{text}"
    );
    assert!(text.contains("from = \"me@example.org\""), "{text}");
}

#[test]
fn only_a_loopback_server_gets_starttls_if_offered() {
    let text = "[accounts.a.smtp]\nhost = \"127.0.0.1\"\nport = 2525\n\
                [accounts.b.smtp]\nhost = \"192.0.2.7\"\nport = 2525\n\
                [accounts.c.smtp]\nhost = \"localhost.example.org\"\nport = 2525\n\
                [accounts.d.smtp]\nhost = \"::1\"\nport = 2525\ntls = \"starttls\"\n\
                [accounts.e.pop3]\nhost = \"localhost\"\nport = 1110\n";
    let (out, stderr, _path, _dir) = check(&format!("default = \"a\"\n{text}"), 0o600);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let shown = String::from_utf8_lossy(&out.stdout).into_owned() + &stderr;
    assert!(
        shown.contains("127.0.0.1:2525, STARTTLS if offered (loopback)"),
        "{shown}"
    );
    assert!(
        shown.contains("localhost:1110, STARTTLS if offered (loopback)"),
        "{shown}"
    );
    assert!(
        shown.contains("192.0.2.7:2525, STARTTLS required"),
        "{shown}"
    );
    assert!(
        shown.contains("localhost.example.org:2525, STARTTLS required"),
        "{shown}"
    );
    assert!(shown.contains("[::1]:2525, STARTTLS required"), "{shown}");
}
