//! The accounts and policy of `mailctl serve`, shared by its SMTP and POP3
//! machines.
//!
//! Mailbox rule: every mailbox is a Maildir `DIR/<name>/`. A recipient
//! address and a POP3 login name select the mailbox named by their local
//! part (before the last `@`), in ASCII lower case; the name must consist of
//! letters, digits and `. _ + -`, must not start with a dot and is at most
//! 64 bytes, so it is always one safe path component inside `DIR`. Anything
//! else is refused. With `--user`, only the users' mailboxes exist.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::secret::Secret;

/// The longest mailbox name accepted.
pub const MAX_MAILBOX_NAME: usize = 64;

/// The mailbox an address or login name selects, or `None` if it has no
/// safe name (see the module documentation).
pub fn mailbox_name(address_or_login: &str) -> Option<String> {
    let local = match address_or_login.rfind('@') {
        Some(at) => &address_or_login[..at],
        None => address_or_login,
    };
    let name = local.to_ascii_lowercase();
    let safe = !name.is_empty()
        && name.len() <= MAX_MAILBOX_NAME
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'));
    safe.then_some(name)
}

/// The accounts of a server with `--user`: mailbox name to password.
/// Empty means catch-all mode (anyone may send, any password opens a mailbox).
#[derive(Clone, Debug, Default)]
pub struct Users {
    accounts: BTreeMap<String, Secret>,
}

impl Users {
    /// No accounts: catch-all mode.
    pub fn none() -> Self {
        Self::default()
    }

    /// Adds an account; the name must be a valid mailbox name.
    pub fn add(&mut self, name: &str, password: Secret) -> Result<(), String> {
        match mailbox_name(name) {
            Some(mailbox) if !name.contains('@') => {
                self.accounts.insert(mailbox, password);
                Ok(())
            }
            _ => Err(format!(
                "invalid user name '{}': use letters, digits and . _ + - only",
                crate::text::printable(name.as_bytes())
            )),
        }
    }

    /// Parses `NAME:PASSWORD` and adds it.
    pub fn add_spec(&mut self, spec: &str) -> Result<(), String> {
        match spec.split_once(':') {
            Some((name, password)) if !password.is_empty() => self.add(name, Secret::new(password)),
            _ => Err("a user must be given as NAME:PASSWORD".to_string()),
        }
    }

    /// Whether any account exists (authentication is then required).
    pub fn exist(&self) -> bool {
        !self.accounts.is_empty()
    }

    /// The mailbox of an existing account matching `login`, if any.
    pub fn lookup(&self, login: &str) -> Option<(&str, &Secret)> {
        let name = mailbox_name(login)?;
        self.accounts
            .get_key_value(&name)
            .map(|(k, v)| (k.as_str(), v))
    }

    /// Checks a login and password; returns the mailbox name on success.
    /// In catch-all mode any password opens the mailbox the login names.
    pub fn check(&self, login: &str, password: &[u8]) -> Option<String> {
        if !self.exist() {
            return mailbox_name(login);
        }
        let (name, secret) = self.lookup(login)?;
        constant_time_eq(secret.expose().as_bytes(), password).then(|| name.to_string())
    }

    /// The mailbox a recipient address is delivered to, if it is accepted.
    pub fn recipient_mailbox(&self, address: &str) -> Option<String> {
        let name = mailbox_name(address)?;
        (!self.exist() || self.accounts.contains_key(&name)).then_some(name)
    }
}

/// Compares secrets without an early exit on the first difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What the protocol machines need to know about the server.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The name the server announces in greetings and Received headers.
    pub hostname: String,
    /// Largest message accepted, in bytes.
    pub max_size: u64,
    /// Whether STARTTLS / STLS can be offered (a certificate was given).
    pub tls_available: bool,
    /// The accounts; empty means catch-all.
    pub users: Arc<Users>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_names_stay_inside_the_directory() {
        assert_eq!(mailbox_name("Alice@Example.org").as_deref(), Some("alice"));
        assert_eq!(mailbox_name("bob+tag").as_deref(), Some("bob+tag"));
        assert_eq!(mailbox_name("\"a@b\"@c").as_deref(), None);
        for bad in [
            "", "@x", "..", ".", "../etc@x", "a/b@x", ".hidden", "a b", "a\0b", "a\\b", "tmp/x",
            "é@x",
        ] {
            assert_eq!(mailbox_name(bad), None, "{bad:?}");
        }
        assert_eq!(mailbox_name(&"a".repeat(65)), None);
        assert!(mailbox_name(&"a".repeat(64)).is_some());
    }

    #[test]
    fn users_check_passwords_and_recipients() {
        let mut users = Users::none();
        assert_eq!(users.check("x@y", b"any").as_deref(), Some("x"));
        assert_eq!(users.recipient_mailbox("x@y").as_deref(), Some("x"));
        users.add_spec("alice:s3cr:et").unwrap();
        assert!(users.add_spec("bob").is_err());
        assert!(users.add_spec("../x:pw").is_err());
        assert!(users.add_spec("a@b:pw").is_err());
        assert_eq!(users.check("alice", b"s3cr:et").as_deref(), Some("alice"));
        assert_eq!(
            users.check("ALICE@host", b"s3cr:et").as_deref(),
            Some("alice")
        );
        assert_eq!(users.check("alice", b"wrong"), None);
        assert_eq!(users.check("carol", b"s3cr:et"), None);
        assert_eq!(users.recipient_mailbox("alice@x").as_deref(), Some("alice"));
        assert_eq!(users.recipient_mailbox("carol@x"), None);
    }
}
