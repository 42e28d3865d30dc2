//! A monitoring job mailing a failure report with the mailctl library.
//!
//! It runs a check command; if the command fails, it mails its exit status
//! and output (and attaches a log file, if given) through `submit`, the
//! same entry point `mailctl send` uses.
//!
//! ```text
//! MAILCTL_PASSWORD=... cargo run --example send_alert -- \
//!     --server smtp.example.org:587 --user alerts@example.org \
//!     --from alerts@example.org --to oncall@example.org \
//!     --check 'systemctl is-active --quiet nginx' [--log /var/log/nginx/error.log]
//! ```
//!
//! Add `--dry-run` to print the alert instead of sending it, `--tls none`
//! for a local relay, `--ca-file PEM` for a private CA, `-v` for the
//! transcript.

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

use mailctl::config::Password;
use mailctl::exit::{exit_status, Exit};
use mailctl::mail::compose::{Draft, Mailbox};
use mailctl::net::connection::{Endpoint, TlsMode, TlsOptions};
use mailctl::net::smtp::{submit, Settings};
use mailctl::proto::smtp::client::Credentials;
use mailctl::transcript::Transcript;

#[derive(Default)]
struct Options {
    server: Option<String>,
    tls: Option<TlsMode>,
    ca_file: Option<PathBuf>,
    user: Option<String>,
    from: Option<String>,
    to: Vec<String>,
    check: String,
    log: Option<PathBuf>,
    dry_run: bool,
    verbose: bool,
}

const USAGE: &str = "\
usage: send_alert --server HOST[:PORT] --from ADDR --to ADDR... --check 'CMD'
                  [--tls implicit|starttls|none] [--ca-file PEM] [--user USER]
                  [--log FILE] [--dry-run] [-v]

Runs CMD with sh -c; if it fails, mails its status and output (and FILE as
an attachment) to the recipients. The password comes from MAILCTL_PASSWORD,
or a prompt on the terminal. The exit status is mailctl's (0 sent or no
alert needed, 75 try again later).";

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        check: "false".into(),
        ..Options::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--server" => o.server = Some(value()?),
            "--tls" => {
                o.tls = Some(match value()?.as_str() {
                    "implicit" => TlsMode::Implicit,
                    "starttls" => TlsMode::Starttls,
                    "none" => TlsMode::None,
                    other => return Err(format!("unknown --tls {other}")),
                })
            }
            "--ca-file" => o.ca_file = Some(value()?.into()),
            "--user" => o.user = Some(value()?),
            "--from" => o.from = Some(value()?),
            "--to" => o.to.push(value()?),
            "--check" => o.check = value()?,
            "--log" => o.log = Some(value()?.into()),
            "--dry-run" => o.dry_run = true,
            "-v" => o.verbose = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("send_alert: {e}\n\n{USAGE}");
            return ExitCode::from(Exit::Usage.code());
        }
    };
    match run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("send_alert: error: {err:#}");
            ExitCode::from(exit_status(&err).code())
        }
    }
}

fn run(o: Options) -> anyhow::Result<()> {
    // The monitored job.
    let output = Command::new("sh").arg("-c").arg(&o.check).output()?;
    if output.status.success() {
        eprintln!("send_alert: check passed, no alert");
        return Ok(());
    }
    let host = mailctl::system::hostname();
    let mut text = format!(
        "The check `{}` failed on {host} ({}).\n\n",
        o.check, output.status
    );
    text.push_str("--- standard output ---\n");
    text.push_str(&String::from_utf8_lossy(&output.stdout));
    text.push_str("\n--- standard error ---\n");
    text.push_str(&String::from_utf8_lossy(&output.stderr));

    let from = Mailbox::parse(o.from.as_deref().unwrap_or("alerts@localhost"))?;
    let mut to = Vec::new();
    for t in &o.to {
        to.extend(mailctl::mail::compose::address::parse_list(t)?);
    }
    let draft = Draft {
        from: Some(from),
        to,
        subject: Some(format!("[ALERT] check failed on {host}")),
        // A header is one line: a multi-line script is shown flattened.
        headers: vec![(
            "X-Alert-Check".into(),
            o.check.split_whitespace().collect::<Vec<_>>().join(" "),
        )],
        text: Some(text),
        attachments: o.log.into_iter().collect(),
        ..Draft::default()
    };
    let envelope = draft.envelope()?;
    let message = draft.build()?;
    if o.dry_run {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        message.write_to(&mut out)?;
        out.flush()?;
        return Ok(());
    }

    let server = o
        .server
        .ok_or_else(|| mailctl::exit::fail(Exit::Usage, "--server is required"))?;
    let endpoint = Endpoint::parse(&server, 587)?;
    let tls = o.tls.unwrap_or(if endpoint.port == 465 {
        TlsMode::Implicit
    } else {
        TlsMode::Starttls
    });
    let credentials = match o.user {
        Some(user) => Some(Credentials {
            secret: Some(Password::default().obtain(&format!("Password for {user}: "))?),
            user,
            mechanism: None,
            token: false,
            client_cert: false,
            nonce: mailctl::crypto::nonce()?,
        }),
        None => None,
    };
    let settings = Settings {
        endpoint,
        tls,
        tls_options: TlsOptions {
            ca_file: o.ca_file,
            ..TlsOptions::default()
        },
        timeout: Duration::from_secs(30),
        helo_name: None,
        credentials,
        secret_source: None,
    };
    let report = submit(
        &settings,
        &envelope,
        &message,
        &Transcript::stderr(o.verbose),
    )?;
    eprintln!(
        "send_alert: alert {} accepted by {}{}",
        message.message_id().unwrap_or("?"),
        report.server,
        report
            .queue_id
            .map(|q| format!(" (queued as {q})"))
            .unwrap_or_default()
    );
    Ok(())
}
