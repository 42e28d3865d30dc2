//! The web inbox's front: the accept loop, the caps on connections (in
//! total and per client address), TLS, one thread per connection reading
//! requests through [`wire`], and a watchdog that shuts any connection
//! whose handshake, request or response outlives its deadline (a client
//! that trickles bytes cannot stretch the per-read time-outs forever).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::wire::{self, Reader};
use super::{api, handle, Access, Web};
use crate::net::connection::Stream;
use crate::net::tls::Acceptor;

/// Connections served at once; more are answered 503.
pub const MAX_CONNECTIONS: usize = 64;

/// Connections served at once from one client address.
pub const MAX_PER_ADDRESS: usize = 16;

/// The longest a request may take to arrive, all said: idle wait, head and
/// body (each also bounded on its own in [`wire`]).
const REQUEST_DEADLINE: Duration = Duration::from_secs(60);

/// The longest a response may take to be written.
const RESPONSE_DEADLINE: Duration = Duration::from_secs(300);

/// How often the watchdog looks for connections past their deadline.
const WATCH_EVERY: Duration = Duration::from_millis(250);

/// How long [`HttpServer::stop`] waits for open connections to end.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// The most bytes taken from a refused connection before its 503.
const REFUSED_DRAIN: usize = 64 * 1024;

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
    connections: HashMap<u64, Connection>,
}

/// One open connection, as the accept loop and the watchdog see it.
struct Connection {
    /// The client's address (for the per-address cap).
    ip: IpAddr,
    /// The socket (to shut it down).
    tcp: TcpStream,
    /// When it is shut unless its current step is over.
    deadline: Option<Instant>,
}

/// A running web inbox.
pub struct HttpServer {
    /// The address bound, port 0 resolved.
    pub addr: SocketAddr,
    front: Arc<Front>,
}

/// Starts the accept loop and the watchdog on `listener`.
pub fn serve(
    listener: TcpListener,
    web: Arc<Web>,
    access: Access,
    tls: Option<Acceptor>,
) -> io::Result<HttpServer> {
    let addr = listener.local_addr()?;
    let front = Arc::new(Front {
        web,
        access,
        tls,
        stopping: AtomicBool::new(false),
        open: Mutex::new(Open::default()),
        all_closed: Condvar::new(),
    });
    let watching = front.clone();
    std::thread::Builder::new()
        .name("http-deadlines".into())
        .spawn(move || watching.watch_deadlines())?;
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
        for connection in open.connections.values() {
            let _ = connection.tcp.shutdown(Shutdown::Both);
        }
        let _ = front
            .all_closed
            .wait_timeout_while(open, STOP_GRACE, |o| !o.connections.is_empty());
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
                    front.serve(id, tcp);
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
        let from_ip = open.connections.values().filter(|c| c.ip == ip).count();
        if open.connections.len() >= MAX_CONNECTIONS || from_ip >= MAX_PER_ADDRESS {
            return None;
        }
        let tcp = tcp.try_clone().ok()?;
        open.next_id += 1;
        let id = open.next_id;
        let deadline = None;
        open.connections
            .insert(id, Connection { ip, tcp, deadline });
        Some(id)
    }

    /// Forgets a connection that ended.
    fn finished(&self, id: u64) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.connections.remove(&id);
        if open.connections.is_empty() {
            self.all_closed.notify_all();
        }
    }

    /// Gives connection `id` this long for its next step (`None`: no
    /// limit, while a request is being handled).
    fn limit(&self, id: u64, within: Option<Duration>) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(connection) = open.connections.get_mut(&id) {
            connection.deadline = within.map(|d| Instant::now() + d);
        }
    }

    /// The watchdog: shuts connections past their deadline, for the life
    /// of the process.
    fn watch_deadlines(&self) {
        loop {
            std::thread::sleep(WATCH_EVERY);
            let now = Instant::now();
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            for connection in open.connections.values_mut() {
                if connection.deadline.is_some_and(|d| d <= now) {
                    let _ = connection.tcp.shutdown(Shutdown::Both);
                    connection.deadline = None;
                }
            }
        }
    }

    /// Turns away a connection over a cap: 503 over plain HTTP (after
    /// taking what the client sent already, so that it reads the answer
    /// rather than a reset); over TLS, which would need a handshake first,
    /// the connection is just closed.
    fn refuse(&self, mut tcp: TcpStream) {
        if self.tls.is_none() && tcp.set_nonblocking(true).is_ok() {
            let mut sink = [0u8; 16 * 1024];
            let mut drained = 0;
            while drained < REFUSED_DRAIN {
                match tcp.read(&mut sink) {
                    Ok(n) if n > 0 => drained += n,
                    _ => break,
                }
            }
            let _ = tcp.set_nonblocking(false);
            let _ = tcp.set_write_timeout(Some(Duration::from_secs(1)));
            let reply = api::error(503, "too many connections, try again later");
            let _ = reply.write_to(&mut tcp, false, false);
        }
        let _ = tcp.shutdown(Shutdown::Both);
    }

    /// Serves one connection: the TLS handshake if any, then requests until
    /// the client closes, idles, errs or the server stops.
    fn serve(&self, id: u64, tcp: TcpStream) {
        let Ok(control) = tcp.try_clone() else { return };
        let _ = control.set_write_timeout(Some(wire::WRITE_TIMEOUT));
        let mut stream = match &self.tls {
            None => Stream::Plain(tcp),
            Some(acceptor) => {
                let _ = control.set_read_timeout(Some(wire::HEAD_DEADLINE));
                self.limit(id, Some(wire::HEAD_DEADLINE));
                match acceptor.accept(tcp) {
                    Ok(tls) => Stream::Tls(Box::new(tls)),
                    Err(_) => return,
                }
            }
        };
        let mut reader = Reader::new();
        loop {
            self.limit(id, Some(REQUEST_DEADLINE));
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
            self.limit(id, None);
            let keep_alive = request.keep_alive && !self.stopping.load(Ordering::SeqCst);
            let head_only = request.method == "HEAD";
            let reply = match handle(&self.web, &self.access, &request) {
                api::Answer::Reply(reply) => reply,
                api::Answer::Events => {
                    let mut events = Limited {
                        front: self,
                        id,
                        stream: &mut stream,
                        armed: false,
                    };
                    return api::events(&self.web, &mut events);
                }
            };
            self.limit(id, Some(RESPONSE_DEADLINE));
            if reply.write_to(&mut stream, head_only, keep_alive).is_err() || !keep_alive {
                return;
            }
        }
    }
}

/// A connection's stream whose writes, from the first after a flush up to
/// the next flush, must be done within [`wire::WRITE_TIMEOUT`] (for the
/// live events, written and flushed one by one).
struct Limited<'a> {
    front: &'a Front,
    id: u64,
    stream: &'a mut Stream,
    /// Whether a deadline runs for the writes since the last flush.
    armed: bool,
}

impl Write for Limited<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.armed {
            self.front.limit(self.id, Some(wire::WRITE_TIMEOUT));
            self.armed = true;
        }
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()?;
        self.front.limit(self.id, None);
        self.armed = false;
        Ok(())
    }
}
