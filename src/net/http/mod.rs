//! The web inbox of `mailctl serve --http`: a page, a JSON API under
//! `/api/`, live events and the fault rules, over HTTP (or HTTPS), one
//! thread per request.
//!
//! On a loopback address anyone on the machine may use it (requests must
//! name a loopback host, so a web page elsewhere cannot reach it through
//! DNS rebinding). On any other address every request needs HTTP basic
//! authentication against the server's users, and sees only its own
//! mailbox.

pub mod api;
pub mod events;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::proto::smtp::fault::Faults;
use crate::proto::users::Users;
use crate::store::index::MessageIndex;
use crate::store::mailbox::MailStore;
use events::Hub;

/// Requests handled at once; more get 503.
const MAX_REQUESTS: usize = 256;

/// How the web inbox listens.
pub struct HttpOptions {
    /// The listening address.
    pub addr: SocketAddr,
    /// The accounts for basic authentication (required off loopback).
    pub users: Arc<Users>,
    /// Certificate chain and private key (PEM) for HTTPS.
    pub tls: Option<(Vec<u8>, Vec<u8>)>,
}

/// What the web inbox works on, shared with the SMTP and POP3 sessions.
pub struct Web {
    /// The summaries of the stored messages.
    pub index: Arc<MessageIndex>,
    /// The mailboxes (for deletions, under the POP3 lock).
    pub store: Arc<MailStore>,
    /// Deliveries and transcript lines.
    pub hub: Arc<Hub>,
    /// The fault rules in force.
    pub faults: Arc<Mutex<Faults>>,
}

/// Who may do what: everything on loopback, one mailbox off it.
#[derive(Clone)]
enum Access {
    /// Loopback: no authentication, every mailbox.
    Local,
    /// Basic authentication against these users.
    Users(Arc<Users>),
}

/// Binds the address and starts serving in the background (and the index
/// watcher); returns the address bound, port 0 resolved.
pub fn start(options: HttpOptions, web: Arc<Web>) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(options.addr)?;
    let addr = listener.local_addr()?;
    let ssl = options
        .tls
        .map(|(certificate, private_key)| tiny_http::SslConfig {
            certificate,
            private_key,
        });
    let server = tiny_http::Server::from_listener(listener, ssl).map_err(io::Error::other)?;
    let access = if addr.ip().is_loopback() {
        Access::Local
    } else {
        Access::Users(options.users)
    };
    let (hub, index) = (web.hub.clone(), web.index.clone());
    std::thread::Builder::new()
        .name("http-watch".into())
        .spawn(move || hub.watch(index))?;
    std::thread::Builder::new()
        .name("http-accept".into())
        .spawn(move || serve(server, web, access))?;
    Ok(addr)
}

/// Hands each request to a thread of its own, up to [`MAX_REQUESTS`].
fn serve(server: tiny_http::Server, web: Arc<Web>, access: Access) {
    let active = Arc::new(AtomicUsize::new(0));
    for request in server.incoming_requests() {
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_REQUESTS {
            active.fetch_sub(1, Ordering::SeqCst);
            let _ = request.respond(api::error(503, "too many requests at once"));
            continue;
        }
        let (web, access, done) = (web.clone(), access.clone(), active.clone());
        let spawned = std::thread::Builder::new()
            .name("http".into())
            .spawn(move || {
                handle(&web, &access, request);
                done.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Checks who is asking, then routes the request.
fn handle(web: &Web, access: &Access, request: tiny_http::Request) {
    let scope = match access {
        Access::Local if !loopback_host(&request) => {
            let _ = request.respond(api::error(
                403,
                "this server answers to a loopback host name only",
            ));
            return;
        }
        Access::Local => None,
        Access::Users(users) => match authenticated(users, &request) {
            Some(mailbox) => Some(mailbox),
            None => {
                let challenge = api::header(
                    "WWW-Authenticate",
                    "Basic realm=\"mailctl\", charset=\"UTF-8\"",
                );
                let _ = request
                    .respond(api::error(401, "authentication required").with_header(challenge));
                return;
            }
        },
    };
    api::route(web, scope.as_deref(), request);
}

/// The value of a request header.
pub fn header_value<'r>(request: &'r tiny_http::Request, name: &str) -> Option<&'r str> {
    request
        .headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// Whether the request's `Host` is a loopback name or address.
fn loopback_host(request: &tiny_http::Request) -> bool {
    let Some(host) = header_value(request, "Host") else {
        // HTTP/1.0 without Host: only a local program does that.
        return true;
    };
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The mailbox of the user a basic `Authorization` header names, if the
/// password is right.
fn authenticated(users: &Users, request: &tiny_http::Request) -> Option<String> {
    use base64::Engine as _;
    let value = header_value(request, "Authorization")?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let login = std::str::from_utf8(&decoded[..colon]).ok()?;
    users.check(login, &decoded[colon + 1..])
}
