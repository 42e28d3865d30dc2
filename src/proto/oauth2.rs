//! The OAuth 2 messages a mail client exchanges with a token server, as
//! pure functions (no I/O): the form bodies of the refresh-token grant (RFC
//! 6749 section 6), the device grant (RFC 8628) and the code grant with
//! PKCE (RFC 7636), the authorization URL, the loopback redirect (RFC 8252
//! section 7.3), and the JSON answers.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::secret::Secret;

/// The device grant's `grant_type` (RFC 8628 section 3.4).
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Seconds a token is taken as expired before the provider says, so that
/// it does not expire in the middle of a session.
pub const EXPIRY_MARGIN_SECS: u64 = 120;

/// Lifetime assumed when the provider does not say (`expires_in`).
pub const DEFAULT_LIFETIME_SECS: u64 = 3600;

/// What a token endpoint granted.
#[derive(Clone, Debug)]
pub struct Grant {
    /// The access token.
    pub access_token: Secret,
    /// A new refresh token, when the provider issues or rotates one.
    pub refresh_token: Option<Secret>,
    /// Seconds the access token is valid for.
    pub expires_in: u64,
}

/// An error answer of a token endpoint (RFC 6749 section 5.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// `invalid_grant`, `authorization_pending`, ...
    pub error: String,
    /// The provider's explanation, if any.
    pub description: Option<String>,
}

/// Why a token endpoint's answer could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnswerError {
    /// An error answer.
    Refused(Refusal),
    /// Not the JSON of RFC 6749 section 5.1.
    Malformed(String),
}

/// The JSON of a token answer, success or error.
#[derive(Deserialize)]
struct TokenJson {
    access_token: Option<String>,
    token_type: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<serde_json::Value>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Reads a token endpoint's answer (RFC 6749 sections 5.1 and 5.2).
pub fn parse_grant(body: &[u8]) -> Result<Grant, AnswerError> {
    let json: TokenJson = serde_json::from_slice(body)
        .map_err(|e| AnswerError::Malformed(format!("not a token answer: {e}")))?;
    if let Some(error) = json.error {
        return Err(AnswerError::Refused(Refusal {
            error,
            description: json.error_description,
        }));
    }
    let Some(access_token) = json.access_token.filter(|t| usable_token(t)) else {
        return Err(AnswerError::Malformed(
            "no usable access_token in the answer".into(),
        ));
    };
    if let Some(kind) = json.token_type {
        if !kind.eq_ignore_ascii_case("bearer") {
            return Err(AnswerError::Malformed(format!(
                "token_type {} is not Bearer",
                crate::text::printable(kind.as_bytes())
            )));
        }
    }
    Ok(Grant {
        access_token: Secret::new(access_token),
        refresh_token: json
            .refresh_token
            .filter(|t| usable_token(t))
            .map(Secret::new),
        expires_in: seconds(json.expires_in.as_ref()).unwrap_or(DEFAULT_LIFETIME_SECS),
    })
}

/// A number of seconds, as a JSON number or a string of digits (some
/// providers send the latter).
fn seconds(value: Option<&serde_json::Value>) -> Option<u64> {
    match value? {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A token that can go into a SASL message and a file line: printable
/// ASCII, no space.
fn usable_token(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic())
}

/// The device authorization answer (RFC 8628 section 3.2).
#[derive(Clone, Debug)]
pub struct DeviceCode {
    /// The code the client polls with.
    pub device_code: Secret,
    /// The code the person types.
    pub user_code: String,
    /// Where the person goes.
    pub verification_uri: String,
    /// The same with the code filled in, if the provider gives it.
    pub verification_uri_complete: Option<String>,
    /// Seconds between polls.
    pub interval: u64,
    /// Seconds the codes are valid for.
    pub expires_in: u64,
}

/// The JSON of a device authorization answer.
#[derive(Deserialize)]
struct DeviceJson {
    device_code: Option<String>,
    user_code: Option<String>,
    verification_uri: Option<String>,
    // Microsoft's v1 endpoint spells it so.
    verification_url: Option<String>,
    verification_uri_complete: Option<String>,
    interval: Option<serde_json::Value>,
    expires_in: Option<serde_json::Value>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Reads a device authorization answer.
pub fn parse_device_code(body: &[u8]) -> Result<DeviceCode, AnswerError> {
    let json: DeviceJson = serde_json::from_slice(body)
        .map_err(|e| AnswerError::Malformed(format!("not a device authorization answer: {e}")))?;
    if let Some(error) = json.error {
        return Err(AnswerError::Refused(Refusal {
            error,
            description: json.error_description,
        }));
    }
    let printable = |s: &String| s.chars().all(|c| !c.is_control());
    match (
        json.device_code.filter(|c| usable_token(c)),
        json.user_code.filter(printable),
        json.verification_uri
            .or(json.verification_url)
            .filter(printable),
    ) {
        (Some(device_code), Some(user_code), Some(verification_uri)) => Ok(DeviceCode {
            device_code: Secret::new(device_code),
            user_code,
            verification_uri,
            verification_uri_complete: json.verification_uri_complete.filter(printable),
            interval: seconds(json.interval.as_ref()).unwrap_or(5).clamp(1, 60),
            expires_in: seconds(json.expires_in.as_ref()).unwrap_or(900).min(3600),
        }),
        _ => Err(AnswerError::Malformed(
            "the device authorization answer lacks device_code, user_code or verification_uri"
                .into(),
        )),
    }
}

/// `application/x-www-form-urlencoded` of `pairs`.
pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        out.append_pair(key, value);
    }
    out.finish()
}

/// The PKCE code challenge of a verifier (RFC 7636 section 4.2, S256).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A PKCE verifier or `state` value from random bytes: base64url, 43
/// characters for 32 bytes (RFC 7636 section 4.1).
pub fn random_code(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the authorization URL carries.
pub struct AuthorizationRequest<'a> {
    /// The authorization endpoint.
    pub auth_url: &'a str,
    /// The client id.
    pub client_id: &'a str,
    /// The loopback redirect URI.
    pub redirect_uri: &'a str,
    /// The scopes.
    pub scopes: &'a [String],
    /// The anti-forgery `state`.
    pub state: &'a str,
    /// The PKCE challenge.
    pub challenge: &'a str,
}

/// The URL the person opens for the code grant (RFC 6749 section 4.1.1
/// with RFC 7636's challenge). Google needs `access_type=offline` and
/// `prompt=consent` to issue a refresh token; others ignore them.
pub fn authorization_url(request: &AuthorizationRequest<'_>) -> String {
    let scope = request.scopes.join(" ");
    let query = form(&[
        ("response_type", "code"),
        ("client_id", request.client_id),
        ("redirect_uri", request.redirect_uri),
        ("scope", &scope),
        ("state", request.state),
        ("code_challenge", request.challenge),
        ("code_challenge_method", "S256"),
        ("access_type", "offline"),
        ("prompt", "consent"),
    ]);
    let separator = if request.auth_url.contains('?') {
        '&'
    } else {
        '?'
    };
    format!("{}{separator}{query}", request.auth_url)
}

/// Why a redirect to the loopback listener gave no code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedirectError {
    /// Not `GET /path?query HTTP/1.x`.
    NotARedirect,
    /// The `state` is missing or not ours: a forged redirect.
    WrongState,
    /// The provider reported an error (`error=access_denied`, ...).
    Denied(String),
    /// No `code` parameter.
    NoCode,
}

/// The authorization code in the request line of the browser's redirect
/// (`GET /?code=...&state=... HTTP/1.1`), once its `state` matches.
pub fn redirect_code(request_line: &str, state: &str) -> Result<Secret, RedirectError> {
    let mut words = request_line.split(' ');
    let target = match (words.next(), words.next(), words.next()) {
        (Some("GET"), Some(target), Some(version)) if version.starts_with("HTTP/1.") => target,
        _ => return Err(RedirectError::NotARedirect),
    };
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let (mut code, mut got_state, mut error) = (None, None, None);
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "code" => code = Some(value.into_owned()),
            "state" => got_state = Some(value.into_owned()),
            "error" => error = Some(value.into_owned()),
            _ => {}
        }
    }
    if got_state.as_deref() != Some(state) {
        return Err(RedirectError::WrongState);
    }
    if let Some(error) = error {
        return Err(RedirectError::Denied(crate::text::printable(
            error.as_bytes(),
        )));
    }
    code.filter(|c| usable_token(c))
        .map(Secret::new)
        .ok_or(RedirectError::NoCode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_answers() {
        let grant = parse_grant(
            br#"{"access_token":"a.b.c","token_type":"Bearer","expires_in":3599,"refresh_token":"r2"}"#,
        )
        .unwrap();
        assert_eq!(grant.access_token.expose(), "a.b.c");
        assert_eq!(grant.refresh_token.unwrap().expose(), "r2");
        assert_eq!(grant.expires_in, 3599);
        let grant = parse_grant(br#"{"access_token":"t","expires_in":"60"}"#).unwrap();
        assert!(grant.refresh_token.is_none());
        assert_eq!(grant.expires_in, 60);
        assert_eq!(
            parse_grant(br#"{"error":"invalid_grant","error_description":"revoked"}"#).unwrap_err(),
            AnswerError::Refused(Refusal {
                error: "invalid_grant".into(),
                description: Some("revoked".into())
            })
        );
        for bad in [
            &br#"{"access_token":"a b"}"#[..],
            br#"{"access_token":"t","token_type":"mac"}"#,
            br#"{}"#,
            b"<html>",
        ] {
            assert!(matches!(parse_grant(bad), Err(AnswerError::Malformed(_))));
        }
    }

    #[test]
    fn device_answers() {
        let code = parse_device_code(
            br#"{"device_code":"GmRh","user_code":"WDJB-MJHT","verification_uri":"https://example.com/device","interval":5,"expires_in":1800}"#,
        )
        .unwrap();
        assert_eq!(code.user_code, "WDJB-MJHT");
        assert_eq!((code.interval, code.expires_in), (5, 1800));
        assert!(matches!(
            parse_device_code(br#"{"device_code":"x"}"#),
            Err(AnswerError::Malformed(_))
        ));
    }

    #[test]
    fn pkce_rfc7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(random_code(&[0xfb; 32]).len(), 43);
    }

    #[test]
    fn authorization_url_and_redirect() {
        let scopes = ["https://mail.google.com/".to_string()];
        let url = authorization_url(&AuthorizationRequest {
            auth_url: "https://auth.example/authorize",
            client_id: "id 1",
            redirect_uri: "http://127.0.0.1:5000/",
            scopes: &scopes,
            state: "s1",
            challenge: "c1",
        });
        assert!(url.starts_with("https://auth.example/authorize?response_type=code&client_id=id+1&redirect_uri=http%3A%2F%2F127.0.0.1%3A5000%2F&scope=https%3A%2F%2Fmail.google.com%2F&state=s1&code_challenge=c1&code_challenge_method=S256"), "{url}");
        assert_eq!(
            redirect_code("GET /?state=s1&code=4%2F0A HTTP/1.1", "s1")
                .unwrap()
                .expose(),
            "4/0A"
        );
        assert_eq!(
            redirect_code("GET /?state=s2&code=x HTTP/1.1", "s1").unwrap_err(),
            RedirectError::WrongState
        );
        assert_eq!(
            redirect_code("GET /?code=x HTTP/1.1", "s1").unwrap_err(),
            RedirectError::WrongState
        );
        assert_eq!(
            redirect_code("GET /?state=s1&error=access_denied HTTP/1.1", "s1").unwrap_err(),
            RedirectError::Denied("access_denied".into())
        );
        assert_eq!(
            redirect_code("GET /favicon.ico HTTP/1.1", "s1").unwrap_err(),
            RedirectError::WrongState
        );
        assert_eq!(
            redirect_code("POST / HTTP/1.1", "s1").unwrap_err(),
            RedirectError::NotARedirect
        );
    }
}
