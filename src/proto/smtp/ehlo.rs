//! The service extensions a server lists in its EHLO reply
//! (RFC 5321 section 4.1.1.1).

use crate::proto::sasl::Mechanism;

use super::reply::Reply;

/// The most AUTH mechanism names remembered (real servers list a handful).
pub const MAX_AUTH_NAMES: usize = 32;

/// What the server offers, from its EHLO reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// STARTTLS (RFC 3207).
    pub starttls: bool,
    /// AUTH mechanisms mailctl knows, in the server's order (RFC 4954).
    pub auth: Vec<Mechanism>,
    /// Every AUTH mechanism name listed, known or not (for messages).
    pub auth_names: Vec<String>,
    /// SIZE (RFC 1870): `Some(0)` means no fixed limit.
    pub size: Option<u64>,
    /// PIPELINING (RFC 2920).
    pub pipelining: bool,
    /// 8BITMIME (RFC 6152).
    pub eight_bit_mime: bool,
    /// SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
    /// ENHANCEDSTATUSCODES (RFC 2034).
    pub enhanced_status_codes: bool,
    /// DSN (RFC 3461).
    pub dsn: bool,
}

impl Capabilities {
    /// Reads the keywords of an EHLO reply; the first line is the server's
    /// name and greeting and is skipped. Unknown keywords are ignored.
    pub fn from_ehlo(reply: &Reply) -> Self {
        let mut caps = Capabilities::default();
        for line in reply.lines.iter().skip(1) {
            let line = String::from_utf8_lossy(line);
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            let keyword = keyword.to_ascii_uppercase();
            // Some old servers write "AUTH=LOGIN PLAIN".
            let (keyword, first_param) = match keyword.split_once('=') {
                Some((k, p)) => (k.to_string(), Some(p.to_string())),
                None => (keyword, None),
            };
            let params: Vec<String> = first_param
                .into_iter()
                .filter(|p| !p.is_empty())
                .chain(words.map(str::to_string))
                .collect();
            match keyword.as_str() {
                "STARTTLS" => caps.starttls = true,
                "PIPELINING" => caps.pipelining = true,
                "8BITMIME" => caps.eight_bit_mime = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "ENHANCEDSTATUSCODES" => caps.enhanced_status_codes = true,
                "DSN" => caps.dsn = true,
                "SIZE" => {
                    caps.size = Some(
                        params
                            .first()
                            .and_then(|p| p.parse::<u64>().ok())
                            .unwrap_or(0),
                    )
                }
                "AUTH" => {
                    for name in params {
                        let upper = name.to_ascii_uppercase();
                        // Bounded: a hostile list of millions of names must
                        // cost neither quadratic time nor a huge message.
                        if caps.auth_names.len() < MAX_AUTH_NAMES
                            && !caps.auth_names.contains(&upper)
                        {
                            caps.auth_names.push(upper);
                        }
                        if let Some(m) = Mechanism::from_name(&name) {
                            if !caps.auth.contains(&m) {
                                caps.auth.push(m);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        caps
    }

    /// The SIZE limit, if the server states one.
    pub fn size_limit(&self) -> Option<u64> {
        self.size.filter(|&n| n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::smtp::reply::ReplyReader;

    fn caps(bytes: &[u8]) -> Capabilities {
        let mut reader = ReplyReader::new();
        reader.feed(bytes).unwrap();
        Capabilities::from_ehlo(&reader.next_reply().unwrap())
    }

    #[test]
    fn postfix_style() {
        let c = caps(
            b"250-mail.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n\
              250-ETRN\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN\r\n\
              250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250 SMTPUTF8\r\n",
        );
        assert!(c.pipelining && c.starttls && c.eight_bit_mime && c.smtputf8);
        assert!(c.enhanced_status_codes);
        assert_eq!(c.size_limit(), Some(10_240_000));
        assert_eq!(c.auth, vec![Mechanism::Plain, Mechanism::Login]);
    }

    /// A thousand lines of made-up mechanism names: parsed quickly, the
    /// list stays short, real mechanisms after them are still found.
    #[test]
    fn endless_auth_list_is_bounded() {
        let mut ehlo = b"250-mx\r\n".to_vec();
        for line in 0..998 {
            ehlo.extend_from_slice(b"250-AUTH");
            for i in 0..3000 {
                ehlo.extend_from_slice(format!(" X{line}-{i}").as_bytes());
            }
            ehlo.extend_from_slice(b"\r\n");
        }
        ehlo.extend_from_slice(b"250 AUTH PLAIN\r\n");
        let c = caps(&ehlo);
        assert_eq!(c.auth_names.len(), MAX_AUTH_NAMES);
        assert_eq!(c.auth, vec![Mechanism::Plain]);
    }

    #[test]
    fn minimal_and_odd() {
        let c = caps(b"250 only.name\r\n");
        assert_eq!(c, Capabilities::default());
        let c = caps(b"250-x\r\n250-size\r\n250-auth cram-md5 xoauth2 GSSAPI\r\n250 starttls\r\n");
        assert_eq!(c.size, Some(0));
        assert_eq!(c.size_limit(), None);
        assert!(c.starttls);
        assert_eq!(c.auth, vec![Mechanism::CramMd5, Mechanism::XOAuth2]);
        assert_eq!(c.auth_names, vec!["CRAM-MD5", "XOAUTH2", "GSSAPI"]);
    }
}
