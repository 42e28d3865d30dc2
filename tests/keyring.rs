//! The password of an account in the system keyring: `mailctl password
//! set` stores it (from standard input, never an argument), `send` finds it
//! through `password_keyring`, `password delete` removes it. Each test runs
//! in a D-Bus session of its own with GNOME Keyring's Secret Service,
//! unlocked with a throwaway password, and a home directory of its own.
//!
//! Needs a build with `--features keyring` (CI's) and Debian's `dbus` and
//! `gnome-keyring`; otherwise the tests are reported ignored.

mod outside;
mod send_support;

use std::fs;
use std::path::Path;
use std::process::{Command, ExitCode, Output, Stdio};

use base64::Engine;
use outside::{program, Missing};
use send_support::{FakeServer, Script};

fn main() -> ExitCode {
    outside::run(vec![
        outside::trial("stored_password_is_used_then_deleted", needs, |()| {
            stored_password_is_used_then_deleted()
        }),
        outside::trial(
            "set_without_an_entry_in_the_config_says_what_to_add",
            needs,
            |()| set_without_an_entry_in_the_config_says_what_to_add(),
        ),
    ])
}

/// The keyring feature and a Secret Service to run.
fn needs() -> Result<(), Missing> {
    if !cfg!(feature = "keyring") {
        return Err(Missing {
            what: "mailctl was built without the keyring feature (cargo test --features keyring)"
                .into(),
            ci_provides: true,
        });
    }
    program("dbus-run-session", true).and(program("gnome-keyring-daemon", true))
}

/// Runs `script` (sh) in a fresh D-Bus session with an unlocked keyring and
/// `home` as HOME; `$M` is mailctl, `$C` the config file in `home`.
fn in_session(home: &Path, script: &str) -> Output {
    let prelude =
        "printf 'unlock' | gnome-keyring-daemon --unlock --components=secrets >/dev/null\n";
    Command::new("dbus-run-session")
        .args(["--", "sh", "-c", &format!("{prelude}{script}")])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .env("M", env!("CARGO_BIN_EXE_mailctl"))
        .env("C", home.join("config.toml"))
        .stdin(Stdio::null())
        .output()
        .expect("dbus-run-session runs")
}

fn home_with_config(config: &str) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    fs::create_dir_all(home.path().join("run")).unwrap();
    fs::write(home.path().join("config.toml"), config).unwrap();
    home
}

fn stored_password_is_used_then_deleted() {
    let server = FakeServer::start(Script::default());
    let config = format!(
        "[accounts.work]\nfrom = \"me@example.org\"\nuser = \"me\"\npassword_keyring = \"work\"\n\
         [accounts.work.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n",
        server.addr().rsplit(':').next().unwrap()
    );
    let home = home_with_config(&config);
    let out = in_session(
        home.path(),
        "echo 'kr-Pa55word' | $M --config $C password set --account work || exit 10\n\
         $M --config $C config check | grep keyring || exit 11\n\
         $M --config $C send --to you@example.org --subject s --body b || exit 12\n\
         $M --config $C password delete --account work || exit 13\n\
         $M --config $C send --to you@example.org --subject s --body b\n\
         echo \"second send: $?\"",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("password from the keyring entry `work`"),
        "{stdout}"
    );
    assert!(
        stderr.contains("stored in the keyring as `work`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("removed `work` from the keyring"),
        "{stderr}"
    );
    assert!(stdout.contains("second send: 78"), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("no password stored in the keyring under `work`"),
        "{stderr}"
    );
    let rec = server.finish();
    let plain = base64::engine::general_purpose::STANDARD.encode("\0me\0kr-Pa55word");
    assert!(
        rec.commands
            .iter()
            .any(|c| c == &format!("AUTH PLAIN {plain}")),
        "the keyring's password was sent: {:?}",
        rec.commands
    );
}

fn set_without_an_entry_in_the_config_says_what_to_add() {
    let home = home_with_config(
        "[accounts.work]\nfrom = \"me@example.org\"\n[accounts.work.smtp]\nhost = \"h\"\n",
    );
    let out = in_session(
        home.path(),
        "echo pw | $M --config $C password set; echo \"exit $?\"",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("exit 78"), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("add password_keyring = \"work\" to [accounts.work] first"),
        "{stderr}"
    );
}
