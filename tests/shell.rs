//! Shell integration: completion scripts for every shell, a man page for
//! every command, and examples in the help of the commands.

use std::process::Command;

fn mailctl() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailctl"));
    cmd.env_remove("MAILCTL_CONFIG")
        .env_remove("MAILCTL_ACCOUNT");
    cmd
}

/// The commands, as the top-level help lists them (clap's `help` aside).
fn subcommands() -> Vec<String> {
    let out = mailctl().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let section = help.split("Commands:").nth(1).expect("a Commands section");
    let names: Vec<String> = section
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_string)
        .collect();
    for expected in [
        "send",
        "fetch",
        "serve",
        "parse",
        "config",
        "sendmail",
        "completions",
        "man",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    names
}

#[test]
fn completions_for_every_shell_name_every_command() {
    let commands = subcommands();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = mailctl().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.len() > 1000, "{shell}: {} bytes", script.len());
        for command in &commands {
            assert!(
                script.contains(command.as_str()),
                "{shell} script lacks {command}"
            );
        }
        assert!(script.contains("account"), "{shell} script lacks --account");
    }
    let out = mailctl().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn a_man_page_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = mailctl().arg("man").arg(dir.path()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8(out.stdout).unwrap();
    let mut pages = vec![
        "mailctl.1".to_string(),
        "mailctl-config-check.1".to_string(),
    ];
    pages.extend(subcommands().iter().map(|c| format!("mailctl-{c}.1")));
    for page in &pages {
        let path = dir.path().join(page);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(
            text.starts_with(".ie \\n(.g .ds Aq") || text.contains(".TH"),
            "{page}"
        );
        assert!(text.contains(".SH NAME"), "{page}");
        assert!(text.len() > 200, "{page} is nearly empty");
        assert!(
            listed.contains(&path.display().to_string()),
            "{page} not listed"
        );
    }
    assert!(
        std::fs::read_to_string(dir.path().join("mailctl-sendmail.1"))
            .unwrap()
            .contains("git send\\-email")
    );
}

#[test]
fn man_defaults_to_the_current_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = mailctl()
        .arg("man")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(dir.path().join("mailctl.1").is_file());
    assert!(dir.path().join("mailctl-man.1").is_file());
}

#[test]
fn help_has_examples() {
    for args in [
        &[][..],
        &["send"][..],
        &["fetch"][..],
        &["serve"][..],
        &["parse"][..],
        &["config", "check"][..],
        &["config", "path"][..],
        &["sendmail"][..],
        &["completions"][..],
        &["man"][..],
    ] {
        let out = mailctl().args(args).arg("--help").output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let help = String::from_utf8(out.stdout).unwrap();
        let examples = help
            .split("Examples:\n")
            .nth(1)
            .unwrap_or_else(|| panic!("{args:?}: {help}"));
        assert!(examples.contains("mailctl "), "{args:?}: {help}");
    }
}

#[test]
fn bare_mailctl_prints_help_and_exits_64() {
    let out = mailctl().output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let help = String::from_utf8_lossy(&out.stderr);
    assert!(
        help.contains("Usage: mailctl") && help.contains("Commands:"),
        "{help}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn usage_errors_are_one_line_and_exit_64() {
    for (args, expected) in [
        (&["fetch", "--bogus"][..], "(see 'mailctl fetch --help')"),
        (&["frobnicate"][..], "(see 'mailctl --help')"),
        (&["fetch", "--delete-oversized"][..], "--max-size"),
        (
            &["send", "--timeout", "0"][..],
            "(see 'mailctl send --help')",
        ),
        (
            &["config", "check", "--nope"][..],
            "(see 'mailctl config check --help')",
        ),
    ] {
        let out = mailctl().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("mailctl: error: "), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn global_options_appear_only_in_the_help_of_commands_that_use_them() {
    let help = |command: &str| {
        let out = mailctl().args([command, "--help"]).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    for command in ["send", "fetch", "config"] {
        let text = help(command);
        assert!(
            text.contains("--config") && text.contains("--verbose"),
            "{command}: {text}"
        );
    }
    assert!(help("serve").contains("--verbose") && !help("serve").contains("--config <FILE>"));
    for command in ["parse", "completions", "man"] {
        let text = help(command);
        assert!(
            !text.contains("--config") && !text.contains("--verbose"),
            "{command}: {text}"
        );
    }
}

#[test]
fn man_pages_have_examples_kept_line_for_line_and_no_extra_heading() {
    let dir = tempfile::tempdir().unwrap();
    let out = mailctl().arg("man").arg(dir.path()).output().unwrap();
    assert!(out.status.success());
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let page = std::fs::read_to_string(&path).unwrap();
        assert!(!page.contains(".SH EXTRA"), "{page}");
        if path.extension().is_some_and(|e| e == "1") {
            assert_eq!(page.matches(".SH VERSION").count(), 1, "{page}");
        }
    }
    let page = std::fs::read_to_string(dir.path().join("mailctl-man.1")).unwrap();
    let examples = page.split(".SH EXAMPLES\n").nth(1).expect("EXAMPLES");
    assert!(examples.starts_with(".nf\n"), "{page}");
    // The comment column keeps its spaces: no-fill mode does not adjust them.
    assert!(
        examples.contains("mailctl man                       # mailctl.1, mailctl\\-send.1"),
        "{page}"
    );
    let fetch = std::fs::read_to_string(dir.path().join("mailctl-fetch.1")).unwrap();
    assert!(
        fetch.contains(".SH NOTES") && fetch.contains(".SH \"EXIT STATUS\""),
        "{fetch}"
    );
}

#[test]
fn the_config_format_has_a_help_page_and_a_man_page() {
    let out = mailctl().args(["help", "config"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for key in [
        "password_command",
        "[accounts.NAME.smtp]",
        "[accounts.NAME.fetch]",
        "ca_file",
    ] {
        assert!(help.contains(key), "{key} missing: {help}");
    }
    let dir = tempfile::tempdir().unwrap();
    assert!(mailctl()
        .arg("man")
        .arg(dir.path())
        .status()
        .unwrap()
        .success());
    let page = std::fs::read_to_string(dir.path().join("mailctl.toml.5")).unwrap();
    assert!(page.contains(".TH mailctl.toml 5"), "{page}");
    assert!(page.contains(".SH KEYS\n.nf\n"), "{page}");
    assert!(page.contains("password_command = \"CMD\""), "{page}");
}
