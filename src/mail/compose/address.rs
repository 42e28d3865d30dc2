//! Mailboxes as users write them on the command line: `a@example.org`,
//! `Name <a@example.org>`, `"Doe, John" <j@example.org>`, `"张三" <z@example.cn>`,
//! several separated by commas (RFC 5322 section 3.4, simplified).

use crate::text::printable;

/// An address with an optional display name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailbox {
    /// The display name, unquoted.
    pub name: Option<String>,
    /// The address `local@domain`.
    pub address: String,
}

impl Mailbox {
    /// A mailbox without a display name, after checking the address.
    pub fn new(address: &str) -> anyhow::Result<Self> {
        check_address(address)?;
        Ok(Mailbox {
            name: None,
            address: ascii_domain(address)?,
        })
    }

    /// Parses one mailbox; a list of several is an error.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut list = parse_list(text)?;
        if list.len() != 1 {
            return Err(crate::mail::invalid(format!(
                "expected one address, got {}: '{}'",
                list.len(),
                printable(text.as_bytes())
            )));
        }
        Ok(list.remove(0))
    }
}

fn usage(message: String) -> anyhow::Error {
    crate::mail::invalid(message)
}

/// Checks an address: `local@domain`, no spaces, brackets or control
/// characters (so no CR or LF can reach a header or a command).
pub fn check_address(address: &str) -> anyhow::Result<()> {
    let shown = printable(address.as_bytes());
    if address.contains(['\r', '\n']) {
        return Err(usage(format!("address '{shown}' contains a line break")));
    }
    if address.chars().any(|c| c.is_control() || c.is_whitespace())
        || address.contains(['<', '>', '"', ',', '(', ')', '\\'])
    {
        return Err(usage(format!("invalid address '{shown}'")));
    }
    match address.rsplit_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && address.matches('@').count() == 1 =>
        {
            Ok(())
        }
        _ => Err(usage(format!(
            "invalid address '{shown}' (expected local@domain)"
        ))),
    }
}

/// The address with an internationalised domain in its ASCII form
/// (`a@bücher.de` becomes `a@xn--bcher-kva.de`), so that only a non-ASCII
/// local part needs SMTPUTF8. Call after [`check_address`].
pub fn ascii_domain(address: &str) -> anyhow::Result<String> {
    match address.rsplit_once('@') {
        Some((local, domain)) if !domain.is_ascii() => {
            Ok(format!("{local}@{}", super::idna::domain_to_ascii(domain)?))
        }
        _ => Ok(address.to_string()),
    }
}

/// Splits at commas that are outside quotes and angle brackets.
fn split_items(text: &str) -> anyhow::Result<Vec<&str>> {
    let mut items = Vec::new();
    let mut angle = false;
    let mut start = 0;
    let mut scan = Unquoted::new(text);
    for (i, c) in scan.by_ref() {
        match c {
            '<' => angle = true,
            '>' => angle = false,
            ',' if !angle => {
                items.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if scan.quoted {
        return Err(usage(format!(
            "unbalanced quotes in '{}'",
            printable(text.as_bytes())
        )));
    }
    items.push(&text[start..]);
    Ok(items)
}

/// The characters of a header value that stand outside quoted strings,
/// with their positions (quotes and backslash escapes skipped).
struct Unquoted<'a> {
    chars: std::str::CharIndices<'a>,
    /// Whether the scan is inside a quoted string (at the end: unbalanced).
    quoted: bool,
}

impl<'a> Unquoted<'a> {
    fn new(text: &'a str) -> Self {
        Unquoted {
            chars: text.char_indices(),
            quoted: false,
        }
    }
}

impl Iterator for Unquoted<'_> {
    type Item = (usize, char);

    fn next(&mut self) -> Option<(usize, char)> {
        loop {
            let (i, c) = self.chars.next()?;
            match c {
                '\\' if self.quoted => {
                    self.chars.next();
                }
                '"' => self.quoted = !self.quoted,
                _ if self.quoted => {}
                _ => return Some((i, c)),
            }
        }
    }
}

fn unquote(name: &str) -> String {
    let name = name.trim();
    match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(next) = chars.next() {
                        out.push(next);
                    }
                } else {
                    out.push(c);
                }
            }
            out
        }
        None => name.to_string(),
    }
}

/// Parses a comma-separated list of mailboxes. Empty items are skipped; an
/// empty list, a malformed item or any CR/LF is a usage error (exit 64).
pub fn parse_list(text: &str) -> anyhow::Result<Vec<Mailbox>> {
    if text.contains(['\r', '\n']) {
        return Err(usage(format!(
            "address list '{}' contains a line break",
            printable(text.as_bytes())
        )));
    }
    let mut out = Vec::new();
    for item in split_items(text)? {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let shown = printable(item.as_bytes());
        let mailbox = match find_angle(item) {
            Some(open) => {
                let rest = &item[open + 1..];
                let close = rest
                    .find('>')
                    .ok_or_else(|| usage(format!("missing '>' in '{shown}'")))?;
                if !rest[close + 1..].trim().is_empty() {
                    return Err(usage(format!("text after '>' in '{shown}'")));
                }
                let address = rest[..close].trim();
                let name = unquote(&item[..open]);
                if name.chars().any(char::is_control) {
                    return Err(usage(format!("control character in name '{shown}'")));
                }
                check_address(address)?;
                Mailbox {
                    name: (!name.is_empty()).then_some(name),
                    address: ascii_domain(address)?,
                }
            }
            None => Mailbox::new(item)?,
        };
        out.push(mailbox);
    }
    if out.is_empty() {
        return Err(usage(format!(
            "no address in '{}'",
            printable(text.as_bytes())
        )));
    }
    Ok(out)
}

/// The position of the '<' that opens the address, outside quotes.
fn find_angle(item: &str) -> Option<usize> {
    Unquoted::new(item).find(|&(_, c)| c == '<').map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mb(name: Option<&str>, address: &str) -> Mailbox {
        Mailbox {
            name: name.map(str::to_string),
            address: address.to_string(),
        }
    }

    #[test]
    fn lists_and_names() {
        assert_eq!(
            parse_list(r#"a@x.org, "Doe, John" <j@x.org>,"张三" <z@x.cn>, Plain Name <p@x.org>,"#)
                .unwrap(),
            vec![
                mb(None, "a@x.org"),
                mb(Some("Doe, John"), "j@x.org"),
                mb(Some("张三"), "z@x.cn"),
                mb(Some("Plain Name"), "p@x.org"),
            ]
        );
        assert_eq!(
            parse_list(r#""say \"hi\"" <q@x.org>"#).unwrap(),
            vec![mb(Some("say \"hi\""), "q@x.org")]
        );
        assert_eq!(parse_list("<b@x.org>").unwrap(), vec![mb(None, "b@x.org")]);
        assert_eq!(
            parse_list(r#""a <b>, \\c" <c@x.org>"#).unwrap(),
            vec![mb(Some("a <b>, \\c"), "c@x.org")]
        );
        assert_eq!(
            parse_list("用户@例子.测试").unwrap()[0].address,
            "用户@xn--fsqu00a.xn--0zwm56d"
        );
        assert_eq!(
            parse_list("Jörg <jorg@Bücher.de>, a@münchen.de").unwrap(),
            vec![
                mb(Some("Jörg"), "jorg@xn--bcher-kva.de"),
                mb(None, "a@xn--mnchen-3ya.de"),
            ]
        );
    }

    #[test]
    fn refused() {
        for bad in [
            "",
            " , ",
            "nobody",
            "@x.org",
            "a@",
            "a b@x.org",
            "a@x.org\r\nBcc: victim@y.org",
            "Name <a@x.org\n>",
            "\"unbalanced <a@x.org>",
            "Name <a@x.org",
            "Name <a@x.org> extra",
            "x <a@b@c>",
        ] {
            let err = parse_list(bad).unwrap_err();
            assert!(
                matches!(
                    crate::mail::kind_of(&err),
                    Some(crate::mail::Error::Invalid(_))
                ),
                "{bad:?}"
            );
        }
        assert!(Mailbox::parse("a@x.org, b@x.org").is_err());
    }
}
