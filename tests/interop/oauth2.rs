//! OAuth 2 against the real servers: tokens from the local token server
//! (`tests/interop/token_server.py`, HS256 JWTs signed with the key
//! Dovecot validates), checked by the real Dovecot (POP3) and, through its
//! SASL, the real Postfix (SMTP). The users: olga (send and fetch), otto
//! (cache, retry and login flows; its sends go to the sink).

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::Child;
use std::sync::mpsc;

use super::*;

/// The client id the token server accepts.
const CLIENT_ID: &str = "mailctl-test";

/// A running token server, stopped when dropped.
struct TokenServer {
    child: Child,
    url: String,
    ca_file: String,
}

impl TokenServer {
    /// Starts the server issuing tokens for `user`, with `extra` options.
    fn start(env: &InteropEnv, user: &str, extra: &[&str]) -> TokenServer {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/token_server.py");
        let key = env.vars.get("OAUTH2_KEY_FILE").unwrap_or_else(|| {
            panic!(
                "OAUTH2_KEY_FILE missing from the interop env file: re-run tests/interop/setup.sh"
            )
        });
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--key-file", key, "--user", user])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the token server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the token server's URL");
        assert!(line.starts_with("http"), "token server said {line:?}");
        TokenServer {
            child,
            url: line.trim().to_string(),
            ca_file: env.ca_file().to_string(),
        }
    }

    /// A refresh token for the server's user, as a login would leave.
    fn refresh_token(&self) -> String {
        let url = format!("{}/admin/refresh-token", self.url);
        let answer = curl(&["--cacert", &self.ca_file, "-X", "POST", &url]);
        answer["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_string()
    }

    /// How many grants of each kind the server made.
    fn stats(&self) -> serde_json::Value {
        curl(&[
            "--cacert",
            &self.ca_file,
            &format!("{}/admin/stats", self.url),
        ])
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs curl (the token server may be HTTPS with the test CA) and reads its
/// JSON answer.
fn curl(args: &[&str]) -> serde_json::Value {
    let output = Command::new("curl")
        .args(["-sS", "--fail-with-body"])
        .args(args)
        .output()
        .expect("run curl");
    assert!(output.status.success(), "curl {args:?}: {output:?}");
    serde_json::from_slice(&output.stdout).expect("JSON from the token server")
}

/// A config file and state directory for account `work` of `user`, its
/// tokens from `server`; `flow` is the `device_url` or `auth_url` line.
struct Account {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Account {
    fn new(env: &InteropEnv, user: &str, server: &TokenServer, flow: &str) -> Account {
        let dir = temp_dir();
        let config = dir.path().join("config.toml");
        let text = format!(
            "[accounts.work]\nfrom = \"{address}\"\nuser = \"{user}\"\nca_file = \"{ca}\"\n\
             [accounts.work.smtp]\nhost = \"127.0.0.1\"\nport = {smtp}\ntls = \"implicit\"\n\
             [accounts.work.pop3]\nhost = \"127.0.0.1\"\nport = {pop3}\ntls = \"implicit\"\n\
             [accounts.work.oauth2]\ntoken_url = \"{url}/token\"\n{flow}\n\
             client_id = \"{CLIENT_ID}\"\nscopes = [\"mail\"]\n",
            address = env.address(user),
            ca = env.ca_file(),
            smtp = env.port("SMTP_SMTPS_PORT"),
            pop3 = env.port("POP3S_PORT"),
            url = server.url,
        );
        std::fs::write(&config, text).expect("write config");
        Account { dir, config }
    }

    fn state(&self) -> &Path {
        self.dir.path()
    }

    fn token_dir(&self) -> PathBuf {
        self.state().join("mailctl").join("oauth2")
    }

    /// Leaves `token` as the stored refresh token, as `oauth2 login` does
    /// (mode 0600).
    fn store_refresh(&self, token: &str) {
        std::fs::create_dir_all(self.token_dir()).expect("token dir");
        let path = self.token_dir().join("work.refresh");
        std::fs::write(&path, format!("{token}\n")).expect("write refresh token");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .expect("chmod refresh token");
    }

    fn stored_refresh(&self) -> String {
        std::fs::read_to_string(self.token_dir().join("work.refresh"))
            .expect("refresh token file")
            .trim()
            .to_string()
    }

    /// Caches `token` as valid until `expires_at`.
    fn cache_access(&self, token: &str, expires_at: u64) {
        std::fs::create_dir_all(self.token_dir()).expect("token dir");
        let json = serde_json::json!({"access_token": token, "expires_at": expires_at});
        std::fs::write(self.token_dir().join("work.access.json"), json.to_string())
            .expect("write access cache");
    }

    fn cached_access(&self) -> (String, u64) {
        let text = std::fs::read_to_string(self.token_dir().join("work.access.json"))
            .expect("access cache");
        let json: serde_json::Value = serde_json::from_str(&text).expect("cache JSON");
        (
            json["access_token"].as_str().expect("token").to_string(),
            json["expires_at"].as_u64().expect("expiry"),
        )
    }

    /// Runs `mailctl --config CONFIG -v ARGS --account work`.
    fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["--config", self.config.to_str().unwrap(), "-v"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--account", "work"]);
        mailctl(&all, None, self.state())
    }

    /// Asserts both token files are private and no transcript line shows
    /// either token.
    fn check_private(&self, outputs: &[&Output]) {
        for name in ["work.refresh", "work.access.json"] {
            let mode = std::fs::metadata(self.token_dir().join(name))
                .expect("token file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name} is mode {:o}", mode & 0o777);
        }
        let (access, _) = self.cached_access();
        let refresh = self.stored_refresh();
        for output in outputs {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(!text.contains(&access), "access token in output:\n{text}");
            assert!(!text.contains(&refresh), "refresh token in output:\n{text}");
            // No JWT either (the base64url of the token server's header).
            let header = base64url(br#"{"alg":"HS256","typ":"JWT"}"#);
            assert!(!text.contains(&header), "a JWT in output:\n{text}");
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `send` with OAUTHBEARER (auto) and with XOAUTH2 through Postfix, then
/// `fetch` with both from Dovecot: one refresh grant, then the cached token;
/// the `-v` transcripts show neither token, and the token files are 0600.
pub fn oauth2_send_and_fetch_with_oauthbearer_and_xoauth2(env: &InteropEnv) {
    let server = TokenServer::start(env, "olga", &[]);
    let account = Account::new(env, "olga", &server, "");
    account.store_refresh(&server.refresh_token());
    empty_maildir(&env.maildir("olga"));
    let mut outputs = Vec::new();
    for (auth, label) in [(None, "OAUTHBEARER"), (Some("xoauth2"), "XOAUTH2")] {
        let mark = token(&format!("oauth2-{label}"));
        let mut args = vec!["send", "--to", "olga@example.test", "--subject", &mark];
        args.extend_from_slice(&["--body", "sent with a token"]);
        if let Some(auth) = auth {
            args.extend_from_slice(&["--user", "olga", "--auth", auth]);
        }
        let output = account.run(&args);
        assert_ok(&output, &format!("send with {label}"));
        let transcript = stderr_of(&output);
        let line = format!("C: AUTH {label} <redacted>");
        assert!(transcript.contains(&line), "{line} in:\n{transcript}");
        wait_for_delivery(&env.maildir("olga"), &mark);
        outputs.push(output);
    }
    for (auth, label) in [
        ("auto", "OAUTHBEARER"),
        ("oauthbearer", "OAUTHBEARER"),
        ("xoauth2", "XOAUTH2"),
    ] {
        let output = account.run(&["fetch", "--auth", auth, "--list"]);
        assert_ok(&output, &format!("fetch with {label}"));
        let transcript = stderr_of(&output);
        assert!(
            transcript.contains(&format!("C: AUTH {label}")),
            "AUTH {label} in:\n{transcript}"
        );
        let listing = String::from_utf8_lossy(&output.stdout);
        assert!(listing.contains("oauth2-OAUTHBEARER"), "{listing}");
        assert!(listing.contains("oauth2-XOAUTH2"), "{listing}");
        outputs.push(output);
    }
    assert_eq!(server.stats()["refresh"], 1, "one refresh, then the cache");
    account.check_private(&outputs.iter().collect::<Vec<_>>());
}

/// An expired cached token is not tried: a new one comes from the
/// refresh-token grant; the provider rotates the refresh token and the new
/// one is stored (and works next time).
pub fn oauth2_expired_token_is_refreshed_and_rotation_kept(env: &InteropEnv) {
    let server = TokenServer::start(env, "otto", &["--rotate"]);
    let account = Account::new(env, "otto", &server, "");
    let first_refresh = server.refresh_token();
    account.store_refresh(&first_refresh);
    account.cache_access("expired-token", now() - 10);
    let output = account.run(&["fetch", "--list"]);
    assert_ok(&output, "fetch with an expired cached token");
    assert!(stderr_of(&output).contains("refreshing the access token"));
    let (access, expires_at) = account.cached_access();
    assert_ne!(access, "expired-token");
    assert!(expires_at > now() + 3000, "new expiry {expires_at}");
    let rotated = account.stored_refresh();
    assert_ne!(rotated, first_refresh, "the rotated refresh token is kept");

    // The stored one works: expire the cache again.
    account.cache_access("expired-token", now() - 10);
    let again = account.run(&["fetch", "--list"]);
    assert_ok(&again, "fetch with the rotated refresh token");
    assert_eq!(server.stats()["refresh"], 2);
    assert_eq!(server.stats()["refused"], 0);
    account.check_private(&[&output, &again]);
}

/// With `refresh_token_command`, the refresh token lives where the command
/// keeps it (`COMMAND get` prints it, `COMMAND store` reads it on its
/// input), never in mailctl's files, argv or the command's environment.
pub fn oauth2_refresh_token_command_keeps_the_token(env: &InteropEnv) {
    let server = TokenServer::start(env, "otto", &["--rotate"]);
    let keeper = temp_dir();
    let (kept, seen_env) = (keeper.path().join("kept"), keeper.path().join("env"));
    let script = keeper.path().join("keeper.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nenv >>'{seen}'\necho \"$0 $*\" >>'{seen}'\n\
             case \"$1\" in get) cat '{kept}';; store) cat >'{kept}';; esac\n",
            seen = seen_env.display(),
            kept = kept.display()
        ),
    )
    .expect("write keeper");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let first = server.refresh_token();
    std::fs::write(&kept, format!("{first}\n")).expect("seed kept token");
    let line = format!("refresh_token_command = \"{}\"", script.display());
    let account = Account::new(env, "otto", &server, &line);
    let output = account.run(&["fetch", "--list"]);
    assert_ok(&output, "fetch with refresh_token_command");
    let rotated = std::fs::read_to_string(&kept).expect("kept token");
    assert!(
        rotated.starts_with("rt-") && rotated.trim() != first,
        "{rotated}"
    );
    assert!(!account.token_dir().join("work.refresh").exists());
    let seen = std::fs::read_to_string(&seen_env).expect("keeper's environment");
    assert!(
        !seen.contains(rotated.trim()) && !seen.contains(&first),
        "{seen}"
    );
    let (access, _) = account.cached_access();
    assert!(!seen.contains(&access), "{seen}");
    let transcript = stderr_of(&output);
    assert!(!transcript.contains(rotated.trim()) && !transcript.contains(&access));
}

/// Runs started together with an expired cache renew the token once: the
/// others wait for the first and use what it cached, so a provider that
/// rotates refresh tokens (each valid once) refuses none of them.
pub fn oauth2_concurrent_runs_renew_once(env: &InteropEnv) {
    let server = TokenServer::start(env, "otto", &["--rotate"]);
    let account = Account::new(env, "otto", &server, "");
    account.store_refresh(&server.refresh_token());
    account.cache_access("expired-token", now() - 10);
    let account = std::sync::Arc::new(account);
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let account = account.clone();
            std::thread::spawn(move || account.run(&["fetch", "--list"]))
        })
        .collect();
    let outputs: Vec<Output> = runs.into_iter().map(|r| r.join().expect("run")).collect();
    for output in &outputs {
        assert_ok(output, "a concurrent fetch");
    }
    assert_eq!(server.stats()["refresh"], 1, "one renewal for all runs");
    assert_eq!(server.stats()["refused"], 0);
    account.check_private(&outputs.iter().collect::<Vec<_>>());
}

/// Sendmail mode logs an OAuth 2 account in the same way: a message on
/// standard input reaches Postfix with the account's refreshed token.
pub fn oauth2_sendmail_mode_uses_the_token(env: &InteropEnv) {
    let server = TokenServer::start(env, "otto", &[]);
    let account = Account::new(env, "otto", &server, "");
    account.store_refresh(&server.refresh_token());
    let message = b"Subject: via sendmail\r\nTo: sink@example.test\r\n\r\nhello\r\n";
    let config = account.config.to_str().unwrap();
    let args = [
        "--config",
        config,
        "sendmail",
        "-v",
        "--account",
        "work",
        "-t",
    ];
    let output = mailctl_with_stdin(&args, None, account.state(), Some(message));
    assert_ok(&output, "sendmail with an OAuth 2 account");
    let transcript = stderr_of(&output);
    assert!(
        transcript.contains("C: AUTH OAUTHBEARER <redacted>"),
        "{transcript}"
    );
    assert!(transcript.contains("queued as"), "{transcript}");
    assert_eq!(server.stats()["refresh"], 1);
    account.check_private(&[&output]);
}

/// A cached token the server refuses (signed with another key) is
/// retried once with a fresh one, for SMTP and for POP3.
pub fn oauth2_refused_cached_token_is_retried_once(env: &InteropEnv) {
    let server = TokenServer::start(env, "otto", &[]);
    let account = Account::new(env, "otto", &server, "");
    account.store_refresh(&server.refresh_token());
    // A well-formed JWT for otto, valid for an hour, with a wrong signature.
    let forged = format!(
        "{}.{}.{}",
        base64url(br#"{"alg":"HS256","typ":"JWT"}"#),
        base64url(
            format!(
                r#"{{"iss":"mailctl-interop","sub":"otto","iat":{},"exp":{}}}"#,
                now(),
                now() + 3600
            )
            .as_bytes()
        ),
        base64url(&[7u8; 32]),
    );
    let mut outputs = Vec::new();
    for (n, args) in [
        vec![
            "send",
            "--to",
            "sink@example.test",
            "--subject",
            "retry",
            "--body",
            "x",
        ],
        vec!["fetch", "--list"],
    ]
    .into_iter()
    .enumerate()
    {
        account.cache_access(&forged, now() + 3600);
        let output = account.run(&args);
        assert_ok(&output, &format!("{} after a refused token", args[0]));
        let transcript = stderr_of(&output);
        assert!(
            transcript.contains("the server refused the cached token"),
            "{transcript}"
        );
        assert_eq!(server.stats()["refresh"], n + 1, "one refresh per retry");
        assert_ne!(account.cached_access().0, forged);
        outputs.push(output);
    }
    account.check_private(&outputs.iter().collect::<Vec<_>>());
}

fn base64url(bytes: &[u8]) -> String {
    base64(bytes)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

/// Runs `mailctl ... oauth2 login --account work`, hands each stderr line
/// to `person` (who plays the browser), and returns the output.
fn login(account: &Account, person: impl Fn(&str)) -> (Output, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailctl"))
        .args([
            "--config",
            account.config.to_str().unwrap(),
            "oauth2",
            "login",
        ])
        .args(["--account", "work", "--wait", "120"])
        .env("XDG_STATE_HOME", account.state())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mailctl oauth2 login");
    let stderr = child.stderr.take().expect("stderr");
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut seen = String::new();
    while let Ok(line) = lines.recv_timeout(RUN_LIMIT) {
        person(&line);
        seen.push_str(&line);
        seen.push('\n');
    }
    let output = child.wait_with_output().expect("mailctl oauth2 login");
    (output, seen)
}

/// `oauth2 login` with a device endpoint: mailctl prints the URL and code,
/// the person approves, mailctl's poll gets the tokens; `oauth2 status`
/// and `config check --connect` then use them.
pub fn oauth2_device_login_end_to_end(env: &InteropEnv) {
    let server = TokenServer::start(env, "otto", &[]);
    let device = format!("device_url = \"{}/device\"", server.url);
    let account = Account::new(env, "otto", &server, &device);
    let (output, seen) = login(&account, |line| {
        if let Some((_, code)) = line.split_once("enter the code ") {
            let url = format!("{}/verify?user_code={}", server.url, code.trim());
            curl(&[&url]);
        }
    });
    assert!(output.status.success(), "login failed:\n{seen}");
    assert!(
        seen.contains(&format!("open {}/verify", server.url)),
        "{seen}"
    );
    assert_eq!(server.stats()["device"], 1);
    let status = account.run(&["oauth2", "status"]);
    assert_ok(&status, "oauth2 status");
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(shown.contains("work: refresh token in"), "{shown}");
    assert!(shown.contains("access token valid until"), "{shown}");
    let check = account.run(&["config", "check", "--connect"]);
    assert_ok(&check, "config check --connect");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        report.contains("auth: OAUTHBEARER as otto accepted"),
        "{report}"
    );
    account.check_private(&[&output, &status, &check]);
}

/// `oauth2 login` without a device endpoint: the code grant with PKCE.
/// The "browser" follows the printed URL; the token server (HTTPS with the
/// test CA, which mailctl trusts through the account's ca_file) redirects
/// to mailctl's loopback listener with the code.
pub fn oauth2_pkce_login_end_to_end(env: &InteropEnv) {
    let tls = Path::new(env.get("MAILCTL_INTEROP_DIR")).join("tls");
    let (cert, key) = (tls.join("server.crt"), tls.join("server.key"));
    let server = TokenServer::start(
        env,
        "otto",
        &["--tls", cert.to_str().unwrap(), key.to_str().unwrap()],
    );
    assert!(server.url.starts_with("https://"));
    let auth = format!("auth_url = \"{}/authorize\"", server.url);
    let account = Account::new(env, "otto", &server, &auth);
    let ca = env.ca_file().to_string();
    let (output, seen) = login(&account, |line| {
        if line.starts_with(&format!("{}/authorize?", server.url)) {
            let page = Command::new("curl")
                .args(["-sS", "-L", "--cacert", &ca, line])
                .output()
                .expect("run curl");
            let text = String::from_utf8_lossy(&page.stdout);
            assert!(text.contains("mailctl has the authorization"), "{text}");
        }
    });
    assert!(output.status.success(), "login failed:\n{seen}");
    assert!(seen.contains("code_challenge_method=S256"), "{seen}");
    assert_eq!(server.stats()["code"], 1);
    let fetched = account.run(&["fetch", "--list"]);
    assert_ok(&fetched, "fetch after the PKCE login");
    assert_eq!(
        server.stats()["refresh"],
        0,
        "the login's access token is cached"
    );
    account.check_private(&[&output, &fetched]);
}
