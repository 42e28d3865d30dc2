//! The web inbox of `mailctl serve --http`: a page, a JSON API under
//! `/api/`, live events and the fault rules, over HTTP (or HTTPS with
//! `--tls-*`), one thread per connection.
//!
//! The front is ours: connections are capped in total and per client
//! address (more are answered 503), TLS is the server's own
//! [`Acceptor`], each request is read within the bounds of [`wire`]
//! (head size and deadline, body size, idle time-out), and a watchdog
//! shuts connections whose handshake, request or response outlives its
//! deadline.
//!
//! On a loopback address anyone on the machine may use it (requests must
//! name a loopback host, so a web page elsewhere cannot reach it through
//! DNS rebinding). On any other address every request needs HTTP basic
//! authentication against the server's users, and sees only its own
//! mailbox.

pub mod api;
pub mod events;
mod front;
pub mod wire;

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use crate::net::tls::Acceptor;
use crate::proto::smtp::fault::Faults;
use crate::proto::users::Users;
use crate::store::index::MessageIndex;
use crate::store::mailbox::MailStore;
use events::Hub;
pub use front::{HttpServer, MAX_CONNECTIONS, MAX_PER_ADDRESS};
use wire::{Reply, Request};

/// How the web inbox listens.
pub struct HttpOptions {
    /// The listening address.
    pub addr: SocketAddr,
    /// The accounts for basic authentication (required off loopback).
    pub users: Arc<Users>,
    /// The TLS identity for HTTPS, if any.
    pub tls: Option<Acceptor>,
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
enum Access {
    /// Loopback: no authentication, every mailbox.
    Local,
    /// Basic authentication against these users.
    Users(Arc<Users>),
}

/// Binds the address and starts serving in the background (and the index
/// watcher).
pub fn start(options: HttpOptions, web: Arc<Web>) -> std::io::Result<HttpServer> {
    let listener = TcpListener::bind(options.addr)?;
    let access = if listener.local_addr()?.ip().is_loopback() {
        Access::Local
    } else {
        Access::Users(options.users)
    };
    let (hub, index) = (web.hub.clone(), web.index.clone());
    std::thread::Builder::new()
        .name("http-watch".into())
        .spawn(move || hub.watch(index))?;
    front::serve(listener, web, access, options.tls)
}

/// Checks who is asking, then routes the request.
fn handle(web: &Web, access: &Access, request: &Request) -> api::Answer {
    let scope = match access {
        Access::Local if !loopback_host(request) => {
            return api::Answer::Reply(api::error(
                403,
                "this server answers to a loopback host name only",
            ));
        }
        Access::Local => None,
        Access::Users(users) => match authenticated(users, request) {
            Some(mailbox) => Some(mailbox),
            None => {
                let reply: Reply = api::error(401, "authentication required").with_header(
                    "WWW-Authenticate",
                    "Basic realm=\"mailctl\", charset=\"UTF-8\"",
                );
                return api::Answer::Reply(reply);
            }
        },
    };
    api::route(web, scope.as_deref(), request)
}

/// Whether the request's `Host` is a loopback name or address.
fn loopback_host(request: &Request) -> bool {
    let Some(host) = request.header("Host") else {
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
fn authenticated(users: &Users, request: &Request) -> Option<String> {
    use base64::Engine as _;
    let value = request.header("Authorization")?;
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
