//! Listening sockets, one thread per connection (capped per protocol and
//! per client address), and shutdown: on Ctrl-C / SIGTERM the listeners
//! stop, idle connections are told 421 / `-ERR` and closed, and messages in
//! transit are either committed (a delivery already past its data) or
//! abandoned (their `tmp/` files removed), so `new/` never holds a
//! half-written message. Clients that do not read are cut off after a short
//! grace, so shutdown takes seconds whatever they do. With `--exit-after N`
//! the server stops accepting after the Nth delivery and lets open sessions
//! finish (for a grace period).

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::session;
use super::throttle::Throttle;
use crate::net::tls::Acceptor;
use crate::proto::users::Policy;
use crate::store::mailbox::MailStore;
use crate::transcript::Transcript;

/// How long open sessions may go on after `--exit-after` was reached.
pub const EXIT_GRACE: Duration = Duration::from_secs(10);

/// How long sessions have, once told of a shutdown, to say goodbye before
/// their sockets are shut both ways (a client that does not read).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How long shutdown then waits for the sessions' threads (a delivery being
/// synced to disk) before the process exits all the same.
pub const SHUTDOWN_LIMIT: Duration = Duration::from_secs(5);

/// What bounds the server's sessions.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Idle time-out per connection (each read and each write).
    pub idle_timeout: Duration,
    /// Longest time a command line may take to arrive, and a chunk of
    /// message data to be received or sent (see [`session::DATA_CHUNK`]).
    pub command_timeout: Duration,
    /// Most SMTP connections served at once; more get 421.
    pub max_smtp: usize,
    /// Most POP3 connections served at once; more get `-ERR`.
    pub max_pop3: usize,
    /// Most connections at once from one client address.
    pub max_per_client: usize,
}

/// Everything `serve` was configured with.
pub struct ServerOptions {
    /// SMTP listening address.
    pub smtp: SocketAddr,
    /// POP3 listening address.
    pub pop3: SocketAddr,
    /// SMTP over implicit TLS (RFC 8314), if any.
    pub smtps: Option<SocketAddr>,
    /// POP3 over implicit TLS (RFC 8314), if any.
    pub pop3s: Option<SocketAddr>,
    /// What the protocol machines need.
    pub policy: Policy,
    /// The mailboxes.
    pub store: Arc<MailStore>,
    /// The TLS identity for STARTTLS / STLS, if any.
    pub tls: Option<Acceptor>,
    /// The `-v` transcript.
    pub transcript: Transcript,
    /// Time-outs and connection caps.
    pub limits: Limits,
    /// Stop after this many delivered messages.
    pub exit_after: Option<u64>,
    /// The web inbox and the fault rules.
    pub hooks: super::hooks::Hooks,
    /// Called once every listener is bound, with each one's name (`smtp`,
    /// `pop3`, `smtps`, `pop3s`) and actual address.
    pub on_listening: Option<OnListening>,
}

/// What [`ServerOptions::on_listening`] holds.
pub type OnListening = Box<dyn FnOnce(&[(&'static str, SocketAddr)]) + Send + Sync>;

/// Why the server could not run.
#[derive(Debug)]
pub enum ServeError {
    /// A listening address could not be bound.
    Bind {
        /// `smtp` or `pop3`.
        name: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The signal handlers could not be installed.
    Signals(io::Error),
    /// A listener could not be started (its address read back, its thread).
    Start(io::Error),
}

impl ServeError {
    /// Whether trying again later may work (the address is in use).
    pub fn is_temporary(&self) -> bool {
        matches!(self, ServeError::Bind { source, .. } if source.kind() == io::ErrorKind::AddrInUse)
    }

    /// Whether the configuration is at fault (rather than the system).
    pub fn is_config(&self) -> bool {
        matches!(self, ServeError::Bind { .. })
    }
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Bind { name, addr, .. } => write!(f, "cannot listen for {name} on {addr}"),
            ServeError::Signals(_) => write!(f, "cannot install signal handlers"),
            ServeError::Start(_) => write!(f, "cannot start the listeners"),
        }
    }
}

impl std::error::Error for ServeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServeError::Bind { source, .. }
            | ServeError::Signals(source)
            | ServeError::Start(source) => Some(source),
        }
    }
}

/// Why the server stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGINT or SIGTERM.
    Signal,
    /// `--exit-after` was reached.
    ExitAfter,
}

/// The time by which a session must have received what it is reading (a
/// command line begun, a chunk of message data), or the watchdog cuts its
/// connection: a limit on top of the idle time-out, which a client sending
/// a byte now and then never reaches.
#[derive(Debug)]
pub struct Watch {
    /// Milliseconds since [`Shared::epoch`]; 0 when nothing is awaited.
    deadline: AtomicU64,
    /// `--command-timeout`.
    limit: Duration,
    /// When the server started.
    epoch: Instant,
}

impl Watch {
    /// Starts the clock on the input awaited now (again if already running).
    pub fn arm(&self) {
        let due = self.epoch.elapsed() + self.limit;
        let due = u64::try_from(due.as_millis()).unwrap_or(u64::MAX).max(1);
        self.deadline.store(due, Ordering::Relaxed);
    }

    /// Starts the clock unless it is running.
    pub fn arm_once(&self) {
        if self.deadline.load(Ordering::Relaxed) == 0 {
            self.arm();
        }
    }

    /// Stops the clock.
    pub fn disarm(&self) {
        self.deadline.store(0, Ordering::Relaxed);
    }

    /// Whether the deadline has passed.
    fn expired(&self) -> bool {
        let due = self.deadline.load(Ordering::Relaxed);
        due != 0 && self.epoch.elapsed().as_millis() >= u128::from(due)
    }
}

/// An open connection as the listener sees it.
struct Entry {
    /// A handle on its socket, to shut it down.
    tcp: TcpStream,
    /// Its protocol, for the per-protocol cap.
    protocol: Protocol,
    /// Its client's address, for the per-client cap.
    client: IpAddr,
    /// Its session's deadline.
    watch: Arc<Watch>,
}

/// The open connections and how many each protocol and each client address
/// has.
#[derive(Default)]
struct Open {
    /// By connection number.
    sockets: HashMap<u64, Entry>,
    /// Open connections per protocol.
    per_protocol: HashMap<Protocol, usize>,
    /// Open connections per client address (none: no entry).
    per_client: HashMap<IpAddr, usize>,
}

/// State shared by all connection threads.
pub struct Shared {
    /// How the server was configured (its addresses unused once bound).
    pub options: ServerOptions,
    /// Failed logins per client address.
    pub throttle: Throttle,
    /// Set once shutdown has begun.
    pub stopping: AtomicBool,
    /// Messages whose data phase began.
    pub received: AtomicU64,
    /// Messages delivered (250 sent or about to be).
    pub delivered: AtomicU64,
    /// Where a session reports that `--exit-after` was reached.
    pub stop: Sender<Stop>,
    /// The open connections.
    open: Mutex<Open>,
    /// Signalled when the last connection closes.
    all_closed: Condvar,
    /// The number of the next connection.
    next_id: AtomicU64,
    /// When the server started: the origin of the [`Watch`] deadlines.
    epoch: Instant,
}

/// How often the watchdog looks for sessions past their deadline.
const WATCHDOG_PERIOD: Duration = Duration::from_millis(250);

/// The protocol a listener speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Protocol {
    /// The SMTP listener.
    Smtp,
    /// The POP3 listener.
    Pop3,
}

impl Protocol {
    /// The name of its listener in messages: `smtps`, `pop3s` with TLS
    /// from the first byte.
    fn listener_name(self, implicit_tls: bool) -> &'static str {
        match (self, implicit_tls) {
            (Protocol::Smtp, false) => "smtp",
            (Protocol::Pop3, false) => "pop3",
            (Protocol::Smtp, true) => "smtps",
            (Protocol::Pop3, true) => "pop3s",
        }
    }
}

/// Runs the server until a signal or `--exit-after`; returns the number of
/// messages delivered.
pub fn run(mut options: ServerOptions) -> Result<u64, ServeError> {
    raise_file_limit();
    let on_listening = options.on_listening.take();
    let mut listeners = vec![
        bind(options.smtp, Protocol::Smtp, false)?,
        bind(options.pop3, Protocol::Pop3, false)?,
    ];
    for (addr, protocol) in [
        (options.smtps, Protocol::Smtp),
        (options.pop3s, Protocol::Pop3),
    ] {
        if let Some(addr) = addr {
            listeners.push(bind(addr, protocol, true)?);
        }
    }
    let (stop_tx, stop_rx) = mpsc::channel();
    let shared = Arc::new(Shared {
        options,
        throttle: Throttle::default(),
        stopping: AtomicBool::new(false),
        received: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        stop: stop_tx.clone(),
        open: Mutex::new(Open::default()),
        all_closed: Condvar::new(),
        next_id: AtomicU64::new(1),
        epoch: Instant::now(),
    });
    let signal_tx = stop_tx;
    super::signal::on_shutdown_signal(Box::new(move || {
        let _ = signal_tx.send(Stop::Signal);
    }))
    .map_err(ServeError::Signals)?;

    let mut wake = Vec::new();
    let mut bound = Vec::new();
    let mut acceptors: Vec<JoinHandle<()>> = Vec::new();
    for (listener, protocol, implicit_tls) in listeners {
        let name = protocol.listener_name(implicit_tls);
        let addr = listener.local_addr().map_err(ServeError::Start)?;
        eprintln!("mailctl: {name} listening on {addr}");
        wake.push(addr);
        bound.push((name, addr));
        let shared = shared.clone();
        acceptors.push(
            std::thread::Builder::new()
                .name(format!("{name}-accept"))
                .spawn(move || accept_loop(&shared, listener, protocol, implicit_tls))
                .map_err(ServeError::Start)?,
        );
    }

    if let Some(on_listening) = on_listening {
        on_listening(&bound);
    }
    let watchdog = shared.clone();
    std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || watchdog.watchdog())
        .map_err(ServeError::Start)?;

    let reason = stop_rx.recv().unwrap_or(Stop::Signal);
    shared.stopping.store(true, Ordering::SeqCst);
    for addr in wake {
        // Each accept loop checks the flag after its next connection.
        let _ = TcpStream::connect_timeout(&reachable(addr), Duration::from_secs(2));
    }
    for handle in acceptors {
        let _ = handle.join();
    }
    shared.close_all(reason);
    Ok(shared.delivered.load(Ordering::SeqCst))
}

/// Raises the soft limit on open files to the hard limit: each connection
/// and each message being received takes descriptors.
fn raise_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

/// Listens on `addr` for `protocol`, with TLS from the first byte when
/// `implicit_tls`.
fn bind(
    addr: SocketAddr,
    protocol: Protocol,
    implicit_tls: bool,
) -> Result<(TcpListener, Protocol, bool), ServeError> {
    TcpListener::bind(addr)
        .map(|listener| (listener, protocol, implicit_tls))
        .map_err(|source| ServeError::Bind {
            name: protocol.listener_name(implicit_tls),
            addr,
            source,
        })
}

/// The address to connect to in order to reach a listener (an unspecified
/// address is reached through loopback).
pub fn reachable(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

/// Accepts connections until shutdown, each served on a thread of its own.
fn accept_loop(
    shared: &Arc<Shared>,
    listener: TcpListener,
    protocol: Protocol,
    implicit_tls: bool,
) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let tcp = match stream {
            Ok(tcp) => tcp,
            Err(e) => {
                // Out of descriptors or an aborted handshake: carry on,
                // without spinning.
                eprintln!("mailctl: warning: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let peer = match tcp.peer_addr() {
            Ok(p) => p,
            Err(_) => continue,
        };
        let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
        let watch = match shared.register(id, &tcp, protocol, peer.ip()) {
            Ok(watch) => watch,
            Err(why) => {
                shared
                    .options
                    .transcript
                    .with_prefix(format!("[{id}] "))
                    .note("*", &format!("refused {peer}: {why}"));
                refuse(tcp, protocol, why);
                continue;
            }
        };
        let worker = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("conn-{id}"))
            .spawn(move || {
                match protocol {
                    Protocol::Smtp => {
                        session::smtp_session(&worker, tcp, (peer, id), &watch, implicit_tls)
                    }
                    Protocol::Pop3 => {
                        session::pop3_session(&worker, tcp, (peer, id), &watch, implicit_tls)
                    }
                }
                worker.finished(id);
            });
        if spawned.is_err() {
            shared.finished(id);
        }
    }
}

impl Shared {
    /// The open connections, locked.
    fn open(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a new connection in, unless a cap is reached.
    fn register(
        &self,
        id: u64,
        tcp: &TcpStream,
        protocol: Protocol,
        client: IpAddr,
    ) -> Result<Arc<Watch>, &'static str> {
        let limits = &self.options.limits;
        let cap = match protocol {
            Protocol::Smtp => limits.max_smtp,
            Protocol::Pop3 => limits.max_pop3,
        };
        let mut open = self.open();
        if open.per_protocol.get(&protocol).copied().unwrap_or(0) >= cap {
            return Err("too many connections");
        }
        if open.per_client.get(&client).copied().unwrap_or(0) >= limits.max_per_client {
            return Err("too many connections from your address");
        }
        let clone = tcp.try_clone().map_err(|_| "too many connections")?;
        let watch = Arc::new(Watch {
            deadline: AtomicU64::new(0),
            limit: limits.command_timeout,
            epoch: self.epoch,
        });
        let entry = Entry {
            tcp: clone,
            protocol,
            client,
            watch: watch.clone(),
        };
        open.sockets.insert(id, entry);
        *open.per_protocol.entry(protocol).or_default() += 1;
        *open.per_client.entry(client).or_default() += 1;
        Ok(watch)
    }

    /// Counts a connection out once its session has ended.
    fn finished(&self, id: u64) {
        let mut open = self.open();
        if let Some(entry) = open.sockets.remove(&id) {
            let open = &mut *open;
            if let Some(count) = open.per_protocol.get_mut(&entry.protocol) {
                *count -= 1;
            }
            if let Some(count) = open.per_client.get_mut(&entry.client) {
                *count -= 1;
                if *count == 0 {
                    open.per_client.remove(&entry.client);
                }
            }
        }
        if open.sockets.is_empty() {
            self.all_closed.notify_all();
        }
    }

    /// Ends every session: after `--exit-after` they may first finish for
    /// [`EXIT_GRACE`]; then each is woken as if the client had left (it says
    /// goodbye; a delivery being committed completes first), and after
    /// [`SHUTDOWN_GRACE`] the sockets still open are shut both ways, so a
    /// client that does not read cannot hold the server.
    fn close_all(&self, reason: Stop) {
        let mut open = self.open();
        if reason == Stop::ExitAfter {
            open = self.wait_closed(open, EXIT_GRACE);
        }
        for entry in open.sockets.values() {
            let _ = entry.tcp.shutdown(Shutdown::Read);
        }
        open = self.wait_closed(open, SHUTDOWN_GRACE);
        for entry in open.sockets.values() {
            let _ = entry.tcp.shutdown(Shutdown::Both);
        }
        let open = self.wait_closed(open, SHUTDOWN_LIMIT);
        if !open.sockets.is_empty() {
            eprintln!(
                "mailctl: warning: {} sessions still busy at exit",
                open.sockets.len()
            );
        }
    }

    /// Until shutdown: cuts the connections whose session waited past its
    /// deadline (the session sees the end of its input and ends).
    fn watchdog(&self) {
        while !self.stopping.load(Ordering::SeqCst) {
            std::thread::sleep(WATCHDOG_PERIOD);
            for (id, entry) in &self.open().sockets {
                if entry.watch.expired() {
                    entry.watch.disarm();
                    self.options
                        .transcript
                        .with_prefix(format!("[{id}] "))
                        .note("*", "too slow, connection cut");
                    let _ = entry.tcp.shutdown(Shutdown::Both);
                }
            }
        }
    }

    /// Waits up to `limit` for every connection to close.
    fn wait_closed<'a>(&self, open: MutexGuard<'a, Open>, limit: Duration) -> MutexGuard<'a, Open> {
        self.all_closed
            .wait_timeout_while(open, limit, |o| !o.sockets.is_empty())
            .unwrap_or_else(|e| e.into_inner())
            .0
    }
}

/// Turns away a connection over a cap (RFC 5321 section 3.8: 421).
fn refuse(mut tcp: TcpStream, protocol: Protocol, why: &str) {
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(2)));
    let message = match protocol {
        Protocol::Smtp => format!("421 4.3.2 {}, try again later\r\n", capitalised(why)),
        Protocol::Pop3 => format!("-ERR [SYS/TEMP] {why}, try again later\r\n"),
    };
    let _ = tcp.write_all(message.as_bytes());
    let _ = tcp.shutdown(Shutdown::Both);
}

/// `text` with its first letter in upper case.
fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
