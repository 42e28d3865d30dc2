//! The HTTPS side of OAuth 2: requests to a token server (through `ureq`
//! with native-tls, so OpenSSL as for mail, and the account's CA file
//! instead of the system's when it names one) and the loopback listener
//! that receives the browser's redirect in the code grant (RFC 8252).
//! What the messages say is [`crate::proto::oauth2`]'s business.

use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ureq::tls::{PemItem, RootCerts, TlsConfig, TlsProvider};

use crate::proto::oauth2::{self as messages, AnswerError, DeviceCode, Grant, RedirectError};
use crate::secret::Secret;

/// The largest answer read from a token server.
const MAX_ANSWER: u64 = 64 * 1024;

/// The longest request line read from the browser.
const MAX_REQUEST_LINE: u64 = 8 * 1024;

/// How many stray requests (a favicon, a forged redirect) the loopback
/// listener answers before it gives up.
const MAX_STRAY_REQUESTS: u32 = 20;

/// What went wrong talking to a token server.
#[derive(Debug)]
pub enum Error {
    /// The CA file could not be read or holds no certificate.
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// No answer: connection, TLS or time-out.
    Transport {
        /// The endpoint.
        url: String,
        /// What ureq said.
        reason: String,
    },
    /// The server refused (an RFC 6749 error answer).
    Refused {
        /// The endpoint.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The OAuth error.
        refusal: messages::Refusal,
    },
    /// The answer was not what RFC 6749 says.
    Malformed {
        /// The endpoint.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What is wrong.
        reason: String,
    },
    /// The loopback redirect failed.
    Redirect(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |s: &str| crate::text::printable(s.as_bytes());
        match self {
            Error::CaFile { path, reason } => write!(f, "{}: {reason}", path.display()),
            Error::Transport { url, reason } => write!(f, "{}: {}", shown(url), shown(reason)),
            Error::Refused {
                url,
                status,
                refusal,
            } => {
                write!(
                    f,
                    "{} refused ({status}): {}",
                    shown(url),
                    shown(&refusal.error)
                )?;
                match &refusal.description {
                    Some(d) => write!(f, ": {}", shown(d)),
                    None => Ok(()),
                }
            }
            Error::Malformed {
                url,
                status,
                reason,
            } => write!(f, "{} answered {status}: {}", shown(url), shown(reason)),
            Error::Redirect(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// The OAuth error code of a refusal (`invalid_grant`, ...).
    pub fn oauth_error(&self) -> Option<&str> {
        match self {
            Error::Refused { refusal, .. } => Some(&refusal.error),
            _ => None,
        }
    }
}

/// A client of one token server.
pub struct TokenClient {
    agent: ureq::Agent,
    token_url: String,
    client_id: String,
    client_secret: Option<Secret>,
}

/// The outcome of one device-grant poll (RFC 8628 section 3.5).
#[derive(Debug)]
pub enum Poll {
    /// The person has not finished yet; ask again after the interval.
    Pending,
    /// Ask less often: the interval grows by 5 seconds.
    SlowDown,
    /// The tokens.
    Granted(Grant),
}

impl TokenClient {
    /// A client for `token_url` trusting `ca_file` (instead of the system's
    /// roots) when given, each request limited to `timeout`.
    pub fn new(
        token_url: &str,
        client_id: &str,
        client_secret: Option<Secret>,
        ca_file: Option<&Path>,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let roots = match ca_file {
            Some(path) => RootCerts::new_with_certs(&read_ca_file(path)?),
            None => RootCerts::PlatformVerifier,
        };
        let tls = TlsConfig::builder()
            .provider(TlsProvider::NativeTls)
            .root_certs(roots)
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(timeout))
            .build()
            .new_agent();
        Ok(TokenClient {
            agent,
            token_url: token_url.to_string(),
            client_id: client_id.to_string(),
            client_secret,
        })
    }

    /// The refresh-token grant (RFC 6749 section 6).
    pub fn refresh(&self, refresh_token: &Secret) -> Result<Grant, Error> {
        self.grant(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
        ])
    }

    /// The code grant's exchange (RFC 6749 section 4.1.3, RFC 7636 section
    /// 4.5).
    pub fn exchange_code(
        &self,
        code: &Secret,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<Grant, Error> {
        self.grant(&[
            ("grant_type", "authorization_code"),
            ("code", code.expose()),
            ("code_verifier", verifier),
            ("redirect_uri", redirect_uri),
        ])
    }

    /// Starts the device grant (RFC 8628 section 3.1).
    pub fn device_code(&self, device_url: &str, scopes: &[String]) -> Result<DeviceCode, Error> {
        let scope = scopes.join(" ");
        let (status, body) = self.post(device_url, &[("scope", &scope)])?;
        messages::parse_device_code(&body).map_err(|e| answer_error(device_url, status, e))
    }

    /// One poll of the device grant (RFC 8628 section 3.4).
    pub fn poll_device(&self, device_code: &Secret) -> Result<Poll, Error> {
        match self.grant(&[
            ("grant_type", messages::DEVICE_GRANT),
            ("device_code", device_code.expose()),
        ]) {
            Ok(grant) => Ok(Poll::Granted(grant)),
            Err(e) if e.oauth_error() == Some("authorization_pending") => Ok(Poll::Pending),
            Err(e) if e.oauth_error() == Some("slow_down") => Ok(Poll::SlowDown),
            Err(e) => Err(e),
        }
    }

    /// A request to the token endpoint, read as a grant.
    fn grant(&self, pairs: &[(&str, &str)]) -> Result<Grant, Error> {
        let (status, body) = self.post(&self.token_url, pairs)?;
        messages::parse_grant(&body).map_err(|e| answer_error(&self.token_url, status, e))
    }

    /// POSTs a form with the client's id (and secret) added; returns the
    /// status and at most [`MAX_ANSWER`] bytes of the body.
    fn post(&self, url: &str, pairs: &[(&str, &str)]) -> Result<(u16, Vec<u8>), Error> {
        let mut form: Vec<(&str, &str)> = vec![("client_id", &self.client_id)];
        if let Some(secret) = &self.client_secret {
            form.push(("client_secret", secret.expose()));
        }
        form.extend_from_slice(pairs);
        let transport = |e: ureq::Error| Error::Transport {
            url: url.to_string(),
            reason: e.to_string(),
        };
        let mut response = self
            .agent
            .post(url)
            .header("Accept", "application/json")
            .send_form(form)
            .map_err(transport)?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        response
            .body_mut()
            .as_reader()
            .take(MAX_ANSWER)
            .read_to_end(&mut body)
            .map_err(|e| Error::Transport {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        Ok((status, body))
    }
}

/// A token answer that is an error or unreadable.
fn answer_error(url: &str, status: u16, error: AnswerError) -> Error {
    match error {
        AnswerError::Refused(refusal) => Error::Refused {
            url: url.to_string(),
            status,
            refusal,
        },
        AnswerError::Malformed(reason) => Error::Malformed {
            url: url.to_string(),
            status,
            reason,
        },
    }
}

/// The certificates of a PEM file.
fn read_ca_file(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, Error> {
    let failed = |reason: String| Error::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let PemItem::Certificate(cert) = item.map_err(|e| failed(e.to_string()))? {
            certs.push(cert);
        }
    }
    if certs.is_empty() {
        return Err(failed("no certificate in the file".into()));
    }
    Ok(certs)
}

/// The listener on 127.0.0.1 that receives the browser's redirect.
pub struct Loopback {
    listener: TcpListener,
    /// `http://127.0.0.1:PORT/`, the redirect URI to register.
    pub redirect_uri: String,
}

impl Loopback {
    /// Listens on a free port of 127.0.0.1 (RFC 8252 section 7.3).
    pub fn bind() -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let port = listener.local_addr()?.port();
        Ok(Loopback {
            listener,
            redirect_uri: format!("http://127.0.0.1:{port}/"),
        })
    }

    /// Waits up to `timeout` for the redirect carrying `state` and returns
    /// its code. Requests without our `state` get a 400 and are ignored.
    pub fn wait_for_code(&self, state: &str, timeout: Duration) -> Result<Secret, Error> {
        let deadline = Instant::now() + timeout;
        let failed = |e: std::io::Error| Error::Redirect(format!("loopback listener: {e}"));
        self.listener.set_nonblocking(true).map_err(failed)?;
        let mut strays = 0;
        while strays < MAX_STRAY_REQUESTS {
            let (mut stream, _) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Err(Error::Redirect(
                            "no redirect from the browser in time".into(),
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                Err(e) => return Err(failed(e)),
            };
            stream.set_nonblocking(false).map_err(failed)?;
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .map_err(failed)?;
            let mut line = String::new();
            let read = BufReader::new(&mut stream)
                .take(MAX_REQUEST_LINE)
                .read_line(&mut line);
            let outcome = match read {
                Ok(_) => messages::redirect_code(line.trim_end(), state),
                Err(_) => Err(RedirectError::NotARedirect),
            };
            let (status, text) = match &outcome {
                Ok(_) => (
                    "200 OK",
                    "mailctl has the authorization; you can close this page.",
                ),
                Err(RedirectError::Denied(_)) => {
                    ("403 Forbidden", "The authorization was refused.")
                }
                Err(_) => ("400 Bad Request", "Not the redirect mailctl waits for."),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{text}\n",
                text.len() + 1
            );
            match outcome {
                Ok(code) => return Ok(code),
                Err(RedirectError::Denied(why)) => {
                    return Err(Error::Redirect(format!(
                        "the authorization was refused: {why}"
                    )))
                }
                Err(_) => strays += 1,
            }
        }
        Err(Error::Redirect(
            "too many requests to the loopback listener without the expected state".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    /// Sends one request line to the listener and returns its answer.
    fn browse(port: u16, line: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(stream, "{line}\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    }

    #[test]
    fn loopback_takes_the_redirect_with_our_state_only() {
        let loopback = Loopback::bind().unwrap();
        let port = loopback.listener.local_addr().unwrap().port();
        assert_eq!(loopback.redirect_uri, format!("http://127.0.0.1:{port}/"));
        let browser = std::thread::spawn(move || {
            let stray = browse(port, "GET /favicon.ico HTTP/1.1");
            let forged = browse(port, "GET /?state=theirs&code=evil HTTP/1.1");
            let good = browse(port, "GET /?state=ours&code=c0de HTTP/1.1");
            (stray, forged, good)
        });
        let code = loopback
            .wait_for_code("ours", Duration::from_secs(30))
            .unwrap();
        assert_eq!(code.expose(), "c0de");
        let (stray, forged, good) = browser.join().unwrap();
        assert!(stray.starts_with("HTTP/1.1 400"), "{stray}");
        assert!(forged.starts_with("HTTP/1.1 400"), "{forged}");
        assert!(good.starts_with("HTTP/1.1 200"), "{good}");
    }

    #[test]
    fn loopback_reports_a_refusal_and_gives_up_in_time() {
        let loopback = Loopback::bind().unwrap();
        let port = loopback.listener.local_addr().unwrap().port();
        let browser =
            std::thread::spawn(move || browse(port, "GET /?state=s&error=access_denied HTTP/1.1"));
        let err = loopback
            .wait_for_code("s", Duration::from_secs(30))
            .unwrap_err();
        assert!(err.to_string().contains("access_denied"), "{err}");
        assert!(browser.join().unwrap().starts_with("HTTP/1.1 403"));
        let err = Loopback::bind()
            .unwrap()
            .wait_for_code("s", Duration::from_millis(200))
            .unwrap_err();
        assert!(err.to_string().contains("in time"), "{err}");
    }
}
