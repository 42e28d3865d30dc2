//! The CAPA response (RFC 2449 section 6): what the server supports.

/// Capabilities announced by the server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `STLS` (RFC 2595): the session can be upgraded to TLS.
    pub stls: bool,
    /// `USER`: USER/PASS login is available.
    pub user: bool,
    /// `TOP`.
    pub top: bool,
    /// `UIDL`.
    pub uidl: bool,
    /// `PIPELINING` (RFC 2449 section 6.6): commands may be sent ahead.
    pub pipelining: bool,
    /// `RESP-CODES`: `-ERR` texts carry `[CODE]`s.
    pub resp_codes: bool,
    /// `AUTH-RESP-CODE` (RFC 3206).
    pub auth_resp_code: bool,
    /// `SASL` mechanisms, upper-cased.
    pub sasl: Vec<String>,
    /// `IMPLEMENTATION` text, if any.
    pub implementation: Option<String>,
}

impl Capabilities {
    /// Adds one line of the CAPA listing (line ending optional). Unknown
    /// capabilities are ignored.
    pub fn add_line(&mut self, line: &[u8]) {
        let line = super::response::strip_eol(line);
        let text = String::from_utf8_lossy(line);
        let mut words = text.split_ascii_whitespace();
        let Some(name) = words.next() else { return };
        match name.to_ascii_uppercase().as_str() {
            "STLS" => self.stls = true,
            "USER" => self.user = true,
            "TOP" => self.top = true,
            "UIDL" => self.uidl = true,
            "PIPELINING" => self.pipelining = true,
            "RESP-CODES" => self.resp_codes = true,
            "AUTH-RESP-CODE" => self.auth_resp_code = true,
            "SASL" => {
                for mech in words {
                    if self.sasl.len() < 32 {
                        self.sasl.push(mech.to_ascii_uppercase());
                    }
                }
            }
            "IMPLEMENTATION" => {
                let rest: Vec<&str> = words.collect();
                self.implementation = Some(rest.join(" "));
            }
            _ => {}
        }
    }

    /// Whether a SASL mechanism is offered.
    pub fn has_sasl(&self, mechanism: &str) -> bool {
        self.sasl.iter().any(|m| m.eq_ignore_ascii_case(mechanism))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_capa_lines() {
        let mut caps = Capabilities::default();
        let capa = b"TOP\r\nuser\r\nSASL PLAIN xoauth2\r\nRESP-CODES\r\nPIPELINING\r\nUIDL\r\n\
                     STLS\r\nEXPIRE NEVER\r\nIMPLEMENTATION Dovecot\r\n\r\n";
        for line in capa.split_inclusive(|&b| b == b'\n') {
            caps.add_line(line);
        }
        assert!(caps.top && caps.user && caps.uidl && caps.stls && caps.pipelining);
        assert!(caps.resp_codes && !caps.auth_resp_code);
        assert_eq!(caps.sasl, ["PLAIN", "XOAUTH2"]);
        assert!(caps.has_sasl("xoauth2"));
        assert_eq!(caps.implementation.as_deref(), Some("Dovecot"));
    }
}
