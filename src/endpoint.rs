//! Where to connect: a server address, how the connection is protected and
//! which certificates are trusted. Plain values: the configuration resolves
//! them, the net layer connects with them.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};

use crate::text::printable;

/// A server address: a host name or IP literal and a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP address, without brackets.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl Endpoint {
    /// Parses `HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT`, using
    /// `default_port` when none is given.
    pub fn parse(text: &str, default_port: u16) -> Result<Self, Error> {
        let bad = || Error::Address {
            text: text.to_string(),
        };
        if text.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(bad)?;
            match after {
                "" => (host, None),
                _ => (host, Some(after.strip_prefix(':').ok_or_else(bad)?)),
            }
        } else if text.matches(':').count() > 1 {
            // Only a bare IPv6 address has several colons.
            text.parse::<IpAddr>().map_err(|_| bad())?;
            (text, None)
        } else {
            match text.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (text, None),
            }
        };
        let port = match port {
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?,
            None => default_port,
        };
        if host.is_empty() {
            return Err(bad());
        }
        // An internationalised name is resolved, and its certificate
        // checked, in its ASCII form.
        let host = if host.is_ascii() {
            host.to_string()
        } else {
            domain_to_ascii(host).map_err(|why| Error::Domain {
                message: format!("invalid domain '{}': {why}", printable(host.as_bytes())),
            })?
        };
        Ok(Endpoint { host, port })
    }

    /// Whether the host is a loopback address (or `localhost`), where
    /// plaintext authentication cannot be overheard.
    pub fn is_loopback(&self) -> bool {
        if self.host.eq_ignore_ascii_case("localhost") {
            return true;
        }
        self.host
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// How a connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// TLS from the first byte (SMTPS on 465, POP3S on 995).
    Implicit,
    /// Plain TCP upgraded by STARTTLS / STLS; the upgrade is required.
    Starttls,
    /// No encryption at all.
    None,
    /// STARTTLS / STLS when the server offers it, else plain text: only
    /// for a loopback server when no mode was named, so credentials never
    /// leave the machine unencrypted.
    StarttlsIfOffered,
}

/// Certificate verification settings for client connections.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// The trusted root certificates (PEM), instead of the system store.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate and host name. Dangerous; for testing only.
    pub insecure: bool,
    /// The client certificate to present, if the server asks for one.
    pub client_cert: Option<ClientCert>,
}

/// A TLS client certificate (chain) and its private key, both PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCert {
    /// The certificate, followed by any intermediate certificates.
    pub cert: PathBuf,
    /// The unencrypted private key.
    pub key: PathBuf,
}

/// A server address that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Not `HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT`.
    Address {
        /// The address as given.
        text: String,
    },
    /// An internationalised host name that has no ASCII form.
    Domain {
        /// What is wrong with it.
        message: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Address { text } => write!(f, "invalid server address '{text}'"),
            Error::Domain { message } => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {}

/// The ASCII form of a domain (RFC 5890 A-labels): a domain with non-ASCII
/// characters goes through the UTS #46 mapping with its strict rules, and
/// every such label is encoded as `xn--...`; an ASCII domain is kept as
/// written. The error says why the name is not a valid domain.
pub fn domain_to_ascii(domain: &str) -> Result<String, &'static str> {
    let dots = ['.', '\u{3002}', '\u{ff0e}', '\u{ff61}'];
    if domain.split(dots).any(str::is_empty) {
        return Err("empty label");
    }
    let out = if domain.is_ascii() {
        domain.to_string()
    } else {
        Uts46::new()
            .to_ascii(
                domain.as_bytes(),
                AsciiDenyList::STD3,
                Hyphens::Check,
                DnsLength::Ignore,
            )
            .map_err(|_| "not a valid internationalised domain name")?
            .into_owned()
    };
    if out.split('.').any(|label| label.len() > 63) {
        return Err("a label is longer than 63 characters");
    }
    if out.len() > 253 {
        return Err("longer than 253 characters");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_forms() {
        let e = Endpoint::parse("mail.example.org", 587).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("mail.example.org", 587));
        let e = Endpoint::parse("127.0.0.1:2525", 587).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("127.0.0.1", 2525));
        assert!(e.is_loopback());
        let e = Endpoint::parse("[::1]:465", 587).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 465));
        assert_eq!(e.to_string(), "[::1]:465");
        let e = Endpoint::parse("::1", 25).unwrap();
        assert_eq!(e.port, 25);
        assert!(Endpoint::parse("host:0", 1).is_err());
        assert!(Endpoint::parse("host:x", 1).is_err());
        assert!(Endpoint::parse("a b", 1).is_err());
        assert!(Endpoint::parse(":25", 1).is_err());
        // Several colons: an IPv6 address, or a mistake (not a host name).
        assert!(Endpoint::parse("host:25:26", 1).is_err());
        assert!(matches!(
            Endpoint::parse("a b", 1),
            Err(Error::Address { .. })
        ));
        // An IDN host is resolved by its A-labels.
        let e = Endpoint::parse("Bücher.example:465", 587).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("xn--bcher-kva.example", 465));
        assert!(!Endpoint::parse("example.org", 1).unwrap().is_loopback());
    }
}
