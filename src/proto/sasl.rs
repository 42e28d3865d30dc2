//! SASL mechanisms and password digests shared by SMTP and POP3 (pure
//! functions, no I/O): PLAIN (RFC 4616), LOGIN, CRAM-MD5 (RFC 2195),
//! XOAUTH2, OAUTHBEARER (RFC 7628), EXTERNAL (RFC 4422 appendix A), the
//! POP3 APOP digest (RFC 1939 section 7), and the client side of SCRAM and
//! SCRAM-*-PLUS ([`scram`]).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};

pub mod scram;

/// The SASL mechanisms mailctl can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mechanism {
    /// `LOGIN`: user name and password in two base64 steps.
    Login,
    /// `PLAIN`: user name and password in one base64 response.
    Plain,
    /// `CRAM-MD5`: HMAC-MD5 of a server challenge; the password is not sent.
    CramMd5,
    /// `XOAUTH2`: an OAuth 2 bearer token.
    XOAuth2,
    /// `SCRAM-SHA-1` (RFC 5802): a salted challenge; the server proves it
    /// knows the password too.
    ScramSha1,
    /// `SCRAM-SHA-256` (RFC 7677).
    ScramSha256,
    /// `SCRAM-SHA-1-PLUS`: SCRAM-SHA-1 bound to the TLS channel
    /// (`tls-server-end-point`, RFC 5929).
    ScramSha1Plus,
    /// `SCRAM-SHA-256-PLUS`: SCRAM-SHA-256 bound to the TLS channel.
    ScramSha256Plus,
    /// `OAUTHBEARER` (RFC 7628): an OAuth 2 bearer token.
    OAuthBearer,
    /// `EXTERNAL` (RFC 4422 appendix A): the identity the TLS client
    /// certificate established; no password.
    External,
}

impl Mechanism {
    /// The name used on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Login => "LOGIN",
            Mechanism::Plain => "PLAIN",
            Mechanism::CramMd5 => "CRAM-MD5",
            Mechanism::XOAuth2 => "XOAUTH2",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha1Plus => "SCRAM-SHA-1-PLUS",
            Mechanism::ScramSha256Plus => "SCRAM-SHA-256-PLUS",
            Mechanism::OAuthBearer => "OAUTHBEARER",
            Mechanism::External => "EXTERNAL",
        }
    }

    /// Parses a wire name, case-insensitively.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "LOGIN" => Some(Mechanism::Login),
            "PLAIN" => Some(Mechanism::Plain),
            "CRAM-MD5" => Some(Mechanism::CramMd5),
            "XOAUTH2" => Some(Mechanism::XOAuth2),
            "SCRAM-SHA-1" => Some(Mechanism::ScramSha1),
            "SCRAM-SHA-256" => Some(Mechanism::ScramSha256),
            "SCRAM-SHA-1-PLUS" => Some(Mechanism::ScramSha1Plus),
            "SCRAM-SHA-256-PLUS" => Some(Mechanism::ScramSha256Plus),
            "OAUTHBEARER" => Some(Mechanism::OAuthBearer),
            "EXTERNAL" => Some(Mechanism::External),
            _ => None,
        }
    }

    /// The strongest password mechanism among `offered` for automatic
    /// choice: with a TLS channel to bind to (`can_bind`),
    /// SCRAM-SHA-256-PLUS, then SCRAM-SHA-1-PLUS; then SCRAM-SHA-256, then
    /// SCRAM-SHA-1 (password never sent, the server proves it knows it),
    /// CRAM-MD5 (password never sent), then PLAIN, then LOGIN. XOAUTH2 and
    /// OAUTHBEARER need a token, not a password, so they are never chosen
    /// for one.
    pub fn strongest_for_password(offered: &[Mechanism], can_bind: bool) -> Option<Mechanism> {
        STRENGTH_ORDER
            .into_iter()
            .filter(|m| can_bind || !m.binds_channel())
            .find(|m| offered.contains(m))
    }

    /// Whether the mechanism binds the TLS channel (SCRAM-*-PLUS).
    pub fn binds_channel(self) -> bool {
        matches!(self, Mechanism::ScramSha1Plus | Mechanism::ScramSha256Plus)
    }

    /// The mechanism among `offered` for an OAuth 2 access token:
    /// OAUTHBEARER (the standard one), then XOAUTH2.
    pub fn preferred_for_token(offered: &[Mechanism]) -> Option<Mechanism> {
        TOKEN_ORDER.into_iter().find(|m| offered.contains(m))
    }

    /// Whether the mechanism carries an OAuth 2 access token.
    pub fn takes_token(self) -> bool {
        TOKEN_ORDER.contains(&self)
    }

    /// Whether the mechanism needs a password or token (all but EXTERNAL).
    pub fn needs_secret(self) -> bool {
        self != Mechanism::External
    }

    /// The SCRAM hash of a SCRAM mechanism.
    pub fn scram_hash(self) -> Option<scram::Hash> {
        match self {
            Mechanism::ScramSha1 => Some(scram::Hash::Sha1),
            Mechanism::ScramSha256 | Mechanism::ScramSha256Plus => Some(scram::Hash::Sha256),
            Mechanism::ScramSha1Plus => Some(scram::Hash::Sha1),
            _ => None,
        }
    }
}

/// Password mechanisms, strongest first.
const STRENGTH_ORDER: [Mechanism; 7] = [
    Mechanism::ScramSha256Plus,
    Mechanism::ScramSha1Plus,
    Mechanism::ScramSha256,
    Mechanism::ScramSha1,
    Mechanism::CramMd5,
    Mechanism::Plain,
    Mechanism::Login,
];

/// Token mechanisms, preferred first.
const TOKEN_ORDER: [Mechanism; 2] = [Mechanism::OAuthBearer, Mechanism::XOAuth2];

/// An AUTH command with an initial response, as a transcript shows it.
pub fn shown_auth(mechanism: &str) -> String {
    format!("AUTH {mechanism} <redacted>")
}

/// The base64 PLAIN response: `authzid NUL user NUL password`, with an empty
/// authorisation identity.
pub fn plain_response(user: &str, password: &str) -> String {
    BASE64.encode(format!("\0{user}\0{password}"))
}

/// The base64 XOAUTH2 response for `user` and an access token.
pub fn xoauth2_response(user: &str, token: &str) -> String {
    BASE64.encode(format!("user={user}\x01auth=Bearer {token}\x01\x01"))
}

/// The base64 OAUTHBEARER initial response (RFC 7628 section 3.1): the
/// GS2 header naming `user` as the authorisation identity, then the
/// bearer token, each key-value pair ended by 0x01.
pub fn oauthbearer_response(user: &str, token: &str) -> String {
    let user = user.replace('=', "=3D").replace(',', "=2C");
    BASE64.encode(format!("n,a={user},\x01auth=Bearer {token}\x01\x01"))
}

/// The base64 initial response of a token mechanism (OAUTHBEARER, else
/// XOAUTH2).
pub fn token_response(mechanism: Mechanism, user: &str, token: &str) -> String {
    match mechanism {
        Mechanism::OAuthBearer => oauthbearer_response(user, token),
        _ => xoauth2_response(user, token),
    }
}

/// The answer to the error report a server sends as a challenge after a
/// refused token: an empty response for XOAUTH2, a single 0x01 for
/// OAUTHBEARER (RFC 7628 section 3.2.3). The server's failure follows.
pub fn token_error_answer(mechanism: Mechanism) -> &'static str {
    match mechanism {
        Mechanism::OAuthBearer => "AQ==",
        _ => "",
    }
}

/// The EXTERNAL initial response: `=`, an empty response (RFC 4954
/// section 4, RFC 5034 section 4), so the server derives the
/// authorisation identity from the client certificate.
pub const EXTERNAL_RESPONSE: &str = "=";

/// Base64 of one LOGIN step (the user name, then the password).
pub fn login_step(value: &str) -> String {
    BASE64.encode(value)
}

/// The CRAM-MD5 response to a base64 challenge: base64 of
/// `user SP hex(HMAC-MD5(password, challenge))`. `None` if the challenge is
/// not valid base64.
pub fn cram_md5_response(user: &str, password: &str, challenge_b64: &[u8]) -> Option<String> {
    let challenge = BASE64.decode(trim_ascii(challenge_b64)).ok()?;
    // HMAC accepts a key of any length.
    let mut mac = Hmac::<Md5>::new_from_slice(password.as_bytes()).ok()?;
    mac.update(&challenge);
    let mac = mac.finalize().into_bytes();
    Some(BASE64.encode(format!("{user} {}", hex(&mac))))
}

/// The APOP digest: lowercase hex MD5 of the greeting's timestamp followed
/// by the password.
pub fn apop_digest(timestamp: &[u8], password: &str) -> String {
    let digest = Md5::new()
        .chain_update(timestamp)
        .chain_update(password.as_bytes())
        .finalize();
    hex(&digest)
}

/// Whether an APOP timestamp is a well-formed ASCII msg-id `<left@right>`.
///
/// Anything else is refused: a server (or a man in the middle) choosing
/// arbitrary timestamps can recover the password byte by byte through MD5
/// collisions (CVE-2007-1558).
pub fn valid_apop_timestamp(timestamp: &[u8]) -> bool {
    let inner = match timestamp
        .strip_prefix(b"<")
        .and_then(|t| t.strip_suffix(b">"))
    {
        Some(inner) => inner,
        None => return false,
    };
    let at = match inner.iter().position(|&b| b == b'@') {
        Some(at) => at,
        None => return false,
    };
    let (left, right) = (&inner[..at], &inner[at + 1..]);
    let atom = |b: &u8| {
        b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'@' | b'"' | b'\\' | b'(' | b')')
    };
    !left.is_empty()
        && !right.is_empty()
        && left.iter().all(atom)
        && right.iter().all(|b| atom(b) || *b == b'[' || *b == b']')
}

/// Why a server refused a client's SASL response line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseError {
    /// The client sent `*` (RFC 4954 section 4, RFC 5034 section 4).
    Cancelled,
    /// Not base64.
    BadBase64,
}

/// Decodes a client's SASL response line, as a server: `*` cancels, `=`
/// is an empty response, anything else is base64 (surrounding white space
/// ignored).
pub fn decode_response(line: &[u8]) -> Result<Vec<u8>, ResponseError> {
    let line = trim_ascii(line);
    match line {
        b"*" => Err(ResponseError::Cancelled),
        b"=" => Ok(Vec::new()),
        _ => BASE64.decode(line).map_err(|_| ResponseError::BadBase64),
    }
}

/// The user name and password of a decoded PLAIN message
/// (`authzid NUL authcid NUL password`, RFC 4616), as a server reads it:
/// the authorisation identity must be empty or the user itself, and the
/// user name UTF-8. `None` for anything else.
pub fn plain_credentials(message: &[u8]) -> Option<(&str, &[u8])> {
    let mut parts = message.split(|&b| b == 0);
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(authzid), Some(user), Some(password), None)
            if authzid.is_empty() || authzid == user =>
        {
            Some((std::str::from_utf8(user).ok()?, password))
        }
        _ => None,
    }
}

/// The base64 LOGIN challenges a server sends: `Username:` then
/// `Password:`.
pub const LOGIN_CHALLENGES: [&str; 2] = ["VXNlcm5hbWU6", "UGFzc3dvcmQ6"];

/// Whether an APOP digest (hex, either case) is the one for `timestamp`
/// and `password`, compared without an early exit.
pub fn apop_matches(timestamp: &[u8], password: &str, digest: &str) -> bool {
    let expected = apop_digest(timestamp, password);
    let given = digest.to_ascii_lowercase();
    crate::proto::users::constant_time_eq(expected.as_bytes(), given.as_bytes())
}

/// Lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_xoauth2() {
        assert_eq!(
            plain_response("tim", "tanstaaftanstaaf"),
            "AHRpbQB0YW5zdGFhZnRhbnN0YWFm"
        );
        assert_eq!(
            BASE64.decode(xoauth2_response("a@b", "tok")).unwrap(),
            b"user=a@b\x01auth=Bearer tok\x01\x01"
        );
        assert_eq!(login_step("user"), "dXNlcg==");
    }

    #[test]
    fn oauthbearer_rfc7628_shape() {
        assert_eq!(
            BASE64
                .decode(oauthbearer_response("user@example.com", "vF9dft4qmT"))
                .unwrap(),
            b"n,a=user@example.com,\x01auth=Bearer vF9dft4qmT\x01\x01"
        );
        assert_eq!(
            BASE64.decode(oauthbearer_response("a,b=c", "t")).unwrap(),
            b"n,a=a=2Cb=3Dc,\x01auth=Bearer t\x01\x01"
        );
        assert_eq!(
            token_response(Mechanism::XOAuth2, "u", "t"),
            xoauth2_response("u", "t")
        );
        assert_eq!(
            BASE64
                .decode(token_error_answer(Mechanism::OAuthBearer))
                .unwrap(),
            [1]
        );
        assert_eq!(token_error_answer(Mechanism::XOAuth2), "");
    }

    #[test]
    fn cram_md5_rfc2195_example() {
        let challenge = BASE64.encode("<1896.697170952@postoffice.reston.mci.net>");
        let response = cram_md5_response("tim", "tanstaaftanstaaf", challenge.as_bytes()).unwrap();
        assert_eq!(
            BASE64.decode(response).unwrap(),
            b"tim b913a602c7eda7a495b4e6e7334d3890"
        );
        assert!(cram_md5_response("tim", "x", b"!!!").is_none());
    }

    #[test]
    fn apop_rfc1939_example() {
        assert_eq!(
            apop_digest(b"<1896.697170952@dbc.mtview.ca.us>", "tanstaaf"),
            "c4c9334bac560ecc979e58001b3e22fb"
        );
    }

    #[test]
    fn apop_timestamp_must_be_msg_id() {
        assert!(valid_apop_timestamp(b"<1896.697170952@dbc.mtview.ca.us>"));
        assert!(!valid_apop_timestamp(b"<1896.697170952>"));
        assert!(!valid_apop_timestamp(b"<a@b\x80>"));
        assert!(!valid_apop_timestamp(b"<a b@c>"));
        assert!(!valid_apop_timestamp(b"a@b"));
        assert!(!valid_apop_timestamp(b"<@b>"));
    }

    #[test]
    fn auto_choice() {
        use Mechanism::*;
        assert_eq!(
            Mechanism::strongest_for_password(&[Login, Plain], true),
            Some(Plain)
        );
        assert_eq!(
            Mechanism::strongest_for_password(&[Login, CramMd5, Plain], true),
            Some(CramMd5)
        );
        assert_eq!(Mechanism::strongest_for_password(&[XOAuth2], true), None);
        assert_eq!(
            Mechanism::strongest_for_password(&[OAuthBearer], true),
            None
        );
        assert_eq!(
            Mechanism::preferred_for_token(&[Plain, XOAuth2, OAuthBearer]),
            Some(OAuthBearer)
        );
        assert_eq!(
            Mechanism::preferred_for_token(&[Plain, XOAuth2]),
            Some(XOAuth2)
        );
        assert_eq!(Mechanism::preferred_for_token(&[Plain]), None);
        assert_eq!(Mechanism::from_name("oauthbearer"), Some(OAuthBearer));
        assert_eq!(Mechanism::from_name("cram-md5"), Some(CramMd5));
    }

    #[test]
    fn server_side_responses() {
        assert_eq!(decode_response(b" * \r\n"), Err(ResponseError::Cancelled));
        assert_eq!(decode_response(b"="), Ok(Vec::new()));
        assert_eq!(decode_response(b"!!"), Err(ResponseError::BadBase64));
        let plain = decode_response(plain_response("tim", "pw").as_bytes()).unwrap();
        assert_eq!(plain_credentials(&plain), Some(("tim", &b"pw"[..])));
        assert_eq!(
            plain_credentials(b"tim\0tim\0pw"),
            Some(("tim", &b"pw"[..]))
        );
        assert_eq!(plain_credentials(b"bob\0tim\0pw"), None);
        assert_eq!(plain_credentials(b"\0tim\0pw\0x"), None);
        assert_eq!(plain_credentials(b"\0\xff\0pw"), None);
        assert_eq!(
            LOGIN_CHALLENGES.map(|c| BASE64.decode(c).unwrap()),
            [b"Username:".to_vec(), b"Password:".to_vec()]
        );
        let ts = b"<1896.697170952@dbc.mtview.ca.us>";
        assert!(apop_matches(
            ts,
            "tanstaaf",
            "C4C9334BAC560ECC979E58001B3E22FB"
        ));
        assert!(!apop_matches(
            ts,
            "tanstaaf",
            "c4c9334bac560ecc979e58001b3e22fa"
        ));
        assert!(!apop_matches(ts, "tanstaaf", "c4c9"));
    }
}
