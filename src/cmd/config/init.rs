//! `mailctl config init`: a first configuration file from an address.
//!
//! The provider is guessed from the address's domain (or asked, or given
//! with `--provider`), and its hosts, ports and TLS are written into a
//! private (0600) file, never over an existing one without `--force`. On a
//! terminal, the missing answers are asked for and `config check --connect`
//! is offered; a script gives `--address`, `--provider` and
//! `--password-command` (and `--connect` to check at once).

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use clap::Args;

use crate::config::providers::{self, Provider, ProviderServer};
use crate::exit::{fail, Exit};

/// Options of `mailctl config init`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  mailctl config init                                   # asks for the address
  mailctl config init --address me@163.com --password-command 'pass show mail/163'
  mailctl config init --address me@example.org --provider fastmail --connect

Providers: 163, 126, qq, gmail, outlook (Outlook.com, Hotmail, Microsoft 365), fastmail, icloud, \
yahoo. The file is written with mode 0600; an existing file is left alone unless --force is given. \
`mailctl help config` describes the file's keys.")]
pub struct InitArgs {
    /// The mail address of the account.
    #[arg(long, value_name = "ADDR")]
    pub address: Option<String>,

    /// The provider, when the address's domain does not tell it.
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,

    /// Shell command that prints the password (or app password, or token);
    /// without it, mailctl asks for the password at each use.
    #[arg(long, value_name = "CMD")]
    pub password_command: Option<String>,

    /// The account's name [default: the provider's].
    #[arg(long = "name", value_name = "NAME")]
    pub account: Option<String>,

    /// Replace an existing configuration file.
    #[arg(long)]
    pub force: bool,

    /// Check the servers once the file is written (`config check --connect`).
    #[arg(long)]
    pub connect: bool,
}

/// What `init` writes, once every answer is known.
struct Answers {
    address: String,
    provider: &'static Provider,
    password_command: Option<String>,
    account: String,
}

/// Runs `mailctl config init` for the file at `path`; returns whether to
/// check the servers now.
pub fn run(path: &Path, args: &InitArgs) -> anyhow::Result<bool> {
    if path.exists() && !args.force {
        crate::bail_with!(
            Exit::CantCreate,
            "{} exists: give --force to replace it (`mailctl config check` shows what it holds)",
            path.display()
        );
    }
    let interactive = std::io::stdin().is_terminal();
    let answers = answers(args, interactive)?;
    write_file(path, &render(&answers), args.force)?;
    println!("wrote {} (mode 0600)", path.display());
    println!(
        "account {}: {} ({})",
        answers.account, answers.address, answers.provider.title
    );
    println!("password: {}", answers.provider.password_note);
    if args.connect {
        return Ok(true);
    }
    if interactive {
        let check = ask("Check the servers now (config check --connect)? [Y/n] ")?;
        return Ok(!check.trim().to_ascii_lowercase().starts_with('n'));
    }
    Ok(false)
}

/// The answers from the flags, asking on a terminal for what is missing.
fn answers(args: &InitArgs, interactive: bool) -> anyhow::Result<Answers> {
    let address = match (&args.address, interactive) {
        (Some(address), _) => address.trim().to_string(),
        (None, true) => ask("Mail address: ")?.trim().to_string(),
        (None, false) => crate::bail_with!(Exit::Usage, "give --address ADDR (no terminal to ask)"),
    };
    crate::mail::compose::address::check_address(&address)?;
    let provider = match &args.provider {
        Some(name) => providers::by_name(name).ok_or_else(|| {
            fail(
                Exit::Usage,
                format!("unknown provider '{name}' (known: {})", providers::names()),
            )
        })?,
        None => match providers::for_address(&address) {
            Some(provider) => provider,
            None if interactive => ask_provider(&address)?,
            None => crate::bail_with!(
                Exit::Usage,
                "cannot tell the provider of {address}: give --provider (one of {})",
                providers::names()
            ),
        },
    };
    let password_command = match (&args.password_command, interactive) {
        (Some(command), _) => Some(command.clone()),
        (None, true) => {
            let answer = ask("Command that prints the password (empty: ask each time): ")?;
            Some(answer.trim().to_string()).filter(|c| !c.is_empty())
        }
        (None, false) => None,
    };
    Ok(Answers {
        account: args
            .account
            .clone()
            .unwrap_or_else(|| provider.name.to_string()),
        address,
        provider,
        password_command,
    })
}

/// Asks which provider serves `address` until a known one is named.
fn ask_provider(address: &str) -> anyhow::Result<&'static Provider> {
    loop {
        let answer = ask(&format!("Provider of {address} ({}): ", providers::names()))?;
        if let Some(provider) = providers::by_name(&answer) {
            return Ok(provider);
        }
        println!(
            "unknown provider '{}'",
            crate::text::printable(answer.trim().as_bytes())
        );
    }
}

/// Prints `question` and reads one line from standard input; the end of
/// input is an error.
fn ask(question: &str) -> anyhow::Result<String> {
    print!("{question}");
    std::io::stdout().flush()?;
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line)? == 0 {
        crate::bail_with!(Exit::Usage, "no answer: standard input ended");
    }
    Ok(line)
}

/// A TOML string literal.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// One server table.
fn server_table(
    account: &str,
    protocol: &str,
    server: &ProviderServer,
    auth: Option<&str>,
) -> String {
    let mut table = format!(
        "\n[accounts.{account}.{protocol}]\nhost = {}\nport = {}\ntls = {}\n",
        quoted(server.host),
        server.port,
        quoted(server.tls)
    );
    if let Some(auth) = auth {
        table.push_str(&format!("auth = {}\n", quoted(auth)));
    }
    table
}

/// The configuration file for the answers.
fn render(answers: &Answers) -> String {
    let Answers {
        address,
        provider,
        password_command,
        account,
    } = answers;
    let account = quoted(account);
    let password = match password_command {
        Some(command) => format!("password_command = {}\n", quoted(command)),
        None => {
            "# password_command = \"pass show mail/...\"   # else mailctl asks each time\n".into()
        }
    };
    let mut text = format!(
        "# mailctl configuration, written by `mailctl config init` for {address} ({}).\n\
         # Password: {}.\n\
         # `mailctl help config` describes every key.\n\n\
         default = {account}\n\n\
         [accounts.{account}]\nfrom = {}\nuser = {}\n{password}",
        provider.title,
        provider.password_note,
        quoted(address),
        quoted(address),
    );
    text.push_str(&server_table(
        &account,
        "smtp",
        &provider.smtp,
        provider.auth,
    ));
    match &provider.pop3 {
        Some(pop3) => text.push_str(&server_table(&account, "pop3", pop3, provider.auth)),
        None => text.push_str(&format!("\n# {} offers no POP3 server.\n", provider.title)),
    }
    text
}

/// Writes the file privately (mode 0600), its directory created if
/// missing (0700); replaces an existing file only with `force`.
fn write_file(path: &Path, text: &str, force: bool) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let cannot = |e: std::io::Error| {
        fail(
            Exit::CantCreate,
            format!("cannot write {}: {e}", path.display()),
        )
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(cannot)?;
    }
    let written = match force {
        true => crate::store::durable::replace(path, text.as_bytes()),
        false => crate::store::durable::write_new(path, text.as_bytes()),
    };
    written.map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => fail(
            Exit::CantCreate,
            format!("{} exists: give --force to replace it", path.display()),
        ),
        _ => cannot(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_for_each_provider_is_valid() {
        for provider in providers::PROVIDERS {
            let answers = Answers {
                address: format!("me@{}", provider.domains[0]),
                provider,
                password_command: Some("pass show \"mail\"".into()),
                account: provider.name.to_string(),
            };
            let text = render(&answers);
            let file: crate::config::ConfigFile = toml::from_str(&text).unwrap();
            let account = &file.accounts[provider.name];
            let smtp = account.smtp.as_ref().unwrap();
            assert_eq!(smtp.host.get_ref(), provider.smtp.host);
            assert_eq!(account.pop3.is_some(), provider.pop3.is_some(), "{text}");
            assert_eq!(
                account.password_command.as_ref().unwrap().get_ref(),
                "pass show \"mail\""
            );
        }
    }
}
