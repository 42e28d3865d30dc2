//! The servers of common mail providers, for `mailctl config init`: which
//! hosts, ports and TLS they use for SMTP submission and POP3, and the
//! address domains that tell which provider an address belongs to.

/// How a provider's server is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProviderServer {
    /// Host name.
    pub host: &'static str,
    /// Port.
    pub port: u16,
    /// `implicit` or `starttls`, as the config file spells it.
    pub tls: &'static str,
}

/// A mail provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Provider {
    /// The name given to `--provider`, also used as the account name.
    pub name: &'static str,
    /// A name for people.
    pub title: &'static str,
    /// Address domains that belong to it.
    pub domains: &'static [&'static str],
    /// SMTP submission.
    pub smtp: ProviderServer,
    /// POP3, if the provider offers it.
    pub pop3: Option<ProviderServer>,
    /// The `auth` to configure, when the provider needs a particular one.
    pub auth: Option<&'static str>,
    /// What the password must be, said once the file is written.
    pub password_note: &'static str,
}

const fn server(host: &'static str, port: u16, tls: &'static str) -> ProviderServer {
    ProviderServer { host, port, tls }
}

/// The providers `config init` knows.
pub const PROVIDERS: &[Provider] = &[
    Provider {
        name: "163",
        title: "NetEase 163 Mail",
        domains: &["163.com"],
        smtp: server("smtp.163.com", 465, "implicit"),
        pop3: Some(server("pop.163.com", 995, "implicit")),
        auth: None,
        password_note: "use the client authorization code (enable POP3/SMTP in the web settings), not the login password",
    },
    Provider {
        name: "126",
        title: "NetEase 126 Mail",
        domains: &["126.com"],
        smtp: server("smtp.126.com", 465, "implicit"),
        pop3: Some(server("pop.126.com", 995, "implicit")),
        auth: None,
        password_note: "use the client authorization code (enable POP3/SMTP in the web settings), not the login password",
    },
    Provider {
        name: "qq",
        title: "QQ Mail",
        domains: &["qq.com", "foxmail.com", "vip.qq.com"],
        smtp: server("smtp.qq.com", 465, "implicit"),
        pop3: Some(server("pop.qq.com", 995, "implicit")),
        auth: None,
        password_note: "use the authorization code from Settings > Account (POP3/SMTP enabled), not the QQ password",
    },
    Provider {
        name: "gmail",
        title: "Gmail",
        domains: &["gmail.com", "googlemail.com"],
        smtp: server("smtp.gmail.com", 465, "implicit"),
        pop3: Some(server("pop.gmail.com", 995, "implicit")),
        auth: None,
        password_note: "use an app password (Google Account > Security, with 2-step verification), and enable POP in Gmail's settings",
    },
    Provider {
        name: "outlook",
        title: "Outlook.com / Microsoft 365",
        domains: &["outlook.com", "hotmail.com", "live.com", "msn.com", "office365.com"],
        smtp: server("smtp.office365.com", 587, "starttls"),
        pop3: Some(server("outlook.office365.com", 995, "implicit")),
        auth: Some("xoauth2"),
        password_note: "Microsoft accepts only OAuth 2.0: password_command must print an access token",
    },
    Provider {
        name: "fastmail",
        title: "Fastmail",
        domains: &["fastmail.com", "fastmail.fm"],
        smtp: server("smtp.fastmail.com", 465, "implicit"),
        pop3: Some(server("pop.fastmail.com", 995, "implicit")),
        auth: None,
        password_note: "use an app password (Settings > Privacy & Security)",
    },
    Provider {
        name: "icloud",
        title: "iCloud Mail",
        domains: &["icloud.com", "me.com", "mac.com"],
        smtp: server("smtp.mail.me.com", 587, "starttls"),
        pop3: None,
        auth: None,
        password_note: "use an app-specific password (appleid.apple.com); iCloud offers no POP3, so only sending is set up",
    },
    Provider {
        name: "yahoo",
        title: "Yahoo Mail",
        domains: &["yahoo.com", "ymail.com", "rocketmail.com", "yahoo.co.uk", "yahoo.co.jp"],
        smtp: server("smtp.mail.yahoo.com", 465, "implicit"),
        pop3: Some(server("pop.mail.yahoo.com", 995, "implicit")),
        auth: None,
        password_note: "use an app password (Account security > Generate app password)",
    },
];

/// The provider named `name` (`--provider`), case-insensitively; a few
/// other spellings are accepted (`163.com`, `microsoft365`).
pub fn by_name(name: &str) -> Option<&'static Provider> {
    let name = name.trim().to_ascii_lowercase();
    let name = match name.as_str() {
        "microsoft" | "microsoft365" | "office365" | "hotmail" | "m365" => "outlook",
        "google" | "googlemail" => "gmail",
        "apple" | "me" => "icloud",
        other => other,
    };
    PROVIDERS
        .iter()
        .find(|p| p.name == name || p.domains.contains(&name))
}

/// The provider an address belongs to, from its domain.
pub fn for_address(address: &str) -> Option<&'static Provider> {
    let domain = address.rsplit_once('@')?.1.trim().to_ascii_lowercase();
    PROVIDERS
        .iter()
        .find(|p| p.domains.contains(&domain.as_str()))
}

/// The names `--provider` takes, for messages.
pub fn names() -> String {
    PROVIDERS
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_names_find_their_provider() {
        assert_eq!(for_address("zhang@163.com").unwrap().name, "163");
        assert_eq!(for_address("x@QQ.com").unwrap().name, "qq");
        assert_eq!(for_address("a@hotmail.com").unwrap().name, "outlook");
        assert!(for_address("a@example.org").is_none());
        assert!(for_address("no-at-sign").is_none());
        assert_eq!(by_name("Microsoft365").unwrap().name, "outlook");
        assert_eq!(by_name("163.com").unwrap().name, "163");
        assert!(by_name("aol").is_none());
        for p in PROVIDERS {
            assert!(matches!(p.smtp.tls, "implicit" | "starttls"), "{}", p.name);
            assert_eq!(p.smtp.tls == "implicit", p.smtp.port == 465, "{}", p.name);
        }
    }
}
