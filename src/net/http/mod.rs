//! The web inbox of `mailctl serve --http`: a page, a JSON API under
//! `/api/`, live events and the fault rules, over HTTP (or HTTPS with
//! `--tls-*`), one thread per connection.
//!
//! The front is ours: connections are capped in total and per client
//! address (more are answered 503), TLS is the server's own
//! [`Acceptor`], and each request is read within the bounds of [`wire`]
//! (head size and deadline, body size, idle time-out).
//!
//! On a loopback address anyone on the machine may use it (requests must
//! name a loopback host, so a web page elsewhere cannot reach it through
//! DNS rebinding). On any other address every request needs HTTP basic
//! authentication against the server's users, and sees only its own
//! mailbox.

pub mod api;
pub mod events;
pub mod wire;

use std::collections::HashMap;
use std::io::Read;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::net::connection::Stream;
use crate::net::tls::Acceptor;
use crate::proto::smtp::fault::Faults;
use crate::proto::users::Users;
use crate::store::index::MessageIndex;
use crate::store::mailbox::MailStore;
use events::Hub;
use wire::{Reader, Reply, Request};

/// Connections served at once; more are answered 503.
pub const MAX_CONNECTIONS: usize = 64;

/// Connections served at once from one client address.
pub const MAX_PER_ADDRESS: usize = 16;

/// How long [`HttpServer::stop`] waits for open connections to end.
const STOP_GRACE: Duration = Duration::from_secs(3);

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
#[derive(Clone)]
enum Access {
    /// Loopback: no authentication, every mailbox.
    Local,
    /// Basic authentication against these users.
    Users(Arc<Users>),
}

/// The web inbox's listener and its open connections.
struct Front {
    web: Arc<Web>,
    access: Access,
    tls: Option<Acceptor>,
    /// Set once [`HttpServer::stop`] was called.
    stopping: AtomicBool,
    open: Mutex<Open>,
    all_closed: Condvar,
}

/// The connections being served.
#[derive(Default)]
struct Open {
    next_id: u64,
    /// Each connection's client address and socket (to shut it down).
    sockets: HashMap<u64, (IpAddr, TcpStream)>,
}

/// A running web inbox.
pub struct HttpServer {
    /// The address bound, port 0 resolved.
    pub addr: SocketAddr,
    front: Arc<Front>,
}

/// Binds the address and starts serving in the background (and the index
/// watcher).
pub fn start(options: HttpOptions, web: Arc<Web>) -> std::io::Result<HttpServer> {
    let listener = TcpListener::bind(options.addr)?;
    let addr = listener.local_addr()?;
    let access = if addr.ip().is_loopback() {
        Access::Local
    } else {
        Access::Users(options.users)
    };
    let (hub, index) = (web.hub.clone(), web.index.clone());
    std::thread::Builder::new()
        .name("http-watch".into())
        .spawn(move || hub.watch(index))?;
    let front = Arc::new(Front {
        web,
        access,
        tls: options.tls,
        stopping: AtomicBool::new(false),
        open: Mutex::new(Open::default()),
        all_closed: Condvar::new(),
    });
    let accepting = front.clone();
    std::thread::Builder::new()
        .name("http-accept".into())
        .spawn(move || accepting.accept_loop(listener))?;
    Ok(HttpServer { addr, front })
}

impl HttpServer {
    /// Stops accepting, ends the live event streams and shuts every open
    /// connection, then waits a moment for their threads.
    pub fn stop(&self) {
        let front = &self.front;
        front.stopping.store(true, Ordering::SeqCst);
        // The accept loop checks the flag after its next connection.
        let wake = crate::net::serve::listener::reachable(self.addr);
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        front.web.hub.close();
        let open = front.open.lock().unwrap_or_else(|e| e.into_inner());
        for (_, tcp) in open.sockets.values() {
            let _ = tcp.shutdown(Shutdown::Both);
        }
        let _ = front
            .all_closed
            .wait_timeout_while(open, STOP_GRACE, |o| !o.sockets.is_empty());
    }
}

impl Front {
    /// Accepts connections until stopped, each served by a thread of its
    /// own within the caps.
    fn accept_loop(self: Arc<Self>, listener: TcpListener) {
        for stream in listener.incoming() {
            if self.stopping.load(Ordering::SeqCst) {
                break;
            }
            let Ok(tcp) = stream else {
                // Out of descriptors: carry on, without spinning.
                std::thread::sleep(Duration::from_millis(100));
                continue;
            };
            let Ok(peer) = tcp.peer_addr() else { continue };
            let Some(id) = self.admit(&tcp, peer.ip()) else {
                self.refuse(tcp);
                continue;
            };
            let front = self.clone();
            let spawned = std::thread::Builder::new()
                .name("http".into())
                .spawn(move || {
                    front.serve(tcp);
                    front.finished(id);
                });
            if spawned.is_err() {
                self.finished(id);
            }
        }
    }

    /// Registers a connection within [`MAX_CONNECTIONS`] and
    /// [`MAX_PER_ADDRESS`]; its id, or `None` when over a cap.
    fn admit(&self, tcp: &TcpStream, ip: IpAddr) -> Option<u64> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let from_ip = open.sockets.values().filter(|(i, _)| *i == ip).count();
        if open.sockets.len() >= MAX_CONNECTIONS || from_ip >= MAX_PER_ADDRESS {
            return None;
        }
        let clone = tcp.try_clone().ok()?;
        open.next_id += 1;
        let id = open.next_id;
        open.sockets.insert(id, (ip, clone));
        Some(id)
    }

    /// Forgets a connection that ended.
    fn finished(&self, id: u64) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.sockets.remove(&id);
        if open.sockets.is_empty() {
            self.all_closed.notify_all();
        }
    }

    /// Turns away a connection over a cap: 503 over plain HTTP (after
    /// taking what the client sent already, so that it reads the answer
    /// rather than a reset); over TLS, which would need a handshake first,
    /// the connection is just closed.
    fn refuse(&self, mut tcp: TcpStream) {
        if self.tls.is_none() && tcp.set_nonblocking(true).is_ok() {
            let mut sink = [0u8; 16 * 1024];
            while matches!(tcp.read(&mut sink), Ok(n) if n > 0) {}
            let _ = tcp.set_nonblocking(false);
            let _ = tcp.set_write_timeout(Some(Duration::from_secs(1)));
            let reply = api::error(503, "too many connections, try again later");
            let _ = reply.write_to(&mut tcp, false, false);
        }
        let _ = tcp.shutdown(Shutdown::Both);
    }

    /// Serves one connection: the TLS handshake if any, then requests until
    /// the client closes, idles, errs or the server stops.
    fn serve(&self, tcp: TcpStream) {
        let Ok(control) = tcp.try_clone() else { return };
        let _ = control.set_write_timeout(Some(wire::WRITE_TIMEOUT));
        let mut stream = match &self.tls {
            None => Stream::Plain(tcp),
            Some(acceptor) => {
                let _ = control.set_read_timeout(Some(wire::HEAD_DEADLINE));
                match acceptor.accept(tcp) {
                    Ok(tls) => Stream::Tls(Box::new(tls)),
                    Err(_) => return,
                }
            }
        };
        let mut reader = Reader::new();
        loop {
            let request = match reader.next(&mut stream, &control) {
                Ok(request) => request,
                Err(e) => {
                    if let Some(reply) = e.reply() {
                        if reply.write_to(&mut stream, false, false).is_ok() {
                            wire::linger(&mut stream, &control);
                        }
                    }
                    return;
                }
            };
            let keep_alive = request.keep_alive && !self.stopping.load(Ordering::SeqCst);
            let head_only = request.method == "HEAD";
            match handle(&self.web, &self.access, &request) {
                api::Answer::Reply(reply) => {
                    if reply.write_to(&mut stream, head_only, keep_alive).is_err() || !keep_alive {
                        return;
                    }
                }
                api::Answer::Events => return api::events(&self.web, &mut stream),
            }
        }
    }
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
