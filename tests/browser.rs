//! The web inbox in a real browser: tests/web/browser.py drives headless
//! Chromium over its DevTools pipe against `mailctl serve --http` and
//! writes target/web-screenshot.png (and a phone-width one) for a person
//! to look at. Without python3 or chromium the test is reported ignored
//! (CI installs both; there their absence fails it).

mod outside;
mod serve_support;

use std::path::Path;
use std::process::{Command, ExitCode};

use outside::program;
use serve_support::{run, Server};

fn main() -> ExitCode {
    outside::run(vec![outside::trial(
        "the_page_in_a_headless_browser",
        || program("python3", true).and(program("chromium", true)),
        |()| the_page_in_a_headless_browser(),
    )])
}

fn the_page_in_a_headless_browser() {
    let server = Server::start(&["--http", "127.0.0.1:0"]);
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../web-screenshot.png");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web/browser.py");
    let (ok, out, err) = run(Command::new("python3")
        .arg(script)
        .arg(format!("http://127.0.0.1:{}/", server.http))
        .arg(server.smtp.to_string())
        .arg(env!("CARGO_BIN_EXE_mailctl"))
        .arg(&screenshot));
    println!("{out}");
    assert!(ok, "{out}{err}");
    assert!(!out.contains("FAIL"), "{out}");
}
