//! The accounts and policy of `mailctl serve`, shared by its SMTP and POP3
//! machines.
//!
//! Mailbox rule: every mailbox is a Maildir `DIR/<name>/`. A recipient
//! address and a POP3 login name select the mailbox named by their local
//! part (before the last `@`), in lower case; the local part must consist
//! of ASCII letters, digits and `. _ + -` and of non-ASCII characters other
//! than controls (RFC 6531 addresses), must not start with a dot and is at
//! most 64 bytes. In the name, each byte of a non-ASCII character is
//! written `%XX` (upper-case hex), so the name is always one safe path
//! component inside `DIR` (no `/`, no `..`, no control character) and two
//! local parts never share one. Anything else is refused. With `--user`,
//! only the users' mailboxes exist.

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
    let local = local.to_lowercase();
    let safe = !local.is_empty()
        && local.len() <= MAX_MAILBOX_NAME
        && !local.starts_with('.')
        && local.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '.' | '_' | '+' | '-')
                || (!c.is_ascii() && !c.is_control())
        });
    if !safe {
        return None;
    }
    let mut name = String::with_capacity(local.len() * 3);
    for c in local.chars() {
        if c.is_ascii() {
            name.push(c);
        } else {
            let mut utf8 = [0u8; 4];
            for byte in c.encode_utf8(&mut utf8).bytes() {
                name.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    Some(name)
}

/// Whether `name` is a mailbox name as [`mailbox_name`] makes them (and so
/// safe as a path component).
pub fn is_mailbox_name(name: &str) -> bool {
    let mut bytes = Vec::with_capacity(name.len());
    let mut rest = name.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        rest = tail;
        if first != b'%' {
            bytes.push(first);
            continue;
        }
        let Some(byte) = rest
            .get(..2)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        else {
            return false;
        };
        bytes.push(byte);
        rest = &rest[2..];
    }
    let local = String::from_utf8(bytes).unwrap_or_default();
    !local.contains('@') && mailbox_name(&local).as_deref() == Some(name)
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
            "",
            "@x",
            "..",
            ".",
            "../etc@x",
            "a/b@x",
            ".hidden",
            "a b",
            "a\0b",
            "a\\b",
            "tmp/x",
            "a%41",
            "\u{85}x@y",
            "é/x",
        ] {
            assert_eq!(mailbox_name(bad), None, "{bad:?}");
        }
        assert_eq!(mailbox_name(&"a".repeat(65)), None);
        assert!(mailbox_name(&"a".repeat(64)).is_some());
    }

    #[test]
    fn non_ascii_local_parts_are_escaped() {
        assert_eq!(mailbox_name("José@x").as_deref(), Some("jos%C3%A9"));
        assert_eq!(mailbox_name("josé").as_deref(), Some("jos%C3%A9"));
        assert_eq!(
            mailbox_name("用户@例子.广告").as_deref(),
            Some("%E7%94%A8%E6%88%B7")
        );
        for good in ["bob", "jos%C3%A9", "a.b+c"] {
            assert!(is_mailbox_name(good), "{good}");
        }
        for bad in [
            "",
            "Bob",
            "..",
            "a/b",
            "%2E%2E",
            "a%2Fb",
            "jos%c3%a9",
            "%C3",
            "a%4",
            "a%40b",
        ] {
            assert!(!is_mailbox_name(bad), "{bad}");
        }
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
